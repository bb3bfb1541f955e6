//! Condition types and reasons, typed, and the helpers that set conditions on a status.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::crd::AhltEnvironmentStatus;

/// The six conditions, in the order they appear (fixed, so equal states serialize equally).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionType {
    Ready,
    DatabaseReady,
    MigrationsApplied,
    WorkloadAvailable,
    IngressReady,
    GraphSynced,
}

impl ConditionType {
    pub const ALL: [ConditionType; 6] = [
        ConditionType::Ready,
        ConditionType::DatabaseReady,
        ConditionType::MigrationsApplied,
        ConditionType::WorkloadAvailable,
        ConditionType::IngressReady,
        ConditionType::GraphSynced,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ConditionType::Ready => "Ready",
            ConditionType::DatabaseReady => "DatabaseReady",
            ConditionType::MigrationsApplied => "MigrationsApplied",
            ConditionType::WorkloadAvailable => "WorkloadAvailable",
            ConditionType::IngressReady => "IngressReady",
            ConditionType::GraphSynced => "GraphSynced",
        }
    }
}

pub const READY: &str = ConditionType::Ready.as_str();
pub const DATABASE_READY: &str = ConditionType::DatabaseReady.as_str();
pub const MIGRATIONS_APPLIED: &str = ConditionType::MigrationsApplied.as_str();
pub const WORKLOAD_AVAILABLE: &str = ConditionType::WorkloadAvailable.as_str();
pub const INGRESS_READY: &str = ConditionType::IngressReady.as_str();
pub const GRAPH_SYNCED: &str = ConditionType::GraphSynced.as_str();

/// The reasons status itself sets. Failures of other systems bring their own bounded
/// reasons (the database's, the validator's); see [`crate::controller::all_reasons`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Progressing,
    Available,
    Suspended,
    Deleting,
    Provisioned,
    /// DatabaseReady and Ready: the spec names another database or role than the one the
    /// environment's data lives in; nothing is changed.
    DatabaseRenameRefused,
    Pending,
    Running,
    Succeeded,
    MigrationFailed,
    NotCreated,
    RollingOut,
    NotRequested,
    Configured,
    NotConfigured,
    /// IngressReady: every parent Gateway accepted the HTTPRoute.
    Accepted,
    /// IngressReady: spec.route is set, the cluster does not serve the Gateway API.
    GatewayApiMissing,
    /// IngressReady: a Gateway refused the route with a reason of its own.
    RouteNotAccepted,
    /// GraphSynced: the resync Job of the serving image runs.
    Resyncing,
    /// GraphSynced: the last resync covers the serving image and the latest request.
    Synced,
    /// GraphSynced: the resync Job failed; it is not retried until a new request or image.
    ResyncFailed,
    /// GraphSynced: the credentials Secret or its username/password keys are missing, so no
    /// Job is started (its pod could not start).
    CredentialsMissing,
}

impl Reason {
    pub const ALL: [Reason; 22] = [
        Reason::Progressing,
        Reason::Available,
        Reason::Suspended,
        Reason::Deleting,
        Reason::Provisioned,
        Reason::DatabaseRenameRefused,
        Reason::Pending,
        Reason::Running,
        Reason::Succeeded,
        Reason::MigrationFailed,
        Reason::NotCreated,
        Reason::RollingOut,
        Reason::NotRequested,
        Reason::Configured,
        Reason::NotConfigured,
        Reason::Accepted,
        Reason::GatewayApiMissing,
        Reason::RouteNotAccepted,
        Reason::Resyncing,
        Reason::Synced,
        Reason::ResyncFailed,
        Reason::CredentialsMissing,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::Progressing => "Progressing",
            Reason::Available => "Available",
            Reason::Suspended => "Suspended",
            Reason::Deleting => "Deleting",
            Reason::Provisioned => "Provisioned",
            Reason::DatabaseRenameRefused => "DatabaseRenameRefused",
            Reason::Pending => "Pending",
            Reason::Running => "Running",
            Reason::Succeeded => "Succeeded",
            Reason::MigrationFailed => "MigrationFailed",
            Reason::NotCreated => "NotCreated",
            Reason::RollingOut => "RollingOut",
            Reason::NotRequested => "NotRequested",
            Reason::Configured => "Configured",
            Reason::NotConfigured => "NotConfigured",
            Reason::Accepted => "Accepted",
            Reason::GatewayApiMissing => "GatewayAPIMissing",
            Reason::RouteNotAccepted => "RouteNotAccepted",
            Reason::Resyncing => "Resyncing",
            Reason::Synced => "Synced",
            Reason::ResyncFailed => "ResyncFailed",
            Reason::CredentialsMissing => "CredentialsMissing",
        }
    }

    /// Work in progress rather than a failure: no Warning event.
    pub const fn in_progress(self) -> bool {
        matches!(
            self,
            Reason::Progressing
                | Reason::Pending
                | Reason::Running
                | Reason::RollingOut
                | Reason::NotCreated
                | Reason::Suspended
                | Reason::Resyncing
                | Reason::Deleting
        )
    }

    pub fn parse(s: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// The reasons as strings, for code that compares with what status holds.
pub mod reason {
    use super::Reason;
    pub const PROGRESSING: &str = Reason::Progressing.as_str();
    pub const AVAILABLE: &str = Reason::Available.as_str();
    pub const SUSPENDED: &str = Reason::Suspended.as_str();
    pub const DELETING: &str = Reason::Deleting.as_str();
    pub const PROVISIONED: &str = Reason::Provisioned.as_str();
    pub const DATABASE_RENAME_REFUSED: &str = Reason::DatabaseRenameRefused.as_str();
    pub const PENDING: &str = Reason::Pending.as_str();
    pub const RUNNING: &str = Reason::Running.as_str();
    pub const SUCCEEDED: &str = Reason::Succeeded.as_str();
    pub const MIGRATION_FAILED: &str = Reason::MigrationFailed.as_str();
    pub const NOT_CREATED: &str = Reason::NotCreated.as_str();
    pub const ROLLING_OUT: &str = Reason::RollingOut.as_str();
    pub const NOT_REQUESTED: &str = Reason::NotRequested.as_str();
    pub const CONFIGURED: &str = Reason::Configured.as_str();
    pub const NOT_CONFIGURED: &str = Reason::NotConfigured.as_str();
    pub const ACCEPTED: &str = Reason::Accepted.as_str();
    pub const GATEWAY_API_MISSING: &str = Reason::GatewayApiMissing.as_str();
    pub const RESYNCING: &str = Reason::Resyncing.as_str();
    pub const SYNCED: &str = Reason::Synced.as_str();
    pub const RESYNC_FAILED: &str = Reason::ResyncFailed.as_str();
    pub const CREDENTIALS_MISSING: &str = Reason::CredentialsMissing.as_str();
}

pub(super) struct ConditionUpdate<'a> {
    pub type_: &'a str,
    pub status: &'a str,
    pub reason: &'a str,
    pub message: String,
}

pub(super) fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Sets one condition; `lastTransitionTime` moves only when its status flips.
pub(super) fn set_condition(
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
        ConditionType::ALL
            .iter()
            .position(|t| t.as_str() == c.type_)
            .unwrap_or(ConditionType::ALL.len())
    };
    conditions.sort_by_key(rank);
}

/// Status of the Ready condition ("True", "False", "Unknown"), for metrics.
pub fn ready_status(status: &AhltEnvironmentStatus) -> &str {
    find(&status.conditions, READY).map_or("Unknown", |c| c.status.as_str())
}
