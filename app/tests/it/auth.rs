//! Authentication flows: login, logout, CSRF, rate limiting, redirects and session lifetime.

use ahlt::auth::session::SessionKey;
use ahlt::config::{AppConfig, LoginLimits};
use ahlt::domain::audit::Actor;
use ahlt::domain::users::{self, NewUser, UserUpdate};
use ahlt::test_app::{ADMIN_PASSWORD, TestApp, TestClient, TestResponse};
use axum::body::{Body, to_bytes};
use axum::http::{Method, Request, StatusCode, header};
use tower::ServiceExt;

const PASSWORD: &str = "a-long-enough-password";

async fn create_user(app: &TestApp, username: &str, roles: &[&str]) -> i64 {
    let mut tx = app.pool().begin().await.unwrap();
    let user = users::create(
        &mut tx,
        &Actor::system(),
        &NewUser {
            username: username.into(),
            display_name: username.to_uppercase(),
            password: PASSWORD.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    user.id
}

async fn session_user(client: &mut TestClient) -> Option<String> {
    let r = client.get("/api/v1/session").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["user"]["username"].as_str().map(str::to_owned)
}

fn retry_after(r: &TestResponse) -> u64 {
    r.headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After in {:?}", r.headers))
}

/// The error message shown on a re-rendered form.
fn alert(r: &TestResponse) -> String {
    let text = r.text();
    let start = text
        .find(r#"role="alert">"#)
        .unwrap_or_else(|| panic!("no alert in {text}"));
    let rest = &text[start + r#"role="alert">"#.len()..];
    rest[..rest.find("</div>").unwrap()].trim().to_owned()
}

fn form_body(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        form.append_pair(k, v);
    }
    form.finish().into_bytes()
}

async fn failures_recorded(app: &TestApp, username: &str) -> (i64, i64) {
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE NOT succeeded), count(*) FILTER (WHERE succeeded) \
         FROM login_attempts WHERE username = $1",
    )
    .bind(username)
    .fetch_one(app.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn logging_in_with_the_right_password_starts_an_authenticated_session() {
    let app = TestApp::new().await;
    let mut client = app.client();
    assert_eq!(session_user(&mut client).await, None);

    let r = client.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(r.location(), Some("/"));
    assert_eq!(session_user(&mut client).await.as_deref(), Some("admin"));

    let home = client.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(
        home.text().contains("Welcome, Administrator"),
        "{}",
        home.text()
    );
    assert_eq!(failures_recorded(&app, "admin").await, (0, 1));
}

#[tokio::test]
async fn a_wrong_password_is_refused_with_401_and_leaves_the_visitor_logged_out() {
    let app = TestApp::new().await;
    let mut client = app.client();
    let r = client.login("admin", "not-the-password").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.text().contains("invalid username or password"),
        "{}",
        r.text()
    );
    assert_eq!(session_user(&mut client).await, None);
    assert_eq!(failures_recorded(&app, "admin").await, (1, 0));
}

#[tokio::test]
async fn an_unknown_user_gets_the_same_response_as_a_wrong_password() {
    let app = TestApp::new().await;
    let wrong_password = app.client().login("admin", "not-the-password").await;
    let unknown_user = app.client().login("nobody", "not-the-password").await;
    assert_eq!(unknown_user.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown_user.status, wrong_password.status);
    assert_eq!(alert(&unknown_user), alert(&wrong_password));
    assert_eq!(failures_recorded(&app, "nobody").await, (1, 0));
}

#[tokio::test]
async fn an_inactive_user_cannot_log_in_even_with_the_right_password() {
    let app = TestApp::new().await;
    let id = create_user(&app, "dormant", &["viewer"]).await;
    let mut tx = app.pool().begin().await.unwrap();
    let change = UserUpdate {
        is_active: Some(false),
        ..Default::default()
    };
    users::update(&mut tx, &Actor::system(), id, &change)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut client = app.client();
    let r = client.login("dormant", PASSWORD).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.text().contains("invalid username or password"));
    assert_eq!(session_user(&mut client).await, None);
}

/// A refused form from another site (no same-origin `Origin`): a plain 403 HTML page, no offer
/// to send it again.
#[track_caller]
fn assert_csrf_page(r: &ahlt::test_app::TestResponse) {
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        r.text().contains("CSRF token missing or invalid"),
        "{}",
        r.text()
    );
    assert!(!r.text().contains("Send again"), "{}", r.text());
}

#[tokio::test]
async fn state_changing_forms_without_the_right_csrf_token_are_refused() {
    let app = TestApp::new().await;
    let mut client = app.client();
    client.get("/login").await;
    let form = "application/x-www-form-urlencoded";
    let login = form_body(&[("username", "admin"), ("password", ADMIN_PASSWORD)]);

    let missing = client
        .request(Method::POST, "/login", Some((form, login.clone())), false)
        .await;
    assert_csrf_page(&missing);

    let mut wrong = login.clone();
    wrong.extend_from_slice(b"&_csrf=forged-token");
    let r = client
        .request(Method::POST, "/login", Some((form, wrong)), false)
        .await;
    assert_csrf_page(&r);
    assert_eq!(session_user(&mut client).await, None);

    assert_eq!(
        client.login("admin", ADMIN_PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    let new_user = form_body(&[
        ("username", "mallory"),
        ("password", PASSWORD),
        ("_csrf", "forged-token"),
    ]);
    let r = client
        .request(Method::POST, "/users", Some((form, new_user)), false)
        .await;
    assert_csrf_page(&r);
    assert!(
        users::find_by_username(app.pool(), "mallory")
            .await
            .unwrap()
            .is_none()
    );

    let r = client
        .request(Method::POST, "/logout", Some((form, form_body(&[]))), false)
        .await;
    assert_csrf_page(&r);
    assert_eq!(session_user(&mut client).await.as_deref(), Some("admin"));
}

#[tokio::test]
async fn after_too_many_failures_for_a_username_even_the_right_password_is_refused() {
    let app = TestApp::new().await;
    let limit = LoginLimits::default().max_failures_per_username;
    for _ in 0..limit {
        let r = app.client().login("Admin", "not-the-password").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let mut client = app.client();
    let r = client.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    let secs = retry_after(&r);
    assert!(secs >= 1 && secs <= LoginLimits::default().window.whole_seconds() as u64);
    assert!(r.text().contains("too many attempts"), "{}", r.text());
    assert_eq!(session_user(&mut client).await, None);
}

#[tokio::test]
async fn after_too_many_failures_from_one_address_every_username_is_refused() {
    let limits = LoginLimits {
        max_failures_per_username: 100,
        max_failures_per_ip: 3,
        ..LoginLimits::default()
    };
    let app = TestApp::with_config(AppConfig {
        login_limits: limits,
        ..AppConfig::for_tests()
    })
    .await;
    for name in ["alice", "bob", "carol"] {
        let r = app.client().login(name, "guess-guess-guess").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = app.client().login("admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&r) >= 1);
}

/// A browser-like request through `router`, with an explicit X-Forwarded-For.
async fn login_from(
    router: &axum::Router,
    forwarded_for: &str,
    username: &str,
    password: &str,
) -> StatusCode {
    let session = router
        .clone()
        .oneshot(Request::get("/api/v1/session").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let cookie = session.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let body = to_bytes(session.into_body(), usize::MAX).await.unwrap();
    let token = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let request = Request::post("/login")
        .header(header::COOKIE, cookie)
        .header("x-forwarded-for", forwarded_for)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form_body(&[
            ("_csrf", &token),
            ("username", username),
            ("password", password),
        ])))
        .unwrap();
    router.clone().oneshot(request).await.unwrap().status()
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_what_gets_limited() {
    let app = TestApp::with_config(AppConfig {
        trust_forwarded_for: true,
        login_limits: LoginLimits {
            max_failures_per_username: 100,
            max_failures_per_ip: 2,
            ..LoginLimits::default()
        },
        ..AppConfig::for_tests()
    })
    .await;
    for name in ["alice", "bob"] {
        let status = login_from(&app.router, "203.0.113.1, 10.0.0.1", name, "guess-guess").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let blocked = login_from(&app.router, "203.0.113.1", "admin", ADMIN_PASSWORD).await;
    assert_eq!(blocked, StatusCode::TOO_MANY_REQUESTS);
    let other = login_from(&app.router, "203.0.113.2", "admin", ADMIN_PASSWORD).await;
    assert_eq!(other, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn failures_older_than_the_window_do_not_count() {
    let app = TestApp::new().await;
    sqlx::query(
        "INSERT INTO login_attempts (attempted_at, username, client_ip, succeeded) \
         SELECT now() - interval '16 minutes' - n * interval '1 minute', 'admin', 'unknown', false \
         FROM generate_series(1, 30) AS n",
    )
    .execute(app.pool())
    .await
    .unwrap();
    let mut client = app.client();
    let r = client.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(session_user(&mut client).await.as_deref(), Some("admin"));
}

#[tokio::test]
async fn a_successful_login_does_not_wipe_the_failure_history() {
    let app = TestApp::new().await;
    let limit = LoginLimits::default().max_failures_per_username;
    for _ in 0..limit - 1 {
        app.client().login("admin", "not-the-password").await;
    }
    assert_eq!(
        app.client().login("admin", ADMIN_PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    app.client().login("admin", "not-the-password").await;
    let r = app.client().login("admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn next_is_followed_only_to_paths_on_this_site() {
    let app = TestApp::new().await;
    let mut client = app.client();
    let form = client.get("/login?next=//evil.example").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(!form.text().contains("evil.example"), "{}", form.text());

    let r = client
        .post_form(
            "/login",
            &[
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
                ("next", "//evil.example"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/"));

    let mut client = app.client();
    let r = client
        .post_form(
            "/login",
            &[
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
                ("next", "/users?x=1"),
            ],
        )
        .await;
    assert_eq!(r.location(), Some("/users?x=1"));
}

#[tokio::test]
async fn an_anonymous_visitor_is_sent_to_login_and_brought_back() {
    let app = TestApp::new().await;
    let mut client = app.client();
    let r = client.get("/users").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/login?next=%2Fusers"));
    let form = client.get("/login?next=%2Fusers").await;
    assert!(
        form.text().contains(r#"name="next" value="/users""#),
        "{}",
        form.text()
    );
}

#[tokio::test]
async fn logout_ends_the_session_and_the_old_cookie_no_longer_works() {
    let app = TestApp::new().await;
    let mut client = app.client();
    client.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(session_user(&mut client).await.as_deref(), Some("admin"));
    let mut stolen = client.clone();

    let r = client.post_form("/logout", &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/login"));
    assert_eq!(session_user(&mut client).await, None);

    assert_eq!(session_user(&mut stolen).await, None);
    let r = stolen.get("/users").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_session_survives_a_restart_with_the_same_key_but_not_with_another() {
    let app = TestApp::new().await;
    let mut client = app.client();
    client.login("admin", ADMIN_PASSWORD).await;

    let mut restarted = client.clone().with_router(app.replica(&app.session_key));
    assert_eq!(session_user(&mut restarted).await.as_deref(), Some("admin"));

    let mut rekeyed = client.with_router(app.replica(&SessionKey::random()));
    assert_eq!(session_user(&mut rekeyed).await, None);
}

#[tokio::test]
async fn logins_are_audited_without_the_password() {
    let app = TestApp::new().await;
    app.client().login("admin", "wrong-secret-123").await;
    app.client().login("admin", ADMIN_PASSWORD).await;
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, details::text FROM audit_log WHERE action LIKE 'auth.%' ORDER BY id",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    let actions: Vec<&str> = rows.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(actions, ["auth.login_failed", "auth.login"]);
    for (_, details) in &rows {
        assert!(!details.contains("wrong-secret-123") && !details.contains(ADMIN_PASSWORD));
    }
    assert!(rows[0].1.contains("bad_password"));
}

/// A token in steady use is recorded once a minute, not on every request: an authenticated
/// read writes nothing else.
#[tokio::test]
async fn token_reads_record_the_last_use_at_most_once_a_minute() {
    let app = TestApp::new().await;
    let user = create_user(&app, "reader", &["viewer"]).await;
    let (token, secret) = ahlt::auth::tokens::create(app.pool(), user, "ci")
        .await
        .unwrap();
    let last_used = || async {
        sqlx::query_scalar::<_, Option<time::OffsetDateTime>>(
            "SELECT last_used_at FROM api_tokens WHERE id = $1",
        )
        .bind(token.id)
        .fetch_one(app.pool())
        .await
        .unwrap()
    };
    assert_eq!(last_used().await, None);
    let mut client = app.client().with_bearer(&secret);
    assert_eq!(client.get("/api/v1/entities").await.status, StatusCode::OK);
    let first = last_used().await.expect("the first use is recorded");
    assert_eq!(client.get("/api/v1/entities").await.status, StatusCode::OK);
    assert_eq!(
        last_used().await,
        Some(first),
        "the second use wrote nothing"
    );

    // Once the recorded use is older than a minute, the next use moves it.
    sqlx::query("UPDATE api_tokens SET last_used_at = now() - interval '2 minutes' WHERE id = $1")
        .bind(token.id)
        .execute(app.pool())
        .await
        .unwrap();
    let aged = last_used().await.unwrap();
    assert_eq!(client.get("/api/v1/entities").await.status, StatusCode::OK);
    assert!(last_used().await.unwrap() > aged);
}
