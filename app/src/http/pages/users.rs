//! User administration: list, create, edit (profile, active flag, roles), set a password,
//! delete. Viewing needs `users.view`; every change needs `users.manage`.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tower_sessions::Session;

use super::auth::{form_mistake, parse_id, respond};
use super::confirm;
use super::form::FormFields;
use super::layout::{Layout, flash, render};
use crate::domain::perm;
use crate::domain::roles::{self, Role};
use crate::domain::users::{self, NewUser, User, UserUpdate};
use crate::http::AppState;
use crate::http::error::{AppError, AppResult};
use crate::http::extract::{CurrentUser, PageUser};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(index).post(create))
        .route("/users/new", get(new_form))
        .route("/users/{id}", get(show).post(update))
        .route("/users/{id}/password", post(set_password))
        .route("/users/{id}/delete", post(delete))
}

/// A role checkbox.
pub struct RoleBox {
    pub name: String,
    pub label: String,
    pub checked: bool,
}

fn role_boxes(all: &[Role], checked: &[String]) -> Vec<RoleBox> {
    all.iter()
        .map(|r| RoleBox {
            name: r.name.clone(),
            label: r.label.clone(),
            checked: checked.contains(&r.name),
        })
        .collect()
}

fn optional(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

#[derive(Template)]
#[template(path = "users/index.html")]
struct IndexPage {
    layout: Layout,
    users: Vec<User>,
    can_manage: bool,
}

async fn index(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
) -> Response {
    let result: AppResult<Response> = async {
        user.require(perm::USERS_VIEW)?;
        let page = IndexPage {
            users: users::list(&state.db).await?,
            can_manage: user.can(perm::USERS_MANAGE),
            layout: Layout::new(&state, &session, Some(&user), "Users", "/users").await?,
        };
        Ok(render(&page)?.into_response())
    }
    .await;
    respond(&state, &session, Some(&user), result).await
}

#[derive(Template)]
#[template(path = "users/new.html")]
struct NewPage {
    layout: Layout,
    username: String,
    display_name: String,
    email: String,
    roles: Vec<RoleBox>,
    error: Option<String>,
}

async fn render_new(
    state: &AppState,
    session: &Session,
    user: &CurrentUser,
    status: StatusCode,
    form: &FormFields,
    error: Option<String>,
) -> AppResult<Response> {
    let page = NewPage {
        layout: Layout::new(state, session, Some(user), "New user", "/users").await?,
        username: form.get("username").to_owned(),
        display_name: form.get("display_name").to_owned(),
        email: form.get("email").to_owned(),
        roles: role_boxes(&roles::list(&state.db).await?, &form.all("roles")),
        error,
    };
    Ok((status, render(&page)?).into_response())
}

async fn new_form(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
) -> Response {
    let result: AppResult<Response> = async {
        user.require(perm::USERS_MANAGE)?;
        render_new(
            &state,
            &session,
            &user,
            StatusCode::OK,
            &FormFields::default(),
            None,
        )
        .await
    }
    .await;
    respond(&state, &session, Some(&user), result).await
}

async fn create(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    body: Bytes,
) -> Response {
    let result: AppResult<Response> = async {
        user.require(perm::USERS_MANAGE)?;
        let form = FormFields::parse(&body);
        let new = NewUser {
            username: form.get("username").to_owned(),
            display_name: form.get("display_name").trim().to_owned(),
            email: optional(form.get("email")),
            password: form.get("password").to_owned(),
            roles: form.all("roles"),
        };
        let mut tx = state.db.begin().await?;
        match users::create(&mut tx, &user.actor(), &new).await {
            Ok(created) => {
                tx.commit().await?;
                flash(
                    &session,
                    "success",
                    format!("User {} created.", created.username),
                )
                .await?;
                Ok(Redirect::to(&format!("/users/{}", created.id)).into_response())
            }
            Err(err) => {
                drop(tx);
                let (status, message) = form_mistake(err)?;
                render_new(&state, &session, &user, status, &form, Some(message)).await
            }
        }
    }
    .await;
    respond(&state, &session, Some(&user), result).await
}

#[derive(Template)]
#[template(path = "users/show.html")]
struct ShowPage {
    layout: Layout,
    target: User,
    permissions: Vec<String>,
    can_manage: bool,
    is_self: bool,
    display_name: String,
    email: String,
    is_active: bool,
    roles: Vec<RoleBox>,
    error: Option<String>,
}

/// What the edit form shows: the stored user, or what was just submitted.
struct EditValues {
    display_name: String,
    email: String,
    is_active: bool,
    roles: Vec<String>,
}

impl EditValues {
    fn of(user: &User) -> Self {
        EditValues {
            display_name: user.display_name.clone(),
            email: user.email.clone().unwrap_or_default(),
            is_active: user.is_active,
            roles: user.roles.clone(),
        }
    }

    fn submitted(form: &FormFields) -> Self {
        EditValues {
            display_name: form.get("display_name").trim().to_owned(),
            email: form.get("email").trim().to_owned(),
            is_active: form.checked("is_active"),
            roles: form.all("roles"),
        }
    }
}

async fn render_show(
    state: &AppState,
    session: &Session,
    user: &CurrentUser,
    target_id: i64,
    status: StatusCode,
    values: Option<EditValues>,
    error: Option<String>,
) -> AppResult<Response> {
    let target = users::require(&state.db, target_id).await?;
    let values = values.unwrap_or_else(|| EditValues::of(&target));
    let page = ShowPage {
        layout: Layout::new(state, session, Some(user), &target.username, "/users").await?,
        permissions: roles::effective_permissions(&state.db, target.id)
            .await?
            .into_iter()
            .collect(),
        can_manage: user.can(perm::USERS_MANAGE),
        is_self: target.id == user.id,
        display_name: values.display_name,
        email: values.email,
        is_active: values.is_active,
        roles: role_boxes(&roles::list(&state.db).await?, &values.roles),
        target,
        error,
    };
    Ok((status, render(&page)?).into_response())
}

async fn show(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    Path(id): Path<String>,
) -> Response {
    let result: AppResult<Response> = async {
        user.require(perm::USERS_VIEW)?;
        let id = parse_id(&id, "user")?;
        render_show(&state, &session, &user, id, StatusCode::OK, None, None).await
    }
    .await;
    respond(&state, &session, Some(&user), result).await
}

async fn update(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let result = save_user(&state, &session, &user, &id, &body).await;
    respond(&state, &session, Some(&user), result).await
}

async fn save_user(
    state: &AppState,
    session: &Session,
    user: &CurrentUser,
    id: &str,
    body: &[u8],
) -> AppResult<Response> {
    user.require(perm::USERS_MANAGE)?;
    let id = parse_id(id, "user")?;
    let form = FormFields::parse(body);
    let values = EditValues::submitted(&form);
    // Deactivating yourself would lock you out mid-session.
    let outcome = if id == user.id && !values.is_active {
        Err(AppError::Conflict(
            "You cannot deactivate your own account.".into(),
        ))
    } else {
        update_user(state, user, id, &values).await
    };
    match outcome {
        Ok(username) => {
            flash(session, "success", format!("User {username} saved.")).await?;
            Ok(Redirect::to(&format!("/users/{id}")).into_response())
        }
        Err(err) => {
            let (status, message) = form_mistake(err)?;
            render_show(
                state,
                session,
                user,
                id,
                status,
                Some(values),
                Some(message),
            )
            .await
        }
    }
}

/// Saves the edit form; returns the username.
async fn update_user(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    values: &EditValues,
) -> AppResult<String> {
    let change = UserUpdate {
        display_name: Some(values.display_name.clone()),
        email: Some(optional(&values.email)),
        is_active: Some(values.is_active),
        roles: Some(values.roles.clone()),
    };
    let mut tx = state.db.begin().await?;
    let updated = users::update(&mut tx, &user.actor(), id, &change).await?;
    tx.commit().await?;
    Ok(updated.username)
}

async fn set_password(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let result: AppResult<Response> = async {
        user.require(perm::USERS_MANAGE)?;
        let id = parse_id(&id, "user")?;
        let form = FormFields::parse(&body);
        let mut tx = state.db.begin().await?;
        match users::set_password(&mut tx, &user.actor(), id, form.get("password")).await {
            Ok(()) => {
                tx.commit().await?;
                flash(&session, "success", "Password set.").await?;
                Ok(Redirect::to(&format!("/users/{id}")).into_response())
            }
            Err(err) => {
                drop(tx);
                let (status, message) = form_mistake(err)?;
                render_show(&state, &session, &user, id, status, None, Some(message)).await
            }
        }
    }
    .await;
    respond(&state, &session, Some(&user), result).await
}

async fn delete(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let result: AppResult<Response> = async {
        user.require(perm::USERS_MANAGE)?;
        let id = parse_id(&id, "user")?;
        if !confirm::confirmed(&FormFields::parse(&body)) {
            let target = users::require(&state.db, id).await?;
            return confirm::page(
                &state,
                &session,
                &user,
                confirm::Confirmation {
                    question: format!("Delete user {}?", target.username),
                    consequences: vec![
                        format!("The account {} ({})", target.username, target.display_name),
                        "Their roles, positions and API tokens".into(),
                    ],
                    action: format!("/users/{id}/delete"),
                    button: "Delete user".into(),
                    cancel: format!("/users/{id}"),
                },
            )
            .await;
        }
        let mut tx = state.db.begin().await?;
        match users::delete(&mut tx, &user.actor(), id).await {
            Ok(()) => {
                tx.commit().await?;
                flash(&session, "success", "User deleted.").await?;
                Ok(Redirect::to("/users").into_response())
            }
            Err(err) => {
                drop(tx);
                let (_, message) = form_mistake(err)?;
                flash(&session, "error", message).await?;
                Ok(Redirect::to(&format!("/users/{id}")).into_response())
            }
        }
    }
    .await;
    respond(&state, &session, Some(&user), result).await
}
