//! Users: list, read, create, update, delete, and where their capabilities come from.
//! Passwords go in, never out. Nobody hands out a role granting more than they hold, nor
//! changes a user who holds more than they do.

use std::collections::{BTreeMap, BTreeSet};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use super::pagination::{Id, PageParams};
use super::{Items, created, nullable, require_self_or};
use crate::domain::abac::{self, Grant};
use crate::domain::perm;
use crate::domain::roles;
use crate::domain::users::{self, NewUser, User, UserUpdate};
use crate::http::AppState;
use crate::http::error::{AppError, AppResult};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, CurrentUser};
use crate::store::Page;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/me", get(me))
        .route("/users/{id}", get(show).patch(update).delete(remove))
        .route("/users/{id}/capabilities", get(capabilities))
}

async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(params): ApiQuery<PageParams>,
) -> AppResult<ApiJson<Page<User>>> {
    user.require(perm::USERS_VIEW)?;
    let page = params.request()?;
    Ok(ApiJson(users::page(&state.db, page).await?))
}

#[derive(Debug, Serialize)]
struct Me {
    #[serde(flatten)]
    user: User,
    permissions: BTreeSet<String>,
}

async fn me(State(state): State<AppState>, user: CurrentUser) -> AppResult<ApiJson<Me>> {
    Ok(ApiJson(Me {
        user: users::require(&state.db, user.id).await?,
        permissions: user.permissions.as_ref().clone(),
    }))
}

async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<ApiJson<User>> {
    require_self_or(&user, id.0, perm::USERS_VIEW)?;
    Ok(ApiJson(users::require(&state.db, id.0).await?))
}

/// Every permission a role grants, through inheritance too.
fn role_permissions(all: &[roles::Role], name: &str) -> Option<BTreeSet<String>> {
    let by_name: BTreeMap<&str, &roles::Role> = all.iter().map(|r| (r.name.as_str(), r)).collect();
    by_name.get(name)?;
    let mut seen = BTreeSet::new();
    let mut todo = vec![name];
    let mut permissions = BTreeSet::new();
    while let Some(n) = todo.pop() {
        if !seen.insert(n) {
            continue;
        }
        if let Some(role) = by_name.get(n) {
            permissions.extend(role.permissions.iter().cloned());
            todo.extend(role.inherits.iter().map(String::as_str));
        }
    }
    Some(permissions)
}

/// Refuses to hand out a role that grants a permission the caller does not hold.
async fn check_grantable(
    conn: &mut PgConnection,
    caller: &CurrentUser,
    wanted: &[String],
) -> AppResult<()> {
    if wanted.is_empty() {
        return Ok(());
    }
    let all = roles::list(&mut *conn).await?;
    for name in wanted {
        let granted = role_permissions(&all, name)
            .ok_or_else(|| AppError::Validation(format!("unknown role {name:?}")))?;
        let missing: Vec<&str> = granted
            .iter()
            .filter(|p| !caller.can(p))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(AppError::Forbidden(format!(
                "role {name} grants permissions you do not hold: {}",
                missing.join(", ")
            )));
        }
    }
    Ok(())
}

/// Refuses to change a user who holds permissions the caller lacks: resetting an
/// administrator's password would otherwise hand their account to a mere user manager.
async fn check_manageable(
    conn: &mut PgConnection,
    caller: &CurrentUser,
    target: i64,
) -> AppResult<()> {
    let held = roles::effective_permissions(&mut *conn, target).await?;
    let beyond: Vec<&str> = held
        .iter()
        .filter(|p| !caller.can(p))
        .map(String::as_str)
        .collect();
    if beyond.is_empty() {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!(
            "user {target} holds permissions you do not: {}",
            beyond.join(", ")
        )))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    username: String,
    display_name: String,
    #[serde(default)]
    email: Option<String>,
    password: String,
    #[serde(default)]
    roles: Vec<String>,
}

async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<NewUserBody>,
) -> AppResult<Response> {
    user.require(perm::USERS_MANAGE)?;
    let mut tx = state.db.begin().await?;
    check_grantable(&mut tx, &user, &body.roles).await?;
    let new = NewUser {
        username: body.username,
        display_name: body.display_name,
        email: body.email,
        password: body.password,
        roles: body.roles,
    };
    let created_user = users::create(&mut tx, &user.actor(), &new).await?;
    tx.commit().await?;
    created(format!("/api/v1/users/{}", created_user.id), created_user)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserPatchBody {
    display_name: Option<String>,
    /// `null` clears the email.
    #[serde(default, deserialize_with = "nullable")]
    email: Option<Option<String>>,
    is_active: Option<bool>,
    roles: Option<Vec<String>>,
    password: Option<String>,
}

async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
    ApiJson(body): ApiJson<UserPatchBody>,
) -> AppResult<ApiJson<User>> {
    user.require(perm::USERS_MANAGE)?;
    let mut tx = state.db.begin().await?;
    let before = users::require(&mut *tx, id.0).await?;
    check_manageable(&mut tx, &user, id.0).await?;
    if id.0 == user.id && body.is_active == Some(false) {
        return Err(AppError::Conflict(
            "you cannot deactivate your own account".into(),
        ));
    }
    if let Some(roles) = &body.roles {
        let added: Vec<String> = roles
            .iter()
            .filter(|r| !before.roles.contains(r))
            .cloned()
            .collect();
        check_grantable(&mut tx, &user, &added).await?;
    }
    let actor = user.actor();
    let update = UserUpdate {
        display_name: body.display_name,
        email: body.email,
        is_active: body.is_active,
        roles: body.roles,
    };
    let after = users::update(&mut tx, &actor, id.0, &update).await?;
    if let Some(password) = &body.password {
        users::set_password(&mut tx, &actor, id.0, password).await?;
    }
    tx.commit().await?;
    Ok(ApiJson(after))
}

async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<StatusCode> {
    user.require(perm::USERS_MANAGE)?;
    let mut tx = state.db.begin().await?;
    users::require(&mut *tx, id.0).await?;
    check_manageable(&mut tx, &user, id.0).await?;
    users::delete(&mut tx, &user.actor(), id.0).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn capabilities(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<Id>,
) -> AppResult<ApiJson<Items<Grant>>> {
    require_self_or(&user, id.0, perm::USERS_VIEW)?;
    let mut conn = state.db.acquire().await?;
    users::require(&mut *conn, id.0).await?;
    Ok(ApiJson(Items {
        items: abac::grants(&mut *conn, state.graph.as_ref(), id.0).await?,
    }))
}
