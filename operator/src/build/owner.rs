//! The controller ownerReference every child carries.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;

use crate::crd::AhltEnvironment;

/// Why no ownerReference can be built; the variant name is the condition reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnerRefError {
    #[error("the AhltEnvironment has no metadata.name")]
    MissingName,
    #[error("the AhltEnvironment has no metadata.uid (it was not read from the API server)")]
    MissingUid,
}

impl OwnerRefError {
    pub fn reason(&self) -> &'static str {
        match self {
            OwnerRefError::MissingName => "MissingName",
            OwnerRefError::MissingUid => "MissingUid",
        }
    }
}

/// Controller reference to `env`: garbage collection deletes the children with it, and
/// `blockOwnerDeletion` keeps foreground deletion waiting for them.
pub fn owner_reference(env: &AhltEnvironment) -> Result<OwnerReference, OwnerRefError> {
    if env.meta().name.is_none() {
        return Err(OwnerRefError::MissingName);
    }
    let owner = env
        .controller_owner_ref(&())
        .ok_or(OwnerRefError::MissingUid)?;
    Ok(OwnerReference {
        block_owner_deletion: Some(true),
        ..owner
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::testing::cr;

    #[test]
    fn the_owner_reference_is_a_blocking_controller_reference() {
        let owner = owner_reference(&cr("dev", "ahlt-dev")).unwrap();
        assert_eq!(owner.api_version, "ahlt.io/v1alpha1");
        assert_eq!(owner.kind, "AhltEnvironment");
        assert_eq!(owner.name, "dev");
        assert_eq!(owner.uid, "6f1c2a40-0000-4000-8000-000000000001");
        assert_eq!(owner.controller, Some(true));
        assert_eq!(owner.block_owner_deletion, Some(true));
    }

    #[test]
    fn an_object_without_uid_or_name_has_no_owner_reference() {
        let mut env = cr("dev", "ahlt-dev");
        env.metadata.uid = None;
        assert_eq!(owner_reference(&env), Err(OwnerRefError::MissingUid));
        env.metadata.name = None;
        assert_eq!(owner_reference(&env), Err(OwnerRefError::MissingName));
    }
}
