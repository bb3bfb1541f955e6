//! Issue 14, findings 2 and 3: identical concurrent creates produce one row, one 201 and one
//! audit entry; concurrent wrong logins cannot beat the rate limit.

use crate::api_support;

use ahlt::test_app::{TestApp, TestClient};
use api_support::{admin, assert_status, audit, create_user};
use serde_json::json;
use tokio::task::JoinSet;

const RACERS: usize = 16;

/// Runs `RACERS` copies of `request` at once, each with its own client; their statuses.
async fn race<F, Fut>(client: &TestClient, request: F) -> Vec<u16>
where
    F: Fn(TestClient) -> Fut,
    Fut: std::future::Future<Output = u16> + Send + 'static,
{
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(RACERS));
    let mut set = JoinSet::new();
    for _ in 0..RACERS {
        let fut = request(client.clone());
        let barrier = barrier.clone();
        set.spawn(async move {
            barrier.wait().await;
            fut.await
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = set.join_next().await {
        statuses.push(status.unwrap());
    }
    statuses.sort();
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn identical_concurrent_relation_creates_make_one_relation() {
    let app = TestApp::new().await;
    let (_, mut api) = admin(&app).await;
    assert_status(
        &api.post_json(
            "/api/v1/entities",
            &json!({"entity_type": "relation_type", "name": "depends_on"}),
        )
        .await,
        201,
    );
    for round in 0..10 {
        let mut ids = Vec::new();
        for end in ["a", "b"] {
            ids.push(
                assert_status(
                    &api.post_json(
                        "/api/v1/entities",
                        &json!({"entity_type": "probe", "name": format!("{end}{round}")}),
                    )
                    .await,
                    201,
                )["id"]
                    .as_i64()
                    .unwrap(),
            );
        }
        let (source, target) = (ids[0], ids[1]);
        let statuses = race(&api, |mut client| async move {
            client
                .post_json(
                    "/api/v1/relations",
                    &json!({"relation_type": "depends_on", "source_id": source, "target_id": target}),
                )
                .await
                .status
                .as_u16()
        })
        .await;
        assert_eq!(
            statuses.iter().filter(|s| **s == 201).count(),
            1,
            "round {round}: {statuses:?}"
        );
        assert!(
            statuses.iter().all(|s| *s == 201 || *s == 409),
            "round {round}: {statuses:?}"
        );
        let rows: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM relations WHERE source_id = $1 AND target_id = $2",
        )
        .bind(source)
        .bind(target)
        .fetch_one(app.pool())
        .await
        .unwrap();
        assert_eq!(rows, 1, "round {round}");
        let entries = audit(&app, "relation.create")
            .await
            .into_iter()
            .filter(|(_, _, d)| d["source_id"] == source && d["target_id"] == target)
            .count();
        assert_eq!(entries, 1, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_position_assignments_are_audited_once() {
    let app = TestApp::new().await;
    let (_, mut api) = admin(&app).await;
    let tor = assert_status(
        &api.post_json("/api/v1/tors", &json!({"name": "board"}))
            .await,
        201,
    )["id"]
        .as_i64()
        .unwrap();
    let function = assert_status(
        &api.post_json(
            &format!("/api/v1/tors/{tor}/functions"),
            &json!({"slug": "chair", "capabilities": []}),
        )
        .await,
        201,
    )["id"]
        .as_i64()
        .unwrap();
    let member = create_user(&app, "member", &["viewer"]).await;
    let path = format!("/api/v1/tors/{tor}/functions/{function}/holders/{member}");
    let statuses = race(&api, move |mut client| {
        let path = path.clone();
        async move {
            client
                .request(axum::http::Method::PUT, &path, None, true)
                .await
                .status
                .as_u16()
        }
    })
    .await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(audit(&app, "tor.position.assign").await.len(), 1);
}

/// Wrong-password logins at once: `(401s, 429s)`; nothing else may come back.
async fn burst(app: &TestApp, usernames: &[String]) -> (usize, usize) {
    let mut set = JoinSet::new();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(usernames.len()));
    for username in usernames {
        let (client, username, barrier) = (app.client(), username.clone(), barrier.clone());
        set.spawn(async move {
            let mut client = client;
            // Fetch the anonymous session's CSRF token first, then all submit at once.
            client.get("/login").await;
            client.csrf_token_or_fetch().await;
            barrier.wait().await;
            client
                .post_form(
                    "/login",
                    &[("username", &username), ("password", "wrong password!")],
                )
                .await
                .status
                .as_u16()
        });
    }
    let (mut unauthorized, mut limited) = (0, 0);
    while let Some(status) = set.join_next().await {
        match status.unwrap() {
            401 => unauthorized += 1,
            429 => limited += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    (unauthorized, limited)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_logins_cannot_beat_the_per_user_limit() {
    let app = TestApp::new().await;
    create_user(&app, "target", &["viewer"]).await;
    let limits = app.state.config.login_limits;
    let names = vec!["target".to_owned(); 64];
    let (unauthorized, limited) = burst(&app, &names).await;
    assert_eq!(unauthorized as i64, limits.max_failures_per_username);
    assert_eq!(limited, 64 - unauthorized);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_logins_cannot_beat_the_per_address_limit() {
    let app = TestApp::new().await;
    let limits = app.state.config.login_limits;
    // Different usernames from one address (in-process requests share one client address).
    let names: Vec<String> = (0..64).map(|i| format!("guess{i}")).collect();
    let (unauthorized, limited) = burst(&app, &names).await;
    assert_eq!(unauthorized as i64, limits.max_failures_per_ip);
    assert_eq!(limited, 64 - unauthorized);
}
