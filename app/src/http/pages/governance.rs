//! The governance map page: an interactive SVG graph of the ToRs and their dependencies,
//! drawn in the browser by `/static/governance-map.js` from `GET /api/v1/governance`, over
//! the same data as plain HTML (the hierarchy as nested lists, each ToR with its cadence,
//! dependencies, functions, their capabilities and holders), which works without JavaScript.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_sessions::Session;

use super::errors::PageResult;
use super::layout::{Layout, render};
use super::tors::hierarchy;
use crate::domain::dependencies::Dependency;
use crate::domain::governance::{GovernanceMap, GovernanceTor};
use crate::domain::perm;
use crate::http::AppState;
use crate::http::extract::PageUser;

pub fn router() -> Router<AppState> {
    Router::new().route("/governance", get(map_page))
}

/// The tree flattened into list markup, since templates cannot recurse: open a list, an item
/// (left open for its children), close the item, close the list.
enum MapEvent<'a> {
    OpenList,
    Item(&'a GovernanceTor),
    CloseItem,
    CloseList,
}

fn events<'a>(ordered: &[(usize, &'a GovernanceTor)]) -> Vec<MapEvent<'a>> {
    let mut out = Vec::with_capacity(ordered.len() * 3 + 2);
    let mut prev: Option<usize> = None;
    for &(depth, tor) in ordered {
        match prev {
            None => out.push(MapEvent::OpenList),
            Some(p) if depth > p => out.push(MapEvent::OpenList),
            Some(p) => {
                out.push(MapEvent::CloseItem);
                for _ in depth..p {
                    out.push(MapEvent::CloseList);
                    out.push(MapEvent::CloseItem);
                }
            }
        }
        out.push(MapEvent::Item(tor));
        prev = Some(depth);
    }
    if let Some(p) = prev {
        out.push(MapEvent::CloseItem);
        for _ in 0..p {
            out.push(MapEvent::CloseList);
            out.push(MapEvent::CloseItem);
        }
        out.push(MapEvent::CloseList);
    }
    out
}

/// A dependency as the list shows it under one ToR.
struct DependencyLine {
    phrase: &'static str,
    other_id: i64,
    other_label: String,
    is_blocking: bool,
}

#[derive(Template)]
#[template(path = "governance.html")]
struct MapPage<'a> {
    layout: Layout,
    events: Vec<MapEvent<'a>>,
    dependencies: &'a [Dependency],
    labels: std::collections::HashMap<i64, String>,
}

impl MapPage<'_> {
    fn dependencies_of(&self, tor_id: &i64) -> Vec<DependencyLine> {
        let tor_id = *tor_id;
        self.dependencies
            .iter()
            .filter(|d| d.source_id == tor_id || d.target_id == tor_id)
            .map(|d| {
                let outgoing = d.source_id == tor_id;
                let other_id = if outgoing { d.target_id } else { d.source_id };
                DependencyLine {
                    phrase: if outgoing {
                        d.relation_type.outgoing_phrase()
                    } else {
                        d.relation_type.incoming_phrase()
                    },
                    other_id,
                    other_label: self.labels.get(&other_id).cloned().unwrap_or_default(),
                    is_blocking: d.is_blocking,
                }
            })
            .collect()
    }
}

async fn map_page(
    State(state): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
) -> PageResult<Response> {
    user.require(perm::TORS_VIEW)?;
    let map = GovernanceMap::clone(
        &*state
            .access
            .governance_map(&state.db, state.graph.as_ref())
            .await?,
    );
    let ordered = hierarchy(&map.tors, |t| t.tor.id, |t| t.tor.parent_id);
    let layout = Layout::new(
        &state,
        &session,
        Some(&user),
        "Governance map",
        "/governance",
    )
    .await?;
    let labels = map
        .tors
        .iter()
        .map(|t| (t.tor.id, t.tor.label.clone()))
        .collect();
    let page = MapPage {
        layout,
        events: events(&ordered),
        dependencies: &map.dependencies,
        labels,
    };
    Ok(render(&page)?.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tors::TorSummary;

    fn tor(id: i64) -> GovernanceTor {
        GovernanceTor {
            tor: TorSummary {
                id,
                name: format!("t{id}"),
                label: format!("T{id}"),
                description: String::new(),
                is_active: true,
                parent_id: None,
                function_count: 0,
                member_count: 0,
            },
            cadence: None,
            functions: Vec::new(),
        }
    }

    fn markup(events: &[MapEvent<'_>]) -> String {
        events
            .iter()
            .map(|e| match e {
                MapEvent::OpenList => "<ul>".to_owned(),
                MapEvent::Item(t) => format!("<li>{}", t.tor.id),
                MapEvent::CloseItem => "</li>".to_owned(),
                MapEvent::CloseList => "</ul>".to_owned(),
            })
            .collect()
    }

    #[test]
    fn events_nest_children_inside_their_parent_item_and_balance() {
        let (a, b, c, d) = (tor(1), tor(2), tor(3), tor(4));
        let ordered = [(0, &a), (1, &b), (2, &c), (0, &d)];
        assert_eq!(
            markup(&events(&ordered)),
            "<ul><li>1<ul><li>2<ul><li>3</li></ul></li></ul></li><li>4</li></ul>"
        );
    }

    #[test]
    fn no_tors_means_no_list() {
        assert!(events(&[]).is_empty());
    }
}
