//! The confirmation step of destructive actions, without JavaScript: the action's form posts
//! without `confirm=yes`, the handler answers with this page saying what will be lost, and its
//! own form (CSRF-protected like every form) posts again with `confirm=yes`.

use askama::Template;
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;

use super::form::FormFields;
use super::layout::{Layout, render};
use crate::http::AppState;
use crate::http::error::AppResult;
use crate::http::extract::CurrentUser;

/// The field that confirms a destructive action.
pub const FIELD: &str = "confirm";

/// Whether the form carries the confirmation.
pub fn confirmed(form: &FormFields) -> bool {
    form.get(FIELD) == "yes"
}

/// What the confirmation page asks.
pub struct Confirmation {
    /// "Delete ToR Board?"
    pub question: String,
    /// What goes with it, one line each.
    pub consequences: Vec<String>,
    /// Where the confirmed form posts.
    pub action: String,
    /// "Delete ToR"
    pub button: String,
    /// Where "Cancel" leads.
    pub cancel: String,
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    layout: Layout,
    c: Confirmation,
}

/// The confirmation page for `c`.
pub async fn page(
    state: &AppState,
    session: &Session,
    user: &CurrentUser,
    c: Confirmation,
) -> AppResult<Response> {
    let layout = Layout::new(state, session, Some(user), &c.question, "").await?;
    Ok(render(&ConfirmPage { layout, c })?.into_response())
}
