//! A fake Kubernetes API server for flow tests and benchmarks (feature `testing`).
//!
//! Unlike a scripted mock it keeps state and enforces the API's rules, so a test asserts
//! what the cluster ends up holding, not the order of requests: objects carry
//! resourceVersion and generation; a stale resourceVersion precondition is a 409; merge
//! patches, JSON patches (with `test`) and server-side apply (field managers, conflicts,
//! removal of fields a manager stops declaring) behave as on a real server; status is a
//! subresource; lists and watches (with bookmarks and `timeoutSeconds`) serve every change.
//! It speaks plain HTTP on a loopback port, so a real `kube::Client` talks to it over TCP
//! and [`proxy::Proxy`] can cut that connection.
//!
//! Not modelled: admission (schema, CEL, defaults), strategic merge patch (treated as a JSON
//! merge patch), field selectors, pagination, and the controllers of other kinds (a test
//! plays the Job and Deployment controllers with [`FakeApiServer::update_status`]).

pub mod fields;
mod http;
pub mod proxy;
pub mod store;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

pub use store::{ApiError, Key, Subresource};
use store::{Store, kind_of};

/// Manager name of the writes a test makes as "someone else" by default.
pub const TEST_MANAGER: &str = "test";

/// How long [`FakeApiServer::wait_for`] waits before failing the test. A deadline for a
/// hung test, not a performance bound: the condition is re-checked on every change.
pub const WAIT_DEADLINE: Duration = Duration::from_secs(90);

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub status: u16,
}

impl RequestRecord {
    /// A request that may change state (events aside, which are best effort).
    pub fn is_write(&self) -> bool {
        self.method != "GET" && !self.path.contains("/events")
    }

    pub fn is_watch(&self) -> bool {
        self.query.contains("watch=true") || self.query.contains("watch=1")
    }
}

/// What the fake cluster serves.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Serve the Gateway API (HTTPRoute, Gateway) and its discovery document, as a cluster
    /// with its CRDs installed does. Without it, those paths answer 404.
    pub gateway_api: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self { gateway_api: true }
    }
}

pub(crate) struct Shared {
    options: Options,
    store: Mutex<Store>,
    /// Counts writes and logged requests; watches and waiters wake on every pulse.
    pulse: watch::Sender<u64>,
    log: Mutex<Vec<RequestRecord>>,
}

impl Shared {
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a write and wakes watches and waiters.
    fn write<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let result = f(&mut self.store());
        self.beat();
        result
    }

    fn beat(&self) {
        self.pulse.send_modify(|n| *n += 1);
    }

    fn log(&self, record: RequestRecord) {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(record);
        self.beat();
    }
}

/// The fake API server. Dropping it stops it.
pub struct FakeApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn key(plural: &str, namespace: &str, name: &str) -> Key {
    Key {
        plural: kind_of(plural).plural,
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    }
}

impl FakeApiServer {
    /// Starts on a free loopback port, serving everything.
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    /// Starts on a free loopback port, serving what `options` say.
    pub async fn start_with(options: Options) -> Self {
        let shared = Arc::new(Shared {
            options,
            store: Mutex::new(Store::default()),
            pulse: watch::channel(0).0,
            log: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind the fake API server");
        let addr = listener.local_addr().expect("local address");
        let server = tokio::spawn(http::serve(listener, shared.clone()));
        Self {
            shared,
            addr,
            server,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The object as stored.
    pub fn get(&self, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        self.shared
            .store()
            .get(&key(plural, namespace, name))
            .map(|s| s.object.clone())
    }

    /// Every stored object of a kind, in name order.
    pub fn list(&self, plural: &str) -> Vec<Value> {
        let plural = kind_of(plural).plural;
        self.shared
            .store()
            .objects
            .iter()
            .filter(|(k, _)| k.plural == plural)
            .map(|(_, s)| s.object.clone())
            .collect()
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store().rv
    }

    /// Creates an object (its apiVersion/kind/metadata.namespace/name say where).
    pub fn create(&self, object: Value) -> Value {
        let plural = plural_of(&object);
        let key = key(
            plural,
            object["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default"),
            object["metadata"]["name"].as_str().expect("metadata.name"),
        );
        self.shared
            .write(|s| s.create(&key, object, TEST_MANAGER))
            .unwrap_or_else(|e| panic!("create {key:?}: {}", e.message))
    }

    /// An update of the main resource by `manager` (e.g. `kubectl-set`): what `change`
    /// leaves is stored, and the fields it changed now belong to `manager`.
    pub fn update(
        &self,
        manager: &str,
        plural: &str,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut Value),
    ) -> Value {
        self.update_part(manager, Subresource::Main, plural, namespace, name, change)
    }

    /// A status update, as the controller of that kind writes it (Job and Deployment
    /// controllers are played by the test).
    pub fn update_status(
        &self,
        plural: &str,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut Value),
    ) -> Value {
        self.update_part(
            "kube-controller-manager",
            Subresource::Status,
            plural,
            namespace,
            name,
            change,
        )
    }

    fn update_part(
        &self,
        manager: &str,
        part: Subresource,
        plural: &str,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut Value),
    ) -> Value {
        let key = key(plural, namespace, name);
        self.shared
            .write(|s| {
                s.update(&key, manager, part, |old| {
                    let mut new = old.clone();
                    change(&mut new);
                    Ok(new)
                })
            })
            .unwrap_or_else(|e| panic!("update {key:?}: {}", e.message))
    }

    /// Deletes an object (with finalizers: marks it for deletion).
    pub fn delete(&self, plural: &str, namespace: &str, name: &str) {
        let key = key(plural, namespace, name);
        self.shared
            .write(|s| s.delete(&key))
            .unwrap_or_else(|e| panic!("delete {key:?}: {}", e.message));
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until `check` returns `Some`, re-checking after every change and request;
    /// fails the test after [`WAIT_DEADLINE`] with `what` and the last value checked.
    pub async fn wait_for<T>(&self, what: &str, mut check: impl FnMut(&Self) -> Option<T>) -> T {
        let mut changes = self.shared.pulse.subscribe();
        let deadline = tokio::time::Instant::now() + WAIT_DEADLINE;
        loop {
            changes.borrow_and_update();
            if let Some(value) = check(self) {
                return value;
            }
            tokio::select! {
                changed = changes.changed() => changed.expect("the server stopped"),
                () = tokio::time::sleep_until(deadline) => {
                    panic!("timed out waiting for {what}")
                }
            }
        }
    }

    /// Waits until `check` on the request log returns `Some` (see [`Self::wait_for`]).
    pub async fn wait_for_requests<T>(
        &self,
        what: &str,
        mut check: impl FnMut(&[RequestRecord]) -> Option<T>,
    ) -> T {
        self.wait_for(what, |server| check(&server.requests()))
            .await
    }
}

/// The plural of an object's kind (from its `apiVersion` and `kind`).
pub fn plural_of(object: &Value) -> &'static str {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    store::KINDS
        .iter()
        .find(|k| k.group_version == api_version && k.kind == kind)
        .unwrap_or_else(|| panic!("the fake API server does not serve {api_version} {kind}"))
        .plural
}

/// A client for `url` with the operator's own connection settings.
pub fn client(url: &str) -> kube::Client {
    let mut config = kube::Config::new(url.parse().expect("server URL"));
    config.default_namespace = "default".into();
    crate::controller::tune_client_config(&mut config);
    kube::Client::try_from(config).expect("client")
}
