//! The database seam: the reconciler asks a [`DatabaseProvisioner`] to create or drop the
//! environment's role and database. [`Postgres`] talks to the server; tests inject fakes.

use futures::FutureExt;
use futures::future::BoxFuture;

use crate::database::{self, AdminCredentials, DatabaseError, DatabaseTarget};

/// A failed database operation, already redacted (no credentials in `message`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProvisionError {
    /// Bounded CamelCase cause, e.g. `Unreachable`, `AuthenticationFailed`.
    pub reason: &'static str,
    pub message: String,
    /// Worth retrying without any change (network, server restarting).
    pub transient: bool,
}

impl From<DatabaseError> for ProvisionError {
    fn from(e: DatabaseError) -> Self {
        ProvisionError {
            reason: e.reason(),
            transient: e.is_transient(),
            message: e.to_string(),
        }
    }
}

pub trait DatabaseProvisioner: Send + Sync {
    /// Creates the role and database if missing and sets the role's password. Idempotent.
    fn ensure<'a>(
        &'a self,
        admin: &'a AdminCredentials,
        target: &'a DatabaseTarget,
    ) -> BoxFuture<'a, Result<(), ProvisionError>>;

    /// Drops the database and role if they exist and belong to `owner`
    /// (`<namespace>/<name>`). Idempotent.
    fn drop_database<'a>(
        &'a self,
        admin: &'a AdminCredentials,
        database: &'a str,
        role: &'a str,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<(), ProvisionError>>;
}

/// The real provisioner: [`database::ensure`] and [`database::drop`].
///
/// sqlx's connection futures are not provably `Send` through a boxed trait object (a
/// higher-ranked lifetime limitation of the compiler), so each operation runs to completion
/// on a blocking-pool thread that drives it with the current runtime.
#[derive(Debug, Clone, Copy, Default)]
pub struct Postgres;

async fn on_blocking_thread<T, F>(work: F) -> Result<T, ProvisionError>
where
    T: Send + 'static,
    F: FnOnce(tokio::runtime::Handle) -> Result<T, DatabaseError> + Send + 'static,
{
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || work(handle))
        .await
        .map_err(|e| ProvisionError {
            reason: "Database",
            message: format!("database task failed: {e}"),
            transient: true,
        })?
        .map_err(ProvisionError::from)
}

impl DatabaseProvisioner for Postgres {
    fn ensure<'a>(
        &'a self,
        admin: &'a AdminCredentials,
        target: &'a DatabaseTarget,
    ) -> BoxFuture<'a, Result<(), ProvisionError>> {
        let (admin, target) = (admin.clone(), target.clone());
        async move {
            let outcome =
                on_blocking_thread(move |rt| rt.block_on(database::ensure(&admin, &target)))
                    .await?;
            tracing::debug!(?outcome, "database ensured");
            Ok(())
        }
        .boxed()
    }

    fn drop_database<'a>(
        &'a self,
        admin: &'a AdminCredentials,
        database: &'a str,
        role: &'a str,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<(), ProvisionError>> {
        let (admin, db, role, owner) = (
            admin.clone(),
            database.to_owned(),
            role.to_owned(),
            owner.to_owned(),
        );
        async move {
            let outcome = on_blocking_thread(move |rt| {
                rt.block_on(database::drop(&admin, &db, &role, &owner))
            })
            .await?;
            tracing::info!(?outcome, "database dropped");
            Ok(())
        }
        .boxed()
    }
}
