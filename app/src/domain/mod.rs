//! The governance domain on top of the EAV store: users, roles, permissions, ToRs, their
//! functions (positions) and who fills them, ABAC capability checks, and the audit log.

/// SQL: `WITH RECURSIVE user_roles(role_id)`, the active roles user `$1` holds directly or
/// through `inherits_role`; shared by permission checks and ABAC. A macro so queries stay
/// compile-time constants via `concat!`.
macro_rules! user_roles_cte {
    () => {
        "WITH RECURSIVE user_roles(role_id) AS ( \
             SELECT x.target_id FROM relations x \
               JOIN entities t ON t.id = x.relation_type_id AND t.name = 'has_role' \
               JOIN entities u ON u.id = x.source_id AND u.is_active \
               JOIN entities r ON r.id = x.target_id AND r.is_active \
             WHERE x.source_id = $1 \
           UNION \
             SELECT x.target_id FROM user_roles ur \
               JOIN relations x ON x.source_id = ur.role_id \
               JOIN entities t ON t.id = x.relation_type_id AND t.name = 'inherits_role' \
               JOIN entities r ON r.id = x.target_id AND r.is_active \
         ) "
    };
}
pub(crate) use user_roles_cte;

pub mod abac;
pub mod audit;
pub mod cadence;
pub mod data;
pub mod dependencies;
pub mod governance;
pub mod guard;
pub mod outlook;
pub mod pipeline;
pub mod recovery;
pub mod roles;
pub mod tors;
pub mod users;
pub mod visibility;
mod vocabulary;

pub use vocabulary::*;

use crate::store::StoreError;

/// Errors of domain operations; the HTTP layer maps each to a status and a stable code.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    /// The user lacks the capability or permission an action needs.
    #[error("{0}")]
    Forbidden(String),
    #[error("password hashing failed")]
    PasswordHash,
    /// Every password-hashing slot stayed taken; try again shortly.
    #[error("the server is busy checking passwords")]
    Busy,
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl From<StoreError> for DomainError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(m) => DomainError::NotFound(m),
            StoreError::Conflict(m) => DomainError::Conflict(m),
            StoreError::Invalid(m) => DomainError::Invalid(m),
            StoreError::Database(e) => DomainError::Database(e),
        }
    }
}

impl From<sqlx::Error> for DomainError {
    fn from(err: sqlx::Error) -> Self {
        StoreError::from(err).into()
    }
}

pub type DomainResult<T> = Result<T, DomainError>;

/// Serialises the transactions that check a hierarchy for cycles before changing it (role
/// inheritance, ToR reporting lines): without it two concurrent changes could each pass the
/// check and together close a cycle. Held until the transaction ends.
pub(crate) async fn lock_hierarchy(conn: &mut sqlx::PgConnection, name: &str) -> DomainResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('ahlt.hierarchy:' || $1, 0))")
        .bind(name)
        .execute(conn)
        .await?;
    Ok(())
}

/// A short text shown as a name or title (display name, ToR title, function label): at most
/// 500 characters, no control characters; `what` names it in the message.
pub fn check_label(what: &str, value: &str) -> DomainResult<()> {
    if value.chars().count() > 500 || value.chars().any(char::is_control) {
        return Err(DomainError::Invalid(format!(
            "{what} must be at most 500 characters, without control characters"
        )));
    }
    Ok(())
}

/// A reference to a user for display: id, login name and display name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct UserRef {
    pub id: i64,
    pub username: String,
    pub display_name: String,
}
