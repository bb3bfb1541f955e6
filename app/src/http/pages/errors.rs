//! Errors as HTML pages: page handlers return [`HtmlError`] so a person in a browser sees a
//! readable page with the right status (a 403 for a missing permission, a 404 for an unknown
//! id) instead of the API's JSON body. Also the fallback for unknown paths.

use askama::Template;
use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, OriginalUri, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::{Router, extract::rejection::RawFormRejection};
use tower_sessions::Session;

use super::layout::Layout;
use crate::domain::DomainError;
use crate::http::AppState;
use crate::http::error::AppError;
use crate::http::extract::CurrentUser;
use crate::store::StoreError;

/// The one error page (`error.html`, in the site layout): with navigation for a logged-in
/// user, and renderable without the database or the session (a bare layout) when those are
/// what failed.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    status: u16,
    heading: &'static str,
    message: String,
    hint: Option<&'static str>,
}

/// The page heading for an error status.
pub fn heading(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => "Not logged in",
        StatusCode::FORBIDDEN => "Access denied",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::CONFLICT => "Conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "Too much data",
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
        StatusCode::SERVICE_UNAVAILABLE => "Busy",
        s if s.is_client_error() => "Request not accepted",
        _ => "Something went wrong",
    }
}

fn hint(status: StatusCode) -> Option<&'static str> {
    match status {
        StatusCode::UNAUTHORIZED => Some("Log in and try again."),
        StatusCode::FORBIDDEN => Some("Ask an administrator if you need access."),
        StatusCode::NOT_FOUND => Some("Check the address, or start again from the dashboard."),
        s if s.is_server_error() => Some("Try again in a moment."),
        _ => None,
    }
}

/// What an error page said, attached to its response so [`with_navigation`] can render it
/// again in the full layout.
#[derive(Debug, Clone)]
pub struct RenderedError {
    pub status: StatusCode,
    pub message: String,
    pub retry_after: Option<u64>,
}

fn render_error(layout: Layout, error: &RenderedError) -> Response {
    let page = ErrorPage {
        layout,
        status: error.status.as_u16(),
        heading: heading(error.status),
        message: crate::text::sentence(&error.message),
        hint: hint(error.status),
    };
    let mut response = match page.render() {
        Ok(html) => (error.status, Html(html)).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "rendering the error page failed");
            (error.status, error.message.clone()).into_response()
        }
    };
    if let Some(secs) = error.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response.extensions_mut().insert(error.clone());
    response
}

fn error_page(status: StatusCode, message: &str) -> Response {
    render_error(
        Layout::bare(heading(status)),
        &RenderedError {
            status,
            message: message.to_owned(),
            retry_after: None,
        },
    )
}

/// `err` as the error page in the full layout (navigation when `user` is logged in).
pub async fn full_error_page(
    state: &AppState,
    session: &Session,
    user: Option<&CurrentUser>,
    err: AppError,
) -> Response {
    if let AppError::Internal(e) = &err {
        tracing::error!(error = format!("{e:#}"), "page request failed");
    }
    let error = RenderedError {
        status: err.status(),
        message: HtmlError::message_of(&err),
        retry_after: err.retry_after(),
    };
    let layout = match Layout::new(state, session, user, heading(error.status), "").await {
        Ok(layout) => layout,
        Err(_) => Layout::bare(heading(error.status)),
    };
    let mut response = render_error(layout, &error);
    response.extensions_mut().insert(FullLayout);
    response
}

/// Middleware: error pages rendered without the session (by [`HtmlError`], the fallback or
/// the input guard) are rendered again in the full layout, with the navigation of the
/// logged-in user, so every HTML error looks the same.
pub async fn with_navigation(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let mut saved = parts.clone();
    let response = next.run(Request::from_parts(parts, body)).await;
    let Some(error) = response.extensions().get::<RenderedError>().cloned() else {
        return response;
    };
    if response.extensions().get::<FullLayout>().is_some() {
        return response;
    }
    let Some(session) = saved.extensions.get::<Session>().cloned() else {
        return response;
    };
    let user =
        <CurrentUser as axum::extract::OptionalFromRequestParts<AppState>>::from_request_parts(
            &mut saved, &state,
        )
        .await
        .ok()
        .flatten();
    let Ok(layout) = Layout::new(&state, &session, user.as_ref(), heading(error.status), "").await
    else {
        return response;
    };
    let mut full = render_error(layout, &error);
    full.extensions_mut().insert(FullLayout);
    full
}

/// Marks an error page already rendered in the full layout.
#[derive(Debug, Clone, Copy)]
struct FullLayout;

/// An [`AppError`] rendered as an HTML page with the error's status.
#[derive(Debug)]
pub struct HtmlError(pub AppError);

impl HtmlError {
    pub fn status(&self) -> StatusCode {
        self.0.status()
    }

    /// A mistake the user can correct (4xx), as opposed to a failure of ours.
    pub fn is_user_error(&self) -> bool {
        self.status().is_client_error()
    }

    pub fn message(&self) -> String {
        Self::message_of(&self.0)
    }

    /// The message an HTML page shows for `err`.
    pub fn message_of(err: &AppError) -> String {
        match err {
            // The domain says what is missing ("ToR 7"); make it a sentence for people.
            AppError::NotFound(what) => {
                format!("There is no {}.", crate::text::bounded_message(what))
            }
            other => other.public_message(),
        }
    }
}

impl IntoResponse for HtmlError {
    fn into_response(self) -> Response {
        if let AppError::Internal(err) = &self.0 {
            tracing::error!(error = format!("{err:#}"), "request failed");
        }
        render_error(
            Layout::bare(heading(self.status())),
            &RenderedError {
                status: self.status(),
                message: self.message(),
                retry_after: self.0.retry_after(),
            },
        )
    }
}

impl From<AppError> for HtmlError {
    fn from(err: AppError) -> Self {
        HtmlError(err)
    }
}

macro_rules! via_app_error {
    ($($from:ty),* $(,)?) => {
        $(impl From<$from> for HtmlError {
            fn from(err: $from) -> Self {
                HtmlError(AppError::from(err))
            }
        })*
    };
}

via_app_error!(
    DomainError,
    StoreError,
    sqlx::Error,
    tower_sessions::session::Error,
    PathRejection,
    QueryRejection,
    FormRejection,
);

impl From<RawFormRejection> for HtmlError {
    fn from(rejection: RawFormRejection) -> Self {
        HtmlError(AppError::BadRequest(format!(
            "invalid form: {}",
            rejection.body_text()
        )))
    }
}

/// `Path` whose rejection (say `/tors/abc`) is a 400 page.
#[derive(Debug, Clone, Copy, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(HtmlError))]
pub struct PagePath<T>(pub T);

/// `Query` whose rejection is a 400 page.
#[derive(Debug, Clone, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(HtmlError))]
pub struct PageQuery<T>(pub T);

pub type PageResult<T = Response> = Result<T, HtmlError>;

pub fn router() -> Router<AppState> {
    Router::new().fallback(not_found)
}

fn is_api_path(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// Unknown paths: an HTML 404, except under `/api`, where clients expect the JSON error.
pub async fn not_found(OriginalUri(uri): OriginalUri) -> Response {
    if is_api_path(uri.path()) {
        return AppError::NotFound(format!("no endpoint at {}", uri.path())).into_response();
    }
    error_page(StatusCode::NOT_FOUND, "There is no page at this address.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_api_paths_get_json_404s() {
        assert!(is_api_path("/api"));
        assert!(is_api_path("/api/v1/nope"));
        assert!(!is_api_path("/apiary"));
        assert!(!is_api_path("/tors/x"));
    }
}
