//! Extractors: the authenticated user (session or bearer token), the request id, and JSON,
//! path and query extractors whose rejections are our JSON errors.

use std::collections::BTreeSet;

use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use super::AppState;
use super::error::AppError;
use crate::auth::session;
use crate::domain::audit::Actor;

/// `Json` whose rejection is an [`AppError`] (400 with a JSON body).
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct ApiJson<T>(pub T);

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct ApiPath<T>(pub T);

#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct ApiQuery<T>(pub T);

#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::extract::Form), rejection(AppError))]
pub struct ApiForm<T>(pub T);

/// The `x-request-id` set by the request-id layer.
#[derive(Debug, Clone, Default)]
pub struct RequestId(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestId(
            parts
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Session,
    BearerToken,
}

/// The authenticated, active user and their effective permissions.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub permissions: std::sync::Arc<BTreeSet<String>>,
    pub method: AuthMethod,
    pub request_id: Option<String>,
}

impl CurrentUser {
    pub fn can(&self, permission: &str) -> bool {
        self.permissions.contains(permission)
    }

    /// `Err(Forbidden)` unless the user holds `permission`.
    pub fn require(&self, permission: &str) -> Result<(), AppError> {
        if self.can(permission) {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "this needs the {permission} permission"
            )))
        }
    }

    /// The actor for audit entries written on this user's behalf.
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: Some(self.id),
            name: self.username.clone(),
            request_id: self.request_id.clone(),
        }
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

async fn authenticate(
    parts: &mut Parts,
    state: &AppState,
) -> Result<Option<CurrentUser>, AppError> {
    let request_id = RequestId::from_request_parts(parts, state)
        .await
        .unwrap_or_default()
        .0;
    let (user_id, method) = if let Some(token) = bearer(parts) {
        // A presented but invalid token is an error, never a fall-back to the cookie.
        match state.access.token_user(&state.db, token).await? {
            Some(id) => (id, AuthMethod::BearerToken),
            None => return Err(AppError::Unauthenticated),
        }
    } else {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|(_, msg)| {
                AppError::internal(anyhow::anyhow!("session layer missing: {msg}"))
            })?;
        match session::user_id(&session).await? {
            Some(id) => (id, AuthMethod::Session),
            None => return Ok(None),
        }
    };
    let principal = state.access.principal(&state.db, user_id).await?;
    let Some(user) = principal.user.as_ref().filter(|u| u.is_active) else {
        return Ok(None);
    };
    Ok(Some(CurrentUser {
        id: user.id,
        username: user.username.clone(),
        display_name: user.display_name.clone(),
        permissions: principal.permissions.clone(),
        method,
        request_id,
    }))
}

/// For the JSON API: a missing or bad credential is a 401 JSON error.
impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(user) = parts.extensions.get::<CurrentUser>() {
            return Ok(user.clone());
        }
        let user = authenticate(parts, state)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        parts.extensions.insert(user.clone());
        Ok(user)
    }
}

impl OptionalFromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        match <CurrentUser as FromRequestParts<AppState>>::from_request_parts(parts, state).await {
            Ok(user) => Ok(Some(user)),
            Err(AppError::Unauthenticated) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// For HTML pages: an anonymous visitor is sent to the login page and brought back after.
#[derive(Debug, Clone)]
pub struct PageUser(pub CurrentUser);

impl FromRequestParts<AppState> for PageUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match <CurrentUser as FromRequestParts<AppState>>::from_request_parts(parts, state).await {
            Ok(user) => Ok(PageUser(user)),
            Err(AppError::Unauthenticated) => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let target = format!(
                    "/login?next={}",
                    form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                );
                Err(Redirect::to(&target).into_response())
            }
            Err(e) => Err(crate::http::pages::errors::HtmlError(e).into_response()),
        }
    }
}
