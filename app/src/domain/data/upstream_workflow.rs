//! Upstream ahlt gates a workflow transition with a global permission
//! (`required_permission`); this app gates it with a capability on the item's ToR
//! (`required_capability`). Importing maps the one to the other where upstream's permission
//! stands for the same kind of work; exporting writes a permission back so upstream can read
//! the file. What cannot be mapped is imported as it is and reported: a transition without a
//! capability is never offered, so an administrator has to choose one at `/workflow`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::domain::Capability;
use crate::domain::pipeline::workflow::key;

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
pub fn add_permission(properties: &mut BTreeMap<String, Value>) {
    if properties.contains_key(PERMISSION) {
        return;
    }
    let text = |k: &str| properties.get(k).and_then(Value::as_str);
    let (Some(scope), Some(capability)) = (text(key::SCOPE), text(key::CAPABILITY)) else {
        return;
    };
    if let Ok(capability) = capability.parse::<Capability>() {
        let permission = permission_for(scope, capability);
        properties.insert(PERMISSION.to_owned(), json!(permission));
    }
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
