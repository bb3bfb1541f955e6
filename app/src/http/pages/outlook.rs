//! The outlook page: the coming meetings of every ToR the reader may see, day by day, for a
//! chosen window (default 30 days, at most 90), in the environment's time zone. The same
//! data as `GET /api/v1/tors/outlook`.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use tower_sessions::Session;

use super::errors::{HtmlError, PageQuery, PageResult};
use super::layout::{Layout, render};
use crate::domain::outlook::{self, Meeting, Outlook};
use crate::http::AppState;
use crate::http::api::outlook::{OutlookQuery, reader};
use crate::http::extract::PageUser;

pub fn router() -> Router<AppState> {
    Router::new().route("/tors/outlook", get(outlook_page))
}

/// The meetings of one local day.
struct Day {
    date: String,
    meetings: Vec<Meeting>,
}

struct WindowOption {
    days: u16,
    selected: bool,
}

#[derive(Template)]
#[template(path = "tors/outlook.html")]
struct OutlookPage {
    layout: Layout,
    outlook: Outlook,
    days: Vec<Day>,
    windows: Vec<WindowOption>,
}

fn by_day(meetings: &[Meeting]) -> Vec<Day> {
    let mut days: Vec<Day> = Vec::new();
    for m in meetings {
        match days.last_mut() {
            Some(day) if day.date == m.date => day.meetings.push(m.clone()),
            _ => days.push(Day {
                date: m.date.clone(),
                meetings: vec![m.clone()],
            }),
        }
    }
    days
}

async fn outlook_page(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PageQuery(query): PageQuery<OutlookQuery>,
) -> PageResult {
    let tz = &state.config.timezone;
    let (from, days) = query.window(tz).map_err(HtmlError)?;
    let mut conn = state.db.acquire().await?;
    let outlook = outlook::outlook(
        &mut conn,
        state.graph.as_ref(),
        &reader(&user),
        tz,
        from,
        days,
    )
    .await?;
    drop(conn);
    let windows = [7, 14, 30, 60, 90]
        .into_iter()
        .map(|d| WindowOption {
            days: d,
            selected: d == days,
        })
        .collect();
    let layout = Layout::new(&state, &session, Some(&user), "Outlook", "/tors/outlook").await?;
    let page = OutlookPage {
        layout,
        days: by_day(&outlook.meetings),
        outlook,
        windows,
    };
    Ok(render(&page)?.into_response())
}
