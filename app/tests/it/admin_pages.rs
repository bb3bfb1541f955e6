//! Administration pages: users, roles, audit log and the user's own account.

use ahlt::domain::audit::Actor;
use ahlt::domain::roles;
use ahlt::domain::users::{self, NewUser};
use ahlt::store;
use ahlt::test_app::{ADMIN_PASSWORD, TestApp, TestClient, TestResponse};
use axum::http::{StatusCode, header};

const PASSWORD: &str = "a-long-enough-password";

async fn create_user(app: &TestApp, username: &str, roles: &[&str]) -> i64 {
    let mut tx = app.pool().begin().await.unwrap();
    let user = users::create(
        &mut tx,
        &Actor::system(),
        &NewUser {
            username: username.into(),
            display_name: format!("{username} display"),
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

async fn logged_in(app: &TestApp, username: &str, password: &str) -> TestClient {
    let mut client = app.client();
    let r = client.login(username, password).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "login: {}", r.text());
    client
}

async fn admin(app: &TestApp) -> TestClient {
    logged_in(app, "admin", ADMIN_PASSWORD).await
}

async fn role_id(app: &TestApp, name: &str) -> i64 {
    store::find_entity(app.pool(), "role", name)
        .await
        .unwrap()
        .unwrap()
        .id
}

fn assert_html(r: &TestResponse, status: StatusCode, needle: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    let content_type = r.headers[header::CONTENT_TYPE].to_str().unwrap();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    // Pages show messages as sentences; compare without regard to the first letter's case.
    assert!(
        r.text().to_lowercase().contains(&needle.to_lowercase()),
        "{needle:?} not in {}",
        r.text()
    );
}

async fn user_count(app: &TestApp) -> usize {
    users::list(app.pool()).await.unwrap().len()
}

#[tokio::test]
async fn a_viewer_is_refused_the_administration_pages_with_an_html_403() {
    let app = TestApp::new().await;
    create_user(&app, "vera", &["viewer"]).await;
    let mut viewer = logged_in(&app, "vera", PASSWORD).await;
    for path in ["/users/new", "/roles", "/audit", "/users"] {
        let r = viewer.get(path).await;
        assert_html(&r, StatusCode::FORBIDDEN, "Access denied");
    }
    let r = viewer
        .post_form("/users", &[("username", "sneaky"), ("password", PASSWORD)])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        users::find_by_username(app.pool(), "sneaky")
            .await
            .unwrap()
            .is_none()
    );
    // The dashboard and the own account are for everyone.
    assert_html(
        &viewer.get("/").await,
        StatusCode::OK,
        "Welcome, vera display",
    );
    assert_html(&viewer.get("/account").await, StatusCode::OK, "vera");
}

#[tokio::test]
async fn an_admin_creates_a_user_with_roles_through_the_form() {
    let app = TestApp::new().await;
    let mut client = admin(&app).await;
    assert_html(
        &client.get("/users/new").await,
        StatusCode::OK,
        r#"value="editor""#,
    );

    let r = client
        .post_form(
            "/users",
            &[
                ("username", "Nina"),
                ("display_name", "Nina Simone"),
                ("email", "nina@example.org"),
                ("password", PASSWORD),
                ("roles", "editor"),
                ("roles", "viewer"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let nina = users::find_by_username(app.pool(), "nina")
        .await
        .unwrap()
        .expect("created");
    assert_eq!(r.location(), Some(format!("/users/{}", nina.id).as_str()));
    assert_eq!(nina.display_name, "Nina Simone");
    assert_eq!(nina.email.as_deref(), Some("nina@example.org"));
    assert_eq!(nina.roles, ["editor", "viewer"]);

    let page = client.get(&format!("/users/{}", nina.id)).await;
    assert_html(&page, StatusCode::OK, "User nina created.");
    assert_html(&client.get("/users").await, StatusCode::OK, "Nina Simone");
    // The new user can log in with the password the admin chose.
    logged_in(&app, "nina", PASSWORD).await;
}

#[tokio::test]
async fn a_duplicate_username_is_refused_with_a_message_and_loses_nothing() {
    let app = TestApp::new().await;
    let existing = create_user(&app, "dup", &["viewer"]).await;
    let before = user_count(&app).await;
    let mut client = admin(&app).await;
    let r = client
        .post_form(
            "/users",
            &[
                ("username", "DUP"),
                ("display_name", "Impostor"),
                ("password", PASSWORD),
                ("roles", "admin"),
            ],
        )
        .await;
    assert_html(&r, StatusCode::CONFLICT, "already exists");
    // The form is shown again with what was typed.
    assert!(r.text().contains(r#"value="Impostor""#));
    assert_eq!(user_count(&app).await, before);
    let kept = users::require(app.pool(), existing).await.unwrap();
    assert_eq!(kept.display_name, "dup display");
    assert_eq!(kept.roles, ["viewer"]);
}

#[tokio::test]
async fn a_weak_password_is_refused_and_no_user_is_created() {
    let app = TestApp::new().await;
    let before = user_count(&app).await;
    let mut client = admin(&app).await;
    let r = client
        .post_form("/users", &[("username", "weak"), ("password", "short")])
        .await;
    assert_html(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "password must be between",
    );
    assert_eq!(user_count(&app).await, before);

    let r = client
        .post_form(
            "/users",
            &[("username", "bad name!"), ("password", PASSWORD)],
        )
        .await;
    assert_html(&r, StatusCode::UNPROCESSABLE_ENTITY, "username must be");
    assert_eq!(user_count(&app).await, before);
}

#[tokio::test]
async fn editing_a_users_roles_changes_their_effective_permissions() {
    let app = TestApp::new().await;
    let id = create_user(&app, "ed", &["viewer"]).await;
    let before = roles::effective_permissions(app.pool(), id).await.unwrap();
    assert!(!before.contains("users.view"));

    let mut client = admin(&app).await;
    let r = client
        .post_form(
            &format!("/users/{id}"),
            &[
                ("display_name", "Ed Itor"),
                ("email", ""),
                ("is_active", "on"),
                ("roles", "editor"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let after = roles::effective_permissions(app.pool(), id).await.unwrap();
    assert!(after.contains("users.view"), "{after:?}");
    // Inherited from viewer through editor.
    assert!(after.contains("tors.view"), "{after:?}");
    let ed = users::require(app.pool(), id).await.unwrap();
    assert_eq!(
        (ed.display_name.as_str(), ed.roles.as_slice()),
        ("Ed Itor", &["editor".to_owned()][..])
    );

    // Unchecking "active" deactivates: the user can no longer log in.
    let r = client
        .post_form(
            &format!("/users/{id}"),
            &[("display_name", "Ed Itor"), ("roles", "editor")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(!users::require(app.pool(), id).await.unwrap().is_active);
    assert_eq!(
        app.client().login("ed", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn an_admin_cannot_deactivate_or_delete_their_own_account() {
    let app = TestApp::new().await;
    let mut client = admin(&app).await;
    let me = users::find_by_username(app.pool(), "admin")
        .await
        .unwrap()
        .unwrap();
    let r = client
        .post_form(
            &format!("/users/{}", me.id),
            &[("display_name", "Admin"), ("roles", "admin")],
        )
        .await;
    assert_html(
        &r,
        StatusCode::CONFLICT,
        "cannot deactivate your own account",
    );
    assert!(users::require(app.pool(), me.id).await.unwrap().is_active);

    let r = client
        .post_form(&format!("/users/{}/delete", me.id), &[("confirm", "yes")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_html(
        &client.get(r.location().unwrap()).await,
        StatusCode::OK,
        "cannot delete your own account",
    );
    assert!(users::get(app.pool(), me.id).await.unwrap().is_some());
}

#[tokio::test]
async fn an_admin_sets_a_password_and_deletes_a_user() {
    let app = TestApp::new().await;
    let id = create_user(&app, "temp", &["viewer"]).await;
    let mut client = admin(&app).await;

    let r = client
        .post_form(&format!("/users/{id}/password"), &[("password", "tiny")])
        .await;
    assert_html(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "password must be between",
    );
    let r = client
        .post_form(
            &format!("/users/{id}/password"),
            &[("password", "brand-new-password")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    logged_in(&app, "temp", "brand-new-password").await;

    let r = client
        .post_form(&format!("/users/{id}/delete"), &[("confirm", "yes")])
        .await;
    assert_eq!(r.location(), Some("/users"));
    assert!(users::get(app.pool(), id).await.unwrap().is_none());
    assert_html(
        &client.get(&format!("/users/{id}")).await,
        StatusCode::NOT_FOUND,
        "Not found",
    );
    assert_html(
        &client.get("/users/not-a-number").await,
        StatusCode::NOT_FOUND,
        "Not found",
    );
}

#[tokio::test]
async fn roles_are_created_and_their_permissions_and_inheritance_set() {
    let app = TestApp::new().await;
    let mut client = admin(&app).await;
    let r = client
        .post_form("/roles", &[("name", "auditor"), ("label", "Auditor")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let auditor = role_id(&app, "auditor").await;

    let r = client
        .post_form(
            &format!("/roles/{auditor}"),
            &[("permissions", "audit.view"), ("inherits", "viewer")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let role = roles::get(app.pool(), auditor).await.unwrap();
    assert_eq!(role.permissions, ["audit.view"]);
    assert_eq!(role.inherits, ["viewer"]);
    assert_html(
        &client.get("/roles").await,
        StatusCode::OK,
        "Role auditor saved.",
    );

    let r = client.post_form("/roles", &[("name", "auditor")]).await;
    assert_html(&r, StatusCode::CONFLICT, "already exists");
    let r = client.post_form("/roles", &[("name", "Bad Name")]).await;
    assert_html(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "not a valid identifier",
    );
    let r = client
        .post_form(&format!("/roles/{auditor}"), &[("permissions", "no.such")])
        .await;
    assert_html(&r, StatusCode::UNPROCESSABLE_ENTITY, "unknown permission");
}

#[tokio::test]
async fn a_role_inheritance_cycle_is_rejected_and_nothing_changes() {
    let app = TestApp::new().await;
    let viewer = role_id(&app, "viewer").await;
    let before = roles::get(app.pool(), viewer).await.unwrap();
    let mut client = admin(&app).await;
    // editor already inherits viewer; viewer inheriting editor closes a cycle.
    let r = client
        .post_form(
            &format!("/roles/{viewer}"),
            &[("permissions", "tors.view"), ("inherits", "editor")],
        )
        .await;
    assert_html(&r, StatusCode::UNPROCESSABLE_ENTITY, "would inherit itself");
    // The permission change in the same form was rolled back too.
    assert_eq!(roles::get(app.pool(), viewer).await.unwrap(), before);
}

#[tokio::test]
async fn the_admin_role_keeps_every_permission() {
    let app = TestApp::new().await;
    let admin_role = role_id(&app, "admin").await;
    let before = roles::get(app.pool(), admin_role).await.unwrap();
    let mut client = admin(&app).await;
    let r = client
        .post_form(
            &format!("/roles/{admin_role}"),
            &[("permissions", "audit.view")],
        )
        .await;
    assert_html(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "always holds every permission",
    );
    assert_eq!(roles::get(app.pool(), admin_role).await.unwrap(), before);
}

#[tokio::test]
async fn changing_the_own_password_needs_the_current_one() {
    let app = TestApp::new().await;
    create_user(&app, "pat", &["viewer"]).await;
    let mut client = logged_in(&app, "pat", PASSWORD).await;

    let r = client
        .post_form(
            "/account/password",
            &[
                ("current_password", "not-my-password"),
                ("new_password", "another-long-password"),
                ("confirm_password", "another-long-password"),
            ],
        )
        .await;
    assert_html(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "current password is not correct",
    );
    logged_in(&app, "pat", PASSWORD).await;

    let r = client
        .post_form(
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "another-long-password"),
                ("confirm_password", "different-long-password"),
            ],
        )
        .await;
    assert_html(&r, StatusCode::UNPROCESSABLE_ENTITY, "confirmation differ");

    let r = client
        .post_form(
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "another-long-password"),
                ("confirm_password", "another-long-password"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(
        app.client().login("pat", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    logged_in(&app, "pat", "another-long-password").await;
}

/// The token secret shown once on the account page.
fn shown_token(r: &TestResponse) -> String {
    let text = r.text();
    let start = text
        .find(r#"id="new-token">"#)
        .expect("a new token on the page");
    let rest = &text[start + r#"id="new-token">"#.len()..];
    rest[..rest.find('<').unwrap()].to_owned()
}

#[tokio::test]
async fn an_api_token_from_the_account_page_works_until_revoked() {
    let app = TestApp::new().await;
    let mut client = admin(&app).await;
    let r = client
        .post_form("/account/tokens", &[("name", "laptop cli")])
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let secret = shown_token(&r);
    assert!(secret.starts_with("ahlt_"), "{secret}");

    let mut bearer = app.client().with_bearer(&secret);
    let session = bearer.get("/api/v1/session").await.json();
    assert_eq!(session["authenticated"], true);
    assert_eq!(session["user"]["username"], "admin");

    // Shown once: the account page lists the token but never its secret again.
    let page = client.get("/account").await;
    assert_html(&page, StatusCode::OK, "laptop cli");
    assert!(!page.text().contains(&secret));
    let audit: String = sqlx::query_scalar("SELECT string_agg(details::text, ' ') FROM audit_log")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert!(!audit.contains(&secret));

    let (token_id,): (i64,) = sqlx::query_as("SELECT id FROM api_tokens WHERE name = 'laptop cli'")
        .fetch_one(app.pool())
        .await
        .unwrap();
    let r = client
        .post_form(
            &format!("/account/tokens/{token_id}/revoke"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        bearer.get("/api/v1/session").await.json()["authenticated"],
        false
    );
    assert_html(
        &client.get("/account").await,
        StatusCode::OK,
        "Token revoked.",
    );
}

#[tokio::test]
async fn nobody_revokes_someone_elses_token() {
    let app = TestApp::new().await;
    create_user(&app, "other", &["viewer"]).await;
    let mut client = admin(&app).await;
    let secret = shown_token(
        &client
            .post_form("/account/tokens", &[("name", "mine")])
            .await,
    );
    let (token_id,): (i64,) = sqlx::query_as("SELECT id FROM api_tokens WHERE name = 'mine'")
        .fetch_one(app.pool())
        .await
        .unwrap();
    let mut other = logged_in(&app, "other", PASSWORD).await;
    other
        .post_form(
            &format!("/account/tokens/{token_id}/revoke"),
            &[("confirm", "yes")],
        )
        .await;
    let mut bearer = app.client().with_bearer(&secret);
    assert_eq!(
        bearer.get("/api/v1/session").await.json()["authenticated"],
        true
    );

    let r = client.post_form("/account/tokens", &[("name", "  ")]).await;
    assert_html(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "Give the token a name",
    );
}

#[tokio::test]
async fn the_audit_page_lists_what_was_just_done() {
    let app = TestApp::new().await;
    let mut client = admin(&app).await;
    client
        .post_form("/users", &[("username", "audited"), ("password", PASSWORD)])
        .await;
    client.post_form("/roles", &[("name", "scribe")]).await;
    let page = client.get("/audit").await;
    assert_html(&page, StatusCode::OK, "user.create");
    for needle in ["role.create", "auth.login", "audited", "scribe"] {
        assert!(
            page.text().contains(needle),
            "{needle} not in {}",
            page.text()
        );
    }
    assert!(!page.text().contains(PASSWORD));
    assert_html(&client.get("/").await, StatusCode::OK, "user.create");
}

#[tokio::test]
async fn the_audit_page_pages_backwards_with_an_older_link() {
    let app = TestApp::new().await;
    sqlx::query(
        "INSERT INTO audit_log (actor_name, action, details) \
         SELECT 'system', 'test.entry_' || n, '{}'::jsonb FROM generate_series(1, 60) AS n",
    )
    .execute(app.pool())
    .await
    .unwrap();
    let mut client = admin(&app).await;
    let first = client.get("/audit").await;
    assert_html(&first, StatusCode::OK, "test.entry_60");
    assert!(!first.text().contains("test.entry_1<"));
    let text = first.text();
    let start = text.find(r#"href="/audit?after="#).expect("an older link") + r#"href=""#.len();
    let older = &text[start..start + text[start..].find('"').unwrap()];

    let second = client.get(older).await;
    assert_html(&second, StatusCode::OK, "test.entry_1<");
    assert!(!second.text().contains("test.entry_60"));
    assert_html(
        &client.get("/audit?after=oops").await,
        StatusCode::BAD_REQUEST,
        "invalid cursor",
    );
}
