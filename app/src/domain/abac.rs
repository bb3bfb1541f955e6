//! ABAC: may user U exercise capability C on ToR T?
//!
//! A capability is granted on every ToR by a role (directly or through role inheritance) that
//! holds the permission of the same name, and on one ToR by a function of that ToR whose
//! capability flags include it and which the user fills. Inactive users, roles, functions and
//! ToRs grant nothing. Resolved in one SQL statement (recursive CTE over role inheritance), or
//! from the graph projection when it is current ([`crate::graph::queries`], which answers the
//! same questions identically); a failing graph read falls back to Postgres.

use std::collections::BTreeSet;

use serde::Serialize;
use sqlx::{PgConnection, PgExecutor};

use super::{Capability, DomainError, DomainResult};
use crate::graph::{Projection, queries};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GrantSource {
    Role { role: String },
    Position { function_id: i64, function: String },
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Grant {
    pub capability: Capability,
    /// `None`: on every ToR.
    pub tor_id: Option<i64>,
    pub via: GrantSource,
}

const GRANTS_CTE: &str = concat!(
    super::user_roles_cte!(),
    ", grants(capability, tor_id, via_kind, via_name, function_id) AS ( \
         SELECT p.name, NULL::bigint, 'role', r.name, NULL::bigint \
         FROM user_roles ur JOIN entities r ON r.id = ur.role_id \
           JOIN relations x ON x.source_id = ur.role_id \
           JOIN entities t ON t.id = x.relation_type_id AND t.name = 'has_permission' \
           JOIN entities p ON p.id = x.target_id AND p.is_active \
         WHERE p.name = ANY($2) \
       UNION ALL \
         SELECT cap.value, tor.id, 'position', f.label, f.id \
         FROM relations fp \
           JOIN entities fpt ON fpt.id = fp.relation_type_id AND fpt.name = 'fills_position' \
           JOIN entities u ON u.id = fp.source_id AND u.is_active \
           JOIN entities f ON f.id = fp.target_id AND f.is_active AND f.entity_type = 'tor_function' \
           JOIN relations bt ON bt.source_id = f.id \
           JOIN entities btt ON btt.id = bt.relation_type_id AND btt.name = 'belongs_to_tor' \
           JOIN entities tor ON tor.id = bt.target_id AND tor.is_active \
           JOIN entity_properties cp ON cp.entity_id = f.id AND cp.key = 'capabilities' \
                                     AND jsonb_typeof(cp.value) = 'array' \
           CROSS JOIN LATERAL jsonb_array_elements_text(cp.value) AS cap(value) \
         WHERE fp.source_id = $1 AND cap.value = ANY($2) \
     ) "
);

fn capability_names() -> Vec<&'static str> {
    Capability::ALL.iter().map(|c| c.as_str()).collect()
}

/// capability, tor_id, via_kind, via_name, function_id
type GrantRow = (String, Option<i64>, String, String, Option<i64>);

/// Every grant a user holds, with where it comes from: from the graph when `graph` is
/// current, else from Postgres.
pub async fn grants(
    exec: impl PgExecutor<'_>,
    graph: Option<&Projection>,
    user_id: i64,
) -> DomainResult<Vec<Grant>> {
    queries::read_or_fallback(
        graph,
        "grants",
        |backend, env| queries::grants(backend, env, user_id),
        || grants_pg(exec, user_id),
    )
    .await
}

/// [`grants`] from Postgres.
pub async fn grants_pg(exec: impl PgExecutor<'_>, user_id: i64) -> DomainResult<Vec<Grant>> {
    let rows: Vec<GrantRow> = sqlx::query_as(&format!(
        "{GRANTS_CTE} SELECT DISTINCT capability, tor_id, via_kind, via_name, function_id FROM grants"
    ))
    .bind(user_id)
    .bind(capability_names())
    .fetch_all(exec)
    .await?;
    let mut grants: Vec<Grant> = rows
        .into_iter()
        .filter_map(|(cap, tor_id, kind, name, function_id)| {
            let via = match (kind.as_str(), function_id) {
                ("position", Some(function_id)) => GrantSource::Position {
                    function_id,
                    function: name,
                },
                _ => GrantSource::Role { role: name },
            };
            Some(Grant {
                capability: cap.parse().ok()?,
                tor_id,
                via,
            })
        })
        .collect();
    grants.sort();
    Ok(grants)
}

/// The capabilities a user has on one ToR (nothing for an unknown ToR): from the graph when
/// `graph` is current, else from Postgres.
pub async fn capabilities_on(
    exec: impl PgExecutor<'_>,
    graph: Option<&Projection>,
    user_id: i64,
    tor_id: i64,
) -> DomainResult<BTreeSet<Capability>> {
    queries::read_or_fallback(
        graph,
        "capabilities_on",
        |backend, env| queries::capabilities_on(backend, env, user_id, tor_id),
        || capabilities_on_pg(exec, user_id, tor_id),
    )
    .await
}

/// [`capabilities_on`] from Postgres. Checks that authorise a write inside its transaction
/// use this on the transaction's connection, so the decision and the write it guards see
/// the same database state (the graph only ever shows committed, projected changes).
pub async fn capabilities_on_pg(
    exec: impl PgExecutor<'_>,
    user_id: i64,
    tor_id: i64,
) -> DomainResult<BTreeSet<Capability>> {
    let names: Vec<String> = sqlx::query_scalar(&format!(
        "{GRANTS_CTE} SELECT DISTINCT capability FROM grants WHERE tor_id IS NULL OR tor_id = $3"
    ))
    .bind(user_id)
    .bind(capability_names())
    .bind(tor_id)
    .fetch_all(exec)
    .await?;
    Ok(names.iter().filter_map(|n| n.parse().ok()).collect())
}

/// May `user_id` exercise `capability` on ToR `tor_id`? An unknown ToR is an error, not "no".
/// From the graph when `graph` is current, else from Postgres.
pub async fn may(
    db: impl sqlx::Acquire<'_, Database = sqlx::Postgres>,
    graph: Option<&Projection>,
    user_id: i64,
    capability: Capability,
    tor_id: i64,
) -> DomainResult<bool> {
    let answer = queries::read_or_fallback(
        graph,
        "may",
        |backend, env| queries::may(backend, env, user_id, capability, tor_id),
        || async {
            let mut conn = db.acquire().await?;
            may_in(&mut conn, user_id, capability, tor_id)
                .await
                .map(Some)
        },
    )
    .await?;
    answer.ok_or_else(|| DomainError::NotFound(format!("ToR {tor_id}")))
}

/// [`may`] from Postgres, on a connection the caller holds. Always Postgres: inside a
/// transaction the check must see the transaction's own uncommitted writes (and decide in
/// the same state as the write it guards), which the graph never holds.
pub async fn may_in(
    conn: &mut PgConnection,
    user_id: i64,
    capability: Capability,
    tor_id: i64,
) -> DomainResult<bool> {
    let tor_exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM entities WHERE id = $1 AND entity_type = 'tor')",
    )
    .bind(tor_id)
    .fetch_one(&mut *conn)
    .await?;
    if !tor_exists {
        return Err(DomainError::NotFound(format!("ToR {tor_id}")));
    }
    Ok(sqlx::query_scalar(&format!(
        "{GRANTS_CTE} SELECT EXISTS (SELECT 1 FROM grants WHERE capability = $3 AND (tor_id IS NULL OR tor_id = $4))"
    ))
    .bind(user_id)
    .bind(capability_names())
    .bind(capability.as_str())
    .bind(tor_id)
    .fetch_one(&mut *conn)
    .await?)
}
