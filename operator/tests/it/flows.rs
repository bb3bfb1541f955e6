//! Reconcile passes against a stateful fake API server: what the cluster holds after each
//! pass, which writes were sent, what status and events say.

use crate::support;

use std::time::Duration;

use ahlt_operator::controller::reconcile::API_RETRY_MAX;
use ahlt_operator::controller::{self, error_policy};
use ahlt_operator::crd::AhltEnvironment;
use ahlt_operator::names;
use kube::runtime::controller::Action;
use serde_json::json;
use support::*;

#[tokio::test]
async fn first_pass_provisions_and_starts_migrations_without_a_conflict() {
    let cluster = Cluster::start().await;
    cluster.api.create(env("1"));
    let action = cluster.pass().await.expect("the first pass succeeds");
    assert_ne!(action, Action::await_change());
    assert!(
        cluster.api.requests().iter().all(|r| r.status != 409),
        "no request was refused: {:?}",
        cluster.api.requests()
    );

    // The finalizer guards the database.
    assert_eq!(
        cluster.env()["metadata"]["finalizers"],
        json!([names::FINALIZER])
    );
    let db_secret = cluster.child("secrets", "dev-db").expect("database Secret");
    let password = secret_string(&db_secret, "password");
    assert!(password.len() >= 32);
    assert!(secret_string(&db_secret, "DATABASE_URL").starts_with("postgres"));
    assert_eq!(
        cluster.db.calls(),
        vec![DbCall::Ensure {
            host: "postgres.db".into(),
            database: "ahlt_dev".into(),
            role: "ahlt_dev".into(),
            password,
            owner: format!("{NS}/{NAME}"),
        }]
    );
    let app_secret = cluster.child("secrets", "dev-app").expect("app Secret");
    assert!(secret_string(&app_secret, "SESSION_KEY").len() >= 32);
    let job = cluster
        .child("jobs", &names::migration_job(NAME, IMAGE_1))
        .expect("migration Job");
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["image"],
        IMAGE_1
    );
    // Service and Ingress come on the first pass, before any migration succeeded (so a
    // certificate can be issued meanwhile); the Deployment waits for the migrations.
    let service = cluster.child("services", "dev").expect("Service");
    let ingress = cluster.child("ingresses", "dev").expect("Ingress");
    assert!(cluster.child("deployments", "dev").is_none());
    let uid = cluster.env()["metadata"]["uid"].clone();
    for child in [
        &db_secret,
        &app_secret,
        &cluster.child("configmaps", "dev-config").unwrap(),
        &job,
        &service,
        &ingress,
    ] {
        assert_eq!(
            labels(child)["app.kubernetes.io/managed-by"],
            "ahlt-operator"
        );
        assert_eq!(child["metadata"]["ownerReferences"][0]["uid"], uid);
        assert_eq!(child["metadata"]["ownerReferences"][0]["controller"], true);
    }

    let s = cluster.status();
    assert_eq!(cond(&s, "Ready"), ("False".into(), "Progressing".into(), 1));
    assert_eq!(
        cond(&s, "DatabaseReady"),
        ("True".into(), "Provisioned".into(), 1)
    );
    assert_eq!(
        cond(&s, "MigrationsApplied"),
        ("False".into(), "Running".into(), 1)
    );
    assert_eq!(
        cond(&s, "WorkloadAvailable"),
        ("False".into(), "NotCreated".into(), 1)
    );
    assert_eq!(
        cond(&s, "IngressReady"),
        ("True".into(), "Configured".into(), 1)
    );
    assert_eq!(
        s["database"],
        json!({"name": "ahlt_dev", "role": "ahlt_dev", "secretName": "dev-db"})
    );
    assert!(s.get("image").is_none());
    assert_eq!(s["url"], "http://dev.local");
}

#[tokio::test]
async fn migrations_then_rollout_make_it_ready_and_a_quiet_pass_writes_nothing() {
    let cluster = Cluster::start().await;
    cluster.api.create(env("1"));
    cluster.settle().await;
    cluster.complete_migration(IMAGE_1);
    cluster.pass().await.unwrap();
    let deployment = cluster.child("deployments", "dev").expect("Deployment");
    assert_eq!(container_image(&deployment), IMAGE_1);
    let s = cluster.status();
    assert_eq!(cond(&s, "MigrationsApplied").1, "Succeeded");
    assert_eq!(cond(&s, "Ready").1, "Progressing");
    assert!(s.get("image").is_none(), "no pod is available yet");

    cluster.roll_out();
    cluster.settle().await;
    let s = cluster.status();
    assert_eq!(cond(&s, "Ready"), ("True".into(), "Available".into(), 1));
    assert_eq!(s["image"], IMAGE_1);
    assert!(
        cluster
            .events()
            .contains(&("Normal".into(), "Ready".into()))
    );

    // Nothing changed, nothing drifted: a pass reads and writes nothing.
    let writes = cluster.writes().len();
    let events = cluster.events().len();
    let rv = cluster.api.resource_version();
    cluster.pass().await.unwrap();
    assert_eq!(cluster.writes().len(), writes, "{:?}", cluster.writes());
    assert_eq!(cluster.events().len(), events);
    assert_eq!(cluster.api.resource_version(), rv);
}

#[tokio::test]
async fn drift_on_every_kind_of_child_is_undone_by_the_next_pass() {
    let cluster = Cluster::start().await;
    cluster.ready(env("1")).await;
    let password = secret_string(&cluster.child("secrets", "dev-db").unwrap(), "password");
    let session = secret_string(&cluster.child("secrets", "dev-app").unwrap(), "SESSION_KEY");

    // kubectl set image, kubectl patch configmap, an edited Secret, a deleted Service.
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
    cluster
        .api
        .update("kubectl-edit", "secrets", NS, "dev-db", |s| {
            s["data"]["host"] = json!("ZXZpbA=="); // "evil"
        });
    cluster
        .api
        .update("kubectl-edit", "ingresses", NS, "dev", |i| {
            i["spec"]["rules"][0]["host"] = json!("evil.example");
        });
    cluster.api.delete("services", NS, "dev");

    cluster.pass().await.unwrap();
    let deployment = cluster.child("deployments", "dev").unwrap();
    assert_eq!(container_image(&deployment), IMAGE_1);
    let config = cluster.child("configmaps", "dev-config").unwrap();
    assert_eq!(config["data"]["APP_ENV"], "dev");
    let db_secret = cluster.child("secrets", "dev-db").unwrap();
    assert_eq!(secret_string(&db_secret, "host"), "postgres.db");
    // Generated values are kept, never regenerated by a repair.
    assert_eq!(secret_string(&db_secret, "password"), password);
    assert_eq!(
        secret_string(&cluster.child("secrets", "dev-app").unwrap(), "SESSION_KEY"),
        session
    );
    let ingress = cluster.child("ingresses", "dev").unwrap();
    assert_eq!(ingress["spec"]["rules"][0]["host"], "dev.local");
    assert!(cluster.child("services", "dev").is_some());

    // Fields the operator does not own are left alone, and repaired children are quiet.
    cluster
        .api
        .update("kubectl-annotate", "deployments", NS, "dev", |d| {
            d["metadata"]["annotations"]["team.example/owner"] = json!("platform");
        });
    cluster.settle().await;
    let writes = cluster.writes().len();
    cluster.pass().await.unwrap();
    assert_eq!(cluster.writes().len(), writes);
    let deployment = cluster.child("deployments", "dev").unwrap();
    assert_eq!(
        deployment["metadata"]["annotations"]["team.example/owner"],
        "platform"
    );
}

#[tokio::test]
async fn a_database_rename_from_the_default_is_refused_and_changes_nothing() {
    let cluster = Cluster::start().await;
    cluster.ready(env("1")).await;
    let secret_before = cluster.child("secrets", "dev-db").unwrap();
    let writes_before = cluster.writes();

    cluster.edit(|spec| spec["database"]["name"] = json!("ahlt_other"));
    let action = cluster.pass().await.expect("a refusal is not a failure");
    assert_eq!(action, Action::await_change());
    let s = cluster.status();
    assert_eq!(
        cond(&s, "DatabaseReady"),
        ("False".into(), "DatabaseRenameRefused".into(), 2)
    );
    assert_eq!(
        cond(&s, "Ready"),
        ("False".into(), "DatabaseRenameRefused".into(), 2)
    );
    let message = condition(&s, "DatabaseReady")["message"].as_str().unwrap();
    assert!(message.contains("\"ahlt_dev\"") && message.contains("\"ahlt_other\""));
    assert!(message.contains("docs/operations.md"), "{message}");
    assert!(!cluster.db.ensured().contains(&"ahlt_other".to_owned()));
    assert_eq!(cluster.child("secrets", "dev-db").unwrap(), secret_before);
    // Only the status moved.
    let new_writes: Vec<_> = cluster.writes()[writes_before.len()..].to_vec();
    assert!(
        new_writes.iter().all(|w| w.path.ends_with("/status")),
        "{new_writes:?}"
    );
    assert_eq!(s["database"]["name"], "ahlt_dev");
    assert!(
        cluster
            .events()
            .contains(&("Warning".into(), "DatabaseRenameRefused".into()))
    );

    // Naming the database it already uses is fine: back to Ready.
    cluster.edit(|spec| spec["database"]["name"] = json!("ahlt_dev"));
    cluster.settle().await;
    assert_eq!(cond(&cluster.status(), "Ready").1, "Available");
}

#[tokio::test]
async fn a_role_rename_is_refused_even_when_status_was_lost() {
    let cluster = Cluster::start().await;
    cluster.ready(env("1")).await;
    // Status lost (restored from a backup without status): the Secret still remembers.
    cluster.api.update_status(ENVS, NS, NAME, |e| {
        e.as_object_mut().unwrap().remove("status");
    });
    cluster.edit(|spec| spec["database"]["role"] = json!("intruder"));
    cluster.pass().await.unwrap();
    assert_eq!(
        cond(&cluster.status(), "DatabaseReady").1,
        "DatabaseRenameRefused"
    );
    assert!(
        !cluster
            .db
            .calls()
            .iter()
            .any(|c| matches!(c, DbCall::Ensure { role, .. } if role == "intruder"))
    );
}

#[tokio::test]
async fn an_image_bump_runs_the_new_job_while_the_old_image_serves() {
    let cluster = Cluster::start().await;
    cluster.ready(env("1")).await;
    cluster.edit(|spec| spec["image"]["tag"] = json!("2"));
    cluster.settle().await;
    assert!(
        cluster
            .child("jobs", &names::migration_job(NAME, IMAGE_2))
            .is_some()
    );
    let s = cluster.status();
    assert_eq!(cond(&s, "Ready"), ("False".into(), "Progressing".into(), 2));
    assert_eq!(cond(&s, "MigrationsApplied").1, "Running");
    assert_eq!(s["image"], IMAGE_1);
    assert_eq!(
        container_image(&cluster.child("deployments", "dev").unwrap()),
        IMAGE_1
    );

    cluster.complete_migration(IMAGE_2);
    cluster.settle().await;
    assert_eq!(
        container_image(&cluster.child("deployments", "dev").unwrap()),
        IMAGE_2
    );
    assert_eq!(
        cluster.status()["image"],
        IMAGE_1,
        "no new pod available yet"
    );
    cluster.roll_out();
    cluster.settle().await;
    let s = cluster.status();
    assert_eq!(cond(&s, "Ready"), ("True".into(), "Available".into(), 2));
    assert_eq!(s["image"], IMAGE_2);
}

#[tokio::test]
async fn a_failed_migration_keeps_the_old_image_and_warns_once() {
    let cluster = Cluster::start().await;
    cluster.ready(env("1")).await;
    cluster.edit(|spec| spec["image"]["tag"] = json!("2"));
    cluster.settle().await;
    cluster.fail_migration(IMAGE_2);
    cluster.settle().await;
    cluster.pass().await.unwrap();
    let s = cluster.status();
    assert_eq!(
        cond(&s, "MigrationsApplied"),
        ("False".into(), "MigrationFailed".into(), 2)
    );
    assert_eq!(cond(&s, "Ready").1, "MigrationFailed");
    assert!(
        condition(&s, "MigrationsApplied")["message"]
            .as_str()
            .unwrap()
            .contains("BackoffLimitExceeded")
    );
    assert_eq!(s["image"], IMAGE_1);
    assert_eq!(
        container_image(&cluster.child("deployments", "dev").unwrap()),
        IMAGE_1
    );
    let warnings = cluster
        .events()
        .into_iter()
        .filter(|e| *e == ("Warning".into(), "MigrationFailed".into()))
        .count();
    assert_eq!(warnings, 1);
}

#[tokio::test]
async fn a_removed_ingress_is_deleted_and_the_url_goes() {
    let cluster = Cluster::start().await;
    cluster.ready(env("1")).await;
    let hash = |c: &Cluster| {
        c.child("deployments", "dev").unwrap()["spec"]["template"]["metadata"]["annotations"]
            .clone()
    };
    let before = hash(&cluster);
    cluster.edit(|spec| {
        spec.as_object_mut().unwrap().remove("ingress");
    });
    cluster.settle().await;
    assert!(cluster.child("ingresses", "dev").is_none());
    let config = cluster.child("configmaps", "dev-config").unwrap();
    assert_eq!(config["data"]["TRUST_FORWARDED_FOR"], "false");
    assert_ne!(
        hash(&cluster),
        before,
        "the pods roll with the configuration"
    );
    let s = cluster.status();
    assert_eq!(
        cond(&s, "IngressReady"),
        ("True".into(), "NotRequested".into(), 2)
    );
    assert!(s.get("url").is_none());
}

#[tokio::test]
async fn suspend_changes_nothing_and_says_so() {
    let cluster = Cluster::start().await;
    cluster.ready(env("1")).await;
    let calls = cluster.db.calls().len();
    cluster.edit(|spec| {
        spec["suspend"] = json!(true);
        spec["image"]["tag"] = json!("2");
    });
    let action = cluster.pass().await.unwrap();
    assert_eq!(action, Action::await_change());
    let s = cluster.status();
    assert_eq!(cond(&s, "Ready"), ("False".into(), "Suspended".into(), 2));
    assert_eq!(s["image"], IMAGE_1);
    assert!(
        cluster
            .child("jobs", &names::migration_job(NAME, IMAGE_2))
            .is_none()
    );
    assert_eq!(cluster.db.calls().len(), calls);
}

#[tokio::test]
async fn invalid_spec_sets_ready_false_with_the_reason_and_waits() {
    let cluster = Cluster::start().await;
    let mut bad = env("1");
    bad["spec"]["app"] = json!({"env": [{"name": "X", "value": "1"}, {"name": "X", "value": "2"}]});
    cluster.api.create(bad);
    let action = cluster.pass().await.unwrap();
    assert_eq!(action, Action::await_change());
    let s = cluster.status();
    assert_eq!(cond(&s, "Ready"), ("False".into(), "InvalidSpec".into(), 1));
    assert!(
        condition(&s, "Ready")["message"]
            .as_str()
            .unwrap()
            .contains("X twice")
    );
    assert!(cluster.db.calls().is_empty());
    assert!(cluster.child("secrets", "dev-db").is_none());
}

#[tokio::test]
async fn unreachable_postgres_is_reported_and_backs_off_with_growing_jittered_delays() {
    let cluster = Cluster::start_with(FakeProvisioner::failing(
        "Unreachable",
        "PostgreSQL at postgres.db:5432 is unreachable",
    ))
    .await;
    cluster.api.create(env("1"));
    let error = cluster.pass().await.expect_err("the pass fails");
    assert_eq!(error.step(), "database");
    assert_eq!(error.reason(), "Unreachable");
    let s = cluster.status();
    assert_eq!(
        cond(&s, "DatabaseReady"),
        ("False".into(), "Unreachable".into(), 1)
    );
    assert_eq!(cond(&s, "Ready"), ("False".into(), "Unreachable".into(), 1));
    assert!(
        cluster
            .events()
            .contains(&("Warning".into(), "Unreachable".into()))
    );

    let obj: std::sync::Arc<AhltEnvironment> =
        std::sync::Arc::new(serde_json::from_value(cluster.env()).unwrap());
    let mut previous = Duration::ZERO;
    for attempt in 1..=4 {
        let action = error_policy(obj.clone(), &error, cluster.ctx.clone());
        let (lo, hi) = cluster.ctx.backoff.bounds(attempt);
        let delay = requeue_delay(&action);
        assert!(lo <= delay && delay <= hi, "attempt {attempt}: {delay:?}");
        assert!(delay > previous, "delays grow");
        previous = delay;
    }
    assert!(
        cluster
            .metrics
            .encode()
            .contains("reconcile_failures_total{reason=\"database\"} 1")
    );
}

#[tokio::test]
async fn an_unreachable_api_server_fails_the_step_and_is_retried_soon() {
    let api = ahlt_operator::testing::FakeApiServer::start().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let cluster = Cluster::on(api, &dead, FakeProvisioner::default());
    let mut env_object = env("1");
    env_object["metadata"]["uid"] = json!("uid-1");
    env_object["metadata"]["generation"] = json!(1);
    let obj: std::sync::Arc<AhltEnvironment> =
        std::sync::Arc::new(serde_json::from_value(env_object).unwrap());
    let error = controller::reconcile(obj.clone(), cluster.ctx.clone())
        .await
        .expect_err("nothing answers");
    assert_eq!(error.step(), "status");
    assert!(error.to_string().contains("status of dev"), "{error}");
    for _ in 0..10 {
        let delay = requeue_delay(&error_policy(obj.clone(), &error, cluster.ctx.clone()));
        assert!(delay <= API_RETRY_MAX, "{delay:?}");
    }
}

fn deleting(cluster: &Cluster, policy: &str) {
    cluster.edit(|spec| spec["database"]["deletionPolicy"] = json!(policy));
    cluster.api.delete(ENVS, NS, NAME);
}

#[tokio::test]
async fn delete_with_retain_releases_the_finalizer_without_dropping() {
    let cluster = Cluster::start().await;
    cluster.ready(env("1")).await;
    deleting(&cluster, "Retain");
    cluster.pass().await.unwrap();
    assert!(
        cluster.api.get(ENVS, NS, NAME).is_none(),
        "the object is gone"
    );
    assert!(
        !cluster
            .db
            .calls()
            .iter()
            .any(|c| matches!(c, DbCall::Drop { .. }))
    );
    // Its children go with it (garbage collection by ownerReference).
    assert!(cluster.child("deployments", "dev").is_none());
}

#[tokio::test]
async fn delete_with_delete_says_deleting_drops_then_releases_the_finalizer() {
    let cluster = Cluster::start().await;
    cluster.ready(env("1")).await;
    deleting(&cluster, "Delete");
    cluster.pass().await.unwrap();
    assert!(cluster.api.get(ENVS, NS, NAME).is_none());
    assert_eq!(
        cluster.db.calls().last(),
        Some(&DbCall::Drop {
            database: "ahlt_dev".into(),
            role: "ahlt_dev".into(),
            owner: format!("{NS}/{NAME}"),
        })
    );
    assert!(
        cluster
            .events()
            .contains(&("Normal".into(), "DatabaseDropped".into()))
    );
}

#[tokio::test]
async fn delete_with_unreachable_postgres_keeps_the_finalizer_and_reports() {
    let cluster = Cluster::start().await;
    cluster.ready(env("1")).await;
    cluster.db.fail_with("Unreachable", "connection refused");
    deleting(&cluster, "Delete");
    let error = cluster.pass().await.expect_err("the drop fails");
    assert_eq!(error.reason(), "Unreachable");
    let s = cluster.status();
    assert_eq!(cond(&s, "Ready").1, "Deleting");
    assert_eq!(cond(&s, "DatabaseReady").1, "Unreachable");
    assert_eq!(
        cluster.env()["metadata"]["finalizers"],
        json!([names::FINALIZER])
    );
}

/// A pass that works from a copy older than the finalizer list (the watch cache lags behind)
/// neither fails nor drops or duplicates a finalizer.
#[tokio::test]
async fn a_stale_copy_neither_fails_the_finalizer_step_nor_drops_others() {
    let cluster = Cluster::start().await;
    cluster.api.create(env("1"));
    let stale = cluster.env();
    // Another controller adds its finalizer after the copy was taken.
    cluster.api.update("other-controller", ENVS, NS, NAME, |e| {
        e["metadata"]["finalizers"] = json!(["example.com/other"]);
    });
    let stale: AhltEnvironment = serde_json::from_value(stale).unwrap();
    controller::reconcile(std::sync::Arc::new(stale.clone()), cluster.ctx.clone())
        .await
        .expect("the pass succeeds");
    assert_eq!(
        cluster.env()["metadata"]["finalizers"],
        json!(["example.com/other", names::FINALIZER])
    );
    // The same stale copy once more: the finalizer is there already, nothing fails.
    controller::reconcile(std::sync::Arc::new(stale), cluster.ctx.clone())
        .await
        .expect("the pass succeeds");
    assert_eq!(
        cluster.env()["metadata"]["finalizers"],
        json!(["example.com/other", names::FINALIZER])
    );
}
