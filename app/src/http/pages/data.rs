//! The data page (`data.manage`): export everything as upstream-format JSON, and import such
//! a file, pasted or (with JavaScript) chosen from disk, with a conflict mode, a policy for
//! unknown types and a dry run. The same import as `ahlt data import`; larger files than
//! the form takes (2 MB) go through the CLI.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tower_sessions::Session;

use super::errors::PageResult;
use super::form::FormFields;
use super::layout::{Layout, render};
use crate::data_cli::describe;
use crate::domain::data::{
    self, ConflictMode, Document, ImportOptions, ImportReport, UnknownPolicy,
};
use crate::domain::perm;
use crate::http::AppState;
use crate::http::error::AppError;
use crate::http::extract::{CurrentUser, PageUser};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/data", get(data_page))
        .route("/admin/data/export", get(export_file))
        .route("/admin/data/import", post(import))
}

#[derive(Template)]
#[template(path = "admin/data.html")]
struct DataPage {
    layout: Layout,
    document: String,
    mode: &'static str,
    unknown: &'static str,
    dry_run: bool,
    report: Option<ImportReport>,
    report_text: String,
    error: Option<String>,
}

async fn render_page(
    state: &AppState,
    session: &Session,
    user: &CurrentUser,
    status: StatusCode,
    page: impl FnOnce(Layout) -> DataPage,
) -> PageResult {
    let layout = Layout::new(state, session, Some(user), "Data", "/admin/data").await?;
    Ok((status, render(&page(layout))?).into_response())
}

async fn data_page(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
) -> PageResult {
    user.require(perm::DATA_MANAGE)?;
    render_page(&state, &session, &user, StatusCode::OK, |layout| DataPage {
        layout,
        document: String::new(),
        mode: "skip",
        unknown: "import",
        dry_run: true,
        report: None,
        report_text: String::new(),
        error: None,
    })
    .await
}

async fn export_file(State(state): State<AppState>, PageUser(user): PageUser) -> PageResult {
    user.require(perm::DATA_MANAGE)?;
    let document = data::export(&state.db).await?;
    let body = serde_json::to_string_pretty(&document).map_err(AppError::internal)?;
    let mut tx = state.db.begin().await?;
    crate::domain::audit::record(
        &mut tx,
        &user.actor(),
        "data.export",
        None,
        serde_json::json!({"entities": document.entities.len(), "relations": document.relations.len()}),
    )
    .await?;
    tx.commit().await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"ahlt-export.json\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response())
}

/// A choice from a select; empty (a hand-made request) means the default.
fn parse_choice<T: clap::ValueEnum + Default>(value: &str, what: &str) -> Result<T, AppError> {
    if value.is_empty() {
        return Ok(T::default());
    }
    T::from_str(value, false).map_err(|_| AppError::Validation(format!("unknown {what} {value:?}")))
}

async fn import(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    form: FormFields,
) -> PageResult {
    user.require(perm::DATA_MANAGE)?;
    let document = form.get("document").to_owned();
    let dry_run = form.checked("dry_run");
    let mode_text = form.get("mode").to_owned();
    let unknown_text = form.get("unknown").to_owned();
    let outcome = async {
        let mode: ConflictMode = parse_choice(&mode_text, "conflict mode")?;
        let unknown: UnknownPolicy = parse_choice(&unknown_text, "policy")?;
        let parsed = Document::parse(&document).map_err(AppError::Validation)?;
        let options = ImportOptions {
            mode,
            unknown,
            dry_run,
        };
        Ok::<_, AppError>(data::import(&state.db, &user.actor(), &[parsed], options).await?)
    }
    .await;
    let (status, report, error) = match outcome {
        Ok(report) if report.errors.is_empty() => (StatusCode::OK, Some(report), None),
        Ok(report) => (StatusCode::UNPROCESSABLE_ENTITY, Some(report), None),
        Err(e @ AppError::Validation(_)) => {
            (StatusCode::UNPROCESSABLE_ENTITY, None, Some(e.to_string()))
        }
        Err(e) => return Err(e.into()),
    };
    let report_text = report.as_ref().map(describe).unwrap_or_default();
    let mode = match mode_text.as_str() {
        "upsert" => "upsert",
        "fail" => "fail",
        _ => "skip",
    };
    let unknown = match unknown_text.as_str() {
        "skip" => "skip",
        "fail" => "fail",
        _ => "import",
    };
    render_page(&state, &session, &user, status, |layout| DataPage {
        layout,
        document,
        mode,
        unknown,
        dry_run,
        report,
        report_text,
        error,
    })
    .await
}
