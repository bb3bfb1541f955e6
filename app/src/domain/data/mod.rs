//! Import and export in upstream ahlt's native JSON format (its data manager's format, and
//! that of its `data/seed/*.json` files):
//!
//! ```json
//! {"entities": [{"entity_type": "tor", "name": "budget", "label": "Budget", "sort_order": 1,
//!                "properties": {"meeting_cadence": "monthly"}}],
//!  "relations": [{"relation_type": "feeds_into", "source": "tor:budget", "target": "tor:board",
//!                 "properties": {"is_blocking": "true"}}]}
//! ```
//!
//! Entities are identified by type and name, relations by type and their two ends written
//! `type:name`. Upstream writes every property value as a string; other JSON values are
//! accepted and kept. Fields this format does not know (upstream exports carry `id`, an
//! import payload may carry `conflict_mode`) are ignored; `is_active: false` marks an
//! inactive entity (left out when true).

mod export;
mod import;
mod upstream_items;
mod upstream_meetings;
pub mod upstream_workflow;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use export::export;
pub use import::{ImportReport, import};

/// A whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Document {
    #[serde(default)]
    pub entities: Vec<EntityRecord>,
    #[serde(default)]
    pub relations: Vec<RelationRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityRecord {
    /// Upstream's database id, read to resolve upstream's id-valued properties (an item's
    /// `submitted_by_id`); never written.
    #[serde(default, skip_serializing)]
    pub id: Option<i64>,
    pub entity_type: String,
    pub name: String,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub sort_order: i32,
    #[serde(default)]
    pub properties: BTreeMap<String, Value>,
    #[serde(default = "active", skip_serializing_if = "is_true")]
    pub is_active: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelationRecord {
    pub relation_type: String,
    /// `type:name` of the source entity.
    pub source: String,
    /// `type:name` of the target entity.
    pub target: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, Value>,
}

fn active() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

impl Document {
    /// Parses a file, naming the line and column of a syntax or shape error.
    pub fn parse(text: &str) -> Result<Document, String> {
        serde_json::from_str(text).map_err(|e| format!("not an ahlt data file: {e}"))
    }

    /// This document in a canonical order (entities by type and name, relations by type and
    /// ends), for comparing two exports.
    pub fn sorted(mut self) -> Document {
        self.entities
            .sort_by(|a, b| (&a.entity_type, &a.name).cmp(&(&b.entity_type, &b.name)));
        self.relations.sort_by(|a, b| {
            (&a.relation_type, &a.source, &a.target).cmp(&(&b.relation_type, &b.source, &b.target))
        });
        self
    }
}

/// What to do with an entity or relation that already exists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ConflictMode {
    /// Keep what is there (upstream's default).
    #[default]
    Skip,
    /// Update label, sort order and the properties the file names; other properties stay.
    Upsert,
    /// Refuse the whole import.
    Fail,
}

/// What to do with entity types this app has no pages for (upstream's `suggestion`,
/// `meeting`, ...) and relation types the database and the file do not declare.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum UnknownPolicy {
    /// Keep them: entities as generic entities (entity browser, API, export), relation
    /// types created.
    #[default]
    Import,
    /// Leave them out, with the relations that touch them.
    Skip,
    /// Refuse the whole import, naming them.
    Fail,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOptions {
    pub mode: ConflictMode,
    pub unknown: UnknownPolicy,
    /// Report what would change, then roll back.
    pub dry_run: bool,
}

/// Entity types this app knows.
pub const KNOWN_ENTITY_TYPES: [&str; 9] = [
    super::kind::USER,
    super::kind::ROLE,
    super::kind::PERMISSION,
    super::kind::TOR,
    super::kind::TOR_FUNCTION,
    super::kind::NAV_ITEM,
    super::kind::RELATION_TYPE,
    super::kind::WORKFLOW_STATUS,
    super::kind::WORKFLOW_TRANSITION,
];

/// Splits `type:name` (the type has no colon; the name may).
pub fn parse_ref(reference: &str) -> Option<(&str, &str)> {
    let (entity_type, name) = reference.split_once(':')?;
    (!entity_type.is_empty() && !name.is_empty()).then_some((entity_type, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_records_parse_with_their_extra_fields() {
        let doc = Document::parse(
            r#"{"conflict_mode": "upsert",
                "entities": [{"id": 7, "entity_type": "tor", "name": "a", "label": "A",
                              "sort_order": 2, "properties": {"status": "active"}}],
                "relations": [{"id": 9, "relation_type": "feeds_into", "source": "tor:a",
                               "target": "tor:b"}]}"#,
        )
        .unwrap();
        assert_eq!(doc.entities[0].sort_order, 2);
        assert!(doc.entities[0].is_active);
        assert_eq!(doc.relations[0].target, "tor:b");
        let text = serde_json::to_string(&doc).unwrap();
        assert!(
            !text.contains("is_active") && !text.contains("\"id\""),
            "{text}"
        );
        assert!(Document::parse(r#"{"entities": [{"name": "x"}]}"#).is_err());
    }

    #[test]
    fn references_split_at_the_first_colon() {
        assert_eq!(parse_ref("permission:a:b"), Some(("permission", "a:b")));
        assert_eq!(parse_ref("tor"), None);
        assert_eq!(parse_ref(":x"), None);
    }
}
