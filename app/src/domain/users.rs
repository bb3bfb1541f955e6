//! Users: entities of type `user` (name = login, label = display name, property `email`)
//! with their password hash kept apart in `user_credentials`.

use serde::Serialize;
use serde_json::json;
use sqlx::{PgConnection, PgExecutor};

use super::audit::{self, Actor};
use super::{DomainError, DomainResult, kind, rel};
use crate::auth::password;
use crate::store::{self, EntityPatch, NewEntity, Page, PageRequest};

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub is_active: bool,
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub password: String,
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub display_name: Option<String>,
    /// `Some(None)` clears the email.
    pub email: Option<Option<String>>,
    pub is_active: Option<bool>,
    pub roles: Option<Vec<String>>,
}

/// Usernames are lowercase `[a-z0-9][a-z0-9._-]{0,63}`.
pub fn normalize_username(raw: &str) -> DomainResult<String> {
    let name = raw.trim().to_lowercase();
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some('a'..='z' | '0'..='9'))
        && name.len() <= 64
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '-'));
    if ok {
        Ok(name)
    } else {
        Err(DomainError::Invalid(
            "username must be 1 to 64 characters: letters, digits, '.', '_' or '-', starting with a letter or digit".into(),
        ))
    }
}

fn check_email(email: &str) -> DomainResult<()> {
    let valid = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(())
    } else {
        Err(DomainError::Invalid(format!(
            "{:?} is not an email address",
            crate::text::clip(email)
        )))
    }
}

const USER_SELECT: &str = "SELECT u.id, u.name AS username, \
        CASE WHEN u.label = '' THEN u.name ELSE u.label END AS display_name, \
        (SELECT p.value #>> '{}' FROM entity_properties p WHERE p.entity_id = u.id AND p.key = 'email') AS email, \
        u.is_active, \
        COALESCE((SELECT array_agg(r.name ORDER BY r.name) FROM relations hr \
                  JOIN entities t ON t.id = hr.relation_type_id AND t.name = 'has_role' \
                  JOIN entities r ON r.id = hr.target_id WHERE hr.source_id = u.id), '{}') AS roles \
     FROM entities u WHERE u.entity_type = 'user'";

pub async fn list(exec: impl PgExecutor<'_>) -> DomainResult<Vec<User>> {
    Ok(sqlx::query_as(&format!("{USER_SELECT} ORDER BY u.name"))
        .fetch_all(exec)
        .await?)
}

/// One page of users in id order (keyset pagination for the API).
pub async fn page(exec: impl PgExecutor<'_>, page: PageRequest) -> DomainResult<Page<User>> {
    let rows: Vec<User> = sqlx::query_as(&format!(
        "{USER_SELECT} AND ($1::bigint IS NULL OR u.id > $1) ORDER BY u.id LIMIT $2"
    ))
    .bind(page.after)
    .bind(page.limit + 1)
    .fetch_all(exec)
    .await?;
    Ok(Page::from_overfetch(rows, page.limit, |u| u.id))
}

pub async fn get(exec: impl PgExecutor<'_>, id: i64) -> DomainResult<Option<User>> {
    Ok(sqlx::query_as(&format!("{USER_SELECT} AND u.id = $1"))
        .bind(id)
        .fetch_optional(exec)
        .await?)
}

pub async fn require(exec: impl PgExecutor<'_>, id: i64) -> DomainResult<User> {
    get(exec, id)
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("user {id}")))
}

pub async fn find_by_username(
    exec: impl PgExecutor<'_>,
    username: &str,
) -> DomainResult<Option<User>> {
    Ok(sqlx::query_as(&format!("{USER_SELECT} AND u.name = $1"))
        .bind(username.trim().to_lowercase())
        .fetch_optional(exec)
        .await?)
}

/// The stored hash for an active user, for login.
pub async fn password_hash(
    exec: impl PgExecutor<'_>,
    user_id: i64,
) -> DomainResult<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT password_hash FROM user_credentials WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(exec)
            .await?,
    )
}

async fn role_ids(conn: &mut PgConnection, roles: &[String]) -> DomainResult<Vec<i64>> {
    let mut ids = Vec::with_capacity(roles.len());
    for name in roles {
        let role = store::find_entity(&mut *conn, kind::ROLE, name)
            .await?
            .ok_or_else(|| DomainError::Invalid(format!("unknown role {name:?}")))?;
        ids.push(role.id);
    }
    Ok(ids)
}

pub async fn create(conn: &mut PgConnection, actor: &Actor, new: &NewUser) -> DomainResult<User> {
    let username = normalize_username(&new.username)?;
    super::check_label("display name", new.display_name.trim())?;
    if let Some(email) = &new.email {
        check_email(email)?;
    }
    let hash = password::hash(&new.password).await.map_err(|e| match e {
        password::PasswordError::Policy => DomainError::Invalid(e.to_string()),
        password::PasswordError::Hash => DomainError::PasswordHash,
        password::PasswordError::Busy(_) => DomainError::Busy,
    })?;
    let roles = role_ids(conn, &new.roles).await?;
    let mut entity = NewEntity::new(kind::USER, &username).label(new.display_name.trim());
    if let Some(email) = &new.email {
        entity = entity.property("email", email.as_str());
    }
    let created = store::create_entity(conn, &entity)
        .await
        .map_err(|e| match e {
            store::StoreError::Conflict(_) => {
                DomainError::Conflict(format!("user {username:?} already exists"))
            }
            other => other.into(),
        })?;
    let id = created.entity.id;
    sqlx::query("INSERT INTO user_credentials (user_id, password_hash) VALUES ($1, $2)")
        .bind(id)
        .bind(&hash)
        .execute(&mut *conn)
        .await?;
    for role in roles {
        store::relate(conn, rel::HAS_ROLE, id, role, &Default::default()).await?;
    }
    audit::record(
        conn,
        actor,
        "user.create",
        Some((kind::USER, id)),
        json!({"username": username, "roles": new.roles}),
    )
    .await?;
    require(&mut *conn, id).await
}

pub async fn update(
    conn: &mut PgConnection,
    actor: &Actor,
    id: i64,
    update: &UserUpdate,
) -> DomainResult<User> {
    let before = require(&mut *conn, id).await?;
    if let Some(name) = &update.display_name {
        super::check_label("display name", name.trim())?;
    }
    let mut patch = EntityPatch {
        label: update.display_name.as_ref().map(|s| s.trim().to_owned()),
        is_active: update.is_active,
        ..Default::default()
    };
    if let Some(email) = &update.email {
        if let Some(email) = email {
            check_email(email)?;
        }
        patch
            .properties
            .insert("email".into(), email.as_ref().map(|e| json!(e)));
    }
    store::update_entity(conn, id, &patch).await?;
    if let Some(roles) = &update.roles {
        let wanted = role_ids(conn, roles).await?;
        let type_id = store::relation_type_id(&mut *conn, rel::HAS_ROLE).await?;
        sqlx::query("DELETE FROM relations WHERE relation_type_id = $1 AND source_id = $2 AND NOT (target_id = ANY($3))")
            .bind(type_id)
            .bind(id)
            .bind(&wanted)
            .execute(&mut *conn)
            .await?;
        for role in wanted {
            store::relate(conn, rel::HAS_ROLE, id, role, &Default::default()).await?;
        }
    }
    let after = require(&mut *conn, id).await?;
    if after.roles != before.roles || after.is_active != before.is_active {
        super::guard::user_manager_remains(conn).await?;
    }
    if after != before {
        audit::record(
            conn,
            actor,
            "user.update",
            Some((kind::USER, id)),
            json!({"display_name": after.display_name, "email": after.email, "is_active": after.is_active, "roles": after.roles}),
        )
        .await?;
    }
    Ok(after)
}

pub async fn set_password(
    conn: &mut PgConnection,
    actor: &Actor,
    id: i64,
    new_password: &str,
) -> DomainResult<()> {
    require(&mut *conn, id).await?;
    let hash = password::hash(new_password).await.map_err(|e| match e {
        password::PasswordError::Policy => DomainError::Invalid(e.to_string()),
        password::PasswordError::Hash => DomainError::PasswordHash,
        password::PasswordError::Busy(_) => DomainError::Busy,
    })?;
    sqlx::query(
        "INSERT INTO user_credentials (user_id, password_hash) VALUES ($1, $2) \
         ON CONFLICT (user_id) DO UPDATE SET password_hash = EXCLUDED.password_hash, updated_at = now()",
    )
    .bind(id)
    .bind(hash)
    .execute(&mut *conn)
    .await?;
    // Never record the password, only that it changed.
    audit::record(
        conn,
        actor,
        "user.password_change",
        Some((kind::USER, id)),
        json!({}),
    )
    .await?;
    Ok(())
}

pub async fn delete(conn: &mut PgConnection, actor: &Actor, id: i64) -> DomainResult<()> {
    let user = require(&mut *conn, id).await?;
    if actor.user_id == Some(id) {
        return Err(DomainError::Conflict(
            "you cannot delete your own account".into(),
        ));
    }
    store::delete_entity(conn, id).await?;
    super::guard::user_manager_remains(conn).await?;
    audit::record(
        conn,
        actor,
        "user.delete",
        Some((kind::USER, id)),
        json!({"username": user.username}),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_normalised_and_checked() {
        assert_eq!(normalize_username(" Alice.B ").unwrap(), "alice.b");
        for bad in ["", "-x", "a b", "a'b", "ä", &"a".repeat(65)] {
            assert!(normalize_username(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn emails_are_checked() {
        assert!(check_email("a@example.org").is_ok());
        for bad in ["a", "@x.org", "a@b", "a b@x.org"] {
            assert!(check_email(bad).is_err(), "{bad:?}");
        }
    }
}
