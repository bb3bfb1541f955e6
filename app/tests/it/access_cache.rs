//! The app's access cache (credentials and permissions, `ahlt::auth::access`): answers
//! without SQL while it listens, and never answers what the database no longer says.

use crate::api_support;

use ahlt::domain::audit::Actor;
use ahlt::domain::users;
use ahlt::store::{self, NewEntity};
use ahlt::test_app::TestApp;
use api_support::{admin, assert_error, assert_status, user};

/// An entity every user with `entities.view` may read.
async fn some_entity(app: &TestApp) -> i64 {
    let mut conn = app.pool().acquire().await.unwrap();
    store::create_entity(&mut conn, &NewEntity::new("note", "a-note"))
        .await
        .unwrap()
        .entity
        .id
}

async fn rename_tokens_table(app: &TestApp, from: &str, to: &str) {
    sqlx::query(&format!("ALTER TABLE {from} RENAME TO {to}"))
        .execute(app.pool())
        .await
        .unwrap();
}

/// As another replica or `ahlt admin` would: straight to the database.
async fn revoke_tokens_behind_the_apps_back(app: &TestApp, user_id: i64) {
    sqlx::query("UPDATE api_tokens SET revoked_at = now() WHERE user_id = $1")
        .bind(user_id)
        .execute(app.pool())
        .await
        .unwrap();
}

/// `GET /api/v1/users/me` is refused as unauthenticated.
async fn assert_refused(client: &mut ahlt::test_app::TestClient) {
    assert_error(
        &client.get("/api/v1/users/me").await,
        401,
        "unauthenticated",
    );
}

#[tokio::test]
async fn a_cached_token_authenticates_without_reading_the_tokens() {
    let app = TestApp::new().await;
    let _listener = app.with_access_cache().await;
    let entity = some_entity(&app).await;
    let (_, mut client) = admin(&app).await;
    let path = format!("/api/v1/entities/{entity}");
    assert_status(&client.get(&path).await, 200);

    // With the table out of reach, only the cache can know the token.
    rename_tokens_table(&app, "api_tokens", "api_tokens_away").await;
    let cached = client.get(&path).await;
    rename_tokens_table(&app, "api_tokens_away", "api_tokens").await;
    assert_status(&cached, 200);
}

#[tokio::test]
async fn without_its_listener_the_cache_is_not_used() {
    let app = TestApp::new().await;
    let entity = some_entity(&app).await;
    let (_, mut client) = admin(&app).await;
    let path = format!("/api/v1/entities/{entity}");
    assert_status(&client.get(&path).await, 200);
    assert!(!app.state.access.is_active());

    rename_tokens_table(&app, "api_tokens", "api_tokens_away").await;
    let uncached = client.get(&path).await;
    rename_tokens_table(&app, "api_tokens_away", "api_tokens").await;
    assert_eq!(uncached.status.as_u16(), 500, "{}", uncached.text());
}

#[tokio::test]
async fn a_token_revoked_by_another_replica_is_refused_once_notified() {
    let app = TestApp::new().await;
    let _listener = app.with_access_cache().await;
    let (admin_id, mut client) = admin(&app).await;
    assert_status(&client.get("/api/v1/users/me").await, 200);

    revoke_tokens_behind_the_apps_back(&app, admin_id).await;
    app.state.access.sync(app.pool()).await.unwrap();
    assert_refused(&mut client).await;
}

#[tokio::test]
async fn a_token_revoked_through_this_app_is_refused_at_once() {
    let app = TestApp::new().await;
    let _listener = app.with_access_cache().await;
    let (_, mut client) = admin(&app).await;
    let tokens = assert_status(&client.get("/api/v1/tokens").await, 200);
    let id = tokens["items"][0]["id"].as_i64().unwrap();

    assert_eq!(
        client
            .delete(&format!("/api/v1/tokens/{id}"))
            .await
            .status
            .as_u16(),
        204
    );
    // No sync: this replica's own write emptied the cache before its response.
    assert_refused(&mut client).await;
}

#[tokio::test]
async fn a_user_deactivated_or_demoted_elsewhere_loses_access_once_notified() {
    let app = TestApp::new().await;
    let _listener = app.with_access_cache().await;
    let entity = some_entity(&app).await;
    let path = format!("/api/v1/entities/{entity}");
    let (viewer, mut viewer_client) = user(&app, "viewer", &["viewer"]).await;
    let (other, mut other_client) = user(&app, "other", &["viewer"]).await;
    assert_status(&viewer_client.get(&path).await, 200);
    assert_status(&other_client.get(&path).await, 200);

    // As `ahlt admin` or another replica would: straight to the database.
    let mut conn = app.pool().acquire().await.unwrap();
    let deactivate = users::UserUpdate {
        is_active: Some(false),
        ..Default::default()
    };
    users::update(&mut conn, &Actor::system(), viewer, &deactivate)
        .await
        .unwrap();
    let demote = users::UserUpdate {
        roles: Some(vec![]),
        ..Default::default()
    };
    users::update(&mut conn, &Actor::system(), other, &demote)
        .await
        .unwrap();
    drop(conn);
    app.state.access.sync(app.pool()).await.unwrap();

    assert_error(&viewer_client.get(&path).await, 401, "unauthenticated");
    assert_error(&other_client.get(&path).await, 403, "forbidden");
}

#[tokio::test]
async fn changes_made_while_the_listener_is_away_are_never_served_stale() {
    let app = TestApp::new().await;
    let listener = app.with_access_cache().await;
    let (admin_id, mut client) = admin(&app).await;
    assert_status(&client.get("/api/v1/users/me").await, 200);

    // The listener goes away (as when its connection drops): nobody hears what follows.
    listener.send(true).unwrap();
    app.state.access.wait_activity(false).await;
    revoke_tokens_behind_the_apps_back(&app, admin_id).await;
    assert_refused(&mut client).await;
}

#[tokio::test]
async fn a_lost_listener_connection_reconnects_and_the_cache_starts_over() {
    let app = TestApp::new().await;
    let _listener = app.with_access_cache().await;
    let (admin_id, mut client) = admin(&app).await;
    assert_status(&client.get("/api/v1/users/me").await, 200);

    let terminated: bool = sqlx::query_scalar(
        "SELECT bool_or(pg_terminate_backend(pid)) FROM pg_stat_activity \
          WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert!(terminated, "the listener's connection was found");
    revoke_tokens_behind_the_apps_back(&app, admin_id).await;
    // Waits for the listener to be back (a barrier needs it) and everything before it heard.
    app.state.access.sync(app.pool()).await.unwrap();
    assert!(app.state.access.is_active());
    assert_refused(&mut client).await;
}
