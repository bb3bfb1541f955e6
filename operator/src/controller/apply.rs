//! Writes to the API server, in one place: server-side apply of children (skipped when the
//! child already carries the hash of the desired object), status and finalizer patches.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::error::Error;
use crate::crd::{AhltEnvironment, AhltEnvironmentStatus};
use crate::names;

/// Annotation with the digest of what the operator last applied to a child. An equal digest
/// means the apply would change nothing, so no request is sent (a no-op pass writes nothing).
pub const APPLIED_HASH: &str = "ahlt.io/applied-hash";

/// Digest of any serializable value (hex, 16 characters).
pub fn digest<T: Serialize>(value: &T) -> Result<String, Error> {
    let bytes = serde_json::to_vec(value).map_err(Error::Serialize)?;
    Ok(hex::encode(&Sha256::digest(&bytes)[..8]))
}

/// Sets [`APPLIED_HASH`] on `obj` to the digest of `obj` without it.
pub fn stamp<K: Resource + Serialize>(obj: &mut K) -> Result<(), Error> {
    obj.annotations_mut().remove(APPLIED_HASH);
    let hash = digest(obj)?;
    obj.annotations_mut().insert(APPLIED_HASH.to_owned(), hash);
    Ok(())
}

/// True when `observed` already carries the stamp of `desired`.
pub fn is_current<K: Resource>(desired: &K, observed: Option<&K>) -> bool {
    let hash = |o: &K| o.annotations().get(APPLIED_HASH).cloned();
    observed.is_some_and(|o| hash(o).is_some() && hash(o) == hash(desired))
}

fn apply_params() -> PatchParams {
    PatchParams::apply(names::FIELD_MANAGER).force()
}

/// Applies a stamped child unless `observed` is already current; returns the object as the
/// server has it afterwards (or `observed` when nothing was sent).
pub async fn apply_child<K>(api: &Api<K>, desired: &K, observed: Option<&K>) -> Result<K, Error>
where
    K: Resource<Scope = NamespaceResourceScope> + Serialize + DeserializeOwned + Clone + Debug,
{
    if let Some(current) = observed
        && is_current(desired, Some(current))
    {
        return Ok(current.clone());
    }
    let name = desired.name_any();
    Ok(api
        .patch(&name, &apply_params(), &Patch::Apply(desired))
        .await?)
}

/// Deletes a child this environment owns (managed-by label and controller ownerReference).
pub async fn delete_owned<K>(
    api: &Api<K>,
    child: &K,
    owner: &AhltEnvironment,
) -> Result<bool, Error>
where
    K: Resource<Scope = NamespaceResourceScope> + DeserializeOwned + Clone + Debug,
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
    if !(managed && owned) {
        return Ok(false);
    }
    api.delete(&child.name_any(), &DeleteParams::background())
        .await?;
    Ok(true)
}

/// The JSON merge patch that turns `current` into `next`: fields `next` lacks are nulled.
pub fn status_patch(
    current: &AhltEnvironmentStatus,
    next: &AhltEnvironmentStatus,
) -> Result<Value, Error> {
    let mut body = serde_json::to_value(next).map_err(Error::Serialize)?;
    let old = serde_json::to_value(current).map_err(Error::Serialize)?;
    if let (Value::Object(new_fields), Value::Object(old_fields)) = (&mut body, old) {
        for key in old_fields.keys() {
            new_fields.entry(key.clone()).or_insert(Value::Null);
        }
    }
    Ok(json!({ "status": body }))
}

/// Writes `next` unless it equals `current`. Returns whether a request was sent.
pub async fn write_status(
    api: &Api<AhltEnvironment>,
    env: &AhltEnvironment,
    current: &AhltEnvironmentStatus,
    next: &AhltEnvironmentStatus,
) -> Result<bool, Error> {
    if current == next {
        return Ok(false);
    }
    let patch = status_patch(current, next)?;
    api.patch_status(
        &env.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(true)
}

/// Merge patch of `metadata.finalizers`, guarded by resourceVersion so a concurrent change of
/// the list makes the request fail (409) instead of dropping someone else's finalizer.
pub async fn set_finalizers(
    api: &Api<AhltEnvironment>,
    env: &AhltEnvironment,
    finalizers: Vec<String>,
) -> Result<(), Error> {
    let patch = json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": env.resource_version(),
        }
    });
    api.patch(
        &env.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}
