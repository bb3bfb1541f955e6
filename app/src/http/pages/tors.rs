//! ToR pages: the list, creation, the detail page with its edit forms, functions (positions)
//! and who fills them.
//!
//! Managing is allowed by the `tors.manage` permission, or on one ToR by the matching ABAC
//! capability (`tor.edit` for the ToR and its functions, `members.manage` for holders).

use crate::http::api::pagination::Id;
use std::collections::{BTreeSet, HashMap, HashSet};

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use tower_sessions::Session;

use super::confirm;
use super::errors::{HtmlError, PagePath, PageResult};
use super::form::FormFields;
use super::layout::{Layout, flash, render};
use super::tor_dependencies::DependencyValues;
use crate::domain::cadence::{CadenceFields, CadenceInfo};
use crate::domain::dependencies::{self, DependencyKind, DependencyView};
use crate::domain::outlook;
use crate::domain::tors::{
    self, FunctionUpdate, NewFunction, NewTor, TorFunction, TorSummary, TorUpdate,
};
use crate::domain::{Capability, UserRef, abac, perm, users};
use crate::http::AppState;
use crate::http::error::AppError;
use crate::http::extract::{CurrentUser, PageUser};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tors", get(list).post(create))
        .route("/tors/new", get(new_form))
        .route("/tors/{id}", get(show).post(update))
        .route("/tors/{id}/delete", post(delete))
        .route("/tors/{id}/functions", post(add_function))
        .route("/tors/{id}/functions/{fid}", post(update_function))
        .route("/tors/{id}/functions/{fid}/delete", post(delete_function))
        .route("/tors/{id}/functions/{fid}/assign", post(assign))
        .route("/tors/{id}/functions/{fid}/vacate", post(vacate))
}

/// Depth-first order of a forest given by parent links, with each item's depth. Items whose
/// parent is absent are roots; items caught in a parent cycle (which only hand-written data can
/// contain) are still listed, once, so nothing silently disappears.
pub(super) fn hierarchy<T>(
    items: &[T],
    id: impl Fn(&T) -> i64,
    parent: impl Fn(&T) -> Option<i64>,
) -> Vec<(usize, &T)> {
    let ids: HashSet<i64> = items.iter().map(&id).collect();
    let mut children: HashMap<i64, Vec<usize>> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(p) = parent(item).filter(|p| ids.contains(p)) {
            children.entry(p).or_default().push(i);
        }
    }
    let roots = (0..items.len()).filter(|&i| parent(&items[i]).is_none_or(|p| !ids.contains(&p)));
    let mut out = Vec::with_capacity(items.len());
    let mut seen = HashSet::new();
    for start in roots.chain(0..items.len()) {
        let mut stack = vec![(start, 0)];
        while let Some((i, depth)) = stack.pop() {
            if !seen.insert(id(&items[i])) {
                continue;
            }
            out.push((depth, &items[i]));
            if let Some(kids) = children.get(&id(&items[i])) {
                stack.extend(kids.iter().rev().map(|&k| (k, depth + 1)));
            }
        }
    }
    out
}

/// Ids of `root` and every ToR below it.
fn subtree(all: &[TorSummary], root: i64) -> HashSet<i64> {
    let mut found = HashSet::from([root]);
    loop {
        let before = found.len();
        for t in all {
            if t.parent_id.is_some_and(|p| found.contains(&p)) {
                found.insert(t.id);
            }
        }
        if found.len() == before {
            return found;
        }
    }
}

fn capabilities(form: &FormFields) -> Result<BTreeSet<Capability>, HtmlError> {
    form.all("capabilities")
        .iter()
        .map(|c| {
            c.parse::<Capability>()
                .map_err(|e| AppError::Validation(e.to_string()).into())
        })
        .collect()
}

fn page<T: Template>(status: StatusCode, template: &T) -> PageResult {
    Ok((status, render(template)?).into_response())
}

async fn see_other(session: &Session, message: String, to: &str) -> PageResult {
    flash(session, "success", message).await?;
    Ok(Redirect::to(to).into_response())
}

/// Allowed by `permission` everywhere, or by `capability` on this ToR. An unknown ToR is a 404.
pub(super) async fn require_on_tor(
    state: &AppState,
    user: &CurrentUser,
    tor_id: i64,
    permission: &str,
    capability: Capability,
) -> Result<(), HtmlError> {
    if user.can(permission) {
        tors::summary(&state.db, tor_id).await?;
        return Ok(());
    }
    if state
        .access
        .may(&state.db, state.graph.as_ref(), user.id, capability, tor_id)
        .await?
    {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!(
            "this needs the {permission} permission, or the {capability} capability on this ToR"
        ))
        .into())
    }
}

/// The function, which must belong to `tor_id` (a function of another ToR is a 404).
async fn function_of(state: &AppState, tor_id: i64, fid: i64) -> Result<TorFunction, HtmlError> {
    let function = tors::function(&state.db, fid).await?;
    if function.tor_id != tor_id {
        return Err(AppError::NotFound(format!("function {fid} of ToR {tor_id}")).into());
    }
    Ok(function)
}

// ---- list -------------------------------------------------------------------------------

struct TorRow {
    depth: usize,
    tor: TorSummary,
    parent_label: Option<String>,
}

#[derive(Template)]
#[template(path = "tors/list.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<TorRow>,
    can_manage: bool,
}

async fn list(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
) -> PageResult {
    user.require(perm::TORS_VIEW)?;
    let all = tors::list(&state.db).await?;
    let labels: HashMap<i64, &str> = all.iter().map(|t| (t.id, t.label.as_str())).collect();
    let rows = hierarchy(&all, |t| t.id, |t| t.parent_id)
        .into_iter()
        .map(|(depth, t)| TorRow {
            depth,
            parent_label: t
                .parent_id
                .and_then(|p| labels.get(&p).map(|l| (*l).to_owned())),
            tor: t.clone(),
        })
        .collect();
    let layout = Layout::new(&state, &session, Some(&user), "ToRs", "/tors").await?;
    page(
        StatusCode::OK,
        &ListPage {
            layout,
            rows,
            can_manage: user.can(perm::TORS_MANAGE),
        },
    )
}

// ---- create -----------------------------------------------------------------------------

struct ParentOption {
    id: i64,
    label: String,
    selected: bool,
}

fn parent_options(
    all: &[TorSummary],
    exclude: &HashSet<i64>,
    selected: Option<i64>,
) -> Vec<ParentOption> {
    hierarchy(all, |t| t.id, |t| t.parent_id)
        .into_iter()
        .filter(|(_, t)| !exclude.contains(&t.id))
        .map(|(depth, t)| ParentOption {
            id: t.id,
            label: format!("{}{}", "— ".repeat(depth), t.label),
            selected: Some(t.id) == selected,
        })
        .collect()
}

#[derive(Default)]
struct NewTorValues {
    name: String,
    title: String,
    description: String,
    parent_id: Option<i64>,
}

#[derive(Template)]
#[template(path = "tors/new.html")]
struct NewPage {
    layout: Layout,
    values: NewTorValues,
    parents: Vec<ParentOption>,
    error: Option<String>,
}

async fn render_new(
    state: &AppState,
    session: &Session,
    user: &CurrentUser,
    values: NewTorValues,
    status: StatusCode,
    error: Option<String>,
) -> PageResult {
    let all = tors::list(&state.db).await?;
    let parents = parent_options(&all, &HashSet::new(), values.parent_id);
    let layout = Layout::new(state, session, Some(user), "New ToR", "/tors/new").await?;
    page(
        status,
        &NewPage {
            layout,
            values,
            parents,
            error,
        },
    )
}

async fn new_form(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
) -> PageResult {
    user.require(perm::TORS_MANAGE)?;
    render_new(
        &state,
        &session,
        &user,
        NewTorValues::default(),
        StatusCode::OK,
        None,
    )
    .await
}

async fn create(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    form: FormFields,
) -> PageResult {
    user.require(perm::TORS_MANAGE)?;
    let mut values = NewTorValues {
        name: form.get("name").trim().to_owned(),
        title: form.get("title").to_owned(),
        description: form.get("description").to_owned(),
        parent_id: None,
    };
    let result = async {
        values.parent_id = form.optional_id("parent_id", "parent ToR")?;
        let new = NewTor {
            name: values.name.clone(),
            label: values.title.clone(),
            description: values.description.clone(),
            parent_id: values.parent_id,
        };
        let mut tx = state.db.begin().await?;
        let created = tors::create(&mut tx, &user.actor(), &new).await?;
        tx.commit().await?;
        Ok::<_, HtmlError>(created)
    }
    .await;
    match result {
        Ok(tor) => {
            see_other(
                &session,
                format!("Created ToR {}.", tor.label),
                &format!("/tors/{}", tor.id),
            )
            .await
        }
        Err(e) if e.is_user_error() => {
            render_new(
                &state,
                &session,
                &user,
                values,
                e.status(),
                Some(e.message()),
            )
            .await
        }
        Err(e) => Err(e),
    }
}

// ---- detail -----------------------------------------------------------------------------

struct CapOption {
    name: &'static str,
    description: &'static str,
    checked: bool,
}

fn cap_options(checked: &BTreeSet<Capability>) -> Vec<CapOption> {
    Capability::ALL
        .iter()
        .map(|&c| CapOption {
            name: c.as_str(),
            description: c.description(),
            checked: checked.contains(&c),
        })
        .collect()
}

struct FunctionView {
    function: TorFunction,
    cap_options: Vec<CapOption>,
    /// Active users who do not fill this function yet.
    candidates: Vec<UserRef>,
}

/// What the user typed into the ToR edit form, shown again after a mistake.
pub(super) struct TorValues {
    title: String,
    description: String,
    parent_id: Option<i64>,
    is_active: bool,
}

#[derive(Default)]
pub(super) struct FunctionValues {
    slug: String,
    label: String,
    description: String,
    capabilities: BTreeSet<Capability>,
}

/// Why a form on the detail page failed, and what to show in it again.
#[derive(Default)]
pub(super) struct Problem {
    pub message: String,
    pub(super) tor: Option<TorValues>,
    pub(super) function: Option<FunctionValues>,
    pub dependency: Option<DependencyValues>,
    pub cadence: Option<CadenceFields>,
}

/// An option of a select whose values are fixed.
struct SelectOption {
    value: &'static str,
    text: &'static str,
    selected: bool,
}

fn select_options(choices: &[(&'static str, &'static str)], current: &str) -> Vec<SelectOption> {
    choices
        .iter()
        .map(|&(value, text)| SelectOption {
            value,
            text,
            selected: value == current.trim().to_ascii_lowercase(),
        })
        .collect()
}

const CADENCE_CHOICES: [(&str, &str); 6] = [
    ("", "no regular cadence"),
    ("weekly", "weekly"),
    ("biweekly", "every other week"),
    ("monthly", "monthly"),
    ("working_days", "every working day"),
    ("daily", "every day"),
];

const WEEK_CHOICES: [(&str, &str); 5] = [
    ("", "first"),
    ("2", "second"),
    ("3", "third"),
    ("4", "fourth"),
    ("last", "last"),
];

/// One choice in the "depends on" form.
struct KindOption {
    name: &'static str,
    phrase: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "tors/detail.html")]
struct DetailPage {
    layout: Layout,
    tor: TorSummary,
    parent: Option<TorSummary>,
    children: Vec<TorSummary>,
    functions: Vec<FunctionView>,
    my_capabilities: Vec<Capability>,
    can_edit: bool,
    can_manage_members: bool,
    can_delete: bool,
    error: Option<String>,
    edit: TorValues,
    parents: Vec<ParentOption>,
    new_function: FunctionValues,
    new_function_caps: Vec<CapOption>,
    dependencies: Vec<DependencyView>,
    new_dependency: DependencyValues,
    dependency_kinds: Vec<KindOption>,
    dependency_targets: Vec<ParentOption>,
    cadence: Option<CadenceInfo>,
    cadence_form: CadenceFields,
    cadence_options: Vec<SelectOption>,
    week_options: Vec<SelectOption>,
}

async fn render_detail(
    state: &AppState,
    session: &Session,
    user: &CurrentUser,
    id: i64,
    status: StatusCode,
    problem: Problem,
) -> PageResult {
    let detail = tors::detail(&state.db, id).await?;
    let all = tors::list(&state.db).await?;
    let mine = abac::capabilities_on(&state.db, state.graph.as_ref(), user.id, id).await?;
    let can_edit = user.can(perm::TORS_MANAGE) || mine.contains(&Capability::EditTor);
    let can_manage_members =
        user.can(perm::TORS_MANAGE) || mine.contains(&Capability::ManageMembers);
    let people: Vec<UserRef> = if can_manage_members {
        users::list(&state.db)
            .await?
            .into_iter()
            .filter(|u| u.is_active)
            .map(|u| UserRef {
                id: u.id,
                username: u.username,
                display_name: u.display_name,
            })
            .collect()
    } else {
        Vec::new()
    };
    let tor = detail.tor;
    let parent = tor
        .parent_id
        .and_then(|p| all.iter().find(|t| t.id == p).cloned());
    let children = all
        .iter()
        .filter(|t| t.parent_id == Some(id))
        .cloned()
        .collect();
    let edit = problem.tor.unwrap_or_else(|| TorValues {
        title: tor.label.clone(),
        description: tor.description.clone(),
        parent_id: tor.parent_id,
        is_active: tor.is_active,
    });
    // A ToR cannot report to itself or to one below it.
    let parents = parent_options(&all, &subtree(&all, id), edit.parent_id);
    let functions = detail
        .functions
        .into_iter()
        .map(|f| FunctionView {
            cap_options: cap_options(&f.capabilities.iter().copied().collect()),
            candidates: people
                .iter()
                .filter(|p| !f.holders.iter().any(|h| h.id == p.id))
                .cloned()
                .collect(),
            function: f,
        })
        .collect();
    let new_function = problem.function.unwrap_or_default();
    let new_function_caps = cap_options(&new_function.capabilities);
    let dependencies = {
        let mut conn = state.db.acquire().await?;
        dependencies::of_tor(&mut conn, id).await?
    };
    let new_dependency = problem.dependency.unwrap_or_default();
    let dependency_kinds = DependencyKind::ALL
        .iter()
        .map(|k| KindOption {
            name: k.relation_type(),
            phrase: k.outgoing_phrase(),
            selected: new_dependency.kind == k.relation_type(),
        })
        .collect();
    let dependency_targets = parent_options(&all, &HashSet::from([id]), new_dependency.target_id);
    let cadence = outlook::cadence_of(&state.db, id).await?.map(|c| c.info());
    let cadence_form = problem.cadence.unwrap_or_else(|| match &cadence {
        Some(c) => CadenceFields {
            meeting_cadence: c.meeting_cadence.to_string(),
            cadence_day: c.cadence_day.clone(),
            cadence_week: c.cadence_week.clone(),
            cadence_time: c.cadence_time.clone(),
            cadence_duration_minutes: Some(c.cadence_duration_minutes),
            default_location: c.default_location.clone(),
        },
        None => CadenceFields::default(),
    });
    let title = format!("ToR {}", tor.label);
    let layout = Layout::new(state, session, Some(user), &title, &format!("/tors/{id}")).await?;
    page(
        status,
        &DetailPage {
            layout,
            parent,
            children,
            functions,
            my_capabilities: mine.into_iter().collect(),
            can_edit,
            can_manage_members,
            can_delete: user.can(perm::TORS_MANAGE),
            error: (!problem.message.is_empty()).then_some(problem.message),
            edit,
            parents,
            new_function,
            new_function_caps,
            dependencies,
            new_dependency,
            dependency_kinds,
            dependency_targets,
            cadence_options: select_options(&CADENCE_CHOICES, &cadence_form.meeting_cadence),
            week_options: select_options(
                &WEEK_CHOICES,
                if cadence_form.cadence_week == "1" {
                    ""
                } else {
                    &cadence_form.cadence_week
                },
            ),
            cadence,
            cadence_form,
            tor,
        },
    )
}

async fn show(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath(Id(id)): PagePath<Id>,
) -> PageResult {
    require_on_tor(&state, &user, id, perm::TORS_VIEW, Capability::ViewTor).await?;
    render_detail(
        &state,
        &session,
        &user,
        id,
        StatusCode::OK,
        Problem::default(),
    )
    .await
}

/// Success redirects back to the ToR with a flash; a user mistake re-renders the detail page
/// with the message (and the submitted values) and the error's 4xx status.
pub(super) async fn finish(
    state: &AppState,
    session: &Session,
    user: &CurrentUser,
    tor_id: i64,
    result: Result<String, HtmlError>,
    problem: impl FnOnce(String) -> Problem,
) -> PageResult {
    match result {
        Ok(message) => see_other(session, message, &format!("/tors/{tor_id}")).await,
        Err(e) if e.is_user_error() && e.status() != StatusCode::NOT_FOUND => {
            let status = e.status();
            render_detail(state, session, user, tor_id, status, problem(e.message())).await
        }
        Err(e) => Err(e),
    }
}

async fn update(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath(Id(id)): PagePath<Id>,
    form: FormFields,
) -> PageResult {
    require_on_tor(&state, &user, id, perm::TORS_MANAGE, Capability::EditTor).await?;
    let mut values = TorValues {
        title: form.get("title").to_owned(),
        description: form.get("description").to_owned(),
        parent_id: None,
        is_active: form.checked("is_active"),
    };
    let result = async {
        values.parent_id = form.optional_id("parent_id", "parent ToR")?;
        if values.title.trim().is_empty() {
            return Err(AppError::Validation("the title must not be empty".into()).into());
        }
        let change = TorUpdate {
            label: Some(values.title.clone()),
            description: Some(values.description.clone()),
            parent_id: Some(values.parent_id),
            is_active: Some(values.is_active),
        };
        // One transaction: a rejected parent must not leave the title half-saved.
        let mut tx = state.db.begin().await?;
        let tor = tors::update(&mut tx, &user.actor(), id, &change).await?;
        tx.commit().await?;
        Ok::<_, HtmlError>(format!("Saved {}.", tor.label))
    }
    .await;
    finish(&state, &session, &user, id, result, |message| Problem {
        message,
        tor: Some(values),
        ..Default::default()
    })
    .await
}

async fn delete(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath(Id(id)): PagePath<Id>,
    form: FormFields,
) -> PageResult {
    user.require(perm::TORS_MANAGE)?;
    if !confirm::confirmed(&form) {
        let tor = tors::summary(&state.db, id).await?;
        let functions = tors::functions(&state.db, Some(&[id][..])).await?;
        let mut consequences: Vec<String> = functions
            .iter()
            .map(|f| {
                format!(
                    "Function {} and who fills it ({})",
                    f.label,
                    f.holders.len()
                )
            })
            .collect();
        consequences.insert(0, format!("The ToR {} ({})", tor.label, tor.name));
        return Ok(confirm::page(
            &state,
            &session,
            &user,
            confirm::Confirmation {
                question: format!("Delete ToR {}?", tor.label),
                consequences,
                action: format!("/tors/{id}/delete"),
                button: "Delete ToR".into(),
                cancel: format!("/tors/{id}"),
            },
        )
        .await?);
    }
    let mut tx = state.db.begin().await?;
    let tor = tors::summary(&mut *tx, id).await?;
    tors::delete(&mut tx, &user.actor(), id).await?;
    tx.commit().await?;
    see_other(&session, format!("Deleted ToR {}.", tor.label), "/tors").await
}

// ---- functions --------------------------------------------------------------------------

async fn add_function(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath(Id(id)): PagePath<Id>,
    form: FormFields,
) -> PageResult {
    require_on_tor(&state, &user, id, perm::TORS_MANAGE, Capability::EditTor).await?;
    let mut values = FunctionValues {
        slug: form.get("slug").trim().to_owned(),
        label: form.get("label").to_owned(),
        description: form.get("description").to_owned(),
        capabilities: BTreeSet::new(),
    };
    let result = async {
        values.capabilities = capabilities(&form)?;
        let new = NewFunction {
            slug: values.slug.clone(),
            label: values.label.clone(),
            description: values.description.clone(),
            capabilities: values.capabilities.clone(),
        };
        let mut tx = state.db.begin().await?;
        let f = tors::add_function(&mut tx, &user.actor(), id, &new).await?;
        tx.commit().await?;
        Ok::<_, HtmlError>(format!("Added function {}.", f.label))
    }
    .await;
    finish(&state, &session, &user, id, result, |message| Problem {
        message,
        function: Some(values),
        ..Default::default()
    })
    .await
}

async fn update_function(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath((Id(id), Id(fid))): PagePath<(Id, Id)>,
    form: FormFields,
) -> PageResult {
    require_on_tor(&state, &user, id, perm::TORS_MANAGE, Capability::EditTor).await?;
    function_of(&state, id, fid).await?;
    let result = async {
        let label = form.get("label").to_owned();
        if label.trim().is_empty() {
            return Err(
                AppError::Validation("the function's label must not be empty".into()).into(),
            );
        }
        let change = FunctionUpdate {
            label: Some(label),
            description: Some(form.get("description").to_owned()),
            capabilities: Some(capabilities(&form)?),
        };
        let mut tx = state.db.begin().await?;
        let f = tors::update_function(&mut tx, &user.actor(), fid, &change).await?;
        tx.commit().await?;
        Ok::<_, HtmlError>(format!("Saved function {}.", f.label))
    }
    .await;
    finish(&state, &session, &user, id, result, |message| Problem {
        message,
        ..Default::default()
    })
    .await
}

async fn delete_function(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath((Id(id), Id(fid))): PagePath<(Id, Id)>,
    form: FormFields,
) -> PageResult {
    require_on_tor(&state, &user, id, perm::TORS_MANAGE, Capability::EditTor).await?;
    let f = function_of(&state, id, fid).await?;
    if !confirm::confirmed(&form) {
        return Ok(confirm::page(
            &state,
            &session,
            &user,
            confirm::Confirmation {
                question: format!("Delete function {}?", f.label),
                consequences: vec![format!(
                    "Its {} holder(s) no longer fill it",
                    f.holders.len()
                )],
                action: format!("/tors/{id}/functions/{fid}/delete"),
                button: "Delete function".into(),
                cancel: format!("/tors/{id}"),
            },
        )
        .await?);
    }
    let mut tx = state.db.begin().await?;
    tors::delete_function(&mut tx, &user.actor(), fid).await?;
    tx.commit().await?;
    see_other(
        &session,
        format!("Deleted function {}.", f.label),
        &format!("/tors/{id}"),
    )
    .await
}

// ---- members ----------------------------------------------------------------------------

async fn assign(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath((Id(id), Id(fid))): PagePath<(Id, Id)>,
    form: FormFields,
) -> PageResult {
    require_on_tor(
        &state,
        &user,
        id,
        perm::TORS_MANAGE,
        Capability::ManageMembers,
    )
    .await?;
    let f = function_of(&state, id, fid).await?;
    let result = async {
        let user_id = form.required_id("user_id", "user")?;
        let member = users::get(&state.db, user_id)
            .await?
            .filter(|u| u.is_active)
            .ok_or_else(|| AppError::Validation(format!("there is no active user {user_id}")))?;
        let mut tx = state.db.begin().await?;
        tors::assign(&mut tx, &user.actor(), fid, user_id).await?;
        tx.commit().await?;
        Ok::<_, HtmlError>(format!("{} now fills {}.", member.display_name, f.label))
    }
    .await;
    finish(&state, &session, &user, id, result, |message| Problem {
        message,
        ..Default::default()
    })
    .await
}

async fn vacate(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath((Id(id), Id(fid))): PagePath<(Id, Id)>,
    form: FormFields,
) -> PageResult {
    require_on_tor(
        &state,
        &user,
        id,
        perm::TORS_MANAGE,
        Capability::ManageMembers,
    )
    .await?;
    let f = function_of(&state, id, fid).await?;
    let result = async {
        let user_id = form.required_id("user_id", "user")?;
        let holder = f.holders.iter().find(|h| h.id == user_id).ok_or_else(|| {
            AppError::Validation(format!("user {user_id} does not fill {}", f.label))
        })?;
        let mut tx = state.db.begin().await?;
        tors::vacate(&mut tx, &user.actor(), fid, user_id).await?;
        tx.commit().await?;
        Ok::<_, HtmlError>(format!(
            "{} no longer fills {}.",
            holder.display_name, f.label
        ))
    }
    .await;
    finish(&state, &session, &user, id, result, |message| Problem {
        message,
        ..Default::default()
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Node(i64, Option<i64>);

    fn order(nodes: &[Node]) -> Vec<(usize, i64)> {
        hierarchy(nodes, |n| n.0, |n| n.1)
            .into_iter()
            .map(|(d, n)| (d, n.0))
            .collect()
    }

    #[test]
    fn hierarchy_lists_children_under_their_parent_depth_first() {
        let nodes = [
            Node(1, None),
            Node(2, Some(1)),
            Node(3, None),
            Node(4, Some(2)),
            Node(5, Some(1)),
        ];
        assert_eq!(order(&nodes), vec![(0, 1), (1, 2), (2, 4), (1, 5), (0, 3)]);
    }

    #[test]
    fn hierarchy_treats_a_missing_parent_as_root_and_survives_cycles() {
        let nodes = [Node(1, Some(99)), Node(2, Some(3)), Node(3, Some(2))];
        let listed = order(&nodes);
        assert_eq!(listed.len(), 3);
        assert_eq!(listed[0], (0, 1));
        let ids: HashSet<i64> = listed.iter().map(|(_, id)| *id).collect();
        assert_eq!(ids, HashSet::from([1, 2, 3]));
    }
}
