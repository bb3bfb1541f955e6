//! The backend chosen by the graph URI's scheme.

use serde_json::Value;

use super::{
    EdgeRef, FalkorBackend, GraphBackend, GraphEdge, GraphError, GraphNode, GraphResult,
    NEO4J_SCHEMES, Neo4jBackend, NodeIds, Param,
};

/// One of the supported graph servers, picked by [`Backend::connect`].
#[derive(Debug, Clone)]
pub enum Backend {
    Falkor(FalkorBackend),
    Neo4j(Neo4jBackend),
}

/// The kind of server a graph URI names, by its scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Falkor,
    Neo4j,
}

fn kind_of(uri: &str) -> Option<Kind> {
    let (scheme, _) = uri.split_once("://")?;
    match scheme {
        "falkor" | "falkors" => Some(Kind::Falkor),
        scheme if NEO4J_SCHEMES.contains(&scheme) => Some(Kind::Neo4j),
        _ => None,
    }
}

/// Credentials given apart from the URI (GRAPH_USERNAME / GRAPH_PASSWORD).
#[derive(Clone, Default)]
pub struct Credentials {
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Backend {
    /// Connects to `uri`: `falkor://` or `falkors://` (FalkorDB, `graph_name` selects the
    /// graph key), or `bolt://`, `bolt+s://`, `bolt+ssc://`, `neo4j://`, `neo4j+s://`,
    /// `neo4j+ssc://` (Neo4j: the server's default database, `graph_name` is ignored; see
    /// [`Neo4jBackend`]). Credentials in the URI win over `credentials`. A Neo4j server is
    /// asked to answer at once, so an unreachable one fails here.
    pub async fn connect(
        uri: &str,
        graph_name: &str,
        credentials: &Credentials,
    ) -> GraphResult<Backend> {
        match kind_of(uri) {
            Some(Kind::Falkor) => Ok(Backend::Falkor(
                FalkorBackend::connect(&with_credentials(uri, credentials)?, graph_name).await?,
            )),
            Some(Kind::Neo4j) => Ok(Backend::Neo4j(
                Neo4jBackend::connect(uri, credentials).await?,
            )),
            None => Err(GraphError::UnsupportedUri(redact(uri))),
        }
    }
}

/// `uri` with `credentials` as its userinfo, unless it already has one.
pub(super) fn with_credentials(uri: &str, credentials: &Credentials) -> GraphResult<String> {
    let Some(password) = &credentials.password else {
        return Ok(uri.to_string());
    };
    let mut url = url::Url::parse(uri)
        .map_err(|e| GraphError::UnsupportedUri(format!("{}: {e}", redact(uri))))?;
    if url.password().is_none() {
        let bad = |_| GraphError::UnsupportedUri(redact(uri));
        url.set_username(credentials.username.as_deref().unwrap_or("default"))
            .map_err(bad)?;
        url.set_password(Some(password)).map_err(bad)?;
    }
    Ok(url.to_string())
}

/// The URI without its userinfo, for error messages and logs.
pub fn redact(uri: &str) -> String {
    match url::Url::parse(uri) {
        Ok(mut url) if url.password().is_some() || !url.username().is_empty() => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string()
        }
        Ok(_) => uri.to_string(),
        Err(_) => "<unparseable URI>".to_string(),
    }
}

macro_rules! dispatch {
    ($self:ident, $backend:ident => $call:expr) => {
        match $self {
            Backend::Falkor($backend) => $call,
            Backend::Neo4j($backend) => $call,
        }
    };
}

impl GraphBackend for Backend {
    async fn ensure_schema(&self) -> GraphResult<()> {
        dispatch!(self, b => b.ensure_schema().await)
    }

    async fn upsert_nodes(&self, env: &str, stamp: i64, nodes: &[GraphNode]) -> GraphResult<()> {
        dispatch!(self, b => b.upsert_nodes(env, stamp, nodes).await)
    }

    async fn upsert_edges(&self, env: &str, stamp: i64, edges: &[GraphEdge]) -> GraphResult<()> {
        dispatch!(self, b => b.upsert_edges(env, stamp, edges).await)
    }

    async fn locate_nodes(&self, env: &str) -> GraphResult<NodeIds> {
        dispatch!(self, b => b.locate_nodes(env).await)
    }

    async fn resync_nodes(
        &self,
        env: &str,
        stamp: i64,
        nodes: &[GraphNode],
        located: &mut NodeIds,
    ) -> GraphResult<()> {
        dispatch!(self, b => b.resync_nodes(env, stamp, nodes, located).await)
    }

    async fn resync_edges(
        &self,
        env: &str,
        stamp: i64,
        edges: &[GraphEdge],
        located: &NodeIds,
    ) -> GraphResult<()> {
        dispatch!(self, b => b.resync_edges(env, stamp, edges, located).await)
    }

    async fn delete_nodes(&self, env: &str, ids: &[i64]) -> GraphResult<u64> {
        dispatch!(self, b => b.delete_nodes(env, ids).await)
    }

    async fn delete_edges(&self, env: &str, edges: &[EdgeRef]) -> GraphResult<u64> {
        dispatch!(self, b => b.delete_edges(env, edges).await)
    }

    async fn sweep(&self, env: &str, stamp: i64) -> GraphResult<u64> {
        dispatch!(self, b => b.sweep(env, stamp).await)
    }

    async fn nodes(&self, env: &str) -> GraphResult<Vec<GraphNode>> {
        dispatch!(self, b => b.nodes(env).await)
    }

    async fn edges(&self, env: &str) -> GraphResult<Vec<GraphEdge>> {
        dispatch!(self, b => b.edges(env).await)
    }

    async fn read(
        &self,
        cypher: &'static str,
        params: Vec<(&'static str, Param)>,
    ) -> GraphResult<Vec<Vec<Value>>> {
        dispatch!(self, b => b.read(cypher, params).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_join_the_uri_and_never_its_redaction() {
        let creds = Credentials {
            username: Some("ahlt".into()),
            password: Some("s3cret/:@".into()),
        };
        let joined = with_credentials("falkor://graph:6379", &creds).unwrap();
        assert_eq!(joined, "falkor://ahlt:s3cret%2F%3A%40@graph:6379");
        assert_eq!(redact(&joined), "falkor://graph:6379");
        // A URI with its own credentials keeps them.
        let own = with_credentials("falkor://u:p@graph:6379", &creds).unwrap();
        assert_eq!(own, "falkor://u:p@graph:6379");
        assert!(!format!("{creds:?}").contains("s3cret"));
    }

    #[test]
    fn schemes_pick_the_backend() {
        for uri in ["falkor://graph:6379", "falkors://u:p@graph:6380"] {
            assert_eq!(kind_of(uri), Some(Kind::Falkor), "{uri}");
        }
        for uri in [
            "bolt://graph:7687",
            "bolt+s://graph",
            "bolt+ssc://u:p@graph",
            "neo4j://graph",
            "neo4j+s://graph:7687",
            "neo4j+ssc://graph",
        ] {
            assert_eq!(kind_of(uri), Some(Kind::Neo4j), "{uri}");
        }
        for uri in [
            "http://graph",
            "redis://graph",
            "bolt+x://graph",
            "graph:7687",
            "",
        ] {
            assert_eq!(kind_of(uri), None, "{uri}");
        }
    }

    #[tokio::test]
    async fn an_unreachable_neo4j_fails_at_connect_without_the_password() {
        let creds = Credentials {
            username: Some("neo4j".into()),
            password: Some("s3cret".into()),
        };
        for uri in ["bolt://127.0.0.1:1", "neo4j://u:hunter2@127.0.0.1:1"] {
            let err = Backend::connect(uri, "ahlt", &creds).await.unwrap_err();
            let text = err.to_string();
            assert!(text.contains("127.0.0.1:1"), "{text}");
            assert!(
                !text.contains("s3cret") && !text.contains("hunter2"),
                "{text}"
            );
            assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
        }
    }

    #[tokio::test]
    async fn unknown_schemes_are_rejected_without_their_credentials() {
        let err = Backend::connect("http://user:pw@graph:80", "ahlt", &Credentials::default())
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("unsupported graph URI"), "{text}");
        assert!(!text.contains("pw"), "{text}");
    }
}
