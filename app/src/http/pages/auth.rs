//! Login and logout pages, and what every page handler shares for authorization and errors:
//! HTML error pages (403 when a permission is missing), form parsing with repeated fields
//! (checkboxes), and the same-site check for `?next=`.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tower_sessions::Session;

use super::form::FormFields;
use super::layout::{Layout, render};
use crate::auth::rate_limit::ClientIp;
use crate::auth::{csrf, login, session};
use crate::domain::audit;
use crate::domain::kind;
use crate::http::AppState;
use crate::http::error::{AppError, AppResult};
use crate::http::extract::CurrentUser;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_form).post(login_submit))
        .route("/logout", post(logout))
}

/// Splits errors a form should show next to its fields (bad input, conflicts) from real
/// failures, which become an error page.
pub fn form_mistake(err: impl Into<AppError>) -> AppResult<(StatusCode, String)> {
    match err.into() {
        err @ (AppError::Validation(_) | AppError::Conflict(_) | AppError::BadRequest(_)) => {
            Ok((err.status(), crate::text::sentence(&err.public_message())))
        }
        other => Err(other),
    }
}

/// A path id; anything that is not one is a 404 (the page does not exist).
pub fn parse_id(raw: &str, what: &str) -> AppResult<i64> {
    crate::http::api::pagination::Id::parse(raw)
        .map(|id| id.0)
        .ok_or_else(|| AppError::NotFound(format!("{what} {:?}", crate::text::clip(raw))))
}

/// `next` if it is a path on this site; protocol-relative (`//host`), backslash tricks
/// (`/\host`, which browsers read as `//host`), absolute URLs and control characters are refused.
pub fn safe_next(raw: &str) -> Option<String> {
    let ok = raw.starts_with('/')
        && !raw.starts_with("//")
        && raw.len() <= 2048
        && !raw
            .chars()
            .any(|c| c == '\\' || c.is_control() || c.is_whitespace());
    ok.then(|| raw.to_owned())
}

/// `err` as an HTML page in the site layout, with the error's status.
pub async fn error_page(
    state: &AppState,
    session: &Session,
    user: Option<&CurrentUser>,
    err: AppError,
) -> Response {
    super::errors::full_error_page(state, session, user, err).await
}

/// The handler's response, or its error rendered as an HTML page.
pub async fn respond(
    state: &AppState,
    session: &Session,
    user: Option<&CurrentUser>,
    result: AppResult<Response>,
) -> Response {
    match result {
        Ok(response) => response,
        Err(err) => error_page(state, session, user, err).await,
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    next: String,
    username: String,
    error: Option<String>,
}

pub(crate) async fn render_login(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    next: Option<String>,
    username: &str,
    error: Option<String>,
) -> AppResult<Response> {
    let page = LoginPage {
        layout: Layout::new(state, session, None, "Log in", "/login").await?,
        next: next.unwrap_or_default(),
        username: username.to_owned(),
        error,
    };
    Ok((status, render(&page)?).into_response())
}

async fn login_form(
    State(state): State<AppState>,
    session: Session,
    user: Option<CurrentUser>,
    RawQuery(query): RawQuery,
) -> Response {
    let next = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "next")
        .and_then(|(_, v)| safe_next(&v));
    if user.is_some() {
        return Redirect::to(next.as_deref().unwrap_or("/")).into_response();
    }
    let result = render_login(&state, &session, StatusCode::OK, next, "", None).await;
    respond(&state, &session, None, result).await
}

async fn login_submit(
    State(state): State<AppState>,
    session: Session,
    ClientIp(client_ip): ClientIp,
    body: Bytes,
) -> Response {
    let form = FormFields::parse(&body);
    let username = form.get("username").trim();
    let password = form.get("password");
    let next = safe_next(form.get("next"));
    let result = if username.is_empty() || password.is_empty() {
        render_login(
            &state,
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            next,
            username,
            Some("Enter your username and password.".into()),
        )
        .await
    } else {
        match login::attempt(&state, username, password, &client_ip).await {
            Ok(user) => finish_login(&session, user.id, next).await,
            Err(AppError::BadCredentials) => {
                render_login(
                    &state,
                    &session,
                    StatusCode::UNAUTHORIZED,
                    next,
                    username,
                    Some(AppError::BadCredentials.public_message()),
                )
                .await
            }
            Err(err @ AppError::RateLimited { retry_after_secs }) => render_login(
                &state,
                &session,
                StatusCode::TOO_MANY_REQUESTS,
                next,
                username,
                Some(err.public_message()),
            )
            .await
            .map(|mut response| {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
                response
            }),
            Err(err) => Err(err),
        }
    };
    respond(&state, &session, None, result).await
}

async fn finish_login(
    session: &Session,
    user_id: i64,
    next: Option<String>,
) -> AppResult<Response> {
    session::log_in(session, user_id).await?;
    // A fresh CSRF token for the authenticated session; the anonymous one is not carried over.
    session.remove::<String>(csrf::SESSION_KEY).await?;
    Ok(Redirect::to(next.as_deref().unwrap_or("/")).into_response())
}

async fn logout(
    State(state): State<AppState>,
    session: Session,
    user: Option<CurrentUser>,
) -> Response {
    let result: AppResult<Response> = async {
        if let Some(user) = &user {
            let mut tx = state.db.begin().await?;
            audit::record(
                &mut tx,
                &user.actor(),
                "auth.logout",
                Some((kind::USER, user.id)),
                serde_json::json!({}),
            )
            .await?;
            tx.commit().await?;
        }
        session::log_out(&session).await?;
        Ok(Redirect::to("/login").into_response())
    }
    .await;
    respond(&state, &session, None, result).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_accepts_only_paths_on_this_site() {
        assert_eq!(safe_next("/users?x=1").as_deref(), Some("/users?x=1"));
        for bad in [
            "",
            "//evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "evil.example",
            "/ok\r\nSet-Cookie: x",
            "javascript:alert(1)",
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
    }
}
