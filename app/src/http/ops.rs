//! Operational endpoints: `/healthz` (process alive, no database), `/readyz` (database
//! reachable and schema current), `/metrics` (Prometheus text format).
//!
//! The JSON bodies are a stable contract for probes and humans:
//! `{"status": "ok"}`, `{"status": "ready", "schema": "current"}` and
//! `{"status": "not ready", "reason": "..."}`.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::AppState;
use crate::db;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// Liveness: answering at all is the signal. Never touches the database, so a database
/// outage makes pods unready, not restarted.
async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

/// A probe gets an answer within this, even when the pool keeps retrying a dead database.
const READINESS_DEADLINE: Duration = Duration::from_secs(3);

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let checked = tokio::time::timeout(READINESS_DEADLINE, db::schema_status(&state.db)).await;
    let reason = match checked {
        Ok(Ok(status)) if status.is_current() => {
            return (
                StatusCode::OK,
                axum::Json(json!({"status": "ready", "schema": "current"})),
            );
        }
        Ok(Ok(status)) => status.to_string(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check cannot reach the database");
            format!("database unreachable: {e}")
        }
        Err(_) => {
            tracing::warn!("readiness check timed out waiting for the database");
            format!(
                "database unreachable: no answer within {}s",
                READINESS_DEADLINE.as_secs()
            )
        }
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(json!({"status": "not ready", "reason": reason})),
    )
}

async fn metrics(State(state): State<AppState>) -> Response {
    match state.metrics.encode() {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
