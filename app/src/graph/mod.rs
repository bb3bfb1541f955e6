//! Projection of the EAV store into a property graph (FalkorDB now, Neo4j later).
//!
//! Postgres is the source of truth; the graph is a namespaced copy of it. Every node
//! and relationship carries the environment name (`env`, from `AHLT_ENV_NAME`) and is
//! always matched by `(env, id)`, so environments sharing one graph server never touch
//! each other's data. Labels and relationship types are built only from validated
//! identifiers ([`node_label`], [`relationship_type`]); property keys and values only
//! ever travel as query parameters.

mod falkor;
mod model;
mod resync;

use std::future::Future;

pub use falkor::{DEFAULT_GRAPH_NAME, FalkorBackend};
pub use model::{
    ENTITY_LABEL, GraphEdge, GraphNode, decode_property_key, encode_property_key, is_secret,
    node_label, relationship_type,
};
pub use resync::{ResyncReport, resync};

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("graph backend: {0}")]
    Backend(String),
    #[error("invalid graph identifier {0:?}")]
    InvalidIdent(String),
    #[error("unsupported graph URI {0:?} (expected falkor://host:port)")]
    UnsupportedUri(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

pub type GraphResult<T> = Result<T, GraphError>;

/// A graph database holding projections of one or more environments.
///
/// Every method acts on the given environment only.
pub trait GraphBackend: Send + Sync {
    /// Creates the indexes the other methods rely on (idempotent).
    fn ensure_schema(&self) -> impl Future<Output = GraphResult<()>> + Send;

    /// Creates or replaces nodes (labels and all properties), stamping them with `run`.
    fn upsert_nodes(
        &self,
        env: &str,
        run: &str,
        nodes: &[GraphNode],
    ) -> impl Future<Output = GraphResult<()>> + Send;

    /// Creates or replaces relationships between existing nodes, stamping them with `run`.
    fn upsert_edges(
        &self,
        env: &str,
        run: &str,
        edges: &[GraphEdge],
    ) -> impl Future<Output = GraphResult<()>> + Send;

    /// Deletes this environment's nodes and relationships not stamped with `run`;
    /// returns how many items were removed.
    fn sweep(&self, env: &str, run: &str) -> impl Future<Output = GraphResult<u64>> + Send;

    /// Every node of the environment, ordered by id.
    fn nodes(&self, env: &str) -> impl Future<Output = GraphResult<Vec<GraphNode>>> + Send;

    /// Every relationship of the environment, ordered by id.
    fn edges(&self, env: &str) -> impl Future<Output = GraphResult<Vec<GraphEdge>>> + Send;
}
