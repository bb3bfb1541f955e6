//! Projection of the EAV store into a property graph (FalkorDB or Neo4j).
//!
//! Postgres is the source of truth; the graph is a namespaced copy of it. Every node
//! and relationship carries the environment name (`env`, from `AHLT_ENV_NAME`) and is
//! always matched by `(env, id)`, so environments sharing one graph server never touch
//! each other's data. Labels and relationship types are built only from validated
//! identifiers ([`node_label`], [`relationship_type`]); property keys and values only
//! ever travel as query parameters.
//!
//! Every written item carries a stamp (`sync_run`, microseconds on the Postgres server's
//! clock when its state was read). A resync stamps everything with its start time and then
//! sweeps items stamped earlier, so live changes written meanwhile survive the sweep.

mod backend;
pub mod bench;
mod check;
mod cypher;
mod falkor;
mod falkor_resync;
mod falkor_shape;
pub mod metrics;
mod model;
mod neo4j;
mod projection;
pub mod queries;
mod resync;
pub mod sync;

use std::future::Future;

use serde_json::Value;

pub use backend::{Backend, Credentials, redact};
pub use check::{CheckReport, Difference, Field, Item, check};
pub use falkor::{DEFAULT_GRAPH_NAME, FalkorBackend};
pub use model::{
    ENTITY_LABEL, EdgeRef, GraphEdge, GraphNode, PropertyValue, decode_property_key,
    encode_property_key, is_secret, node_label, projected_properties, relationship_type,
};
pub use neo4j::{NEO4J_SCHEMES, Neo4jBackend};
pub use projection::{Change, DEFAULT_QUEUE_CAPACITY, Notification, Projection};
pub use resync::{IfBusy, ResyncReport, resync};

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("graph backend: {0}")]
    Backend(String),
    #[error("invalid graph identifier {0:?}")]
    InvalidIdent(String),
    #[error(
        "unsupported graph URI {0:?} (expected bolt://, neo4j:// (Neo4j) or falkor:// (FalkorDB))"
    )]
    UnsupportedUri(String),
    #[error("another resync of environment {0:?} is running")]
    ResyncInProgress(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

pub type GraphResult<T> = Result<T, GraphError>;

/// Where a resync knows an environment's nodes to be ([`GraphBackend::locate_nodes`]):
/// the backend's internal node id by entity id (read through `Deref`), and which of those
/// nodes the resync itself created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeIds {
    ids: std::collections::HashMap<i64, i64>,
    /// Entities whose nodes this resync created. Other writers of the environment wait
    /// for a resync ([`resync`]), so no relationship can touch these nodes yet: theirs are
    /// created without looking for one first.
    pub created: std::collections::HashSet<i64>,
}

impl NodeIds {
    pub fn new() -> Self {
        Self::default()
    }
}

impl std::ops::Deref for NodeIds {
    type Target = std::collections::HashMap<i64, i64>;

    fn deref(&self) -> &Self::Target {
        &self.ids
    }
}

impl std::ops::DerefMut for NodeIds {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.ids
    }
}

impl FromIterator<(i64, i64)> for NodeIds {
    fn from_iter<I: IntoIterator<Item = (i64, i64)>>(iter: I) -> Self {
        NodeIds {
            ids: iter.into_iter().collect(),
            created: Default::default(),
        }
    }
}

/// A parameter of a read query ([`GraphBackend::read`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Str(String),
    Int(i64),
    Bool(bool),
    Ints(Vec<i64>),
    Strs(Vec<String>),
}

/// A graph database holding projections of one or more environments.
///
/// Every method acts on the given environment only. `stamp` is the Postgres clock
/// (microseconds since the epoch) at the moment the written state was read.
pub trait GraphBackend: Send + Sync {
    /// Creates the indexes the other methods rely on (idempotent).
    fn ensure_schema(&self) -> impl Future<Output = GraphResult<()>> + Send;

    /// Creates or replaces nodes (labels and all properties), stamping them.
    fn upsert_nodes(
        &self,
        env: &str,
        stamp: i64,
        nodes: &[GraphNode],
    ) -> impl Future<Output = GraphResult<()>> + Send;

    /// Creates or replaces relationships between existing nodes, stamping them.
    fn upsert_edges(
        &self,
        env: &str,
        stamp: i64,
        edges: &[GraphEdge],
    ) -> impl Future<Output = GraphResult<()>> + Send;

    /// Where this environment's nodes are, for a resync: the backend's internal node id by
    /// entity id. Backends that match by `(env, id)` only return an empty map.
    fn locate_nodes(&self, env: &str) -> impl Future<Output = GraphResult<NodeIds>> + Send {
        let _ = env;
        std::future::ready(Ok(NodeIds::new()))
    }

    /// [`Self::upsert_nodes`] for a resync: may use and must extend `located` with where
    /// each written node is, or mark it `created` (default: ignores it). Runs only while
    /// the resync excludes the environment's other writers: a node `located` does not
    /// hold may be created without looking for it.
    fn resync_nodes(
        &self,
        env: &str,
        stamp: i64,
        nodes: &[GraphNode],
        located: &mut NodeIds,
    ) -> impl Future<Output = GraphResult<()>> + Send {
        let _ = located;
        self.upsert_nodes(env, stamp, nodes)
    }

    /// [`Self::upsert_edges`] for a resync, which may find the endpoints by `located`
    /// (default: ignores it). A located id is a hint: the node there must still be the
    /// entity's, or the endpoint is matched by `(env, id)`. A relationship with an endpoint
    /// in `located.created` may be created without looking for it.
    fn resync_edges(
        &self,
        env: &str,
        stamp: i64,
        edges: &[GraphEdge],
        located: &NodeIds,
    ) -> impl Future<Output = GraphResult<()>> + Send {
        let _ = located;
        self.upsert_edges(env, stamp, edges)
    }

    /// Deletes the nodes with these ids (and their relationships); returns how many
    /// items were removed.
    fn delete_nodes(&self, env: &str, ids: &[i64])
    -> impl Future<Output = GraphResult<u64>> + Send;

    /// Deletes these relationships; returns how many were removed.
    fn delete_edges(
        &self,
        env: &str,
        edges: &[EdgeRef],
    ) -> impl Future<Output = GraphResult<u64>> + Send;

    /// Deletes this environment's nodes and relationships stamped before `stamp`;
    /// returns how many items were removed.
    fn sweep(&self, env: &str, stamp: i64) -> impl Future<Output = GraphResult<u64>> + Send;

    /// Every node of the environment, ordered by id.
    fn nodes(&self, env: &str) -> impl Future<Output = GraphResult<Vec<GraphNode>>> + Send;

    /// Every relationship of the environment, ordered by id.
    fn edges(&self, env: &str) -> impl Future<Output = GraphResult<Vec<GraphEdge>>> + Send;

    /// Runs a read-only query written in the Cypher both backends understand and returns
    /// its rows (scalars, lists and maps as JSON). The query text must be a constant;
    /// everything variable travels in `params`. Alias every returned column
    /// (`RETURN expr AS name`): Neo4j's driver gives rows as maps, and the column order is
    /// recovered from the final `RETURN` clause.
    fn read(
        &self,
        cypher: &'static str,
        params: Vec<(&'static str, Param)>,
    ) -> impl Future<Output = GraphResult<Vec<Vec<Value>>>> + Send;
}
