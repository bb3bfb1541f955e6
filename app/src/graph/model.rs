//! The projection model shared by all backends.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{GraphError, GraphResult};
use crate::store::ident::is_valid_ident;

/// The label every projected entity carries, next to its type label.
pub const ENTITY_LABEL: &str = "Entity";

/// Prefix of projected EAV property keys, keeping them apart from the fixed fields
/// (`env`, `id`, `name`, ...): a property called `env` cannot move a node to another
/// environment.
const PROPERTY_PREFIX: &str = "p_";

/// Fixed field holding the id of the resync run that last wrote an item.
pub(crate) const RUN_FIELD: &str = "sync_run";

#[derive(Debug, Clone, PartialEq)]
pub struct GraphNode {
    pub env: String,
    pub id: i64,
    pub entity_type: String,
    pub name: String,
    pub label: String,
    pub is_active: bool,
    pub properties: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GraphEdge {
    pub env: String,
    pub id: i64,
    pub relation_type: String,
    pub source_id: i64,
    pub target_id: i64,
    pub properties: BTreeMap<String, Value>,
}

/// A relationship to delete: its id, and its source node's id, through which it is found
/// (relationship properties are not indexed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EdgeRef {
    pub id: i64,
    pub source_id: i64,
}

/// The type label of an entity type: `E_<type>`, only for valid identifiers.
pub fn node_label(entity_type: &str) -> GraphResult<String> {
    if is_valid_ident(entity_type) {
        Ok(format!("E_{entity_type}"))
    } else {
        Err(GraphError::InvalidIdent(entity_type.to_string()))
    }
}

/// The relationship type of a relation type: `R_<type>`, only for valid identifiers.
pub fn relationship_type(relation_type: &str) -> GraphResult<String> {
    if is_valid_ident(relation_type) {
        Ok(format!("R_{relation_type}"))
    } else {
        Err(GraphError::InvalidIdent(relation_type.to_string()))
    }
}

/// Graph property key of an EAV property key: `p_` plus the key with `%` and the
/// backtick (which FalkorDB cannot quote) percent-encoded. Reversed by
/// [`decode_property_key`].
pub fn encode_property_key(key: &str) -> String {
    let mut out = String::with_capacity(PROPERTY_PREFIX.len() + key.len());
    out.push_str(PROPERTY_PREFIX);
    for c in key.chars() {
        match c {
            '%' => out.push_str("%25"),
            '`' => out.push_str("%60"),
            c => out.push(c),
        }
    }
    out
}

/// The EAV property key of a graph property key, `None` for fixed fields.
pub fn decode_property_key(key: &str) -> Option<String> {
    let encoded = key.strip_prefix(PROPERTY_PREFIX)?;
    let mut out = String::with_capacity(encoded.len());
    let mut rest = encoded;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("%25") => out.push('%'),
            Some("%60") => out.push('`'),
            _ => return None,
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// A property value as graphs can store it: scalars, and homogeneous lists of strings or
/// integers natively (so Cypher can test membership, e.g. a function's capabilities);
/// other arrays and objects as JSON text. Null is "no property".
#[derive(Debug, Clone, PartialEq)]
pub enum PropertyValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    StrList(Vec<String>),
    IntList(Vec<i64>),
    Json(String),
}

impl PropertyValue {
    /// How `value` is stored; `None` for null.
    pub fn of(value: &Value) -> Option<PropertyValue> {
        Some(match value {
            Value::Null => return None,
            Value::Bool(b) => PropertyValue::Bool(*b),
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => PropertyValue::Int(i),
                (None, Some(f)) if n.is_f64() => PropertyValue::Float(f),
                // u64 beyond i64: keep every digit.
                _ => PropertyValue::Str(n.to_string()),
            },
            Value::String(s) => PropertyValue::Str(s.clone()),
            Value::Array(items) => {
                if let Some(strings) = items
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect()
                {
                    PropertyValue::StrList(strings)
                } else if let Some(ints) = items.iter().map(Value::as_i64).collect() {
                    PropertyValue::IntList(ints)
                } else {
                    PropertyValue::Json(value.to_string())
                }
            }
            Value::Object(_) => PropertyValue::Json(value.to_string()),
        })
    }

    /// The JSON a graph read gives back for this value (the projection of `value`).
    pub fn projected(value: &Value) -> Option<Value> {
        Some(match PropertyValue::of(value)? {
            PropertyValue::Bool(b) => Value::Bool(b),
            PropertyValue::Int(i) => Value::from(i),
            PropertyValue::Float(f) => Value::from(f),
            PropertyValue::Str(s) | PropertyValue::Json(s) => Value::String(s),
            PropertyValue::StrList(items) => Value::from(items),
            PropertyValue::IntList(items) => Value::from(items),
        })
    }
}

/// The properties that reach the graph, keyed by their encoded graph keys: secrets and
/// nulls left out.
pub fn projected_properties(
    properties: &BTreeMap<String, Value>,
) -> impl Iterator<Item = (String, PropertyValue)> + '_ {
    properties.iter().filter_map(|(key, value)| {
        if is_secret(key, value) {
            return None;
        }
        Some((encode_property_key(key), PropertyValue::of(value)?))
    })
}

/// Secrets are never projected: credential-like keys and anything that looks like a
/// password hash.
pub fn is_secret(key: &str, value: &Value) -> bool {
    let key = key.to_ascii_lowercase();
    let secret_key = ["password", "secret", "token", "credential", "api_key"]
        .iter()
        .any(|word| key.contains(word));
    secret_key || contains_hash(value)
}

fn contains_hash(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains("$argon2"),
        Value::Array(items) => items.iter().any(contains_hash),
        Value::Object(map) => map.values().any(contains_hash),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_keys_round_trip() {
        for key in ["title", "a`b", "100%", "%60", "`) DELETE n //", "ü.{x}", ""] {
            let encoded = encode_property_key(key);
            assert!(!encoded.contains('`'), "{encoded}");
            assert_eq!(decode_property_key(&encoded).as_deref(), Some(key));
        }
        assert_eq!(decode_property_key("env"), None);
    }

    #[test]
    fn labels_only_from_identifiers() {
        assert_eq!(node_label("user").unwrap(), "E_user");
        assert_eq!(relationship_type("has_role").unwrap(), "R_has_role");
        for bad in ["User", "a`b", "x:Y", "a b", "", "a}) DETACH DELETE n"] {
            assert!(node_label(bad).is_err(), "{bad}");
            assert!(relationship_type(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lists_of_strings_or_integers_stay_lists() {
        use serde_json::json;
        let cases = [
            (json!(["vote", "chair"]), json!(["vote", "chair"])),
            (json!([1, 2]), json!([1, 2])),
            (json!([]), json!([])),
            (json!([1, "a"]), json!("[1,\"a\"]")),
            (json!({"a": 1}), json!("{\"a\":1}")),
            (json!(1.5), json!(1.5)),
            (json!(u64::MAX), json!(u64::MAX.to_string())),
        ];
        for (value, stored) in cases {
            assert_eq!(PropertyValue::projected(&value), Some(stored), "{value}");
        }
        assert_eq!(PropertyValue::of(&Value::Null), None);
    }

    #[test]
    fn secrets_are_recognised() {
        assert!(is_secret("password_hash", &Value::from("x")));
        assert!(is_secret("note", &Value::from("$argon2id$v=19$m=1$abc")));
        assert!(!is_secret("title", &Value::from("Chair")));
    }
}
