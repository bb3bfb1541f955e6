//! The HTTP surface: state, router, middleware and the server loop.

pub mod api;
pub mod error;
pub mod extract;
pub mod input;
pub mod metrics;
pub mod ops;
pub mod pages;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Request, Response, header};
use sqlx::PgPool;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::{
    SetSensitiveRequestHeadersLayer, SetSensitiveResponseHeadersLayer,
};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::auth::{csrf, session};
use crate::config::AppConfig;

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub config: Arc<AppConfig>,
    pub metrics: Arc<metrics::Metrics>,
    /// The graph projection, when GRAPH_URI is set; reads fall back to Postgres while it
    /// is not current.
    pub graph: Option<crate::graph::Projection>,
    /// Credentials and permissions; bypassed until its listener runs.
    pub access: Arc<crate::auth::access::AccessCache>,
    /// Single-entity reads, coalesced under load.
    pub entity_reads: Arc<crate::store::EntityReads>,
}

impl AppState {
    pub fn new(db: PgPool, config: AppConfig) -> Self {
        let metrics = Self::metrics(&db, None);
        AppState {
            config: Arc::new(config),
            metrics: Arc::new(metrics),
            graph: None,
            access: crate::auth::access::AccessCache::new(),
            entity_reads: Arc::new(crate::store::EntityReads::new(db.clone())),
            db,
        }
    }

    /// This state with graph-backed reads from `projection`.
    pub fn with_graph(mut self, projection: crate::graph::Projection) -> Self {
        self.metrics = Arc::new(Self::metrics(&self.db, Some(&projection)));
        self.graph = Some(projection);
        self
    }

    fn metrics(db: &PgPool, graph: Option<&crate::graph::Projection>) -> metrics::Metrics {
        let mut metrics = metrics::Metrics::new();
        metrics.register_pool(db.clone());
        if let Some(graph) = graph {
            graph.metrics().register(&mut metrics.registry);
        }
        metrics
    }
}

/// No inline script or style, no framing, forms post only to this site.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Headers whose values must never reach a log line.
const SENSITIVE_HEADERS: [HeaderName; 4] = [
    header::AUTHORIZATION,
    header::COOKIE,
    header::PROXY_AUTHORIZATION,
    HeaderName::from_static("x-csrf-token"),
];

/// The whole application: pages, API v1 and ops endpoints, with sessions, CSRF checks,
/// request ids, tracing, metrics, timeouts and security headers.
pub fn router(state: AppState, session_key: &session::SessionKey) -> Router {
    let session_layer = session::layer(state.db.clone(), session_key, state.config.cookie_secure);
    let app = Router::new()
        .merge(pages::router())
        .nest("/api/v1", api::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            csrf::verify,
        ))
        // Oversized bodies and unstorable text are refused before anything reads them.
        .layer(axum::middleware::from_fn(input::guard))
        // Every HTML error page in the full layout, with the user's navigation.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            pages::errors::with_navigation,
        ))
        .layer(session_layer)
        // Outside CSRF and sessions: a write that a layer refused changed nothing, but
        // emptying the cache once more is harmless.
        .layer(axum::middleware::from_fn_with_state(
            state.access.clone(),
            crate::auth::access::invalidate_after_writes,
        ));
    let metrics = state.metrics.clone();
    // Ops endpoints sit outside the session layer: probes and scrapes never create sessions.
    // `Router::layer` wraps each route, so these layers run after routing and see `MatchedPath`.
    Router::new()
        .merge(app)
        .merge(ops::router())
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(SetSensitiveRequestHeadersLayer::new(SENSITIVE_HEADERS))
                .layer(SetSensitiveResponseHeadersLayer::new([header::SET_COOKIE]))
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_span)
                        .on_response(log_response),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(axum::middleware::from_fn_with_state(
                    metrics,
                    metrics::track,
                ))
                // Inside the metrics layer, so panics and timeouts are counted as 500 and 504.
                .layer(CatchPanicLayer::new())
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
                ))
                // Pages need nothing inline and nothing from elsewhere.
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(CONTENT_SECURITY_POLICY),
                )),
        )
}

/// One span per request with its id and route template, so every log line of the request
/// carries them. The query string is left out: it may hold tokens.
fn request_span<B>(request: &Request<B>) -> Span {
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %request.method(),
        route = %metrics::route_of(request),
        path = %request.uri().path(),
        request_id = %request_id,
    )
}

fn log_response<B>(response: &Response<B>, latency: Duration, _span: &Span) {
    tracing::info!(
        status = response.status().as_u16(),
        latency_ms = (latency.as_secs_f64() * 1e6).round() / 1e3,
        "request finished"
    );
}
