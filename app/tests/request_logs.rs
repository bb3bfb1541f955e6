//! Request logs: one JSON line per request with its id and matched route, never cookies,
//! tokens or query strings. A test binary of its own: tracing's global level and interest
//! caches are rebuilt racily when other threads register call sites while a test installs
//! its subscriber, so no other test may run in this process.

use std::io::Write;
use std::sync::{Arc, Mutex};

use ahlt::auth::session::SessionKey;
use ahlt::config::{AppConfig, LogFormat};
use ahlt::http::{AppState, router};
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use serde_json::Value;
use sqlx::postgres::PgPoolOptions;
use tower::ServiceExt;

/// Collects log output in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn request_logs_carry_the_request_id_and_route_but_no_cookies() {
    let captured = Captured::default();
    let subscriber = ahlt::telemetry::subscriber(
        LogFormat::Json,
        tracing_subscriber::EnvFilter::new("info"),
        false,
        captured.clone(),
    );
    // Everything below runs on this thread (current-thread runtime, oneshot router).
    let _guard = tracing::subscriber::set_default(subscriber);
    // A pool to a port nothing listens on: /healthz does not need the database.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let pool = PgPoolOptions::new()
        .connect_lazy(&format!("postgres://ahlt@127.0.0.1:{port}/ahlt"))
        .unwrap();
    let app = router(
        AppState::new(pool, AppConfig::for_tests()),
        &SessionKey::random(),
    );
    let response = app
        .oneshot(
            Request::get("/healthz?token=query-secret")
                .header("x-request-id", "trace-me-42")
                .header(header::COOKIE, "ahlt_session=cookie-secret")
                .header(header::AUTHORIZATION, "Bearer bearer-secret")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    to_bytes(response.into_body(), usize::MAX).await.unwrap();

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let finished: Value = logs
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["message"] == "request finished")
        .unwrap_or_else(|| panic!("no request log in {logs}"));
    assert_eq!(finished["status"], 200);
    assert_eq!(finished["span"]["request_id"], "trace-me-42");
    assert_eq!(finished["span"]["route"], "/healthz");
    assert_eq!(finished["span"]["method"], "GET");
    for secret in ["query-secret", "cookie-secret", "bearer-secret"] {
        assert!(!logs.contains(secret), "{secret} leaked into {logs}");
    }
}
