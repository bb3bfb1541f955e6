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
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
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
    /// The watches feeding the caches of `ctx`, when it has caches.
    feed: Option<CacheFeed>,
}

/// Drives the watches of caches that single passes read; counts the events they took in.
struct CacheFeed {
    task: tokio::task::JoinHandle<()>,
    events: tokio::sync::watch::Receiver<u64>,
}

impl Drop for CacheFeed {
    fn drop(&mut self) {
        self.task.abort();
    }
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
        let ctx = Arc::new(context(client(url), &db, &metrics));
        Self {
            api,
            db,
            ctx,
            metrics,
            feed: None,
        }
    }

    /// From now on passes read children from watch caches, as the running controller's
    /// passes do. Returns once the caches have been listed.
    pub async fn with_caches(mut self) -> Self {
        self.feed = None;
        let client = self.ctx.client.clone();
        let (caches, watches) = controller::cache::watch_alone(&client, Some(NS), true);
        let (count, events) = tokio::sync::watch::channel(0u64);
        let task = tokio::spawn(watches.for_each(move |()| {
            count.send_modify(|n| *n += 1);
            std::future::ready(())
        }));
        caches.listed().await;
        self.ctx = Arc::new(context(client, &self.db, &self.metrics).with_caches(caches));
        self.feed = Some(CacheFeed { task, events });
        self
    }

    /// The caches stop following the API server: from now on they only lag.
    pub fn freeze_caches(&mut self) {
        if let Some(feed) = &self.feed {
            feed.task.abort();
        }
    }

    /// Waits until the caches hold every child of the operator as the server has it.
    pub async fn caches_synced(&self) {
        let caches = self.ctx.caches.as_ref().expect("a cluster with caches");
        let mut events = self.feed.as_ref().expect("fed caches").events.clone();
        let deadline = tokio::time::Instant::now() + ahlt_operator::testing::WAIT_DEADLINE;
        loop {
            events.borrow_and_update();
            if caches_hold(&self.api, caches) {
                return;
            }
            tokio::select! {
                changed = events.changed() => changed.expect("the caches' watches stopped"),
                () = tokio::time::sleep_until(deadline) => panic!("timed out waiting for the caches"),
            }
        }
    }

    /// Runs the whole controller (watches, queue, reconcile) in the background, its passes
    /// reading from the caches its watches fill.
    pub fn run(&self) -> Running {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (controller, caches) = controller::controller(&self.ctx.client, Some(NS), true);
        let controller = controller.graceful_shutdown_on(async move {
            let _ = stopped.await;
        });
        let ctx = context(self.ctx.client.clone(), &self.db, &self.metrics).with_caches(caches);
        let task = tokio::spawn(controller::drive(controller, Arc::new(ctx)));
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
    /// With caches, each pass waits for them to catch up first, as a watch event would.
    pub async fn settle(&self) {
        for _ in 0..10 {
            if self.feed.is_some() {
                self.caches_synced().await;
            }
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

/// The operator's context for `client`, without caches.
pub fn context(client: kube::Client, db: &Arc<FakeProvisioner>, metrics: &Arc<Metrics>) -> Context {
    Context::new(
        client,
        db.clone(),
        metrics.clone(),
        Arc::new(Health::new(Duration::from_secs(3600), None)),
        Some("test".into()),
    )
}

/// Whether every cache holds the operator's children of its kind as the server has them
/// (same names, same resourceVersions).
fn caches_hold(api: &FakeApiServer, caches: &controller::Caches) -> bool {
    fn same<K: kube::Resource<DynamicType = ()> + Clone + 'static>(
        api: &FakeApiServer,
        plural: &str,
        store: &kube::runtime::reflector::Store<K>,
    ) -> bool {
        let server: BTreeMap<String, String> = api
            .list(plural)
            .iter()
            .filter(|o| {
                labels(o)
                    .get("app.kubernetes.io/managed-by")
                    .map(String::as_str)
                    == Some(names::MANAGED_BY)
            })
            .map(|o| {
                let meta = &o["metadata"];
                (
                    meta["name"].as_str().unwrap_or_default().to_owned(),
                    meta["resourceVersion"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect();
        let cached: BTreeMap<String, String> = store
            .state()
            .iter()
            .map(|o| {
                (
                    o.meta().name.clone().unwrap_or_default(),
                    o.meta().resource_version.clone().unwrap_or_default(),
                )
            })
            .collect();
        server == cached
    }
    same(api, "secrets", &caches.secrets)
        && same(api, "configmaps", &caches.config_maps)
        && same(api, "jobs", &caches.jobs)
        && same(api, "deployments", &caches.deployments)
        && same(api, "services", &caches.services)
        && same(api, "ingresses", &caches.ingresses)
        && caches
            .routes
            .as_ref()
            .is_none_or(|r| same(api, "httproutes", r))
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

/// `plural/name` of every GET of one object (lists and watches aside), in order.
pub fn object_gets(records: &[RequestRecord]) -> Vec<String> {
    records
        .iter()
        .filter(|r| r.method == "GET" && !r.is_watch())
        .filter_map(|r| {
            let parts: Vec<&str> = r.path.trim_matches('/').split('/').collect();
            match parts.as_slice() {
                [.., "namespaces", _, plural, name] => Some(format!("{plural}/{name}")),
                _ => None,
            }
        })
        .collect()
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
