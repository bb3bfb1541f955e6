//! An in-process app over a fresh migrated database, and a client that keeps the session
//! cookie and CSRF token like a browser does. Compiled with the `testing` feature.

use axum::Router;
use axum::body::{Body, Bytes, to_bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use serde::Serialize;
use serde_json::Value;
use tower::ServiceExt;

use crate::auth::session::SessionKey;
use crate::config::AppConfig;
use crate::http::{AppState, router};
use crate::testing::TestDatabase;
use crate::{db, seed};

pub const ADMIN_PASSWORD: &str = "admin-test-password";

pub struct TestApp {
    pub db: TestDatabase,
    pub state: AppState,
    pub router: Router,
    pub session_key: SessionKey,
}

impl TestApp {
    /// Migrated and base-seeded; `admin` has [`ADMIN_PASSWORD`].
    pub async fn new() -> Self {
        Self::with_config(AppConfig::for_tests()).await
    }

    pub async fn with_config(config: AppConfig) -> Self {
        let db = TestDatabase::create().await;
        db::migrate(db.pool()).await.expect("migrate");
        seed::base(db.pool(), Some(ADMIN_PASSWORD))
            .await
            .expect("base seed");
        let state = AppState::new(db.pool().clone(), config);
        let session_key = SessionKey::random();
        let router = router(state.clone(), &session_key);
        TestApp {
            db,
            state,
            router,
            session_key,
        }
    }

    /// With the demo ToRs and users too; returns the demo users' password.
    pub async fn with_demo() -> (Self, String) {
        let app = Self::new().await;
        let report = seed::demo(app.db.pool()).await.expect("demo seed");
        (
            app,
            report.generated_admin_password.expect("demo users created"),
        )
    }

    /// The same app with graph-backed reads and the graph endpoints on `projection`.
    pub fn with_graph(mut self, projection: crate::graph::Projection) -> Self {
        self.state = self.state.with_graph(projection);
        self.router = router(self.state.clone(), &self.session_key);
        self
    }

    /// Starts the access cache's listener (as `ahlt serve` does) and waits until the cache
    /// answers; without it every request reads credentials and permissions from the database.
    /// The listener stops when the returned sender is dropped or sends `true`.
    pub async fn with_access_cache(&self) -> tokio::sync::watch::Sender<bool> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        self.state
            .access
            .spawn_listener(self.pool().clone(), stop_rx);
        self.state.access.wait_active().await;
        stop_tx
    }

    pub fn pool(&self) -> &sqlx::PgPool {
        self.db.pool()
    }

    /// Another app process on the same database (a restart or a second replica).
    pub fn replica(&self, session_key: &SessionKey) -> Router {
        router(self.state.clone(), session_key)
    }

    /// Serves this app over real HTTP on a free 127.0.0.1 port (for a browser or a raw
    /// HTTP client), with the client address available like `ahlt serve` has it.
    pub async fn serve(self) -> TestServer {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("binding a loopback port");
        let address = listener.local_addr().expect("local address");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let service = self
            .router
            .clone()
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, service)
                .with_graceful_shutdown(async move {
                    let _ = stop_rx.await;
                })
                .await;
        });
        TestServer {
            app: self,
            base_url: format!("http://{address}"),
            stop: Some(stop_tx),
            task,
        }
    }

    pub fn client(&self) -> TestClient {
        TestClient {
            router: self.router.clone(),
            cookie: None,
            csrf: None,
            bearer: None,
        }
    }
}

/// A [`TestApp`] served over HTTP on loopback; stops serving on drop.
pub struct TestServer {
    pub app: TestApp,
    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub base_url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// `base_url` + `path` (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The stable error code of a JSON error body.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {}", self.text()))
            .to_owned()
    }

    pub fn location(&self) -> Option<&str> {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
    }
}

/// An urlencoded form body with the CSRF field first (built outside any `async` block: the
/// serializer is not `Send`, so the futures stay spawnable).
fn form_body(csrf: &str, fields: &[(&str, &str)]) -> Vec<u8> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair(crate::auth::csrf::FORM_FIELD, csrf);
    for (k, v) in fields {
        form.append_pair(k, v);
    }
    form.finish().into_bytes()
}

/// Keeps the session cookie and the CSRF token between requests.
#[derive(Clone)]
pub struct TestClient {
    router: Router,
    cookie: Option<String>,
    csrf: Option<String>,
    bearer: Option<String>,
}

impl TestClient {
    /// Authenticates every request with a bearer token instead of the cookie.
    pub fn with_bearer(mut self, token: &str) -> Self {
        self.bearer = Some(token.to_owned());
        self
    }

    /// The same browser (cookie, CSRF token) talking to another app process.
    pub fn with_router(mut self, router: Router) -> Self {
        self.router = router;
        self
    }

    pub fn csrf_token(&self) -> Option<&str> {
        self.csrf.as_deref()
    }

    /// The session's CSRF token, fetched first if this client has none yet.
    pub async fn csrf_token_or_fetch(&mut self) -> String {
        if self.csrf.is_none() {
            self.fetch_csrf().await;
        }
        self.csrf.clone().unwrap_or_default()
    }

    /// Sends a request; state-changing requests carry the CSRF token unless `csrf` is false.
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
        csrf: bool,
    ) -> TestResponse {
        if csrf && method != Method::GET && self.csrf.is_none() && self.bearer.is_none() {
            self.fetch_csrf().await;
        }
        self.send(method, path, body, csrf).await
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
        csrf: bool,
    ) -> TestResponse {
        let mut builder = Request::builder().method(method.clone()).uri(path);
        if let Some(cookie) = &self.cookie {
            builder = builder.header(header::COOKIE, cookie);
        }
        if let Some(token) = &self.bearer {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if csrf
            && method != Method::GET
            && let Some(t) = &self.csrf
        {
            builder = builder.header("x-csrf-token", t);
        }
        let request = match body {
            Some((content_type, bytes)) => builder
                .header(header::CONTENT_TYPE, content_type)
                .body(Body::from(bytes)),
            None => builder.body(Body::empty()),
        }
        .expect("valid request");
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible router");
        if let Some(set) = response
            .headers()
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
        {
            let pair = set.split(';').next().unwrap_or_default().to_owned();
            // An expired cookie (logout) clears the session.
            if set.contains("Max-Age=0") {
                self.cookie = None
            } else {
                self.cookie = Some(pair)
            }
        }
        let status = response.status();
        let headers = response.headers().clone();
        let body = to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        TestResponse {
            status,
            headers,
            body,
        }
    }

    async fn fetch_csrf(&mut self) {
        let response = self.send(Method::GET, "/api/v1/session", None, false).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "GET /api/v1/session: {}",
            response.text()
        );
        self.csrf = response.json()["csrf_token"].as_str().map(str::to_owned);
    }

    pub async fn get(&mut self, path: &str) -> TestResponse {
        self.request(Method::GET, path, None, false).await
    }

    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> TestResponse {
        if self.csrf.is_none() {
            self.fetch_csrf().await;
        }
        let body = form_body(self.csrf.as_deref().unwrap_or_default(), fields);
        self.request(
            Method::POST,
            path,
            Some(("application/x-www-form-urlencoded", body)),
            false,
        )
        .await
    }

    pub async fn send_json(
        &mut self,
        method: Method,
        path: &str,
        body: &impl Serialize,
    ) -> TestResponse {
        let bytes = serde_json::to_vec(body).expect("serialisable");
        self.request(method, path, Some(("application/json", bytes)), true)
            .await
    }

    pub async fn post_json(&mut self, path: &str, body: &impl Serialize) -> TestResponse {
        self.send_json(Method::POST, path, body).await
    }

    pub async fn delete(&mut self, path: &str) -> TestResponse {
        self.request(Method::DELETE, path, None, true).await
    }

    /// Logs in through the login form; the CSRF token is refreshed because login rotates the session.
    pub async fn login(&mut self, username: &str, password: &str) -> TestResponse {
        let response = self
            .post_form("/login", &[("username", username), ("password", password)])
            .await;
        self.csrf = None;
        response
    }
}
