//! `ahlt graph bench`: resync throughput on generated data, ours against a baseline.
//!
//! Seeds a scratch database (never the one `DATABASE_URL` names) with N entities and M
//! relations, runs a full [`resync`] into a fresh environment, and then the same data
//! through [`baseline`]: a re-creation of the upstream-style resync with one round trip
//! per entity and per relation. Both runs are timed per phase and removed from the graph
//! afterwards.

use std::collections::HashMap;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use falkordb::{AsyncGraph, FalkorClientBuilder, FalkorValue};
use rand::Rng;
use serde_json::Value;
use sqlx::{Connection, Executor, PgConnection, PgPool};

use super::{
    Credentials, EdgeRef, FalkorBackend, GraphBackend, GraphEdge, GraphNode, GraphResult, IfBusy,
    NodeIds, Param, projected_properties, relationship_type, resync,
};
use crate::local_postgres::{LocalAuth, LocalPostgres, LocalPostgresOptions};
use crate::{db, seed};

/// Entity type of the generated entities.
const BENCH_TYPE: &str = "bench_item";

/// The issue's targets for our resync on FalkorDB.
pub const TARGET_ENTITIES_PER_SECOND: f64 = 20_000.0;
pub const TARGET_SPEEDUP: f64 = 20.0;

/// What to generate and where to write it.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub entities: u64,
    pub relations: u64,
    /// Environment of our run; the baseline writes to `<env>-baseline` in a graph of its own.
    pub env: String,
    /// Relations the baseline writes (it always writes every entity); its time for all
    /// relations is extrapolated from these.
    pub baseline_relations: u64,
    /// Run ours only (the baseline takes minutes).
    pub skip_baseline: bool,
}

/// A fresh environment name, so a bench never touches a real one: `bench-<random>`.
pub fn fresh_env_name() -> String {
    format!("bench-{}", random_suffix())
}

fn random_suffix() -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..12)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// Time spent in one phase: `items` written in `wall`, of which `graph` waiting for the
/// graph server (the rest is reading Postgres and building batches).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Phase {
    pub items: u64,
    pub wall: Duration,
    pub graph: Duration,
}

impl Phase {
    pub fn per_second(&self) -> f64 {
        rate(self.items, self.wall)
    }

    pub fn postgres(&self) -> Duration {
        self.wall.saturating_sub(self.graph)
    }
}

fn rate(items: u64, time: Duration) -> f64 {
    if time.is_zero() {
        0.0
    } else {
        items as f64 / time.as_secs_f64()
    }
}

/// Our resync, timed per phase.
#[derive(Debug, Clone, PartialEq)]
pub struct OursRun {
    pub nodes: Phase,
    pub edges: Phase,
    /// Items removed by the sweep (none: the environment is fresh) and its time.
    pub sweep: Phase,
    /// Locating the environment's nodes in the graph (before the entities, and after them
    /// where it created some), inside the phases' wall time.
    pub locate: Duration,
    /// The whole resync, including schema, locking and commit.
    pub total: Duration,
    /// Differences `graph check` found afterwards (0: the projection is exact).
    pub check_differences: usize,
}

impl OursRun {
    pub fn entities_per_second(&self) -> f64 {
        rate(self.nodes.items, self.total)
    }
}

/// The per-entity baseline, timed per phase.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineRun {
    /// Every entity, one Postgres query and one graph statement each.
    pub nodes: Phase,
    /// The relations actually written (a sample when `relations_total` is larger).
    pub edges: Phase,
    /// All relations, for the extrapolation.
    pub relations_total: u64,
}

impl BaselineRun {
    pub fn is_sampled(&self) -> bool {
        self.edges.items < self.relations_total
    }

    /// Time for every relation: measured, or extrapolated linearly from the sample.
    pub fn edges_total_time(&self) -> Duration {
        if self.edges.items == 0 || !self.is_sampled() {
            return self.edges.wall;
        }
        self.edges
            .wall
            .mul_f64(self.relations_total as f64 / self.edges.items as f64)
    }

    /// Time for a full resync: entities measured, relations possibly extrapolated.
    pub fn total_time(&self) -> Duration {
        self.nodes.wall + self.edges_total_time()
    }

    pub fn entities_per_second(&self) -> f64 {
        rate(self.nodes.items, self.total_time())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BenchReport {
    pub env: String,
    pub seeded_entities: u64,
    pub seeded_relations: u64,
    pub seed_time: Duration,
    pub ours: OursRun,
    /// `None` when the graph server has no baseline implementation (only FalkorDB has).
    pub baseline: Option<BaselineRun>,
    /// Items of the bench's environments left in the graph after clean-up (0 expected).
    pub left_behind: u64,
}

impl BenchReport {
    /// Entity-phase speedup, both sides measured on every entity.
    pub fn entity_phase_speedup(&self) -> Option<f64> {
        let baseline = self.baseline.as_ref()?;
        Some(self.ours.nodes.per_second() / baseline.nodes.per_second())
    }

    /// Full-resync speedup in entities per second (the baseline's relations possibly
    /// extrapolated).
    pub fn full_speedup(&self) -> Option<f64> {
        let baseline = self.baseline.as_ref()?;
        Some(self.ours.entities_per_second() / baseline.entities_per_second())
    }
}

/// The graph server the bench writes to.
#[derive(Debug, Clone)]
pub struct GraphTarget {
    pub uri: String,
    pub graph_name: String,
    pub credentials: Credentials,
}

/// Seeds `pool` (a migrated, base-seeded scratch database), runs both resyncs and
/// removes what they wrote.
pub async fn run<B: GraphBackend>(
    pool: &PgPool,
    backend: &B,
    target: &GraphTarget,
    options: &BenchOptions,
) -> anyhow::Result<BenchReport> {
    let started = Instant::now();
    let (seeded_entities, seeded_relations) =
        seed_data(pool, options.entities, options.relations).await?;
    let seed_time = started.elapsed();
    tracing::info!(
        seeded_entities,
        seeded_relations,
        seconds = seed_time.as_secs_f64(),
        "bench data seeded"
    );

    let ours = run_ours(pool, backend, &options.env).await;
    // Our environment goes, whatever happened: everything is stamped before the future.
    let removed = backend.sweep(&options.env, i64::MAX).await;
    let ours = ours?;
    removed.context("removing the bench environment from the graph")?;
    let left_behind = backend.nodes(&options.env).await?.len() as u64;

    let baseline = if options.skip_baseline {
        None
    } else if baseline::supports(&target.uri) {
        let env = format!("{}-baseline", options.env);
        let graph_name = format!("{}_bench_baseline_{}", target.graph_name, random_suffix());
        let graph = baseline::Graph::connect(target, &graph_name).await?;
        let result = graph.run(pool, &env, options.baseline_relations).await;
        let deleted = graph.delete().await;
        let run = result?;
        deleted.context("deleting the baseline's graph")?;
        Some(run)
    } else {
        tracing::warn!("no per-entity baseline for this graph server: only FalkorDB has one");
        None
    };

    Ok(BenchReport {
        env: options.env.clone(),
        seeded_entities,
        seeded_relations,
        seed_time,
        ours,
        baseline,
        left_behind,
    })
}

async fn run_ours<B: GraphBackend>(
    pool: &PgPool,
    backend: &B,
    env: &str,
) -> anyhow::Result<OursRun> {
    let timed = Timed::new(backend);
    let report = resync(pool, &timed, env, IfBusy::Fail)
        .await
        .context("our resync")?;
    let t = timed
        .timings
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    let nodes_end = t.nodes_end.unwrap_or(t.schema_end);
    let edges_end = t.edges_end.unwrap_or(nodes_end);
    let check = super::check(pool, backend, env)
        .await
        .context("checking our resync")?;
    Ok(OursRun {
        nodes: Phase {
            items: report.nodes,
            wall: nodes_end.saturating_duration_since(t.schema_end),
            graph: t.nodes_graph,
        },
        edges: Phase {
            items: report.edges,
            wall: edges_end.saturating_duration_since(nodes_end),
            graph: t.edges_graph,
        },
        sweep: Phase {
            items: report.removed,
            wall: t.sweep,
            graph: t.sweep,
        },
        locate: t.locate,
        total: report.duration,
        check_differences: check.differences.len(),
    })
}

/// When each phase of a resync ended and how long it waited for the graph.
struct Timings {
    schema_end: Instant,
    nodes_graph: Duration,
    nodes_end: Option<Instant>,
    edges_graph: Duration,
    edges_end: Option<Instant>,
    sweep: Duration,
    /// Locating the environment's nodes, before the entities and after them.
    locate: Duration,
}

/// A backend that times the calls a resync makes (the resync itself is unchanged).
struct Timed<'a, B> {
    inner: &'a B,
    timings: Mutex<Timings>,
}

impl<'a, B: GraphBackend> Timed<'a, B> {
    fn new(inner: &'a B) -> Self {
        Timed {
            inner,
            timings: Mutex::new(Timings {
                schema_end: Instant::now(),
                nodes_graph: Duration::ZERO,
                nodes_end: None,
                edges_graph: Duration::ZERO,
                edges_end: None,
                sweep: Duration::ZERO,
                locate: Duration::ZERO,
            }),
        }
    }

    fn record(&self, update: impl FnOnce(&mut Timings)) {
        update(&mut self.timings.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

impl<B: GraphBackend> GraphBackend for Timed<'_, B> {
    async fn ensure_schema(&self) -> GraphResult<()> {
        let result = self.inner.ensure_schema().await;
        self.record(|t| t.schema_end = Instant::now());
        result
    }

    async fn upsert_nodes(&self, env: &str, stamp: i64, nodes: &[GraphNode]) -> GraphResult<()> {
        let start = Instant::now();
        let result = self.inner.upsert_nodes(env, stamp, nodes).await;
        self.record(|t| {
            t.nodes_graph += start.elapsed();
            t.nodes_end = Some(Instant::now());
        });
        result
    }

    async fn upsert_edges(&self, env: &str, stamp: i64, edges: &[GraphEdge]) -> GraphResult<()> {
        let start = Instant::now();
        let result = self.inner.upsert_edges(env, stamp, edges).await;
        self.record(|t| {
            t.edges_graph += start.elapsed();
            t.edges_end = Some(Instant::now());
        });
        result
    }

    async fn locate_nodes(&self, env: &str) -> GraphResult<NodeIds> {
        let start = Instant::now();
        let result = self.inner.locate_nodes(env).await;
        self.record(|t| t.locate += start.elapsed());
        result
    }

    async fn resync_nodes(
        &self,
        env: &str,
        stamp: i64,
        nodes: &[GraphNode],
        located: &mut NodeIds,
    ) -> GraphResult<()> {
        let start = Instant::now();
        let result = self.inner.resync_nodes(env, stamp, nodes, located).await;
        self.record(|t| {
            t.nodes_graph += start.elapsed();
            t.nodes_end = Some(Instant::now());
        });
        result
    }

    async fn resync_edges(
        &self,
        env: &str,
        stamp: i64,
        edges: &[GraphEdge],
        located: &NodeIds,
    ) -> GraphResult<()> {
        let start = Instant::now();
        let result = self.inner.resync_edges(env, stamp, edges, located).await;
        self.record(|t| {
            t.edges_graph += start.elapsed();
            t.edges_end = Some(Instant::now());
        });
        result
    }

    async fn delete_nodes(&self, env: &str, ids: &[i64]) -> GraphResult<u64> {
        self.inner.delete_nodes(env, ids).await
    }

    async fn delete_edges(&self, env: &str, edges: &[EdgeRef]) -> GraphResult<u64> {
        self.inner.delete_edges(env, edges).await
    }

    async fn sweep(&self, env: &str, stamp: i64) -> GraphResult<u64> {
        let start = Instant::now();
        let result = self.inner.sweep(env, stamp).await;
        self.record(|t| t.sweep += start.elapsed());
        result
    }

    async fn nodes(&self, env: &str) -> GraphResult<Vec<GraphNode>> {
        self.inner.nodes(env).await
    }

    async fn edges(&self, env: &str) -> GraphResult<Vec<GraphEdge>> {
        self.inner.edges(env).await
    }

    async fn read(
        &self,
        cypher: &'static str,
        params: Vec<(&'static str, Param)>,
    ) -> GraphResult<Vec<Vec<Value>>> {
        self.inner.read(cypher, params).await
    }
}

/// Adds `entities` entities of type `bench_item` (two properties each) and `relations`
/// relations between random pairs of them, of random relation types from the base seed
/// (one property each). Returns how many entities and relations the database then holds.
async fn seed_data(pool: &PgPool, entities: u64, relations: u64) -> anyhow::Result<(u64, u64)> {
    let mut tx = pool.begin().await?;
    let (lo, hi): (Option<i64>, Option<i64>) = sqlx::query_as(
        "WITH added AS ( \
             INSERT INTO entities (entity_type, name, label, sort_order) \
             SELECT $1, 'item-' || g, 'Bench item ' || g, (g % 1000)::int \
             FROM generate_series(1, $2::bigint) g \
             RETURNING id) \
         SELECT min(id), max(id) FROM added",
    )
    .bind(BENCH_TYPE)
    .bind(entities as i64)
    .fetch_one(&mut *tx)
    .await
    .context("seeding entities")?;
    sqlx::query(
        "INSERT INTO entity_properties (entity_id, key, value) \
         SELECT id, 'title', to_jsonb('Item number ' || id) FROM entities WHERE entity_type = $1 \
         UNION ALL \
         SELECT id, 'rank', to_jsonb(id % 97) FROM entities WHERE entity_type = $1",
    )
    .bind(BENCH_TYPE)
    .execute(&mut *tx)
    .await
    .context("seeding entity properties")?;

    if relations > 0 {
        let (Some(lo), Some(hi)) = (lo, hi) else {
            bail!("relations need entities to join");
        };
        // One INSERT gives consecutive identity values: a random id in [lo, hi] is one of ours.
        if hi - lo + 1 != entities as i64 {
            bail!("the seeded entity ids are not consecutive ({lo}..={hi} for {entities})");
        }
        let types: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM entities WHERE entity_type = 'relation_type' ORDER BY id",
        )
        .fetch_all(&mut *tx)
        .await?;
        if types.is_empty() {
            bail!("the base seed has no relation types");
        }
        let possible = types.len() as u128 * entities as u128 * (entities as u128 - 1);
        if relations as u128 > possible / 2 {
            bail!(
                "{relations} relations between {entities} entities of {} types: too dense to pick at random",
                types.len()
            );
        }
        // Random triples, distinct by ON CONFLICT; redraw the few that collided.
        let mut inserted = 0u64;
        for _ in 0..20 {
            if inserted == relations {
                break;
            }
            inserted += sqlx::query(
                "INSERT INTO relations (relation_type_id, source_id, target_id) \
                 SELECT ($1::bigint[])[1 + floor(random() * cardinality($1::bigint[]))::int], \
                        s, $2 + ((s - $2 + 1 + floor(random() * ($3 - $2))::bigint) % ($3 - $2 + 1)) \
                 FROM (SELECT $2 + floor(random() * ($3 - $2 + 1))::bigint AS s \
                       FROM generate_series(1, $4::bigint)) pairs \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&types)
            .bind(lo)
            .bind(hi)
            .bind((relations - inserted) as i64)
            .execute(&mut *tx)
            .await
            .context("seeding relations")?
            .rows_affected();
        }
        if inserted != relations {
            bail!("could only seed {inserted} of {relations} distinct relations");
        }
        sqlx::query(
            "INSERT INTO relation_properties (relation_id, key, value) \
             SELECT r.id, 'weight', to_jsonb(r.id % 10) FROM relations r \
             WHERE r.source_id BETWEEN $1 AND $2",
        )
        .bind(lo)
        .bind(hi)
        .execute(&mut *tx)
        .await
        .context("seeding relation properties")?;
    }
    tx.commit().await?;
    sqlx::query("ANALYZE").execute(pool).await?;
    let (entities, relations): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM entities), (SELECT count(*) FROM relations)")
            .fetch_one(pool)
            .await?;
    Ok((entities as u64, relations as u64))
}

/// The baseline: an upstream-style resync, one round trip per entity and per relation.
///
/// FOR COMPARISON ONLY: this is the approach the resync replaced, re-created faithfully
/// so the bench can measure against it. For each entity it reads that entity's
/// properties from Postgres with one query and writes it with one statement
/// (`MERGE (n:Entity {env, id}) SET n += $props`); for each relation it reads its
/// properties, then matches both endpoints WITHOUT a label (`MATCH (a {...}), (b {...})`,
/// which no index serves: two scans of every node) and merges the relationship. Values
/// travel as parameters, as they should. Two deliberate deviations, both in the baseline's
/// favour or for safety: it gets the same indexes as ours (so its per-entity MERGE is an
/// index lookup), and its endpoint patterns also match `env` (upstream matched `id` only,
/// which joins environments' nodes; with no label the cost is the same full scan). It
/// writes to a graph of its own, deleted afterwards.
pub mod baseline {
    use super::*;

    /// Whether a baseline exists for the graph server at `uri` (FalkorDB only).
    pub fn supports(uri: &str) -> bool {
        uri.starts_with("falkor://") || uri.starts_with("falkors://")
    }

    /// A FalkorDB graph (key) of the baseline's own.
    pub struct Graph {
        graph: AsyncGraph,
    }

    fn err(e: impl fmt::Display) -> anyhow::Error {
        anyhow::anyhow!("baseline graph: {e}")
    }

    impl Graph {
        pub async fn connect(target: &GraphTarget, graph_name: &str) -> anyhow::Result<Graph> {
            let uri = super::super::backend::with_credentials(&target.uri, &target.credentials)?;
            // The same indexes ours has.
            FalkorBackend::connect(&uri, graph_name)
                .await?
                .ensure_schema()
                .await?;
            let info: falkordb::FalkorConnectionInfo = uri.as_str().try_into().map_err(err)?;
            let client = FalkorClientBuilder::new_async()
                .with_connection_info(info)
                .build()
                .await
                .map_err(err)?;
            Ok(Graph {
                graph: client.select_graph(graph_name),
            })
        }

        /// Deletes the whole graph.
        pub async fn delete(mut self) -> anyhow::Result<()> {
            self.graph.delete().await.map_err(err)
        }

        async fn execute(
            &self,
            query: &str,
            params: Vec<(&str, FalkorValue)>,
        ) -> anyhow::Result<()> {
            let mut graph = self.graph.clone();
            graph
                .query(query)
                .with_params(params)
                .execute()
                .await
                .map_err(err)?;
            Ok(())
        }

        /// Every entity, then the first `relation_sample` relations, one at a time.
        pub async fn run(
            &self,
            pool: &PgPool,
            env: &str,
            relation_sample: u64,
        ) -> anyhow::Result<BaselineRun> {
            let mut conn = pool.acquire().await?;
            let conn: &mut PgConnection = &mut conn;

            let started = Instant::now();
            let mut graph_time = Duration::ZERO;
            let entities: Vec<(i64, String, String, String, bool)> = sqlx::query_as(
                "SELECT id, entity_type, name, label, is_active FROM entities ORDER BY id",
            )
            .fetch_all(&mut *conn)
            .await?;
            for (id, entity_type, name, label, is_active) in &entities {
                let properties = properties(
                    conn,
                    "SELECT key, value FROM entity_properties WHERE entity_id = $1",
                    *id,
                )
                .await?;
                let mut props = HashMap::from([
                    ("env".to_string(), string(env)),
                    ("id".to_string(), FalkorValue::I64(*id)),
                    ("entity_type".to_string(), string(entity_type)),
                    ("name".to_string(), string(name)),
                    ("label".to_string(), string(label)),
                    ("is_active".to_string(), FalkorValue::Bool(*is_active)),
                ]);
                props.extend(projected(&properties));
                let start = Instant::now();
                self.execute(
                    "MERGE (n:Entity {env: $env, id: $id}) SET n += $props",
                    vec![
                        ("env", string(env)),
                        ("id", FalkorValue::I64(*id)),
                        ("props", FalkorValue::Map(props)),
                    ],
                )
                .await?;
                graph_time += start.elapsed();
            }
            let nodes = Phase {
                items: entities.len() as u64,
                wall: started.elapsed(),
                graph: graph_time,
            };

            let started = Instant::now();
            let mut graph_time = Duration::ZERO;
            let relations_total: i64 = sqlx::query_scalar("SELECT count(*) FROM relations")
                .fetch_one(&mut *conn)
                .await?;
            let relations: Vec<(i64, String, i64, i64)> = sqlx::query_as(
                "SELECT r.id, rt.name, r.source_id, r.target_id FROM relations r \
                 JOIN entities rt ON rt.id = r.relation_type_id ORDER BY r.id LIMIT $1",
            )
            .bind(relation_sample as i64)
            .fetch_all(&mut *conn)
            .await?;
            for (id, relation_type, source_id, target_id) in &relations {
                let properties = properties(
                    conn,
                    "SELECT key, value FROM relation_properties WHERE relation_id = $1",
                    *id,
                )
                .await?;
                let mut props = HashMap::from([
                    ("env".to_string(), string(env)),
                    ("id".to_string(), FalkorValue::I64(*id)),
                    ("relation_type".to_string(), string(relation_type)),
                    ("source_id".to_string(), FalkorValue::I64(*source_id)),
                    ("target_id".to_string(), FalkorValue::I64(*target_id)),
                ]);
                props.extend(projected(&properties));
                // The relationship type cannot be a parameter; it is a validated identifier.
                let query = format!(
                    "MATCH (a {{env: $env, id: $source}}), (b {{env: $env, id: $target}}) \
                     MERGE (a)-[r:{} {{env: $env, id: $id}}]->(b) SET r += $props",
                    relationship_type(relation_type)?
                );
                let start = Instant::now();
                self.execute(
                    &query,
                    vec![
                        ("env", string(env)),
                        ("id", FalkorValue::I64(*id)),
                        ("source", FalkorValue::I64(*source_id)),
                        ("target", FalkorValue::I64(*target_id)),
                        ("props", FalkorValue::Map(props)),
                    ],
                )
                .await?;
                graph_time += start.elapsed();
            }
            let edges = Phase {
                items: relations.len() as u64,
                wall: started.elapsed(),
                graph: graph_time,
            };
            Ok(BaselineRun {
                nodes,
                edges,
                relations_total: relations_total as u64,
            })
        }
    }

    async fn properties(
        conn: &mut PgConnection,
        query: &'static str,
        id: i64,
    ) -> anyhow::Result<std::collections::BTreeMap<String, Value>> {
        let rows: Vec<(String, Value)> = sqlx::query_as(query).bind(id).fetch_all(conn).await?;
        Ok(rows.into_iter().collect())
    }

    fn string(s: &str) -> FalkorValue {
        FalkorValue::String(s.to_string())
    }

    /// The projected (non-secret, non-null) properties as FalkorDB values.
    fn projected(
        properties: &std::collections::BTreeMap<String, Value>,
    ) -> impl Iterator<Item = (String, FalkorValue)> + '_ {
        projected_properties(properties).map(|(key, value)| {
            let value = super::super::falkor::to_falkor(value);
            (key, value)
        })
    }
}

/// The PostgreSQL database the bench seeds: created for it and removed afterwards.
pub struct ScratchDatabase {
    url: String,
    name: String,
    admin_url: String,
    /// The throwaway server and its directory, when there was no DATABASE_URL.
    embedded: Option<(LocalPostgres, tempfile::TempDir)>,
}

impl ScratchDatabase {
    /// Without `database_url`, a throwaway local PostgreSQL in a temporary directory;
    /// with it, a new database `ahlt_bench_<random>` on that server (needs CREATEDB).
    /// Either way migrated and base-seeded.
    pub async fn create(database_url: Option<&str>) -> anyhow::Result<ScratchDatabase> {
        let embedded = match database_url {
            Some(_) => None,
            None => Some(start_throwaway_server().await?),
        };
        let admin_url = match (&embedded, database_url) {
            (Some((server, _)), _) => server.url("postgres"),
            (None, Some(url)) => url.to_string(),
            (None, None) => unreachable!("one of the two is set"),
        };
        let name = format!("ahlt_bench_{}", random_suffix());
        let created = async {
            let url = with_database(&admin_url, &name)?;
            create_database(&admin_url, &name).await?;
            Ok::<_, anyhow::Error>(url)
        }
        .await;
        let scratch = ScratchDatabase {
            url: created.as_ref().cloned().unwrap_or_default(),
            name,
            admin_url,
            embedded,
        };
        match created {
            Ok(_) => Ok(scratch),
            Err(e) => {
                if let Err(cleanup) = scratch.remove().await {
                    tracing::warn!(
                        error = format!("{cleanup:#}"),
                        "cleaning up after a failed start"
                    );
                }
                Err(e)
            }
        }
    }

    /// Holds a password for the throwaway server: never log it.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Migrates and applies the base seed (relation types among others).
    pub async fn prepare(&self, pool: &PgPool) -> anyhow::Result<()> {
        db::migrate(pool).await?;
        seed::base(pool, None)
            .await
            .context("applying the base seed")?;
        Ok(())
    }

    /// Drops the database and stops the throwaway server, removing its files.
    pub async fn remove(self) -> anyhow::Result<()> {
        let dropped = async {
            let mut admin = PgConnection::connect(&self.admin_url).await?;
            admin
                .execute(
                    format!(r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#, self.name).as_str(),
                )
                .await?;
            admin.close().await
        }
        .await
        .with_context(|| format!("dropping the scratch database {}", self.name));
        if let Some((server, dir)) = self.embedded {
            server
                .stop()
                .await
                .context("stopping the throwaway PostgreSQL")?;
            dir.close()
                .context("removing the throwaway PostgreSQL's directory")?;
        }
        dropped
    }
}

async fn start_throwaway_server() -> anyhow::Result<(LocalPostgres, tempfile::TempDir)> {
    let dir = tempfile::Builder::new()
        .prefix("ahlt-bench-pg-")
        .tempdir()
        .context("creating a temporary directory")?;
    // As root the server runs as `postgres`, which must reach the data dir.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711))?;
    let server = LocalPostgres::start(LocalPostgresOptions {
        data_dir: dir.path().join("data"),
        port: None,
        auth: LocalAuth::Password,
    })
    .await
    .context("starting a throwaway PostgreSQL (set DATABASE_URL to use a server instead)")?;
    Ok((server, dir))
}

async fn create_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let mut admin = PgConnection::connect(admin_url)
        .await
        .context("connecting to the database server")?;
    let created = admin
        .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
        .await;
    let _ = admin.close().await;
    match created {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42501") => bail!(
            "the DATABASE_URL role may not create databases (needs CREATEDB): the bench seeds \
             a scratch database of its own, never the one DATABASE_URL names"
        ),
        Err(e) => Err(e).with_context(|| format!("creating the scratch database {name}")),
    }
}

/// `url` naming `database` instead of its own.
fn with_database(url: &str, database: &str) -> anyhow::Result<String> {
    let mut url = url::Url::parse(url)
        .map_err(|_| anyhow::anyhow!("DATABASE_URL must be a postgres:// URL for the bench"))?;
    url.set_path(&format!("/{database}"));
    Ok(url.to_string())
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ours = &self.ours;
        let secs = |d: Duration| d.as_secs_f64();
        writeln!(
            f,
            "seeded {} entities and {} relations (with the base seed) in {:.1}s; \
             ours in environment {:?}",
            self.seeded_entities,
            self.seeded_relations,
            secs(self.seed_time),
            self.env
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<22} | {:>8} {:>9} {:>9} | {:>8} {:>9} {:>9} | {:>8}",
            "phase", "items", "ours s", "items/s", "items", "base s", "items/s", "speedup"
        )?;
        writeln!(f, "{}", "-".repeat(97))?;
        let row = |f: &mut fmt::Formatter<'_>,
                   name: &str,
                   ours: Phase,
                   base: Option<Phase>,
                   note: &str|
         -> fmt::Result {
            write!(
                f,
                "{:<22} | {:>8} {:>9.2} {:>9.0} |",
                name,
                ours.items,
                secs(ours.wall),
                ours.per_second()
            )?;
            match base {
                Some(base) => write!(
                    f,
                    " {:>8} {:>9.2} {:>9.0} | {:>7.1}x",
                    base.items,
                    secs(base.wall),
                    base.per_second(),
                    ours.per_second() / base.per_second()
                )?,
                None => write!(f, " {:>8} {:>9} {:>9} | {:>8}", "-", "-", "-", "-")?,
            }
            writeln!(f, "{note}")
        };
        let base = self.baseline.as_ref();
        row(f, "entities (nodes)", ours.nodes, base.map(|b| b.nodes), "")?;
        let sample_note = match base {
            Some(b) if b.is_sampled() => format!("  (baseline: sample of {})", b.edges.items),
            _ => String::new(),
        };
        row(
            f,
            "relations (edges)",
            ours.edges,
            base.map(|b| b.edges),
            &sample_note,
        )?;
        if let Some(b) = base.filter(|b| b.is_sampled()) {
            let extrapolated = Phase {
                items: b.relations_total,
                wall: b.edges_total_time(),
                graph: Duration::ZERO,
            };
            row(
                f,
                "relations, all (extr.)",
                ours.edges,
                Some(extrapolated),
                "  (baseline EXTRAPOLATED linearly from the sample)",
            )?;
        }
        row(f, "sweep (ours)", ours.sweep, None, "")?;
        // The full resync in entities per second: our total includes schema, lock and commit.
        let full_ours = Phase {
            items: ours.nodes.items,
            wall: ours.total,
            graph: Duration::ZERO,
        };
        let full_base = base.map(|b| Phase {
            items: b.nodes.items,
            wall: b.total_time(),
            graph: Duration::ZERO,
        });
        let full_note = if base.is_some_and(BaselineRun::is_sampled) {
            "  (entities/s; baseline relations extrapolated)"
        } else {
            "  (entities/s)"
        };
        row(f, "full resync", full_ours, full_base, full_note)?;
        writeln!(f)?;

        writeln!(
            f,
            "ours, where the time goes: entities {:.2}s (Postgres {:.2}s, graph {:.2}s); \
             relations {:.2}s (Postgres {:.2}s, graph {:.2}s); sweep {:.2}s; \
             locating nodes {:.2}s; schema, lock and commit {:.2}s",
            secs(ours.nodes.wall),
            secs(ours.nodes.postgres()),
            secs(ours.nodes.graph),
            secs(ours.edges.wall),
            secs(ours.edges.postgres()),
            secs(ours.edges.graph),
            secs(ours.sweep.wall),
            secs(ours.locate),
            secs(
                ours.total
                    .saturating_sub(ours.nodes.wall + ours.edges.wall + ours.sweep.wall)
            ),
        )?;
        if let Some(b) = base {
            writeln!(
                f,
                "baseline, where the time goes: entities {:.2}s (Postgres {:.2}s, graph {:.2}s); \
                 {} relations {:.2}s (Postgres {:.2}s, graph {:.2}s)",
                secs(b.nodes.wall),
                secs(b.nodes.postgres()),
                secs(b.nodes.graph),
                b.edges.items,
                secs(b.edges.wall),
                secs(b.edges.postgres()),
                secs(b.edges.graph),
            )?;
        } else {
            writeln!(
                f,
                "baseline: not available for this graph server (FalkorDB only)"
            )?;
        }
        writeln!(
            f,
            "graph check after our resync: {}",
            match ours.check_differences {
                0 => "identical to PostgreSQL".to_string(),
                n => format!("{n} DIFFERENCE(S)"),
            }
        )?;
        writeln!(f)?;

        let met = |ok: bool| if ok { "met" } else { "NOT MET" };
        // Entities per second in the entity phase (every node written), and over the whole
        // resync, whose time is mostly the relationships (two index lookups each).
        let phase_eps = ours.nodes.per_second();
        let eps = ours.entities_per_second();
        writeln!(
            f,
            "target >= {:.0} entities/s: entity phase {:.0} entities/s, {}; full resync \
             (with {} relations) {:.0} entities/s, {}",
            TARGET_ENTITIES_PER_SECOND,
            phase_eps,
            met(phase_eps >= TARGET_ENTITIES_PER_SECOND),
            ours.edges.items,
            eps,
            met(eps >= TARGET_ENTITIES_PER_SECOND)
        )?;
        match self.entity_phase_speedup() {
            Some(speedup) => writeln!(
                f,
                "target >= {:.0}x the per-entity baseline (entity phase, both measured on every \
                 entity): {:.1}x, {}; full resync (relations {}): {:.1}x",
                TARGET_SPEEDUP,
                speedup,
                met(speedup >= TARGET_SPEEDUP),
                if base.is_some_and(BaselineRun::is_sampled) {
                    "extrapolated"
                } else {
                    "measured"
                },
                self.full_speedup().unwrap_or_default()
            )?,
            None => writeln!(
                f,
                "target >= {TARGET_SPEEDUP:.0}x: not measured (no baseline)"
            )?,
        }
        if self.left_behind > 0 {
            writeln!(
                f,
                "WARNING: {} node(s) of the bench's environments are still in the graph",
                self.left_behind
            )?;
        }
        Ok(())
    }
}
