//! Operational endpoints and middleware: probes, metrics, request ids and request logs.

use std::sync::Arc;

use ahlt::auth::session::SessionKey;
use ahlt::config::AppConfig;
use ahlt::db;
use ahlt::http::metrics::{self, Metrics};
use ahlt::http::{AppState, router};
use ahlt::test_app::TestApp;
use ahlt::testing::TestDatabase;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use serde_json::Value;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tower::ServiceExt;

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    Reply {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

async fn get_path(app: &Router, path: &str) -> Reply {
    send(app, Request::get(path).body(Body::empty()).unwrap()).await
}

fn app_on(pool: PgPool) -> Router {
    router(
        AppState::new(pool, AppConfig::for_tests()),
        &SessionKey::random(),
    )
}

/// A pool to a port nothing listens on: the database is gone.
fn unreachable_pool() -> PgPool {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect_lazy(&format!("postgres://ahlt@127.0.0.1:{port}/ahlt"))
        .unwrap()
}

#[tokio::test]
async fn healthz_is_ok_even_when_the_database_is_gone() {
    let app = app_on(unreachable_pool());
    let reply = get_path(&app, "/healthz").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), serde_json::json!({"status": "ok"}));
}

#[tokio::test]
async fn readyz_is_unavailable_when_the_database_is_unreachable() {
    let app = app_on(unreachable_pool());
    let reply = get_path(&app, "/readyz").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["status"], "not ready");
    let reason = reply.json()["reason"].as_str().unwrap().to_owned();
    assert!(reason.starts_with("database unreachable"), "{reason}");
}

#[tokio::test]
async fn readyz_says_behind_until_migrated_then_ready() {
    let db = TestDatabase::create().await;
    let app = app_on(db.pool().clone());

    let before = get_path(&app, "/readyz").await;
    assert_eq!(before.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(before.json()["status"], "not ready");
    let reason = before.json()["reason"].as_str().unwrap().to_owned();
    assert!(
        reason.contains("behind") && reason.contains("ahlt migrate"),
        "{reason}"
    );

    db::migrate(db.pool()).await.unwrap();
    let after = get_path(&app, "/readyz").await;
    assert_eq!(after.status, StatusCode::OK);
    assert_eq!(
        after.json(),
        serde_json::json!({"status": "ready", "schema": "current"})
    );
}

#[tokio::test]
async fn readyz_says_ahead_when_the_database_is_newer_than_the_binary() {
    let db = TestDatabase::create().await;
    db::migrate(db.pool()).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99991231000000, 'from a newer ahlt', TRUE, '\\x00'::bytea, 0)",
    )
    .execute(db.pool())
    .await
    .unwrap();
    let reply = get_path(&app_on(db.pool().clone()), "/readyz").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    let reason = reply.json()["reason"].as_str().unwrap().to_owned();
    assert!(reason.contains("ahead"), "{reason}");
}

#[tokio::test]
async fn probes_and_scrapes_never_create_sessions() {
    let app = TestApp::new().await;
    for path in ["/healthz", "/readyz", "/metrics"] {
        let reply = get_path(&app.router, path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert!(
            reply.headers.get(header::SET_COOKIE).is_none(),
            "{path} set a cookie"
        );
    }
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(sessions, 0);
}

#[tokio::test]
async fn metrics_count_requests_by_matched_route_never_by_raw_path() {
    let app = TestApp::new().await;
    assert_eq!(
        get_path(&app.router, "/healthz").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get_path(&app.router, "/no/such/page/424242").await.status,
        StatusCode::NOT_FOUND
    );

    let scrape = get_path(&app.router, "/metrics").await;
    assert_eq!(scrape.status, StatusCode::OK);
    assert!(
        scrape
            .body
            .contains(r#"ahlt_http_requests_total{method="GET",route="/healthz",status="200"} 1"#),
        "{}",
        scrape.body
    );
    assert!(
        scrape
            .body
            .contains(r#"ahlt_http_requests_total{method="GET",route="unmatched",status="404"} 1"#),
        "{}",
        scrape.body
    );
    assert!(!scrape.body.contains("424242"), "{}", scrape.body);
    assert!(
        scrape.body.contains(
            r#"ahlt_http_request_duration_seconds_count{method="GET",route="/healthz"} 1"#
        ),
        "{}",
        scrape.body
    );
}

#[tokio::test]
async fn route_labels_are_templates_with_their_parameters() {
    let metrics = Arc::new(Metrics::new());
    let app: Router = Router::new()
        .route("/things/{id}", get(|| async { "thing" }))
        .layer(axum::middleware::from_fn_with_state(
            metrics.clone(),
            metrics::track,
        ));
    assert_eq!(get_path(&app, "/things/4711").await.status, StatusCode::OK);
    assert_eq!(get_path(&app, "/things/4712").await.status, StatusCode::OK);

    let body = metrics.encode().unwrap();
    assert!(
        body.contains(
            r#"ahlt_http_requests_total{method="GET",route="/things/{id}",status="200"} 2"#
        ),
        "{body}"
    );
    assert!(!body.contains("4711") && !body.contains("4712"), "{body}");
}

#[tokio::test]
async fn metrics_expose_pool_gauges_and_build_info() {
    let app = TestApp::new().await;
    let scrape = get_path(&app.router, "/metrics").await;
    assert_eq!(scrape.status, StatusCode::OK);
    assert!(
        scrape.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
    );
    for line in [
        "# TYPE ahlt_db_pool_connections gauge",
        "# TYPE ahlt_db_pool_idle_connections gauge",
        "ahlt_db_pool_max_connections 5",
        &format!(
            r#"ahlt_build_info{{version="{}"}} 1"#,
            env!("CARGO_PKG_VERSION")
        ),
    ] {
        assert!(scrape.body.contains(line), "{line} in {}", scrape.body);
    }
}

#[tokio::test]
async fn every_response_carries_a_generated_request_id() {
    let app = app_on(unreachable_pool());
    let first = get_path(&app, "/healthz").await;
    let second = get_path(&app, "/no/such/page").await;
    let id = |reply: &Reply| reply.headers["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id(&first).len(), 36, "a UUID: {}", id(&first));
    assert_eq!(id(&second).len(), 36, "a UUID: {}", id(&second));
    assert_ne!(id(&first), id(&second));
}

#[tokio::test]
async fn a_request_id_sent_by_the_client_is_propagated() {
    let app = app_on(unreachable_pool());
    let reply = send(
        &app,
        Request::get("/healthz")
            .header("x-request-id", "from-the-ingress-123")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(reply.headers["x-request-id"], "from-the-ingress-123");
}

/// The pool does not ping before each use (a round trip per query): a connection the server
/// dropped fails one request with 503 (never 500), is discarded, and the next request runs on
/// a fresh one.
#[tokio::test]
async fn a_dropped_database_connection_costs_one_503_then_recovers() {
    let test_app = TestApp::new().await;
    let pool = db::connect(test_app.db.url(), 1).await.unwrap();
    let app = app_on(pool.clone());
    let admin = ahlt::domain::users::find_by_username(test_app.pool(), "admin")
        .await
        .unwrap()
        .unwrap();
    let (_, token) = ahlt::auth::tokens::create(test_app.pool(), admin.id, "ops")
        .await
        .unwrap();
    let me = || {
        Request::get("/api/v1/users/me")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(send(&app, me()).await.status, StatusCode::OK);

    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let terminated: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(test_app.pool())
        .await
        .unwrap();
    assert!(terminated);

    let after_drop = send(&app, me()).await;
    assert!(
        after_drop.status == StatusCode::OK || after_drop.status == StatusCode::SERVICE_UNAVAILABLE,
        "{} {}",
        after_drop.status,
        after_drop.body
    );
    if after_drop.status == StatusCode::SERVICE_UNAVAILABLE {
        assert_eq!(after_drop.json()["error"]["code"], "unavailable");
    }
    assert_eq!(send(&app, me()).await.status, StatusCode::OK);
}
