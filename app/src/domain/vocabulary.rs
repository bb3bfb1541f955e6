//! The fixed vocabulary the base seed installs and the code relies on.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Entity types.
pub mod kind {
    pub const USER: &str = "user";
    pub const ROLE: &str = "role";
    pub const PERMISSION: &str = "permission";
    pub const TOR: &str = "tor";
    pub const TOR_FUNCTION: &str = "tor_function";
    pub const NAV_ITEM: &str = "nav_item";
    pub const RELATION_TYPE: &str = crate::store::RELATION_TYPE;
    // The meeting pipeline (see [`crate::domain::pipeline`]).
    pub const SUGGESTION: &str = "suggestion";
    pub const PROPOSAL: &str = "proposal";
    pub const MEETING: &str = "meeting";
    pub const AGENDA_POINT: &str = "agenda_point";
    pub const DECISION: &str = "decision";
    pub const MINUTES: &str = "minutes";
    pub const MINUTES_SECTION: &str = "minutes_section";
    pub const ACTION_ITEM: &str = "action_item";
    pub const COA: &str = "coa";
    pub const COA_SECTION: &str = "coa_section";
    pub const OPINION: &str = "opinion";
    pub const WORKFLOW_STATUS: &str = "workflow_status";
    pub const WORKFLOW_TRANSITION: &str = "workflow_transition";
    /// Every entity type of the pipeline, written only through its own endpoints.
    pub const PIPELINE: [&str; 13] = [
        SUGGESTION,
        PROPOSAL,
        MEETING,
        AGENDA_POINT,
        DECISION,
        MINUTES,
        MINUTES_SECTION,
        ACTION_ITEM,
        COA,
        COA_SECTION,
        OPINION,
        WORKFLOW_STATUS,
        WORKFLOW_TRANSITION,
    ];
}

/// Relation types (entities of type `relation_type`).
pub mod rel {
    /// user -> role
    pub const HAS_ROLE: &str = "has_role";
    /// role -> permission
    pub const HAS_PERMISSION: &str = "has_permission";
    /// role -> role whose permissions it also grants
    pub const INHERITS_ROLE: &str = "inherits_role";
    /// tor_function -> tor
    pub const BELONGS_TO_TOR: &str = "belongs_to_tor";
    /// user -> tor_function
    pub const FILLS_POSITION: &str = "fills_position";
    /// tor -> parent tor
    pub const REPORTS_TO: &str = "reports_to";
    /// tor -> tor whose work takes this one's outputs (see [`crate::domain::dependencies`])
    pub const FEEDS_INTO: &str = "feeds_into";
    /// tor -> tor that decides what this one cannot
    pub const ESCALATES_TO: &str = "escalates_to";
    /// suggestion -> tor
    pub const SUGGESTED_TO: &str = "suggested_to";
    /// suggestion -> the proposal accepting it created
    pub const SPAWNS_PROPOSAL: &str = "spawns_proposal";
    /// proposal -> tor
    pub const SUBMITTED_TO: &str = "submitted_to";
    /// meeting -> tor
    pub const MEETING_OF: &str = "meeting_of";
    /// agenda_point -> meeting
    pub const AGENDA_OF: &str = "agenda_of";
    /// proposal -> the agenda point scheduling it
    pub const SPAWNS_AGENDA_POINT: &str = "spawns_agenda_point";
    /// decision -> agenda_point
    pub const DECIDES: &str = "decides";
    /// minutes -> meeting
    pub const MINUTES_OF: &str = "minutes_of";
    /// minutes_section -> minutes
    pub const SECTION_OF: &str = "section_of";
    /// action_item -> minutes
    pub const ACTION_OF: &str = "action_of";
    /// action_item -> user who owns it
    pub const ASSIGNED_TO: &str = "assigned_to";
    /// user -> meeting (roll call; relation property `attendance`)
    pub const ATTENDED: &str = "attended";
    /// suggestion, proposal -> user who wrote it
    pub const AUTHORED_BY: &str = "authored_by";
    /// coa -> the agenda point that considers it
    pub const COA_FOR: &str = "coa_for";
    /// opinion -> agenda_point
    pub const OPINION_ON: &str = "opinion_on";
    /// opinion -> user who holds it
    pub const OPINION_BY: &str = "opinion_by";
    /// opinion -> the coa it prefers
    pub const PREFERS_COA: &str = "prefers_coa";
    /// workflow_transition -> workflow_status
    pub const TRANSITION_FROM: &str = "transition_from";
    /// workflow_transition -> workflow_status
    pub const TRANSITION_TO: &str = "transition_to";

    pub const ALL: [(&str, &str); 27] = [
        (HAS_ROLE, "Has role"),
        (HAS_PERMISSION, "Has permission"),
        (INHERITS_ROLE, "Inherits role"),
        (BELONGS_TO_TOR, "Belongs to ToR"),
        (FILLS_POSITION, "Fills position"),
        (REPORTS_TO, "Reports to"),
        (FEEDS_INTO, "Feeds into"),
        (ESCALATES_TO, "Escalates to"),
        (SUGGESTED_TO, "Suggested to"),
        (SPAWNS_PROPOSAL, "Spawns proposal"),
        (SUBMITTED_TO, "Submitted to"),
        (MEETING_OF, "Meeting of"),
        (AGENDA_OF, "On the agenda of"),
        (SPAWNS_AGENDA_POINT, "Spawns agenda point"),
        (DECIDES, "Decides"),
        (MINUTES_OF, "Minutes of"),
        (SECTION_OF, "Section of"),
        (ACTION_OF, "Action of"),
        (ASSIGNED_TO, "Assigned to"),
        (ATTENDED, "Attended"),
        (AUTHORED_BY, "Authored by"),
        (COA_FOR, "Course of action for"),
        (OPINION_ON, "Opinion on"),
        (OPINION_BY, "Opinion by"),
        (PREFERS_COA, "Prefers course of action"),
        (TRANSITION_FROM, "Transition from"),
        (TRANSITION_TO, "Transition to"),
    ];
}

/// System permissions, granted through roles.
pub mod perm {
    pub const USERS_VIEW: &str = "users.view";
    pub const USERS_MANAGE: &str = "users.manage";
    pub const ROLES_MANAGE: &str = "roles.manage";
    pub const TORS_VIEW: &str = "tors.view";
    pub const TORS_MANAGE: &str = "tors.manage";
    pub const ENTITIES_VIEW: &str = "entities.view";
    pub const ENTITIES_MANAGE: &str = "entities.manage";
    pub const AUDIT_VIEW: &str = "audit.view";
    pub const GRAPH_MANAGE: &str = "graph.manage";
    pub const DATA_MANAGE: &str = "data.manage";
    pub const WORKFLOW_MANAGE: &str = "workflow.manage";

    pub const ALL: [(&str, &str); 11] = [
        (USERS_VIEW, "View users"),
        (USERS_MANAGE, "Create and edit users"),
        (ROLES_MANAGE, "Edit roles and their permissions"),
        (TORS_VIEW, "View ToRs and the governance map"),
        (TORS_MANAGE, "Create and edit ToRs, functions and members"),
        (ENTITIES_VIEW, "Browse entities"),
        (
            ENTITIES_MANAGE,
            "Create, edit and delete entities and relations",
        ),
        (AUDIT_VIEW, "Read the audit log"),
        (
            GRAPH_MANAGE,
            "See the graph projection's state and run resyncs",
        ),
        (
            DATA_MANAGE,
            "Import and export all data (an import can grant any role)",
        ),
        (
            WORKFLOW_MANAGE,
            "Change which capability each workflow transition needs",
        ),
    ];
}

/// What someone may do on a ToR. Granted on every ToR through a role's permission of the
/// same name, or on one ToR through a function (position) of that ToR that the user fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Capability {
    #[serde(rename = "tor.view")]
    ViewTor,
    #[serde(rename = "tor.edit")]
    EditTor,
    #[serde(rename = "members.manage")]
    ManageMembers,
    #[serde(rename = "meeting.call")]
    CallMeeting,
    #[serde(rename = "agenda.set")]
    SetAgenda,
    #[serde(rename = "minutes.record")]
    RecordMinutes,
    #[serde(rename = "decision.vote")]
    Vote,
    #[serde(rename = "decision.approve")]
    ApproveDecisions,
}

impl Capability {
    pub const ALL: [Capability; 8] = [
        Capability::ViewTor,
        Capability::EditTor,
        Capability::ManageMembers,
        Capability::CallMeeting,
        Capability::SetAgenda,
        Capability::RecordMinutes,
        Capability::Vote,
        Capability::ApproveDecisions,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::ViewTor => "tor.view",
            Capability::EditTor => "tor.edit",
            Capability::ManageMembers => "members.manage",
            Capability::CallMeeting => "meeting.call",
            Capability::SetAgenda => "agenda.set",
            Capability::RecordMinutes => "minutes.record",
            Capability::Vote => "decision.vote",
            Capability::ApproveDecisions => "decision.approve",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Capability::ViewTor => "View the ToR",
            Capability::EditTor => "Edit the ToR",
            Capability::ManageMembers => "Manage members",
            Capability::CallMeeting => "Call meetings",
            Capability::SetAgenda => "Set the agenda",
            Capability::RecordMinutes => "Record minutes",
            Capability::Vote => "Vote on decisions",
            Capability::ApproveDecisions => "Approve decisions",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown capability {0:?}")]
pub struct UnknownCapability(pub String);

impl FromStr for Capability {
    type Err = UnknownCapability;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Capability::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCapability(s.to_owned()))
    }
}

/// Built-in roles: each inherits the one after it.
pub mod role {
    pub const ADMIN: &str = "admin";
    pub const EDITOR: &str = "editor";
    pub const VIEWER: &str = "viewer";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names_round_trip() {
        for c in Capability::ALL {
            assert_eq!(c.as_str().parse::<Capability>(), Ok(c));
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                serde_json::json!(c.as_str())
            );
        }
        assert!("tor.delete".parse::<Capability>().is_err());
    }
}
