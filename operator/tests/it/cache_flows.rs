//! Passes that read children from watch caches (as the running controller's passes do),
//! against the stateful fake API server: what they GET, and that a lagging cache neither
//! regenerates a Secret's values nor deletes what is not the operator's, and converges once
//! it catches up.

use crate::support;

use std::sync::Arc;

use ahlt_operator::controller::cache;
use serde_json::json;
use support::*;

/// The two reads that stay live by design, sorted.
fn live_by_design() -> Vec<String> {
    vec!["secrets/dev-db".to_owned(), "secrets/pg-admin".to_owned()]
}

/// GETs of single objects since request `from`, sorted.
fn gets_since(cluster: &Cluster, from: usize) -> Vec<String> {
    let mut gets = object_gets(&cluster.api.requests()[from..]);
    gets.sort();
    gets
}

#[tokio::test]
async fn passes_get_only_the_admin_and_database_secrets_and_undo_drift_from_the_cache() {
    let cluster = Cluster::start().await.with_caches().await;
    cluster.api.create(env("1"));
    let from = cluster.api.requests().len();
    cluster.pass().await.expect("the first pass succeeds");
    assert_eq!(gets_since(&cluster, from), live_by_design());
    assert!(has(
        &cluster.status(),
        "DatabaseReady",
        ("True", "Provisioned")
    ));
    assert!(cluster.child("configmaps", "dev-config").is_some());

    cluster.settle().await;
    cluster.complete_migration(IMAGE_1);
    cluster.settle().await;
    cluster.roll_out();
    cluster.settle().await;
    assert!(has(&cluster.status(), "Ready", ("True", "Available")));

    // A quiet pass: the two live Secrets, nothing else read, nothing written.
    let from = cluster.api.requests().len();
    let writes = cluster.writes().len();
    cluster.pass().await.unwrap();
    assert_eq!(gets_since(&cluster, from), live_by_design());
    assert_eq!(cluster.writes().len(), writes, "{:?}", cluster.writes());

    // Drift, once the cache has seen it, is undone without reading the child.
    cluster
        .api
        .update("kubectl-set", "deployments", NS, "dev", |d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("evil.example/x:1");
        });
    cluster
        .api
        .update("kubectl-patch", "configmaps", NS, "dev-config", |c| {
            c["data"]["APP_ENV"] = json!("prod");
        });
    cluster.caches_synced().await;
    let from = cluster.api.requests().len();
    cluster.pass().await.unwrap();
    assert_eq!(gets_since(&cluster, from), live_by_design());
    let deployment = cluster.child("deployments", "dev").unwrap();
    assert_eq!(container_image(&deployment), IMAGE_1);
    assert_eq!(
        cluster.child("configmaps", "dev-config").unwrap()["data"]["APP_ENV"],
        "dev"
    );
}

/// Everything a Secret holds that was generated, as the server has it.
fn generated(cluster: &Cluster) -> [String; 3] {
    let db = cluster.child("secrets", "dev-db").expect("database Secret");
    let app = cluster.child("secrets", "dev-app").expect("app Secret");
    [
        secret_string(&db, "password"),
        secret_string(&app, "SESSION_KEY"),
        secret_string(&app, "ADMIN_PASSWORD"),
    ]
}

#[tokio::test]
async fn a_lagging_cache_keeps_generated_values_and_converges_once_it_catches_up() {
    // Caches listed while nothing existed, then never updated again.
    let mut cluster = Cluster::start().await.with_caches().await;
    cluster.freeze_caches();
    cluster.api.create(env("1"));
    cluster.pass().await.expect("the first pass succeeds");
    let values = generated(&cluster);

    // The cache does not know the Secrets: the app Secret is confirmed live, not regenerated.
    let from = cluster.api.requests().len();
    cluster
        .pass()
        .await
        .expect("a pass on a lagging cache succeeds");
    assert!(gets_since(&cluster, from).contains(&"secrets/dev-app".to_owned()));
    assert_eq!(generated(&cluster), values);
    let passwords: Vec<String> = cluster
        .db
        .calls()
        .into_iter()
        .map(|c| match c {
            DbCall::Ensure { password, .. } => password,
            DbCall::Drop { .. } => panic!("nothing is dropped"),
        })
        .collect();
    assert_eq!(
        passwords,
        vec![values[0].clone(); 2],
        "the role keeps its password"
    );

    // The migration succeeds; the cache has not seen its Job at all. The Job is sent again
    // (the same object: still one Job), and status says what holds: migrations applied, no
    // workload yet.
    cluster.complete_migration(IMAGE_1);
    cluster
        .pass()
        .await
        .expect("a pass on a lagging cache succeeds");
    assert_eq!(cluster.api.list("jobs").len(), 1);
    let s = cluster.status();
    assert!(has(&s, "MigrationsApplied", ("True", "Succeeded")), "{s}");
    assert!(has(&s, "WorkloadAvailable", ("False", "NotCreated")), "{s}");

    // The cache catches up: the rollout proceeds, with the values generated at the start.
    let cluster = cluster.with_caches().await;
    cluster.settle().await;
    cluster.roll_out();
    cluster.settle().await;
    assert!(has(&cluster.status(), "Ready", ("True", "Available")));
    assert_eq!(generated(&cluster), values);
}

#[tokio::test]
async fn a_lagging_cache_never_deletes_an_object_that_is_not_the_one_it_holds() {
    let mut cluster = Cluster::start().await.with_caches().await;
    cluster.ready(env("1")).await;
    cluster.freeze_caches();

    // Behind the cache's back, our Ingress goes and someone else's takes its name.
    cluster.api.delete("ingresses", NS, "dev");
    cluster.api.create(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "dev", "namespace": NS},
        "spec": {"rules": [{"host": "someone-else.example"}]},
    }));
    // The spec stops asking for an Ingress; the cache still holds ours.
    cluster.edit(|spec| {
        spec.as_object_mut().unwrap().remove("ingress");
    });
    cluster.pass().await.expect("the pass succeeds");
    let foreign = cluster
        .child("ingresses", "dev")
        .expect("the other Ingress stays");
    assert_eq!(foreign["spec"]["rules"][0]["host"], "someone-else.example");

    // Gone meanwhile: no error either.
    cluster.api.delete("ingresses", NS, "dev");
    cluster.pass().await.expect("the pass succeeds");
    let cluster = cluster.with_caches().await;
    cluster.settle().await;
    assert!(has(
        &cluster.status(),
        "IngressReady",
        ("True", "NotRequested")
    ));
}

#[tokio::test]
async fn caches_never_listed_are_not_read() {
    let mut cluster = Cluster::start().await;
    cluster.ready(env("1")).await;
    // Caches whose watches never ran (their writers are gone): every child is read live.
    let (caches, writers) = cache::caches(true);
    drop(writers);
    cluster.ctx = Arc::new(
        context(cluster.ctx.client.clone(), &cluster.db, &cluster.metrics).with_caches(caches),
    );
    let replicas = cluster.child("deployments", "dev").unwrap()["spec"]["replicas"].clone();
    cluster
        .api
        .update("kubectl-scale", "deployments", NS, "dev", |d| {
            d["spec"]["replicas"] = json!(7);
        });
    let from = cluster.api.requests().len();
    cluster.pass().await.unwrap();
    assert!(gets_since(&cluster, from).contains(&"deployments/dev".to_owned()));
    assert_eq!(
        cluster.child("deployments", "dev").unwrap()["spec"]["replicas"],
        replicas
    );
}
