//! The database seam: the reconciler asks a [`DatabaseProvisioner`] to create or drop the
//! environment's role and database. The real one talks to PostgreSQL; tests inject fakes.

use std::collections::BTreeMap;
use std::fmt;

use futures::future::BoxFuture;

/// What to provision: names and the (stable) password of the role.
#[derive(Clone, PartialEq, Eq)]
pub struct ProvisionRequest {
    pub database: String,
    pub role: String,
    pub password: String,
}

impl fmt::Debug for ProvisionRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProvisionRequest")
            .field("database", &self.database)
            .field("role", &self.role)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A failed database operation, already redacted (no credentials in `message`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProvisionError {
    /// Bounded CamelCase cause, e.g. `Unreachable`, `AuthenticationFailed`.
    pub reason: &'static str,
    pub message: String,
    /// Worth retrying without any change (network, server starting up).
    pub transient: bool,
}

/// Admin credentials, as the `data` of the admin Secret.
pub type AdminSecretData = BTreeMap<String, Vec<u8>>;

pub trait DatabaseProvisioner: Send + Sync {
    /// Creates the role and database if missing and sets the role's password. Idempotent.
    fn ensure<'a>(
        &'a self,
        admin: &'a AdminSecretData,
        request: &'a ProvisionRequest,
    ) -> BoxFuture<'a, Result<(), ProvisionError>>;

    /// Drops the database and role if they exist. Idempotent.
    fn drop_database<'a>(
        &'a self,
        admin: &'a AdminSecretData,
        database: &'a str,
        role: &'a str,
    ) -> BoxFuture<'a, Result<(), ProvisionError>>;
}
