//! The HTTP surface: state, router, middleware and the server loop.

pub mod api;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod ops;
pub mod pages;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use sqlx::PgPool;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::auth::{csrf, session};
use crate::config::AppConfig;

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub config: Arc<AppConfig>,
    pub metrics: Arc<metrics::Metrics>,
}

impl AppState {
    pub fn new(db: PgPool, config: AppConfig) -> Self {
        AppState {
            db,
            config: Arc::new(config),
            metrics: Arc::new(metrics::Metrics::new()),
        }
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application: pages, API v1 and ops endpoints, with sessions, CSRF checks,
/// request ids, tracing, timeouts and security headers.
pub fn router(state: AppState, session_key: &session::SessionKey) -> Router {
    let session_layer = session::layer(state.db.clone(), session_key, state.config.cookie_secure);
    let app = Router::new()
        .merge(pages::router())
        .nest("/api/v1", api::router())
        .layer(axum::middleware::from_fn(csrf::verify))
        .layer(session_layer);
    Router::new()
        .merge(app)
        .merge(ops::router())
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(TraceLayer::new_for_http())
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(TimeoutLayer::with_status_code(
                    axum::http::StatusCode::GATEWAY_TIMEOUT,
                    Duration::from_secs(30),
                ))
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ))
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::X_FRAME_OPTIONS,
                    HeaderValue::from_static("DENY"),
                ))
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("same-origin"),
                )),
        )
}
