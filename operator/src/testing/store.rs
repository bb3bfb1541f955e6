//! The fake API server's state: objects with resourceVersion, generation and field owners,
//! and the history of changes that watches replay. Every write goes through [`Store::commit`],
//! which applies the rules a real API server applies to every write:
//! - a write that changes nothing bumps nothing and emits no watch event;
//! - `generation` moves only when something outside metadata and status changed;
//! - for kinds with a status subresource, the main resource cannot change status and the
//!   status subresource can change nothing else;
//! - a delete of an object with finalizers only sets `deletionTimestamp`; the object goes
//!   when the last finalizer is removed, and its dependents (by ownerReference uid) with it.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::fields::{self, Managers};

/// A kind the fake serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub group_version: &'static str,
    pub plural: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub status_subresource: bool,
}

const fn kind(
    group_version: &'static str,
    plural: &'static str,
    kind: &'static str,
    status_subresource: bool,
) -> Kind {
    Kind {
        group_version,
        plural,
        kind,
        namespaced: true,
        status_subresource,
    }
}

/// Everything the operator reads or writes.
pub const KINDS: &[Kind] = &[
    kind("v1", "secrets", "Secret", false),
    kind("v1", "configmaps", "ConfigMap", false),
    kind("v1", "services", "Service", true),
    kind("apps/v1", "deployments", "Deployment", true),
    kind("batch/v1", "jobs", "Job", true),
    kind("networking.k8s.io/v1", "ingresses", "Ingress", true),
    kind("events.k8s.io/v1", "events", "Event", false),
    kind("coordination.k8s.io/v1", "leases", "Lease", false),
    kind(
        "ahlt.io/v1alpha1",
        "ahltenvironments",
        "AhltEnvironment",
        true,
    ),
    kind(
        "gateway.networking.k8s.io/v1",
        "httproutes",
        "HTTPRoute",
        true,
    ),
    kind("gateway.networking.k8s.io/v1", "gateways", "Gateway", true),
];

/// The Gateway API's group/version: optional in a cluster (see [`super::Options`]).
pub const GATEWAY_API: &str = "gateway.networking.k8s.io/v1";

pub fn find_kind(group_version: &str, plural: &str) -> Option<&'static Kind> {
    KINDS
        .iter()
        .find(|k| k.group_version == group_version && k.plural == plural)
}

/// The kind served under `plural` (plurals are unique among [`KINDS`]).
pub fn kind_of(plural: &str) -> &'static Kind {
    KINDS
        .iter()
        .find(|k| k.plural == plural)
        .unwrap_or_else(|| panic!("the fake API server does not serve {plural}"))
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub plural: &'static str,
    pub namespace: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct Stored {
    pub object: Value,
    pub managers: Managers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    Added,
    Modified,
    Deleted,
}

impl ChangeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
        }
    }
}

/// One entry of the watch history.
#[derive(Debug, Clone)]
pub struct Change {
    pub rv: u64,
    pub type_: ChangeType,
    pub plural: &'static str,
    pub namespace: String,
    pub object: Value,
}

/// An API error, answered as a `Status` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
        }
    }

    pub fn not_found(key: &Key) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{}\" not found", key.plural, key.name),
        )
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, "Conflict", message)
    }

    pub fn to_status(&self) -> Value {
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code,
        })
    }
}

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    Main,
    Status,
}

#[derive(Debug, Default)]
pub struct Store {
    pub rv: u64,
    next_uid: u64,
    pub objects: BTreeMap<Key, Stored>,
    pub history: Vec<Change>,
}

/// The API server's clock, in its format (RFC 3339, seconds).
fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

pub fn resource_version(object: &Value) -> Option<&str> {
    object["metadata"]["resourceVersion"].as_str()
}

fn without(object: &Value, fields: &[&str]) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        for f in fields {
            map.remove(*f);
        }
    }
    copy
}

impl Store {
    pub fn get(&self, key: &Key) -> Option<&Stored> {
        self.objects.get(key)
    }

    /// Stores `after` as the new state of `key` (absent: a create), following the rules in
    /// the module docs. `managers` are the field owners after the write. Returns the object
    /// as stored (or as it was, when nothing changed).
    pub fn commit(
        &mut self,
        key: &Key,
        mut after: Value,
        managers: Managers,
        subresource: Subresource,
    ) -> Value {
        let kind = kind_of(key.plural);
        let before = self.objects.get(key).cloned();
        if before.is_none() && kind.status_subresource && subresource == Subresource::Main {
            // Status is ignored on create, like the API server does.
            after.as_object_mut().map(|m| m.remove("status"));
        }
        if let Some(before) = &before {
            // Only the subresource's part may change; the rest stays as it was.
            match subresource {
                Subresource::Main if kind.status_subresource => match before.object.get("status") {
                    Some(status) => after["status"] = status.clone(),
                    None => {
                        after.as_object_mut().map(|m| m.remove("status"));
                    }
                },
                Subresource::Status => {
                    let status = after.get("status").cloned();
                    after = before.object.clone();
                    match status {
                        Some(status) => after["status"] = status,
                        None => {
                            after.as_object_mut().map(|m| m.remove("status"));
                        }
                    }
                }
                Subresource::Main => {}
            }
            // System metadata is the server's, whatever the client sent.
            for field in [
                "uid",
                "creationTimestamp",
                "generation",
                "resourceVersion",
                "deletionTimestamp",
            ] {
                match before.object["metadata"].get(field) {
                    Some(v) => after["metadata"][field] = v.clone(),
                    None => {
                        after["metadata"].as_object_mut().map(|m| m.remove(field));
                    }
                }
            }
            if after == before.object {
                self.objects.insert(
                    key.clone(),
                    Stored {
                        object: after.clone(),
                        managers,
                    },
                );
                return after;
            }
        }

        self.rv += 1;
        let rv = self.rv;
        after["apiVersion"] = json!(kind.group_version);
        after["kind"] = json!(kind.kind);
        after["metadata"]["name"] = json!(key.name);
        after["metadata"]["namespace"] = json!(key.namespace);
        after["metadata"]["resourceVersion"] = json!(rv.to_string());
        let type_ = match &before {
            None => {
                self.next_uid += 1;
                after["metadata"]["uid"] = json!(format!("uid-{}-{}", key.plural, self.next_uid));
                after["metadata"]["creationTimestamp"] = json!(now());
                after["metadata"]["generation"] = json!(1);
                ChangeType::Added
            }
            Some(before) => {
                let spec = |o: &Value| without(o, &["metadata", "status"]);
                if spec(&before.object) != spec(&after) {
                    let generation = before.object["metadata"]["generation"]
                        .as_i64()
                        .unwrap_or(0);
                    after["metadata"]["generation"] = json!(generation + 1);
                }
                ChangeType::Modified
            }
        };

        let finalizers_empty = after["metadata"]["finalizers"]
            .as_array()
            .is_none_or(Vec::is_empty);
        if after["metadata"].get("deletionTimestamp").is_some() && finalizers_empty {
            self.objects.remove(key);
            self.record(ChangeType::Deleted, key, after.clone());
            self.collect_garbage(&after);
            return after;
        }
        self.objects.insert(
            key.clone(),
            Stored {
                object: after.clone(),
                managers,
            },
        );
        self.record(type_, key, after.clone());
        after
    }

    fn record(&mut self, type_: ChangeType, key: &Key, object: Value) {
        self.history.push(Change {
            rv: self.rv,
            type_,
            plural: key.plural,
            namespace: key.namespace.clone(),
            object,
        });
    }

    /// Deletes `key`: with finalizers it only gets a deletionTimestamp.
    pub fn delete(&mut self, key: &Key) -> Result<Value, ApiError> {
        let stored = self
            .objects
            .get(key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(key))?;
        let has_finalizers = stored.object["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        if has_finalizers {
            if stored.object["metadata"].get("deletionTimestamp").is_some() {
                return Ok(stored.object);
            }
            let mut after = stored.object.clone();
            after["metadata"]["deletionTimestamp"] = json!(now());
            self.rv += 1;
            after["metadata"]["resourceVersion"] = json!(self.rv.to_string());
            self.objects.insert(
                key.clone(),
                Stored {
                    object: after.clone(),
                    managers: stored.managers,
                },
            );
            self.record(ChangeType::Modified, key, after.clone());
            return Ok(after);
        }
        self.objects.remove(key);
        self.rv += 1;
        let mut gone = stored.object;
        gone["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.record(ChangeType::Deleted, key, gone.clone());
        self.collect_garbage(&gone);
        Ok(gone)
    }

    /// The garbage collector: dependents of a deleted owner go too (background propagation).
    fn collect_garbage(&mut self, owner: &Value) {
        let Some(uid) = owner["metadata"]["uid"].as_str() else {
            return;
        };
        let dependents: Vec<Key> = self
            .objects
            .iter()
            .filter(|(_, s)| {
                s.object["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in dependents {
            let _ = self.delete(&key);
        }
    }

    /// Server-side apply of `config` by `manager`.
    pub fn apply(
        &mut self,
        key: &Key,
        config: &Value,
        manager: &str,
        force: bool,
        subresource: Subresource,
    ) -> Result<Value, ApiError> {
        if config["metadata"]["name"].as_str() != Some(key.name.as_str()) {
            return Err(ApiError::new(
                400,
                "BadRequest",
                "metadata.name in the body does not match the URL",
            ));
        }
        let (mut object, mut managers) = match self.objects.get(key) {
            Some(s) => (s.object.clone(), s.managers.clone()),
            None => (Value::Null, Managers::new()),
        };
        fields::apply(&mut object, &mut managers, manager, config, force).map_err(|conflicts| {
            let list: Vec<String> = conflicts
                .iter()
                .map(|c| format!("conflict with \"{}\": {}", c.manager, c.path))
                .collect();
            ApiError::conflict(format!(
                "Apply failed with {} conflicts: {}",
                list.len(),
                list.join("; ")
            ))
        })?;
        Ok(self.commit(key, object, managers, subresource))
    }

    /// An update (PUT, merge or JSON patch) by `manager`: `change` turns the stored object into
    /// the new one or refuses.
    pub fn update(
        &mut self,
        key: &Key,
        manager: &str,
        subresource: Subresource,
        change: impl FnOnce(&Value) -> Result<Value, ApiError>,
    ) -> Result<Value, ApiError> {
        let stored = self
            .objects
            .get(key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(key))?;
        let after = change(&stored.object)?;
        let mut managers = stored.managers;
        fields::record_update(&mut managers, manager, &stored.object, &after);
        Ok(self.commit(key, after, managers, subresource))
    }

    /// A create (POST) by `manager`.
    pub fn create(&mut self, key: &Key, object: Value, manager: &str) -> Result<Value, ApiError> {
        if self.objects.contains_key(key) {
            return Err(ApiError::new(
                409,
                "AlreadyExists",
                format!("{} \"{}\" already exists", key.plural, key.name),
            ));
        }
        let mut managers = Managers::new();
        fields::record_update(&mut managers, manager, &Value::Null, &object);
        Ok(self.commit(key, object, managers, Subresource::Main))
    }
}
