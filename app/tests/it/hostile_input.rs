//! Issue 14 findings 1 and 5, issue 10 findings 8 and 9: NUL characters, oversized bodies,
//! sloppy path ids, long echoed input, CSP, self-relations, ToR titles and wording.

use crate::api_support;

use ahlt::test_app::{ADMIN_PASSWORD, TestApp, TestClient};
use api_support::{admin, assert_error, assert_status, create_user, send_raw};
use axum::http::Method;
use serde_json::json;

/// A session client logged in as admin through the login form.
async fn admin_browser(app: &TestApp) -> TestClient {
    let mut browser = app.client();
    browser.login("admin", ADMIN_PASSWORD).await;
    browser
}

#[track_caller]
fn assert_nul_refused(r: &ahlt::test_app::TestResponse, field: &str) {
    assert!(
        r.status.is_client_error(),
        "expected 4xx naming {field}, got {}: {}",
        r.status,
        r.text()
    );
    let text = r.text();
    assert!(
        text.contains(field),
        "the answer does not name {field}: {text}"
    );
    assert!(text.contains("NUL"), "{text}");
}

#[tokio::test]
async fn nul_characters_in_json_are_refused_naming_the_field() {
    let app = TestApp::new().await;
    let (_, mut api) = admin(&app).await;
    let probe = assert_status(
        &api.post_json(
            "/api/v1/entities",
            &json!({"entity_type": "probe", "name": "n0"}),
        )
        .await,
        201,
    )["id"]
        .as_i64()
        .unwrap();
    let other = assert_status(
        &api.post_json(
            "/api/v1/entities",
            &json!({"entity_type": "probe", "name": "n2"}),
        )
        .await,
        201,
    )["id"]
        .as_i64()
        .unwrap();
    assert_status(
        &api.post_json(
            "/api/v1/entities",
            &json!({"entity_type": "relation_type", "name": "depends_on"}),
        )
        .await,
        201,
    );
    let cases = [
        (
            Method::POST,
            "/api/v1/entities".to_owned(),
            json!({"entity_type":"probe","name":"n1","properties":{"k":"a\u{0}b"}}),
            "properties.k",
        ),
        (
            Method::PATCH,
            format!("/api/v1/entities/{probe}"),
            json!({"label": "x\u{0}"}),
            "label",
        ),
        (
            Method::POST,
            "/api/v1/relations".to_owned(),
            json!({"relation_type":"depends_on","source_id":probe,"target_id":other,
                   "properties":{"note":"\u{0}"}}),
            "properties.note",
        ),
        (
            Method::POST,
            "/api/v1/tors".to_owned(),
            json!({"name":"t1","description":"a\u{0}"}),
            "description",
        ),
        (
            Method::POST,
            "/api/v1/tokens".to_owned(),
            json!({"name":"\u{0}"}),
            "name",
        ),
    ];
    for (method, path, body, field) in cases {
        let r = api.send_json(method.clone(), &path, &body).await;
        assert_nul_refused(&r, field);
        assert_eq!(r.status.as_u16(), 422, "{method} {path}: {}", r.text());
        assert_eq!(r.error_code(), "validation_failed");
    }
    // In a key, too.
    let r = send_raw(
        &mut api,
        Method::POST,
        "/api/v1/entities",
        r#"{"entity_type":"probe","name":"n9","properties":{"a\u0000":"b"}}"#,
    )
    .await;
    assert_nul_refused(&r, "properties.a");
    // And in the query string.
    let r = api.get("/api/v1/entities?q=%00").await;
    assert_nul_refused(&r, "q");
    assert_eq!(r.error_code(), "validation_failed");
}

#[tokio::test]
async fn nul_characters_in_html_forms_are_refused_naming_the_field() {
    let app = TestApp::new().await;
    let mut browser = admin_browser(&app).await;
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 3] = [
        ("/account/tokens", &[("name", "a\0b")], "name"),
        (
            "/tors",
            &[("name", "t2"), ("title", "T2"), ("description", "\0")],
            "description",
        ),
        ("/users", &[("username", "u1"), ("roles", "\0")], "roles"),
    ];
    for (path, fields, field) in cases {
        let r = browser.post_form(path, fields).await;
        assert_nul_refused(&r, field);
        assert!(r.text().contains("<html"), "an HTML page: {}", r.text());
    }
    let mut anonymous = app.client();
    let r = anonymous
        .post_form("/login", &[("username", "a\0b"), ("password", "x")])
        .await;
    assert_nul_refused(&r, "username");
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_with_a_json_error() {
    let app = TestApp::new().await;
    let (_, mut api) = admin(&app).await;
    let big = format!(
        r#"{{"entity_type":"probe","name":"big","label":"{}"}}"#,
        "x".repeat(10 * 1024 * 1024)
    );
    let r = send_raw(&mut api, Method::POST, "/api/v1/entities", &big).await;
    assert_error(&r, 413, "payload_too_large");
    let mut browser = admin_browser(&app).await;
    let r = browser
        .post_form(
            "/tors",
            &[("name", "t"), ("description", &"y".repeat(2 << 20))],
        )
        .await;
    assert_eq!(r.status.as_u16(), 413, "{}", r.text());
}

#[tokio::test]
async fn path_ids_are_parsed_strictly() {
    let app = TestApp::new().await;
    let (admin_id, mut api) = admin(&app).await;
    let token = assert_status(
        &api.post_json("/api/v1/tokens", &json!({"name": "t"})).await,
        201,
    )["id"]
        .as_i64()
        .unwrap();
    for bad in [
        format!("0{token}"),
        format!("+{token}"),
        format!("%20{token}"),
        format!("{token}%20"),
        format!("-{token}"),
    ] {
        let r = api.delete(&format!("/api/v1/tokens/{bad}")).await;
        assert_error(&r, 400, "bad_request");
        let r = api.get(&format!("/api/v1/users/{bad}")).await;
        assert_error(&r, 400, "bad_request");
    }
    // The token is still there; the canonical id works.
    assert_status(&api.delete(&format!("/api/v1/tokens/{token}")).await, 204);
    let mut browser = admin_browser(&app).await;
    for path in [
        format!("/users/0{admin_id}"),
        "/tors/+1".to_string(),
        format!("/entities/0{admin_id}"),
    ] {
        let r = browser.get(&path).await;
        assert!(
            r.status.as_u16() == 404 || r.status.as_u16() == 400,
            "{path}: {}",
            r.status
        );
    }
    let r = api
        .get(&format!("/api/v1/relations?source_id=0{admin_id}"))
        .await;
    assert_error(&r, 400, "bad_request");
}

#[tokio::test]
async fn long_invalid_input_is_cut_when_echoed() {
    let app = TestApp::new().await;
    let mut browser = admin_browser(&app).await;
    let long = "Q".repeat(10_000);
    let r = browser
        .post_form("/tors", &[("name", &long), ("title", "T")])
        .await;
    assert_eq!(r.status.as_u16(), 422, "{}", r.text());
    let longest_run = r
        .text()
        .split(|c: char| c != 'Q')
        .map(str::len)
        .max()
        .unwrap_or(0);
    // The form field keeps the input for correction; the message shows at most 80 of it.
    let message = r.text();
    let flash = message
        .split("flash-error")
        .nth(1)
        .unwrap_or_default()
        .split("</div>")
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(flash.contains('…'), "{flash}");
    assert!(flash.matches('Q').count() <= 80, "{flash}");
    assert!(longest_run >= 80);
    let r = browser
        .post_form("/roles", &[("name", &long), ("label", "x")])
        .await;
    assert_eq!(r.status.as_u16(), 422);
    let (_, mut api) = admin(&app).await;
    let r = api.post_json("/api/v1/tors", &json!({"name": long})).await;
    assert_error(&r, 422, "validation_failed");
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.chars().count() < 300, "{message}");
}

#[tokio::test]
async fn every_response_carries_a_content_security_policy() {
    let app = TestApp::new().await;
    let mut browser = app.client();
    for path in ["/login", "/nope", "/api/v1/session", "/static/app.css"] {
        let r = browser.get(path).await;
        let csp = r
            .headers
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(csp.starts_with("default-src 'self'"), "{path}: {csp:?}");
    }
    // No inline script or style anywhere the admin goes.
    let mut browser = admin_browser(&app).await;
    for path in [
        "/",
        "/tors",
        "/users",
        "/roles",
        "/audit",
        "/account",
        "/entities",
    ] {
        let html = browser.get(path).await.text();
        assert!(!html.contains("<script"), "{path}");
        assert!(!html.contains("style="), "{path}");
        assert!(!html.contains("<style"), "{path}");
    }
}

#[tokio::test]
async fn relations_to_oneself_and_untitled_tors_are_refused() {
    let app = TestApp::new().await;
    let (_, mut api) = admin(&app).await;
    let tor = assert_status(
        &api.post_json("/api/v1/tors", &json!({"name": "board"}))
            .await,
        201,
    )["id"]
        .as_i64()
        .unwrap();
    assert_status(
        &api.post_json(
            "/api/v1/entities",
            &json!({"entity_type": "relation_type", "name": "depends_on"}),
        )
        .await,
        201,
    );
    let r = api
        .post_json(
            "/api/v1/relations",
            &json!({"relation_type": "depends_on", "source_id": tor, "target_id": tor}),
        )
        .await;
    assert_error(&r, 422, "validation_failed");
    // A ToR cannot report to itself either.
    let r = api
        .send_json(
            Method::PATCH,
            &format!("/api/v1/tors/{tor}"),
            &json!({"parent_id": tor}),
        )
        .await;
    assert!(r.status.is_client_error(), "{}", r.text());

    let r = api
        .post_json("/api/v1/tors", &json!({"name": "blank", "label": "  "}))
        .await;
    assert_error(&r, 422, "validation_failed");
    let mut browser = admin_browser(&app).await;
    let r = browser
        .post_form("/tors", &[("name", "untitled"), ("title", "")])
        .await;
    assert_eq!(r.status.as_u16(), 422, "{}", r.text());
    assert!(r.text().contains("title must not be empty"), "{}", r.text());
}

#[tokio::test]
async fn messages_use_the_words_people_know() {
    let app = TestApp::new().await;
    let (_, mut api) = admin(&app).await;
    let r = api
        .post_json(
            "/api/v1/users",
            &json!({"username": "dn", "display_name": "a\u{7}b", "password": "long enough pw"}),
        )
        .await;
    assert_error(&r, 422, "validation_failed");
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.starts_with("display name must be"), "{message}");

    create_user(&app, "locked", &["viewer"]).await;
    let mut client = app.client();
    let mut last = None;
    for _ in 0..6 {
        last = Some(client.login("locked", "wrong password").await);
    }
    let last = last.unwrap();
    assert_eq!(last.status.as_u16(), 429);
    assert!(last.text().contains("15 minutes"), "{}", last.text());
    assert!(!last.text().contains("seconds"), "{}", last.text());
}
