//! Operator recovery for a locked-out installation (`ahlt admin grant`, `ahlt admin
//! reset-password`): run against the database directly, audit-logged under the actor
//! [`CLI_ACTOR`].

use serde_json::json;
use sqlx::PgPool;

use super::audit::{self, Actor};
use super::{DomainError, DomainResult, kind, perm, rel, role, users};
use crate::auth::password;
use crate::store;

/// The audit actor name of recovery commands.
pub const CLI_ACTOR: &str = "ahlt admin (command line)";

fn actor() -> Actor {
    Actor {
        user_id: None,
        name: CLI_ACTOR.into(),
        request_id: None,
    }
}

async fn user_id(conn: &mut sqlx::PgConnection, username: &str) -> DomainResult<users::User> {
    let key = users::normalize_username(username)?;
    users::find_by_username(&mut *conn, &key)
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("user {key:?}")))
}

/// Makes `username` an active administrator: activates the account, reactivates the `admin`
/// role, makes sure it grants `users.manage`, and gives it to the user. Idempotent.
pub async fn grant_admin(pool: &PgPool, username: &str) -> DomainResult<users::User> {
    let mut tx = pool.begin().await?;
    let user = user_id(&mut tx, username).await?;
    let admin = store::find_entity(&mut *tx, kind::ROLE, role::ADMIN)
        .await?
        .ok_or_else(|| DomainError::NotFound("role admin (run `ahlt migrate`)".into()))?;
    let permission = store::find_entity(&mut *tx, kind::PERMISSION, perm::USERS_MANAGE)
        .await?
        .ok_or_else(|| {
            DomainError::NotFound(format!(
                "permission {} (run `ahlt migrate`)",
                perm::USERS_MANAGE
            ))
        })?;
    sqlx::query("UPDATE entities SET is_active = true, updated_at = now() WHERE id = ANY($1) AND NOT is_active")
        .bind([user.id, admin.id, permission.id])
        .execute(&mut *tx)
        .await?;
    store::relate(
        &mut tx,
        rel::HAS_PERMISSION,
        admin.id,
        permission.id,
        &Default::default(),
    )
    .await?;
    store::relate(
        &mut tx,
        rel::HAS_ROLE,
        user.id,
        admin.id,
        &Default::default(),
    )
    .await?;
    audit::record(
        &mut tx,
        &actor(),
        "admin.grant",
        Some((kind::USER, user.id)),
        json!({"username": user.username, "role": role::ADMIN}),
    )
    .await?;
    let after = users::require(&mut *tx, user.id).await?;
    tx.commit().await?;
    Ok(after)
}

/// Sets a new generated password for `username` and returns it (shown once, never stored
/// in clear or logged).
pub async fn reset_password(pool: &PgPool, username: &str) -> DomainResult<String> {
    let mut tx = pool.begin().await?;
    let user = user_id(&mut tx, username).await?;
    let new_password = password::generate();
    users::set_password(&mut tx, &actor(), user.id, &new_password).await?;
    audit::record(
        &mut tx,
        &actor(),
        "admin.reset_password",
        Some((kind::USER, user.id)),
        json!({"username": user.username}),
    )
    .await?;
    tx.commit().await?;
    Ok(new_password)
}
