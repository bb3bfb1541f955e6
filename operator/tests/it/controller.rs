//! The whole controller (watches, queue, reconcile) against the stateful fake API server,
//! over real TCP: it converges on its own, undoes drift on the watch event, and resumes
//! after its connection to the API server is cut, within the bound the design promises.

use crate::support;

use std::time::{Duration, Instant};

use ahlt_operator::names;
use ahlt_operator::testing::{FakeApiServer, proxy::Proxy};
use serde_json::json;
use support::*;

/// The operator reacts to a change within this long of the API server answering again.
const RECOVERY_BOUND: Duration = Duration::from_secs(30);

/// Drives a new environment to Ready with the controller running, playing the Job and
/// Deployment controllers when the operator has created their objects.
async fn to_ready(cluster: &Cluster) {
    cluster.api.create(env("1"));
    let job = names::migration_job(NAME, IMAGE_1);
    cluster
        .wait_child("jobs", &job, "the migration Job", |_| true)
        .await;
    cluster.complete_migration(IMAGE_1);
    cluster
        .wait_child("deployments", "dev", "the Deployment", |_| true)
        .await;
    cluster.roll_out();
    cluster
        .wait_status("Ready=True", |s| has(s, "Ready", ("True", "Available")))
        .await;
}

#[tokio::test]
async fn the_controller_converges_a_new_environment_without_errors() {
    let cluster = Cluster::start().await;
    let _running = cluster.run();
    to_ready(&cluster).await;
    assert!(
        cluster.api.requests().iter().all(|r| r.status != 409),
        "no conflict on the way"
    );
    // Children come from the watch caches; only the admin and database Secrets are read
    // live (and the AhltEnvironment itself, should a finalizer patch find its copy stale).
    let gets = object_gets(&cluster.api.requests());
    assert!(
        gets.iter().all(|g| {
            ["secrets/pg-admin", "secrets/dev-db", "ahltenvironments/dev"].contains(&g.as_str())
        }),
        "{gets:?}"
    );
    assert!(
        !cluster
            .metrics
            .encode()
            .contains("reconcile_failures_total{"),
        "no pass failed: {}",
        cluster.metrics.encode()
    );
}

#[tokio::test]
async fn drift_is_undone_on_the_watch_event() {
    let cluster = Cluster::start().await;
    let _running = cluster.run();
    to_ready(&cluster).await;

    cluster
        .api
        .update("kubectl-set", "deployments", NS, "dev", |d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("evil.example/x:1");
        });
    cluster
        .wait_child("deployments", "dev", "the image restored", |d| {
            container_image(d) == IMAGE_1
        })
        .await;

    cluster
        .api
        .update("kubectl-patch", "configmaps", NS, "dev-config", |c| {
            c["data"]["APP_ENV"] = json!("prod");
        });
    cluster
        .wait_child("configmaps", "dev-config", "APP_ENV restored", |c| {
            c["data"]["APP_ENV"] == "dev"
        })
        .await;

    cluster.api.delete("services", NS, "dev");
    cluster
        .wait_child("services", "dev", "the Service recreated", |_| true)
        .await;

    let password = secret_string(&cluster.child("secrets", "dev-db").unwrap(), "password");
    cluster
        .api
        .update("kubectl-edit", "secrets", NS, "dev-db", |s| {
            s["data"]["DATABASE_URL"] = json!("cG9zdGdyZXM6Ly9ldmls");
        });
    cluster
        .wait_child("secrets", "dev-db", "DATABASE_URL restored", |s| {
            secret_string(s, "DATABASE_URL").contains("postgres.db")
        })
        .await;
    assert_eq!(
        secret_string(&cluster.child("secrets", "dev-db").unwrap(), "password"),
        password
    );
}

#[tokio::test]
async fn a_rename_is_refused_by_the_running_controller() {
    let cluster = Cluster::start().await;
    let _running = cluster.run();
    to_ready(&cluster).await;
    cluster.edit(|spec| spec["database"]["name"] = json!("ahlt_other"));
    let status = cluster
        .wait_status("DatabaseRenameRefused", |s| {
            has(s, "DatabaseReady", ("False", "DatabaseRenameRefused"))
        })
        .await;
    assert_eq!(cond(&status, "Ready").1, "DatabaseRenameRefused");
    assert!(!cluster.db.ensured().contains(&"ahlt_other".to_owned()));
    assert_eq!(
        secret_string(&cluster.child("secrets", "dev-db").unwrap(), "database"),
        "ahlt_dev"
    );
}

/// A cluster whose operator talks to the fake API server through a breakable proxy.
async fn behind_proxy() -> (Cluster, Proxy) {
    let api = FakeApiServer::start().await;
    api.create(admin_secret());
    let proxy = Proxy::start(api.addr()).await;
    let cluster = Cluster::on(api, &proxy.url(), FakeProvisioner::default());
    (cluster, proxy)
}

/// Waits, from now (the API server answers again) on, for the Deployment the operator
/// creates once the migration Job it missed completed, and asserts it came within the bound.
async fn assert_reacts_within_the_bound(cluster: &Cluster) {
    let back = Instant::now();
    cluster
        .wait_child(
            "deployments",
            "dev",
            "the Deployment after recovery",
            |_| true,
        )
        .await;
    let reaction = back.elapsed();
    eprintln!("reaction after recovery: {reaction:?}");
    assert!(
        reaction <= RECOVERY_BOUND,
        "the operator reacted {reaction:?} after the API server came back"
    );
}

/// Creates the environment and waits until its migration runs and the operator is idle:
/// after its last write, a pass began (it reads the database Secret live; the rest of the
/// children come from the caches).
async fn migration_running(cluster: &Cluster) {
    cluster.api.create(env("1"));
    cluster
        .wait_status("migrations running", |s| {
            has(s, "MigrationsApplied", ("False", "Running"))
        })
        .await;
    cluster
        .api
        .wait_for_requests("the operator idle", |log| {
            let last_write = log.iter().rposition(|r| r.is_write())?;
            log[last_write + 1..]
                .iter()
                .any(|r| r.method == "GET" && r.path.ends_with("/secrets/dev-db"))
                .then_some(())
        })
        .await;
}

#[tokio::test]
async fn after_an_api_server_restart_the_operator_reacts_within_the_bound() {
    let (cluster, proxy) = behind_proxy().await;
    let _running = cluster.run();
    migration_running(&cluster).await;

    // The API server goes down: every connection is reset, new ones are refused. Meanwhile
    // the Job controller finishes the migration.
    proxy.restart().await;
    cluster.complete_migration(IMAGE_1);
    // The operator runs into the outage: its watches and passes fail and retry.
    proxy.wait_refused(20).await;
    proxy.restore();
    assert_reacts_within_the_bound(&cluster).await;
}

#[tokio::test]
async fn after_connections_die_silently_the_operator_reacts_within_the_bound() {
    let (cluster, proxy) = behind_proxy().await;
    let _running = cluster.run();
    migration_running(&cluster).await;

    // A load balancer loses its backend: open connections go silent (no reset, no data),
    // and stay half-open after the API server is reachable again. The Job completes while
    // the operator's watches hear nothing.
    proxy.black_hole().await;
    cluster.complete_migration(IMAGE_1);
    proxy.restore();
    assert_reacts_within_the_bound(&cluster).await;
}
