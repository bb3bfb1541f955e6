//! Neo4j backend (`bolt://`, `bolt+s://`, `bolt+ssc://`, `neo4j://`, `neo4j+s://`,
//! `neo4j+ssc://`), through the `neo4rs` 0.8 driver.
//!
//! The Cypher is the FalkorDB backend's wherever the dialects agree: UNWIND batches,
//! MERGE on `(:Entity {env, id})`, labels and relationship types only from
//! [`node_label`] / [`relationship_type`], everything else as parameters, property values
//! through [`projected_properties`] so both backends store identical values. What differs
//! is marked "Neo4j:" below: the schema (a uniqueness constraint instead of plain
//! indexes), the counts of deleted items (FalkorDB reports statistics, Neo4j's driver
//! does not expose them, so the queries `RETURN` their own counts) and how rows come back
//! (`neo4rs` gives each row as a map, so [`GraphBackend::read`] recovers the column order
//! from the query's final `RETURN`).
//!
//! Neo4j Community has only one user database, so this backend always uses the server's
//! default database and ignores the FalkorDB graph name (`GRAPH_NAME`); environments
//! sharing the server stay apart by their `env` property, as on FalkorDB.
//!
//! TLS: `bolt+s` / `neo4j+s` verify the server certificate against the system roots.
//! `neo4rs` 0.8 treats `+ssc` exactly like `+s` (it does not skip verification), so a
//! self-signed certificate must be trusted by the system. `neo4rs` 0.8 has no client-side
//! routing: `neo4j://` must point at a single server (or one doing server-side routing).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use neo4rs::{
    BoltBoolean, BoltFloat, BoltInteger, BoltList, BoltMap, BoltString, BoltType, ConfigBuilder,
    Graph, Query, Row,
};
use serde_json::Value;

use super::cypher;
use super::model::RUN_FIELD;
use super::{
    Credentials, ENTITY_LABEL, EdgeRef, GraphBackend, GraphEdge, GraphError, GraphNode,
    GraphResult, Param, PropertyValue, decode_property_key, projected_properties, redact,
};

/// URI schemes served by this backend.
pub const NEO4J_SCHEMES: &[&str] = &[
    "bolt",
    "bolt+s",
    "bolt+ssc",
    "neo4j",
    "neo4j+s",
    "neo4j+ssc",
];

/// Username when neither the URI nor GRAPH_USERNAME gives one.
pub const DEFAULT_USERNAME: &str = "neo4j";

/// How long [`Neo4jBackend::connect`] waits for the server to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Rows fetched per round trip (the driver's default is 200).
const FETCH_SIZE: usize = 1000;

/// Attempts of a query failing with a transient error, and the pause after the first.
const ATTEMPTS: u32 = 3;
const RETRY_DELAY: Duration = Duration::from_millis(100);

/// Neo4j: the uniqueness constraint MERGE relies on, and the index `nodes` and `sweep`
/// use. Composite property uniqueness constraints exist in Neo4j 5 Community (node key
/// and existence constraints are Enterprise only); the constraint brings its own
/// composite index on (env, id).
const SCHEMA: &[&str] = &[
    "CREATE CONSTRAINT ahlt_entity_env_id IF NOT EXISTS \
     FOR (n:Entity) REQUIRE (n.env, n.id) IS UNIQUE",
    "CREATE INDEX ahlt_entity_env IF NOT EXISTS FOR (n:Entity) ON (n.env)",
];

/// A Neo4j database. Clones share one connection pool.
#[derive(Clone)]
pub struct Neo4jBackend {
    graph: Graph,
    /// The URI without credentials, for `Debug`.
    uri: String,
}

impl std::fmt::Debug for Neo4jBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Neo4jBackend")
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

/// Where to connect and as whom: the URI without its userinfo (the driver ignores it),
/// and the credentials taken from it or from [`Credentials`].
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) uri: String,
    pub(crate) username: String,
    pub(crate) password: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("uri", &self.uri)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Target {
    /// The URI's own userinfo wins (as for FalkorDB); otherwise GRAPH_USERNAME and
    /// GRAPH_PASSWORD; the username defaults to `neo4j`, the password to empty (a server
    /// with authentication disabled accepts anything).
    pub(crate) fn resolve(uri: &str, credentials: &Credentials) -> GraphResult<Target> {
        let mut url = url::Url::parse(uri)
            .map_err(|e| GraphError::UnsupportedUri(format!("{}: {e}", redact(uri))))?;
        if !NEO4J_SCHEMES.contains(&url.scheme()) {
            return Err(GraphError::UnsupportedUri(redact(uri)));
        }
        let bad = || GraphError::UnsupportedUri(redact(uri));
        let (username, password) = match url.password() {
            Some(password) => (
                percent_decode(url.username()).ok_or_else(bad)?,
                percent_decode(password).ok_or_else(bad)?,
            ),
            None => {
                let from_uri = percent_decode(url.username()).ok_or_else(bad)?;
                let username = credentials
                    .username
                    .clone()
                    .filter(|u| !u.is_empty())
                    .or(Some(from_uri).filter(|u| !u.is_empty()));
                (
                    username.unwrap_or_default(),
                    credentials.password.clone().unwrap_or_default(),
                )
            }
        };
        url.set_username("").map_err(|_| bad())?;
        url.set_password(None).map_err(|_| bad())?;
        Ok(Target {
            uri: url.to_string(),
            username: if username.is_empty() {
                DEFAULT_USERNAME.to_string()
            } else {
                username
            },
            password,
        })
    }
}

/// Decodes `%XX` escapes (URI userinfo); `None` for malformed escapes or non-UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A driver error as ours. The driver's messages never contain the password (it is sent
/// only in the HELLO message and redacted from its `Debug`).
fn backend_err(e: neo4rs::Error) -> GraphError {
    GraphError::Backend(e.to_string())
}

impl Neo4jBackend {
    /// Connects to `uri` as the user given by the URI's userinfo or `credentials`, and
    /// checks at once (`RETURN 1`, within 10 seconds) that the server answers and accepts
    /// the credentials. The password never appears in errors or `Debug` output.
    pub async fn connect(uri: &str, credentials: &Credentials) -> GraphResult<Neo4jBackend> {
        let target = Target::resolve(uri, credentials)?;
        let fail =
            |e: String| GraphError::Backend(format!("connecting to Neo4j at {}: {e}", target.uri));
        let config = ConfigBuilder::new()
            .uri(target.uri.as_str())
            .user(target.username.as_str())
            .password(target.password.as_str())
            // Neo4j: the empty name selects the server's default (home) database, as an
            // absent one does; Community has no other. The driver would otherwise send
            // "neo4j", which a renamed default database does not answer to.
            .db("")
            .fetch_size(FETCH_SIZE)
            .build()
            .map_err(|e| fail(e.to_string()))?;
        // Builds the pool only; no connection is made yet.
        let graph = Graph::connect(config)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let backend = Neo4jBackend {
            graph,
            uri: target.uri.clone(),
        };
        match tokio::time::timeout(
            CONNECT_TIMEOUT,
            backend.rows(neo4rs::query("RETURN 1 AS one")),
        )
        .await
        {
            Ok(Ok(_)) => Ok(backend),
            Ok(Err(GraphError::Backend(e))) => Err(fail(e)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(fail(format!("no answer within {CONNECT_TIMEOUT:?}"))),
        }
    }

    /// Runs a write query, discarding its result.
    async fn run(&self, query: Query) -> GraphResult<()> {
        self.rows(query).await.map(drop)
    }

    /// Runs `query` in a transaction of its own and returns every row, retrying a few
    /// times on transient errors (deadlocks, ...); the failed attempt was rolled back.
    ///
    /// Neo4j: not the driver's `Graph::run` / `Graph::execute`, whose retry treats every
    /// connection error as transient and keeps trying for a minute, so a server that is
    /// down would stall each call instead of failing (and callers fall back to Postgres).
    async fn rows(&self, query: Query) -> GraphResult<Vec<Row>> {
        let mut attempt = 1;
        loop {
            match self.rows_once(query.clone()).await {
                Err(e) if attempt < ATTEMPTS && is_transient(&e) => {
                    tokio::time::sleep(RETRY_DELAY * attempt).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn rows_once(&self, query: Query) -> GraphResult<Vec<Row>> {
        // Dropping the transaction on an error returns its connection to the pool, which
        // resets it (rolling the transaction back) before reuse.
        let mut txn = self.graph.start_txn().await.map_err(backend_err)?;
        let mut stream = txn.execute(query).await.map_err(backend_err)?;
        let mut rows = Vec::new();
        while let Some(row) = stream.next(txn.handle()).await.map_err(backend_err)? {
            rows.push(row);
        }
        txn.commit().await.map_err(backend_err)?;
        Ok(rows)
    }

    /// Neo4j: the count a write query returns as its single `removed` column.
    async fn removed(&self, query: Query) -> GraphResult<u64> {
        let rows = self.rows(query).await?;
        let mut total = 0u64;
        for row in &rows {
            let n: i64 = row
                .get("removed")
                .map_err(|e| GraphError::Backend(format!("reading the removed count: {e}")))?;
            total += u64::try_from(n).unwrap_or(0);
        }
        Ok(total)
    }

    /// The map in the row's `props` column.
    fn props_of(row: &Row) -> GraphResult<BoltMap> {
        match row.get::<BoltType>("props") {
            Ok(BoltType::Map(map)) => Ok(map),
            Ok(other) => Err(GraphError::Backend(format!(
                "expected a map, got {other:?}"
            ))),
            Err(e) => Err(GraphError::Backend(format!("reading props: {e}"))),
        }
    }
}

/// How a property value travels to Neo4j; the same values FalkorDB stores.
pub(crate) fn to_bolt(value: PropertyValue) -> BoltType {
    match value {
        PropertyValue::Bool(b) => BoltType::Boolean(BoltBoolean::new(b)),
        PropertyValue::Int(i) => int(i),
        PropertyValue::Float(f) => BoltType::Float(BoltFloat::new(f)),
        PropertyValue::Str(s) | PropertyValue::Json(s) => string(s),
        PropertyValue::StrList(items) => list(items.into_iter().map(string)),
        PropertyValue::IntList(items) => ints(&items),
    }
}

/// A returned value as JSON: scalars, lists and maps; null for nodes, relationships,
/// paths, temporal and spatial values (as the FalkorDB backend does), and for
/// non-finite floats.
pub(crate) fn from_bolt(value: &BoltType) -> Value {
    match value {
        BoltType::Null(_) => Value::Null,
        BoltType::Boolean(b) => Value::Bool(b.value),
        BoltType::Integer(i) => Value::from(i.value),
        BoltType::Float(f) => Value::from(f.value),
        BoltType::String(s) => Value::String(s.value.clone()),
        BoltType::List(items) => Value::Array(items.value.iter().map(from_bolt).collect()),
        BoltType::Map(map) => Value::Object(
            map.value
                .iter()
                .map(|(k, v)| (k.value.clone(), from_bolt(v)))
                .collect(),
        ),
        _ => Value::Null,
    }
}

fn param(value: Param) -> BoltType {
    match value {
        Param::Str(s) => string(s),
        Param::Int(i) => int(i),
        Param::Bool(b) => BoltType::Boolean(BoltBoolean::new(b)),
        Param::Ints(items) => ints(&items),
        Param::Strs(items) => list(items.into_iter().map(string)),
    }
}

fn string(s: impl Into<String>) -> BoltType {
    BoltType::String(BoltString::from(s.into()))
}

fn int(i: i64) -> BoltType {
    BoltType::Integer(BoltInteger::new(i))
}

fn ints(items: &[i64]) -> BoltType {
    list(items.iter().copied().map(int))
}

fn list(items: impl Iterator<Item = BoltType>) -> BoltType {
    BoltType::List(BoltList::from(items.collect::<Vec<_>>()))
}

fn map(entries: impl IntoIterator<Item = (String, BoltType)>) -> BoltType {
    BoltType::Map(
        entries
            .into_iter()
            .map(|(k, v)| (BoltString::from(k), v))
            .collect(),
    )
}

/// Fixed fields plus the projected (non-secret, non-null) properties.
fn property_map(fixed: Vec<(&str, BoltType)>, properties: &BTreeMap<String, Value>) -> BoltType {
    map(fixed
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(projected_properties(properties).map(|(k, v)| (k, to_bolt(v)))))
}

fn node_row(env: &str, stamp: i64, node: &GraphNode) -> BoltType {
    let fixed = vec![
        ("env", string(env)),
        ("id", int(node.id)),
        ("entity_type", string(&node.entity_type)),
        ("name", string(&node.name)),
        ("label", string(&node.label)),
        (
            "is_active",
            BoltType::Boolean(BoltBoolean::new(node.is_active)),
        ),
        (RUN_FIELD, int(stamp)),
    ];
    map([
        ("id".to_string(), int(node.id)),
        ("props".to_string(), property_map(fixed, &node.properties)),
    ])
}

fn edge_row(env: &str, stamp: i64, edge: &GraphEdge) -> BoltType {
    let fixed = vec![
        ("env", string(env)),
        ("id", int(edge.id)),
        ("relation_type", string(&edge.relation_type)),
        ("source_id", int(edge.source_id)),
        ("target_id", int(edge.target_id)),
        (RUN_FIELD, int(stamp)),
    ];
    map([
        ("id".to_string(), int(edge.id)),
        ("source_id".to_string(), int(edge.source_id)),
        ("target_id".to_string(), int(edge.target_id)),
        ("props".to_string(), property_map(fixed, &edge.properties)),
    ])
}

/// Fixed fields and decoded properties of a graph property map.
fn split_properties(map: &BoltMap) -> (HashMap<&str, &BoltType>, BTreeMap<String, Value>) {
    let mut fixed = HashMap::new();
    let mut properties = BTreeMap::new();
    for (key, value) in &map.value {
        match decode_property_key(&key.value) {
            Some(decoded) => {
                properties.insert(decoded, from_bolt(value));
            }
            None => {
                fixed.insert(key.value.as_str(), value);
            }
        }
    }
    (fixed, properties)
}

fn get_str(fixed: &HashMap<&str, &BoltType>, key: &str) -> GraphResult<String> {
    match fixed.get(key) {
        Some(BoltType::String(s)) => Ok(s.value.clone()),
        other => Err(GraphError::Backend(format!(
            "graph item field {key}: expected a string, got {other:?}"
        ))),
    }
}

fn get_i64(fixed: &HashMap<&str, &BoltType>, key: &str) -> GraphResult<i64> {
    match fixed.get(key) {
        Some(BoltType::Integer(i)) => Ok(i.value),
        other => Err(GraphError::Backend(format!(
            "graph item field {key}: expected an integer, got {other:?}"
        ))),
    }
}

/// Whether a transient Neo4j error (`Neo.TransientError.*`: deadlock, lock timeout, ...),
/// worth retrying. Failures while streaming rows reach us as the driver's "unexpected
/// message" text, which includes the code.
fn is_transient(error: &GraphError) -> bool {
    matches!(error, GraphError::Backend(e) if e.contains("Neo.TransientError"))
}

/// Whether an `AlreadyExists` schema error: two processes creating the same constraint
/// at once, one of them loses (`IF NOT EXISTS` checks before it locks).
fn already_exists(error: &GraphError) -> bool {
    matches!(error, GraphError::Backend(e) if e.contains("AlreadyExists"))
}

impl GraphBackend for Neo4jBackend {
    async fn ensure_schema(&self) -> GraphResult<()> {
        for statement in SCHEMA {
            match self.run(neo4rs::query(statement)).await {
                // Lost a race with another creator: now it exists, and `IF NOT EXISTS`
                // succeeds; a real conflict fails again.
                Err(e) if already_exists(&e) => self.run(neo4rs::query(statement)).await?,
                result => result?,
            }
        }
        Ok(())
    }

    async fn upsert_nodes(&self, env: &str, stamp: i64, nodes: &[GraphNode]) -> GraphResult<()> {
        for (label, rows) in cypher::nodes_by_label(nodes, |node| node_row(env, stamp, node))? {
            // MERGE: the uniqueness constraint makes it safe against concurrent creators.
            self.run(
                neo4rs::query(&cypher::merge_nodes(&label))
                    .param("env", env)
                    .param("rows", list(rows.into_iter())),
            )
            .await?;
        }
        Ok(())
    }

    async fn upsert_edges(&self, env: &str, stamp: i64, edges: &[GraphEdge]) -> GraphResult<()> {
        for (rel_type, rows) in cypher::edges_by_type(edges, |edge| edge_row(env, stamp, edge))? {
            self.run(
                neo4rs::query(&cypher::merge_edges(&rel_type))
                    .param("env", env)
                    .param("rows", list(rows.into_iter())),
            )
            .await?;
        }
        Ok(())
    }

    async fn delete_nodes(&self, env: &str, ids: &[i64]) -> GraphResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        // Neo4j: counts its deletions, each node and relationship once (a relationship
        // between two deleted nodes, or a self-loop, is matched twice).
        let query = format!(
            "UNWIND $ids AS id MATCH (n:{ENTITY_LABEL} {{env: $env, id: id}}) \
             OPTIONAL MATCH (n)-[r]-() \
             WITH collect(DISTINCT n) AS nodes, collect(DISTINCT r) AS rels \
             FOREACH (x IN rels | DELETE x) \
             FOREACH (x IN nodes | DETACH DELETE x) \
             RETURN size(nodes) + size(rels) AS removed"
        );
        self.removed(
            neo4rs::query(&query)
                .param("env", env)
                .param("ids", ints(ids)),
        )
        .await
    }

    async fn delete_edges(&self, env: &str, edges: &[EdgeRef]) -> GraphResult<u64> {
        if edges.is_empty() {
            return Ok(0);
        }
        let rows = edges.iter().map(|edge| {
            map([
                ("id".to_string(), int(edge.id)),
                ("source_id".to_string(), int(edge.source_id)),
            ])
        });
        // Neo4j: counts its deletions, each relationship once.
        let query = format!(
            "UNWIND $rows AS row \
             MATCH (:{ENTITY_LABEL} {{env: $env, id: row.source_id}})-[r]->() \
             WHERE r.env = $env AND r.id = row.id \
             WITH DISTINCT r \
             DELETE r \
             RETURN count(r) AS removed"
        );
        self.removed(
            neo4rs::query(&query)
                .param("env", env)
                .param("rows", list(rows)),
        )
        .await
    }

    async fn sweep(&self, env: &str, stamp: i64) -> GraphResult<u64> {
        // Neo4j: as on FalkorDB, stale relationships first, then stale nodes with what
        // still hangs on them; each query counts its own deletions.
        let edges = format!(
            "MATCH (:{ENTITY_LABEL} {{env: $env}})-[r]->() \
             WHERE r.env = $env AND r.{RUN_FIELD} < $stamp \
             DELETE r \
             RETURN count(r) AS removed"
        );
        let nodes = format!(
            "MATCH (n:{ENTITY_LABEL} {{env: $env}}) WHERE n.{RUN_FIELD} < $stamp \
             OPTIONAL MATCH (n)-[r]-() \
             WITH collect(DISTINCT n) AS nodes, collect(DISTINCT r) AS rels \
             FOREACH (x IN rels | DELETE x) \
             FOREACH (x IN nodes | DETACH DELETE x) \
             RETURN size(nodes) + size(rels) AS removed"
        );
        let mut removed = 0;
        for query in [edges, nodes] {
            removed += self
                .removed(
                    neo4rs::query(&query)
                        .param("env", env)
                        .param("stamp", stamp),
                )
                .await?;
        }
        Ok(removed)
    }

    async fn nodes(&self, env: &str) -> GraphResult<Vec<GraphNode>> {
        let rows = self
            .rows(
                neo4rs::query(&format!(
                    "MATCH (n:{ENTITY_LABEL} {{env: $env}}) \
                     RETURN properties(n) AS props ORDER BY n.id"
                ))
                .param("env", env),
            )
            .await?;
        rows.iter()
            .map(|row| {
                let props = Self::props_of(row)?;
                let (fixed, properties) = split_properties(&props);
                Ok(GraphNode {
                    env: get_str(&fixed, "env")?,
                    id: get_i64(&fixed, "id")?,
                    entity_type: get_str(&fixed, "entity_type")?,
                    name: get_str(&fixed, "name")?,
                    label: get_str(&fixed, "label")?,
                    is_active: matches!(
                        fixed.get("is_active"),
                        Some(BoltType::Boolean(BoltBoolean { value: true }))
                    ),
                    properties,
                })
            })
            .collect()
    }

    async fn edges(&self, env: &str) -> GraphResult<Vec<GraphEdge>> {
        let rows = self
            .rows(
                neo4rs::query(&format!(
                    "MATCH (:{ENTITY_LABEL} {{env: $env}})-[r]->(:{ENTITY_LABEL} {{env: $env}}) \
                     WHERE r.env = $env RETURN properties(r) AS props ORDER BY r.id"
                ))
                .param("env", env),
            )
            .await?;
        rows.iter()
            .map(|row| {
                let props = Self::props_of(row)?;
                let (fixed, properties) = split_properties(&props);
                Ok(GraphEdge {
                    env: get_str(&fixed, "env")?,
                    id: get_i64(&fixed, "id")?,
                    relation_type: get_str(&fixed, "relation_type")?,
                    source_id: get_i64(&fixed, "source_id")?,
                    target_id: get_i64(&fixed, "target_id")?,
                    properties,
                })
            })
            .collect()
    }

    /// Neo4j: `neo4rs` 0.8 hands out rows as maps keyed by column name, without the
    /// column order; the order is read from the query's final `RETURN` clause, and checked
    /// against the names the server reported. A query whose order cannot be recovered
    /// that way (`RETURN *`, several unaliased columns written unusually) fails; alias
    /// every returned column (`RETURN expr AS name`) to be safe.
    async fn read(
        &self,
        cypher: &'static str,
        params: Vec<(&'static str, Param)>,
    ) -> GraphResult<Vec<Vec<Value>>> {
        let query = neo4rs::query(cypher)
            .params(params.into_iter().map(|(name, value)| (name, param(value))));
        let rows = self.rows(query).await?;
        let declared = return_columns(cypher);
        rows.iter()
            .map(|row| {
                let values: HashMap<String, BoltType> = row
                    .to_strict()
                    .map_err(|e| GraphError::Backend(format!("reading a row: {e}")))?;
                ordered(values, declared.as_deref())
                    .map(|values| values.iter().map(from_bolt).collect())
            })
            .collect()
    }
}

/// A row's values in the declared column order.
fn ordered(
    mut values: HashMap<String, BoltType>,
    declared: Option<&[String]>,
) -> GraphResult<Vec<BoltType>> {
    if values.len() == 1 {
        return Ok(values.into_values().collect());
    }
    let names: HashSet<&str> = values.keys().map(String::as_str).collect();
    match declared {
        Some(columns)
            if columns.len() == names.len()
                && columns.iter().all(|c| names.contains(c.as_str())) =>
        {
            Ok(columns
                .iter()
                .filter_map(|column| values.remove(column))
                .collect())
        }
        _ => Err(GraphError::Backend(format!(
            "cannot tell the column order of the Neo4j result (columns {names:?}, declared \
             {declared:?}): alias every returned column (RETURN expr AS name)"
        ))),
    }
}

/// The column names of the query's last top-level `RETURN`, in order: each item's alias
/// (`AS name`, backticks removed) or else its text as written (which is how Neo4j names an
/// unaliased column). `None` when there is no such clause or it is `RETURN *`.
pub(crate) fn return_columns(cypher: &str) -> Option<Vec<String>> {
    let tokens = top_level(cypher);
    let start = tokens
        .iter()
        .rposition(|t| t.is_keyword(cypher, "RETURN"))?;
    let mut items: Vec<(usize, usize)> = Vec::new();
    let mut item_start = tokens[start].end;
    let mut end = cypher.len();
    for token in &tokens[start + 1..] {
        if ["ORDER", "SKIP", "LIMIT", "OFFSET", "UNION"]
            .iter()
            .any(|k| token.is_keyword(cypher, k))
            || &cypher[token.start..token.end] == ";"
        {
            end = token.start;
            break;
        }
        if &cypher[token.start..token.end] == "," {
            items.push((item_start, token.start));
            item_start = token.end;
        }
    }
    items.push((item_start, end));
    let mut columns = Vec::with_capacity(items.len());
    for (i, (from, to)) in items.into_iter().enumerate() {
        let mut item = cypher[from..to].trim();
        if i == 0 {
            let first_word = item.split_whitespace().next().unwrap_or("");
            if first_word.eq_ignore_ascii_case("DISTINCT") {
                item = item[first_word.len()..].trim();
            }
        }
        if item.is_empty() || item == "*" {
            return None;
        }
        // `... AS name`: the item's last two tokens.
        let item_tokens: Vec<&Token> = tokens
            .iter()
            .filter(|t| t.start >= from && t.end <= to)
            .collect();
        let aliased = match item_tokens.as_slice() {
            [.., as_, name] if as_.is_keyword(cypher, "AS") => Some(*name),
            _ => None,
        };
        if aliased.is_none() && item_tokens.iter().any(|t| t.is_keyword(cypher, "AS")) {
            return None;
        }
        columns.push(match aliased {
            Some(name) => unquote(&cypher[name.start..name.end])?,
            None => item.to_string(),
        });
    }
    Some(columns)
}

/// `name` or `` `quoted name` `` as the name it denotes.
fn unquote(alias: &str) -> Option<String> {
    if let Some(inner) = alias.strip_prefix('`').and_then(|a| a.strip_suffix('`')) {
        return Some(inner.replace("``", "`"));
    }
    let is_word = !alias.is_empty()
        && alias
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '$');
    is_word.then(|| alias.to_string())
}

/// A token outside strings, comments and brackets: a word or a single punctuation mark.
#[derive(Debug, Clone, Copy)]
struct Token {
    start: usize,
    end: usize,
}

impl Token {
    fn is_keyword(&self, text: &str, keyword: &str) -> bool {
        text[self.start..self.end].eq_ignore_ascii_case(keyword)
    }
}

/// The top-level tokens of `cypher` (depth 0 of `()`, `[]`, `{}`), skipping string
/// literals, quoted names, comments and property names after a dot.
fn top_level(cypher: &str) -> Vec<Token> {
    let chars: Vec<(usize, char)> = cypher.char_indices().collect();
    let at = |i: usize| chars.get(i).map(|&(_, c)| c);
    let offset = |i: usize| chars.get(i).map_or(cypher.len(), |&(o, _)| o);
    let mut tokens = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(c) = at(i) {
        match c {
            '\'' | '"' => {
                // String literal with backslash escapes.
                i += 1;
                while let Some(d) = at(i) {
                    i += 1;
                    if d == '\\' {
                        i += 1;
                    } else if d == c {
                        break;
                    }
                }
            }
            '`' => {
                // Quoted name; a doubled backtick is a backtick.
                let start = i;
                i += 1;
                loop {
                    match at(i) {
                        None => break,
                        Some('`') if at(i + 1) == Some('`') => i += 2,
                        Some('`') => {
                            i += 1;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
                if depth == 0 {
                    tokens.push(Token {
                        start: offset(start),
                        end: offset(i),
                    });
                }
            }
            '/' if at(i + 1) == Some('/') => {
                while at(i).is_some_and(|d| d != '\n') {
                    i += 1;
                }
            }
            '/' if at(i + 1) == Some('*') => {
                i += 2;
                while at(i).is_some() && !(at(i) == Some('*') && at(i + 1) == Some('/')) {
                    i += 1;
                }
                i += 2;
            }
            '(' | '[' | '{' => {
                depth += 1;
                i += 1;
            }
            ')' | ']' | '}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            c if c.is_alphanumeric() || c == '_' || c == '$' => {
                let start = i;
                while at(i).is_some_and(|d| d.is_alphanumeric() || d == '_' || d == '$') {
                    i += 1;
                }
                let after_dot = start > 0 && at(start - 1) == Some('.');
                if depth == 0 && !after_dot {
                    tokens.push(Token {
                        start: offset(start),
                        end: offset(i),
                    });
                }
            }
            c if c.is_whitespace() => i += 1,
            _ => {
                if depth == 0 {
                    tokens.push(Token {
                        start: offset(i),
                        end: offset(i + 1),
                    });
                }
                i += 1;
            }
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;
    use neo4rs::BoltNull;
    use serde_json::json;

    #[test]
    fn property_values_map_to_the_bolt_types_falkordb_gets() {
        let cases = [
            (json!(true), BoltType::Boolean(BoltBoolean::new(true))),
            (json!(-7), int(-7)),
            (json!(1.5), BoltType::Float(BoltFloat::new(1.5))),
            (json!("it's `x`"), string("it's `x`")),
            (
                json!(["vote", "chair"]),
                list([string("vote"), string("chair")].into_iter()),
            ),
            (json!([1, 2]), list([int(1), int(2)].into_iter())),
            (json!([]), list(std::iter::empty())),
            (json!([1, "a"]), string("[1,\"a\"]")),
            (json!({"a": null}), string("{\"a\":null}")),
            (json!(u64::MAX), string(u64::MAX.to_string())),
        ];
        for (value, bolt) in cases {
            let stored = to_bolt(PropertyValue::of(&value).unwrap());
            assert_eq!(stored, bolt, "{value}");
            // What comes back is what `PropertyValue::projected` promises.
            assert_eq!(
                Some(from_bolt(&stored)),
                PropertyValue::projected(&value),
                "{value}"
            );
        }
    }

    #[test]
    fn returned_values_become_json() {
        let nested = map([
            ("n".to_string(), BoltType::Null(BoltNull)),
            ("l".to_string(), list([int(1), string("x")].into_iter())),
        ]);
        assert_eq!(from_bolt(&nested), json!({"n": null, "l": [1, "x"]}));
        assert_eq!(
            from_bolt(&BoltType::Float(BoltFloat::new(f64::NAN))),
            Value::Null
        );
        assert_eq!(
            param(Param::Strs(vec!["a".into()])),
            list([string("a")].into_iter())
        );
        assert_eq!(param(Param::Ints(vec![])), list(std::iter::empty()));
    }

    #[test]
    fn return_columns_follow_the_final_return() {
        let cols = return_columns;
        let names = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            cols("MATCH (n) RETURN n.id AS id, [x IN n.l | x] AS l, {a: 1, b: 2} AS m"),
            names(&["id", "l", "m"])
        );
        assert_eq!(
            cols("MATCH (n) return distinct n.id, count(*) order by n.id limit 3"),
            names(&["n.id", "count(*)"])
        );
        assert_eq!(
            cols(
                "CALL { MATCH (n) RETURN n AS inner } WITH inner RETURN 'a, b' AS `odd ``name`, 2 AS two"
            ),
            names(&["odd `name", "two"])
        );
        assert_eq!(
            cols("MATCH (n) // RETURN x AS y\nRETURN n.return AS r /* , 2 AS z */ SKIP 1"),
            names(&["r"])
        );
        assert_eq!(cols("RETURN 1 AS a UNION RETURN 2 AS a"), names(&["a"]));
        assert_eq!(cols("MATCH (n) RETURN *"), None);
        assert_eq!(cols("MATCH (n) DELETE n"), None);
        assert_eq!(cols("RETURN 1 AS a b"), None);
    }

    #[test]
    fn rows_are_ordered_by_the_declared_columns() {
        let row = HashMap::from([
            ("b".to_string(), int(2)),
            ("a".to_string(), int(1)),
            ("c".to_string(), int(3)),
        ]);
        let declared = ["c", "a", "b"].map(String::from);
        assert_eq!(
            ordered(row.clone(), Some(&declared)).unwrap(),
            vec![int(3), int(1), int(2)]
        );
        assert!(ordered(row.clone(), Some(&declared[..2])).is_err());
        assert!(ordered(row, None).is_err());
        let single = HashMap::from([("anything".to_string(), int(1))]);
        assert_eq!(ordered(single, None).unwrap(), vec![int(1)]);
    }

    #[test]
    fn credentials_come_from_the_uri_or_the_settings_and_stay_hidden() {
        let settings = Credentials {
            username: Some("ahlt".into()),
            password: Some("s3cret/:@".into()),
        };
        let target = Target::resolve("bolt://graph:7687", &settings).unwrap();
        assert_eq!(target.uri, "bolt://graph:7687");
        assert_eq!(target.username, "ahlt");
        assert_eq!(target.password, "s3cret/:@");
        assert!(!format!("{target:?}").contains("s3cret"));

        // The URI's own userinfo wins, percent-decoded, and leaves the URI.
        let target = Target::resolve("neo4j+s://u%40x:p%2Fw@graph", &settings).unwrap();
        assert_eq!(
            (
                target.uri.as_str(),
                target.username.as_str(),
                target.password.as_str()
            ),
            ("neo4j+s://graph", "u@x", "p/w")
        );

        // A username alone in the URI, the password from the settings.
        let password_only = Credentials {
            username: None,
            password: Some("pw".into()),
        };
        let target = Target::resolve("bolt://me@graph:7687", &password_only).unwrap();
        assert_eq!(
            (target.username.as_str(), target.password.as_str()),
            ("me", "pw")
        );

        // Defaults: user neo4j, empty password.
        let target = Target::resolve("bolt+ssc://graph", &Credentials::default()).unwrap();
        assert_eq!(
            (target.username.as_str(), target.password.as_str()),
            ("neo4j", "")
        );

        let err = Target::resolve("falkor://u:hunter2@graph", &settings).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = Target::resolve("bolt://u:hunter2@graph:%", &settings).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[tokio::test]
    async fn an_unreachable_server_fails_fast_without_the_password() {
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        let started = std::time::Instant::now();
        let err = Neo4jBackend::connect(
            "bolt://neo4j:hunter2@127.0.0.1:1",
            &Credentials {
                username: Some("other".into()),
                password: Some("s3cret".into()),
            },
        )
        .await
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("connecting to Neo4j at bolt://127.0.0.1:1"),
            "{text}"
        );
        assert!(
            !text.contains("hunter2") && !text.contains("s3cret"),
            "{text}"
        );
        assert!(
            started.elapsed() < CONNECT_TIMEOUT,
            "{:?}",
            started.elapsed()
        );
    }
}
