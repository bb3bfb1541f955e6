//! What a reader may see through the generic entity browser and entities API.
//!
//! - Entity types with a permission of their own are listed, counted, shown and named (as the
//!   other end of a relation) only to readers holding that permission: users need
//!   `users.view`, roles and permissions `roles.manage`, ToRs and their functions
//!   `tors.view`. Everything else needs only `entities.view`.
//! - Personal and secret properties ([`is_sensitive_key`]: e-mail, phone, address, birth
//!   date, and any key naming a password, secret, token or credential) of any entity appear
//!   only to readers holding `users.view`.

use std::collections::BTreeSet;

use super::{kind, perm};
use crate::store::{EntityWithProperties, Neighbour};

/// The permission needed to see entities of `entity_type`, beyond `entities.view`.
pub fn type_permission(entity_type: &str) -> Option<&'static str> {
    match entity_type {
        kind::USER => Some(perm::USERS_VIEW),
        kind::ROLE | kind::PERMISSION => Some(perm::ROLES_MANAGE),
        kind::TOR | kind::TOR_FUNCTION => Some(perm::TORS_VIEW),
        t if kind::PIPELINE.contains(&t) => Some(perm::TORS_VIEW),
        _ => None,
    }
}

/// Every entity type with a permission of its own.
const PROTECTED_TYPES: [&str; 18] = [
    kind::USER,
    kind::ROLE,
    kind::PERMISSION,
    kind::TOR,
    kind::TOR_FUNCTION,
    kind::SUGGESTION,
    kind::PROPOSAL,
    kind::MEETING,
    kind::AGENDA_POINT,
    kind::DECISION,
    kind::MINUTES,
    kind::MINUTES_SECTION,
    kind::ACTION_ITEM,
    kind::COA,
    kind::COA_SECTION,
    kind::OPINION,
    kind::WORKFLOW_STATUS,
    kind::WORKFLOW_TRANSITION,
];

/// Whether a property key holds personal data or a secret.
pub fn is_sensitive_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    const EXACT: [&str; 12] = [
        "email",
        "e_mail",
        "mail",
        "phone",
        "telephone",
        "mobile",
        "address",
        "home_address",
        "birthday",
        "birth_date",
        "date_of_birth",
        "iban",
    ];
    const PARTS: [&str; 6] = [
        "email",
        "password",
        "secret",
        "token",
        "credential",
        "phone",
    ];
    EXACT.contains(&key.as_str()) || PARTS.iter().any(|p| key.contains(p))
}

/// One reader's view.
#[derive(Debug, Clone)]
pub struct Visibility {
    hidden_types: Vec<String>,
    personal_data: bool,
}

impl Visibility {
    pub fn for_permissions(permissions: &BTreeSet<String>) -> Self {
        Visibility {
            hidden_types: PROTECTED_TYPES
                .iter()
                .filter(|t| type_permission(t).is_some_and(|p| !permissions.contains(p)))
                .map(|t| (*t).to_owned())
                .collect(),
            personal_data: permissions.contains(perm::USERS_VIEW),
        }
    }

    /// Types this reader may not see (for SQL filters).
    pub fn hidden_types(&self) -> &[String] {
        &self.hidden_types
    }

    pub fn can_see_type(&self, entity_type: &str) -> bool {
        !self.hidden_types.iter().any(|t| t == entity_type)
    }

    /// `Err(permission)` when the reader may not see entities of `entity_type`.
    pub fn require_type(&self, entity_type: &str) -> Result<(), &'static str> {
        match type_permission(entity_type) {
            Some(p) if !self.can_see_type(entity_type) => Err(p),
            _ => Ok(()),
        }
    }

    /// Removes the properties this reader may not see.
    pub fn redact(&self, entity: &mut EntityWithProperties) {
        if !self.personal_data {
            entity.properties.retain(|key, _| !is_sensitive_key(key));
        }
    }

    /// Drops relations whose other end the reader may not see.
    pub fn neighbours(&self, neighbours: Vec<Neighbour>) -> Vec<Neighbour> {
        neighbours
            .into_iter()
            .filter(|n| self.can_see_type(&n.other_type))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewers_see_neither_users_nor_personal_data() {
        let viewer = Visibility::for_permissions(
            &[perm::ENTITIES_VIEW, perm::TORS_VIEW]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        );
        assert!(!viewer.can_see_type(kind::USER));
        assert!(!viewer.can_see_type(kind::ROLE));
        assert!(viewer.can_see_type(kind::TOR));
        assert!(viewer.can_see_type("probe"));
        assert_eq!(viewer.require_type(kind::USER), Err(perm::USERS_VIEW));
        for key in [
            "email",
            "Work_Email",
            "phone_number",
            "api_token",
            "password_hint",
        ] {
            assert!(is_sensitive_key(key), "{key}");
        }
        for key in ["description", "path", "capabilities"] {
            assert!(!is_sensitive_key(key), "{key}");
        }
    }
}
