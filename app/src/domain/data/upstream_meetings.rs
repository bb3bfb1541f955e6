//! Upstream ties meetings, agenda points and minutes together differently: a meeting
//! `belongs_to_tor` its ToR (here `meeting_of`), an agenda point is `scheduled_for_meeting`
//! (here `agenda_of`) and also `belongs_to_tor` (here it reaches the ToR through its meeting),
//! and `minutes_of` runs from the meeting to the minutes (here from the minutes to the
//! meeting). Minutes sections hold `content`, `section_type` and `sequence_order` (here
//! `description`, `section_kind` and the sort order). Imports translate upstream's form to
//! this app's; exports write upstream's, so a file goes round unchanged.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Value, json};

use super::{Document, ImportReport, RelationRecord, parse_ref};
use crate::domain::pipeline::key::DESCRIPTION;
use crate::domain::pipeline::minutes::key::SECTION_KIND;
use crate::domain::{kind, rel};

const BELONGS_TO_TOR: &str = rel::BELONGS_TO_TOR;
const SCHEDULED_FOR_MEETING: &str = "scheduled_for_meeting";
const CONTENT: &str = "content";
const SECTION_TYPE: &str = "section_type";

fn end_type(reference: &str) -> &str {
    parse_ref(reference).map_or("", |(t, _)| t)
}

/// What an upstream relation becomes here: `None` to leave it out (an agenda point's
/// `belongs_to_tor`, which its meeting implies).
pub fn import_relation(record: &RelationRecord) -> Option<RelationRecord> {
    let (source, target) = (end_type(&record.source), end_type(&record.target));
    let mut translated = record.clone();
    match (record.relation_type.as_str(), source, target) {
        (BELONGS_TO_TOR, kind::MEETING, kind::TOR) => {
            translated.relation_type = rel::MEETING_OF.into()
        }
        (BELONGS_TO_TOR, kind::AGENDA_POINT, kind::TOR) => return None,
        (SCHEDULED_FOR_MEETING, kind::AGENDA_POINT, kind::MEETING) => {
            translated.relation_type = rel::AGENDA_OF.into()
        }
        (rel::MINUTES_OF, kind::MEETING, kind::MINUTES) => {
            std::mem::swap(&mut translated.source, &mut translated.target)
        }
        _ => {}
    }
    Some(translated)
}

/// This app's relations in upstream's form; an agenda point also `belongs_to_tor` its
/// meeting's ToR.
pub fn export_relations(relations: Vec<RelationRecord>) -> Vec<RelationRecord> {
    let meeting_tor: HashMap<String, String> = relations
        .iter()
        .filter(|r| r.relation_type == rel::MEETING_OF)
        .map(|r| (r.source.clone(), r.target.clone()))
        .collect();
    let mut out = Vec::with_capacity(relations.len());
    for mut r in relations {
        match (
            r.relation_type.as_str(),
            end_type(&r.source),
            end_type(&r.target),
        ) {
            (rel::MEETING_OF, kind::MEETING, kind::TOR) => r.relation_type = BELONGS_TO_TOR.into(),
            (rel::AGENDA_OF, kind::AGENDA_POINT, kind::MEETING) => {
                if let Some(tor) = meeting_tor.get(&r.target) {
                    out.push(RelationRecord {
                        relation_type: BELONGS_TO_TOR.into(),
                        source: r.source.clone(),
                        target: tor.clone(),
                        properties: BTreeMap::new(),
                    });
                }
                r.relation_type = SCHEDULED_FOR_MEETING.into();
            }
            (rel::MINUTES_OF, kind::MINUTES, kind::MEETING) => {
                std::mem::swap(&mut r.source, &mut r.target)
            }
            _ => {}
        }
        out.push(r);
    }
    out
}

/// What upstream keeps that this app cannot read yet, listed in the report (imported as
/// stored): JSON-in-text roll calls and action items, agenda points on no meeting, and
/// courses of action linked by `considers_coa`.
pub fn report_untranslated(report: &mut ImportReport, documents: &[Document]) {
    let scheduled: HashSet<&str> = documents
        .iter()
        .flat_map(|d| &d.relations)
        .filter(|r| r.relation_type == SCHEDULED_FOR_MEETING || r.relation_type == rel::AGENDA_OF)
        .map(|r| r.source.as_str())
        .collect();
    let filled = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .is_some_and(|t| !matches!(t.trim(), "" | "[]" | "{}"))
    };
    for e in documents.iter().flat_map(|d| &d.entities) {
        let reference = format!("{}:{}", e.entity_type, e.name);
        let why = match e.entity_type.as_str() {
            kind::MEETING if filled(e.properties.get("roll_call_data")) => {
                "its roll call (roll_call_data, JSON text) is not translated to attendance; kept as a property"
            }
            kind::MINUTES if filled(e.properties.get("structured_action_items")) => {
                "its action items (structured_action_items, JSON text) are not translated to action items; kept as a property"
            }
            kind::AGENDA_POINT if !scheduled.contains(reference.as_str()) => {
                "it is on no meeting (here every agenda point is on one), so no ToR's pages show it"
            }
            _ => continue,
        };
        report.not_mapped.push(format!("{reference}: {why}"));
    }
    for r in documents.iter().flat_map(|d| &d.relations) {
        if r.relation_type == "considers_coa" {
            report.not_mapped.push(format!(
                "relation considers_coa {} → {}: upstream's courses of action are not translated (here coa_for); kept as stored",
                r.source, r.target
            ));
        }
    }
}

/// Upstream's section types that differ from this app's section kinds.
const SECTION_TYPES: [(&str, &str); 1] = [("agenda_items", "agenda")];

/// On import: a minutes section's text and kind in this app's keys too (upstream's stay).
pub fn import_section(properties: &mut BTreeMap<String, Value>) -> Option<i32> {
    if let Some(content) = properties.get(CONTENT).cloned() {
        properties.entry(DESCRIPTION.to_owned()).or_insert(content);
    }
    if let Some(section_type) = properties.get(SECTION_TYPE).and_then(Value::as_str) {
        let kind = SECTION_TYPES
            .iter()
            .find(|(up, _)| *up == section_type)
            .map_or(section_type, |(_, ours)| ours)
            .to_owned();
        properties
            .entry(SECTION_KIND.to_owned())
            .or_insert(json!(kind));
    }
    match properties.get("sequence_order") {
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(Value::Number(n)) => n.as_i64().and_then(|n| i32::try_from(n).ok()),
        _ => None,
    }
}

/// On export: upstream's keys for a section, from this app's (which are the truth here: a
/// section edited here exports its new text); the order as `sequence_order`, the same
/// number as the sort order, so it reads back the same.
pub fn export_section(properties: &mut BTreeMap<String, Value>, sort_order: i32) {
    properties.insert("sequence_order".to_owned(), json!(sort_order.to_string()));
    if let Some(text) = properties.get(DESCRIPTION).cloned() {
        properties.insert(CONTENT.to_owned(), text);
    }
    if let Some(kind) = properties.get(SECTION_KIND).and_then(Value::as_str) {
        let section_type = SECTION_TYPES
            .iter()
            .find(|(_, ours)| *ours == kind)
            .map_or(kind, |(up, _)| up)
            .to_owned();
        properties.insert(SECTION_TYPE.to_owned(), json!(section_type));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relation(relation_type: &str, source: &str, target: &str) -> RelationRecord {
        RelationRecord {
            relation_type: relation_type.into(),
            source: source.into(),
            target: target.into(),
            properties: BTreeMap::new(),
        }
    }

    #[test]
    fn upstream_relations_translate_and_export_back() {
        let upstream = vec![
            relation("belongs_to_tor", "meeting:m", "tor:t"),
            relation("belongs_to_tor", "agenda_point:a", "tor:t"),
            relation("scheduled_for_meeting", "agenda_point:a", "meeting:m"),
            relation("minutes_of", "meeting:m", "minutes:x"),
            relation("belongs_to_tor", "tor_function:chair", "tor:t"),
        ];
        let ours: Vec<RelationRecord> = upstream.iter().filter_map(import_relation).collect();
        let kinds: Vec<(&str, &str, &str)> = ours
            .iter()
            .map(|r| {
                (
                    r.relation_type.as_str(),
                    r.source.as_str(),
                    r.target.as_str(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("meeting_of", "meeting:m", "tor:t"),
                ("agenda_of", "agenda_point:a", "meeting:m"),
                ("minutes_of", "minutes:x", "meeting:m"),
                ("belongs_to_tor", "tor_function:chair", "tor:t"),
            ]
        );
        let mut back = export_relations(ours);
        let mut expected = upstream;
        let key =
            |r: &RelationRecord| (r.relation_type.clone(), r.source.clone(), r.target.clone());
        back.sort_by_key(key);
        expected.sort_by_key(key);
        assert_eq!(back, expected);
    }

    #[test]
    fn sections_read_upstream_keys_and_write_them_back() {
        let mut properties = BTreeMap::from([
            (CONTENT.to_owned(), json!("1. Budget")),
            (SECTION_TYPE.to_owned(), json!("agenda_items")),
            ("sequence_order".to_owned(), json!("3")),
        ]);
        assert_eq!(import_section(&mut properties), Some(3));
        assert_eq!(properties.get(DESCRIPTION), Some(&json!("1. Budget")));
        assert_eq!(properties.get(SECTION_KIND), Some(&json!("agenda")));
        properties.insert(DESCRIPTION.to_owned(), json!("1. Budget (edited)"));
        export_section(&mut properties, 3);
        assert_eq!(properties.get(CONTENT), Some(&json!("1. Budget (edited)")));
        assert_eq!(properties.get(SECTION_TYPE), Some(&json!("agenda_items")));
        assert_eq!(properties.get("sequence_order"), Some(&json!("3")));
    }
}
