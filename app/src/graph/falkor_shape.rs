//! How a resync row's own properties travel to FalkorDB: inline in the statement's CREATE
//! or SET map, by position, when every key is a validated identifier; otherwise as one map
//! added with `+=`.
//!
//! Inline is what makes a fresh resync fast: a `SET n += map` after a CREATE indexes the
//! node a second time, which costs FalkorDB as much as the CREATE itself
//! (docs/benchmarks.md). Keys reach the text only as `p_` plus a key that passed
//! [`is_valid_ident`], the rule labels follow; any other key sends its row down the map path.

use std::collections::{BTreeMap, btree_map::Entry};

use falkordb::FalkorValue;
use serde_json::Value;

use super::falkor::to_falkor;
use super::model::projected_properties;
use crate::store::ident::is_valid_ident;

/// Rows of a batch sharing an inline shape below this many travel as maps, so odd shapes
/// never mean many small statements.
const MIN_INLINE_ROWS: usize = 16;

/// How the own properties of a group of rows are written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Own {
    /// These encoded keys, in this order, by position after the fixed fields.
    Inline(Vec<String>),
    /// One map after the fixed fields.
    Map,
}

impl Own {
    /// `, key: row[first], …` to follow the fixed fields in a CREATE or SET map.
    pub(super) fn fields(&self, first: usize) -> String {
        match self {
            Own::Inline(keys) => keys
                .iter()
                .enumerate()
                .map(|(i, key)| format!(", {key}: row[{}]", first + i))
                .collect(),
            Own::Map => String::new(),
        }
    }

    /// `SET var += row[first]` when the properties travel as a map.
    pub(super) fn add(&self, var: &str, first: usize) -> String {
        match self {
            Own::Inline(_) => String::new(),
            Own::Map => format!("SET {var} += row[{first}]"),
        }
    }
}

/// A key the statement text may carry: `p_` and a validated identifier.
fn inlinable(encoded: &str) -> bool {
    encoded.strip_prefix("p_").is_some_and(is_valid_ident)
}

/// The row values of `properties` and how they travel, before grouping.
fn own_values(properties: &BTreeMap<String, Value>) -> (Own, Vec<FalkorValue>) {
    let projected: Vec<_> = projected_properties(properties).collect();
    if projected.iter().all(|(key, _)| inlinable(key)) {
        let (keys, values) = projected
            .into_iter()
            .map(|(key, value)| (key, to_falkor(value)))
            .unzip();
        (Own::Inline(keys), values)
    } else {
        (Own::Map, vec![as_map(projected.into_iter())])
    }
}

fn as_map(pairs: impl Iterator<Item = (String, super::model::PropertyValue)>) -> FalkorValue {
    FalkorValue::Map(pairs.map(|(key, value)| (key, to_falkor(value))).collect())
}

/// Items with the row values of their own properties (to follow the fixed fields).
pub(super) type Rows<'a, T> = Vec<(&'a T, Vec<FalkorValue>)>;

/// `items` grouped by how their own properties travel, each with its row values (to follow
/// the fixed fields). Small inline groups join the map group.
pub(super) fn by_own<'a, T>(
    items: &[&'a T],
    properties: impl Fn(&T) -> &BTreeMap<String, Value>,
) -> Vec<(Own, Rows<'a, T>)> {
    let mut groups: BTreeMap<Own, Rows<'a, T>> = BTreeMap::new();
    for item in items {
        let (own, values) = own_values(properties(item));
        groups.entry(own).or_default().push((item, values));
    }
    let small: Vec<Own> = groups
        .iter()
        .filter(|(own, rows)| matches!(own, Own::Inline(_)) && rows.len() < MIN_INLINE_ROWS)
        .map(|(own, _)| own.clone())
        .collect();
    for own in small {
        let Some(rows) = groups.remove(&own) else {
            continue;
        };
        let Own::Inline(keys) = own else { continue };
        let as_maps = rows.into_iter().map(|(item, values)| {
            let map = keys.iter().cloned().zip(values).collect();
            (item, vec![FalkorValue::Map(map)])
        });
        match groups.entry(Own::Map) {
            Entry::Occupied(mut group) => group.get_mut().extend(as_maps),
            Entry::Vacant(group) => {
                group.insert(as_maps.collect());
            }
        }
    }
    groups.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn props(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn only_validated_keys_reach_the_text() {
        assert!(inlinable("p_title"));
        assert!(inlinable("p_due_2"));
        for key in [
            "p_Title",
            "p_a b",
            "p_a`b",
            "p_",
            "title",
            "p_x}) DETACH DELETE (n",
        ] {
            assert!(!inlinable(key), "{key}");
        }
    }

    #[test]
    fn shared_shapes_go_inline_and_odd_ones_as_maps() {
        let common = props(&[("title", json!("t")), ("rank", json!(3))]);
        let odd = props(&[("Title", json!("t"))]);
        let rare = props(&[("only_here", json!(true))]);
        let mut items = vec![&common; MIN_INLINE_ROWS];
        items.push(&odd);
        items.push(&rare);
        let groups = by_own(&items, |p| p);

        assert_eq!(groups.len(), 2);
        let (inline, rows) = &groups[0];
        assert_eq!(
            *inline,
            Own::Inline(vec!["p_rank".to_string(), "p_title".to_string()])
        );
        assert_eq!(rows.len(), MIN_INLINE_ROWS);
        assert_eq!(
            rows[0].1,
            vec![FalkorValue::I64(3), FalkorValue::String("t".into())]
        );
        assert_eq!(inline.fields(6), ", p_rank: row[6], p_title: row[7]");
        assert_eq!(inline.add("n", 6), "");

        let (map, rows) = &groups[1];
        assert_eq!(*map, Own::Map);
        assert_eq!(rows.len(), 2, "the odd key and the rare shape");
        for (_, values) in rows {
            assert!(matches!(values.as_slice(), [FalkorValue::Map(m)] if m.len() == 1));
        }
        assert_eq!(map.fields(6), "");
        assert_eq!(map.add("n", 6), "SET n += row[6]");
    }
}
