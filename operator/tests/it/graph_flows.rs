//! Graph resync Jobs against the stateful fake API server: one Job per serving image and
//! resync request, status that remembers what succeeded and failed, Ready never blocked.

use crate::support;

use ahlt_operator::names;
use serde_json::{Value, json};
use support::*;

const GRAPH_URI: &str = "bolt://neo4j.infra:7687";
const CREDENTIALS: &str = "graph-credentials";
const DONE_1: &str = "2026-05-01T10:00:00Z";
const DONE_2: &str = "2026-05-02T10:00:00Z";

fn graph_env() -> Value {
    let mut env = env("1");
    env["spec"]["graph"] = json!({"uri": GRAPH_URI, "credentialsSecretRef": {"name": CREDENTIALS}});
    env
}

fn graph_credentials() -> Value {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": CREDENTIALS, "namespace": NS},
        "data": {"username": b64("neo4j"), "password": b64("graph-pw")},
    })
}

fn resync_name(image: &str, request: &str) -> String {
    names::resync_job(NAME, image, request)
}

fn message(status: &Value, type_: &str) -> String {
    condition(status, type_)["message"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn resync_jobs(cluster: &Cluster) -> Vec<Value> {
    cluster
        .api
        .list("jobs")
        .into_iter()
        .filter(|j| labels(j)["app.kubernetes.io/component"] == "graph-resync")
        .collect()
}

fn finish_resync(cluster: &Cluster, name: &str, at: &str) {
    cluster.api.update_status("jobs", NS, name, |job| {
        job["status"] = json!({"succeeded": 1, "completionTime": at});
    });
}

/// Ready with the graph configured; the rollout resync Job of image 1 was created.
async fn rolled_out_with_graph() -> Cluster {
    let cluster = Cluster::start().await;
    cluster.api.create(graph_credentials());
    cluster.api.create(graph_env());
    cluster.settle().await;
    let s = cluster.status();
    assert_eq!(
        cond(&s, "GraphSynced"),
        ("False".into(), "Pending".into(), 1)
    );
    assert!(resync_jobs(&cluster).is_empty(), "no image serves yet");
    cluster.complete_migration(IMAGE_1);
    cluster.settle().await;
    assert!(
        resync_jobs(&cluster).is_empty(),
        "the new pods are not available"
    );
    cluster.roll_out();
    cluster.settle().await;
    cluster
}

/// The rollout resync succeeded.
async fn synced() -> Cluster {
    let cluster = rolled_out_with_graph().await;
    finish_resync(&cluster, &resync_name(IMAGE_1, ""), DONE_1);
    cluster.settle().await;
    cluster
}

#[tokio::test]
async fn a_rollout_starts_one_resync_job_with_the_serving_image() {
    let cluster = rolled_out_with_graph().await;
    let jobs = resync_jobs(&cluster);
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job["metadata"]["name"], resync_name(IMAGE_1, "").as_str());
    assert_eq!(labels(job)["app.kubernetes.io/managed-by"], "ahlt-operator");
    assert_eq!(
        job["metadata"]["ownerReferences"][0]["uid"],
        cluster.env()["metadata"]["uid"]
    );
    assert_eq!(job["metadata"]["annotations"]["ahlt.io/image"], IMAGE_1);
    assert_eq!(job["spec"]["ttlSecondsAfterFinished"], 86_400);
    let pod = &job["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["image"], IMAGE_1);
    assert_eq!(container["args"], json!(["graph", "resync"]));
    assert_eq!(pod["restartPolicy"], "Never");
    let from_secret = |name: &str| {
        container["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {container}"))["valueFrom"]["secretKeyRef"]
            .clone()
    };
    assert_eq!(
        from_secret("GRAPH_PASSWORD"),
        json!({"name": CREDENTIALS, "key": "password", "optional": false})
    );
    assert!(!job.to_string().contains("graph-pw"), "no secret inline");

    let s = cluster.status();
    assert_eq!(
        cond(&s, "GraphSynced"),
        ("False".into(), "Resyncing".into(), 1)
    );
    assert!(message(&s, "GraphSynced").contains(IMAGE_1));
    assert_eq!(
        cond(&s, "Ready"),
        ("True".into(), "Available".into(), 1),
        "Ready does not wait for the graph"
    );
    // While it runs, passes create nothing more.
    cluster.pass().await.unwrap();
    assert_eq!(resync_jobs(&cluster).len(), 1);
}

#[tokio::test]
async fn a_finished_resync_is_recorded_and_a_vanished_job_is_not_rerun() {
    let cluster = synced().await;
    let s = cluster.status();
    assert_eq!(
        s["graph"],
        json!({"lastResyncImage": IMAGE_1, "lastResyncTime": DONE_1})
    );
    assert_eq!(cond(&s, "GraphSynced"), ("True".into(), "Synced".into(), 1));
    // ttlSecondsAfterFinished removes the Job: status remembers, nothing is rerun.
    cluster.api.delete("jobs", NS, &resync_name(IMAGE_1, ""));
    let writes = cluster.writes().len();
    cluster.pass().await.unwrap();
    assert_eq!(cluster.writes().len(), writes);
    assert_eq!(cluster.status(), s);
}

#[tokio::test]
async fn a_new_resync_request_runs_a_new_job_and_is_echoed_once_it_succeeded() {
    let cluster = synced().await;
    let request = "2026-05-02";
    cluster.edit(|spec| spec["graph"]["resyncRequest"] = json!(request));
    cluster.settle().await;
    let name = resync_name(IMAGE_1, request);
    let job = cluster.child("jobs", &name).expect("a Job for the request");
    assert_eq!(
        job["metadata"]["annotations"]["ahlt.io/resync-request"],
        request
    );
    let s = cluster.status();
    assert_eq!(
        cond(&s, "GraphSynced"),
        ("False".into(), "Resyncing".into(), 2)
    );
    assert!(s["graph"].get("lastResyncRequest").is_none());

    finish_resync(&cluster, &name, DONE_2);
    cluster.settle().await;
    let s = cluster.status();
    assert_eq!(
        s["graph"],
        json!({"lastResyncImage": IMAGE_1, "lastResyncRequest": request, "lastResyncTime": DONE_2})
    );
    assert_eq!(cond(&s, "GraphSynced"), ("True".into(), "Synced".into(), 2));
    assert!(message(&s, "GraphSynced").contains(request));
}

#[tokio::test]
async fn a_failed_resync_warns_once_and_is_not_rerun() {
    let cluster = synced().await;
    cluster.edit(|spec| spec["graph"]["resyncRequest"] = json!("r2"));
    cluster.settle().await;
    let name = resync_name(IMAGE_1, "r2");
    cluster.api.update_status("jobs", NS, &name, |job| {
        job["status"] = json!({"failed": 3, "conditions": [{
            "type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
            "message": "Job has reached the specified backoff limit"}]});
    });
    cluster.settle().await;
    let s = cluster.status();
    assert_eq!(
        cond(&s, "GraphSynced"),
        ("False".into(), "ResyncFailed".into(), 2)
    );
    assert_eq!(cond(&s, "Ready"), ("True".into(), "Available".into(), 2));
    assert_eq!(s["graph"]["failedJob"], name.as_str());
    assert_eq!(
        s["graph"]["lastResyncTime"], DONE_1,
        "the last success stays"
    );
    let warnings = |c: &Cluster| {
        c.events()
            .into_iter()
            .filter(|e| *e == ("Warning".into(), "ResyncFailed".into()))
            .count()
    };
    assert_eq!(warnings(&cluster), 1);

    // Garbage-collected: still not rerun, the message says where the Job went, no new event.
    cluster.api.delete("jobs", NS, &name);
    cluster.settle().await;
    assert!(cluster.child("jobs", &name).is_none());
    let s = cluster.status();
    assert_eq!(cond(&s, "GraphSynced").1, "ResyncFailed");
    assert!(message(&s, "GraphSynced").contains("garbage-collected"));
    assert_eq!(warnings(&cluster), 1);
}

#[tokio::test]
async fn missing_graph_credentials_start_no_job_and_warn() {
    let cluster = Cluster::start().await;
    cluster.api.create(graph_env());
    cluster.settle().await;
    cluster.complete_migration(IMAGE_1);
    cluster.settle().await;
    cluster.roll_out();
    cluster.settle().await;
    assert!(resync_jobs(&cluster).is_empty());
    let s = cluster.status();
    assert_eq!(
        cond(&s, "GraphSynced"),
        ("False".into(), "CredentialsMissing".into(), 1)
    );
    assert!(message(&s, "GraphSynced").contains(CREDENTIALS));
    assert_eq!(cond(&s, "Ready").1, "Available");
    assert!(
        cluster
            .events()
            .contains(&("Warning".into(), "CredentialsMissing".into()))
    );
}

#[tokio::test]
async fn a_suspended_environment_starts_no_resync() {
    let cluster = synced().await;
    cluster.edit(|spec| {
        spec["suspend"] = json!(true);
        spec["graph"]["resyncRequest"] = json!("r3");
    });
    cluster.settle().await;
    assert!(cluster.child("jobs", &resync_name(IMAGE_1, "r3")).is_none());
    let s = cluster.status();
    assert_eq!(cond(&s, "Ready"), ("False".into(), "Suspended".into(), 2));
    assert_eq!(cond(&s, "GraphSynced"), ("True".into(), "Synced".into(), 1));
}

#[tokio::test]
async fn without_a_graph_no_resync_runs() {
    let cluster = Cluster::start().await;
    cluster.ready(env("1")).await;
    assert!(resync_jobs(&cluster).is_empty());
    let s = cluster.status();
    assert_eq!(
        cond(&s, "GraphSynced"),
        ("True".into(), "NotConfigured".into(), 1)
    );
    assert!(s.get("graph").is_none());
}

#[tokio::test]
async fn after_an_image_bump_graph_synced_waits_for_the_new_image() {
    let cluster = synced().await;
    cluster.edit(|spec| spec["image"]["tag"] = json!("2"));
    cluster.settle().await;
    assert_eq!(
        resync_jobs(&cluster).len(),
        1,
        "no second resync of image 1"
    );
    let s = cluster.status();
    assert_eq!(
        cond(&s, "GraphSynced"),
        ("False".into(), "Pending".into(), 2)
    );
    assert!(message(&s, "GraphSynced").contains(IMAGE_2));
    assert_eq!(s["graph"]["lastResyncImage"], IMAGE_1);

    cluster.complete_migration(IMAGE_2);
    cluster.settle().await;
    cluster.roll_out();
    cluster.settle().await;
    assert!(cluster.child("jobs", &resync_name(IMAGE_2, "")).is_some());
}
