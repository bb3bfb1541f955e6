//! Issue 10 in a real browser (headless Chromium; skipped with the reason printed where it is
//! not installed): every page fits 390 px without sideways scrolling, the menu collapses, the
//! user's name leads to the account page, destructive actions ask first, and a form whose
//! session expired or whose token went stale keeps what was typed.

use ahlt::domain::kind;
use ahlt::store;
use ahlt::test_app::{ADMIN_PASSWORD, TestApp, TestServer};
use ahlt::testing::browser::Browser;

async fn id_of(server: &TestServer, entity_type: &str, name: &str) -> i64 {
    store::find_entity(server.app.pool(), entity_type, name)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{entity_type} {name}"))
        .id
}

/// Every page an administrator reaches, with demo data (long names included).
async fn pages(server: &TestServer) -> Vec<String> {
    let tor = store::entities_of_type(server.app.pool(), kind::TOR)
        .await
        .unwrap()[0]
        .id;
    let admin = id_of(server, kind::USER, "admin").await;
    let mut pages: Vec<String> = [
        "/",
        "/tors",
        "/tors/new",
        "/governance",
        "/users",
        "/users/new",
        "/roles",
        "/audit",
        "/account",
        "/entities",
        "/entities?type=tor",
        "/entities?q=a",
        "/no-such-page",
    ]
    .iter()
    .map(|p| p.to_string())
    .collect();
    pages.push(format!("/tors/{tor}"));
    pages.push(format!("/users/{admin}"));
    pages.push(format!("/entities/{admin}"));
    pages.push(format!("/entities/{tor}"));
    pages
}

async fn demo_server() -> TestServer {
    let (app, _) = TestApp::with_demo().await;
    // A long, unbroken name: it must wrap, not widen the page.
    sqlx::query("UPDATE entities SET label = repeat('Verylongwordwithoutspaces', 6) WHERE entity_type = 'tor' AND id = (SELECT min(id) FROM entities WHERE entity_type = 'tor')")
        .execute(app.pool())
        .await
        .unwrap();
    app.serve().await
}

#[tokio::test]
async fn every_page_fits_a_phone_and_a_laptop_without_sideways_scrolling() {
    let server = demo_server().await;
    let Some(browser) = Browser::start(390, 844).await else {
        return;
    };
    browser.goto(&server.url("/login")).await;
    let login = browser.overflow().await;
    assert!(login.fits(), "/login at 390 px: {login:?}");
    browser
        .login(&server.base_url, "admin", ADMIN_PASSWORD)
        .await;
    let mut failures = Vec::new();
    for (width, height) in [(390, 844), (360, 740), (1366, 900)] {
        browser.resize(width, height).await;
        for page in pages(&server).await {
            browser.goto(&server.url(&page)).await;
            let overflow = browser.overflow().await;
            if !overflow.fits() {
                failures.push(format!(
                    "{page} at {width} px: {overflow:?}; wide: {:?}",
                    browser.overflowing_elements().await
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn the_menu_collapses_on_a_phone_and_the_name_leads_to_the_account() {
    let server = demo_server().await;
    let Some(browser) = Browser::start(390, 844).await else {
        return;
    };
    browser
        .login(&server.base_url, "admin", ADMIN_PASSWORD)
        .await;
    let shown = "return getComputedStyle(document.querySelector('.mainnav')).display !== 'none' \
                 && document.querySelector('.mainnav').offsetParent !== null;";
    assert_eq!(browser.script(shown).await, serde_json::Value::Bool(false));
    // One row: the header is no taller than a single line of controls.
    let header = browser
        .script("return document.querySelector('.topbar').getBoundingClientRect().height;")
        .await
        .as_f64()
        .unwrap();
    assert!(header < 60.0, "header {header} px high");
    browser.find(".menu-button").await.click().await.unwrap();
    assert_eq!(browser.script(shown).await, serde_json::Value::Bool(true));
    browser.follow("a.whoami").await;
    assert_eq!(browser.path().await, "/account");
    assert!(browser.body_text().await.contains("API tokens"));

    browser.resize(1366, 900).await;
    assert_eq!(browser.script(shown).await, serde_json::Value::Bool(true));
    assert!(
        !browser
            .script("return document.querySelector('.menu-button').offsetParent !== null;")
            .await
            .as_bool()
            .unwrap()
    );
}

#[tokio::test]
async fn deleting_a_tor_asks_first_and_works_without_javascript() {
    let server = demo_server().await;
    let Some(browser) = Browser::start(390, 844).await else {
        return;
    };
    browser
        .login(&server.base_url, "admin", ADMIN_PASSWORD)
        .await;
    browser.goto(&server.url("/tors/new")).await;
    browser
        .fill_and_submit(
            "form[action=\"/tors\"]",
            &[("name", "doomed"), ("title", "Doomed ToR")],
        )
        .await;
    let id = id_of(&server, kind::TOR, "doomed").await;
    browser.goto(&server.url(&format!("/tors/{id}"))).await;
    let form = format!("form[action=\"/tors/{id}/delete\"]");
    browser.submit(&form).await;
    // The confirmation page: nothing deleted yet.
    assert!(browser.body_text().await.contains("Delete ToR Doomed ToR?"));
    assert!(
        store::get_entity(server.app.pool(), id)
            .await
            .unwrap()
            .is_some()
    );
    assert!(browser.overflow().await.fits());
    browser.submit(&form).await;
    assert_eq!(browser.path().await, "/tors");
    assert!(
        store::get_entity(server.app.pool(), id)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn an_expired_session_keeps_the_form_input_through_the_login() {
    let server = demo_server().await;
    let Some(browser) = Browser::start(390, 844).await else {
        return;
    };
    browser
        .login(&server.base_url, "admin", ADMIN_PASSWORD)
        .await;
    browser.goto(&server.url("/tors/new")).await;
    browser
        .fill(
            "form[action=\"/tors\"]",
            &[
                ("name", "kept"),
                ("title", "Kept across the login"),
                ("description", "Typed before the session expired"),
            ],
        )
        .await;
    // The session expires (all its cookies are gone) while the form is open.
    browser.delete_cookies().await;
    browser.submit("form[action=\"/tors\"]").await;
    let text = browser.body_text().await;
    assert!(text.contains("Your session has expired"), "{text}");
    assert!(!browser.source().await.contains("csrf_failed"));
    browser
        .fill_and_submit(
            "form[action=\"/login\"]",
            &[("username", "admin"), ("password", ADMIN_PASSWORD)],
        )
        .await;
    assert_eq!(browser.path().await, "/resubmit");
    let text = browser.body_text().await;
    assert!(text.contains("Kept across the login"), "{text}");
    assert!(text.contains("Typed before the session expired"), "{text}");
    assert!(browser.overflow().await.fits());
    browser.submit("form.resubmit").await;
    let id = id_of(&server, kind::TOR, "kept").await;
    assert_eq!(browser.path().await, format!("/tors/{id}"));
}

#[tokio::test]
async fn a_stale_token_shows_the_input_again_instead_of_json() {
    let server = demo_server().await;
    let Some(browser) = Browser::start(1366, 900).await else {
        return;
    };
    browser
        .login(&server.base_url, "admin", ADMIN_PASSWORD)
        .await;
    browser.goto(&server.url("/tors/new")).await;
    browser
        .fill(
            "form[action=\"/tors\"]",
            &[("name", "stale"), ("title", "Stale token ToR")],
        )
        .await;
    // As if the page had been open while the user logged in again in another tab.
    browser
        .script("document.querySelector('form[action=\"/tors\"] input[name=_csrf]').value = 'outdated'; return null;")
        .await;
    browser.submit("form[action=\"/tors\"]").await;
    let text = browser.body_text().await;
    assert!(!text.contains("csrf_failed"), "{text}");
    assert!(text.contains("Send the form again"), "{text}");
    assert!(text.contains("Stale token ToR"), "{text}");
    browser.submit("form.resubmit").await;
    let id = id_of(&server, kind::TOR, "stale").await;
    assert_eq!(browser.path().await, format!("/tors/{id}"));

    // The login form itself: an expired login page shows the login form again with a message.
    browser.delete_cookies().await;
    browser.goto(&server.url("/login")).await;
    browser.delete_cookies().await;
    browser
        .fill_and_submit(
            "form[action=\"/login\"]",
            &[("username", "admin"), ("password", ADMIN_PASSWORD)],
        )
        .await;
    let text = browser.body_text().await;
    assert!(text.contains("This login form had expired"), "{text}");
    assert_eq!(
        browser
            .find("#username")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("admin")
    );
}
