//! A ToR's meeting cadence and the outlook: the coming meetings of every ToR the reader may
//! see, in the environment's time zone (AHLT_TIMEZONE).
//!
//! Reading a cadence needs `tors.view` or `tor.view` on the ToR; writing one, `tors.manage`
//! or `tor.edit` on it. Anyone signed in may ask for the outlook; it holds the ToRs they may
//! view.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::Deserialize;

use super::pagination::Id;
use super::tors::{authorize, authorize_view};
use crate::domain::cadence::{Cadence, CadenceFields, CadenceInfo};
use crate::domain::outlook::{self, Outlook, Reader};
use crate::domain::{Capability, perm};
use crate::http::AppState;
use crate::http::error::{AppError, AppResult};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, CurrentUser};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/tors/{id}/cadence",
            get(show_cadence).put(put_cadence).delete(delete_cadence),
        )
        .route("/tors/outlook", get(show_outlook))
}

#[derive(serde::Serialize)]
struct CadenceAnswer {
    tor_id: i64,
    cadence: Option<CadenceInfo>,
}

async fn show_cadence(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<ApiJson<CadenceAnswer>> {
    let mut conn = state.db.acquire().await?;
    authorize_view(&mut conn, state.graph.as_ref(), &user, id.0).await?;
    let cadence = outlook::cadence_of(&mut *conn, id.0).await?;
    Ok(ApiJson(CadenceAnswer {
        tor_id: id.0,
        cadence: cadence.map(|c| c.info()),
    }))
}

async fn put_cadence(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
    ApiJson(body): ApiJson<CadenceFields>,
) -> AppResult<ApiJson<CadenceAnswer>> {
    let cadence = Cadence::from_fields(&body).map_err(AppError::Validation)?;
    let mut tx = state.db.begin().await?;
    authorize(&mut tx, &user, Capability::EditTor, id.0).await?;
    let info = outlook::set_cadence(&mut tx, &user.actor(), id.0, cadence.as_ref()).await?;
    tx.commit().await?;
    Ok(ApiJson(CadenceAnswer {
        tor_id: id.0,
        cadence: info,
    }))
}

async fn delete_cadence(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    authorize(&mut tx, &user, Capability::EditTor, id.0).await?;
    outlook::set_cadence(&mut tx, &user.actor(), id.0, None).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutlookQuery {
    /// First day, `YYYY-MM-DD`; default today in the environment's time zone.
    pub from: Option<String>,
    /// Window in days, 1..=90; default 30.
    pub days: Option<u16>,
}

impl OutlookQuery {
    /// The window this query asks for, validated.
    pub(crate) fn window(&self, tz: &jiff::tz::TimeZone) -> AppResult<(jiff::civil::Date, u16)> {
        let from = match self.from.as_deref().map(str::trim) {
            None | Some("") => outlook::today(tz),
            Some(text) => text.parse::<jiff::civil::Date>().map_err(|_| {
                AppError::BadRequest(format!("from must be a date YYYY-MM-DD, not {text:?}"))
            })?,
        };
        let days = self.days.unwrap_or(outlook::DEFAULT_DAYS);
        if !(1..=outlook::MAX_DAYS).contains(&days) {
            return Err(AppError::BadRequest(format!(
                "days must be 1 … {}, not {days}",
                outlook::MAX_DAYS
            )));
        }
        Ok((from, days))
    }
}

/// The reader of the outlook: everyone may ask; each sees the ToRs they may view.
pub(crate) fn reader(user: &CurrentUser) -> Reader {
    Reader {
        user_id: user.id,
        sees_all: user.can(perm::TORS_VIEW),
    }
}

async fn show_outlook(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(query): ApiQuery<OutlookQuery>,
) -> AppResult<ApiJson<Outlook>> {
    let tz = &state.config.timezone;
    let (from, days) = query.window(tz)?;
    let mut conn = state.db.acquire().await?;
    Ok(ApiJson(
        outlook::outlook(
            &mut conn,
            state.graph.as_ref(),
            &reader(&user),
            tz,
            from,
            days,
        )
        .await?,
    ))
}
