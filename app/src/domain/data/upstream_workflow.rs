//! Upstream ahlt gates a workflow transition with a global permission
//! (`required_permission`); this app gates it with a capability on the item's ToR
//! (`required_capability`). Importing maps the one to the other where upstream's permission
//! stands for the same kind of work; exporting writes a permission back so upstream can read
//! the file. What cannot be mapped is imported as it is and reported: a transition without a
//! capability is never offered, so an administrator has to choose one at `/workflow`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use sqlx::PgConnection;

use super::ImportReport;
use crate::domain::pipeline::workflow::key as wf;
use crate::domain::{Capability, DomainResult};

/// Upstream's property for a transition's gate.
pub const PERMISSION: &str = "required_permission";

/// Upstream's permissions for pipeline work and the capability that covers the same work.
/// Reading, writing and submitting one's own items is membership (`tor.view`); running the
/// agenda (reviewing suggestions, queueing, courses of action) is `agenda.set`; every
/// approval is `decision.approve`; writing minutes is `minutes.record`.
pub const PERMISSION_CAPABILITIES: [(&str, Capability); 22] = {
    use Capability::*;
    [
        ("suggestion.view", ViewTor),
        ("suggestion.create", ViewTor),
        ("proposal.view", ViewTor),
        ("proposal.create", ViewTor),
        ("proposal.submit", ViewTor),
        ("proposal.edit", ViewTor),
        ("agenda.view", ViewTor),
        ("suggestion.review", SetAgenda),
        ("agenda.create", SetAgenda),
        ("agenda.queue", SetAgenda),
        ("agenda.manage", SetAgenda),
        ("coa.create", SetAgenda),
        ("coa.edit", SetAgenda),
        ("agenda.participate", Vote),
        // First of the two: what an export writes for a proposal's decision.approve.
        ("proposal.approve", ApproveDecisions),
        ("proposal.review", ApproveDecisions),
        ("agenda.decide", ApproveDecisions),
        ("minutes.approve", ApproveDecisions),
        ("minutes.generate", RecordMinutes),
        ("minutes.edit", RecordMinutes),
        ("tor.edit", EditTor),
        ("tor.manage_members", ManageMembers),
    ]
};

/// The capability upstream's permission `permission` stands for; a capability's own name
/// (`meeting.call`) is itself. `None`: a global permission with no ToR counterpart
/// (`workflow.manage`, `users.edit`, ...) or a name nobody knows.
pub fn capability_for(permission: &str) -> Option<Capability> {
    PERMISSION_CAPABILITIES
        .iter()
        .find(|(p, _)| *p == permission)
        .map(|(_, c)| *c)
        .or_else(|| permission.parse().ok())
}

/// The permission written for upstream on export: the first of upstream's permissions for
/// `capability` named after the transition's scope (`proposal.approve` for a proposal),
/// else the first for the capability, else the capability's own name (upstream has no
/// permission for calling meetings).
pub fn permission_for(scope: &str, capability: Capability) -> String {
    let candidates = || {
        PERMISSION_CAPABILITIES
            .iter()
            .filter(move |(_, c)| *c == capability)
            .map(|(p, _)| *p)
    };
    let prefix = format!("{scope}.");
    candidates()
        .find(|p| p.starts_with(&prefix))
        .or_else(|| candidates().next())
        .unwrap_or(capability.as_str())
        .to_owned()
}

/// On export: a transition gated by a capability also names an upstream permission.
/// A permission already there stays when it stands for the same capability (upstream's
/// `proposal.review` is not rewritten to `proposal.approve`); one that no longer matches
/// (the gate was changed here) is replaced.
pub fn add_permission(properties: &mut BTreeMap<String, Value>) {
    let text = |k: &str| properties.get(k).and_then(Value::as_str);
    let (Some(scope), Some(capability)) = (text(wf::SCOPE), text(wf::CAPABILITY)) else {
        return;
    };
    if let Ok(capability) = capability.parse::<Capability>() {
        let current = text(PERMISSION).and_then(capability_for);
        if current == Some(capability) {
            return;
        }
        let permission = permission_for(scope, capability);
        properties.insert(PERMISSION.to_owned(), json!(permission));
    }
}

/// A workflow transition's gate in this app's terms: upstream's `required_permission`
/// mapped to `required_capability` (both kept, so the file goes back to upstream
/// intact). `None`: leave it out, because another transition already makes the same move.
pub(super) async fn gate(
    conn: &mut PgConnection,
    report: &mut ImportReport,
    reference: &str,
    name: &str,
    mut properties: BTreeMap<String, Value>,
) -> DomainResult<Option<BTreeMap<String, Value>>> {
    let text = |key: &str| {
        properties
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let (capability, permission) = (text(wf::CAPABILITY), text(PERMISSION));
    let (scope, from, to) = (text(wf::SCOPE), text(wf::FROM), text(wf::TO));
    let not_offered =
        "it is imported but not offered until an administrator chooses a capability at /workflow";
    match (capability, permission) {
        (Some(capability), _) if capability.parse::<Capability>().is_ok() => {}
        (Some(capability), _) => report.not_mapped.push(format!(
            "{reference}: {capability:?} is not a capability; {not_offered}"
        )),
        (None, Some(permission)) => match capability_for(&permission) {
            Some(capability) => {
                properties.insert(wf::CAPABILITY.to_owned(), json!(capability.as_str()));
                report.workflow_gates.push(format!(
                    "{reference}: upstream permission {permission} → capability {capability}"
                ));
            }
            None => report.not_mapped.push(format!(
                "{reference}: upstream permission {permission:?} is a global permission with no capability on a ToR; {not_offered}"
            )),
        },
        (None, None) => report.not_mapped.push(format!(
            "{reference}: names neither a permission nor a capability; {not_offered}"
        )),
    }
    let (Some(scope), Some(from), Some(to)) = (scope, from, to) else {
        return Ok(Some(properties));
    };
    let same_move: Option<String> = sqlx::query_scalar(
        "SELECT e.name FROM entities e WHERE e.entity_type = 'workflow_transition' \
           AND e.is_active AND e.name <> $1 \
           AND EXISTS (SELECT 1 FROM entity_properties p WHERE p.entity_id = e.id AND p.key = $2 AND p.value #>> '{}' = $3) \
           AND EXISTS (SELECT 1 FROM entity_properties p WHERE p.entity_id = e.id AND p.key = $4 AND p.value #>> '{}' = $5) \
           AND EXISTS (SELECT 1 FROM entity_properties p WHERE p.entity_id = e.id AND p.key = $6 AND p.value #>> '{}' = $7) \
         ORDER BY e.id LIMIT 1",
    )
    .bind(name)
    .bind(wf::SCOPE)
    .bind(&scope)
    .bind(wf::FROM)
    .bind(&from)
    .bind(wf::TO)
    .bind(&to)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(existing) = same_move {
        // Two transitions for one move would offer the same button twice.
        report
            .workflow_gates
            .retain(|line| !line.starts_with(&format!("{reference}:")));
        report.not_mapped.push(format!(
            "{reference}: the move {scope} {from} → {to} is already the transition {existing}; left out"
        ));
        return Ok(None);
    }
    Ok(Some(properties))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_permissions_map_to_the_capability_of_the_same_work() {
        assert_eq!(
            capability_for("suggestion.review"),
            Some(Capability::SetAgenda)
        );
        assert_eq!(
            capability_for("proposal.approve"),
            Some(Capability::ApproveDecisions)
        );
        assert_eq!(
            capability_for("meeting.call"),
            Some(Capability::CallMeeting)
        );
        assert_eq!(capability_for("workflow.manage"), None);
        assert_eq!(capability_for("nonsense"), None);
    }

    #[test]
    fn every_capability_written_back_maps_to_itself() {
        for scope in [
            "suggestion",
            "proposal",
            "meeting",
            "agenda_point",
            "minutes",
        ] {
            for (_, capability) in PERMISSION_CAPABILITIES {
                let permission = permission_for(scope, capability);
                assert_eq!(
                    capability_for(&permission),
                    Some(capability),
                    "{permission}"
                );
            }
            let permission = permission_for(scope, Capability::CallMeeting);
            assert_eq!(permission, "meeting.call");
        }
        assert_eq!(
            permission_for("proposal", Capability::ApproveDecisions),
            "proposal.approve"
        );
        assert_eq!(
            permission_for("minutes", Capability::ApproveDecisions),
            "minutes.approve"
        );
    }
}
