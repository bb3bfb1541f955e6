//! The governance map: every ToR with its functions and holders, as a tree or as a graph.

use axum::Router;
use axum::extract::State;
use axum::routing::get;

use crate::domain::governance::{self, GovernanceGraph, GovernanceMap};
use crate::domain::perm;
use crate::http::AppState;
use crate::http::error::AppResult;
use crate::http::extract::{ApiJson, CurrentUser};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/governance", get(map))
        .route("/governance/graph", get(graph))
}

async fn map(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<ApiJson<GovernanceMap>> {
    user.require(perm::TORS_VIEW)?;
    Ok(ApiJson(
        governance::map(&state.db, state.graph.as_ref()).await?,
    ))
}

async fn graph(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<ApiJson<GovernanceGraph>> {
    user.require(perm::TORS_VIEW)?;
    Ok(ApiJson(
        governance::map(&state.db, state.graph.as_ref())
            .await?
            .graph(),
    ))
}
