//! Issue 10, finding 1: there is always an active user who can manage users, on every path,
//! and operators can recover with `ahlt admin grant` / `ahlt admin reset-password`.

use crate::api_support;

use ahlt::domain::audit::Actor;
use ahlt::domain::{DomainError, guard, recovery, roles, users};
use ahlt::test_app::{ADMIN_PASSWORD, TestApp};
use api_support::{PASSWORD, admin, assert_error, assert_status, audit, create_user, user};
use axum::http::Method;
use serde_json::json;

async fn managers(app: &TestApp) -> i64 {
    let mut conn = app.pool().acquire().await.unwrap();
    guard::user_managers(&mut conn).await.unwrap()
}

async fn roles_of(app: &TestApp, username: &str) -> Vec<String> {
    users::find_by_username(app.pool(), username)
        .await
        .unwrap()
        .unwrap()
        .roles
}

#[tokio::test]
async fn the_last_administrator_cannot_demote_themselves_in_the_user_form() {
    let app = TestApp::new().await;
    let (admin_id, _) = admin(&app).await;
    let mut browser = app.client();
    browser.login("admin", ADMIN_PASSWORD).await;
    let r = browser
        .post_form(
            &format!("/users/{admin_id}"),
            &[
                ("display_name", "Administrator"),
                ("is_active", "on"),
                ("roles", "viewer"),
            ],
        )
        .await;
    assert_eq!(r.status.as_u16(), 409, "{}", r.text());
    assert!(
        r.text().contains("no active user who can manage users"),
        "{}",
        r.text()
    );
    assert_eq!(roles_of(&app, "admin").await, ["admin"]);
    // Still in charge.
    assert_eq!(browser.get("/users").await.status.as_u16(), 200);
}

#[tokio::test]
async fn the_api_refuses_to_demote_or_deactivate_the_last_manager() {
    let app = TestApp::new().await;
    let (admin_id, mut api) = admin(&app).await;
    let r = api
        .send_json(
            Method::PATCH,
            &format!("/api/v1/users/{admin_id}"),
            &json!({"roles": ["viewer"]}),
        )
        .await;
    assert_error(&r, 409, "conflict");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("manage users")
    );
    assert_eq!(roles_of(&app, "admin").await, ["admin"]);

    // With a second manager the first may step down; the second then may not.
    let (second_id, mut second) = user(&app, "second", &["admin"]).await;
    assert_status(
        &api.send_json(
            Method::PATCH,
            &format!("/api/v1/users/{admin_id}"),
            &json!({"roles": ["viewer"]}),
        )
        .await,
        200,
    );
    let r = second
        .send_json(
            Method::PATCH,
            &format!("/api/v1/users/{second_id}"),
            &json!({"roles": []}),
        )
        .await;
    assert_error(&r, 409, "conflict");
    assert_eq!(managers(&app).await, 1);
}

#[tokio::test]
async fn revoking_the_permission_or_the_inheritance_from_a_role_is_guarded() {
    let app = TestApp::new().await;
    let (admin_id, mut api) = admin(&app).await;
    let mut conn = app.pool().acquire().await.unwrap();
    let system = Actor::system();
    let managers_role = roles::create(&mut conn, &system, "managers", "Managers")
        .await
        .unwrap();
    roles::set_permissions(
        &mut conn,
        &system,
        managers_role.id,
        &["users.manage".into(), "roles.manage".into()],
    )
    .await
    .unwrap();
    let delegates = roles::create(&mut conn, &system, "delegates", "Delegates")
        .await
        .unwrap();
    roles::set_inherits(&mut conn, &system, delegates.id, &["managers".into()])
        .await
        .unwrap();
    drop(conn);
    create_user(&app, "mona", &["delegates"]).await;
    // The admin steps down: mona (through delegates -> managers) still manages users.
    assert_status(
        &api.send_json(
            Method::PATCH,
            &format!("/api/v1/users/{admin_id}"),
            &json!({"roles": ["viewer"]}),
        )
        .await,
        200,
    );
    let mut mona = app.client();
    mona.login("mona", PASSWORD).await;
    // Permission revocation from the role form.
    let r = mona
        .post_form(
            &format!("/roles/{}", managers_role.id),
            &[("permissions", "roles.manage")],
        )
        .await;
    assert_eq!(r.status.as_u16(), 409, "{}", r.text());
    assert!(r.text().contains("manage users"), "{}", r.text());
    // Inheritance removal from the role form.
    let r = mona
        .post_form(&format!("/roles/{}", delegates.id), &[])
        .await;
    assert_eq!(r.status.as_u16(), 409, "{}", r.text());
    assert_eq!(managers(&app).await, 1);
    assert_eq!(
        roles::get(app.pool(), managers_role.id)
            .await
            .unwrap()
            .permissions,
        ["roles.manage", "users.manage"]
    );
}

#[tokio::test]
async fn deactivating_or_deleting_the_last_manager_is_refused_in_the_domain() {
    let app = TestApp::new().await;
    let (admin_id, _) = admin(&app).await;
    let mut tx = app.pool().begin().await.unwrap();
    let err = users::update(
        &mut tx,
        &Actor::system(),
        admin_id,
        &users::UserUpdate {
            is_active: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, DomainError::Conflict(_)), "{err:?}");
    drop(tx);
    let mut tx = app.pool().begin().await.unwrap();
    let err = users::delete(&mut tx, &Actor::system(), admin_id)
        .await
        .unwrap_err();
    assert!(matches!(err, DomainError::Conflict(_)), "{err:?}");
    drop(tx);
    assert_eq!(managers(&app).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_managers_demoting_each_other_at_once_leave_one() {
    for round in 0..4 {
        let app = TestApp::new().await;
        let (a_id, mut a_api) = user(&app, "anna", &["admin"]).await;
        let (b_id, mut b_api) = user(&app, "bert", &["admin"]).await;
        // The seeded admin steps down: anna and bert are the only managers.
        let (admin_id, mut admin_api) = admin(&app).await;
        assert_status(
            &admin_api
                .send_json(
                    Method::PATCH,
                    &format!("/api/v1/users/{admin_id}"),
                    &json!({"roles": ["viewer"]}),
                )
                .await,
            200,
        );
        let first = tokio::spawn(async move {
            a_api
                .send_json(
                    Method::PATCH,
                    &format!("/api/v1/users/{b_id}"),
                    &json!({"roles": ["viewer"]}),
                )
                .await
                .status
                .as_u16()
        });
        let second = tokio::spawn(async move {
            b_api
                .send_json(
                    Method::PATCH,
                    &format!("/api/v1/users/{a_id}"),
                    &json!({"roles": ["viewer"]}),
                )
                .await
                .status
                .as_u16()
        });
        let mut statuses = [first.await.unwrap(), second.await.unwrap()];
        statuses.sort();
        // One demotion wins; the other is refused by the guard (409) or, when it started
        // after the first committed, because its author no longer manages users (403).
        assert_eq!(statuses[0], 200, "round {round}: {statuses:?}");
        assert!(
            statuses[1] == 409 || statuses[1] == 403,
            "round {round}: {statuses:?}"
        );
        assert_eq!(managers(&app).await, 1, "round {round}");
    }
}

#[tokio::test]
async fn recovery_grants_admin_and_resets_passwords_with_audit_entries() {
    let app = TestApp::new().await;
    let (admin_id, _) = admin(&app).await;
    create_user(&app, "rescuer", &["viewer"]).await;
    // Simulate the lockout the issue describes (done by hand in SQL): nobody manages users.
    sqlx::query("DELETE FROM relations WHERE source_id = $1")
        .bind(admin_id)
        .execute(app.pool())
        .await
        .unwrap();
    assert_eq!(managers(&app).await, 0);

    let user = recovery::grant_admin(app.pool(), "Rescuer").await.unwrap();
    assert_eq!(user.roles, ["admin", "viewer"]);
    assert!(user.is_active);
    assert_eq!(managers(&app).await, 1);
    // Idempotent.
    recovery::grant_admin(app.pool(), "rescuer").await.unwrap();
    let grants = audit(&app, "admin.grant").await;
    assert_eq!(grants.len(), 2);
    assert_eq!(grants[0].1, Some(user.id));

    let password = recovery::reset_password(app.pool(), "rescuer")
        .await
        .unwrap();
    let mut client = app.client();
    let r = client.login("rescuer", &password).await;
    assert_eq!(r.status.as_u16(), 303, "{}", r.text());
    assert_eq!(client.get("/users").await.status.as_u16(), 200);
    let resets = audit(&app, "admin.reset_password").await;
    assert_eq!(resets.len(), 1);
    assert!(!resets[0].2.to_string().contains(&password));

    assert!(matches!(
        recovery::grant_admin(app.pool(), "nobody").await,
        Err(DomainError::NotFound(_))
    ));
}

#[tokio::test]
async fn deleting_the_role_the_last_manager_holds_is_refused_after_a_confirmation() {
    let app = TestApp::new().await;
    let (admin_id, mut api) = admin(&app).await;
    let mut conn = app.pool().acquire().await.unwrap();
    let system = Actor::system();
    let managers_role = roles::create(&mut conn, &system, "managers", "Managers")
        .await
        .unwrap();
    roles::set_permissions(
        &mut conn,
        &system,
        managers_role.id,
        &["users.manage".into(), "roles.manage".into()],
    )
    .await
    .unwrap();
    let spare = roles::create(&mut conn, &system, "spare", "Spare")
        .await
        .unwrap();
    drop(conn);
    create_user(&app, "mia", &["managers"]).await;
    assert_status(
        &api.send_json(
            Method::PATCH,
            &format!("/api/v1/users/{admin_id}"),
            &json!({"roles": ["viewer"]}),
        )
        .await,
        200,
    );
    let mut mia = app.client();
    mia.login("mia", PASSWORD).await;
    // Without the confirmation: a page asking for it, nothing deleted.
    let r = mia
        .post_form(&format!("/roles/{}/delete", spare.id), &[])
        .await;
    assert_eq!(r.status.as_u16(), 200);
    assert!(r.text().contains("Delete role Spare?"), "{}", r.text());
    assert!(roles::get(app.pool(), spare.id).await.is_ok());
    let r = mia
        .post_form(
            &format!("/roles/{}/delete", spare.id),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status.as_u16(), 303, "{}", r.text());
    assert!(roles::get(app.pool(), spare.id).await.is_err());
    // The role through which mia, the last manager, manages users.
    let r = mia
        .post_form(
            &format!("/roles/{}/delete", managers_role.id),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status.as_u16(), 409, "{}", r.text());
    assert!(r.text().contains("manage users"), "{}", r.text());
    assert!(roles::get(app.pool(), managers_role.id).await.is_ok());
    // Built-in roles stay.
    let viewer = roles::list(app.pool())
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.name == "viewer")
        .unwrap();
    let r = mia
        .post_form(
            &format!("/roles/{}/delete", viewer.id),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status.as_u16(), 409, "{}", r.text());
    assert_eq!(audit(&app, "role.delete").await.len(), 1);
}
