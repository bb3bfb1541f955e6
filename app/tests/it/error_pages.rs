//! Issue 10, finding 7: one error page design for every HTML error, inside the site layout
//! (with the navigation when logged in), messages written as sentences.

use crate::api_support;

use ahlt::test_app::{ADMIN_PASSWORD, TestApp, TestResponse};
use api_support::{PASSWORD, create_user};

#[track_caller]
fn assert_error_page(r: &TestResponse, status: u16, heading: &str, with_nav: bool) {
    assert_eq!(r.status.as_u16(), status, "{}", r.text());
    let html = r.text();
    assert!(html.contains("class=\"card error-page\""), "{html}");
    assert!(
        html.contains(&format!(
            "<h1>{heading} <span class=\"muted\">({status})</span></h1>"
        )),
        "{html}"
    );
    assert_eq!(html.contains("class=\"mainnav\""), with_nav, "{html}");
    // The old bare design ("403 · Forbidden") is gone.
    assert!(
        !html.contains(" · Forbidden") && !html.contains(" · Not Found"),
        "{html}"
    );
    // The message is a sentence: capital letter first, full stop at the end.
    let message = html
        .split("</h1>")
        .nth(1)
        .and_then(|rest| rest.split("<p>").nth(1))
        .and_then(|p| p.split("</p>").next())
        .unwrap_or_default();
    assert!(
        message.starts_with(|c: char| c.is_uppercase()) && message.ends_with(['.', '?', '!']),
        "{message:?}"
    );
}

#[tokio::test]
async fn every_html_error_uses_the_one_design_with_navigation_when_logged_in() {
    let app = TestApp::new().await;
    let mut anonymous = app.client();
    assert_error_page(
        &anonymous.get("/no-such-page").await,
        404,
        "Not found",
        false,
    );

    create_user(&app, "vic", &["viewer"]).await;
    let mut viewer = app.client();
    viewer.login("vic", PASSWORD).await;
    // Unknown path (router fallback), a missing permission (handler), a malformed id
    // (extractor rejection) and an unknown id (domain): all the same page, with navigation.
    assert_error_page(&viewer.get("/no-such-page").await, 404, "Not found", true);
    assert_error_page(&viewer.get("/users").await, 403, "Access denied", true);
    assert_error_page(&viewer.get("/audit").await, 403, "Access denied", true);
    let mut admin = app.client();
    admin.login("admin", ADMIN_PASSWORD).await;
    assert_error_page(
        &admin.get("/tors/abc").await,
        400,
        "Request not accepted",
        true,
    );
    assert_error_page(&admin.get("/tors/999999").await, 404, "Not found", true);
    assert_error_page(&admin.get("/users/999999").await, 404, "Not found", true);
    assert_error_page(&admin.get("/entities/999999").await, 404, "Not found", true);
    // Refused input at the boundary, before any handler: the same page, too.
    let r = admin.get("/entities?q=%00").await;
    assert_error_page(&r, 422, "Request not accepted", true);
}
