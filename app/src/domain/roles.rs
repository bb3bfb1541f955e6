//! Roles, the permissions they grant, and role inheritance (resolved with a recursive CTE).

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::json;
use sqlx::{PgConnection, PgExecutor};

use super::audit::{self, Actor};
use super::{DomainError, DomainResult, kind, rel};
use crate::store::{self, NewEntity};

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Role {
    pub id: i64,
    pub name: String,
    pub label: String,
    /// Permissions granted directly by this role.
    pub permissions: Vec<String>,
    /// Roles whose permissions this role also grants.
    pub inherits: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Permission {
    pub id: i64,
    pub name: String,
    pub label: String,
}

const ROLE_SELECT: &str = "SELECT r.id, r.name, r.label, \
     COALESCE((SELECT array_agg(p.name ORDER BY p.name) FROM relations x \
        JOIN entities t ON t.id = x.relation_type_id AND t.name = 'has_permission' \
        JOIN entities p ON p.id = x.target_id WHERE x.source_id = r.id), '{}') AS permissions, \
     COALESCE((SELECT array_agg(p.name ORDER BY p.name) FROM relations x \
        JOIN entities t ON t.id = x.relation_type_id AND t.name = 'inherits_role' \
        JOIN entities p ON p.id = x.target_id WHERE x.source_id = r.id), '{}') AS inherits \
     FROM entities r WHERE r.entity_type = 'role'";

pub async fn list(exec: impl PgExecutor<'_>) -> DomainResult<Vec<Role>> {
    Ok(
        sqlx::query_as(&format!("{ROLE_SELECT} ORDER BY r.sort_order, r.name"))
            .fetch_all(exec)
            .await?,
    )
}

pub async fn get(exec: impl PgExecutor<'_>, id: i64) -> DomainResult<Role> {
    sqlx::query_as(&format!("{ROLE_SELECT} AND r.id = $1"))
        .bind(id)
        .fetch_optional(exec)
        .await?
        .ok_or_else(|| DomainError::NotFound(format!("role {id}")))
}

pub async fn permissions(exec: impl PgExecutor<'_>) -> DomainResult<Vec<Permission>> {
    Ok(sqlx::query_as(
        "SELECT id, name, label FROM entities WHERE entity_type = 'permission' ORDER BY name",
    )
    .fetch_all(exec)
    .await?)
}

/// Every permission a user holds through their roles and the roles those inherit.
/// Inactive users and inactive roles grant nothing.
pub async fn effective_permissions(
    exec: impl PgExecutor<'_>,
    user_id: i64,
) -> DomainResult<BTreeSet<String>> {
    let names: Vec<String> = sqlx::query_scalar(concat!(
        super::user_roles_cte!(),
        "SELECT DISTINCT p.name FROM user_roles ur \
           JOIN relations x ON x.source_id = ur.role_id \
           JOIN entities t ON t.id = x.relation_type_id AND t.name = 'has_permission' \
           JOIN entities p ON p.id = x.target_id AND p.is_active \
         ORDER BY p.name"
    ))
    .bind(user_id)
    .fetch_all(exec)
    .await?;
    Ok(names.into_iter().collect())
}

pub async fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    name: &str,
    label: &str,
) -> DomainResult<Role> {
    store::ident::check_ident("role name", name)?;
    let created =
        store::create_entity(conn, &NewEntity::new(kind::ROLE, name).label(label)).await?;
    audit::record(
        conn,
        actor,
        "role.create",
        Some((kind::ROLE, created.entity.id)),
        json!({"name": name}),
    )
    .await?;
    get(&mut *conn, created.entity.id).await
}

async fn ids_of(
    conn: &mut PgConnection,
    entity_type: &str,
    names: &[String],
) -> DomainResult<Vec<i64>> {
    let mut ids = Vec::with_capacity(names.len());
    for name in names {
        let e = store::find_entity(&mut *conn, entity_type, name)
            .await?
            .ok_or_else(|| DomainError::Invalid(format!("unknown {entity_type} {name:?}")))?;
        ids.push(e.id);
    }
    Ok(ids)
}

/// Replaces the set of `relation` targets of `source` with `targets`.
async fn replace_targets(
    conn: &mut PgConnection,
    relation: &str,
    source: i64,
    targets: &[i64],
) -> DomainResult<()> {
    let type_id = store::relation_type_id(&mut *conn, relation).await?;
    sqlx::query("DELETE FROM relations WHERE relation_type_id = $1 AND source_id = $2 AND NOT (target_id = ANY($3))")
        .bind(type_id)
        .bind(source)
        .bind(targets)
        .execute(&mut *conn)
        .await?;
    for &target in targets {
        store::relate(conn, relation, source, target, &Default::default()).await?;
    }
    Ok(())
}

pub async fn set_permissions(
    conn: &mut PgConnection,
    actor: &Actor,
    role_id: i64,
    names: &[String],
) -> DomainResult<Role> {
    let before = get(&mut *conn, role_id).await?;
    let ids = ids_of(conn, kind::PERMISSION, names).await?;
    replace_targets(conn, rel::HAS_PERMISSION, role_id, &ids).await?;
    let after = get(&mut *conn, role_id).await?;
    if after != before {
        super::guard::user_manager_remains(conn).await?;
        audit::record(
            conn,
            actor,
            "role.permissions",
            Some((kind::ROLE, role_id)),
            json!({"permissions": after.permissions}),
        )
        .await?;
    }
    Ok(after)
}

pub async fn set_inherits(
    conn: &mut PgConnection,
    actor: &Actor,
    role_id: i64,
    names: &[String],
) -> DomainResult<Role> {
    let before = get(&mut *conn, role_id).await?;
    let ids = ids_of(conn, kind::ROLE, names).await?;
    super::lock_hierarchy(conn, rel::INHERITS_ROLE).await?;
    // A cycle would make every role in it grant everything the others do; refuse it.
    let cyclic: bool = sqlx::query_scalar(
        "WITH RECURSIVE below(role_id) AS ( \
             SELECT unnest($2::bigint[]) \
           UNION \
             SELECT x.target_id FROM below b JOIN relations x ON x.source_id = b.role_id \
               JOIN entities t ON t.id = x.relation_type_id AND t.name = 'inherits_role' \
         ) SELECT EXISTS (SELECT 1 FROM below WHERE role_id = $1)",
    )
    .bind(role_id)
    .bind(&ids)
    .fetch_one(&mut *conn)
    .await?;
    if cyclic {
        return Err(DomainError::Invalid(format!(
            "role {} would inherit itself",
            before.name
        )));
    }
    replace_targets(conn, rel::INHERITS_ROLE, role_id, &ids).await?;
    let after = get(&mut *conn, role_id).await?;
    if after != before {
        super::guard::user_manager_remains(conn).await?;
        audit::record(
            conn,
            actor,
            "role.inherits",
            Some((kind::ROLE, role_id)),
            json!({"inherits": after.inherits}),
        )
        .await?;
    }
    Ok(after)
}

/// Roles the seed creates and the code relies on; they cannot be deleted.
pub fn is_builtin(name: &str) -> bool {
    [super::role::ADMIN, super::role::EDITOR, super::role::VIEWER].contains(&name)
}

/// Deletes a role (and so who held it and what inherited it). Built-in roles cannot be
/// deleted, nor the last role through which an active user may manage users.
pub async fn delete(conn: &mut PgConnection, actor: &Actor, role_id: i64) -> DomainResult<Role> {
    let role = get(&mut *conn, role_id).await?;
    if is_builtin(&role.name) {
        return Err(DomainError::Conflict(format!(
            "the role {} is built in and cannot be deleted",
            role.name
        )));
    }
    store::delete_entity(conn, role_id).await?;
    super::guard::user_manager_remains(conn).await?;
    audit::record(
        conn,
        actor,
        "role.delete",
        Some((kind::ROLE, role_id)),
        json!({"name": role.name}),
    )
    .await?;
    Ok(role)
}
