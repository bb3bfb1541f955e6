//! The governance map: every ToR with its cadence, functions and holders and the caller's
//! capabilities on it, and the dependencies between ToRs; also as a node/edge graph.
//!
//! One JSON shape whether it is read from the graph projection or from PostgreSQL; the
//! interactive map (`/static/governance-map.js`) draws `GET /api/v1/governance`.

use std::collections::BTreeSet;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Serialize;

use crate::domain::dependencies::Dependency;
use crate::domain::governance::{GovernanceGraph, GovernanceMap, GovernanceTor};
use crate::domain::{Capability, perm};
use crate::http::AppState;
use crate::http::error::AppResult;
use crate::http::extract::{ApiJson, CurrentUser};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/governance", get(map))
        .route("/governance/graph", get(graph))
}

#[derive(Debug, Serialize)]
pub struct MapTor {
    #[serde(flatten)]
    pub tor: GovernanceTor,
    /// What the caller may do on this ToR (from roles and positions).
    pub my_capabilities: BTreeSet<Capability>,
}

#[derive(Debug, Serialize)]
pub struct MapAnswer {
    pub tors: Vec<MapTor>,
    pub dependencies: Vec<Dependency>,
}

/// The map with the caller's capabilities on each ToR.
pub async fn with_capabilities(
    state: &AppState,
    user: &CurrentUser,
    map: GovernanceMap,
) -> AppResult<MapAnswer> {
    let grants = state
        .access
        .grants(&state.db, state.graph.as_ref(), user.id)
        .await?;
    let tors = map
        .tors
        .into_iter()
        .map(|tor| {
            let my_capabilities = grants
                .iter()
                .filter(|g| g.tor_id.is_none_or(|t| t == tor.tor.id))
                .map(|g| g.capability)
                .collect();
            MapTor {
                tor,
                my_capabilities,
            }
        })
        .collect();
    Ok(MapAnswer {
        tors,
        dependencies: map.dependencies,
    })
}

async fn map(State(state): State<AppState>, user: CurrentUser) -> AppResult<ApiJson<MapAnswer>> {
    user.require(perm::TORS_VIEW)?;
    let map = GovernanceMap::clone(
        &*state
            .access
            .governance_map(&state.db, state.graph.as_ref())
            .await?,
    );
    Ok(ApiJson(with_capabilities(&state, &user, map).await?))
}

async fn graph(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<ApiJson<GovernanceGraph>> {
    user.require(perm::TORS_VIEW)?;
    Ok(ApiJson(
        state
            .access
            .governance_map(&state.db, state.graph.as_ref())
            .await?
            .graph(),
    ))
}
