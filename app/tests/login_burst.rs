//! Issue 14, finding 4: a burst of concurrent logins runs at most `password::concurrency()`
//! Argon2 hashes at a time (19 MiB each) and gives the memory back afterwards. Prints the
//! resident set size before, at the peak and after, the figure README documents.
//!
//! Its own test binary: peak RSS (`VmHWM`) is per process, so nothing else may run here.

use ahlt::auth::password;
use ahlt::config::{AppConfig, LoginLimits};
use ahlt::memory;
use ahlt::test_app::TestApp;
use tokio::task::JoinSet;

const BURST: usize = 64;
const MIB: u64 = 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_burst_is_bounded_and_gives_its_memory_back() {
    memory::tune_allocator();
    let mut config = AppConfig::for_tests();
    // Every attempt must reach the password check: no rate limit in the way.
    config.login_limits = LoginLimits {
        max_failures_per_username: 10_000,
        max_failures_per_ip: 10_000,
        ..LoginLimits::default()
    };
    let app = TestApp::with_config(config).await;
    // Warm up: the dummy hash, the pool, the templates.
    app.client().login("nobody", "wrong password").await;
    memory::reset_peak();
    let (before, _) = memory::rss_kib().expect("/proc/self/status");

    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(BURST));
    let mut set = JoinSet::new();
    for i in 0..BURST {
        let (mut client, barrier) = (app.client(), barrier.clone());
        set.spawn(async move {
            client.csrf_token_or_fetch().await;
            barrier.wait().await;
            let username = if i % 2 == 0 {
                "admin".to_owned()
            } else {
                format!("ghost{i}")
            };
            client
                .login(&username, "not the password")
                .await
                .status
                .as_u16()
        });
    }
    while let Some(status) = set.join_next().await {
        assert_eq!(status.unwrap(), 401);
    }
    let (after, peak) = memory::rss_kib().expect("/proc/self/status");
    let slots = password::concurrency();
    println!(
        "login burst: {BURST} concurrent logins, {slots} hashing slot(s), peak {} hashes at once; \
         RSS before {} MiB, peak {} MiB, after {} MiB",
        password::peak_concurrent_hashes(),
        before / MIB,
        peak / MIB,
        after / MIB
    );
    assert!(password::peak_concurrent_hashes() <= slots);
    // Argon2 takes 19 MiB per hash: the peak may grow by the slots' worth plus slack for
    // connections, sessions and buffers, never by one block per request (64 x 19 MiB).
    let bound = (slots as u64 * 19 + 48) * MIB;
    assert!(
        peak.saturating_sub(before) <= bound,
        "peak grew by {} MiB (bound {} MiB)",
        (peak - before) / MIB,
        bound / MIB
    );
    // And the hash blocks are returned, not kept in per-thread arenas.
    assert!(
        after.saturating_sub(before) <= 32 * MIB,
        "RSS stayed {} MiB above the start",
        (after - before) / MIB
    );
}
