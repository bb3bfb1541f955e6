//! Role administration (`roles.manage`): every role with its permissions and inherited roles,
//! creating roles, and setting both sets through checkboxes.

use std::collections::BTreeSet;

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
use crate::domain::{DomainError, perm, role, roles};
use crate::http::AppState;
use crate::http::error::AppResult;
use crate::http::extract::{CurrentUser, PageUser};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/roles", get(index).post(create))
        .route("/roles/{id}", post(update))
        .route("/roles/{id}/delete", post(delete))
}

struct Check {
    value: String,
    label: String,
    checked: bool,
}

struct RoleView {
    id: i64,
    name: String,
    label: String,
    permissions: Vec<String>,
    inherits: Vec<String>,
    permission_boxes: Vec<Check>,
    role_boxes: Vec<Check>,
    /// `admin` holds every permission by definition; only its inheritance is editable.
    is_admin: bool,
    /// Seeded roles cannot be deleted.
    is_builtin: bool,
}

#[derive(Template)]
#[template(path = "roles/index.html")]
struct IndexPage {
    layout: Layout,
    roles: Vec<RoleView>,
    new_name: String,
    new_label: String,
    error: Option<String>,
}

async fn render_index(
    state: &AppState,
    session: &Session,
    user: &CurrentUser,
    status: StatusCode,
    new_role: Option<&FormFields>,
    error: Option<String>,
) -> AppResult<Response> {
    let all_roles = roles::list(&state.db).await?;
    let all_permissions = roles::permissions(&state.db).await?;
    let views = all_roles
        .iter()
        .map(|r| RoleView {
            id: r.id,
            name: r.name.clone(),
            label: r.label.clone(),
            permissions: r.permissions.clone(),
            inherits: r.inherits.clone(),
            permission_boxes: all_permissions
                .iter()
                .map(|p| Check {
                    value: p.name.clone(),
                    label: p.label.clone(),
                    checked: r.permissions.contains(&p.name),
                })
                .collect(),
            role_boxes: all_roles
                .iter()
                .filter(|other| other.id != r.id)
                .map(|other| Check {
                    value: other.name.clone(),
                    label: other.label.clone(),
                    checked: r.inherits.contains(&other.name),
                })
                .collect(),
            is_admin: r.name == role::ADMIN,
            is_builtin: roles::is_builtin(&r.name),
        })
        .collect();
    let page = IndexPage {
        layout: Layout::new(state, session, Some(user), "Roles", "/roles").await?,
        roles: views,
        new_name: new_role
            .map(|f| f.get("name").to_owned())
            .unwrap_or_default(),
        new_label: new_role
            .map(|f| f.get("label").to_owned())
            .unwrap_or_default(),
        error,
    };
    Ok((status, render(&page)?).into_response())
}

async fn index(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
) -> Response {
    let result: AppResult<Response> = async {
        user.require(perm::ROLES_MANAGE)?;
        render_index(&state, &session, &user, StatusCode::OK, None, None).await
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
        user.require(perm::ROLES_MANAGE)?;
        let form = FormFields::parse(&body);
        let name = form.get("name").trim();
        let label = match form.get("label").trim() {
            "" => name,
            label => label,
        };
        let mut tx = state.db.begin().await?;
        match roles::create(&mut tx, &user.actor(), name, label).await {
            Ok(created) => {
                tx.commit().await?;
                flash(
                    &session,
                    "success",
                    format!("Role {} created.", created.name),
                )
                .await?;
                Ok(Redirect::to(&format!("/roles#role-{}", created.id)).into_response())
            }
            Err(err) => {
                drop(tx);
                let err = match err {
                    DomainError::Conflict(_) => {
                        DomainError::Conflict(format!("a role named {name:?} already exists"))
                    }
                    other => other,
                };
                let (status, message) = form_mistake(err)?;
                render_index(&state, &session, &user, status, Some(&form), Some(message)).await
            }
        }
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
    let result: AppResult<Response> = async {
        user.require(perm::ROLES_MANAGE)?;
        let id = parse_id(&id, "role")?;
        let form = FormFields::parse(&body);
        let current = roles::get(&state.db, id).await?;
        let permissions = form.all("permissions");
        let inherits = form.all("inherits");
        let mut tx = state.db.begin().await?;
        let outcome = async {
            if current.name == role::ADMIN {
                let wanted: BTreeSet<&String> = permissions.iter().collect();
                let held: BTreeSet<&String> = current.permissions.iter().collect();
                if wanted != held {
                    return Err(DomainError::Invalid(
                        "the admin role always holds every permission".into(),
                    ));
                }
            } else {
                roles::set_permissions(&mut tx, &user.actor(), id, &permissions).await?;
            }
            roles::set_inherits(&mut tx, &user.actor(), id, &inherits).await
        }
        .await;
        match outcome {
            Ok(updated) => {
                tx.commit().await?;
                flash(&session, "success", format!("Role {} saved.", updated.name)).await?;
                Ok(Redirect::to(&format!("/roles#role-{id}")).into_response())
            }
            Err(err) => {
                drop(tx);
                let (status, message) = form_mistake(err)?;
                render_index(&state, &session, &user, status, None, Some(message)).await
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
        user.require(perm::ROLES_MANAGE)?;
        let id = parse_id(&id, "role")?;
        if !confirm::confirmed(&FormFields::parse(&body)) {
            let target = roles::get(&state.db, id).await?;
            return confirm::page(
                &state,
                &session,
                &user,
                confirm::Confirmation {
                    question: format!("Delete role {}?", target.label),
                    consequences: vec![
                        format!("The role {} ({})", target.label, target.name),
                        "Users holding it lose its permissions; roles inheriting it stop doing so"
                            .into(),
                    ],
                    action: format!("/roles/{id}/delete"),
                    button: "Delete role".into(),
                    cancel: format!("/roles#role-{id}"),
                },
            )
            .await;
        }
        let mut tx = state.db.begin().await?;
        match roles::delete(&mut tx, &user.actor(), id).await {
            Ok(deleted) => {
                tx.commit().await?;
                flash(
                    &session,
                    "success",
                    format!("Role {} deleted.", deleted.name),
                )
                .await?;
                Ok(Redirect::to("/roles").into_response())
            }
            Err(err) => {
                drop(tx);
                let (status, message) = form_mistake(err)?;
                render_index(&state, &session, &user, status, None, Some(message)).await
            }
        }
    }
    .await;
    respond(&state, &session, Some(&user), result).await
}
