//! The lockout guard: there is always at least one active user who can manage users.
//!
//! Every write that can take `users.manage` away from someone (changing a user's roles,
//! deactivating or deleting a user, changing a role's permissions or inheritance) calls
//! [`user_manager_remains`] in its transaction before committing. The check takes a
//! transaction-level advisory lock first, so two administrators demoting each other at the
//! same moment cannot both succeed: the second one's check runs after the first commits and
//! sees its change.

use sqlx::PgConnection;

use super::{DomainError, DomainResult, perm};

/// Advisory lock key serialising the guarded writes (an arbitrary constant: "ahltusrm").
const LOCK_KEY: i64 = 0x6168_6c74_7573_726d;

/// The message of the refusal (HTTP 409).
pub const LAST_MANAGER: &str = "this would leave no active user who can manage users; \
     give another active user the users.manage permission first";

/// SQL: the number of active users holding `$1` through an active role (directly or by
/// inheritance from active roles), with the permission itself active.
const HOLDERS: &str = "WITH RECURSIVE granting(role_id) AS ( \
         SELECT x.source_id FROM relations x \
           JOIN entities t ON t.id = x.relation_type_id AND t.name = 'has_permission' \
           JOIN entities p ON p.id = x.target_id AND p.entity_type = 'permission' \
                AND p.name = $1 AND p.is_active \
           JOIN entities r ON r.id = x.source_id AND r.is_active \
       UNION \
         SELECT x.source_id FROM granting g \
           JOIN relations x ON x.target_id = g.role_id \
           JOIN entities t ON t.id = x.relation_type_id AND t.name = 'inherits_role' \
           JOIN entities r ON r.id = x.source_id AND r.is_active \
     ) SELECT count(DISTINCT u.id) FROM entities u \
       JOIN relations x ON x.source_id = u.id \
       JOIN entities t ON t.id = x.relation_type_id AND t.name = 'has_role' \
       JOIN granting g ON g.role_id = x.target_id \
     WHERE u.entity_type = 'user' AND u.is_active";

/// How many active users can manage users (as the transaction sees it now).
pub async fn user_managers(conn: &mut PgConnection) -> DomainResult<i64> {
    Ok(sqlx::query_scalar(HOLDERS)
        .bind(perm::USERS_MANAGE)
        .fetch_one(&mut *conn)
        .await?)
}

/// Refuses ([`DomainError::Conflict`]) when, after the transaction's changes, no active user
/// could manage users. Call it after the change and before committing.
pub async fn user_manager_remains(conn: &mut PgConnection) -> DomainResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *conn)
        .await?;
    if user_managers(conn).await? == 0 {
        return Err(DomainError::Conflict(LAST_MANAGER.into()));
    }
    Ok(())
}
