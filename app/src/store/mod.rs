//! The EAV store: entities, their properties, and typed relations between them.
//!
//! Every function takes an executor or connection so callers can compose writes in one
//! transaction (the write plus its audit entry commit together).

mod coalesced;
mod entities;
pub mod ident;
mod relations;

pub use coalesced::{EntityReads, IN_FLIGHT as READS_IN_FLIGHT};
pub use entities::*;
pub use relations::*;

/// Keyset pagination over ids: items with `id > after`, at most `limit` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub after: Option<i64>,
    pub limit: i64,
}

impl PageRequest {
    pub const DEFAULT_LIMIT: i64 = 50;
    pub const MAX_LIMIT: i64 = 500;

    pub fn first(limit: i64) -> Self {
        PageRequest { after: None, limit }
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest::first(Self::DEFAULT_LIMIT)
    }
}

/// One page of results; `next_after` is the cursor for the following page, if any.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_after: Option<i64>,
}

impl<T> Page<T> {
    /// Builds a page from rows fetched with `LIMIT limit + 1`.
    pub(crate) fn from_overfetch(mut rows: Vec<T>, limit: i64, id: impl Fn(&T) -> i64) -> Self {
        let has_more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_after = if has_more { rows.last().map(&id) } else { None };
        Page {
            items: rows,
            next_after,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err {
            match db.code().as_deref() {
                Some("23505") => {
                    return StoreError::Conflict(format!(
                        "already exists ({})",
                        db.constraint().unwrap_or("unique constraint")
                    ));
                }
                Some("23503") => {
                    return StoreError::Invalid(
                        "a referenced entity does not exist or is of the wrong type".into(),
                    );
                }
                Some("23514") | Some("22001") => {
                    return StoreError::Invalid(format!(
                        "value rejected by the schema ({})",
                        db.constraint().unwrap_or("check")
                    ));
                }
                Some("23502") => {
                    return StoreError::Invalid("a required value is missing".into());
                }
                // Serialization failure, deadlock: a concurrent change won.
                Some("40001") | Some("40P01") => {
                    return StoreError::Conflict(
                        "a concurrent change got in the way; try again".into(),
                    );
                }
                // Data exceptions (class 22: bad characters such as NUL, numbers out of
                // range, bad formats) and values too large for an index row (54000) come
                // from what a client sent.
                Some(code) if code.starts_with("22") || code == "54000" => {
                    tracing::info!(sqlstate = code, error = %db.message(), "input refused by PostgreSQL");
                    return StoreError::Invalid("a value was refused by the database (unsupported characters or out of range)".into());
                }
                _ => {}
            }
        }
        StoreError::Database(err)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
