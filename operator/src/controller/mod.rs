//! The AhltEnvironment controller: watches AhltEnvironments and the children they own,
//! reconciles each with [`reconcile::reconcile`], and serves metrics and health.

pub mod apply;
pub mod backoff;
pub mod cache;
pub mod children;
pub mod cleanup;
pub mod drift;
pub mod error;
pub mod front_door;
pub mod graph;
pub mod observe;
pub mod provision;
pub mod reconcile;
pub mod rollout;
pub mod status;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::Client;
use kube::runtime::Controller;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;

pub use cache::Caches;
use cache::{api, reflect};
pub use error::Error;
pub use provision::{DatabaseProvisioner, Postgres, ProvisionError};
pub use reconcile::{Context, error_policy, reconcile};

use crate::crd::AhltEnvironment;
use crate::http::{self, Health};
use crate::metrics::Metrics;
use crate::names;

/// How `run` is set up (the CLI fills this in).
#[derive(Debug, Clone)]
pub struct Config {
    /// Watch one namespace; `None` watches all.
    pub namespace: Option<String>,
    /// Address of the `/metrics`, `/healthz`, `/readyz` server.
    pub http_addr: SocketAddr,
    /// `/healthz` fails when there is work and no pass finished for this long.
    pub stall_after: Duration,
    /// Reported as the event reporter instance (e.g. the pod name).
    pub instance: Option<String>,
    /// Reconcile only while holding this Lease; `None` reconciles at once.
    pub leader_election: Option<crate::leader::LeaderElection>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            namespace: None,
            http_addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            // Three resync periods: a working controller passes every object at least once.
            stall_after: reconcile::RESYNC_PERIOD * 3,
            instance: None,
            leader_election: None,
        }
    }
}

impl Context {
    pub fn new(
        client: Client,
        provisioner: Arc<dyn DatabaseProvisioner>,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        instance: Option<String>,
    ) -> Self {
        let reporter = Reporter {
            controller: names::MANAGED_BY.to_owned(),
            instance,
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            provisioner,
            backoff: backoff::Backoff::default(),
            health,
            gateway_api: front_door::GatewayApi::default(),
            caches: None,
        }
    }

    /// Passes read children from `caches` (see [`cache`]) instead of the API server.
    pub fn with_caches(mut self, caches: Caches) -> Self {
        self.caches = Some(caches);
        self
    }
}

/// Server-side timeout of every watch. The watcher takes a watch without data for this plus
/// 5 s as dead and opens a new one, so a connection that died silently (an API server
/// restarted behind a load balancer) is replaced within 15 s. The cost: each watch is
/// renewed every 10 s (seven watches, well under one request a second).
pub const WATCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest wait for the next bytes of a response: a request on a dead pooled connection fails
/// instead of hanging (kube sets no read timeout). Above [`WATCH_TIMEOUT`], which bounds
/// the silence of a healthy watch.
pub const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// Longest wait for a TCP connection to the API server.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The operator's connection settings, on top of what `kube::Config::infer` found.
pub fn tune_client_config(config: &mut kube::Config) {
    config.read_timeout = Some(READ_TIMEOUT);
    // Time a pooled connection sat idle does not count against the next response.
    config.reset_reader_on_write = true;
    config.connect_timeout = Some(CONNECT_TIMEOUT);
}

/// The client `run` uses: inferred configuration, tuned for fast recovery.
pub async fn client() -> anyhow::Result<Client> {
    let mut config = kube::Config::infer().await?;
    tune_client_config(&mut config);
    Ok(Client::try_from(config)?)
}

/// Every reason a condition can carry: status's own, the validator's and the database's.
pub fn all_reasons() -> Vec<&'static str> {
    let mut reasons: Vec<&'static str> = status::Reason::ALL.map(status::Reason::as_str).to_vec();
    reasons.extend(crate::validate::ValidationError::REASONS);
    reasons.extend(crate::database::DatabaseError::REASONS);
    reasons.extend(["AdminSecretNotFound", "Kube"]);
    reasons.extend(front_door::GATEWAY_REASONS);
    reasons.sort_unstable();
    reasons.dedup();
    reasons
}

/// The controller: AhltEnvironments and the children they own, watched with timeouts and a
/// reconnect backoff that let it resume within seconds after the API server answers again.
/// The children's watches fill the returned caches, which the [`Context`] of its passes
/// should hold ([`Context::with_caches`]). HTTPRoutes are watched only when the cluster
/// serves the Gateway API (`watch_routes`).
pub fn controller(
    client: &Client,
    namespace: Option<&str>,
    watch_routes: bool,
) -> (Controller<AhltEnvironment>, Caches) {
    let watch = watcher::Config::default().timeout(WATCH_TIMEOUT.as_secs() as u32);
    let children = cache::children_config(&watch);
    let (caches, writers) = cache::caches(watch_routes);
    let controller = Controller::new(api::<AhltEnvironment>(client, namespace), watch)
        .owns_stream(reflect(
            writers.config_maps,
            api(client, namespace),
            children.clone(),
        ))
        .owns_stream(reflect(
            writers.secrets,
            api(client, namespace),
            children.clone(),
        ))
        .owns_stream(reflect(
            writers.services,
            api(client, namespace),
            children.clone(),
        ))
        .owns_stream(reflect(
            writers.deployments,
            api(client, namespace),
            children.clone(),
        ))
        .owns_stream(reflect(
            writers.ingresses,
            api(client, namespace),
            children.clone(),
        ))
        .owns_stream(reflect(
            writers.jobs,
            api(client, namespace),
            children.clone(),
        ));
    let controller = match writers.routes {
        Some(routes) => controller.owns_stream(reflect(routes, api(client, namespace), children)),
        None => controller,
    };
    (
        controller.trigger_backoff(backoff::WatchBackoff::default()),
        caches,
    )
}

/// Runs `controller` with `ctx` until it stops (after its shutdown trigger fired).
pub async fn drive(controller: Controller<AhltEnvironment>, ctx: Arc<Context>) {
    controller
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => tracing::debug!(env = %obj, "reconciled"),
                Err(e) => tracing::debug!(error = %e, "controller event"),
            }
        })
        .await;
}

/// Runs the controller until SIGTERM or Ctrl-C, with the HTTP server beside it.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let client = client().await?;
    let ns = config.namespace.as_deref();
    // Without the Gateway API CRDs at start, routes are not watched; passes then poll a
    // route's status (and the CRDs' arrival) every 30 s instead.
    let watch_routes = front_door::GatewayApi::default()
        .available(&client)
        .await
        .unwrap_or(false);
    if !watch_routes {
        tracing::info!(
            "the cluster does not serve gateway.networking.k8s.io/v1: HTTPRoutes are not watched"
        );
    }
    let (controller, caches) = controller(&client, ns, watch_routes);
    let controller = controller.shutdown_on_signal();

    let store = controller.store();
    let metrics = Arc::new(Metrics::default());
    let health = Arc::new(Health::new(config.stall_after, Some(store.clone())));
    let ctx = Arc::new(
        Context::new(
            client,
            Arc::new(Postgres),
            metrics.clone(),
            health.clone(),
            config.instance.clone(),
        )
        .with_caches(caches),
    );

    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(http::serve(
        config.http_addr,
        metrics,
        health.clone(),
        async move {
            let _ = http_stopped.await;
        },
    ));

    // With leader election, wait for the Lease before watching anything. A standby reports
    // ready (see crate::leader) and stops on SIGTERM without having reconciled.
    let mut elector = match &config.leader_election {
        None => None,
        Some(election) => {
            health.mark_synced();
            let mut elector = crate::leader::Elector::start(ctx.client.clone(), election).await?;
            tokio::select! {
                elected = elector.elected() => elected?,
                () = crate::leader::shutdown_signal() => {
                    tracing::info!("stopping before being elected");
                    elector.release().await;
                    let _ = stop_http.send(());
                    server.await??;
                    return Ok(());
                }
            }
            Some(elector)
        }
    };

    let synced = health.clone();
    tokio::spawn(async move {
        if store.wait_until_ready().await.is_ok() {
            synced.mark_synced();
            tracing::info!("AhltEnvironment cache synced");
        }
    });

    tracing::info!(namespace = ns.unwrap_or("<all>"), "controller starting");
    let controller = drive(controller, ctx);
    let deposed = async {
        match elector.as_mut() {
            Some(elector) => elector.deposed().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = controller => {}
        () = deposed => {
            // Another replica may already reconcile: stop now, without finishing passes.
            anyhow::bail!("lost the leader Lease; exiting so that a restart rejoins as a standby");
        }
    }
    tracing::info!("controller stopped");
    if let Some(elector) = elector {
        elector.release().await;
    }

    let _ = stop_http.send(());
    server.await??;
    Ok(())
}
