//! The graph projection: its state, and an on-demand full resync (`graph.manage`).

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::json;

use crate::domain::audit;
use crate::domain::perm;
use crate::graph::{GraphError, ResyncReport};
use crate::http::AppState;
use crate::http::error::{AppError, AppResult};
use crate::http::extract::{ApiJson, CurrentUser};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/graph", get(status))
        .route("/graph/resync", post(resync))
}

#[derive(Debug, Serialize)]
struct GraphStatus {
    /// A graph server is configured (GRAPH_URI).
    configured: bool,
    env: String,
    connected: bool,
    /// Reads use the graph (otherwise PostgreSQL).
    current: bool,
    /// Some change may be missing until the next resync.
    stale: bool,
    /// Changes waiting to be written.
    queued: usize,
    resync_due: bool,
}

async fn status(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<ApiJson<GraphStatus>> {
    user.require(perm::GRAPH_MANAGE)?;
    let env = state.config.env_name.clone();
    Ok(ApiJson(match &state.graph {
        None => GraphStatus {
            configured: false,
            env,
            connected: false,
            current: false,
            stale: false,
            queued: 0,
            resync_due: false,
        },
        Some(graph) => {
            let (queued, resync_due) = graph.pending();
            GraphStatus {
                configured: true,
                env,
                connected: graph.backend().is_some(),
                current: graph.current().is_some(),
                stale: graph.is_stale(),
                queued,
                resync_due,
            }
        }
    }))
}

#[derive(Debug, Serialize)]
struct ResyncResult {
    env: String,
    nodes: u64,
    edges: u64,
    removed: u64,
    duration_ms: u64,
}

impl ResyncResult {
    fn new(env: &str, report: &ResyncReport) -> Self {
        ResyncResult {
            env: env.to_string(),
            nodes: report.nodes,
            edges: report.edges,
            removed: report.removed,
            duration_ms: report.duration.as_millis() as u64,
        }
    }
}

/// Runs a full resync now and answers with its counts; 409 while another resync of this
/// environment runs (in this or any other process).
async fn resync(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<ApiJson<ResyncResult>> {
    user.require(perm::GRAPH_MANAGE)?;
    let Some(graph) = state.graph.clone() else {
        return Err(AppError::Conflict(
            "no graph is configured for this environment (GRAPH_URI)".into(),
        ));
    };
    // A resync cancelled halfway (client gone, request timeout) is harmless: nothing is
    // swept before everything is rewritten, and the advisory lock dies with its connection.
    let report = match graph.try_resync(&state.db).await {
        Ok(report) => report,
        Err(GraphError::ResyncInProgress(_)) => {
            return Err(AppError::Conflict(
                "another resync of this environment is running; try again when it has finished"
                    .into(),
            ));
        }
        Err(GraphError::Database(e)) => return Err(AppError::internal(e)),
        Err(e) => {
            tracing::warn!(error = %e, "graph resync requested over the API failed");
            return Err(AppError::Unavailable(format!("graph resync failed: {e}")));
        }
    };
    let result = ResyncResult::new(&state.config.env_name, &report);
    let mut conn = state.db.acquire().await.map_err(AppError::internal)?;
    audit::record(
        &mut conn,
        &user.actor(),
        "graph.resync",
        None,
        json!({"nodes": result.nodes, "edges": result.edges, "removed": result.removed}),
    )
    .await?;
    Ok(ApiJson(result))
}
