//! The AhltEnvironment controller: watches AhltEnvironments and the children they own,
//! reconciles each with [`reconcile::reconcile`], and serves metrics and health.

pub mod apply;
pub mod backoff;
pub mod error;
pub mod graph;
pub mod observe;
pub mod provision;
pub mod reconcile;
pub mod status;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::Controller;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Api, Client};

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
        }
    }
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs the controller until SIGTERM or Ctrl-C, with the HTTP server beside it.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let client = Client::try_default().await?;
    let ns = config.namespace.as_deref();
    // Children are watched by the managed-by label only: the operator never caches foreign objects.
    let children = watcher::Config::default().labels(&format!(
        "app.kubernetes.io/managed-by={}",
        names::MANAGED_BY
    ));
    let controller = Controller::new(
        api::<AhltEnvironment>(&client, ns),
        watcher::Config::default(),
    )
    .owns(api::<ConfigMap>(&client, ns), children.clone())
    .owns(api::<Secret>(&client, ns), children.clone())
    .owns(api::<Service>(&client, ns), children.clone())
    .owns(api::<Deployment>(&client, ns), children.clone())
    .owns(api::<Ingress>(&client, ns), children.clone())
    .owns(api::<Job>(&client, ns), children)
    .shutdown_on_signal();

    let store = controller.store();
    let metrics = Arc::new(Metrics::default());
    let health = Arc::new(Health::new(config.stall_after, Some(store.clone())));
    let ctx = Arc::new(Context::new(
        client,
        Arc::new(Postgres),
        metrics.clone(),
        health.clone(),
        config.instance.clone(),
    ));

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
    let controller = controller
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => tracing::debug!(env = %obj, "reconciled"),
                Err(e) => tracing::debug!(error = %e, "controller event"),
            }
        });
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
