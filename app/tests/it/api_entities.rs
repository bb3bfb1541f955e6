//! JSON API v1: entities, entity types, relations, pagination, authentication and JSON errors.

use crate::api_support;

use std::collections::BTreeSet;

use ahlt::auth::tokens;
use ahlt::domain::role;
use ahlt::test_app::TestApp;
use api_support::*;
use axum::http::Method;
use serde_json::json;

#[tokio::test]
async fn an_entity_is_created_read_patched_and_deleted_with_audit_entries() {
    let app = TestApp::new().await;
    let (admin_id, mut admin) = admin(&app).await;

    let r = admin
        .post_json(
            "/api/v1/entities",
            &json!({"entity_type": "widget", "name": "w1", "label": "Widget one",
                    "sort_order": 3, "properties": {"color": "red", "size": 2}}),
        )
        .await;
    let created = assert_status(&r, 201);
    let id = created["id"].as_i64().unwrap();
    assert_eq!(
        r.location(),
        Some(format!("/api/v1/entities/{id}").as_str())
    );
    assert_eq!(created["entity_type"], "widget");
    assert_eq!(created["label"], "Widget one");
    assert_eq!(created["sort_order"], 3);
    assert_eq!(created["properties"], json!({"color": "red", "size": 2}));

    let shown = assert_status(&admin.get(&format!("/api/v1/entities/{id}")).await, 200);
    assert_eq!(shown["name"], "w1");
    assert_eq!(shown["properties"]["size"], 2);

    let r = admin
        .send_json(
            Method::PATCH,
            &format!("/api/v1/entities/{id}"),
            &json!({"label": "Renamed", "is_active": false,
                    "properties": {"color": null, "shape": "round"}}),
        )
        .await;
    let patched = assert_status(&r, 200);
    assert_eq!(patched["label"], "Renamed");
    assert_eq!(patched["is_active"], false);
    assert_eq!(patched["properties"], json!({"size": 2, "shape": "round"}));

    let r = admin.delete(&format!("/api/v1/entities/{id}")).await;
    assert_status(&r, 204);
    assert!(r.body.is_empty());
    assert_error(
        &admin.get(&format!("/api/v1/entities/{id}")).await,
        404,
        "not_found",
    );

    for action in ["entity.create", "entity.update", "entity.delete"] {
        let entries = audit(&app, action).await;
        assert_eq!(entries.len(), 1, "{action}");
        assert_eq!(entries[0].0, Some(admin_id), "{action} actor");
        assert_eq!(entries[0].1, Some(id), "{action} target");
    }
    let update = &audit(&app, "entity.update").await[0].2;
    assert_eq!(
        update["fields"],
        json!(["label", "is_active", "properties.color", "properties.shape"])
    );
}

#[tokio::test]
async fn a_patch_that_changes_nothing_writes_no_audit_entry() {
    let app = TestApp::new().await;
    let (_, mut admin) = admin(&app).await;
    let r = admin
        .post_json(
            "/api/v1/entities",
            &json!({"entity_type": "widget", "name": "same", "label": "Same"}),
        )
        .await;
    let id = assert_status(&r, 201)["id"].as_i64().unwrap();
    let r = admin
        .send_json(
            Method::PATCH,
            &format!("/api/v1/entities/{id}"),
            &json!({"label": "Same"}),
        )
        .await;
    assert_status(&r, 200);
    assert!(audit(&app, "entity.update").await.is_empty());
}

#[tokio::test]
async fn bad_ids_are_400_and_missing_ones_404() {
    let app = TestApp::new().await;
    let (_, mut admin) = admin(&app).await;
    for bad in ["abc", "-1", "0", "1.5", "99999999999999999999"] {
        let r = admin.get(&format!("/api/v1/entities/{bad}")).await;
        assert_error(&r, 400, "bad_request");
        let r = admin.delete(&format!("/api/v1/entities/{bad}")).await;
        assert_error(&r, 400, "bad_request");
    }
    assert_error(
        &admin.get("/api/v1/entities/987654").await,
        404,
        "not_found",
    );
    assert_error(
        &admin
            .send_json(
                Method::PATCH,
                "/api/v1/entities/987654",
                &json!({"label": "x"}),
            )
            .await,
        404,
        "not_found",
    );
    assert_error(
        &admin.delete("/api/v1/entities/987654").await,
        404,
        "not_found",
    );
    assert_error(
        &admin.get("/api/v1/entities/987654/relations").await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn malformed_or_mistyped_bodies_are_400_and_invalid_values_422() {
    let app = TestApp::new().await;
    let (_, mut admin) = admin(&app).await;

    let r = send_raw(
        &mut admin,
        Method::POST,
        "/api/v1/entities",
        "{\"entity_type\": ",
    )
    .await;
    assert_error(&r, 400, "invalid_json");
    let r = admin
        .post_json(
            "/api/v1/entities",
            &json!({"entity_type": "widget", "name": 5}),
        )
        .await;
    assert_error(&r, 400, "invalid_json");
    let r = admin
        .post_json(
            "/api/v1/entities",
            &json!({"entity_type": "widget", "name": "x", "colour": "red"}),
        )
        .await;
    assert_error(&r, 400, "invalid_json");
    assert!(
        r.text().contains("colour"),
        "names the unknown field: {}",
        r.text()
    );
    let r = admin
        .post_json(
            "/api/v1/entities",
            &json!({"entity_type": "widget", "name": "x", "sort_order": 1e12}),
        )
        .await;
    assert_error(&r, 400, "invalid_json");
    let r = admin
        .request(
            Method::POST,
            "/api/v1/entities",
            Some(("text/plain", b"{}".to_vec())),
            true,
        )
        .await;
    assert_error(&r, 400, "bad_request");
    let r = admin
        .send_json(
            Method::PATCH,
            "/api/v1/entities/1",
            &json!({"entity_type": "other"}),
        )
        .await;
    assert_error(&r, 400, "invalid_json");

    for body in [
        json!({"entity_type": "Not A Type", "name": "x"}),
        json!({"entity_type": "widget", "name": " padded "}),
        json!({"entity_type": "widget", "name": ""}),
        json!({"entity_type": "widget", "name": "x", "properties": {"Bad-Key": 1}}),
        json!({"entity_type": "widget", "name": "x", "properties": {"k": null}}),
        json!({"entity_type": "relation_type", "name": "Not an identifier"}),
    ] {
        let r = admin.post_json("/api/v1/entities", &body).await;
        assert_error(&r, 422, "validation_failed");
    }
}

#[tokio::test]
async fn duplicate_names_within_a_type_conflict() {
    let app = TestApp::new().await;
    let (_, mut admin) = admin(&app).await;
    let body = json!({"entity_type": "widget", "name": "dup"});
    assert_status(&admin.post_json("/api/v1/entities", &body).await, 201);
    assert_error(
        &admin.post_json("/api/v1/entities", &body).await,
        409,
        "conflict",
    );
    let other = assert_status(
        &admin
            .post_json(
                "/api/v1/entities",
                &json!({"entity_type": "widget", "name": "other"}),
            )
            .await,
        201,
    );
    let r = admin
        .send_json(
            Method::PATCH,
            &format!("/api/v1/entities/{}", other["id"]),
            &json!({"name": "dup"}),
        )
        .await;
    assert_error(&r, 409, "conflict");
}

#[tokio::test]
async fn domain_managed_types_are_read_only_through_the_generic_api() {
    let app = TestApp::new().await;
    let (admin_id, mut admin) = admin(&app).await;
    for entity_type in ["user", "role", "permission", "tor", "tor_function"] {
        let r = admin
            .post_json(
                "/api/v1/entities",
                &json!({"entity_type": entity_type, "name": "sneaky"}),
            )
            .await;
        assert_error(&r, 422, "validation_failed");
    }
    let r = admin
        .send_json(
            Method::PATCH,
            &format!("/api/v1/entities/{admin_id}"),
            &json!({"is_active": false}),
        )
        .await;
    assert_error(&r, 422, "validation_failed");
    assert!(r.text().contains("/api/v1/users"), "{}", r.text());
    assert_error(
        &admin.delete(&format!("/api/v1/entities/{admin_id}")).await,
        422,
        "validation_failed",
    );
    let admin_role: i64 =
        sqlx::query_scalar("SELECT id FROM entities WHERE entity_type = 'role' AND name = 'admin'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_error(
        &admin
            .delete(&format!("/api/v1/entities/{admin_role}"))
            .await,
        422,
        "validation_failed",
    );
    // Reading them is fine, and never shows a password hash.
    let r = admin.get(&format!("/api/v1/entities/{admin_id}")).await;
    assert_eq!(assert_status(&r, 200)["entity_type"], "user");
    assert_no_secrets(&app, &r).await;
    let r = admin.get("/api/v1/entities?type=user").await;
    assert_status(&r, 200);
    assert_no_secrets(&app, &r).await;
}

#[tokio::test]
async fn relation_types_can_be_added_but_built_in_ones_are_fixed_and_used_ones_kept() {
    let app = TestApp::new().await;
    let (_, mut admin) = admin(&app).await;
    let has_role: i64 = sqlx::query_scalar(
        "SELECT id FROM entities WHERE entity_type = 'relation_type' AND name = 'has_role'",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_error(
        &admin.delete(&format!("/api/v1/entities/{has_role}")).await,
        422,
        "validation_failed",
    );
    assert_error(
        &admin
            .send_json(
                Method::PATCH,
                &format!("/api/v1/entities/{has_role}"),
                &json!({"name": "had_role"}),
            )
            .await,
        422,
        "validation_failed",
    );

    let rt = assert_status(
        &admin
            .post_json(
                "/api/v1/entities",
                &json!({"entity_type": "relation_type", "name": "depends_on"}),
            )
            .await,
        201,
    );
    let rt_id = rt["id"].as_i64().unwrap();
    let a = widget(&mut admin, "a").await;
    let b = widget(&mut admin, "b").await;
    assert_status(
        &admin
            .post_json(
                "/api/v1/relations",
                &json!({"relation_type": "depends_on", "source_id": a, "target_id": b}),
            )
            .await,
        201,
    );
    let r = admin.delete(&format!("/api/v1/entities/{rt_id}")).await;
    assert_error(&r, 409, "conflict");
}

async fn widget(client: &mut ahlt::test_app::TestClient, name: &str) -> i64 {
    let r = client
        .post_json(
            "/api/v1/entities",
            &json!({"entity_type": "widget", "name": name}),
        )
        .await;
    assert_status(&r, 201)["id"].as_i64().unwrap()
}

#[tokio::test]
async fn entity_pages_cover_every_entity_once_in_id_order() {
    let app = TestApp::new().await;
    let (_, mut admin) = admin(&app).await;
    let mut expected = Vec::new();
    for i in 0..23 {
        expected.push(widget(&mut admin, &format!("w{i:02}")).await);
    }
    let ids = walk(&mut admin, "/api/v1/entities?type=widget", 5).await;
    assert_eq!(ids, expected);
    // Exactly one page when the limit matches the count: no empty trailing page.
    let r = admin.get("/api/v1/entities?type=widget&limit=23").await;
    let body = assert_status(&r, 200);
    assert_eq!(body["items"].as_array().unwrap().len(), 23);
    assert!(body["next_after"].is_null());

    // Search and the whole table, with the maximum page size.
    let found = walk(&mut admin, "/api/v1/entities?q=W1", 500).await;
    assert_eq!(found, expected[10..20].to_vec());
    let all = walk(&mut admin, "/api/v1/entities", 7).await;
    let unique: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "no repeats");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM entities")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(all.len() as i64, count, "no gaps");
}

#[tokio::test]
async fn out_of_range_limits_and_bad_cursors_are_400() {
    let app = TestApp::new().await;
    let (_, mut admin) = admin(&app).await;
    for query in [
        "limit=0",
        "limit=501",
        "limit=-5",
        "limit=abc",
        "limit=99999999999999999999",
        "after=-1",
        "after=x",
        "active=maybe",
        "type=Bad%20Type",
        "colour=red",
    ] {
        let r = admin.get(&format!("/api/v1/entities?{query}")).await;
        assert_error(&r, 400, "bad_request");
        let r = admin.get(&format!("/api/v1/relations?{query}")).await;
        assert_error(&r, 400, "bad_request");
    }
    let r = admin.get("/api/v1/entities?limit=500&type=").await;
    assert_status(&r, 200);
}

#[tokio::test]
async fn entity_types_are_listed_with_their_counts() {
    let app = TestApp::new().await;
    let (_, mut admin) = admin(&app).await;
    widget(&mut admin, "one").await;
    widget(&mut admin, "two").await;
    let body = assert_status(&admin.get("/api/v1/entity-types").await, 200);
    let items = body["items"].as_array().unwrap();
    let widget = items.iter().find(|t| t["entity_type"] == "widget").unwrap();
    assert_eq!(widget["count"], 2);
    let users = items.iter().find(|t| t["entity_type"] == "user").unwrap();
    assert_eq!(users["count"], 1);
}

#[tokio::test]
async fn relations_are_created_listed_shown_and_deleted() {
    let app = TestApp::new().await;
    let (admin_id, mut admin) = admin(&app).await;
    assert_status(
        &admin
            .post_json(
                "/api/v1/entities",
                &json!({"entity_type": "relation_type", "name": "depends_on"}),
            )
            .await,
        201,
    );
    let a = widget(&mut admin, "a").await;
    let b = widget(&mut admin, "b").await;
    let c = widget(&mut admin, "c").await;

    let r = admin
        .post_json(
            "/api/v1/relations",
            &json!({"relation_type": "depends_on", "source_id": a, "target_id": b,
                    "properties": {"since": 2024}}),
        )
        .await;
    let rel = assert_status(&r, 201);
    let rel_id = rel["id"].as_i64().unwrap();
    assert_eq!(
        r.location(),
        Some(format!("/api/v1/relations/{rel_id}").as_str())
    );
    assert_eq!(rel["relation_type"], "depends_on");
    assert_eq!(rel["properties"], json!({"since": 2024}));
    let c_to_a = assert_status(
        &admin
            .post_json(
                "/api/v1/relations",
                &json!({"relation_type": "depends_on", "source_id": c, "target_id": a}),
            )
            .await,
        201,
    )["id"]
        .as_i64()
        .unwrap();

    let shown = assert_status(
        &admin.get(&format!("/api/v1/relations/{rel_id}")).await,
        200,
    );
    assert_eq!(shown["source_id"], a);
    assert_eq!(shown["target_id"], b);
    assert_eq!(shown["properties"]["since"], 2024);

    let listed = walk(
        &mut admin,
        &format!("/api/v1/relations?type=depends_on&source_id={a}"),
        50,
    )
    .await;
    assert_eq!(listed, vec![rel_id]);
    let listed = walk(&mut admin, &format!("/api/v1/relations?target_id={a}"), 50).await;
    assert_eq!(listed, vec![c_to_a]);

    let neighbours = assert_status(
        &admin.get(&format!("/api/v1/entities/{a}/relations")).await,
        200,
    );
    let items = neighbours["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{neighbours}");
    assert!(
        items
            .iter()
            .any(|n| n["other_id"] == b && n["outgoing"] == true)
    );
    assert!(
        items
            .iter()
            .any(|n| n["other_id"] == c && n["outgoing"] == false)
    );

    assert_status(
        &admin.delete(&format!("/api/v1/relations/{rel_id}")).await,
        204,
    );
    assert_error(
        &admin.get(&format!("/api/v1/relations/{rel_id}")).await,
        404,
        "not_found",
    );
    assert_error(
        &admin.delete(&format!("/api/v1/relations/{rel_id}")).await,
        404,
        "not_found",
    );
    let created = audit(&app, "relation.create").await;
    assert_eq!(created.len(), 2);
    assert_eq!(created[0].0, Some(admin_id));
    assert_eq!(
        created[0].2,
        json!({"relation_type": "depends_on", "source_id": a, "target_id": b})
    );
    let deleted = audit(&app, "relation.delete").await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].1, Some(rel_id));
}

#[tokio::test]
async fn relation_mistakes_are_rejected_with_stable_codes() {
    let app = TestApp::new().await;
    let (admin_id, mut admin) = admin(&app).await;
    assert_status(
        &admin
            .post_json(
                "/api/v1/entities",
                &json!({"entity_type": "relation_type", "name": "depends_on"}),
            )
            .await,
        201,
    );
    let a = widget(&mut admin, "a").await;
    let b = widget(&mut admin, "b").await;
    let body = json!({"relation_type": "depends_on", "source_id": a, "target_id": b});
    assert_status(&admin.post_json("/api/v1/relations", &body).await, 201);
    assert_error(
        &admin.post_json("/api/v1/relations", &body).await,
        409,
        "conflict",
    );

    let cases = [
        (
            json!({"relation_type": "no_such_type", "source_id": a, "target_id": b}),
            422,
            "validation_failed",
        ),
        (
            json!({"relation_type": "depends_on", "source_id": a, "target_id": 987654}),
            422,
            "validation_failed",
        ),
        (
            json!({"relation_type": "depends_on", "source_id": 987654, "target_id": b}),
            422,
            "validation_failed",
        ),
        (
            json!({"relation_type": "has_role", "source_id": admin_id, "target_id": b}),
            422,
            "validation_failed",
        ),
        (
            json!({"relation_type": "depends_on", "source_id": -1, "target_id": b}),
            400,
            "invalid_json",
        ),
        (
            json!({"relation_type": "depends_on", "source_id": "a", "target_id": b}),
            400,
            "invalid_json",
        ),
        (
            json!({"relation_type": "depends_on", "source_id": a, "target_id": b, "weight": 1}),
            400,
            "invalid_json",
        ),
    ];
    for (body, status, code) in cases {
        let r = admin.post_json("/api/v1/relations", &body).await;
        assert_error(&r, status, code);
    }

    // Built-in relations are readable but written only through the domain endpoints.
    let has_role: i64 = sqlx::query_scalar(
        "SELECT r.id FROM relations r JOIN entities t ON t.id = r.relation_type_id \
         WHERE t.name = 'has_role' AND r.source_id = $1",
    )
    .bind(admin_id)
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(
        assert_status(
            &admin.get(&format!("/api/v1/relations/{has_role}")).await,
            200
        )["relation_type"],
        "has_role"
    );
    assert_error(
        &admin.delete(&format!("/api/v1/relations/{has_role}")).await,
        422,
        "validation_failed",
    );
}

#[tokio::test]
async fn reading_needs_entities_view_and_writing_entities_manage() {
    let app = TestApp::new().await;
    let (_, mut admin) = admin(&app).await;
    let id = widget(&mut admin, "w").await;
    let (_, mut viewer) = user(&app, "vera", &[role::VIEWER]).await;
    let (_, mut nobody) = user(&app, "nora", &[]).await;

    assert_status(&viewer.get("/api/v1/entities").await, 200);
    assert_status(&viewer.get(&format!("/api/v1/entities/{id}")).await, 200);
    assert_status(&viewer.get("/api/v1/relations").await, 200);
    assert_status(&viewer.get("/api/v1/entity-types").await, 200);
    let writes = [
        viewer
            .post_json(
                "/api/v1/entities",
                &json!({"entity_type": "widget", "name": "v"}),
            )
            .await,
        viewer
            .send_json(
                Method::PATCH,
                &format!("/api/v1/entities/{id}"),
                &json!({"label": "v"}),
            )
            .await,
        viewer.delete(&format!("/api/v1/entities/{id}")).await,
        viewer
            .post_json(
                "/api/v1/relations",
                &json!({"relation_type": "x", "source_id": id, "target_id": id}),
            )
            .await,
        viewer.delete("/api/v1/relations/1").await,
    ];
    for r in &writes {
        assert_error(r, 403, "forbidden");
    }
    for path in [
        "/api/v1/entities".to_owned(),
        format!("/api/v1/entities/{id}"),
        format!("/api/v1/entities/{id}/relations"),
        "/api/v1/relations".to_owned(),
        "/api/v1/entity-types".to_owned(),
    ] {
        assert_error(&nobody.get(&path).await, 403, "forbidden");
    }
    assert!(audit(&app, "entity.delete").await.is_empty());
}

#[tokio::test]
async fn requests_without_valid_credentials_are_401() {
    let app = TestApp::new().await;
    let (admin_id, _) = admin(&app).await;
    let mut anonymous = app.client();
    assert_error(
        &anonymous.get("/api/v1/entities").await,
        401,
        "unauthenticated",
    );
    assert_error(
        &anonymous.get("/api/v1/users/me").await,
        401,
        "unauthenticated",
    );

    let mut forged = app.client().with_bearer("ahlt_not-a-real-token");
    assert_error(
        &forged.get("/api/v1/entities").await,
        401,
        "unauthenticated",
    );
    let mut garbage = app.client().with_bearer("garbage");
    assert_error(
        &garbage.get("/api/v1/entities").await,
        401,
        "unauthenticated",
    );

    let (token, secret) = tokens::create(app.pool(), admin_id, "soon revoked")
        .await
        .unwrap();
    let mut client = app.client().with_bearer(&secret);
    assert_status(&client.get("/api/v1/entities").await, 200);
    assert!(
        tokens::revoke(app.pool(), admin_id, token.id)
            .await
            .unwrap()
    );
    assert_error(
        &client.get("/api/v1/entities").await,
        401,
        "unauthenticated",
    );
    let r = client
        .post_json(
            "/api/v1/entities",
            &json!({"entity_type": "widget", "name": "x"}),
        )
        .await;
    assert_error(&r, 401, "unauthenticated");
}

#[tokio::test]
async fn cookie_sessions_need_the_csrf_token_for_writes() {
    let app = TestApp::new().await;
    let mut browser = app.client();
    let session = assert_status(&browser.get("/api/v1/session").await, 200);
    assert_eq!(session["authenticated"], false);

    let body = serde_json::to_vec(&json!({"entity_type": "widget", "name": "x"})).unwrap();
    let r = browser
        .request(
            Method::POST,
            "/api/v1/entities",
            Some(("application/json", body.clone())),
            false,
        )
        .await;
    assert_error(&r, 403, "csrf_failed");
    // With the token the request reaches the handler, which wants a logged-in user.
    let r = browser
        .request(
            Method::POST,
            "/api/v1/entities",
            Some(("application/json", body)),
            true,
        )
        .await;
    assert_error(&r, 401, "unauthenticated");
    assert_error(
        &browser
            .request(Method::DELETE, "/api/v1/tokens/1", None, false)
            .await,
        403,
        "csrf_failed",
    );
}

#[tokio::test]
async fn unknown_api_paths_and_methods_answer_in_json() {
    let app = TestApp::new().await;
    let (_, mut admin) = admin(&app).await;
    for path in [
        "/api/v1/nope",
        "/api/v1/entities/1/nope",
        "/api/v1",
        "/api/v1/users/me/x",
    ] {
        let r = admin.get(path).await;
        assert_error(&r, 404, "not_found");
    }
    let r = admin
        .send_json(Method::PUT, "/api/v1/entities", &json!({}))
        .await;
    assert_error(&r, 405, "method_not_allowed");
    let r = admin.delete("/api/v1/entity-types").await;
    assert_error(&r, 405, "method_not_allowed");
}
