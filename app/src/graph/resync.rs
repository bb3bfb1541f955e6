//! Full resync: Postgres in pages, the graph in UNWIND batches, then mark and sweep.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::{Connection, PgConnection, PgPool, Postgres, Transaction};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::mpsc;

use super::{GraphBackend, GraphEdge, GraphError, GraphNode, GraphResult, NodeIds};

/// Rows read from Postgres and written to the graph per batch: FalkorDB writes a batch of
/// 5000 relationships about 1.5x faster per row than one of 1000 (docs/benchmarks.md).
const PAGE_SIZE: i64 = 5000;

/// First key of the advisory lock serialising resyncs of one environment; the second
/// is derived from the environment name.
const RESYNC_LOCK_CLASS: i32 = 0x6168_6c74; // "ahlt"

/// First key of the advisory lock over an environment's graph writes: live sync batches
/// hold it shared ([`writing`]), a resync exclusively, so nothing else writes the
/// environment's projection while a resync runs.
const WRITER_LOCK_CLASS: i32 = 0x6168_6c77; // "ahlw"

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

/// What a resync does when another resync of the same environment is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfBusy {
    /// Wait for it to finish, then run.
    Wait,
    /// Return [`GraphError::ResyncInProgress`] at once.
    Fail,
}

/// Rewrites this environment's projection from Postgres.
///
/// Every written item is stamped with the resync's start time on the Postgres clock;
/// only afterwards are this environment's items stamped earlier deleted, so readers never
/// see an empty graph and live changes written meanwhile (stamped later) survive.
/// Postgres is read in one REPEATABLE READ snapshot so relations always find their
/// entities. Resyncs of one environment are serialised by an advisory lock, across
/// processes.
pub async fn resync<B: GraphBackend>(
    pool: &PgPool,
    backend: &B,
    env: &str,
    if_busy: IfBusy,
) -> GraphResult<ResyncReport> {
    // A connection of its own, detached from the pool: if this future is dropped, closing
    // the connection releases the lock (a pooled one would keep it).
    let mut lock = pool.acquire().await?.detach();
    let locked = match if_busy {
        IfBusy::Wait => {
            sqlx::query("SELECT pg_advisory_lock($1, hashtext($2))")
                .bind(RESYNC_LOCK_CLASS)
                .bind(env)
                .execute(&mut lock)
                .await?;
            true
        }
        IfBusy::Fail => {
            sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
                .bind(RESYNC_LOCK_CLASS)
                .bind(env)
                .fetch_one(&mut lock)
                .await?
        }
    };
    if !locked {
        return Err(GraphError::ResyncInProgress(env.to_string()));
    }
    // Live sync batches in flight finish first; later ones wait for this resync.
    let result = match sqlx::query("SELECT pg_advisory_lock($1, hashtext($2))")
        .bind(WRITER_LOCK_CLASS)
        .bind(env)
        .execute(&mut lock)
        .await
    {
        Ok(_) => resync_locked(pool, backend, env).await,
        Err(e) => Err(e.into()),
    };
    // Unlocked explicitly: a closed connection's locks are released only once its server
    // process has exited, after `close` returns, so the next resync could find them held.
    // Closing still releases them if the unlock fails.
    let _ = sqlx::query("SELECT pg_advisory_unlock_all()")
        .execute(&mut lock)
        .await;
    let _ = lock.close().await;
    result
}

/// A snapshot transaction (see [`snapshot`]) that also holds the environment's writer lock
/// shared until it ends: a live sync batch reads and writes in one, so it never writes
/// while a resync runs. The snapshot is taken as the lock is requested, so it may predate
/// a resync the batch waited for; the stamp, read after the lock, is later than the
/// resync's, and what changed in between is notified and written by a later batch.
pub(crate) async fn writing(
    pool: &PgPool,
    env: &str,
) -> GraphResult<Transaction<'static, Postgres>> {
    let mut tx = snapshot(pool).await?;
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1, hashtext($2))")
        .bind(WRITER_LOCK_CLASS)
        .bind(env)
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

async fn resync_locked<B: GraphBackend>(
    pool: &PgPool,
    backend: &B,
    env: &str,
) -> GraphResult<ResyncReport> {
    let started = Instant::now();
    backend.ensure_schema().await?;

    let mut tx = snapshot(pool).await?;
    // The first query takes the snapshot; the stamp is read by the same statement.
    let stamp = postgres_stamp(&mut tx).await?;

    // Where the environment's nodes are, so relationships (and nodes already there) are
    // written by the graph's own ids where the backend supports it.
    let located = backend.locate_nodes(env).await?;
    let existed = located.len();

    // Postgres is read while the graph writes: one side loads pages and hands on full
    // batches, the other writes them, nodes first.
    let (batches, received) = mpsc::channel(BATCHES_AHEAD);
    let (loaded, written) = tokio::join!(
        load_batches(&mut tx, env, batches),
        write_batches(backend, env, stamp, located, received),
    );
    let (nodes, edges) = loaded?;
    let created = written?;
    // Nothing of this environment was in the graph: there is nothing stale to sweep.
    let fresh = existed == 0 && nodes > 0 && created == nodes;
    tx.commit().await?;

    let removed = match fresh {
        true => 0,
        false => backend.sweep(env, stamp).await?,
    };
    Ok(ResyncReport {
        nodes,
        edges,
        removed,
        duration: started.elapsed(),
    })
}

/// Full batches a resync reads ahead of the graph writes.
const BATCHES_AHEAD: usize = 2;

/// What the reading side hands the writing side, in this order: node batches, the end
/// of the nodes, relationship batches. A batch holds rows of one or more kinds, at most
/// [`PAGE_SIZE`] of each.
enum Batch {
    Nodes(Vec<GraphNode>),
    /// Every node is sent: the writer locates the created ones while edges are read.
    NodesDone,
    Edges(Vec<GraphEdge>),
}

/// Reads the environment's nodes, then its relationships, in pages, and sends them on as
/// full batches per label or relationship type: many kinds do not mean many small
/// statements. Stops early when the writer has stopped. Returns the rows read.
async fn load_batches(
    tx: &mut PgConnection,
    env: &str,
    batches: mpsc::Sender<Batch>,
) -> GraphResult<(u64, u64)> {
    let mut nodes = 0u64;
    let mut waiting = Batches::default();
    let mut page = load_nodes(tx, env, Rows::After(0)).await?;
    while let Some(after) = page.last().map(|node| node.id) {
        nodes += page.len() as u64;
        let full = waiting.add(page, |node| &node.entity_type);
        if !full.is_empty() && batches.send(Batch::Nodes(full)).await.is_err() {
            return Ok((nodes, 0));
        }
        page = load_nodes(tx, env, Rows::After(after)).await?;
    }
    let rest = waiting.drain();
    if !rest.is_empty() && batches.send(Batch::Nodes(rest)).await.is_err() {
        return Ok((nodes, 0));
    }
    if batches.send(Batch::NodesDone).await.is_err() {
        return Ok((nodes, 0));
    }

    let mut edges = 0u64;
    let mut waiting = Batches::default();
    let mut page = load_edges(tx, env, Rows::After(0)).await?;
    while let Some(after) = page.last().map(|edge| edge.id) {
        edges += page.len() as u64;
        let full = waiting.add(page, |edge| &edge.relation_type);
        if !full.is_empty() && batches.send(Batch::Edges(full)).await.is_err() {
            return Ok((nodes, edges));
        }
        page = load_edges(tx, env, Rows::After(after)).await?;
    }
    let rest = waiting.drain();
    if !rest.is_empty() {
        let _ = batches.send(Batch::Edges(rest)).await;
    }
    Ok((nodes, edges))
}

/// Writes the batches [`load_batches`] sends; returns how many nodes were created rather
/// than found. Nodes created are located once every node is written, before the first
/// relationship.
async fn write_batches<B: GraphBackend>(
    backend: &B,
    env: &str,
    stamp: i64,
    mut located: NodeIds,
    mut batches: mpsc::Receiver<Batch>,
) -> GraphResult<u64> {
    // One node batch after another: a batch may create a node that a later one finds.
    loop {
        match batches.recv().await {
            Some(Batch::Nodes(nodes)) => {
                backend
                    .resync_nodes(env, stamp, &nodes, &mut located)
                    .await?
            }
            Some(Batch::NodesDone) => break,
            // The reader stopped early; its error is the resync's.
            None => return Ok(located.created.len() as u64),
            Some(Batch::Edges(_)) => {
                return Err(GraphError::Backend(
                    "relationships were read before every entity".to_string(),
                ));
            }
        }
    }
    let created = located.created.len() as u64;
    let located = relocated(backend, env, located).await?;
    write_edges(backend, env, stamp, &located, batches).await?;
    Ok(created)
}

/// Relationship writes kept in flight: one is sent and decoded while the graph writes
/// the other, across batches, so the graph never waits for the client between them.
const EDGE_WRITES_IN_FLIGHT: usize = 2;

/// Writes the relationship batches in halves, [`EDGE_WRITES_IN_FLIGHT`] at a time; the
/// next batch is received while writes are in flight.
async fn write_edges<B: GraphBackend>(
    backend: &B,
    env: &str,
    stamp: i64,
    located: &NodeIds,
    mut batches: mpsc::Receiver<Batch>,
) -> GraphResult<()> {
    let mut waiting: VecDeque<Vec<GraphEdge>> = VecDeque::new();
    let mut writing = FuturesUnordered::new();
    let mut open = true;
    loop {
        while writing.len() < EDGE_WRITES_IN_FLIGHT
            && let Some(edges) = waiting.pop_front()
        {
            writing.push(async move { backend.resync_edges(env, stamp, &edges, located).await });
        }
        if writing.is_empty() && !open {
            return Ok(());
        }
        tokio::select! {
            batch = batches.recv(), if open && waiting.is_empty() => match batch {
                Some(Batch::Edges(mut edges)) => {
                    let second = edges.split_off(edges.len() / 2);
                    waiting.extend([edges, second].into_iter().filter(|half| !half.is_empty()));
                }
                Some(_) => {
                    return Err(GraphError::Backend(
                        "entities were read after relationships".to_string(),
                    ));
                }
                None => open = false,
            },
            Some(written) = writing.next() => written?,
        }
    }
}

/// `located` with the ids of the nodes this resync created, which it did not learn as it
/// created them.
async fn relocated<B: GraphBackend>(
    backend: &B,
    env: &str,
    located: NodeIds,
) -> GraphResult<NodeIds> {
    if located.created.is_empty() {
        return Ok(located);
    }
    let mut now = backend.locate_nodes(env).await?;
    now.created = located.created;
    Ok(now)
}

/// Rows waiting, per kind (label or relationship type), for a batch of [`PAGE_SIZE`].
struct Batches<T>(BTreeMap<String, Vec<T>>);

impl<T> Default for Batches<T> {
    fn default() -> Self {
        Batches(BTreeMap::new())
    }
}

impl<T> Batches<T> {
    /// Adds a page; returns the batches it filled.
    fn add(&mut self, page: Vec<T>, kind: impl Fn(&T) -> &String) -> Vec<T> {
        let mut full = Vec::new();
        for row in page {
            let batch = self.0.entry(kind(&row).clone()).or_default();
            batch.push(row);
            if batch.len() as i64 >= PAGE_SIZE {
                full.append(batch);
            }
        }
        full
    }

    /// Every row still waiting.
    fn drain(&mut self) -> Vec<T> {
        std::mem::take(&mut self.0)
            .into_values()
            .flatten()
            .collect()
    }
}

/// A read-only REPEATABLE READ transaction: everything read in it comes from one snapshot
/// (taken by its first query), so relations always find their entities.
pub(crate) async fn snapshot(pool: &PgPool) -> GraphResult<Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// The Postgres server's clock in microseconds since the epoch: the one clock every
/// process writing the graph agrees on.
pub(crate) async fn postgres_stamp(conn: &mut PgConnection) -> GraphResult<i64> {
    Ok(
        sqlx::query_scalar("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint")
            .fetch_one(conn)
            .await?,
    )
}

/// Which rows to load: a keyset page, or exactly some ids.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rows<'a> {
    After(i64),
    Ids(&'a [i64]),
}

/// Entities with their properties, as nodes of `env`, ordered by id.
pub(crate) async fn load_nodes(
    conn: &mut PgConnection,
    env: &str,
    rows: Rows<'_>,
) -> GraphResult<Vec<GraphNode>> {
    let query = match rows {
        Rows::After(_) => {
            "SELECT id, entity_type, name, label, is_active FROM entities \
             WHERE id > $1 ORDER BY id LIMIT $3"
        }
        Rows::Ids(_) => {
            "SELECT id, entity_type, name, label, is_active FROM entities \
             WHERE id = ANY($2) ORDER BY id"
        }
    };
    let (after, ids) = rows.binds();
    let found: Vec<(i64, String, String, String, bool)> = sqlx::query_as(query)
        .bind(after)
        .bind(ids)
        .bind(PAGE_SIZE)
        .fetch_all(&mut *conn)
        .await?;
    let ids: Vec<i64> = found.iter().map(|r| r.0).collect();
    let mut properties = properties_of(
        conn,
        "SELECT entity_id, key, value FROM entity_properties WHERE entity_id = ANY($1)",
        &ids,
    )
    .await?;
    Ok(found
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
        .collect())
}

/// Relations with their properties, as relationships of `env`, ordered by id.
pub(crate) async fn load_edges(
    conn: &mut PgConnection,
    env: &str,
    rows: Rows<'_>,
) -> GraphResult<Vec<GraphEdge>> {
    let query = match rows {
        Rows::After(_) => {
            "SELECT r.id, rt.name, r.source_id, r.target_id FROM relations r \
             JOIN entities rt ON rt.id = r.relation_type_id \
             WHERE r.id > $1 ORDER BY r.id LIMIT $3"
        }
        Rows::Ids(_) => {
            "SELECT r.id, rt.name, r.source_id, r.target_id FROM relations r \
             JOIN entities rt ON rt.id = r.relation_type_id \
             WHERE r.id = ANY($2) ORDER BY r.id"
        }
    };
    let (after, ids) = rows.binds();
    let found: Vec<(i64, String, i64, i64)> = sqlx::query_as(query)
        .bind(after)
        .bind(ids)
        .bind(PAGE_SIZE)
        .fetch_all(&mut *conn)
        .await?;
    let ids: Vec<i64> = found.iter().map(|r| r.0).collect();
    let mut properties = properties_of(
        conn,
        "SELECT relation_id, key, value FROM relation_properties WHERE relation_id = ANY($1)",
        &ids,
    )
    .await?;
    Ok(found
        .into_iter()
        .map(|(id, relation_type, source_id, target_id)| GraphEdge {
            env: env.to_string(),
            id,
            relation_type,
            source_id,
            target_id,
            properties: properties.remove(&id).unwrap_or_default(),
        })
        .collect())
}

impl Rows<'_> {
    /// Both queries bind the same parameters ($1 cursor, $2 ids, $3 page size); each
    /// uses its own.
    fn binds(self) -> (i64, Vec<i64>) {
        match self {
            Rows::After(after) => (after, Vec::new()),
            Rows::Ids(ids) => (0, ids.to_vec()),
        }
    }
}

async fn properties_of(
    conn: &mut PgConnection,
    query: &'static str,
    ids: &[i64],
) -> GraphResult<BTreeMap<i64, BTreeMap<String, Value>>> {
    let mut out: BTreeMap<i64, BTreeMap<String, Value>> = BTreeMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let rows: Vec<(i64, String, Value)> = sqlx::query_as(query).bind(ids).fetch_all(conn).await?;
    for (id, key, value) in rows {
        out.entry(id).or_default().insert(key, value);
    }
    Ok(out)
}
