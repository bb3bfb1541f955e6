//! The headless-Chromium harness itself: it starts, logs in through the real form, reads
//! the layout and fills forms. Skipped (with the reason printed) where Chromium is absent.

use ahlt::test_app::{ADMIN_PASSWORD, TestApp};
use ahlt::testing::browser::Browser;

#[tokio::test]
async fn logs_in_through_the_form_and_measures_the_page() {
    let server = TestApp::new().await.serve().await;
    let Some(browser) = Browser::start(1366, 900).await else {
        return;
    };
    let overflow = browser.overflow().await;
    assert_eq!(overflow.inner_width, 1366);

    browser
        .login(&server.base_url, "admin", ADMIN_PASSWORD)
        .await;
    assert_eq!(browser.path().await, "/");
    assert!(browser.exists(".topbar").await);

    browser.resize(390, 844).await;
    browser.goto(&server.url("/users")).await;
    let overflow = browser.overflow().await;
    assert_eq!(overflow.inner_width, 390);
    assert!(overflow.scroll_width > 0);
    browser.close().await;
}

#[tokio::test]
async fn a_wrong_password_stays_on_the_login_form() {
    let server = TestApp::new().await.serve().await;
    let Some(browser) = Browser::start(390, 844).await else {
        return;
    };
    browser.goto(&server.url("/login")).await;
    browser
        .fill_and_submit(
            "form[action=\"/login\"]",
            &[("username", "admin"), ("password", "wrong")],
        )
        .await;
    assert!(browser.path().await.starts_with("/login"));
    assert!(browser.exists(".flash-error").await);
    let username = browser.find("#username").await;
    assert_eq!(
        username.prop("value").await.unwrap().as_deref(),
        Some("admin")
    );
}
