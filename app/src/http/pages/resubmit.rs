//! A form whose CSRF check failed (a stale tab, or a session that expired) is not lost:
//!
//! - the login form is shown again with a message and the username kept;
//! - for a logged-in user, a page lists what was entered and sends it again with a fresh
//!   token ("Send again");
//! - for a visitor whose session expired, the input (without passwords) is kept in the new
//!   session, the login page explains why, and after logging in `/resubmit` shows it to send
//!   again.
//!
//! Only HTML forms get this; `/api/*` keeps the JSON error.

use askama::Template;
use axum::Router;
use axum::extract::{OptionalFromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::auth::{render_login, respond, safe_next};
use super::layout::{Layout, render};
use crate::auth::csrf;
use crate::http::AppState;
use crate::http::error::AppResult;
use crate::http::extract::{CurrentUser, PageUser};

const PENDING_KEY: &str = "pending_form";

/// Most fields and bytes kept for a form sent again.
const MAX_FIELDS: usize = 200;

pub fn router() -> Router<AppState> {
    Router::new().route("/resubmit", get(show_pending))
}

/// A form to send again.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingForm {
    action: String,
    fields: Vec<(String, String)>,
    /// Password fields are never kept: the user types them again.
    dropped_passwords: bool,
}

struct FieldView {
    name: String,
    value: String,
    /// Shown in the summary (hidden inputs carry every kept field either way).
    shown: bool,
}

#[derive(Template)]
#[template(path = "resubmit.html")]
struct ResubmitPage {
    layout: Layout,
    action: String,
    fields: Vec<FieldView>,
    dropped_passwords: bool,
    reason: &'static str,
}

fn is_password(name: &str) -> bool {
    name.contains("password")
}

fn pending_form(path: &str, body: &[u8]) -> PendingForm {
    let mut dropped_passwords = false;
    let fields = form_urlencoded::parse(body)
        .filter(|(k, _)| k != csrf::FORM_FIELD)
        .filter(|(k, _)| {
            let secret = is_password(k);
            dropped_passwords |= secret;
            !secret
        })
        .take(MAX_FIELDS)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    PendingForm {
        action: path.to_owned(),
        fields,
        dropped_passwords,
    }
}

async fn render_pending(
    state: &AppState,
    session: &Session,
    user: &CurrentUser,
    status: StatusCode,
    pending: PendingForm,
    reason: &'static str,
) -> AppResult<Response> {
    let layout = Layout::new(state, session, Some(user), "Send the form again", "").await?;
    let page = ResubmitPage {
        layout,
        action: pending.action,
        fields: pending
            .fields
            .into_iter()
            .map(|(name, value)| FieldView {
                shown: !name.starts_with('_') && name != "next",
                name,
                value,
            })
            .collect(),
        dropped_passwords: pending.dropped_passwords,
        reason,
    };
    Ok((status, render(&page)?).into_response())
}

/// Whether the request came from a page of this site (`Sec-Fetch-Site`, else `Origin`
/// against `Host`). Only then is a failed form offered for sending again: a form posted from
/// another site must never turn into a one-click "Send again".
fn same_origin(parts: &Parts) -> bool {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if let Some(site) = header("sec-fetch-site") {
        return site == "same-origin";
    }
    match (header("origin"), header("host")) {
        (Some(origin), Some(host)) => url::Url::parse(&origin).is_ok_and(|o| {
            let authority = match o.port() {
                Some(port) => format!("{}:{port}", o.host_str().unwrap_or_default()),
                None => o.host_str().unwrap_or_default().to_owned(),
            };
            authority.eq_ignore_ascii_case(&host)
        }),
        _ => false,
    }
}

/// The answer to an HTML form whose CSRF token did not match (see the module docs), or
/// `None` when the plain refusal applies (a request from another site).
pub async fn csrf_failed(
    state: &AppState,
    session: &Session,
    parts: &mut Parts,
    body: &[u8],
) -> Option<Response> {
    if !same_origin(parts) {
        return None;
    }
    let path = parts.uri.path().to_owned();
    let user =
        <CurrentUser as OptionalFromRequestParts<AppState>>::from_request_parts(parts, state)
            .await
            .ok()
            .flatten();
    let form = pending_form(&path, body);
    let result = async {
        if path == "/login" {
            let username = form
                .fields
                .iter()
                .find(|(k, _)| k == "username")
                .map_or("", |(_, v)| v.as_str())
                .to_owned();
            let next = form
                .fields
                .iter()
                .find(|(k, _)| k == "next")
                .and_then(|(_, v)| safe_next(v));
            return render_login(
                state,
                session,
                StatusCode::FORBIDDEN,
                next,
                &username,
                Some("This login form had expired. Enter your password again.".into()),
            )
            .await;
        }
        if path == "/logout" {
            return Ok(Redirect::to("/login").into_response());
        }
        match &user {
            Some(user) => {
                render_pending(
                    state,
                    session,
                    user,
                    StatusCode::FORBIDDEN,
                    form,
                    "The form was sent with an outdated security token (it may have been open \
                     while you logged in again elsewhere).",
                )
                .await
            }
            None => {
                session.insert(PENDING_KEY, &form).await?;
                render_login(
                    state,
                    session,
                    StatusCode::FORBIDDEN,
                    Some("/resubmit".into()),
                    "",
                    Some(
                        "Your session has expired. Log in again; what you entered is kept and \
                         you can send it after logging in."
                            .into(),
                    ),
                )
                .await
            }
        }
    }
    .await;
    Some(respond(state, session, user.as_ref(), result).await)
}

/// After logging in again: the kept form, to send again.
async fn show_pending(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
) -> Response {
    let result = async {
        match session.remove::<PendingForm>(PENDING_KEY).await? {
            Some(form) => {
                render_pending(
                    &state,
                    &session,
                    &user,
                    StatusCode::OK,
                    form,
                    "Your session had expired before the form was sent.",
                )
                .await
            }
            None => Ok(Redirect::to("/").into_response()),
        }
    }
    .await;
    respond(&state, &session, Some(&user), result).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut builder = axum::http::Request::builder().uri("/tors");
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn only_forms_from_this_site_are_offered_again() {
        assert!(same_origin(&parts(&[("sec-fetch-site", "same-origin")])));
        assert!(!same_origin(&parts(&[("sec-fetch-site", "cross-site")])));
        assert!(!same_origin(&parts(&[
            ("sec-fetch-site", "same-site"),
            ("origin", "http://ahlt.example"),
            ("host", "ahlt.example")
        ])));
        assert!(same_origin(&parts(&[
            ("origin", "http://127.0.0.1:8080"),
            ("host", "127.0.0.1:8080")
        ])));
        assert!(!same_origin(&parts(&[
            ("origin", "https://evil.example"),
            ("host", "ahlt.example")
        ])));
        assert!(!same_origin(&parts(&[("host", "ahlt.example")])));
    }

    #[test]
    fn passwords_and_the_old_token_are_not_kept() {
        let form = pending_form(
            "/account/password",
            b"_csrf=old&current_password=a&new_password=b&name=x+y",
        );
        assert_eq!(form.fields, vec![("name".to_owned(), "x y".to_owned())]);
        assert!(form.dropped_passwords);
    }
}
