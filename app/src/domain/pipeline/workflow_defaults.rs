//! The workflow the base seed installs: upstream ahlt's statuses and transitions for
//! suggestions and proposals, extended to meetings, agenda points and minutes.

use sqlx::PgConnection;

use super::workflow::key;
use crate::domain::{Capability, DomainResult, kind, rel};
use crate::store::{self, NewEntity, Properties};

/// (scope, code, label, initial, terminal)
type StatusSpec = (&'static str, &'static str, &'static str, bool, bool);
/// (scope, from, to, label, capability, requires outcome)
type TransitionSpec = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Capability,
    bool,
);

/// Statuses the base seed installs. `scheduled` and `decided` proposals, and `decided`
/// and `deferred` agenda points, are reached through the meeting, not a transition.
pub const DEFAULT_STATUSES: [StatusSpec; 21] = [
    ("suggestion", "open", "Open", true, false),
    ("suggestion", "accepted", "Accepted", false, true),
    ("suggestion", "rejected", "Rejected", false, true),
    ("proposal", "draft", "Draft", true, false),
    ("proposal", "submitted", "Submitted", false, false),
    ("proposal", "under_review", "Under review", false, false),
    (
        "proposal",
        "approved",
        "Approved (ready for the agenda)",
        false,
        false,
    ),
    ("proposal", "rejected", "Rejected", false, true),
    ("proposal", "scheduled", "Scheduled", false, false),
    ("proposal", "decided", "Decided", false, true),
    ("meeting", "projected", "Projected", true, false),
    ("meeting", "confirmed", "Confirmed", false, false),
    ("meeting", "in_progress", "In progress", false, false),
    ("meeting", "completed", "Completed", false, true),
    ("meeting", "cancelled", "Cancelled", false, true),
    ("agenda_point", "open", "Open", true, false),
    ("agenda_point", "decided", "Decided", false, true),
    ("agenda_point", "deferred", "Deferred", false, true),
    ("minutes", "draft", "Draft", true, false),
    ("minutes", "approved", "Approved", false, false),
    ("minutes", "distributed", "Distributed", false, true),
];

pub const DEFAULT_TRANSITIONS: [TransitionSpec; 16] = {
    use Capability::*;
    [
        ("suggestion", "open", "accepted", "Accept", SetAgenda, false),
        ("suggestion", "open", "rejected", "Reject", SetAgenda, true),
        ("proposal", "draft", "submitted", "Submit", ViewTor, false),
        (
            "proposal",
            "submitted",
            "under_review",
            "Start review",
            ApproveDecisions,
            false,
        ),
        (
            "proposal",
            "submitted",
            "draft",
            "Return for changes",
            ApproveDecisions,
            true,
        ),
        (
            "proposal",
            "under_review",
            "approved",
            "Approve",
            ApproveDecisions,
            false,
        ),
        (
            "proposal",
            "under_review",
            "rejected",
            "Reject",
            ApproveDecisions,
            true,
        ),
        (
            "meeting",
            "projected",
            "confirmed",
            "Confirm",
            CallMeeting,
            false,
        ),
        (
            "meeting",
            "projected",
            "cancelled",
            "Cancel",
            CallMeeting,
            true,
        ),
        (
            "meeting",
            "confirmed",
            "in_progress",
            "Start",
            CallMeeting,
            false,
        ),
        (
            "meeting",
            "confirmed",
            "cancelled",
            "Cancel",
            CallMeeting,
            true,
        ),
        (
            "meeting",
            "in_progress",
            "completed",
            "Complete",
            CallMeeting,
            false,
        ),
        (
            "agenda_point",
            "open",
            "decided",
            "Decide",
            ApproveDecisions,
            true,
        ),
        (
            "agenda_point",
            "open",
            "deferred",
            "Defer",
            SetAgenda,
            false,
        ),
        (
            "minutes",
            "draft",
            "approved",
            "Approve",
            ApproveDecisions,
            false,
        ),
        (
            "minutes",
            "approved",
            "distributed",
            "Distribute",
            RecordMinutes,
            false,
        ),
    ]
};

/// Installs the default statuses and transitions that are missing; returns what it created.
pub async fn seed(conn: &mut PgConnection) -> DomainResult<Vec<String>> {
    let mut created = Vec::new();
    for (i, (scope, code, label, initial, terminal)) in DEFAULT_STATUSES.iter().enumerate() {
        let name = format!("{scope}.{code}");
        if store::find_entity(&mut *conn, kind::WORKFLOW_STATUS, &name)
            .await?
            .is_some()
        {
            continue;
        }
        let mut new = NewEntity::new(kind::WORKFLOW_STATUS, &name)
            .label(label)
            .property(key::SCOPE, *scope)
            .property(key::CODE, *code)
            .property(key::IS_INITIAL, *initial)
            .property(key::IS_TERMINAL, *terminal);
        new.sort_order = i as i32;
        store::create_entity(conn, &new).await?;
        created.push(format!("{}:{name}", kind::WORKFLOW_STATUS));
    }
    for (i, (scope, from, to, label, capability, outcome)) in DEFAULT_TRANSITIONS.iter().enumerate()
    {
        let name = format!("{scope}.{from}_to_{to}");
        if store::find_entity(&mut *conn, kind::WORKFLOW_TRANSITION, &name)
            .await?
            .is_some()
        {
            continue;
        }
        let mut new = NewEntity::new(kind::WORKFLOW_TRANSITION, &name)
            .label(label)
            .property(key::SCOPE, *scope)
            .property(key::FROM, *from)
            .property(key::TO, *to)
            .property(key::CAPABILITY, capability.as_str())
            .property(key::REQUIRES_OUTCOME, *outcome);
        new.sort_order = i as i32;
        let id = store::create_entity(conn, &new).await?.entity.id;
        for (relation, code) in [(rel::TRANSITION_FROM, from), (rel::TRANSITION_TO, to)] {
            if let Some(status) = store::find_entity(
                &mut *conn,
                kind::WORKFLOW_STATUS,
                &format!("{scope}.{code}"),
            )
            .await?
            {
                store::relate(conn, relation, id, status.id, &Properties::new()).await?;
            }
        }
        created.push(format!("{}:{name}", kind::WORKFLOW_TRANSITION));
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::pipeline::workflow::{SCOPES, flag};
    use serde_json::json;

    #[test]
    fn every_default_transition_joins_two_seeded_statuses_of_its_scope() {
        let has = |scope: &str, code: &str| {
            DEFAULT_STATUSES
                .iter()
                .any(|(s, c, ..)| *s == scope && *c == code)
        };
        for (scope, from, to, ..) in DEFAULT_TRANSITIONS {
            assert!(SCOPES.contains(&scope), "{scope}");
            assert!(has(scope, from), "{scope}.{from}");
            assert!(has(scope, to), "{scope}.{to}");
            assert!(
                !DEFAULT_STATUSES
                    .iter()
                    .any(|(s, c, _, _, terminal)| *s == scope && *c == from && *terminal),
                "{scope}: nothing leaves the terminal status {from}"
            );
        }
        for scope in SCOPES {
            let initial = DEFAULT_STATUSES
                .iter()
                .filter(|(s, _, _, initial, _)| *s == scope && *initial)
                .count();
            assert_eq!(initial, 1, "{scope} has one initial status");
        }
    }

    #[test]
    fn upstream_string_flags_read_as_booleans() {
        assert!(flag(Some(json!("true"))));
        assert!(flag(Some(json!(true))));
        assert!(!flag(Some(json!("false"))));
        assert!(!flag(None));
    }
}
