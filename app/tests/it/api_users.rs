//! JSON API v1: users, their capabilities, and the caller's own API tokens.

use crate::api_support;

use ahlt::auth::password;
use ahlt::domain::audit::Actor;
use ahlt::domain::tors::{self, NewFunction, NewTor};
use ahlt::domain::users;
use ahlt::domain::{Capability, perm, role, roles};
use ahlt::test_app::TestApp;
use api_support::*;
use axum::http::Method;
use serde_json::json;

#[tokio::test]
async fn a_user_is_created_with_roles_and_the_password_never_comes_back() {
    let app = TestApp::new().await;
    let (admin_id, mut admin) = admin(&app).await;
    let r = admin
        .post_json(
            "/api/v1/users",
            &json!({"username": "Erin", "display_name": "Erin Example",
                    "email": "erin@example.org", "password": "correct horse battery",
                    "roles": ["editor"]}),
        )
        .await;
    let created = assert_status(&r, 201);
    let id = created["id"].as_i64().unwrap();
    assert_eq!(r.location(), Some(format!("/api/v1/users/{id}").as_str()));
    assert_eq!(created["username"], "erin");
    assert_eq!(created["roles"], json!(["editor"]));
    assert!(!r.text().contains("correct horse battery"));
    assert!(created.get("password").is_none());
    assert_no_secrets(&app, &r).await;

    // The password works: the stored hash verifies it.
    let hash = users::password_hash(app.pool(), id).await.unwrap().unwrap();
    assert!(
        password::verify("correct horse battery", &hash)
            .await
            .unwrap()
    );

    let shown = assert_status(&admin.get(&format!("/api/v1/users/{id}")).await, 200);
    assert_eq!(shown["email"], "erin@example.org");
    let entries = audit(&app, "user.create").await;
    let entry = entries.iter().find(|e| e.1 == Some(id)).expect("audited");
    assert_eq!(entry.0, Some(admin_id));
    assert!(!entry.2.to_string().contains("correct horse"));
}

#[tokio::test]
async fn user_mistakes_are_rejected_with_stable_codes() {
    let app = TestApp::new().await;
    let (_, mut admin) = admin(&app).await;
    let ok = json!({"username": "fred", "display_name": "Fred", "password": "long enough pass"});
    assert_status(&admin.post_json("/api/v1/users", &ok).await, 201);
    assert_error(
        &admin.post_json("/api/v1/users", &ok).await,
        409,
        "conflict",
    );
    let cases = [
        (
            json!({"username": "g", "display_name": "G", "password": "short"}),
            422,
            "validation_failed",
        ),
        (
            json!({"username": "bad name", "display_name": "G", "password": "long enough pass"}),
            422,
            "validation_failed",
        ),
        (
            json!({"username": "g", "display_name": "G", "password": "long enough pass", "email": "nope"}),
            422,
            "validation_failed",
        ),
        (
            json!({"username": "g", "display_name": "G", "password": "long enough pass", "roles": ["wizard"]}),
            422,
            "validation_failed",
        ),
        (
            json!({"username": "g", "display_name": "G", "password": "long enough pass", "is_admin": true}),
            400,
            "invalid_json",
        ),
        (
            json!({"username": "g", "display_name": "G"}),
            400,
            "invalid_json",
        ),
        (
            json!({"username": "g", "display_name": "G", "password": "long enough pass", "roles": "editor"}),
            400,
            "invalid_json",
        ),
    ];
    for (body, status, code) in cases {
        let r = admin.post_json("/api/v1/users", &body).await;
        assert_error(&r, status, code);
    }
    assert_error(&admin.get("/api/v1/users/987654").await, 404, "not_found");
    assert_error(&admin.get("/api/v1/users/abc").await, 400, "bad_request");
    assert_error(
        &admin
            .send_json(
                Method::PATCH,
                "/api/v1/users/987654",
                &json!({"display_name": "x"}),
            )
            .await,
        404,
        "not_found",
    );
    assert_error(
        &admin.delete("/api/v1/users/987654").await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn a_user_is_patched_and_null_clears_the_email() {
    let app = TestApp::new().await;
    let (_, mut admin) = admin(&app).await;
    let id = create_user(&app, "gina", &[role::VIEWER]).await;
    let r = admin
        .send_json(
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            &json!({"display_name": "Gina G", "email": "gina@example.org", "roles": ["editor"]}),
        )
        .await;
    let patched = assert_status(&r, 200);
    assert_eq!(patched["display_name"], "Gina G");
    assert_eq!(patched["email"], "gina@example.org");
    assert_eq!(patched["roles"], json!(["editor"]));

    let r = admin
        .send_json(
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            &json!({"email": null}),
        )
        .await;
    let patched = assert_status(&r, 200);
    assert!(patched["email"].is_null());
    assert_eq!(patched["display_name"], "Gina G", "absent fields stay");

    let r = admin
        .send_json(
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            &json!({"password": "a brand new password"}),
        )
        .await;
    assert_status(&r, 200);
    assert_no_secrets(&app, &r).await;
    let hash = users::password_hash(app.pool(), id).await.unwrap().unwrap();
    assert!(
        password::verify("a brand new password", &hash)
            .await
            .unwrap()
    );
    let changes = audit(&app, "user.password_change").await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].2, json!({}), "the password is never audited");
    assert!(audit(&app, "user.update").await.len() >= 2);
}

#[tokio::test]
async fn a_deactivated_or_deleted_user_loses_api_access() {
    let app = TestApp::new().await;
    let (admin_id, mut admin) = admin(&app).await;
    let (hank, mut hank_client) = user(&app, "hank", &[role::VIEWER]).await;
    assert_status(&hank_client.get("/api/v1/users/me").await, 200);

    let r = admin
        .send_json(
            Method::PATCH,
            &format!("/api/v1/users/{hank}"),
            &json!({"is_active": false}),
        )
        .await;
    assert_eq!(assert_status(&r, 200)["is_active"], false);
    assert_error(
        &hank_client.get("/api/v1/users/me").await,
        401,
        "unauthenticated",
    );

    assert_status(&admin.delete(&format!("/api/v1/users/{hank}")).await, 204);
    assert_error(
        &admin.get(&format!("/api/v1/users/{hank}")).await,
        404,
        "not_found",
    );
    let deleted = audit(&app, "user.delete").await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].0, Some(admin_id));

    // Nobody locks themself out through the API.
    assert_error(
        &admin.delete(&format!("/api/v1/users/{admin_id}")).await,
        409,
        "conflict",
    );
    let r = admin
        .send_json(
            Method::PATCH,
            &format!("/api/v1/users/{admin_id}"),
            &json!({"is_active": false}),
        )
        .await;
    assert_error(&r, 409, "conflict");
}

#[tokio::test]
async fn users_are_listed_in_pages_without_gaps_or_repeats() {
    let app = TestApp::new().await;
    let (admin_id, mut admin) = admin(&app).await;
    let mut expected = vec![admin_id];
    for i in 0..11 {
        expected.push(create_user(&app, &format!("user{i:02}"), &[]).await);
    }
    expected.sort();
    assert_eq!(walk(&mut admin, "/api/v1/users", 4).await, expected);
    assert_eq!(walk(&mut admin, "/api/v1/users", 500).await, expected);
    assert_error(
        &admin.get("/api/v1/users?limit=0").await,
        400,
        "bad_request",
    );
    assert_error(
        &admin.get("/api/v1/users?after=-2").await,
        400,
        "bad_request",
    );
    let r = admin.get("/api/v1/users").await;
    assert_no_secrets(&app, &r).await;
}

#[tokio::test]
async fn users_view_is_needed_to_see_others_and_users_manage_to_change_them() {
    let app = TestApp::new().await;
    let (admin_id, _) = admin(&app).await;
    let (viewer_id, mut viewer) = user(&app, "ivy", &[role::VIEWER]).await;
    let (_, mut editor) = user(&app, "jack", &[role::EDITOR]).await;

    // Everyone sees themself.
    let me = assert_status(&viewer.get("/api/v1/users/me").await, 200);
    assert_eq!(me["id"], viewer_id);
    assert!(
        me["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!(perm::TORS_VIEW))
    );
    assert_status(
        &viewer.get(&format!("/api/v1/users/{viewer_id}")).await,
        200,
    );
    assert_error(&viewer.get("/api/v1/users").await, 403, "forbidden");
    assert_error(
        &viewer.get(&format!("/api/v1/users/{admin_id}")).await,
        403,
        "forbidden",
    );

    // Editors have users.view but not users.manage.
    assert_status(&editor.get("/api/v1/users").await, 200);
    assert_status(&editor.get(&format!("/api/v1/users/{admin_id}")).await, 200);
    let body = json!({"username": "kim", "display_name": "Kim", "password": "long enough pass"});
    assert_error(
        &editor.post_json("/api/v1/users", &body).await,
        403,
        "forbidden",
    );
    assert_error(
        &editor
            .send_json(
                Method::PATCH,
                &format!("/api/v1/users/{viewer_id}"),
                &json!({"display_name": "x"}),
            )
            .await,
        403,
        "forbidden",
    );
    assert_error(
        &editor.delete(&format!("/api/v1/users/{viewer_id}")).await,
        403,
        "forbidden",
    );
    assert!(
        users::find_by_username(app.pool(), "kim")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_user_manager_cannot_hand_out_permissions_they_do_not_hold() {
    let app = TestApp::new().await;
    let mut conn = app.pool().acquire().await.unwrap();
    let manager_role = roles::create(&mut conn, &Actor::system(), "user_manager", "User manager")
        .await
        .unwrap();
    roles::set_permissions(
        &mut conn,
        &Actor::system(),
        manager_role.id,
        &[perm::USERS_VIEW.into(), perm::USERS_MANAGE.into()],
    )
    .await
    .unwrap();
    drop(conn);
    let (_, mut manager) = user(&app, "lena", &["user_manager"]).await;
    let target = create_user(&app, "mo", &[]).await;

    let r = manager
        .post_json(
            "/api/v1/users",
            &json!({"username": "evil", "display_name": "Evil", "password": "long enough pass", "roles": ["admin"]}),
        )
        .await;
    assert_error(&r, 403, "forbidden");
    assert!(
        r.text().contains("roles.manage"),
        "names what is missing: {}",
        r.text()
    );
    let r = manager
        .send_json(
            Method::PATCH,
            &format!("/api/v1/users/{target}"),
            &json!({"roles": ["viewer"]}),
        )
        .await;
    assert_error(&r, 403, "forbidden");
    assert!(
        users::require(app.pool(), target)
            .await
            .unwrap()
            .roles
            .is_empty()
    );

    // Nor can they take over or remove someone who holds more than they do.
    let (admin_id, _) = admin(&app).await;
    let r = manager
        .send_json(
            Method::PATCH,
            &format!("/api/v1/users/{admin_id}"),
            &json!({"password": "the manager knows it now"}),
        )
        .await;
    assert_error(&r, 403, "forbidden");
    let hash = users::password_hash(app.pool(), admin_id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !password::verify("the manager knows it now", &hash)
            .await
            .unwrap()
    );
    assert_error(
        &manager.delete(&format!("/api/v1/users/{admin_id}")).await,
        403,
        "forbidden",
    );
    assert!(users::get(app.pool(), admin_id).await.unwrap().is_some());

    // Roles within the manager's own permissions are fine.
    let r = manager
        .send_json(
            Method::PATCH,
            &format!("/api/v1/users/{target}"),
            &json!({"roles": ["user_manager"]}),
        )
        .await;
    assert_eq!(assert_status(&r, 200)["roles"], json!(["user_manager"]));
}

#[tokio::test]
async fn capabilities_show_role_and_position_grants_to_the_user_and_to_user_viewers() {
    let app = TestApp::new().await;
    let (_, mut admin) = admin(&app).await;
    let (nina, mut nina_client) = user(&app, "nina", &[role::VIEWER]).await;
    let (_, mut other) = user(&app, "otto", &[role::VIEWER]).await;
    let mut conn = app.pool().acquire().await.unwrap();
    let board = tors::create(
        &mut conn,
        &Actor::system(),
        &NewTor {
            name: "board".into(),
            label: "Board".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let chair = tors::add_function(
        &mut conn,
        &Actor::system(),
        board.id,
        &NewFunction {
            slug: "chair".into(),
            label: "Chair".into(),
            description: String::new(),
            capabilities: [Capability::CallMeeting].into_iter().collect(),
        },
    )
    .await
    .unwrap();
    tors::assign(&mut conn, &Actor::system(), chair.id, nina)
        .await
        .unwrap();
    drop(conn);

    let path = format!("/api/v1/users/{nina}/capabilities");
    let body = assert_status(&nina_client.get(&path).await, 200);
    let grants = body["items"].as_array().unwrap();
    assert!(
        grants.contains(&json!({"capability": "tor.view", "tor_id": null,
                                    "via": {"kind": "role", "role": "viewer"}})),
        "{body}"
    );
    assert!(grants.contains(&json!({"capability": "meeting.call", "tor_id": board.id,
                                    "via": {"kind": "position", "function_id": chair.id, "function": "Chair"}})), "{body}");
    assert_eq!(assert_status(&admin.get(&path).await, 200), body);
    assert_error(&other.get(&path).await, 403, "forbidden");
    assert_error(
        &admin.get("/api/v1/users/987654/capabilities").await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn tokens_are_created_listed_and_revoked_by_their_owner_only() {
    let app = TestApp::new().await;
    let (admin_id, mut admin) = admin(&app).await;
    let (_, mut other) = user(&app, "pia", &[]).await;

    let r = admin
        .post_json("/api/v1/tokens", &json!({"name": "  ci pipeline "}))
        .await;
    let created = assert_status(&r, 201);
    let token_id = created["id"].as_i64().unwrap();
    assert_eq!(
        r.location(),
        Some(format!("/api/v1/tokens/{token_id}").as_str())
    );
    assert_eq!(created["name"], "ci pipeline");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("ahlt_"));
    assert_no_secrets(&app, &r).await;

    let mut ci = app.client().with_bearer(&secret);
    assert_eq!(
        assert_status(&ci.get("/api/v1/users/me").await, 200)["id"],
        admin_id
    );

    let r = admin.get("/api/v1/tokens").await;
    let listed = assert_status(&r, 200);
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == token_id)
    );
    assert!(!r.text().contains(&secret), "the secret is shown only once");
    assert_no_secrets(&app, &r).await;
    let others = assert_status(&other.get("/api/v1/tokens").await, 200);
    assert!(
        others["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["id"] != token_id)
    );

    // Someone else's token is not theirs to revoke (nor to learn about).
    assert_error(
        &other.delete(&format!("/api/v1/tokens/{token_id}")).await,
        404,
        "not_found",
    );
    assert_status(&ci.get("/api/v1/users/me").await, 200);

    assert_status(
        &admin.delete(&format!("/api/v1/tokens/{token_id}")).await,
        204,
    );
    assert_error(&ci.get("/api/v1/users/me").await, 401, "unauthenticated");
    assert_error(
        &admin.delete(&format!("/api/v1/tokens/{token_id}")).await,
        404,
        "not_found",
    );

    let created = audit(&app, "token.create").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].2, json!({"name": "ci pipeline"}));
    assert!(!created[0].2.to_string().contains(&secret));
    assert_eq!(audit(&app, "token.revoke").await.len(), 1);
}

#[tokio::test]
async fn token_names_are_checked() {
    let app = TestApp::new().await;
    let (_, mut admin) = admin(&app).await;
    for name in ["", "   ", &"x".repeat(101), "a\u{7}b"] {
        let r = admin
            .post_json("/api/v1/tokens", &json!({ "name": name }))
            .await;
        assert_error(&r, 422, "validation_failed");
    }
    let r = admin
        .post_json("/api/v1/tokens", &json!({"name": "x", "scope": "all"}))
        .await;
    assert_error(&r, 400, "invalid_json");
    assert_error(
        &app.client().get("/api/v1/tokens").await,
        401,
        "unauthenticated",
    );
}

#[tokio::test]
async fn the_audit_log_is_paginated_newest_first_for_audit_viewers() {
    let app = TestApp::new().await;
    let (_, mut admin) = admin(&app).await;
    let (_, mut viewer) = user(&app, "quinn", &[role::VIEWER]).await;
    for i in 0..5 {
        admin
            .post_json("/api/v1/tokens", &json!({"name": format!("t{i}")}))
            .await;
    }
    let all: Vec<i64> = sqlx::query_scalar("SELECT id FROM audit_log ORDER BY id DESC")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert_eq!(walk(&mut admin, "/api/v1/audit", 2).await, all);
    assert_error(&viewer.get("/api/v1/audit").await, 403, "forbidden");
}
