//! Server-rendered HTML pages (askama templates in `app/templates`).

pub mod account;
pub mod audit;
pub mod auth;
pub mod coa;
pub mod confirm;
pub mod dashboard;
pub mod data;
pub mod entities;
pub mod errors;
pub mod form;
pub mod governance;
pub mod layout;
pub mod meetings;
pub mod outlook;
pub mod pipeline;
pub mod resubmit;
pub mod roles;
pub mod tor_dependencies;
pub mod tors;
pub mod users;
pub mod workflow;

use axum::Router;
use axum::http::header;
use axum::routing::get;

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/static/app.css", get(stylesheet))
        .route("/static/print.css", get(print_stylesheet))
        .route("/static/governance-map.js", get(governance_map_script))
        .route("/static/data-import.js", get(data_import_script))
        .merge(auth::router())
        .merge(dashboard::router())
        .merge(users::router())
        .merge(roles::router())
        .merge(audit::router())
        .merge(account::router())
        .merge(tors::router())
        .merge(tor_dependencies::router())
        .merge(outlook::router())
        .merge(pipeline::router())
        .merge(meetings::router())
        .merge(coa::router())
        .merge(workflow::router())
        .merge(governance::router())
        .merge(entities::router())
        .merge(resubmit::router())
        .merge(data::router())
        .merge(errors::router())
}

async fn stylesheet() -> impl axum::response::IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../../static/app.css"),
    )
}

async fn print_stylesheet() -> impl axum::response::IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../../static/print.css"),
    )
}

fn script(source: &'static str) -> impl axum::response::IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        source,
    )
}

async fn governance_map_script() -> impl axum::response::IntoResponse {
    script(include_str!("../../../static/governance-map.js"))
}

async fn data_import_script() -> impl axum::response::IntoResponse {
    script(include_str!("../../../static/data-import.js"))
}
