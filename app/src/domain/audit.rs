//! The audit log: who changed what, written in the same transaction as the change.

use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;

use crate::store::{Page, PageRequest, StoreResult};

/// Who is acting, and under which request id, for audit entries.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: Option<i64>,
    pub name: String,
    pub request_id: Option<String>,
}

impl Actor {
    /// Changes made by `ahlt` itself (seed, CLI).
    pub fn system() -> Self {
        Actor {
            user_id: None,
            name: "system".into(),
            request_id: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub actor_id: Option<i64>,
    pub actor_name: String,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<i64>,
    pub details: Value,
    pub request_id: Option<String>,
}

pub async fn record(
    conn: &mut PgConnection,
    actor: &Actor,
    action: &str,
    target: Option<(&str, i64)>,
    details: Value,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit_log (actor_id, actor_name, action, target_type, target_id, details, request_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(actor.user_id)
    .bind(&actor.name)
    .bind(action)
    .bind(target.map(|t| t.0))
    .bind(target.map(|t| t.1))
    .bind(details)
    .bind(&actor.request_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Newest first; the cursor is the id of the last entry seen.
pub async fn recent(exec: impl PgExecutor<'_>, page: PageRequest) -> StoreResult<Page<AuditEntry>> {
    let rows: Vec<AuditEntry> = sqlx::query_as(
        "SELECT id, occurred_at, actor_id, actor_name, action, target_type, target_id, details, request_id \
         FROM audit_log WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
    )
    .bind(page.after)
    .bind(page.limit + 1)
    .fetch_all(exec)
    .await?;
    Ok(Page::from_overfetch(rows, page.limit, |e| e.id))
}
