//! Reconcile scenarios against a mocked API server: the exact requests, in order, and what
//! their bodies say.

mod support;

use std::sync::Arc;

use ahlt_operator::controller::{Error, error_policy};
use ahlt_operator::crd::AhltEnvironment;
use ahlt_operator::names;
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use support::*;

/// Objects the API server holds after a pass.
#[derive(Clone, Default)]
struct World {
    status: Value,
    db_secret: Option<Value>,
    app_secret: Option<Value>,
    config_map: Option<Value>,
    job: Option<Value>,
    deployment: Option<Value>,
    service: Option<Value>,
    ingress: Option<Value>,
    /// The graph resync Job.
    resync_job: Option<Value>,
}

/// Builds the AhltEnvironment of a scenario for a generation and image tag.
type EnvAt = fn(i64, &str) -> Value;

fn job_name(image: &str) -> String {
    names::migration_job(NAME, image)
}

/// The eight reads of a pass, answered from `world`; the job looked up is the one of `image`.
async fn reads(api: &mut ApiServer, world: &World, image: &str) {
    api.get(&uri("v1", "secrets", "pg-admin"), Some(&admin_secret()))
        .await;
    api.get(&uri("v1", "secrets", "dev-db"), world.db_secret.as_ref())
        .await;
    api.get(&uri("v1", "secrets", "dev-app"), world.app_secret.as_ref())
        .await;
    api.get(
        &uri("v1", "configmaps", "dev-config"),
        world.config_map.as_ref(),
    )
    .await;
    let job = world
        .job
        .as_ref()
        .filter(|j| j["metadata"]["name"] == job_name(image).as_str());
    api.get(&uri("batch/v1", "jobs", &job_name(image)), job)
        .await;
    api.get(
        &uri("apps/v1", "deployments", "dev"),
        world.deployment.as_ref(),
    )
    .await;
    api.get(&uri("v1", "services", "dev"), world.service.as_ref())
        .await;
    api.get(
        &uri("networking.k8s.io/v1", "ingresses", "dev"),
        world.ingress.as_ref(),
    )
    .await;
}

/// Status PATCH: returns the status body and answers with the env carrying it.
async fn status_patch(api: &mut ApiServer, env: &Value) -> Value {
    let call = api.expect("PATCH", &status_uri()).await;
    let status = call.body["status"].clone();
    call.respond(with_status(env.clone(), &status));
    status
}

fn container_image(deployment: &Value) -> String {
    deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn succeeded(mut job: Value) -> Value {
    job["status"] = json!({"succeeded": 1});
    job
}

fn rolled_out(mut deployment: Value) -> Value {
    let replicas = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
    deployment["metadata"]["generation"] = json!(1);
    deployment["status"] = json!({
        "observedGeneration": 1, "replicas": replicas,
        "updatedReplicas": replicas, "availableReplicas": replicas,
    });
    deployment
}

/// Pass 1: a brand-new environment.
async fn first_creation() -> (World, Arc<FakeProvisioner>) {
    first_creation_of(env).await
}

async fn first_creation_of(env_at: EnvAt) -> (World, Arc<FakeProvisioner>) {
    let db = Arc::new(FakeProvisioner::default());
    let (ctx, handle) = context(db.clone());
    let env = env_at(1, "1");
    let seen = Arc::new(std::sync::Mutex::new(World::default()));
    let out = seen.clone();
    let env2 = env.clone();
    let result = scenario(&env, ctx, handle, move |mut api| async move {
        // Ready=False/Progressing is the very first write.
        let progressing = status_patch(&mut api, &env2).await;
        assert_eq!(
            cond(&progressing, "Ready"),
            ("False".into(), "Progressing".into(), 1)
        );
        assert_eq!(progressing["observedGeneration"], 1);
        assert_eq!(progressing["conditions"].as_array().unwrap().len(), 1);

        let fin = api.expect("PATCH", &env_uri()).await;
        assert_eq!(
            fin.body["metadata"]["finalizers"],
            json!(["ahlt.io/database"])
        );
        assert_eq!(fin.body["metadata"]["resourceVersion"], "100");
        fin.respond(with_finalizer(env2.clone()));

        reads(&mut api, &World::default(), IMAGE_1).await;

        let db_secret = api
            .expect("PATCH", &apply_uri("v1", "secrets", "dev-db"))
            .await
            .echo();
        let app_secret = api
            .expect("PATCH", &apply_uri("v1", "secrets", "dev-app"))
            .await
            .echo();
        let config_map = api
            .expect("PATCH", &apply_uri("v1", "configmaps", "dev-config"))
            .await
            .echo();
        let job = api
            .expect("PATCH", &apply_uri("batch/v1", "jobs", &job_name(IMAGE_1)))
            .await
            .echo();
        // No Deployment, Service or Ingress before the first migrations succeeded.
        let status = status_patch(&mut api, &env2).await;
        *out.lock().unwrap() = World {
            status,
            db_secret: Some(db_secret),
            app_secret: Some(app_secret),
            config_map: Some(config_map),
            job: Some(job),
            ..World::default()
        };
        api
    })
    .await;
    assert!(matches!(result, Ok(a) if a != Action::await_change()));
    let world = seen.lock().unwrap().clone();
    (world, db)
}

#[tokio::test]
async fn first_creation_provisions_and_runs_migrations_before_any_deployment() {
    let (world, db) = first_creation().await;

    let db_secret = world.db_secret.as_ref().unwrap();
    let password = secret_string(db_secret, "password");
    assert!(password.len() >= 32);
    assert!(secret_string(db_secret, "DATABASE_URL").starts_with("postgres"));
    assert_eq!(
        db.calls(),
        vec![DbCall::Ensure {
            host: "postgres.db".into(),
            database: "ahlt_dev".into(),
            role: "ahlt_dev".into(),
            password,
            owner: format!("{NS}/{NAME}"),
        }]
    );
    let app_secret = world.app_secret.as_ref().unwrap();
    assert!(secret_string(app_secret, "SESSION_KEY").len() >= 32);
    assert!(!secret_string(app_secret, "ADMIN_PASSWORD").is_empty());
    for child in [
        db_secret,
        app_secret,
        world.config_map.as_ref().unwrap(),
        world.job.as_ref().unwrap(),
    ] {
        assert_eq!(
            labels(child)["app.kubernetes.io/managed-by"],
            "ahlt-operator"
        );
        assert_eq!(child["metadata"]["ownerReferences"][0]["uid"], "uid-dev");
        assert_eq!(child["metadata"]["ownerReferences"][0]["controller"], true);
    }
    let job = world.job.as_ref().unwrap();
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["image"],
        IMAGE_1
    );

    let s = &world.status;
    assert_eq!(cond(s, "Ready"), ("False".into(), "Progressing".into(), 1));
    assert_eq!(
        cond(s, "DatabaseReady"),
        ("True".into(), "Provisioned".into(), 1)
    );
    assert_eq!(
        cond(s, "MigrationsApplied"),
        ("False".into(), "Running".into(), 1)
    );
    assert_eq!(
        cond(s, "WorkloadAvailable"),
        ("False".into(), "NotCreated".into(), 1)
    );
    assert_eq!(
        cond(s, "IngressReady"),
        ("False".into(), "Pending".into(), 1)
    );
    assert_eq!(
        cond(s, "GraphSynced"),
        ("True".into(), "NotConfigured".into(), 1)
    );
    assert_eq!(
        s["database"],
        json!({"name": "ahlt_dev", "role": "ahlt_dev", "secretName": "dev-db"})
    );
    assert!(s.get("image").is_none());
    assert_eq!(s["url"], "http://dev.local");
}

/// Pass 2: the migration Job of image 1 succeeded.
async fn migrations_succeeded(world: World) -> World {
    migrations_succeeded_of(world, env).await
}

async fn migrations_succeeded_of(mut world: World, env_at: EnvAt) -> World {
    let db = Arc::new(FakeProvisioner::default());
    let (ctx, handle) = context(db.clone());
    let env = with_status(with_finalizer(env_at(1, "1")), &world.status);
    world.job = world.job.map(succeeded);
    let before = world.clone();
    let env2 = env.clone();
    let seen = Arc::new(std::sync::Mutex::new(World::default()));
    let out = seen.clone();
    scenario(&env, ctx, handle, move |mut api| async move {
        reads(&mut api, &before, IMAGE_1).await;
        // Secrets and ConfigMap are current: not written again.
        let deployment = api
            .expect("PATCH", &apply_uri("apps/v1", "deployments", "dev"))
            .await
            .echo();
        assert_eq!(container_image(&deployment), IMAGE_1);
        let service = api
            .expect("PATCH", &apply_uri("v1", "services", "dev"))
            .await
            .echo();
        let ingress = api
            .expect(
                "PATCH",
                &apply_uri("networking.k8s.io/v1", "ingresses", "dev"),
            )
            .await
            .echo();
        assert_eq!(ingress["spec"]["rules"][0]["host"], "dev.local");
        let status = status_patch(&mut api, &env2).await;
        *out.lock().unwrap() = World {
            status,
            deployment: Some(deployment),
            service: Some(service),
            ingress: Some(ingress),
            ..before
        };
        api
    })
    .await
    .expect("pass succeeds");
    // The stored password is reused, never regenerated.
    let password = secret_string(world.db_secret.as_ref().unwrap(), "password");
    assert!(matches!(&db.calls()[..], [DbCall::Ensure { password: p, .. }] if *p == password));
    let world = seen.lock().unwrap().clone();
    let s = &world.status;
    assert_eq!(
        cond(s, "MigrationsApplied"),
        ("True".into(), "Succeeded".into(), 1)
    );
    assert_eq!(
        cond(s, "WorkloadAvailable"),
        ("False".into(), "RollingOut".into(), 1)
    );
    assert_eq!(cond(s, "Ready"), ("False".into(), "Progressing".into(), 1));
    assert_eq!(
        cond(s, "IngressReady"),
        ("True".into(), "Configured".into(), 1)
    );
    assert_eq!(s["migratedImage"], IMAGE_1);
    assert!(s.get("image").is_none(), "no pods available yet");
    world
}

#[tokio::test]
async fn succeeded_migration_applies_deployment_service_and_ingress() {
    let (world, _) = first_creation().await;
    migrations_succeeded(world).await;
}

/// Pass 3: the new pods are available.
async fn pods_available(mut world: World) -> World {
    let (ctx, handle) = context(Arc::new(FakeProvisioner::default()));
    let env = with_status(with_finalizer(env(1, "1")), &world.status);
    world.deployment = world.deployment.map(rolled_out);
    let before = world.clone();
    let env2 = env.clone();
    let seen = Arc::new(std::sync::Mutex::new(Value::Null));
    let out = seen.clone();
    scenario(&env, ctx, handle, move |mut api| async move {
        reads(&mut api, &before, IMAGE_1).await;
        let status = status_patch(&mut api, &env2).await;
        let event = api.expect("POST", &events_uri()).await;
        assert_eq!(event.body["type"], "Normal");
        assert_eq!(event.body["reason"], "Ready");
        assert_eq!(event.body["regarding"]["name"], NAME);
        let body = event.body.clone();
        event.respond(body);
        *out.lock().unwrap() = status;
        api
    })
    .await
    .expect("pass succeeds");
    world.status = seen.lock().unwrap().clone();
    let s = &world.status;
    assert_eq!(cond(s, "Ready"), ("True".into(), "Available".into(), 1));
    assert_eq!(
        cond(s, "WorkloadAvailable"),
        ("True".into(), "Available".into(), 1)
    );
    assert_eq!(s["image"], IMAGE_1);
    assert_eq!(s["replicas"], 1);
    world
}

async fn ready_world() -> World {
    let (world, _) = first_creation().await;
    let world = migrations_succeeded(world).await;
    pods_available(world).await
}

#[tokio::test]
async fn available_pods_make_it_ready_and_set_the_image() {
    ready_world().await;
}

#[tokio::test]
async fn second_pass_with_nothing_changed_only_reads() {
    let world = ready_world().await;
    let (ctx, handle) = context(Arc::new(FakeProvisioner::default()));
    let env = with_status(with_finalizer(env(1, "1")), &world.status);
    let before = world.clone();
    scenario(&env, ctx, handle, move |mut api| async move {
        reads(&mut api, &before, IMAGE_1).await;
        api
    })
    .await
    .expect("pass succeeds");
}

#[tokio::test]
async fn image_bump_runs_the_new_job_while_the_old_image_keeps_serving() {
    let world = ready_world().await;
    let (ctx, handle) = context(Arc::new(FakeProvisioner::default()));
    // CI bumps the tag (and the replicas, so the Deployment is re-applied).
    let mut env = with_status(with_finalizer(env(2, "2")), &world.status);
    env["spec"]["replicas"] = json!(2);
    let env2 = env.clone();
    let before = world.clone();
    scenario(&env, ctx, handle, move |mut api| async move {
        let progressing = status_patch(&mut api, &env2).await;
        assert_eq!(
            cond(&progressing, "Ready"),
            ("False".into(), "Progressing".into(), 2)
        );
        assert_eq!(progressing["image"], IMAGE_1);
        reads(&mut api, &before, IMAGE_2).await;
        let job = api
            .expect("PATCH", &apply_uri("batch/v1", "jobs", &job_name(IMAGE_2)))
            .await
            .echo();
        assert_eq!(
            job["spec"]["template"]["spec"]["containers"][0]["image"],
            IMAGE_2
        );
        let deployment = api
            .expect("PATCH", &apply_uri("apps/v1", "deployments", "dev"))
            .await
            .echo();
        assert_eq!(
            container_image(&deployment),
            IMAGE_1,
            "old image until migrations succeed"
        );
        assert_eq!(deployment["spec"]["replicas"], 2);
        let status = status_patch(&mut api, &env2).await;
        assert_eq!(
            cond(&status, "MigrationsApplied"),
            ("False".into(), "Running".into(), 2)
        );
        assert_eq!(
            cond(&status, "Ready"),
            ("False".into(), "Progressing".into(), 2)
        );
        assert_eq!(status["image"], IMAGE_1);
        api
    })
    .await
    .expect("pass succeeds");
}

#[tokio::test]
async fn failed_migration_keeps_the_old_deployment_and_warns_once() {
    let mut world = ready_world().await;
    let (ctx, handle) = context(Arc::new(FakeProvisioner::default()));
    let env = with_status(with_finalizer(env(2, "2")), &world.status);
    let mut failed_job = world.job.clone().unwrap();
    failed_job["metadata"]["name"] = json!(job_name(IMAGE_2));
    failed_job["status"] = json!({"failed": 1, "conditions": [{
        "type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
        "message": "Job has reached the specified backoff limit"}]});
    world.job = Some(failed_job);
    let env2 = env.clone();
    let before = world.clone();
    let seen = Arc::new(std::sync::Mutex::new(Value::Null));
    let out = seen.clone();
    scenario(&env, ctx, handle, move |mut api| async move {
        status_patch(&mut api, &env2).await;
        reads(&mut api, &before, IMAGE_2).await;
        // No Job re-created, no Deployment, Service or Ingress written.
        let status = status_patch(&mut api, &env2).await;
        let event = api.expect("POST", &events_uri()).await;
        assert_eq!(event.body["type"], "Warning");
        assert_eq!(event.body["reason"], "MigrationFailed");
        assert!(
            event.body["note"]
                .as_str()
                .unwrap()
                .contains("BackoffLimitExceeded")
        );
        let body = event.body.clone();
        event.respond(body);
        *out.lock().unwrap() = status;
        api
    })
    .await
    .expect("pass succeeds");
    let status = seen.lock().unwrap().clone();
    assert_eq!(
        cond(&status, "MigrationsApplied"),
        ("False".into(), "MigrationFailed".into(), 2)
    );
    assert_eq!(
        cond(&status, "Ready"),
        ("False".into(), "MigrationFailed".into(), 2)
    );
    assert_eq!(
        cond(&status, "WorkloadAvailable"),
        ("True".into(), "Available".into(), 2)
    );
    assert_eq!(status["image"], IMAGE_1);

    // The same failure on the next pass: no event, no write.
    let (ctx, handle) = context(Arc::new(FakeProvisioner::default()));
    let env = with_status(with_finalizer(support::env(2, "2")), &status);
    scenario(&env, ctx, handle, move |mut api| async move {
        reads(&mut api, &world, IMAGE_2).await;
        api
    })
    .await
    .expect("pass succeeds");
}

#[tokio::test]
async fn removed_ingress_is_deleted() {
    let world = ready_world().await;
    let (ctx, handle) = context(Arc::new(FakeProvisioner::default()));
    let mut env = with_status(with_finalizer(env(2, "1")), &world.status);
    env["spec"].as_object_mut().unwrap().remove("ingress");
    let env2 = env.clone();
    let before = world.clone();
    scenario(&env, ctx, handle, move |mut api| async move {
        status_patch(&mut api, &env2).await;
        reads(&mut api, &before, IMAGE_1).await;
        // The app config follows (no proxy in front any more), and with it the pods.
        let config_map = api
            .expect("PATCH", &apply_uri("v1", "configmaps", "dev-config"))
            .await
            .echo();
        assert_eq!(config_map["data"]["TRUST_FORWARDED_FOR"], "false");
        let deployment = api
            .expect("PATCH", &apply_uri("apps/v1", "deployments", "dev"))
            .await
            .echo();
        assert_eq!(container_image(&deployment), IMAGE_1);
        let hash = |d: &Value| d["spec"]["template"]["metadata"]["annotations"].clone();
        assert_ne!(hash(&deployment), hash(before.deployment.as_ref().unwrap()));
        let delete = api
            .expect(
                "DELETE",
                &format!("{}?", uri("networking.k8s.io/v1", "ingresses", "dev")),
            )
            .await;
        assert_eq!(delete.body["propagationPolicy"], "Background");
        delete.respond(json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}));
        let status = status_patch(&mut api, &env2).await;
        assert_eq!(
            cond(&status, "IngressReady"),
            ("True".into(), "NotRequested".into(), 2)
        );
        assert_eq!(status["url"], Value::Null, "url is removed");
        api
    })
    .await
    .expect("pass succeeds");
}

#[tokio::test]
async fn suspend_changes_nothing_and_says_so() {
    let world = ready_world().await;
    let db = Arc::new(FakeProvisioner::default());
    let (ctx, handle) = context(db.clone());
    let mut env = with_status(with_finalizer(env(2, "2")), &world.status);
    env["spec"]["suspend"] = json!(true);
    let env2 = env.clone();
    let result = scenario(&env, ctx, handle, move |mut api| async move {
        status_patch(&mut api, &env2).await;
        let status = status_patch(&mut api, &env2).await;
        assert_eq!(
            cond(&status, "Ready"),
            ("False".into(), "Suspended".into(), 2)
        );
        assert_eq!(status["image"], IMAGE_1);
        api
    })
    .await;
    assert_eq!(result.unwrap(), Action::await_change());
    assert!(db.calls().is_empty());
}

fn deleting(policy: &str, minutes_ago: i64) -> Value {
    let mut env = with_finalizer(env(1, "1"));
    env["spec"]["database"]["deletionPolicy"] = json!(policy);
    let when = k8s_openapi::jiff::Timestamp::now()
        - k8s_openapi::jiff::SignedDuration::from_mins(minutes_ago);
    env["metadata"]["deletionTimestamp"] = json!(when.to_string());
    env
}

async fn expect_finalizer_removed(api: &mut ApiServer, env: &Value) {
    let fin = api.expect("PATCH", &env_uri()).await;
    assert_eq!(fin.body["metadata"]["finalizers"], json!([]));
    fin.respond(env.clone());
}

#[tokio::test]
async fn delete_with_retain_releases_the_finalizer_without_dropping() {
    let db = Arc::new(FakeProvisioner::default());
    let (ctx, handle) = context(db.clone());
    let env = deleting("Retain", 0);
    let env2 = env.clone();
    scenario(&env, ctx, handle, move |mut api| async move {
        expect_finalizer_removed(&mut api, &env2).await;
        api
    })
    .await
    .expect("pass succeeds");
    assert!(db.calls().is_empty());
}

#[tokio::test]
async fn delete_with_delete_drops_then_releases_the_finalizer() {
    let db = Arc::new(FakeProvisioner::default());
    let (ctx, handle) = context(db.clone());
    let env = deleting("Delete", 0);
    let env2 = env.clone();
    scenario(&env, ctx, handle, move |mut api| async move {
        api.get(&uri("v1", "secrets", "pg-admin"), Some(&admin_secret()))
            .await;
        let event = api.expect("POST", &events_uri()).await;
        assert_eq!(event.body["reason"], "DatabaseDropped");
        let body = event.body.clone();
        event.respond(body);
        expect_finalizer_removed(&mut api, &env2).await;
        api
    })
    .await
    .expect("pass succeeds");
    assert_eq!(
        db.calls(),
        vec![DbCall::Drop {
            database: "ahlt_dev".into(),
            role: "ahlt_dev".into(),
            owner: format!("{NS}/{NAME}"),
        }]
    );
}

#[tokio::test]
async fn delete_with_unreachable_postgres_retries_then_gives_up_after_the_deadline() {
    // Within the deadline: reported in status and an event, finalizer kept, error for backoff.
    let db = Arc::new(FakeProvisioner::failing(
        "Unreachable",
        "connection refused",
    ));
    let (ctx, handle) = context(db.clone());
    let env = deleting("Delete", 1);
    let env2 = env.clone();
    let result = scenario(&env, ctx, handle, move |mut api| async move {
        api.get(&uri("v1", "secrets", "pg-admin"), Some(&admin_secret()))
            .await;
        let status = status_patch(&mut api, &env2).await;
        assert_eq!(
            cond(&status, "DatabaseReady"),
            ("False".into(), "Unreachable".into(), 1)
        );
        let event = api.expect("POST", &events_uri()).await;
        assert_eq!(event.body["reason"], "Unreachable");
        let body = event.body.clone();
        event.respond(body);
        api
    })
    .await;
    assert!(matches!(result, Err(Error::Database(_))));

    // Past the deadline: a Warning and the finalizer goes.
    let db = Arc::new(FakeProvisioner::failing(
        "Unreachable",
        "connection refused",
    ));
    let (ctx, handle) = context(db.clone());
    let env = deleting("Delete", 11);
    let env2 = env.clone();
    scenario(&env, ctx, handle, move |mut api| async move {
        api.get(&uri("v1", "secrets", "pg-admin"), Some(&admin_secret()))
            .await;
        let event = api.expect("POST", &events_uri()).await;
        assert_eq!(event.body["type"], "Warning");
        assert_eq!(event.body["reason"], "CleanupAbandoned");
        let body = event.body.clone();
        event.respond(body);
        expect_finalizer_removed(&mut api, &env2).await;
        api
    })
    .await
    .expect("gives up cleanly");
}

#[tokio::test]
async fn unreachable_postgres_is_reported_and_backs_off_with_growing_jittered_delays() {
    let db = Arc::new(FakeProvisioner::failing(
        "Unreachable",
        "PostgreSQL at postgres.db:5432 is unreachable",
    ));
    let (ctx, handle) = context(db.clone());
    let env = with_finalizer(env(1, "1"));
    let env2 = env.clone();
    let result = scenario(&env, ctx.clone(), handle, move |mut api| async move {
        status_patch(&mut api, &env2).await;
        reads(&mut api, &World::default(), IMAGE_1).await;
        api.expect("PATCH", &apply_uri("v1", "secrets", "dev-db"))
            .await
            .echo();
        let status = status_patch(&mut api, &env2).await;
        assert_eq!(
            cond(&status, "DatabaseReady"),
            ("False".into(), "Unreachable".into(), 1)
        );
        assert_eq!(
            cond(&status, "Ready"),
            ("False".into(), "Unreachable".into(), 1)
        );
        assert!(
            condition(&status, "DatabaseReady")["message"]
                .as_str()
                .unwrap()
                .contains("unreachable")
        );
        let event = api.expect("POST", &events_uri()).await;
        assert_eq!(event.body["type"], "Warning");
        assert_eq!(event.body["reason"], "Unreachable");
        let body = event.body.clone();
        event.respond(body);
        api
    })
    .await;
    let error = result.expect_err("the pass fails");
    assert_eq!(error.metric_label(), "Unreachable");

    let obj: Arc<AhltEnvironment> = Arc::new(serde_json::from_value(env).unwrap());
    let mut previous = std::time::Duration::ZERO;
    for attempt in 1..=4 {
        let action = error_policy(obj.clone(), &error, ctx.clone());
        let (lo, hi) = ctx.backoff.bounds(attempt);
        let delay = requeue_delay(&action);
        assert!(
            lo <= delay && delay <= hi,
            "attempt {attempt}: {delay:?} not in {lo:?}..={hi:?}"
        );
        assert!(delay > previous, "delays grow");
        previous = delay;
    }
    assert!(
        ctx.metrics
            .encode()
            .contains("reconcile_failures_total{reason=\"Unreachable\"} 1")
    );
}

fn requeue_delay(action: &Action) -> std::time::Duration {
    // Action exposes its delay only through Debug: `Action { requeue_after: Some(4.2s) }`.
    let text = format!("{action:?}");
    let secs = text
        .split("Some(")
        .nth(1)
        .and_then(|rest| rest.strip_suffix("s) }"))
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("not a requeue in seconds: {text}"));
    let delay = std::time::Duration::from_secs_f64(secs);
    assert_eq!(*action, Action::requeue(delay), "parsed {text} exactly");
    delay
}

#[tokio::test]
async fn invalid_spec_sets_ready_false_with_the_reason_and_waits() {
    let db = Arc::new(FakeProvisioner::default());
    let (ctx, handle) = context(db.clone());
    let mut env = env(1, "1");
    env["metadata"]["name"] = json!("x".repeat(45));
    let name = "x".repeat(45);
    let env2 = env.clone();
    let result = scenario(&env, ctx, handle, move |mut api| async move {
        let status_uri =
            format!("/apis/ahlt.io/v1alpha1/namespaces/{NS}/ahltenvironments/{name}/status?");
        let c = api.expect("PATCH", &status_uri).await;
        c.respond(env2.clone());
        let c = api.expect("PATCH", &status_uri).await;
        assert_eq!(
            cond(&c.body["status"], "Ready"),
            ("False".into(), "NameTooLong".into(), 1)
        );
        c.respond(env2.clone());
        let event = api.expect("POST", &events_uri()).await;
        assert_eq!(event.body["reason"], "NameTooLong");
        let body = event.body.clone();
        event.respond(body);
        api
    })
    .await;
    assert_eq!(result.unwrap(), Action::await_change());
    assert!(db.calls().is_empty());
}

// Graph resync (issue 4): one `ahlt graph resync` Job per serving image and request.

const CREDENTIALS: &str = "neo4j-credentials";
const GRAPH_URI: &str = "bolt://neo4j.infra:7687";
const DONE_1: &str = "2024-05-01T10:00:00Z";
const DONE_2: &str = "2024-05-02T11:30:00Z";

fn graph_env(generation: i64, tag: &str) -> Value {
    let mut env = env(generation, tag);
    env["spec"]["graph"] = json!({"uri": GRAPH_URI, "credentialsSecretRef": {"name": CREDENTIALS}});
    env
}

/// The graph environment at generation 2 with `spec.graph.resyncRequest`.
fn graph_env_requesting(request: &str, status: &Value) -> Value {
    let mut env = with_status(with_finalizer(graph_env(2, "1")), status);
    env["spec"]["graph"]["resyncRequest"] = json!(request);
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

fn resync_uri(image: &str, request: &str) -> String {
    uri("batch/v1", "jobs", &resync_name(image, request))
}

/// The graph step creating a Job: it looks for the Job, checks the credentials Secret and
/// applies the Job. Returns the Job as applied.
async fn resync_created(api: &mut ApiServer, image: &str, request: &str) -> Value {
    api.get(&resync_uri(image, request), None).await;
    api.get(
        &uri("v1", "secrets", CREDENTIALS),
        Some(&graph_credentials()),
    )
    .await;
    api.expect(
        "PATCH",
        &apply_uri("batch/v1", "jobs", &resync_name(image, request)),
    )
    .await
    .echo()
}

async fn expect_event(api: &mut ApiServer, type_: &str, reason: &str) -> Value {
    let event = api.expect("POST", &events_uri()).await;
    assert_eq!(
        (event.body["type"].as_str(), event.body["reason"].as_str()),
        (Some(type_), Some(reason)),
        "event {}",
        event.body
    );
    let body = event.body.clone();
    event.respond(body.clone());
    body
}

fn completed(mut job: Value, at: &str) -> Value {
    job["status"] = json!({"succeeded": 1, "completionTime": at});
    job
}

fn message(status: &Value, type_: &str) -> String {
    condition(status, type_)["message"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Runs one pass of `env` against `world`: Ready=False/Progressing first when `env` is a new
/// generation, the reads, then `script`. Returns the status `script` saw written, or the
/// env's status when none was.
async fn graph_pass<F, Fut>(env: Value, world: &World, image: &str, script: F) -> Value
where
    F: FnOnce(ApiServer, Value) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = (ApiServer, Option<Value>)> + Send + 'static,
{
    let (ctx, handle) = context(Arc::new(FakeProvisioner::default()));
    let before = world.clone();
    let image = image.to_owned();
    let env2 = env.clone();
    let seen = Arc::new(std::sync::Mutex::new(None));
    let out = seen.clone();
    let new_generation = env["metadata"]["generation"] != env["status"]["observedGeneration"];
    scenario(&env, ctx, handle, move |mut api| async move {
        if new_generation {
            let progressing = status_patch(&mut api, &env2).await;
            assert_eq!(cond(&progressing, "Ready").1, "Progressing");
        }
        reads(&mut api, &before, &image).await;
        let (api, status) = script(api, env2).await;
        *out.lock().unwrap() = status;
        api
    })
    .await
    .expect("pass succeeds");
    let written = seen.lock().unwrap().clone();
    written.unwrap_or_else(|| env["status"].clone())
}

/// Passes 1-3 with a graph; pass 3 (pods of image 1 available) starts the rollout resync.
async fn graph_rollout_world() -> World {
    let (world, _) = first_creation_of(graph_env).await;
    assert_eq!(
        cond(&world.status, "GraphSynced"),
        ("False".into(), "Pending".into(), 1),
        "no image serves yet"
    );
    assert_eq!(
        world.config_map.as_ref().unwrap()["data"]["GRAPH_URI"],
        GRAPH_URI
    );
    let mut world = migrations_succeeded_of(world, graph_env).await;
    assert_eq!(
        cond(&world.status, "GraphSynced"),
        ("False".into(), "Pending".into(), 1),
        "the new pods are not available yet"
    );

    world.deployment = world.deployment.map(rolled_out);
    let env = with_status(with_finalizer(graph_env(1, "1")), &world.status);
    let job = Arc::new(std::sync::Mutex::new(Value::Null));
    let created = job.clone();
    world.status = graph_pass(env, &world, IMAGE_1, move |mut api, env| async move {
        *created.lock().unwrap() = resync_created(&mut api, IMAGE_1, "").await;
        let status = status_patch(&mut api, &env).await;
        expect_event(&mut api, "Normal", "Ready").await;
        (api, Some(status))
    })
    .await;
    world.resync_job = Some(job.lock().unwrap().clone());
    world
}

#[tokio::test]
async fn rollout_triggered_resync_creates_one_job_with_the_serving_image() {
    let world = graph_rollout_world().await;
    let job = world.resync_job.as_ref().unwrap();
    assert_eq!(job["metadata"]["name"], resync_name(IMAGE_1, "").as_str());
    assert_eq!(labels(job)["app.kubernetes.io/component"], "graph-resync");
    assert_eq!(labels(job)["app.kubernetes.io/managed-by"], "ahlt-operator");
    assert_eq!(job["metadata"]["ownerReferences"][0]["uid"], "uid-dev");
    assert_eq!(job["metadata"]["annotations"]["ahlt.io/image"], IMAGE_1);
    assert_eq!(job["metadata"]["annotations"]["ahlt.io/resync-request"], "");
    assert_eq!(job["spec"]["ttlSecondsAfterFinished"], 86_400);
    let pod = &job["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["image"], IMAGE_1);
    assert_eq!(container["args"], json!(["graph", "resync"]));
    assert_eq!(pod["restartPolicy"], "Never");
    // GRAPH_URI through the ConfigMap, the credentials from the Secret, nothing inline.
    assert_eq!(
        container["envFrom"],
        json!([{"configMapRef": {"name": "dev-config", "optional": false}}])
    );
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
        from_secret("GRAPH_USERNAME"),
        json!({"name": CREDENTIALS, "key": "username", "optional": false})
    );
    assert_eq!(
        from_secret("GRAPH_PASSWORD"),
        json!({"name": CREDENTIALS, "key": "password", "optional": false})
    );
    assert_eq!(
        from_secret("DATABASE_URL"),
        json!({"name": "dev-db", "key": "DATABASE_URL", "optional": false})
    );
    assert!(!job.to_string().contains("graph-pw"));

    let s = &world.status;
    assert_eq!(
        cond(s, "GraphSynced"),
        ("False".into(), "Resyncing".into(), 1)
    );
    assert!(message(s, "GraphSynced").contains(IMAGE_1));
    assert_eq!(
        cond(s, "Ready"),
        ("True".into(), "Available".into(), 1),
        "Ready does not wait for the graph"
    );
    assert!(s.get("graph").is_none());

    // While it runs: one GET of the Job, no second Job, no write.
    let env = with_status(with_finalizer(graph_env(1, "1")), s);
    let job = job.clone();
    graph_pass(env, &world, IMAGE_1, move |mut api, _| async move {
        api.get(&resync_uri(IMAGE_1, ""), Some(&job)).await;
        (api, None)
    })
    .await;
}

/// Pass 4: the rollout resync succeeded.
async fn graph_synced_world() -> World {
    let mut world = graph_rollout_world().await;
    let done = completed(world.resync_job.clone().unwrap(), DONE_1);
    let env = with_status(with_finalizer(graph_env(1, "1")), &world.status);
    world.status = graph_pass(env, &world, IMAGE_1, move |mut api, env| async move {
        api.get(&resync_uri(IMAGE_1, ""), Some(&done)).await;
        // GraphSynced turning True is no event; Ready already was.
        let status = status_patch(&mut api, &env).await;
        (api, Some(status))
    })
    .await;
    world
}

#[tokio::test]
async fn succeeded_resync_records_the_image_and_time_and_a_vanished_job_is_not_rerun() {
    let mut world = graph_synced_world().await;
    let s = &world.status;
    assert_eq!(
        s["graph"],
        json!({"lastResyncImage": IMAGE_1, "lastResyncTime": DONE_1})
    );
    assert_eq!(cond(s, "GraphSynced"), ("True".into(), "Synced".into(), 1));
    assert!(message(s, "GraphSynced").contains(IMAGE_1));

    // ttlSecondsAfterFinished removed the Job: status remembers, so only the reads.
    world.resync_job = None;
    let env = with_status(with_finalizer(graph_env(1, "1")), &world.status);
    let after = graph_pass(env, &world, IMAGE_1, |api, _| async move { (api, None) }).await;
    assert_eq!(&after, &world.status);
}

#[tokio::test]
async fn a_new_resync_request_runs_a_new_job_and_is_echoed_when_it_succeeds() {
    let world = graph_synced_world().await;
    let request = "2024-05-02";
    let env = graph_env_requesting(request, &world.status);
    let job = Arc::new(std::sync::Mutex::new(Value::Null));
    let created = job.clone();
    let status = graph_pass(env, &world, IMAGE_1, move |mut api, env| async move {
        *created.lock().unwrap() = resync_created(&mut api, IMAGE_1, request).await;
        let status = status_patch(&mut api, &env).await;
        expect_event(&mut api, "Normal", "Ready").await;
        (api, Some(status))
    })
    .await;
    let job = job.lock().unwrap().clone();
    assert_ne!(resync_name(IMAGE_1, request), resync_name(IMAGE_1, ""));
    assert_eq!(
        job["metadata"]["annotations"]["ahlt.io/resync-request"],
        request
    );
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["image"],
        IMAGE_1
    );
    assert_eq!(
        cond(&status, "GraphSynced"),
        ("False".into(), "Resyncing".into(), 2)
    );
    assert!(message(&status, "GraphSynced").contains(request));
    assert_eq!(
        status["graph"]["lastResyncRequest"],
        Value::Null,
        "echoed only once it succeeded"
    );

    let done = completed(job, DONE_2);
    let env = graph_env_requesting(request, &status);
    let status = graph_pass(env, &world, IMAGE_1, move |mut api, env| async move {
        api.get(&resync_uri(IMAGE_1, request), Some(&done)).await;
        let status = status_patch(&mut api, &env).await;
        (api, Some(status))
    })
    .await;
    assert_eq!(
        status["graph"],
        json!({"lastResyncImage": IMAGE_1, "lastResyncRequest": request, "lastResyncTime": DONE_2})
    );
    assert_eq!(
        cond(&status, "GraphSynced"),
        ("True".into(), "Synced".into(), 2)
    );
    assert!(message(&status, "GraphSynced").contains(request));
}

#[tokio::test]
async fn a_failed_resync_warns_once_and_is_not_rerun() {
    let world = graph_synced_world().await;
    let request = "r2";
    let mut failed = world.resync_job.clone().unwrap();
    failed["metadata"]["name"] = json!(resync_name(IMAGE_1, request));
    failed["status"] = json!({"failed": 3, "conditions": [{
        "type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
        "message": "Job has reached the specified backoff limit"}]});
    let env = graph_env_requesting(request, &world.status);
    let job = failed.clone();
    let status = graph_pass(env, &world, IMAGE_1, move |mut api, env| async move {
        api.get(&resync_uri(IMAGE_1, request), Some(&job)).await;
        let status = status_patch(&mut api, &env).await;
        let ready = expect_event(&mut api, "Normal", "Ready").await;
        assert_eq!(ready["regarding"]["name"], NAME);
        let warning = expect_event(&mut api, "Warning", "ResyncFailed").await;
        assert!(
            warning["note"]
                .as_str()
                .unwrap()
                .contains("BackoffLimitExceeded")
        );
        (api, Some(status))
    })
    .await;
    assert_eq!(
        cond(&status, "GraphSynced"),
        ("False".into(), "ResyncFailed".into(), 2)
    );
    assert!(
        message(&status, "GraphSynced").contains("Job has reached the specified backoff limit")
    );
    assert_eq!(
        cond(&status, "Ready"),
        ("True".into(), "Available".into(), 2)
    );
    assert_eq!(
        status["graph"]["failedJob"],
        resync_name(IMAGE_1, request).as_str()
    );
    assert_eq!(
        status["graph"]["lastResyncTime"], DONE_1,
        "the last success stays"
    );

    // The same failure on the next pass: no write, no event, no new Job.
    let env = graph_env_requesting(request, &status);
    let job = failed.clone();
    let again = graph_pass(env, &world, IMAGE_1, move |mut api, _| async move {
        api.get(&resync_uri(IMAGE_1, request), Some(&job)).await;
        (api, None)
    })
    .await;
    assert_eq!(again, status);

    // Garbage-collected: still not rerun (no credentials read, no Job); the message says
    // where the Job went, without a second event.
    let env = graph_env_requesting(request, &status);
    let gone = graph_pass(env, &world, IMAGE_1, move |mut api, env| async move {
        api.get(&resync_uri(IMAGE_1, request), None).await;
        let status = status_patch(&mut api, &env).await;
        (api, Some(status))
    })
    .await;
    assert_eq!(
        cond(&gone, "GraphSynced"),
        ("False".into(), "ResyncFailed".into(), 2)
    );
    assert!(message(&gone, "GraphSynced").contains("garbage-collected"));
}

#[tokio::test]
async fn missing_graph_credentials_start_no_job_and_warn() {
    let (world, _) = first_creation_of(graph_env).await;
    let mut world = migrations_succeeded_of(world, graph_env).await;
    world.deployment = world.deployment.map(rolled_out);
    let env = with_status(with_finalizer(graph_env(1, "1")), &world.status);
    let status = graph_pass(env, &world, IMAGE_1, move |mut api, env| async move {
        api.get(&resync_uri(IMAGE_1, ""), None).await;
        api.get(&uri("v1", "secrets", CREDENTIALS), None).await;
        let status = status_patch(&mut api, &env).await;
        expect_event(&mut api, "Normal", "Ready").await;
        expect_event(&mut api, "Warning", "CredentialsMissing").await;
        (api, Some(status))
    })
    .await;
    assert_eq!(
        cond(&status, "GraphSynced"),
        ("False".into(), "CredentialsMissing".into(), 1)
    );
    assert!(message(&status, "GraphSynced").contains(CREDENTIALS));
    assert_eq!(
        cond(&status, "Ready"),
        ("True".into(), "Available".into(), 1)
    );
}

#[tokio::test]
async fn a_suspended_environment_starts_no_resync() {
    let world = graph_synced_world().await;
    let mut env = graph_env_requesting("r3", &world.status);
    env["spec"]["suspend"] = json!(true);
    let (ctx, handle) = context(Arc::new(FakeProvisioner::default()));
    let env2 = env.clone();
    scenario(&env, ctx, handle, move |mut api| async move {
        status_patch(&mut api, &env2).await;
        let status = status_patch(&mut api, &env2).await;
        assert_eq!(
            cond(&status, "Ready"),
            ("False".into(), "Suspended".into(), 2)
        );
        assert_eq!(
            cond(&status, "GraphSynced"),
            ("True".into(), "Synced".into(), 1)
        );
        api
    })
    .await
    .expect("pass succeeds");
}

#[tokio::test]
async fn without_a_graph_no_resync_job_runs_and_graph_synced_is_not_configured() {
    // ready_world's passes assert every request: none of them touches a resync Job.
    let world = ready_world().await;
    assert_eq!(
        cond(&world.status, "GraphSynced"),
        ("True".into(), "NotConfigured".into(), 1)
    );
    assert!(world.status.get("graph").is_none());
    assert!(world.resync_job.is_none());
}

#[tokio::test]
async fn after_an_image_bump_graph_synced_waits_for_the_new_image() {
    let world = graph_synced_world().await;
    let env = with_status(with_finalizer(graph_env(2, "2")), &world.status);
    let status = graph_pass(env, &world, IMAGE_2, move |mut api, env| async move {
        api.expect("PATCH", &apply_uri("batch/v1", "jobs", &job_name(IMAGE_2)))
            .await
            .echo();
        // No resync for image 1 again, none for image 2 before its pods are available.
        let status = status_patch(&mut api, &env).await;
        (api, Some(status))
    })
    .await;
    assert_eq!(
        cond(&status, "GraphSynced"),
        ("False".into(), "Pending".into(), 2)
    );
    assert!(message(&status, "GraphSynced").contains(IMAGE_2));
    assert_eq!(status["graph"]["lastResyncImage"], IMAGE_1);
}
