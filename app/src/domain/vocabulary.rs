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

    pub const ALL: [(&str, &str); 8] = [
        (HAS_ROLE, "Has role"),
        (HAS_PERMISSION, "Has permission"),
        (INHERITS_ROLE, "Inherits role"),
        (BELONGS_TO_TOR, "Belongs to ToR"),
        (FILLS_POSITION, "Fills position"),
        (REPORTS_TO, "Reports to"),
        (FEEDS_INTO, "Feeds into"),
        (ESCALATES_TO, "Escalates to"),
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

    pub const ALL: [(&str, &str); 10] = [
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
