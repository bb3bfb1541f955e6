//! Helpers shared by the `api_*` tests: users with bearer tokens, error assertions, the audit log.
#![allow(dead_code)] // Each test crate uses a different subset.

use ahlt::auth::tokens;
use ahlt::domain::audit::Actor;
use ahlt::domain::users::{self, NewUser};
use ahlt::test_app::{TestApp, TestClient, TestResponse};
use axum::http::Method;
use serde_json::Value;

pub const PASSWORD: &str = "a long enough password";

/// The seeded admin with a fresh bearer token.
pub async fn admin(app: &TestApp) -> (i64, TestClient) {
    let admin = users::find_by_username(app.pool(), "admin")
        .await
        .unwrap()
        .expect("seeded admin");
    (admin.id, bearer_for(app, admin.id).await)
}

/// A new user with the given roles, and a client authenticated as them by a bearer token.
pub async fn user(app: &TestApp, username: &str, roles: &[&str]) -> (i64, TestClient) {
    let id = create_user(app, username, roles).await;
    (id, bearer_for(app, id).await)
}

pub async fn create_user(app: &TestApp, username: &str, roles: &[&str]) -> i64 {
    let mut conn = app.pool().acquire().await.unwrap();
    let new = NewUser {
        username: username.into(),
        display_name: username.to_uppercase(),
        email: None,
        password: PASSWORD.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
    };
    users::create(&mut conn, &Actor::system(), &new)
        .await
        .unwrap()
        .id
}

pub async fn bearer_for(app: &TestApp, user_id: i64) -> TestClient {
    let (_, secret) = tokens::create(app.pool(), user_id, "test").await.unwrap();
    app.client().with_bearer(&secret)
}

/// Asserts status and stable error code, and that the body is a well-formed JSON error.
#[track_caller]
pub fn assert_error(r: &TestResponse, status: u16, code: &str) {
    assert_eq!(r.status.as_u16(), status, "{}", r.text());
    assert_eq!(r.error_code(), code, "{}", r.text());
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        r.text()
    );
}

#[track_caller]
pub fn assert_status(r: &TestResponse, status: u16) -> Value {
    assert_eq!(r.status.as_u16(), status, "{}", r.text());
    if r.body.is_empty() {
        Value::Null
    } else {
        r.json()
    }
}

/// Sends raw bytes as a JSON body (for malformed JSON).
pub async fn send_raw(
    client: &mut TestClient,
    method: Method,
    path: &str,
    body: &str,
) -> TestResponse {
    client
        .request(
            method,
            path,
            Some(("application/json", body.as_bytes().to_vec())),
            true,
        )
        .await
}

/// Secrets that must never leave the server: password hashes and token hashes.
pub async fn assert_no_secrets(app: &TestApp, r: &TestResponse) {
    let text = r.text();
    assert!(!text.contains("$argon2"), "password hash leaked: {text}");
    let hashes: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
        .fetch_all(app.pool())
        .await
        .unwrap();
    for hash in hashes {
        assert!(
            !text.contains(&hex::encode(&hash)),
            "token hash leaked: {text}"
        );
        assert!(
            !text.contains(&base64_std(&hash)),
            "token hash leaked: {text}"
        );
    }
}

fn base64_std(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// (action, actor_id, target_id, details) of every audit entry with this action, oldest first.
pub async fn audit(app: &TestApp, action: &str) -> Vec<(Option<i64>, Option<i64>, Value)> {
    sqlx::query_as(
        "SELECT actor_id, target_id, details FROM audit_log WHERE action = $1 ORDER BY id",
    )
    .bind(action)
    .fetch_all(app.pool())
    .await
    .unwrap()
}

/// Walks a paginated endpoint to the end; returns every item id in the order served.
pub async fn walk(client: &mut TestClient, path: &str, limit: i64) -> Vec<i64> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut ids = Vec::new();
    let mut after: Option<i64> = None;
    let mut pages = 0;
    loop {
        let url = match after {
            Some(a) => format!("{path}{sep}limit={limit}&after={a}"),
            None => format!("{path}{sep}limit={limit}"),
        };
        let r = client.get(&url).await;
        let body = assert_status(&r, 200);
        let items = body["items"].as_array().expect("items").clone();
        assert!(items.len() as i64 <= limit, "page larger than limit: {url}");
        ids.extend(items.iter().map(|i| i["id"].as_i64().expect("id")));
        pages += 1;
        assert!(pages < 1000, "pagination does not end");
        match body["next_after"].as_i64() {
            Some(next) => {
                assert_eq!(Some(next), ids.last().copied(), "cursor is the last id");
                after = Some(next);
            }
            None => {
                assert!(body["next_after"].is_null());
                return ids;
            }
        }
    }
}
