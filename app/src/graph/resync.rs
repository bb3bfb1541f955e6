//! Full resync: Postgres in pages, the graph in UNWIND batches, then mark and sweep.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::Value;
use sqlx::{Connection, PgPool};

use super::{GraphBackend, GraphEdge, GraphNode, GraphResult};

/// Rows read from Postgres and written to the graph per batch.
const PAGE_SIZE: i64 = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResyncReport {
    /// Nodes written (one per entity).
    pub nodes: u64,
    /// Relationships written (one per relation).
    pub edges: u64,
    /// Stale nodes and relationships of this environment deleted by the sweep.
    pub removed: u64,
    pub duration: Duration,
}

/// Rewrites this environment's projection from Postgres.
///
/// Every written item is stamped with a fresh run id; only afterwards are this
/// environment's items with another stamp deleted, so readers never see an empty
/// graph. Postgres is read in one REPEATABLE READ snapshot so relations always
/// find their entities.
pub async fn resync<B: GraphBackend>(
    pool: &PgPool,
    backend: &B,
    env: &str,
) -> GraphResult<ResyncReport> {
    let started = Instant::now();
    let run = new_run_id();
    backend.ensure_schema().await?;

    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;

    let mut nodes = 0u64;
    let mut after = 0i64;
    loop {
        let rows: Vec<(i64, String, String, String, bool)> = sqlx::query_as(
            "SELECT id, entity_type, name, label, is_active FROM entities \
             WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(PAGE_SIZE)
        .fetch_all(&mut *tx)
        .await?;
        let Some(last) = rows.last() else { break };
        after = last.0;
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let mut properties = properties_of(
            &mut tx,
            "SELECT entity_id, key, value FROM entity_properties WHERE entity_id = ANY($1)",
            &ids,
        )
        .await?;
        let page: Vec<GraphNode> = rows
            .into_iter()
            .map(|(id, entity_type, name, label, is_active)| GraphNode {
                env: env.to_string(),
                id,
                entity_type,
                name,
                label,
                is_active,
                properties: properties.remove(&id).unwrap_or_default(),
            })
            .collect();
        backend.upsert_nodes(env, &run, &page).await?;
        nodes += page.len() as u64;
    }

    let mut edges = 0u64;
    let mut after = 0i64;
    loop {
        let rows: Vec<(i64, String, i64, i64)> = sqlx::query_as(
            "SELECT r.id, rt.name, r.source_id, r.target_id FROM relations r \
             JOIN entities rt ON rt.id = r.relation_type_id \
             WHERE r.id > $1 ORDER BY r.id LIMIT $2",
        )
        .bind(after)
        .bind(PAGE_SIZE)
        .fetch_all(&mut *tx)
        .await?;
        let Some(last) = rows.last() else { break };
        after = last.0;
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let mut properties = properties_of(
            &mut tx,
            "SELECT relation_id, key, value FROM relation_properties WHERE relation_id = ANY($1)",
            &ids,
        )
        .await?;
        let page: Vec<GraphEdge> = rows
            .into_iter()
            .map(|(id, relation_type, source_id, target_id)| GraphEdge {
                env: env.to_string(),
                id,
                relation_type,
                source_id,
                target_id,
                properties: properties.remove(&id).unwrap_or_default(),
            })
            .collect();
        backend.upsert_edges(env, &run, &page).await?;
        edges += page.len() as u64;
    }
    tx.commit().await?;

    let removed = backend.sweep(env, &run).await?;
    Ok(ResyncReport {
        nodes,
        edges,
        removed,
        duration: started.elapsed(),
    })
}

async fn properties_of(
    tx: &mut sqlx::PgConnection,
    query: &'static str,
    ids: &[i64],
) -> GraphResult<BTreeMap<i64, BTreeMap<String, Value>>> {
    let rows: Vec<(i64, String, Value)> = sqlx::query_as(query).bind(ids).fetch_all(tx).await?;
    let mut out: BTreeMap<i64, BTreeMap<String, Value>> = BTreeMap::new();
    for (id, key, value) in rows {
        out.entry(id).or_default().insert(key, value);
    }
    Ok(out)
}

/// 128 random bits as hex: unique per run.
fn new_run_id() -> String {
    let bytes: [u8; 16] = rand::thread_rng().r#gen();
    hex::encode(bytes)
}
