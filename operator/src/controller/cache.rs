//! The watch caches of the children: reflector stores fed by the very watches that trigger
//! passes (a store holds an event before the pass it triggers runs), and the one place a
//! pass reads a child, from its cache once that cache has been listed, else live.
//!
//! A cache may lag behind the API server. What a lagging read can do is bounded: the operator
//! holds what its own applies return; a copy older than the server's makes at worst one extra
//! server-side apply (a no-op on the server) or a status that catches up on the next watch
//! event; a child missing from the cache is applied (idempotent) and deletions carry the
//! cached copy's uid as a precondition. Reads that decide something irreversible stay live
//! (see [`super::observe`]): the admin Secret (another namespace, not watched) and the
//! database Secret (the rename check and the role's only password).

use std::fmt::Debug;

use futures::{FutureExt, Stream, StreamExt};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

use super::error::ObserveError;
use super::observe;
use crate::gateway::HTTPRoute;
use crate::names;

/// One store per kind of child the operator writes (HTTPRoutes only when watched).
#[derive(Clone)]
pub struct Caches {
    pub secrets: Store<Secret>,
    pub config_maps: Store<ConfigMap>,
    pub jobs: Store<Job>,
    pub deployments: Store<Deployment>,
    pub services: Store<Service>,
    pub ingresses: Store<Ingress>,
    pub routes: Option<Store<HTTPRoute>>,
}

/// A kind of child with a cache.
pub trait Cached:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
    fn store(caches: &Caches) -> Option<&Store<Self>>;
}

macro_rules! cached {
    ($kind:ty, $field:ident) => {
        impl Cached for $kind {
            fn store(caches: &Caches) -> Option<&Store<Self>> {
                Some(&caches.$field)
            }
        }
    };
}
cached!(Secret, secrets);
cached!(ConfigMap, config_maps);
cached!(Job, jobs);
cached!(Deployment, deployments);
cached!(Service, services);
cached!(Ingress, ingresses);

impl Cached for HTTPRoute {
    fn store(caches: &Caches) -> Option<&Store<Self>> {
        caches.routes.as_ref()
    }
}

/// Where a pass reads children: the caches when it has them, else the API server.
#[derive(Clone, Copy)]
pub struct Reader<'a> {
    pub client: &'a Client,
    pub caches: Option<&'a Caches>,
}

impl Reader<'_> {
    /// The child `namespace/name` from its cache once that has been listed, else by a GET.
    pub async fn child<K: Cached>(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<K>, ObserveError> {
        if let Some(store) = self.cache::<K>() {
            let key = ObjectRef::new(name).within(namespace);
            return Ok(store.get(&key).map(|cached| (*cached).clone()));
        }
        self.live(namespace, name).await
    }

    /// The cache of `K`, once it has been listed (it stays so; later it may only lag).
    pub fn cache<K: Cached>(&self) -> Option<&Store<K>> {
        self.caches
            .and_then(K::store)
            .filter(|store| matches!(store.wait_until_ready().now_or_never(), Some(Ok(()))))
    }

    /// The child by a GET, whatever the caches hold.
    pub async fn live<K: Cached>(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<K>, ObserveError> {
        observe::get(&Api::namespaced(self.client.clone(), namespace), name).await
    }
}

/// The children the operator caches carry its managed-by label: nothing foreign is cached.
pub fn children_config(watch: &watcher::Config) -> watcher::Config {
    watch.clone().labels(&format!(
        "app.kubernetes.io/managed-by={}",
        names::MANAGED_BY
    ))
}

/// The watch of one kind of child feeding `writer`: the objects it touches, for the
/// controller's triggers. Managed fields are dropped: nothing reads them, and they are about
/// half of every object's metadata.
pub fn reflect<K: Cached>(
    writer: reflector::store::Writer<K>,
    api: Api<K>,
    config: watcher::Config,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static {
    let events = watcher(api, config).modify(|obj| {
        obj.meta_mut().managed_fields = None;
    });
    reflector::reflector(writer, events).touched_objects()
}

/// The caches' writers, consumed by the watches that feed them.
pub struct Writers {
    pub secrets: reflector::store::Writer<Secret>,
    pub config_maps: reflector::store::Writer<ConfigMap>,
    pub jobs: reflector::store::Writer<Job>,
    pub deployments: reflector::store::Writer<Deployment>,
    pub services: reflector::store::Writer<Service>,
    pub ingresses: reflector::store::Writer<Ingress>,
    pub routes: Option<reflector::store::Writer<HTTPRoute>>,
}

/// Empty caches and their writers; HTTPRoutes only with `routes`.
pub fn caches(routes: bool) -> (Caches, Writers) {
    let (secrets, secrets_writer) = reflector::store();
    let (config_maps, config_maps_writer) = reflector::store();
    let (jobs, jobs_writer) = reflector::store();
    let (deployments, deployments_writer) = reflector::store();
    let (services, services_writer) = reflector::store();
    let (ingresses, ingresses_writer) = reflector::store();
    let (routes, routes_writer) = match routes {
        true => {
            let (store, writer) = reflector::store();
            (Some(store), Some(writer))
        }
        false => (None, None),
    };
    (
        Caches {
            secrets,
            config_maps,
            jobs,
            deployments,
            services,
            ingresses,
            routes,
        },
        Writers {
            secrets: secrets_writer,
            config_maps: config_maps_writer,
            jobs: jobs_writer,
            deployments: deployments_writer,
            services: services_writer,
            ingresses: ingresses_writer,
            routes: routes_writer,
        },
    )
}

impl Caches {
    /// Waits until every cache has been listed once (while their watches are driven).
    pub async fn listed(&self) {
        let _ = futures::join!(
            self.secrets.wait_until_ready(),
            self.config_maps.wait_until_ready(),
            self.jobs.wait_until_ready(),
            self.deployments.wait_until_ready(),
            self.services.wait_until_ready(),
            self.ingresses.wait_until_ready(),
        );
        if let Some(routes) = &self.routes {
            let _ = routes.wait_until_ready().await;
        }
    }
}

/// Caches and the watches that feed them, without a controller, for single passes that
/// should read as the running controller's do (benchmarks, tests). The stream yields once per
/// event a cache took in; whoever drives it keeps the caches current, and once it is no
/// longer driven they only lag.
pub fn watch_alone(
    client: &Client,
    namespace: Option<&str>,
    routes: bool,
) -> (Caches, futures::stream::BoxStream<'static, ()>) {
    let (caches, writers) = caches(routes);
    let config =
        children_config(&watcher::Config::default().timeout(super::WATCH_TIMEOUT.as_secs() as u32));
    fn feed<K: Cached>(
        stream: impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
    ) -> futures::stream::BoxStream<'static, ()> {
        // The watcher retries errors itself; the backoff keeps a dead server from being
        // polled in a loop.
        stream.default_backoff().map(|_| ()).boxed()
    }
    let mut streams = vec![
        feed(reflect(
            writers.secrets,
            api(client, namespace),
            config.clone(),
        )),
        feed(reflect(
            writers.config_maps,
            api(client, namespace),
            config.clone(),
        )),
        feed(reflect(
            writers.jobs,
            api(client, namespace),
            config.clone(),
        )),
        feed(reflect(
            writers.deployments,
            api(client, namespace),
            config.clone(),
        )),
        feed(reflect(
            writers.services,
            api(client, namespace),
            config.clone(),
        )),
        feed(reflect(
            writers.ingresses,
            api(client, namespace),
            config.clone(),
        )),
    ];
    if let Some(writer) = writers.routes {
        streams.push(feed(reflect(writer, api(client, namespace), config)));
    }
    (caches, futures::stream::select_all(streams).boxed())
}

/// The API of `K` in `namespace`, or in all namespaces.
pub fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}
