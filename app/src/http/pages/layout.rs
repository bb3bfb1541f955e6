//! What every page shares: title, navigation (from the seeded nav items, filtered by the
//! user's permissions), the CSRF token for forms, and a one-shot flash message.

use askama::Template;
use axum::response::Html;
use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;
use tower_sessions::Session;

use crate::auth::csrf;
use crate::http::AppState;
use crate::http::error::{AppError, AppResult};
use crate::http::extract::CurrentUser;

const FLASH_KEY: &str = "flash";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flash {
    /// `success` or `error`.
    pub kind: String,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct NavLink {
    pub label: String,
    pub path: String,
    pub active: bool,
}

#[derive(Debug, Clone)]
pub struct Layout {
    pub title: String,
    pub user: Option<CurrentUser>,
    pub nav: Vec<NavLink>,
    pub csrf: String,
    pub env_name: String,
    pub app_env: &'static str,
    pub flash: Option<Flash>,
    /// The environment's time zone (AHLT_TIMEZONE), for times shown on pages.
    pub timezone: String,
}

impl Layout {
    /// A layout without session or database: no user, no navigation, no CSRF token (for
    /// pages rendered where those may be what failed).
    pub fn bare(title: &str) -> Self {
        Layout {
            title: title.to_owned(),
            user: None,
            nav: Vec::new(),
            csrf: String::new(),
            env_name: String::new(),
            app_env: "",
            flash: None,
            timezone: String::new(),
        }
    }

    /// Builds the layout for a page at `path` and consumes any pending flash message.
    pub async fn new(
        state: &AppState,
        session: &Session,
        user: Option<&CurrentUser>,
        title: &str,
        path: &str,
    ) -> AppResult<Self> {
        let nav = match user {
            Some(user) => nav_links(&state.db, user, path).await?,
            None => Vec::new(),
        };
        Ok(Layout {
            title: title.to_owned(),
            user: user.cloned(),
            nav,
            csrf: csrf::token(session).await?,
            env_name: state.config.env_name.clone(),
            app_env: state.config.app_env.as_str(),
            flash: session.remove::<Flash>(FLASH_KEY).await?,
            timezone: state
                .config
                .timezone
                .iana_name()
                .unwrap_or("UTC")
                .to_owned(),
        })
    }
}

async fn nav_links(
    exec: impl PgExecutor<'_>,
    user: &CurrentUser,
    path: &str,
) -> AppResult<Vec<NavLink>> {
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT n.label, p.value #>> '{}', q.value #>> '{}' FROM entities n \
         JOIN entity_properties p ON p.entity_id = n.id AND p.key = 'path' \
         LEFT JOIN entity_properties q ON q.entity_id = n.id AND q.key = 'permission' \
         WHERE n.entity_type = 'nav_item' AND n.is_active ORDER BY n.sort_order, n.id",
    )
    .fetch_all(exec)
    .await?;
    let mut links: Vec<NavLink> = rows
        .into_iter()
        .filter(|(_, _, permission)| permission.as_deref().is_none_or(|p| user.can(p)))
        .map(|(label, link, _)| {
            let active = if link == "/" {
                path == "/"
            } else {
                path == link || path.starts_with(&format!("{link}/"))
            };
            NavLink {
                label,
                path: link,
                active,
            }
        })
        .collect();
    // Only the most specific link is active (the outlook at /tors/outlook, not ToRs).
    let longest = links
        .iter()
        .filter(|l| l.active)
        .map(|l| l.path.len())
        .max();
    for link in &mut links {
        link.active = link.active && Some(link.path.len()) == longest;
    }
    Ok(links)
}

/// Queues a message for the next page this session renders.
pub async fn flash(session: &Session, kind: &str, message: impl Into<String>) -> AppResult<()> {
    session
        .insert(
            FLASH_KEY,
            Flash {
                kind: kind.to_owned(),
                message: message.into(),
            },
        )
        .await?;
    Ok(())
}

pub fn render<T: Template>(template: &T) -> AppResult<Html<String>> {
    template.render().map(Html).map_err(AppError::internal)
}
