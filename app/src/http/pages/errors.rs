//! Errors as HTML pages: page handlers return [`HtmlError`] so a person in a browser sees a
//! readable page with the right status (a 403 for a missing permission, a 404 for an unknown
//! id) instead of the API's JSON body. Also the fallback for unknown paths.

use askama::Template;
use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::{Router, extract::rejection::RawFormRejection};

use crate::domain::DomainError;
use crate::http::AppState;
use crate::http::error::AppError;
use crate::store::StoreError;

/// The error page. Standalone (it does not extend `base.html`) so that it renders without the
/// database or the session, which may be exactly what failed.
#[derive(Template)]
#[template(path = "errors/error.html")]
struct ErrorPage<'a> {
    status: u16,
    reason: &'a str,
    message: &'a str,
    hint: Option<&'a str>,
}

fn error_page(status: StatusCode, message: &str) -> Response {
    let hint = match status {
        StatusCode::UNAUTHORIZED => Some("Log in and try again."),
        StatusCode::FORBIDDEN => Some("Ask an administrator if you need access."),
        StatusCode::NOT_FOUND => Some("Check the address, or start again from the dashboard."),
        _ => None,
    };
    let page = ErrorPage {
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or("Error"),
        message,
        hint,
    };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "rendering the error page failed");
            (status, message.to_owned()).into_response()
        }
    }
}

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
        match &self.0 {
            // The domain says what is missing ("ToR 7"); make it a sentence for people.
            AppError::NotFound(what) => format!("There is no {what}."),
            other => other.public_message(),
        }
    }
}

impl IntoResponse for HtmlError {
    fn into_response(self) -> Response {
        if let AppError::Internal(err) = &self.0 {
            tracing::error!(error = format!("{err:#}"), "request failed");
        }
        let mut response = error_page(self.status(), &self.message());
        if let AppError::RateLimited { retry_after_secs } = self.0 {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
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
