//! CSRF protection (synchronizer token): every session carries a random token; every
//! state-changing request authenticated by the session cookie must echo it, either in the
//! `X-CSRF-Token` header or in a `_csrf` form field. Bearer-token requests carry no ambient
//! credentials and are exempt.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use rand::RngCore;
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use crate::http::AppState;
use crate::http::error::AppError;

pub const SESSION_KEY: &str = "csrf_token";
pub const HEADER: &str = "x-csrf-token";
pub const FORM_FIELD: &str = "_csrf";
/// Largest form body the middleware will buffer to find the token.
const MAX_FORM_BYTES: usize = crate::http::input::MAX_BODY_BYTES;

/// The session's token, created on first use.
pub async fn token(session: &Session) -> Result<String, AppError> {
    if let Some(token) = session.get::<String>(SESSION_KEY).await? {
        return Ok(token);
    }
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    session.insert(SESSION_KEY, &token).await?;
    Ok(token)
}

fn matches(expected: &str, given: &str) -> bool {
    expected.len() == given.len() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

fn is_bearer(req: &Request) -> bool {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer "))
}

/// Middleware: rejects unsafe requests whose CSRF token does not match the session's. An HTML
/// form (outside `/api`) that fails is not lost: see [`crate::http::pages::resubmit`].
pub async fn verify(
    State(state): State<AppState>,
    session: Session,
    req: Request,
    next: Next,
) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) || is_bearer(&req) {
        return next.run(req).await;
    }
    let expected = match session.get::<String>(SESSION_KEY).await {
        Ok(t) => t,
        Err(e) => return AppError::from(e).into_response(),
    };
    if let Some(given) = req.headers().get(HEADER).and_then(|v| v.to_str().ok()) {
        return if expected.is_some_and(|e| matches(&e, given)) {
            next.run(req).await
        } else {
            AppError::Csrf.into_response()
        };
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return AppError::Csrf.into_response();
    }
    let (mut parts, body) = req.into_parts();
    let bytes = match to_bytes(body, MAX_FORM_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return AppError::PayloadTooLarge("the form is too large".into()).into_response();
        }
    };
    let given = form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == FORM_FIELD)
        .map(|(_, v)| v.into_owned());
    match (expected, given) {
        (Some(expected), Some(given)) if matches(&expected, &given) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        _ if !is_api(parts.uri.path()) => {
            match crate::http::pages::resubmit::csrf_failed(&state, &session, &mut parts, &bytes)
                .await
            {
                Some(response) => response,
                None => crate::http::pages::errors::HtmlError(AppError::Csrf).into_response(),
            }
        }
        _ => AppError::Csrf.into_response(),
    }
}

fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}
