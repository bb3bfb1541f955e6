//! Leader election through a `coordination.k8s.io/v1` Lease, so that with more than one
//! replica only one operator reconciles.
//!
//! The Lease protocol (acquire a free or expired lease, renew before it expires, release on
//! shutdown) is [`kube_lease_manager`]'s; this module decides what the process does with it:
//!
//! - a standby waits for the lease and reconciles nothing, but serves `/healthz` and
//!   `/readyz` (ready: a standby is a healthy replica, and the chart's rolling update needs
//!   new pods to become ready while the old leader still holds the lease);
//! - the leader runs the controller;
//! - a leader that loses the lease steps down by exiting the process with an error, so
//!   Kubernetes restarts it as a standby: no half-stopped controller keeps writing;
//! - on SIGTERM the leader stops the controller, then releases the lease so a standby takes
//!   over at once instead of after the lease duration.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long shutdown waits for the lease to be released.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the lease lives and how it is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderElection {
    pub lease_name: String,
    /// `None`: the client's default namespace (in a pod, its own namespace).
    pub namespace: Option<String>,
    /// Unique per process: the holder identity written into the Lease.
    pub identity: String,
    /// A holder that has not renewed for this long may be replaced.
    pub lease_duration_seconds: u64,
    /// The holder renews this long before expiry (also the tolerated clock skew).
    pub renew_grace_seconds: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("the lease name must not be empty")]
    EmptyLeaseName,
    #[error("the lease duration and renew grace must be positive")]
    ZeroDuration,
    #[error("the renew grace ({grace}s) must be shorter than the lease duration ({duration}s)")]
    GraceNotShorter { grace: u64, duration: u64 },
}

impl LeaderElection {
    /// Checks what [`kube_lease_manager::LeaseParams`] would otherwise panic on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.lease_name.trim().is_empty() {
            return Err(ConfigError::EmptyLeaseName);
        }
        if self.lease_duration_seconds == 0 || self.renew_grace_seconds == 0 {
            return Err(ConfigError::ZeroDuration);
        }
        if self.renew_grace_seconds >= self.lease_duration_seconds {
            return Err(ConfigError::GraceNotShorter {
                grace: self.renew_grace_seconds,
                duration: self.lease_duration_seconds,
            });
        }
        Ok(())
    }
}

/// The holder identity: the pod name in a cluster, else host name and process id (two
/// local processes must never share an identity, or both would think they lead).
pub fn identity(pod_name: Option<&str>, hostname: Option<&str>, pid: u32) -> String {
    match pod_name.map(str::trim).filter(|p| !p.is_empty()) {
        Some(pod) => pod.to_owned(),
        None => {
            let host = hostname
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .unwrap_or("ahlt-operator");
            format!("{host}-{pid}")
        }
    }
}

/// What a change of the lease state means for the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Became the leader: start reconciling.
    Elected,
    /// Was the leader and no longer is: step down (exit).
    Deposed,
    /// Nothing to do.
    Unchanged,
}

pub fn transition(was_leader: bool, is_leader: bool) -> Transition {
    match (was_leader, is_leader) {
        (false, true) => Transition::Elected,
        (true, false) => Transition::Deposed,
        _ => Transition::Unchanged,
    }
}

/// A running election: a background task keeps trying to take the lease and renews it
/// while held; the channel says whether this process holds it.
pub struct Elector {
    state: watch::Receiver<bool>,
    task: JoinHandle<kube_lease_manager::Result<LeaseManager>>,
    leading: bool,
}

impl Elector {
    /// Joins the election (creating the Lease when it does not exist).
    pub async fn start(client: Client, config: &LeaderElection) -> anyhow::Result<Self> {
        config.validate()?;
        let namespace = config
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_owned());
        tracing::info!(
            lease = %config.lease_name,
            namespace = %namespace,
            identity = %config.identity,
            "joining leader election"
        );
        let manager = LeaseManagerBuilder::new(client, &config.lease_name)
            .with_namespace(namespace)
            .with_identity(&config.identity)
            .with_duration(config.lease_duration_seconds)
            .with_grace(config.renew_grace_seconds)
            .build()
            .await?;
        let (state, task) = manager.watch().await;
        Ok(Self {
            state,
            task,
            leading: false,
        })
    }

    /// Waits until this process holds the lease. Fails when the election task ended.
    pub async fn elected(&mut self) -> anyhow::Result<()> {
        loop {
            let now = *self.state.borrow_and_update();
            match transition(self.leading, now) {
                Transition::Elected => {
                    self.leading = true;
                    tracing::info!("elected leader");
                    return Ok(());
                }
                Transition::Deposed => self.leading = false,
                Transition::Unchanged if self.leading => return Ok(()),
                Transition::Unchanged => {}
            }
            if self.state.changed().await.is_err() {
                anyhow::bail!("the leader election stopped");
            }
        }
    }

    /// Resolves once this process no longer holds the lease (or the election ended).
    /// Cancel-safe: meant for `select!` beside the controller.
    pub async fn deposed(&mut self) {
        loop {
            let now = *self.state.borrow_and_update();
            if transition(self.leading, now) == Transition::Deposed || !now {
                self.leading = false;
                return;
            }
            if self.state.changed().await.is_err() {
                self.leading = false;
                return;
            }
        }
    }

    /// Leaves the election, releasing the lease when held (bounded wait).
    pub async fn release(self) {
        drop(self.state);
        match tokio::time::timeout(RELEASE_TIMEOUT, self.task).await {
            Ok(Ok(Ok(_))) => tracing::info!("left the leader election"),
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "releasing the lease failed"),
            Ok(Err(e)) => tracing::warn!(error = %e, "the leader election task failed"),
            Err(_) => tracing::warn!("releasing the lease timed out; it expires by itself"),
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C (for the wait before leadership; the controller has its
/// own handling once it runs).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> LeaderElection {
        LeaderElection {
            lease_name: "ahlt-operator".into(),
            namespace: None,
            identity: "pod-a".into(),
            lease_duration_seconds: 15,
            renew_grace_seconds: 5,
        }
    }

    #[test]
    fn valid_parameters_pass() {
        assert_eq!(config().validate(), Ok(()));
    }

    #[test]
    fn parameters_the_lease_manager_would_panic_on_are_refused() {
        let mut c = config();
        c.renew_grace_seconds = 15;
        assert_eq!(
            c.validate(),
            Err(ConfigError::GraceNotShorter {
                grace: 15,
                duration: 15
            })
        );
        c.renew_grace_seconds = 0;
        assert_eq!(c.validate(), Err(ConfigError::ZeroDuration));
        let mut c = config();
        c.lease_duration_seconds = 0;
        assert_eq!(c.validate(), Err(ConfigError::ZeroDuration));
        let mut c = config();
        c.lease_name = " ".into();
        assert_eq!(c.validate(), Err(ConfigError::EmptyLeaseName));
    }

    #[test]
    fn the_identity_is_the_pod_name_else_host_and_pid() {
        assert_eq!(identity(Some("op-7d9f-x"), Some("node"), 42), "op-7d9f-x");
        assert_eq!(identity(Some(""), Some("laptop"), 42), "laptop-42");
        assert_eq!(identity(None, None, 7), "ahlt-operator-7");
        assert_ne!(identity(None, Some("h"), 1), identity(None, Some("h"), 2));
    }

    #[test]
    fn only_a_change_of_holder_is_a_transition() {
        assert_eq!(transition(false, true), Transition::Elected);
        assert_eq!(transition(true, false), Transition::Deposed);
        assert_eq!(transition(true, true), Transition::Unchanged);
        assert_eq!(transition(false, false), Transition::Unchanged);
    }

    #[tokio::test]
    async fn an_elector_follows_the_lease_state() {
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(async { std::future::pending().await });
        let mut elector = Elector {
            state: rx,
            task,
            leading: false,
        };
        // Standby until the lease is taken.
        let wait = tokio::time::timeout(Duration::from_millis(50), elector.elected()).await;
        assert!(wait.is_err(), "elected without the lease");
        tx.send(true).unwrap();
        elector.elected().await.unwrap();
        // Leading: not deposed while the lease is held.
        let wait = tokio::time::timeout(Duration::from_millis(50), elector.deposed()).await;
        assert!(wait.is_err(), "deposed while holding the lease");
        tx.send(false).unwrap();
        tokio::time::timeout(Duration::from_secs(5), elector.deposed())
            .await
            .expect("losing the lease deposes");
        // A closed channel (the election task ended) is not leadership.
        drop(tx);
        assert!(elector.elected().await.is_err());
        elector.task.abort();
    }
}
