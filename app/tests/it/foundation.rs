//! Smoke test of the foundation: migrate + seed + session endpoint.
use ahlt::test_app::TestApp;

#[tokio::test]
async fn app_boots_on_a_migrated_seeded_database() {
    let app = TestApp::new().await;
    let mut client = app.client();
    let r = client.get("/api/v1/session").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["authenticated"], false);
    assert!(
        r.json()["csrf_token"]
            .as_str()
            .is_some_and(|t| t.len() > 20)
    );
}
