//! `GET /account`: the user's own profile, changing their password (the current one is
//! checked, and failures count toward login rate limiting), and their API tokens. A new
//! token's secret is shown once, in the response that created it, and stored nowhere.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::json;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};
use tower_sessions::Session;

use super::auth::{form_mistake, parse_id, respond};
use super::confirm;
use super::form::FormFields;
use super::layout::{Layout, flash, render};
use crate::auth::rate_limit::{self, ClientIp};
use crate::auth::{password, tokens};
use crate::domain::audit;
use crate::domain::{roles, users};
use crate::http::AppState;
use crate::http::error::AppResult;
use crate::http::extract::{CurrentUser, PageUser};

const MAX_TOKEN_NAME: usize = 100;
const TOKEN_TARGET: &str = "api_token";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(show))
        .route("/account/password", post(change_password))
        .route("/account/tokens", post(create_token))
        .route("/account/tokens/{id}/revoke", post(revoke_token))
}

fn format_time(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
        .unwrap_or_else(|_| t.to_string())
}

struct TokenRow {
    id: i64,
    name: String,
    created: String,
    last_used: Option<String>,
    revoked: Option<String>,
}

struct NewToken {
    name: String,
    secret: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    layout: Layout,
    me: users::User,
    permissions: Vec<String>,
    tokens: Vec<TokenRow>,
    new_token: Option<NewToken>,
    token_name: String,
    password_error: Option<String>,
    token_error: Option<String>,
}

/// What a re-rendered account page shows besides the stored data.
#[derive(Default)]
struct Extra {
    new_token: Option<NewToken>,
    token_name: String,
    password_error: Option<String>,
    token_error: Option<String>,
}

async fn render_account(
    state: &AppState,
    session: &Session,
    user: &CurrentUser,
    status: StatusCode,
    extra: Extra,
) -> AppResult<Response> {
    let me = users::require(&state.db, user.id).await?;
    let tokens = tokens::list(&state.db, user.id)
        .await?
        .into_iter()
        .map(|t| TokenRow {
            id: t.id,
            name: t.name,
            created: format_time(t.created_at),
            last_used: t.last_used_at.map(format_time),
            revoked: t.revoked_at.map(format_time),
        })
        .collect();
    let page = AccountPage {
        layout: Layout::new(state, session, Some(user), "Your account", "/account").await?,
        me,
        permissions: roles::effective_permissions(&state.db, user.id)
            .await?
            .into_iter()
            .collect(),
        tokens,
        new_token: extra.new_token,
        token_name: extra.token_name,
        password_error: extra.password_error,
        token_error: extra.token_error,
    };
    let mut response = (status, render(&page)?).into_response();
    // A page holding a fresh secret must not linger in caches or history.
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

async fn show(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
) -> Response {
    let result = render_account(&state, &session, &user, StatusCode::OK, Extra::default()).await;
    respond(&state, &session, Some(&user), result).await
}

async fn change_password(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    ClientIp(client_ip): ClientIp,
    body: Bytes,
) -> Response {
    let result: AppResult<Response> = async {
        let form = FormFields::parse(&body);
        let current = form.get("current_password");
        let new = form.get("new_password");
        let mistake = |status: StatusCode, message: &str| {
            let extra = Extra {
                password_error: Some(message.to_owned()),
                ..Extra::default()
            };
            (status, extra)
        };
        if new != form.get("confirm_password") {
            let (status, extra) = mistake(
                StatusCode::UNPROCESSABLE_ENTITY,
                "The new password and its confirmation differ.",
            );
            return render_account(&state, &session, &user, status, extra).await;
        }
        // Guessing the current password from a stolen session is throttled like a login.
        let limits = state.config.login_limits;
        let reservation =
            rate_limit::reserve(&state.db, &limits, &user.username, &client_ip).await?;
        let hash = users::password_hash(&state.db, user.id).await?;
        let verified = match hash {
            Some(hash) => password::verify(current, &hash)
                .await
                .map_err(crate::auth::login::busy)?,
            None => false,
        };
        if verified {
            let mut conn = state.db.acquire().await?;
            rate_limit::resolve(&mut conn, reservation, true).await?;
        } else {
            let (status, extra) = mistake(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Your current password is not correct.",
            );
            return render_account(&state, &session, &user, status, extra).await;
        }
        let mut tx = state.db.begin().await?;
        match users::set_password(&mut tx, &user.actor(), user.id, new).await {
            Ok(()) => {
                tx.commit().await?;
                // New credentials, new session id: a copied cookie does not carry over.
                session.cycle_id().await?;
                flash(&session, "success", "Your password has been changed.").await?;
                Ok(Redirect::to("/account").into_response())
            }
            Err(err) => {
                drop(tx);
                let (status, message) = form_mistake(err)?;
                let (status, extra) = mistake(status, &message);
                render_account(&state, &session, &user, status, extra).await
            }
        }
    }
    .await;
    respond(&state, &session, Some(&user), result).await
}

async fn create_token(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    body: Bytes,
) -> Response {
    let result: AppResult<Response> = async {
        let form = FormFields::parse(&body);
        let name = form.get("name").trim();
        if name.is_empty() || name.chars().count() > MAX_TOKEN_NAME {
            let extra = Extra {
                token_name: name.to_owned(),
                token_error: Some(format!(
                    "Give the token a name of 1 to {MAX_TOKEN_NAME} characters."
                )),
                ..Extra::default()
            };
            return render_account(
                &state,
                &session,
                &user,
                StatusCode::UNPROCESSABLE_ENTITY,
                extra,
            )
            .await;
        }
        let mut tx = state.db.begin().await?;
        let (token, secret) = tokens::create(&mut *tx, user.id, name).await?;
        audit::record(
            &mut tx,
            &user.actor(),
            "api_token.create",
            Some((TOKEN_TARGET, token.id)),
            json!({"name": token.name, "user_id": user.id}),
        )
        .await?;
        tx.commit().await?;
        let extra = Extra {
            new_token: Some(NewToken {
                name: token.name,
                secret,
            }),
            ..Extra::default()
        };
        render_account(&state, &session, &user, StatusCode::CREATED, extra).await
    }
    .await;
    respond(&state, &session, Some(&user), result).await
}

async fn revoke_token(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let result: AppResult<Response> = async {
        let id = parse_id(&id, "API token")?;
        if !confirm::confirmed(&FormFields::parse(&body)) {
            return confirm::page(
                &state,
                &session,
                &user,
                confirm::Confirmation {
                    question: "Revoke this API token?".into(),
                    consequences: vec![
                        "Scripts and integrations using it stop working at once".into(),
                    ],
                    action: format!("/account/tokens/{id}/revoke"),
                    button: "Revoke token".into(),
                    cancel: "/account".into(),
                },
            )
            .await;
        }
        let mut tx = state.db.begin().await?;
        if tokens::revoke(&mut *tx, user.id, id).await? {
            audit::record(
                &mut tx,
                &user.actor(),
                "api_token.revoke",
                Some((TOKEN_TARGET, id)),
                json!({"user_id": user.id}),
            )
            .await?;
            tx.commit().await?;
            flash(&session, "success", "Token revoked.").await?;
        } else {
            drop(tx);
            flash(&session, "error", "No such live token of yours.").await?;
        }
        Ok(Redirect::to("/account").into_response())
    }
    .await;
    respond(&state, &session, Some(&user), result).await
}
