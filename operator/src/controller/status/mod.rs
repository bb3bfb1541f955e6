//! The next `AhltEnvironmentStatus`, computed from the current one and what a reconcile pass
//! observed. Pure and deterministic: "now" is a parameter, nothing reads a clock, and the same
//! inputs give a status equal to the current one, so an unchanged pass writes nothing.
//!
//! Condition semantics (kstatus):
//! - `Ready`: True only when the database is provisioned, the migrations of the spec image
//!   succeeded, the Deployment serves the spec image with all replicas available, and the
//!   Ingress (when requested) is configured. Flips to False/`Progressing` first on every new
//!   generation.
//! - `DatabaseReady`: the role and database exist and the Secret holds their credentials.
//! - `MigrationsApplied`: the migration Job of the spec image succeeded.
//! - `WorkloadAvailable`: the Deployment's current template is fully rolled out and available.
//! - `IngressReady`: True/`NotRequested` without `spec.ingress`, True/`Configured` once applied.
//! - `GraphSynced`: True/`NotConfigured` without `spec.graph`. With a graph: False/`Pending`
//!   until the spec's image serves (never the previous image's resync), False/`Resyncing`
//!   while the resync Job runs, True/`Synced` once the serving image (and the latest
//!   `resyncRequest`) was resynced, False/`ResyncFailed` or False/`CredentialsMissing` with
//!   the cause, Unknown/`NotRequested` when no resync was ever asked for
//!   (`resyncOnRollout: false`, no `resyncRequest`).
//!
//! `Ready` does not wait for `GraphSynced`: the app answers graph queries from PostgreSQL
//! while the graph is unavailable or stale, so a broken graph must not block deploys.

mod conditions;
mod events;
mod graph;
#[cfg(test)]
mod tests;

use k8s_openapi::jiff::Timestamp;

pub use conditions::{
    ConditionType, DATABASE_READY, GRAPH_SYNCED, INGRESS_READY, MIGRATIONS_APPLIED, READY, Reason,
    WORKLOAD_AVAILABLE, ready_status, reason,
};
pub use events::{TransitionEvent, transition_events};

use crate::crd::{AhltEnvironmentStatus, DatabaseStatus, GraphStatus};
use conditions::{ConditionUpdate, find, set_condition};
use graph::graph_condition;

/// What one pass found out about one generation of an environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Observations {
    pub generation: i64,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The spec cannot be reconciled; nothing else was looked at.
    Invalid {
        reason: &'static str,
        message: String,
    },
    /// `spec.suspend`: nothing was changed.
    Suspended,
    /// A full pass (possibly stopped at the database step). Boxed: it is by far the largest.
    Reconciled(Box<Progress>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// The image the spec asks for (`repository:tag`).
    pub spec_image: String,
    pub url: Option<String>,
    /// `status.selector` for the scale subresource.
    pub selector: String,
    pub database: DatabaseObservation,
    pub migration: MigrationObservation,
    pub workload: WorkloadObservation,
    pub ingress: IngressObservation,
    pub graph: GraphObservation,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DatabaseObservation {
    Ready(DatabaseStatus),
    /// The spec names another database or role than the established one; nothing changed.
    RenameRefused {
        message: String,
    },
    Failed {
        reason: &'static str,
        message: String,
    },
}

/// State of the migration Job of the spec image.
#[derive(Debug, Clone, PartialEq)]
pub enum MigrationObservation {
    /// Not created yet (e.g. the database step failed first).
    NotStarted,
    Running,
    Succeeded,
    Failed {
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum WorkloadObservation {
    /// No Deployment yet: the first migrations have not succeeded.
    NotCreated,
    /// The Deployment's current template is not fully available yet.
    RollingOut { image: String, available: i32 },
    /// Every replica of the current template is updated and available.
    Available { image: String, available: i32 },
}

/// How users reach the environment: its Ingress or HTTPRoute (IngressReady).
#[derive(Debug, Clone, PartialEq)]
pub enum IngressObservation {
    NotRequested,
    /// Requested, but not applied yet (the pass stopped before the front door).
    Pending,
    /// The Ingress is applied.
    Configured,
    /// Every parent Gateway accepted the HTTPRoute and resolved its backend.
    RouteAccepted,
    /// A parent has not (yet) reported on the current HTTPRoute.
    RouteWaiting {
        message: String,
    },
    /// A parent refused the route; `reason` is the Gateway's (bounded, see
    /// [`crate::controller::front_door::GATEWAY_REASONS`]).
    RouteRefused {
        reason: &'static str,
        message: String,
    },
    /// `spec.route` is set but the cluster does not serve the Gateway API.
    GatewayApiMissing,
}

impl IngressObservation {
    /// A route that waits for its Gateway or for the Gateway API.
    pub fn waits_for_route(&self) -> bool {
        matches!(
            self,
            IngressObservation::RouteWaiting { .. } | IngressObservation::GatewayApiMissing
        )
    }
}

/// State of the graph resync (see [`crate::controller::graph`]).
#[derive(Debug, Clone, PartialEq)]
pub enum GraphObservation {
    /// `spec.graph` is not set.
    NotConfigured,
    /// The pass stopped before the graph step: the condition keeps what it said.
    Unobserved,
    /// A resync waits for `image` (the spec's) to serve.
    WaitingForRollout { image: String },
    /// Nothing to run: the last resync (if any) covers what is asked for.
    UpToDate,
    /// The resync Job for `image` and `request` runs.
    Resyncing {
        image: String,
        request: Option<String>,
    },
    /// That Job succeeded at `completion_time` (the Job's, so status stays deterministic).
    Succeeded {
        image: String,
        request: Option<String>,
        completion_time: Option<String>,
    },
    /// Job `job` failed (now or on an earlier pass); `message` says why.
    Failed {
        job: String,
        image: String,
        request: Option<String>,
        message: String,
    },
    /// The credentials Secret is unusable; no Job was started. Names keys, never values.
    CredentialsMissing { message: String },
}

/// True when `generation` has not been acknowledged with Ready=False/Progressing or a later
/// verdict yet: the pass must first write [`progressing`].
pub fn needs_progressing(current: &AhltEnvironmentStatus, generation: i64) -> bool {
    current.observed_generation != Some(generation)
        || find(&current.conditions, READY)
            .is_none_or(|c| c.observed_generation != Some(generation))
}

/// The status that acknowledges a new generation: Ready=False/Progressing, nothing else
/// changed (the other conditions still describe the generation they carry).
pub fn progressing(
    current: &AhltEnvironmentStatus,
    generation: i64,
    now: Timestamp,
) -> AhltEnvironmentStatus {
    let mut next = current.clone();
    next.observed_generation = Some(generation);
    set_condition(
        &mut next.conditions,
        ConditionUpdate {
            type_: READY,
            status: "False",
            reason: reason::PROGRESSING,
            message: format!("reconciling generation {generation}"),
        },
        generation,
        now,
    );
    next
}

/// The status after a pass.
pub fn next_status(
    current: &AhltEnvironmentStatus,
    obs: &Observations,
    now: Timestamp,
) -> AhltEnvironmentStatus {
    let mut next = current.clone();
    let generation = obs.generation;
    next.observed_generation = Some(generation);
    let updates = match &obs.outcome {
        Outcome::Invalid { reason, message } => vec![ConditionUpdate {
            type_: READY,
            status: "False",
            reason,
            message: message.clone(),
        }],
        Outcome::Suspended => vec![ConditionUpdate {
            type_: READY,
            status: "False",
            reason: reason::SUSPENDED,
            message: "spec.suspend is true: the operator changes nothing".into(),
        }],
        Outcome::Reconciled(progress) => {
            apply_progress(&mut next, progress);
            progress_conditions(&next, progress)
        }
    };
    for update in updates {
        set_condition(&mut next.conditions, update, generation, now);
    }
    next
}

fn apply_progress(next: &mut AhltEnvironmentStatus, p: &Progress) {
    next.url = p.url.clone();
    next.selector = Some(p.selector.clone());
    if let DatabaseObservation::Ready(db) = &p.database {
        next.database = Some(db.clone());
    }
    if p.migration == MigrationObservation::Succeeded {
        next.migrated_image = Some(p.spec_image.clone());
    }
    match &p.workload {
        WorkloadObservation::NotCreated => next.replicas = Some(0),
        WorkloadObservation::RollingOut { available, .. } => next.replicas = Some(*available),
        WorkloadObservation::Available { image, available } => {
            // The only place status.image moves: the pods of that image are available.
            next.image = Some(image.clone());
            next.replicas = Some(*available);
        }
    }
    match &p.graph {
        GraphObservation::Succeeded {
            image,
            request,
            completion_time,
        } => {
            let graph = next.graph.get_or_insert_with(GraphStatus::default);
            graph.last_resync_image = Some(image.clone());
            if request.is_some() {
                graph.last_resync_request = request.clone();
            }
            graph.last_resync_time = completion_time.clone();
            graph.failed_job = None;
        }
        GraphObservation::Failed { job, .. } => {
            next.graph
                .get_or_insert_with(GraphStatus::default)
                .failed_job = Some(job.clone());
        }
        _ => {}
    }
}

fn progress_conditions<'a>(
    next: &AhltEnvironmentStatus,
    p: &'a Progress,
) -> Vec<ConditionUpdate<'a>> {
    let database = match &p.database {
        DatabaseObservation::Ready(db) => ConditionUpdate {
            type_: DATABASE_READY,
            status: "True",
            reason: reason::PROVISIONED,
            message: format!("database {} and role {} exist", db.name, db.role),
        },
        DatabaseObservation::Failed { reason, message } => ConditionUpdate {
            type_: DATABASE_READY,
            status: "False",
            reason,
            message: message.clone(),
        },
        DatabaseObservation::RenameRefused { message } => ConditionUpdate {
            type_: DATABASE_READY,
            status: "False",
            reason: reason::DATABASE_RENAME_REFUSED,
            message: message.clone(),
        },
    };
    let migrations = match &p.migration {
        MigrationObservation::NotStarted => ConditionUpdate {
            type_: MIGRATIONS_APPLIED,
            status: "False",
            reason: reason::PENDING,
            message: format!("migrations of {} have not started", p.spec_image),
        },
        MigrationObservation::Running => ConditionUpdate {
            type_: MIGRATIONS_APPLIED,
            status: "False",
            reason: reason::RUNNING,
            message: format!("migrations of {} are running", p.spec_image),
        },
        MigrationObservation::Succeeded => ConditionUpdate {
            type_: MIGRATIONS_APPLIED,
            status: "True",
            reason: reason::SUCCEEDED,
            message: format!("migrations of {} succeeded", p.spec_image),
        },
        MigrationObservation::Failed { message } => ConditionUpdate {
            type_: MIGRATIONS_APPLIED,
            status: "False",
            reason: reason::MIGRATION_FAILED,
            message: format!(
                "migrations of {} failed, the previous image keeps serving: {message}",
                p.spec_image
            ),
        },
    };
    let workload = match &p.workload {
        WorkloadObservation::NotCreated => ConditionUpdate {
            type_: WORKLOAD_AVAILABLE,
            status: "False",
            reason: reason::NOT_CREATED,
            message: "the Deployment is created once the first migrations succeed".into(),
        },
        WorkloadObservation::RollingOut { image, available } => ConditionUpdate {
            type_: WORKLOAD_AVAILABLE,
            status: "False",
            reason: reason::ROLLING_OUT,
            message: format!("rolling out {image}: {available} replicas available"),
        },
        WorkloadObservation::Available { image, available } => ConditionUpdate {
            type_: WORKLOAD_AVAILABLE,
            status: "True",
            reason: reason::AVAILABLE,
            message: format!("{available} replicas of {image} available"),
        },
    };
    let ingress = match &p.ingress {
        IngressObservation::NotRequested => ConditionUpdate {
            type_: INGRESS_READY,
            status: "True",
            reason: reason::NOT_REQUESTED,
            message: "neither spec.ingress nor spec.route is set".into(),
        },
        IngressObservation::Pending => ConditionUpdate {
            type_: INGRESS_READY,
            status: "False",
            reason: reason::PENDING,
            message: "the Ingress or HTTPRoute is not applied yet".into(),
        },
        IngressObservation::RouteAccepted => ConditionUpdate {
            type_: INGRESS_READY,
            status: "True",
            reason: reason::ACCEPTED,
            message: format!(
                "every Gateway accepted the HTTPRoute: serving {}",
                p.url.as_deref().unwrap_or_default()
            ),
        },
        IngressObservation::RouteWaiting { message } => ConditionUpdate {
            type_: INGRESS_READY,
            status: "False",
            reason: reason::PENDING,
            message: message.clone(),
        },
        IngressObservation::RouteRefused { reason, message } => ConditionUpdate {
            type_: INGRESS_READY,
            status: "False",
            reason,
            message: message.clone(),
        },
        IngressObservation::GatewayApiMissing => ConditionUpdate {
            type_: INGRESS_READY,
            status: "False",
            reason: reason::GATEWAY_API_MISSING,
            message: "spec.route needs the Gateway API (gateway.networking.k8s.io/v1 HTTPRoute), \
                      which this cluster does not serve: install its CRDs, or use spec.ingress"
                .into(),
        },
        IngressObservation::Configured => ConditionUpdate {
            type_: INGRESS_READY,
            status: "True",
            reason: reason::CONFIGURED,
            message: format!("serving {}", p.url.as_deref().unwrap_or_default()),
        },
    };
    let graph = graph_condition(next, &p.graph);

    let serving_spec_image = matches!(&p.workload,
        WorkloadObservation::Available { image, .. } if *image == p.spec_image)
        && next.image.as_deref() == Some(p.spec_image.as_str());
    let ready = if database.status == "False" {
        ConditionUpdate {
            type_: READY,
            status: "False",
            reason: database.reason,
            message: database.message.clone(),
        }
    } else if let MigrationObservation::Failed { .. } = &p.migration {
        ConditionUpdate {
            type_: READY,
            status: "False",
            reason: reason::MIGRATION_FAILED,
            message: migrations.message.clone(),
        }
    } else if p.migration == MigrationObservation::Succeeded
        && serving_spec_image
        && ingress.status == "True"
    {
        ConditionUpdate {
            type_: READY,
            status: "True",
            reason: reason::AVAILABLE,
            message: format!("{} is serving", p.spec_image),
        }
    } else {
        ConditionUpdate {
            type_: READY,
            status: "False",
            reason: reason::PROGRESSING,
            message: format!("rolling out {}", p.spec_image),
        }
    };
    vec![ready, database, migrations, workload, ingress, graph]
}

/// Ready=False/`Deleting` while the finalizer drops the database; the rest as it was.
pub fn deleting(
    current: &AhltEnvironmentStatus,
    generation: i64,
    now: Timestamp,
) -> AhltEnvironmentStatus {
    let mut next = current.clone();
    set_condition(
        &mut next.conditions,
        ConditionUpdate {
            type_: READY,
            status: "False",
            reason: reason::DELETING,
            message: "deleting: dropping the database and role (deletionPolicy: Delete)".into(),
        },
        generation,
        now,
    );
    next
}

/// DatabaseReady=False with `reason`, the rest as it was (a drop that keeps failing).
pub fn database_failed(
    current: &AhltEnvironmentStatus,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> AhltEnvironmentStatus {
    let mut next = current.clone();
    let generation = current.observed_generation.unwrap_or_default();
    set_condition(
        &mut next.conditions,
        ConditionUpdate {
            type_: DATABASE_READY,
            status: "False",
            reason,
            message: message.to_owned(),
        },
        generation,
        now,
    );
    next
}
