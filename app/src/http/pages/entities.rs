//! The read-only entity browser: entity types with counts, a keyset-paginated list per type or
//! search, and one entity with its properties and its relations in both directions.

use crate::http::api::pagination::Id;
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tower_sessions::Session;

use super::errors::{PagePath, PageQuery, PageResult};
use super::layout::{Layout, render};
use crate::domain::perm;
use crate::http::AppState;
use crate::http::api::entities::{require_type, visible};
use crate::http::error::AppError;
use crate::http::extract::PageUser;
use crate::store::{self, Entity, EntityFilter, Neighbour, PageRequest, ident};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/entities", get(index))
        .route("/entities/{id}", get(show))
}

pub const PAGE_SIZE: i64 = 50;
const MAX_SEARCH_CHARS: usize = 200;

#[derive(Debug, Default, Deserialize)]
pub struct BrowseQuery {
    #[serde(rename = "type")]
    entity_type: Option<String>,
    q: Option<String>,
    after: Option<Id>,
}

struct TypeCount {
    name: String,
    count: i64,
    selected: bool,
}

#[derive(Template)]
#[template(path = "entities/index.html")]
struct IndexPage {
    layout: Layout,
    types: Vec<TypeCount>,
    entity_type: String,
    q: String,
    /// `None`: no type or search given, so only the type overview is shown.
    items: Option<Vec<Entity>>,
    empty_message: String,
    next_href: Option<String>,
    first_href: Option<String>,
}

fn browse_href(entity_type: &str, q: &str, after: Option<i64>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if !entity_type.is_empty() {
        query.append_pair("type", entity_type);
    }
    if !q.is_empty() {
        query.append_pair("q", q);
    }
    if let Some(after) = after {
        query.append_pair("after", &after.to_string());
    }
    let query = query.finish();
    if query.is_empty() {
        "/entities".to_owned()
    } else {
        format!("/entities?{query}")
    }
}

async fn index(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PageQuery(query): PageQuery<BrowseQuery>,
) -> PageResult<Response> {
    user.require(perm::ENTITIES_VIEW)?;
    let view = visible(&user);
    let after = query.after.map(|a| a.0);
    let entity_type = query.entity_type.unwrap_or_default().trim().to_owned();
    let q = query.q.unwrap_or_default().trim().to_owned();
    if !entity_type.is_empty() && !ident::is_valid_ident(&entity_type) {
        return Err(AppError::BadRequest(
            "an entity type is lowercase letters, digits and '_', starting with a letter".into(),
        )
        .into());
    }
    if q.chars().count() > MAX_SEARCH_CHARS || q.chars().any(char::is_control) {
        return Err(AppError::BadRequest(format!(
            "search for at most {MAX_SEARCH_CHARS} characters, without control characters"
        ))
        .into());
    }
    if !entity_type.is_empty() {
        require_type(&view, &entity_type)?;
    }
    let types = store::entity_type_counts(&state.db)
        .await?
        .into_iter()
        .filter(|(name, _)| view.can_see_type(name))
        .map(|(name, count)| TypeCount {
            selected: name == entity_type,
            name,
            count,
        })
        .collect();
    let (mut items, mut next_href, mut empty_message) = (None, None, String::new());
    if !entity_type.is_empty() || !q.is_empty() {
        let filter = EntityFilter {
            entity_type: (!entity_type.is_empty()).then(|| entity_type.clone()),
            search: (!q.is_empty()).then(|| q.clone()),
            active_only: false,
            exclude_types: view.hidden_types().to_vec(),
        };
        let page = store::list_entities(
            &state.db,
            &filter,
            PageRequest {
                after,
                limit: PAGE_SIZE,
            },
        )
        .await?;
        next_href = page
            .next_after
            .map(|after| browse_href(&entity_type, &q, Some(after)));
        if page.items.is_empty() {
            empty_message = match (entity_type.is_empty(), q.is_empty(), after.is_some()) {
                (_, _, true) => "No more entities.".to_owned(),
                (false, true, false) => format!("There are no entities of type {entity_type}."),
                _ => "No entities match your search.".to_owned(),
            };
        }
        items = Some(page.items);
    }
    let layout = Layout::new(&state, &session, Some(&user), "Entities", "/entities").await?;
    let page = IndexPage {
        layout,
        types,
        first_href: after.map(|_| browse_href(&entity_type, &q, None)),
        entity_type,
        q,
        items,
        empty_message,
        next_href,
    };
    Ok(render(&page)?.into_response())
}

struct PropertyRow {
    key: String,
    value: String,
}

#[derive(Template)]
#[template(path = "entities/detail.html")]
struct DetailPage {
    layout: Layout,
    entity: Entity,
    created_at: String,
    updated_at: String,
    properties: Vec<PropertyRow>,
    outgoing: Vec<Neighbour>,
    incoming: Vec<Neighbour>,
}

async fn show(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    PagePath(Id(id)): PagePath<Id>,
) -> PageResult<Response> {
    user.require(perm::ENTITIES_VIEW)?;
    let view = visible(&user);
    let mut found = state.entity_reads.require(id).await?;
    require_type(&view, &found.entity.entity_type)?;
    view.redact(&mut found);
    let properties = found
        .properties
        .iter()
        .map(|(key, value)| PropertyRow {
            key: key.clone(),
            value: serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()),
        })
        .collect();
    let (outgoing, incoming) = view
        .neighbours(store::neighbours(&state.db, id).await?)
        .into_iter()
        .partition(|n| n.outgoing);
    let entity = found.entity;
    let title = format!("{} {}", entity.entity_type, entity.display());
    let layout = Layout::new(
        &state,
        &session,
        Some(&user),
        &title,
        &format!("/entities/{id}"),
    )
    .await?;
    let page = DetailPage {
        layout,
        created_at: timestamp(entity.created_at),
        updated_at: timestamp(entity.updated_at),
        entity,
        properties,
        outgoing,
        incoming,
    };
    Ok(render(&page)?.into_response())
}

fn timestamp(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browse_links_encode_the_search_and_drop_empty_parts() {
        assert_eq!(
            browse_href("user", "a&b c", Some(7)),
            "/entities?type=user&q=a%26b+c&after=7"
        );
        assert_eq!(browse_href("", "", None), "/entities");
    }
}
