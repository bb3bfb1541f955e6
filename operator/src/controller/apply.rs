//! Writes to the API server, in one place: server-side apply of children (skipped when the
//! cluster already holds what the operator declares, see [`super::drift`]), status merge
//! patches and finalizer JSON patches.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::drift;
use super::error::{ApplyError, FinalizerError, StatusError, kind_of};
use crate::crd::{AhltEnvironment, AhltEnvironmentStatus};
use crate::names;

/// Annotation with the digest of what the operator declares for a child. Part of the
/// declared fields, so a field the operator stops declaring changes it and the next apply
/// removes that field (server-side apply drops fields its manager no longer sends).
pub const APPLIED_HASH: &str = "ahlt.io/applied-hash";

/// Digest of any serializable value (hex, 16 characters).
pub fn digest<T: Serialize>(value: &T) -> String {
    // Serializing k8s-openapi objects cannot fail: they are plain data.
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    hex::encode(&Sha256::digest(&bytes)[..8])
}

/// Sets [`APPLIED_HASH`] on `obj` to the digest of `obj` without it.
pub fn stamp<K: Resource + Serialize>(obj: &mut K) {
    obj.annotations_mut().remove(APPLIED_HASH);
    let hash = digest(obj);
    obj.annotations_mut().insert(APPLIED_HASH.to_owned(), hash);
}

/// True when `observed` holds every field `desired` declares (digest included).
pub fn is_current<K: Serialize>(desired: &K, observed: Option<&K>) -> bool {
    let json = |o: &K| serde_json::to_value(o).unwrap_or_default();
    observed.is_some_and(|o| drift::holds(&json(desired), &json(o)))
}

fn apply_params() -> PatchParams {
    PatchParams::apply(names::FIELD_MANAGER).force()
}

/// Applies a stamped child unless `observed` already holds it (no drift, no change); returns
/// the object as the server has it afterwards (or `observed` when nothing was sent).
pub async fn apply_child<K>(
    api: &Api<K>,
    desired: &K,
    observed: Option<&K>,
) -> Result<K, ApplyError>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Serialize
        + DeserializeOwned
        + Clone
        + Debug,
{
    if let Some(current) = observed
        && is_current(desired, Some(current))
    {
        return Ok(current.clone());
    }
    let name = desired.name_any();
    api.patch(&name, &apply_params(), &Patch::Apply(desired))
        .await
        .map_err(|source| ApplyError {
            verb: "apply",
            kind: kind_of::<K>(),
            name,
            source: Box::new(source),
        })
}

/// Deletes a child this environment owns (managed-by label and controller ownerReference).
/// The copy may come from a lagging cache: the delete carries its uid as a precondition, so
/// another object created meanwhile under the same name is never deleted, and a child
/// already gone is no error. Returns whether this call deleted it.
pub async fn delete_owned<K>(
    api: &Api<K>,
    child: &K,
    owner: &AhltEnvironment,
) -> Result<bool, ApplyError>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + DeserializeOwned
        + Clone
        + Debug,
{
    let managed = child
        .labels()
        .get("app.kubernetes.io/managed-by")
        .is_some_and(|v| v == names::MANAGED_BY);
    let owned = owner.uid().is_some_and(|uid| {
        child
            .owner_references()
            .iter()
            .any(|r| r.uid == uid && r.controller == Some(true))
    });
    let Some(uid) = child.uid().filter(|_| managed && owned) else {
        return Ok(false);
    };
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..DeleteParams::background()
    };
    match api.delete(&child.name_any(), &params).await {
        Ok(_) => Ok(true),
        // Gone already, or another object by now (the uid precondition failed).
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Ok(false),
        Err(source) => Err(ApplyError {
            verb: "delete",
            kind: kind_of::<K>(),
            name: child.name_any(),
            source: Box::new(source),
        }),
    }
}

/// The JSON merge patch that turns `current` into `next`: fields `next` lacks are nulled.
pub fn status_patch(current: &AhltEnvironmentStatus, next: &AhltEnvironmentStatus) -> Value {
    let mut body = serde_json::to_value(next).unwrap_or_default();
    let old = serde_json::to_value(current).unwrap_or_default();
    if let (Value::Object(new_fields), Value::Object(old_fields)) = (&mut body, old) {
        for key in old_fields.keys() {
            new_fields.entry(key.clone()).or_insert(Value::Null);
        }
    }
    json!({ "status": body })
}

/// Writes `next` unless it equals `current`. Returns whether a request was sent.
pub async fn write_status(
    api: &Api<AhltEnvironment>,
    env: &AhltEnvironment,
    current: &AhltEnvironmentStatus,
    next: &AhltEnvironmentStatus,
) -> Result<bool, StatusError> {
    if current == next {
        return Ok(false);
    }
    let patch = status_patch(current, next);
    api.patch_status(
        &env.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(|source| StatusError {
        name: env.name_any(),
        source: Box::new(source),
    })?;
    Ok(true)
}

/// Adds or removes [`names::FINALIZER`] with a JSON patch that first tests the list it read:
/// a concurrent change of the list fails the patch instead of being overwritten, and no
/// resourceVersion precondition is needed (one that a status write earlier in the same pass
/// would already have made stale). When the test fails because the pass saw an older copy
/// (the watch cache lags behind the operator's own last write), the object is read again and
/// the change made on the fresh list, or found already made.
pub async fn set_finalizer(
    api: &Api<AhltEnvironment>,
    env: &AhltEnvironment,
    present: bool,
) -> Result<(), FinalizerError> {
    let error = |source| FinalizerError {
        action: if present { "adding" } else { "removing" },
        name: env.name_any(),
        source: Box::new(source),
    };
    match patch_finalizer(api, env, present).await {
        Err(kube::Error::Api(status)) if status.code == 422 || status.code == 409 => {
            let fresh = api.get(&env.name_any()).await.map_err(error)?;
            patch_finalizer(api, &fresh, present).await.map_err(error)
        }
        other => other.map_err(error),
    }
}

/// One JSON patch of the finalizer list as `env` has it; nothing when already as wanted.
async fn patch_finalizer(
    api: &Api<AhltEnvironment>,
    env: &AhltEnvironment,
    present: bool,
) -> Result<(), kube::Error> {
    let current = env.finalizers();
    let has = current.iter().any(|f| f == names::FINALIZER);
    if has == present {
        return Ok(());
    }
    let test = if env.meta().finalizers.is_none() {
        json!({"op": "test", "path": "/metadata/finalizers", "value": null})
    } else {
        json!({"op": "test", "path": "/metadata/finalizers", "value": current})
    };
    let change = if present && current.is_empty() {
        json!({"op": "add", "path": "/metadata/finalizers", "value": [names::FINALIZER]})
    } else if present {
        json!({"op": "add", "path": "/metadata/finalizers/-", "value": names::FINALIZER})
    } else {
        let index = current
            .iter()
            .position(|f| f == names::FINALIZER)
            .unwrap_or_default();
        json!({"op": "remove", "path": format!("/metadata/finalizers/{index}")})
    };
    let patch: json_patch::Patch =
        serde_json::from_value(json!([test, change])).expect("a well-formed JSON patch");
    api.patch(
        &env.name_any(),
        &PatchParams::default(),
        &Patch::<()>::Json(patch),
    )
    .await?;
    Ok(())
}
