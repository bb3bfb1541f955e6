//! ToR dependencies (`feeds_into`, `escalates_to`): the API (CRUD, validation, cycles,
//! authorization, audit) and the ToR pages (both ends shown, forms), on a real PostgreSQL.

use crate::api_support;

use ahlt::domain::role;
use ahlt::test_app::{TestApp, TestClient};
use api_support::*;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

async fn create_tor(client: &mut TestClient, name: &str) -> i64 {
    let r = client
        .post_json(
            "/api/v1/tors",
            &json!({"name": name, "label": format!("{} board", name.to_uppercase())}),
        )
        .await;
    assert_status(&r, 201)["id"].as_i64().unwrap()
}

async fn depend(client: &mut TestClient, from: i64, kind: &str, to: i64, body: Value) -> Value {
    let mut body = body;
    body["relation_type"] = json!(kind);
    body["target_id"] = json!(to);
    let r = client
        .post_json(&format!("/api/v1/tors/{from}/dependencies"), &body)
        .await;
    assert_status(&r, 201)
}

#[tokio::test]
async fn dependencies_are_created_listed_from_both_ends_patched_and_removed() {
    let app = TestApp::new().await;
    let (admin_id, mut admin) = admin(&app).await;
    let (refine, plan) = (
        create_tor(&mut admin, "refine").await,
        create_tor(&mut admin, "plan").await,
    );
    let r = admin
        .post_json(
            &format!("/api/v1/tors/{refine}/dependencies"),
            &json!({"relation_type": "feeds_into", "target_id": plan,
                    "output_types": " ready stories ", "description": "groomed work", "is_blocking": true}),
        )
        .await;
    let created = assert_status(&r, 201);
    let dep = created["id"].as_i64().unwrap();
    assert_eq!(
        r.location(),
        Some(format!("/api/v1/tors/{refine}/dependencies/{dep}").as_str())
    );
    assert_eq!(created["relation_type"], "feeds_into");
    assert_eq!(created["output_types"], "ready stories");
    assert_eq!(created["is_blocking"], true);

    let from = assert_status(
        &admin
            .get(&format!("/api/v1/tors/{refine}/dependencies"))
            .await,
        200,
    );
    assert_eq!(from["items"][0]["direction"], "outgoing");
    assert_eq!(from["items"][0]["other"]["id"], plan);
    let to = assert_status(
        &admin
            .get(&format!("/api/v1/tors/{plan}/dependencies"))
            .await,
        200,
    );
    assert_eq!(to["items"][0]["direction"], "incoming");
    assert_eq!(to["items"][0]["other"]["name"], "refine");

    let r = admin
        .send_json(
            Method::PATCH,
            &format!("/api/v1/tors/{plan}/dependencies/{dep}"),
            &json!({"is_blocking": false, "description": "now optional"}),
        )
        .await;
    let patched = assert_status(&r, 200);
    assert_eq!(patched["is_blocking"], false);
    assert_eq!(patched["output_types"], "ready stories");
    assert_eq!(patched["description"], "now optional");

    // The relation carries the properties (as upstream names them) for the projection.
    let stored: Vec<(String, Value)> = sqlx::query_as(
        "SELECT key, value FROM relation_properties WHERE relation_id = $1 ORDER BY key",
    )
    .bind(dep)
    .fetch_all(app.pool())
    .await
    .unwrap();
    let keys: Vec<&str> = stored.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["description", "is_blocking", "output_types"]);

    assert_status(
        &admin
            .delete(&format!("/api/v1/tors/{refine}/dependencies/{dep}"))
            .await,
        204,
    );
    assert_error(
        &admin
            .get(&format!("/api/v1/tors/{refine}/dependencies/{dep}"))
            .await,
        404,
        "not_found",
    );
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE action LIKE 'tor.dependency.%' AND actor_id = $1 ORDER BY id",
    )
    .bind(admin_id)
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(
        actions,
        [
            "tor.dependency.create",
            "tor.dependency.update",
            "tor.dependency.delete"
        ]
    );
}

#[tokio::test]
async fn invalid_dependencies_are_refused_with_json_errors() {
    let app = TestApp::new().await;
    let (_, mut admin) = admin(&app).await;
    let (a, b, c) = (
        create_tor(&mut admin, "a").await,
        create_tor(&mut admin, "b").await,
        create_tor(&mut admin, "c").await,
    );
    let path = format!("/api/v1/tors/{a}/dependencies");
    let poster = admin.clone();
    let post = move |body: Value| {
        let mut client = poster.clone();
        let path = path.clone();
        async move { client.post_json(&path, &body).await }
    };
    // Self-edges, unknown types, non-ToR targets, missing targets, unknown fields.
    assert_error(
        &post(json!({"relation_type": "feeds_into", "target_id": a})).await,
        422,
        "validation_failed",
    );
    assert_error(
        &post(json!({"relation_type": "reports_to", "target_id": b})).await,
        422,
        "validation_failed",
    );
    let admin_user: i64 = sqlx::query_scalar("SELECT id FROM entities WHERE entity_type = 'user'")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_error(
        &post(json!({"relation_type": "feeds_into", "target_id": admin_user})).await,
        422,
        "validation_failed",
    );
    assert_error(
        &post(json!({"relation_type": "feeds_into", "target_id": i64::MAX})).await,
        422,
        "validation_failed",
    );
    assert_error(
        &post(json!({"relation_type": "feeds_into", "target_id": b, "blocking": true})).await,
        400,
        "invalid_json",
    );
    assert_error(
        &admin
            .post_json(
                "/api/v1/tors/999999/dependencies",
                &json!({"relation_type": "feeds_into", "target_id": b}),
            )
            .await,
        404,
        "not_found",
    );

    // Duplicates conflict; the same pair with the other type is fine.
    assert_status(
        &post(json!({"relation_type": "feeds_into", "target_id": b})).await,
        201,
    );
    assert_error(
        &post(json!({"relation_type": "feeds_into", "target_id": b})).await,
        409,
        "conflict",
    );
    assert_status(
        &post(json!({"relation_type": "escalates_to", "target_id": b})).await,
        201,
    );

    // feeds_into may loop (iterative processes); escalations may not.
    depend(&mut admin, b, "feeds_into", a, json!({})).await;
    depend(&mut admin, b, "escalates_to", c, json!({})).await;
    let r = admin
        .post_json(
            &format!("/api/v1/tors/{c}/dependencies"),
            &json!({"relation_type": "escalates_to", "target_id": a}),
        )
        .await;
    assert_error(&r, 422, "validation_failed");
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("circle"), "{message}");

    // The generic relations API cannot bypass these rules.
    let r = admin
        .post_json(
            "/api/v1/relations",
            &json!({"relation_type": "escalates_to", "source_id": c, "target_id": a}),
        )
        .await;
    assert_error(&r, 422, "validation_failed");

    // A dependency addressed through a ToR it does not touch is not found there.
    let deps = assert_status(
        &admin.get(&format!("/api/v1/tors/{a}/dependencies")).await,
        200,
    );
    let dep = deps["items"][0]["id"].as_i64().unwrap();
    assert_error(
        &admin
            .delete(&format!("/api/v1/tors/{c}/dependencies/{dep}"))
            .await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn only_editors_of_the_source_tor_change_its_dependencies() {
    let app = TestApp::new().await;
    let (_, mut admin) = admin(&app).await;
    let (a, b) = (
        create_tor(&mut admin, "a").await,
        create_tor(&mut admin, "b").await,
    );
    let dep = depend(&mut admin, a, "feeds_into", b, json!({})).await["id"]
        .as_i64()
        .unwrap();
    let (_, mut viewer) = user(&app, "vera", &[role::VIEWER]).await;
    let (_, mut nobody) = user(&app, "nora", &[]).await;
    // Viewers read, but do not write.
    assert_status(
        &viewer.get(&format!("/api/v1/tors/{a}/dependencies")).await,
        200,
    );
    assert_error(
        &viewer
            .post_json(
                &format!("/api/v1/tors/{b}/dependencies"),
                &json!({"relation_type": "feeds_into", "target_id": a}),
            )
            .await,
        403,
        "forbidden",
    );
    assert_error(
        &viewer
            .delete(&format!("/api/v1/tors/{a}/dependencies/{dep}"))
            .await,
        403,
        "forbidden",
    );
    assert_error(
        &nobody.get(&format!("/api/v1/tors/{a}/dependencies")).await,
        403,
        "forbidden",
    );
    // An editor (tors.manage) may.
    let (_, mut editor) = user(&app, "eddie", &[role::EDITOR]).await;
    assert_status(
        &editor
            .delete(&format!("/api/v1/tors/{a}/dependencies/{dep}"))
            .await,
        204,
    );
}

#[tokio::test]
async fn tor_pages_show_dependencies_on_both_ends_and_manage_them_with_forms() {
    let app = TestApp::new().await;
    let (_, mut admin) = admin(&app).await;
    let (review, retro) = (
        create_tor(&mut admin, "review").await,
        create_tor(&mut admin, "retro").await,
    );
    // Add through the page's form.
    let r = admin
        .post_form(
            &format!("/tors/{review}/dependencies"),
            &[
                ("relation_type", "feeds_into"),
                ("target_id", &retro.to_string()),
                ("output_types", "feedback <b>raw</b>"),
                ("description", "retro starts after review"),
                ("is_blocking", "on"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let page = admin.get(&format!("/tors/{review}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(html.contains("feeds into"), "{html}");
    assert!(html.contains("RETRO board"), "{html}");
    assert!(html.contains(">blocking<"), "{html}");
    assert!(
        html.contains("feedback &#60;b&#62;raw"),
        "output escaped: {html}"
    );
    assert!(!html.contains("<b>raw"), "output escaped: {html}");
    let other = admin.get(&format!("/tors/{retro}")).await.text();
    assert!(other.contains("receives from"), "{other}");
    assert!(other.contains("REVIEW board"), "{other}");

    // A self-edge re-renders the page with the message, a 422 and what was typed.
    let r = admin
        .post_form(
            &format!("/tors/{review}/dependencies"),
            &[
                ("relation_type", "escalates_to"),
                ("target_id", &review.to_string()),
                ("description", "typed text stays"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text().contains("cannot escalate to itself"),
        "{}",
        r.text()
    );
    assert!(r.text().contains("typed text stays"));

    // Edit and remove from the source's page.
    let dep: i64 = sqlx::query_scalar(
        "SELECT r.id FROM relations r JOIN entities t ON t.id = r.relation_type_id AND t.name = 'feeds_into'",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    let r = admin
        .post_form(
            &format!("/tors/{review}/dependencies/{dep}"),
            &[("output_types", "actions"), ("description", "")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let api = assert_status(
        &admin
            .get(&format!("/api/v1/tors/{review}/dependencies/{dep}"))
            .await,
        200,
    );
    assert_eq!(api["is_blocking"], false);
    assert_eq!(api["output_types"], "actions");
    // Not from the target's page.
    let r = admin
        .post_form(&format!("/tors/{retro}/dependencies/{dep}/delete"), &[])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = admin
        .post_form(&format!("/tors/{review}/dependencies/{dep}/delete"), &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM relations r JOIN entities t ON t.id = r.relation_type_id AND t.name = 'feeds_into'",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(left, 0);
}
