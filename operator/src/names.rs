//! Names and labels of the objects an AhltEnvironment owns.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

pub const APP_NAME: &str = "ahlt";
pub const MANAGED_BY: &str = "ahlt-operator";
/// Server-side apply field manager.
pub const FIELD_MANAGER: &str = "ahlt-operator";
/// Finalizer guarding external state (the database and role).
pub const FINALIZER: &str = "ahlt.io/database";
/// The app's HTTP port (container and Service).
pub const HTTP_PORT: i32 = 8080;

/// The standard labels every child carries.
pub fn labels(instance: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), APP_NAME.to_owned()),
        ("app.kubernetes.io/instance".to_owned(), instance.to_owned()),
        (
            "app.kubernetes.io/managed-by".to_owned(),
            MANAGED_BY.to_owned(),
        ),
    ])
}

/// Labels that select this environment's app pods (stable across upgrades).
pub fn selector_labels(instance: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), APP_NAME.to_owned()),
        ("app.kubernetes.io/instance".to_owned(), instance.to_owned()),
        ("app.kubernetes.io/component".to_owned(), "web".to_owned()),
    ])
}

/// `k=v,k=v` form of [`selector_labels`], for `status.selector`.
pub fn selector_string(instance: &str) -> String {
    selector_labels(instance)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Deployment and Service.
pub fn app(instance: &str) -> String {
    instance.to_owned()
}

pub fn config_map(instance: &str) -> String {
    format!("{instance}-config")
}

/// Secret with DATABASE_URL and its parts.
pub fn database_secret(instance: &str) -> String {
    format!("{instance}-db")
}

/// Secret with SESSION_KEY and ADMIN_PASSWORD.
pub fn app_secret(instance: &str) -> String {
    format!("{instance}-app")
}

/// Secret cert-manager issues the certificate into.
pub fn tls_secret(instance: &str) -> String {
    format!("{instance}-tls")
}

/// Short, stable digest of an image reference; names the Jobs run for that image.
pub fn image_digest(image: &str) -> String {
    let digest = Sha256::digest(image.as_bytes());
    digest.iter().take(5).map(|b| format!("{b:02x}")).collect()
}

/// The migration Job for an image: a retry of the same image reuses it.
pub fn migration_job(instance: &str, image: &str) -> String {
    format!("{instance}-migrate-{}", image_digest(image))
}

/// The graph resync Job for an image and a resync request.
pub fn resync_job(instance: &str, image: &str, request: &str) -> String {
    format!(
        "{instance}-resync-{}",
        image_digest(&format!("{image}\n{request}"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_are_stable_per_image_and_fit_the_name_limit() {
        let a = migration_job("dev", "registry.example/ahlt:abc");
        assert_eq!(a, migration_job("dev", "registry.example/ahlt:abc"));
        assert_ne!(a, migration_job("dev", "registry.example/ahlt:abd"));
        assert!(migration_job(&"x".repeat(40), "i:t").len() <= 63);
    }

    #[test]
    fn resync_job_names_differ_per_image_and_request_and_fit_the_name_limit() {
        let a = resync_job("dev", "r/ahlt:1", "");
        assert_eq!(a, resync_job("dev", "r/ahlt:1", ""));
        assert_ne!(a, resync_job("dev", "r/ahlt:2", ""));
        assert_ne!(a, resync_job("dev", "r/ahlt:1", "r1"));
        assert_ne!(a, migration_job("dev", "r/ahlt:1"));
        assert!(resync_job(&"x".repeat(40), &"i".repeat(500), &"r".repeat(253)).len() <= 63);
    }
}
