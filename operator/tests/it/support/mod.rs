//! Flow-test support: a stateful fake API server (`ahlt_operator::testing`) holding the admin
//! Secret, a fake database provisioner, single reconcile passes, the whole controller, and
//! the parts of the cluster a test plays (the Job and Deployment controllers).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ahlt_operator::controller::{self, Context, DatabaseProvisioner, Error, ProvisionError};
use ahlt_operator::crd::AhltEnvironment;
use ahlt_operator::database::{AdminCredentials, DatabaseTarget};
use ahlt_operator::http::Health;
use ahlt_operator::metrics::Metrics;
use ahlt_operator::names;
use ahlt_operator::testing::{FakeApiServer, RequestRecord, client};
use futures::FutureExt;
use futures::future::BoxFuture;
use kube::runtime::controller::Action;
use serde_json::{Value, json};

pub const NS: &str = "team";
pub const NAME: &str = "dev";
pub const IMAGE_1: &str = "registry.example/ahlt:1";
pub const IMAGE_2: &str = "registry.example/ahlt:2";
pub const ENVS: &str = "ahltenvironments";

/// What a fake provisioner was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbCall {
    Ensure {
        host: String,
        database: String,
        role: String,
        password: String,
        owner: String,
    },
    Drop {
        database: String,
        role: String,
        owner: String,
    },
}

/// Records calls; fails with `failure` when set.
#[derive(Default)]
pub struct FakeProvisioner {
    pub calls: Mutex<Vec<DbCall>>,
    pub failure: Mutex<Option<ProvisionError>>,
}

impl FakeProvisioner {
    pub fn failing(reason: &'static str, message: &str) -> Self {
        let db = Self::default();
        db.fail_with(reason, message);
        db
    }

    pub fn fail_with(&self, reason: &'static str, message: &str) {
        *self.failure.lock().unwrap() = Some(ProvisionError {
            reason,
            message: message.into(),
            transient: true,
        });
    }

    pub fn calls(&self) -> Vec<DbCall> {
        self.calls.lock().unwrap().clone()
    }

    /// The databases `ensure` was asked for.
    pub fn ensured(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                DbCall::Ensure { database, .. } => Some(database),
                DbCall::Drop { .. } => None,
            })
            .collect()
    }

    fn outcome(&self) -> Result<(), ProvisionError> {
        self.failure.lock().unwrap().clone().map_or(Ok(()), Err)
    }
}

impl DatabaseProvisioner for FakeProvisioner {
    fn ensure<'a>(
        &'a self,
        admin: &'a AdminCredentials,
        target: &'a DatabaseTarget,
    ) -> BoxFuture<'a, Result<(), ProvisionError>> {
        self.calls.lock().unwrap().push(DbCall::Ensure {
            host: admin.host.clone(),
            database: target.database.clone(),
            role: target.role.clone(),
            password: target.password.clone(),
            owner: target.owner.clone(),
        });
        async move { self.outcome() }.boxed()
    }

    fn drop_database<'a>(
        &'a self,
        _admin: &'a AdminCredentials,
        database: &'a str,
        role: &'a str,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<(), ProvisionError>> {
        self.calls.lock().unwrap().push(DbCall::Drop {
            database: database.into(),
            role: role.into(),
            owner: owner.into(),
        });
        async move { self.outcome() }.boxed()
    }
}

/// A fake cluster with the admin Secret, a fake database, and the operator's context.
pub struct Cluster {
    pub api: FakeApiServer,
    pub db: Arc<FakeProvisioner>,
    pub ctx: Arc<Context>,
    pub metrics: Arc<Metrics>,
}

/// The controller running against a cluster; stops when dropped.
pub struct Running {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

impl Cluster {
    pub async fn start() -> Self {
        Self::start_with(FakeProvisioner::default()).await
    }

    pub async fn start_with(db: FakeProvisioner) -> Self {
        let api = FakeApiServer::start().await;
        api.create(admin_secret());
        let url = api.url();
        Self::on(api, &url, db)
    }

    /// A cluster whose operator reaches `api` through `url` (e.g. a proxy).
    pub fn on(api: FakeApiServer, url: &str, db: FakeProvisioner) -> Self {
        let db = Arc::new(db);
        let metrics = Arc::new(Metrics::default());
        let ctx = Arc::new(Context::new(
            client(url),
            db.clone(),
            metrics.clone(),
            Arc::new(Health::new(Duration::from_secs(3600), None)),
            Some("test".into()),
        ));
        Self {
            api,
            db,
            ctx,
            metrics,
        }
    }

    /// Runs the whole controller (watches, queue, reconcile) in the background.
    pub fn run(&self) -> Running {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let controller = controller::controller(&self.ctx.client, Some(NS), true)
            .graceful_shutdown_on(async move {
                let _ = stopped.await;
            });
        let task = tokio::spawn(controller::drive(controller, self.ctx.clone()));
        Running {
            stop: Some(stop),
            task,
        }
    }

    /// One reconcile pass of the environment as the server holds it.
    pub async fn pass(&self) -> Result<Action, Error> {
        let env: AhltEnvironment =
            serde_json::from_value(self.env()).expect("the stored object is an AhltEnvironment");
        controller::reconcile(Arc::new(env), self.ctx.clone()).await
    }

    /// Passes until one ends without a write (what the controller's watch loop would do).
    pub async fn settle(&self) {
        for _ in 0..10 {
            let before = self.writes().len();
            self.pass().await.expect("pass succeeds");
            if self.writes().len() == before {
                return;
            }
        }
        panic!("the environment never settled");
    }

    pub fn env(&self) -> Value {
        self.api
            .get(ENVS, NS, NAME)
            .expect("the AhltEnvironment exists")
    }

    pub fn status(&self) -> Value {
        self.env()["status"].clone()
    }

    pub fn child(&self, plural: &str, name: &str) -> Option<Value> {
        self.api.get(plural, NS, name)
    }

    /// Changes the spec as a user would (`kubectl edit`): generation moves.
    pub fn edit(&self, change: impl FnOnce(&mut Value)) -> Value {
        self.api.update("kubectl-edit", ENVS, NS, NAME, |env| {
            change(&mut env["spec"])
        })
    }

    /// State-changing requests so far (events aside).
    pub fn writes(&self) -> Vec<RequestRecord> {
        self.api
            .requests()
            .into_iter()
            .filter(RequestRecord::is_write)
            .collect()
    }

    /// Events posted, as `(type, reason)`.
    pub fn events(&self) -> Vec<(String, String)> {
        self.api
            .list("events")
            .iter()
            .map(|e| {
                (
                    e["type"].as_str().unwrap_or_default().to_owned(),
                    e["reason"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// Plays the Job controller: the migration Job of `image` succeeded.
    pub fn complete_migration(&self, image: &str) {
        self.api
            .update_status("jobs", NS, &names::migration_job(NAME, image), |job| {
                job["status"] = json!({"succeeded": 1, "completionTime": "2026-01-01T00:00:00Z"});
            });
    }

    /// Plays the Job controller: the migration Job of `image` failed.
    pub fn fail_migration(&self, image: &str) {
        self.api
            .update_status("jobs", NS, &names::migration_job(NAME, image), |job| {
                job["status"] = json!({"failed": 1, "conditions": [{
                    "type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit"}]});
            });
    }

    /// Plays the Deployment controller: the current template is rolled out and available.
    pub fn roll_out(&self) {
        self.api
            .update_status("deployments", NS, NAME, |deployment| {
                let replicas = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
                deployment["status"] = json!({
                    "observedGeneration": deployment["metadata"]["generation"],
                    "replicas": replicas, "updatedReplicas": replicas,
                    "availableReplicas": replicas,
                });
            });
    }

    /// Waits until the status satisfies `check`.
    pub async fn wait_status(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        self.api
            .wait_for(what, |api| {
                let status = api.get(ENVS, NS, NAME)?["status"].clone();
                check(&status).then_some(status)
            })
            .await
    }

    /// Waits until the child exists and satisfies `check`.
    pub async fn wait_child(
        &self,
        plural: &str,
        name: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        self.api
            .wait_for(what, |api| api.get(plural, NS, name).filter(|o| check(o)))
            .await
    }

    /// Like [`Self::ready`], for an environment whose Ready also waits for something else
    /// (a route's Gateway): the workload is rolled out and available.
    pub async fn ready_without_front_door(&self, env: Value) {
        self.api.create(env);
        self.settle().await;
        self.complete_migration(IMAGE_1);
        self.settle().await;
        self.roll_out();
        self.settle().await;
        assert_eq!(cond(&self.status(), "WorkloadAvailable").1, "Available");
    }

    /// Creates the environment, passes until migrations run, completes them, rolls the
    /// Deployment out and passes to Ready.
    pub async fn ready(&self, env: Value) {
        self.ready_without_front_door(env).await;
        assert_eq!(cond(&self.status(), "Ready").1, "Available");
    }
}

/// An AhltEnvironment as a user applies it.
pub fn env(tag: &str) -> Value {
    json!({
        "apiVersion": "ahlt.io/v1alpha1",
        "kind": "AhltEnvironment",
        "metadata": {"name": NAME, "namespace": NS},
        "spec": {
            "environment": "dev",
            "image": {"repository": "registry.example/ahlt", "tag": tag},
            "database": {"adminSecretRef": {"name": "pg-admin"}},
            "ingress": {"host": "dev.local"},
        }
    })
}

pub fn admin_secret() -> Value {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "pg-admin", "namespace": NS},
        "data": {
            "host": b64("postgres.db"), "port": b64("5432"),
            "username": b64("postgres"), "password": b64("admin-pw"),
        }
    })
}

/// Condition `type_` of a status.
pub fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {status}"))
}

/// `(status, reason, observedGeneration)` of a condition.
pub fn cond(status: &Value, type_: &str) -> (String, String, i64) {
    let c = condition(status, type_);
    (
        c["status"].as_str().unwrap().into(),
        c["reason"].as_str().unwrap().into(),
        c["observedGeneration"].as_i64().unwrap(),
    )
}

/// True when condition `type_` has `status` and `reason` for the env's current generation.
pub fn has(status: &Value, type_: &str, want: (&str, &str)) -> bool {
    status["conditions"].as_array().is_some_and(|cs| {
        cs.iter().any(|c| {
            c["type"] == type_
                && c["status"] == want.0
                && c["reason"] == want.1
                && c["observedGeneration"] == status["observedGeneration"]
        })
    })
}

pub fn secret_string(secret: &Value, key: &str) -> String {
    use base64::Engine;
    let b64 = secret["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in secret"));
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap()
}

pub fn labels(v: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(v["metadata"]["labels"].clone()).unwrap_or_default()
}

pub fn container_image(deployment: &Value) -> String {
    deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The delay of a requeue action (Action exposes it only through Debug).
pub fn requeue_delay(action: &Action) -> Duration {
    let text = format!("{action:?}");
    let secs = text
        .split("Some(")
        .nth(1)
        .and_then(|rest| rest.strip_suffix("s) }"))
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("not a requeue in seconds: {text}"));
    let delay = Duration::from_secs_f64(secs);
    assert_eq!(*action, Action::requeue(delay), "parsed {text} exactly");
    delay
}
