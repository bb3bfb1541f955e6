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

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::crd::{AhltEnvironmentStatus, DatabaseStatus, GraphStatus};

pub const READY: &str = "Ready";
pub const DATABASE_READY: &str = "DatabaseReady";
pub const MIGRATIONS_APPLIED: &str = "MigrationsApplied";
pub const WORKLOAD_AVAILABLE: &str = "WorkloadAvailable";
pub const INGRESS_READY: &str = "IngressReady";
pub const GRAPH_SYNCED: &str = "GraphSynced";

/// The order conditions appear in; fixed so that equal states serialize equally.
pub const CONDITION_TYPES: [&str; 6] = [
    READY,
    DATABASE_READY,
    MIGRATIONS_APPLIED,
    WORKLOAD_AVAILABLE,
    INGRESS_READY,
    GRAPH_SYNCED,
];

/// Condition reasons that describe work in progress rather than a failure.
pub mod reason {
    pub const PROGRESSING: &str = "Progressing";
    pub const AVAILABLE: &str = "Available";
    pub const SUSPENDED: &str = "Suspended";
    pub const PROVISIONED: &str = "Provisioned";
    pub const PENDING: &str = "Pending";
    pub const RUNNING: &str = "Running";
    pub const SUCCEEDED: &str = "Succeeded";
    pub const MIGRATION_FAILED: &str = "MigrationFailed";
    pub const NOT_CREATED: &str = "NotCreated";
    pub const ROLLING_OUT: &str = "RollingOut";
    pub const NOT_REQUESTED: &str = "NotRequested";
    pub const CONFIGURED: &str = "Configured";
    pub const NOT_CONFIGURED: &str = "NotConfigured";
    pub const DELETING: &str = "Deleting";
    /// GraphSynced: the resync Job of the serving image runs.
    pub const RESYNCING: &str = "Resyncing";
    /// GraphSynced: the last resync covers the serving image and the latest request.
    pub const SYNCED: &str = "Synced";
    /// GraphSynced: the resync Job failed; it is not retried until a new request or image.
    pub const RESYNC_FAILED: &str = "ResyncFailed";
    /// GraphSynced: the credentials Secret or its username/password keys are missing, so no
    /// Job is started (its pod could not start).
    pub const CREDENTIALS_MISSING: &str = "CredentialsMissing";
}

const IN_PROGRESS_REASONS: [&str; 7] = [
    reason::PROGRESSING,
    reason::PENDING,
    reason::RUNNING,
    reason::ROLLING_OUT,
    reason::NOT_CREATED,
    reason::SUSPENDED,
    reason::RESYNCING,
];

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

#[derive(Debug, Clone, PartialEq)]
pub enum IngressObservation {
    NotRequested,
    /// Requested, but not applied yet (it comes with the first Deployment).
    Pending,
    Configured,
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

struct ConditionUpdate<'a> {
    type_: &'a str,
    status: &'a str,
    reason: &'a str,
    message: String,
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
            message: "spec.ingress is not set".into(),
        },
        IngressObservation::Pending => ConditionUpdate {
            type_: INGRESS_READY,
            status: "False",
            reason: reason::PENDING,
            message: "the Ingress is created with the first Deployment".into(),
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
    let ready = if let DatabaseObservation::Failed { reason, message } = &p.database {
        ConditionUpdate {
            type_: READY,
            status: "False",
            reason,
            message: message.clone(),
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

/// GraphSynced. Never part of Ready (see the module doc).
fn graph_condition<'a>(next: &AhltEnvironmentStatus, g: &GraphObservation) -> ConditionUpdate<'a> {
    let update = |status, reason, message| ConditionUpdate {
        type_: GRAPH_SYNCED,
        status,
        reason,
        message,
    };
    let served = |image: &str, request: &Option<String>| match request {
        Some(r) => format!("{image} for resyncRequest {r:?}"),
        None => image.to_owned(),
    };
    match g {
        GraphObservation::NotConfigured => update(
            "True",
            reason::NOT_CONFIGURED,
            "spec.graph is not set".into(),
        ),
        GraphObservation::Unobserved => match find(&next.conditions, GRAPH_SYNCED) {
            Some(c) => ConditionUpdate {
                type_: GRAPH_SYNCED,
                status: static_status(&c.status),
                reason: reason_of(&c.reason),
                message: c.message.clone(),
            },
            None => update(
                "Unknown",
                reason::PENDING,
                "the graph resync waits for the database".into(),
            ),
        },
        GraphObservation::WaitingForRollout { image } => update(
            "False",
            reason::PENDING,
            format!("the graph is resynced once {image} serves"),
        ),
        // Succeeded is already recorded in `next.graph`.
        GraphObservation::UpToDate | GraphObservation::Succeeded { .. } => match &next.graph {
            Some(GraphStatus {
                last_resync_image: Some(image),
                last_resync_time,
                ..
            }) => update(
                "True",
                reason::SYNCED,
                synced_message(image, next.graph.as_ref(), last_resync_time),
            ),
            _ => update(
                "Unknown",
                reason::NOT_REQUESTED,
                "no resync asked for: resyncOnRollout is false and resyncRequest is not set".into(),
            ),
        },
        GraphObservation::Resyncing { image, request } => update(
            "False",
            reason::RESYNCING,
            format!("resyncing the graph with {}", served(image, request)),
        ),
        GraphObservation::Failed {
            image,
            request,
            message,
            ..
        } => update(
            "False",
            reason::RESYNC_FAILED,
            format!(
                "the graph resync with {} failed; a new resyncRequest or image retries: {message}",
                served(image, request)
            ),
        ),
        GraphObservation::CredentialsMissing { message } => {
            update("False", reason::CREDENTIALS_MISSING, message.clone())
        }
    }
}

/// The Synced message, from status alone: a pass that only finds the resync up to date
/// says exactly what the pass that saw it succeed said.
fn synced_message(image: &str, graph: Option<&GraphStatus>, time: &Option<String>) -> String {
    let request = graph
        .and_then(|g| g.last_resync_request.as_deref())
        .map(|r| format!(", last resyncRequest {r:?}"))
        .unwrap_or_default();
    let at = time
        .as_deref()
        .map(|t| format!(" at {t}"))
        .unwrap_or_default();
    format!("graph resynced with {image}{request}{at}")
}

/// Condition statuses as the `&'static str` the updates carry.
fn static_status(status: &str) -> &'static str {
    match status {
        "True" => "True",
        "False" => "False",
        _ => "Unknown",
    }
}

/// A kept GraphSynced reason as one of the bounded reasons.
fn reason_of(r: &str) -> &'static str {
    [
        reason::NOT_CONFIGURED,
        reason::PENDING,
        reason::NOT_REQUESTED,
        reason::RESYNCING,
        reason::SYNCED,
        reason::RESYNC_FAILED,
        reason::CREDENTIALS_MISSING,
    ]
    .into_iter()
    .find(|known| *known == r)
    .unwrap_or(reason::PENDING)
}

fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Sets one condition; `lastTransitionTime` moves only when its status flips.
fn set_condition(
    conditions: &mut Vec<Condition>,
    update: ConditionUpdate<'_>,
    generation: i64,
    now: Timestamp,
) {
    let transition = match find(conditions, update.type_) {
        Some(old) if old.status == update.status => old.last_transition_time.clone(),
        _ => Time(now),
    };
    let condition = Condition {
        type_: update.type_.to_owned(),
        status: update.status.to_owned(),
        reason: update.reason.to_owned(),
        message: update.message,
        observed_generation: Some(generation),
        last_transition_time: transition,
    };
    match conditions.iter_mut().find(|c| c.type_ == update.type_) {
        Some(slot) => *slot = condition,
        None => conditions.push(condition),
    }
    sort_conditions(conditions);
}

fn sort_conditions(conditions: &mut [Condition]) {
    let rank = |c: &Condition| {
        CONDITION_TYPES
            .iter()
            .position(|t| *t == c.type_)
            .unwrap_or(CONDITION_TYPES.len())
    };
    conditions.sort_by_key(rank);
}

/// An event to publish for a status transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionEvent {
    pub warning: bool,
    pub reason: String,
    pub note: String,
}

/// Events for what changed between two statuses: a Warning for each condition that newly
/// failed (one per reason), a Normal event when Ready becomes True. Nothing when nothing
/// flipped, so repeated passes stay quiet.
pub fn transition_events(
    old: &AhltEnvironmentStatus,
    new: &AhltEnvironmentStatus,
) -> Vec<TransitionEvent> {
    let mut events: Vec<TransitionEvent> = Vec::new();
    for c in &new.conditions {
        let before = find(&old.conditions, &c.type_);
        let changed = before.is_none_or(|b| b.status != c.status || b.reason != c.reason);
        if !changed {
            continue;
        }
        if c.status == "False" && !IN_PROGRESS_REASONS.contains(&c.reason.as_str()) {
            if !events.iter().any(|e| e.reason == c.reason) {
                events.push(TransitionEvent {
                    warning: true,
                    reason: c.reason.clone(),
                    note: c.message.clone(),
                });
            }
        } else if c.type_ == READY && c.status == "True" {
            events.push(TransitionEvent {
                warning: false,
                reason: READY.to_owned(),
                note: c.message.clone(),
            });
        }
    }
    events
}

/// Status of the Ready condition ("True", "False", "Unknown"), for metrics.
pub fn ready_status(status: &AhltEnvironmentStatus) -> &str {
    find(&status.conditions, READY).map_or("Unknown", |c| c.status.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    fn db() -> DatabaseStatus {
        DatabaseStatus {
            name: "ahlt_dev".into(),
            role: "ahlt_dev".into(),
            secret_name: "dev-db".into(),
        }
    }

    fn progress(
        migration: MigrationObservation,
        workload: WorkloadObservation,
        ingress: IngressObservation,
    ) -> Progress {
        Progress {
            spec_image: "r/ahlt:2".into(),
            url: Some("https://dev.local".into()),
            selector: "a=b".into(),
            database: DatabaseObservation::Ready(db()),
            migration,
            workload,
            ingress,
            graph: GraphObservation::NotConfigured,
        }
    }

    fn reconciled(generation: i64, p: Progress) -> Observations {
        Observations {
            generation,
            outcome: Outcome::Reconciled(Box::new(p)),
        }
    }

    fn cond<'a>(s: &'a AhltEnvironmentStatus, t: &str) -> &'a Condition {
        find(&s.conditions, t).unwrap()
    }

    fn ready_status_for(generation: i64, now: Timestamp) -> AhltEnvironmentStatus {
        let obs = reconciled(
            generation,
            progress(
                MigrationObservation::Succeeded,
                WorkloadObservation::Available {
                    image: "r/ahlt:2".into(),
                    available: 1,
                },
                IngressObservation::Configured,
            ),
        );
        next_status(&AhltEnvironmentStatus::default(), &obs, now)
    }

    #[test]
    fn a_new_generation_needs_progressing_first() {
        let empty = AhltEnvironmentStatus::default();
        assert!(needs_progressing(&empty, 1));
        let s = progressing(&empty, 1, t(0));
        assert!(!needs_progressing(&s, 1));
        assert!(needs_progressing(&s, 2));
        let ready = cond(&s, READY);
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason, reason::PROGRESSING);
        assert_eq!(ready.observed_generation, Some(1));
        assert_eq!(s.observed_generation, Some(1));
        assert_eq!(s.conditions.len(), 1);
    }

    #[test]
    fn progressing_keeps_other_conditions_and_serving_image() {
        let s = ready_status_for(1, t(0));
        let p = progressing(&s, 2, t(10));
        assert_eq!(cond(&p, READY).status, "False");
        assert_eq!(cond(&p, READY).last_transition_time, Time(t(10)));
        assert_eq!(cond(&p, DATABASE_READY), cond(&s, DATABASE_READY));
        assert_eq!(p.image.as_deref(), Some("r/ahlt:2"));
    }

    #[test]
    fn all_good_is_ready_and_every_condition_carries_the_generation() {
        let s = ready_status_for(3, t(0));
        assert_eq!(cond(&s, READY).status, "True");
        assert_eq!(cond(&s, READY).reason, reason::AVAILABLE);
        assert_eq!(s.image.as_deref(), Some("r/ahlt:2"));
        assert_eq!(s.migrated_image.as_deref(), Some("r/ahlt:2"));
        assert_eq!(s.database, Some(db()));
        assert_eq!(s.url.as_deref(), Some("https://dev.local"));
        let types: Vec<_> = s.conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, CONDITION_TYPES);
        assert!(
            s.conditions
                .iter()
                .all(|c| c.observed_generation == Some(3))
        );
        assert_eq!(cond(&s, GRAPH_SYNCED).reason, reason::NOT_CONFIGURED);
    }

    #[test]
    fn same_observations_give_the_same_status() {
        let s = ready_status_for(1, t(0));
        let obs = reconciled(
            1,
            progress(
                MigrationObservation::Succeeded,
                WorkloadObservation::Available {
                    image: "r/ahlt:2".into(),
                    available: 1,
                },
                IngressObservation::Configured,
            ),
        );
        assert_eq!(next_status(&s, &obs, t(500)), s);
    }

    #[test]
    fn transition_time_moves_only_when_status_flips() {
        let s = ready_status_for(1, t(0));
        // Same status, other reason: time stays.
        let obs = reconciled(
            1,
            progress(
                MigrationObservation::Succeeded,
                WorkloadObservation::Available {
                    image: "r/ahlt:2".into(),
                    available: 1,
                },
                IngressObservation::NotRequested,
            ),
        );
        let n = next_status(&s, &obs, t(100));
        assert_eq!(cond(&n, INGRESS_READY).reason, reason::NOT_REQUESTED);
        assert_eq!(cond(&n, INGRESS_READY).last_transition_time, Time(t(0)));
        // Flip: time moves.
        let obs = reconciled(
            1,
            progress(
                MigrationObservation::Failed {
                    message: "job failed".into(),
                },
                WorkloadObservation::Available {
                    image: "r/ahlt:2".into(),
                    available: 1,
                },
                IngressObservation::Configured,
            ),
        );
        let n = next_status(&s, &obs, t(200));
        assert_eq!(
            cond(&n, MIGRATIONS_APPLIED).last_transition_time,
            Time(t(200))
        );
        assert_eq!(cond(&n, DATABASE_READY).last_transition_time, Time(t(0)));
    }

    #[test]
    fn image_moves_only_when_new_pods_are_available() {
        let s = ready_status_for(1, t(0));
        let mut p = progress(
            MigrationObservation::Succeeded,
            WorkloadObservation::RollingOut {
                image: "r/ahlt:3".into(),
                available: 1,
            },
            IngressObservation::Configured,
        );
        p.spec_image = "r/ahlt:3".into();
        let n = next_status(&s, &reconciled(2, p.clone()), t(10));
        assert_eq!(n.image.as_deref(), Some("r/ahlt:2"));
        assert_eq!(n.migrated_image.as_deref(), Some("r/ahlt:3"));
        assert_eq!(cond(&n, READY).status, "False");
        assert_eq!(cond(&n, READY).reason, reason::PROGRESSING);
        assert_eq!(cond(&n, WORKLOAD_AVAILABLE).reason, reason::ROLLING_OUT);

        p.workload = WorkloadObservation::Available {
            image: "r/ahlt:3".into(),
            available: 1,
        };
        let n = next_status(&n, &reconciled(2, p), t(20));
        assert_eq!(n.image.as_deref(), Some("r/ahlt:3"));
        assert_eq!(cond(&n, READY).status, "True");
    }

    #[test]
    fn failed_migration_keeps_old_image_and_says_why() {
        let s = ready_status_for(1, t(0));
        let mut p = progress(
            MigrationObservation::Failed {
                message: "BackoffLimitExceeded".into(),
            },
            WorkloadObservation::Available {
                image: "r/ahlt:2".into(),
                available: 1,
            },
            IngressObservation::Configured,
        );
        p.spec_image = "r/ahlt:1".into();
        let n = next_status(&s, &reconciled(2, p), t(10));
        assert_eq!(n.image.as_deref(), Some("r/ahlt:2"));
        assert_eq!(cond(&n, READY).reason, reason::MIGRATION_FAILED);
        assert_eq!(cond(&n, MIGRATIONS_APPLIED).status, "False");
        assert!(
            cond(&n, MIGRATIONS_APPLIED)
                .message
                .contains("BackoffLimitExceeded")
        );
        let events = transition_events(&s, &n);
        assert_eq!(
            events,
            vec![TransitionEvent {
                warning: true,
                reason: reason::MIGRATION_FAILED.into(),
                note: cond(&n, READY).message.clone(),
            }]
        );
        // The same failure again: no new event.
        assert!(transition_events(&n, &n).is_empty());
    }

    #[test]
    fn database_failure_is_reported_on_database_ready_and_ready() {
        let mut p = progress(
            MigrationObservation::NotStarted,
            WorkloadObservation::NotCreated,
            IngressObservation::Pending,
        );
        p.database = DatabaseObservation::Failed {
            reason: "Unreachable",
            message: "connection refused".into(),
        };
        let n = next_status(&AhltEnvironmentStatus::default(), &reconciled(1, p), t(0));
        assert_eq!(cond(&n, DATABASE_READY).status, "False");
        assert_eq!(cond(&n, DATABASE_READY).reason, "Unreachable");
        assert_eq!(cond(&n, READY).reason, "Unreachable");
        assert_eq!(n.database, None);
        let events = transition_events(&AhltEnvironmentStatus::default(), &n);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].reason, "Unreachable");
    }

    #[test]
    fn invalid_and_suspended_touch_only_ready() {
        let s = ready_status_for(1, t(0));
        let n = next_status(
            &s,
            &Observations {
                generation: 2,
                outcome: Outcome::Invalid {
                    reason: "InvalidSpec",
                    message: "bad".into(),
                },
            },
            t(5),
        );
        assert_eq!(cond(&n, READY).reason, "InvalidSpec");
        assert_eq!(cond(&n, READY).observed_generation, Some(2));
        assert_eq!(cond(&n, DATABASE_READY), cond(&s, DATABASE_READY));
        assert_eq!(transition_events(&s, &n).len(), 1);

        let n = next_status(
            &s,
            &Observations {
                generation: 2,
                outcome: Outcome::Suspended,
            },
            t(5),
        );
        assert_eq!(cond(&n, READY).reason, reason::SUSPENDED);
        assert_eq!(n.image, s.image);
        assert!(transition_events(&s, &n).is_empty());
    }

    #[test]
    fn first_creation_waits_for_migrations() {
        let p = progress(
            MigrationObservation::Running,
            WorkloadObservation::NotCreated,
            IngressObservation::Pending,
        );
        let n = next_status(&AhltEnvironmentStatus::default(), &reconciled(1, p), t(0));
        assert_eq!(cond(&n, READY).reason, reason::PROGRESSING);
        assert_eq!(cond(&n, MIGRATIONS_APPLIED).reason, reason::RUNNING);
        assert_eq!(cond(&n, WORKLOAD_AVAILABLE).reason, reason::NOT_CREATED);
        assert_eq!(cond(&n, INGRESS_READY).status, "False");
        assert_eq!(n.image, None);
        assert_eq!(n.replicas, Some(0));
        assert!(transition_events(&AhltEnvironmentStatus::default(), &n).is_empty());
    }

    #[test]
    fn ready_true_emits_a_normal_event_once() {
        let s = ready_status_for(1, t(0));
        let events = transition_events(&AhltEnvironmentStatus::default(), &s);
        assert_eq!(events.len(), 1);
        assert!(!events[0].warning);
        assert_eq!(ready_status(&s), "True");
    }

    fn with_graph(graph: GraphObservation) -> Progress {
        let mut p = progress(
            MigrationObservation::Succeeded,
            WorkloadObservation::Available {
                image: "r/ahlt:2".into(),
                available: 1,
            },
            IngressObservation::Configured,
        );
        p.graph = graph;
        p
    }

    #[test]
    fn a_resync_reports_resyncing_then_synced_and_stays_put() {
        let s = ready_status_for(1, t(0));
        let running = GraphObservation::Resyncing {
            image: "r/ahlt:2".into(),
            request: None,
        };
        let n = next_status(&s, &reconciled(1, with_graph(running)), t(10));
        assert_eq!(cond(&n, GRAPH_SYNCED).status, "False");
        assert_eq!(cond(&n, GRAPH_SYNCED).reason, reason::RESYNCING);
        assert_eq!(
            cond(&n, READY).status,
            "True",
            "Ready does not wait for the graph"
        );
        assert!(
            transition_events(&s, &n).is_empty(),
            "in progress: no Warning"
        );

        let done = GraphObservation::Succeeded {
            image: "r/ahlt:2".into(),
            request: Some("r1".into()),
            completion_time: Some("2024-05-01T10:00:00Z".into()),
        };
        let synced = next_status(&n, &reconciled(1, with_graph(done)), t(20));
        assert_eq!(
            synced.graph,
            Some(GraphStatus {
                last_resync_request: Some("r1".into()),
                last_resync_time: Some("2024-05-01T10:00:00Z".into()),
                last_resync_image: Some("r/ahlt:2".into()),
                failed_job: None,
            })
        );
        let c = cond(&synced, GRAPH_SYNCED);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", reason::SYNCED)
        );
        assert!(
            c.message.contains("r/ahlt:2") && c.message.contains("r1"),
            "{}",
            c.message
        );
        assert_eq!(c.last_transition_time, Time(t(20)));

        // The Job is gone, status remembers: the same status, so nothing is written.
        let later = next_status(
            &synced,
            &reconciled(1, with_graph(GraphObservation::UpToDate)),
            t(99),
        );
        assert_eq!(later, synced);
    }

    #[test]
    fn a_failed_resync_warns_once_records_the_job_and_leaves_ready_alone() {
        let s = ready_status_for(1, t(0));
        let failed = GraphObservation::Failed {
            job: "dev-resync-abc".into(),
            image: "r/ahlt:2".into(),
            request: Some("r2".into()),
            message: "BackoffLimitExceeded: Job has reached the specified backoff limit".into(),
        };
        let n = next_status(&s, &reconciled(1, with_graph(failed.clone())), t(10));
        let c = cond(&n, GRAPH_SYNCED);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", reason::RESYNC_FAILED)
        );
        assert!(c.message.contains("BackoffLimitExceeded"));
        assert_eq!(cond(&n, READY).status, "True");
        assert_eq!(
            n.graph.as_ref().unwrap().failed_job.as_deref(),
            Some("dev-resync-abc")
        );
        let events = transition_events(&s, &n);
        assert_eq!(
            events,
            vec![TransitionEvent {
                warning: true,
                reason: reason::RESYNC_FAILED.into(),
                note: c.message.clone(),
            }]
        );
        let again = next_status(&n, &reconciled(1, with_graph(failed)), t(20));
        assert_eq!(again, n);
        assert!(transition_events(&n, &again).is_empty());
    }

    #[test]
    fn missing_credentials_are_a_warning_not_a_job() {
        let s = ready_status_for(1, t(0));
        let g = GraphObservation::CredentialsMissing {
            message: "Secret creds not found".into(),
        };
        let n = next_status(&s, &reconciled(1, with_graph(g)), t(10));
        assert_eq!(cond(&n, GRAPH_SYNCED).reason, reason::CREDENTIALS_MISSING);
        assert_eq!(cond(&n, READY).status, "True");
        assert_eq!(
            transition_events(&s, &n)[0].reason,
            reason::CREDENTIALS_MISSING
        );
    }

    #[test]
    fn graph_reasons_before_and_without_resyncs() {
        let s = AhltEnvironmentStatus::default();
        let reason_for = |g: GraphObservation| {
            let n = next_status(&s, &reconciled(1, with_graph(g)), t(0));
            let c = cond(&n, GRAPH_SYNCED).clone();
            (c.status, c.reason)
        };
        assert_eq!(
            reason_for(GraphObservation::WaitingForRollout {
                image: "r/ahlt:2".into()
            }),
            ("False".into(), reason::PENDING.into())
        );
        assert_eq!(
            reason_for(GraphObservation::UpToDate),
            ("Unknown".into(), reason::NOT_REQUESTED.into())
        );
        assert_eq!(
            reason_for(GraphObservation::NotConfigured),
            ("True".into(), reason::NOT_CONFIGURED.into())
        );
    }

    #[test]
    fn an_unobserved_graph_keeps_its_condition_for_the_new_generation() {
        let failed = GraphObservation::Failed {
            job: "j".into(),
            image: "r/ahlt:2".into(),
            request: None,
            message: "boom".into(),
        };
        let s = next_status(
            &AhltEnvironmentStatus::default(),
            &reconciled(1, with_graph(failed)),
            t(0),
        );
        let n = next_status(
            &s,
            &reconciled(2, with_graph(GraphObservation::Unobserved)),
            t(5),
        );
        let (before, after) = (cond(&s, GRAPH_SYNCED), cond(&n, GRAPH_SYNCED));
        assert_eq!(
            (
                &after.status,
                &after.reason,
                &after.message,
                &after.last_transition_time
            ),
            (
                &before.status,
                &before.reason,
                &before.message,
                &before.last_transition_time
            )
        );
        assert_eq!(after.observed_generation, Some(2));
    }
}
