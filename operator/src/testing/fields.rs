//! Field ownership, as the API server tracks it for server-side apply: every leaf of an
//! object belongs to the managers that set it. An apply removes the leaves its manager no
//! longer declares (unless another manager owns them too), a forced apply takes conflicting
//! leaves over, and an update (merge/JSON patch, PUT) moves the leaves it changes to its
//! manager, which is what `kubectl set image` or `kubectl patch` do on a real cluster.
//!
//! Lists of objects that all carry one of [`LIST_KEYS`] are associative (merged by that
//! key, like `containers` by `name`); any other list is one atomic leaf.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

/// Keys that make a list of objects associative, in the order they are tried.
const LIST_KEYS: [&str; 5] = ["name", "type", "uid", "containerPort", "port"];

/// One step of a path: an object key, or the element of an associative list whose
/// `key` field equals `value`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Seg {
    Key(String),
    Item { key: String, value: String },
}

pub type Path = Vec<Seg>;

/// Leaves per manager.
pub type Managers = BTreeMap<String, BTreeSet<Path>>;

/// Fields the server owns: never part of what a manager declares.
fn is_system(path: &[Seg]) -> bool {
    const SYSTEM: [&str; 7] = [
        "resourceVersion",
        "generation",
        "uid",
        "creationTimestamp",
        "managedFields",
        "deletionTimestamp",
        "selfLink",
    ];
    match path {
        [Seg::Key(m), Seg::Key(f), ..] if m == "metadata" => SYSTEM.contains(&f.as_str()),
        _ => false,
    }
}

fn list_key(items: &[Value]) -> Option<&'static str> {
    if items.is_empty() {
        return None;
    }
    LIST_KEYS.into_iter().find(|key| {
        items
            .iter()
            .all(|i| i.get(key).is_some_and(|v| v.is_string() || v.is_number()))
    })
}

fn key_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Every leaf of `value` with its value; system metadata left out.
pub fn leaves(value: &Value) -> BTreeMap<Path, Value> {
    let mut out = BTreeMap::new();
    collect(value, &mut Vec::new(), &mut out);
    out.retain(|p, _| !p.is_empty() && !is_system(p));
    out
}

fn collect(value: &Value, path: &mut Path, out: &mut BTreeMap<Path, Value>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                path.push(Seg::Key(k.clone()));
                collect(v, path, out);
                path.pop();
            }
        }
        Value::Array(items) => match list_key(items) {
            Some(key) => {
                for item in items {
                    path.push(Seg::Item {
                        key: key.to_owned(),
                        value: key_string(&item[key]),
                    });
                    collect(item, path, out);
                    path.pop();
                }
            }
            None => {
                out.insert(path.clone(), value.clone());
            }
        },
        _ => {
            out.insert(path.clone(), value.clone());
        }
    }
}

/// The value at `path`, if any.
pub fn get<'a>(value: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    let mut at = value;
    for seg in path {
        at = match seg {
            Seg::Key(k) => at.get(k)?,
            Seg::Item { key, value } => at
                .as_array()?
                .iter()
                .find(|i| i.get(key).map(key_string).as_deref() == Some(value))?,
        };
    }
    Some(at)
}

/// Sets the leaf at `path`, creating objects and list elements on the way.
pub fn set(target: &mut Value, path: &[Seg], leaf: Value) {
    let Some((first, rest)) = path.split_first() else {
        *target = leaf;
        return;
    };
    let slot = match first {
        Seg::Key(k) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let map = target.as_object_mut().expect("object");
            map.entry(k.clone()).or_insert(Value::Null)
        }
        Seg::Item { key, value } => {
            if !target.is_array() {
                *target = Value::Array(Vec::new());
            }
            let items = target.as_array_mut().expect("array");
            let index = items
                .iter()
                .position(|i| i.get(key).map(key_string).as_deref() == Some(value));
            let index = index.unwrap_or_else(|| {
                let mut item = Map::new();
                item.insert(key.clone(), Value::String(value.clone()));
                items.push(Value::Object(item));
                items.len() - 1
            });
            &mut items[index]
        }
    };
    if rest.is_empty() {
        // A numeric list key (containerPort) keeps its type: the leaf carries it.
        *slot = leaf;
    } else {
        set(slot, rest, leaf);
    }
}

/// Removes the leaf at `path`; a list element left with nothing but its key goes too.
pub fn remove(target: &mut Value, path: &[Seg]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    match first {
        Seg::Key(k) => {
            let Some(map) = target.as_object_mut() else {
                return;
            };
            if rest.is_empty() {
                map.remove(k);
            } else if let Some(child) = map.get_mut(k) {
                remove(child, rest);
            }
        }
        Seg::Item { key, value } => {
            let Some(items) = target.as_array_mut() else {
                return;
            };
            let Some(index) = items
                .iter()
                .position(|i| i.get(key).map(key_string).as_deref() == Some(value.as_str()))
            else {
                return;
            };
            if rest.is_empty() {
                items.remove(index);
                return;
            }
            // The element's key goes with the element, once nothing else of it is left.
            let removes_key = matches!(rest, [Seg::Key(k)] if k == key);
            if !removes_key {
                remove(&mut items[index], rest);
            }
            let only_key = items[index]
                .as_object()
                .is_some_and(|o| o.keys().all(|k| k == key));
            if only_key {
                items.remove(index);
            }
        }
    }
}

/// Leaves another manager owns with a different value than `config` declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub manager: String,
    pub path: String,
}

pub fn path_string(path: &[Seg]) -> String {
    path.iter()
        .map(|s| match s {
            Seg::Key(k) => format!(".{k}"),
            Seg::Item { key, value } => format!("[{key}={value}]"),
        })
        .collect()
}

/// Server-side apply of `config` by `manager` to `object` (Null when it does not exist yet).
/// Without `force`, a leaf another manager owns with a different value is a conflict.
pub fn apply(
    object: &mut Value,
    managers: &mut Managers,
    manager: &str,
    config: &Value,
    force: bool,
) -> Result<(), Vec<Conflict>> {
    let declared = leaves(config);
    let mut conflicts = Vec::new();
    for (path, value) in &declared {
        let current = get(object, path);
        for (other, owned) in managers.iter() {
            if other != manager && owned.contains(path) && current != Some(value) {
                conflicts.push(Conflict {
                    manager: other.clone(),
                    path: path_string(path),
                });
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    for (other, owned) in managers.iter_mut() {
        if other != manager {
            owned.retain(|p| !declared.contains_key(p) || get(object, p) == declared.get(p));
        }
    }
    let previous = managers.remove(manager).unwrap_or_default();
    for path in previous.iter().filter(|p| !declared.contains_key(*p)) {
        let shared = managers.values().any(|owned| owned.contains(path));
        if !shared {
            remove(object, path);
        }
    }
    for (path, value) in &declared {
        set(object, path, value.clone());
    }
    managers.insert(manager.to_owned(), declared.into_keys().collect());
    managers.retain(|_, owned| !owned.is_empty());
    Ok(())
}

/// An update (not an apply) by `manager` turned `before` into `after`: the leaves it
/// changed are now its alone, removed leaves belong to nobody.
pub fn record_update(managers: &mut Managers, manager: &str, before: &Value, after: &Value) {
    let old = leaves(before);
    let new = leaves(after);
    let changed: Vec<&Path> = new
        .iter()
        .filter(|(p, v)| old.get(*p) != Some(*v))
        .map(|(p, _)| p)
        .collect();
    for owned in managers.values_mut() {
        owned.retain(|p| new.contains_key(p) && !changed.contains(&p));
    }
    let mine = managers.entry(manager.to_owned()).or_default();
    mine.extend(changed.into_iter().cloned());
    managers.retain(|_, owned| !owned.is_empty());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(image: &str, env: Value) -> Value {
        json!({"spec": {"template": {"spec": {"containers": [
            {"name": "ahlt", "image": image, "env": env}
        ]}}}})
    }

    #[test]
    fn an_apply_removes_what_its_manager_no_longer_declares() {
        let mut obj = Value::Null;
        let mut managers = Managers::new();
        let first = deployment(
            "a:1",
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]),
        );
        apply(&mut obj, &mut managers, "op", &first, true).unwrap();
        assert_eq!(obj, first);
        let second = deployment("a:2", json!([{"name": "A", "value": "1"}]));
        apply(&mut obj, &mut managers, "op", &second, true).unwrap();
        assert_eq!(obj, second);
    }

    #[test]
    fn an_update_takes_a_field_over_and_a_forced_apply_takes_it_back() {
        let mut obj = Value::Null;
        let mut managers = Managers::new();
        let desired = deployment("a:1", json!([]));
        apply(&mut obj, &mut managers, "op", &desired, true).unwrap();
        let before = obj.clone();
        obj["spec"]["template"]["spec"]["containers"][0]["image"] = json!("evil:1");
        record_update(&mut managers, "kubectl-set", &before, &obj);
        assert!(apply(&mut obj, &mut managers, "op", &desired, false).is_err());
        apply(&mut obj, &mut managers, "op", &desired, true).unwrap();
        assert_eq!(obj, desired);
        assert!(!managers.contains_key("kubectl-set"));
    }

    #[test]
    fn fields_of_other_managers_survive_an_apply() {
        let mut obj = Value::Null;
        let mut managers = Managers::new();
        let desired = json!({"metadata": {"annotations": {"a": "1"}}});
        apply(&mut obj, &mut managers, "op", &desired, true).unwrap();
        let before = obj.clone();
        obj["metadata"]["annotations"]["b"] = json!("2");
        record_update(&mut managers, "other", &before, &obj);
        apply(&mut obj, &mut managers, "op", &json!({}), true).unwrap();
        assert_eq!(obj, json!({"metadata": {"annotations": {"b": "2"}}}));
    }
}
