//! Issue 10, finding 2: the entity browser and the entities API show a reader only the entity
//! types and properties their permissions allow.

use crate::api_support;

use ahlt::test_app::TestApp;
use api_support::{PASSWORD, admin, assert_error, assert_status, create_user, user};
use serde_json::json;

/// A viewer (the default reader role), the admin's id and a non-user entity with an e-mail.
async fn setup(app: &TestApp) -> (i64, i64, i64) {
    let (admin_id, mut admin_api) = admin(app).await;
    let viewer_id = create_user(app, "vera", &["viewer"]).await;
    sqlx::query(
        "INSERT INTO entity_properties (entity_id, key, value) VALUES ($1, 'email', '\"admin@example.org\"')",
    )
    .bind(admin_id)
    .execute(app.pool())
    .await
    .unwrap();
    let contact = assert_status(
        &admin_api
            .post_json(
                "/api/v1/entities",
                &json!({"entity_type": "contact", "name": "press",
                        "properties": {"email": "press@example.org", "topic": "news"}}),
            )
            .await,
        201,
    )["id"]
        .as_i64()
        .unwrap();
    (admin_id, viewer_id, contact)
}

#[tokio::test]
async fn a_viewer_sees_no_users_and_no_email_through_the_entities_api() {
    let app = TestApp::new().await;
    let (admin_id, _, contact) = setup(&app).await;
    let (_, mut viewer) = user(&app, "val", &["viewer"]).await;

    assert_error(
        &viewer.get(&format!("/api/v1/entities/{admin_id}")).await,
        403,
        "forbidden",
    );
    assert_error(
        &viewer.get("/api/v1/entities?type=user").await,
        403,
        "forbidden",
    );
    assert_error(
        &viewer
            .get(&format!("/api/v1/entities/{admin_id}/relations"))
            .await,
        403,
        "forbidden",
    );
    let all = assert_status(&viewer.get("/api/v1/entities?limit=500").await, 200);
    let text = all.to_string();
    assert!(!text.contains("\"entity_type\":\"user\""), "{text}");
    assert!(!text.contains("example.org"), "{text}");
    let search = assert_status(&viewer.get("/api/v1/entities?q=admin").await, 200);
    assert!(
        search["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["entity_type"] != "user"),
        "{search}"
    );
    let types = assert_status(&viewer.get("/api/v1/entity-types").await, 200).to_string();
    assert!(!types.contains("\"user\""), "{types}");

    let shown = assert_status(
        &viewer.get(&format!("/api/v1/entities/{contact}")).await,
        200,
    );
    assert_eq!(shown["properties"], json!({"topic": "news"}));

    // The admin (users.view) sees both.
    let (_, mut admin_api) = admin(&app).await;
    let shown = assert_status(
        &admin_api.get(&format!("/api/v1/entities/{contact}")).await,
        200,
    );
    assert_eq!(shown["properties"]["email"], "press@example.org");
    let admin_entity = assert_status(
        &admin_api.get(&format!("/api/v1/entities/{admin_id}")).await,
        200,
    );
    assert_eq!(admin_entity["properties"]["email"], "admin@example.org");
}

#[tokio::test]
async fn a_viewer_sees_no_users_and_no_email_in_the_entity_browser() {
    let app = TestApp::new().await;
    let (admin_id, _, contact) = setup(&app).await;
    let mut browser = app.client();
    browser.login("vera", PASSWORD).await;

    let r = browser.get("/entities?type=user").await;
    assert_eq!(r.status.as_u16(), 403, "{}", r.text());
    let r = browser.get(&format!("/entities/{admin_id}")).await;
    assert_eq!(r.status.as_u16(), 403, "{}", r.text());
    let overview = browser.get("/entities").await;
    assert_eq!(overview.status.as_u16(), 200);
    assert!(
        !overview.text().contains("type=user"),
        "{}",
        overview.text()
    );
    let search = browser.get("/entities?q=a").await.text();
    assert!(!search.contains("example.org"));
    assert!(
        !search.contains(&format!("/entities/{admin_id}\"")),
        "{search}"
    );
    let detail = browser.get(&format!("/entities/{contact}")).await;
    assert_eq!(detail.status.as_u16(), 200);
    assert!(!detail.text().contains("press@example.org"));
    assert!(detail.text().contains("news"));
}
