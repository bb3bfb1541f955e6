//! The governance map: every ToR with its cadence, its functions and who fills them, the
//! dependencies between ToRs, and the same data as a node/edge graph for the JSON API. Read from the graph projection when it is current
//! ([`crate::graph::queries::governance_map`]), else from Postgres; both answers are put in
//! one canonical order ([`GovernanceMap::sorted`]) so they are identical.

use serde::Serialize;

use super::cadence::{self, CadenceInfo};
use super::dependencies::{self, Dependency};
use super::tors::{self, TorFunction, TorSummary};
use super::{DomainResult, rel};
use crate::graph::{Projection, queries};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GovernanceMap {
    pub tors: Vec<GovernanceTor>,
    /// `feeds_into` and `escalates_to` edges between the ToRs, by id.
    pub dependencies: Vec<Dependency>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GovernanceTor {
    #[serde(flatten)]
    pub tor: TorSummary,
    /// The meeting cadence, when the ToR has one that can be understood.
    pub cadence: Option<CadenceInfo>,
    pub functions: Vec<TorFunction>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphNode {
    /// `tor:<id>`, `function:<id>` or `user:<id>`.
    pub id: String,
    pub kind: &'static str,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphEdge {
    pub source: String,
    pub target: String,
    pub relation: &'static str,
    /// Dependencies only: whether the target cannot proceed without the source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_blocking: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GovernanceGraph {
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<GraphEdge>,
}

/// The governance map, in [`GovernanceMap::sorted`] order: from the graph when `graph` is
/// current, else from Postgres.
pub async fn map(
    db: impl sqlx::Acquire<'_, Database = sqlx::Postgres>,
    graph: Option<&Projection>,
) -> DomainResult<GovernanceMap> {
    let map = queries::read_or_fallback(graph, "governance_map", queries::governance_map, || {
        map_pg(db)
    })
    .await?;
    Ok(map.sorted())
}

/// The governance map from Postgres, in SQL order (see [`map`]).
pub async fn map_pg(
    db: impl sqlx::Acquire<'_, Database = sqlx::Postgres>,
) -> DomainResult<GovernanceMap> {
    let mut conn = db.acquire().await?;
    let all_tors = tors::list(&mut *conn).await?;
    let mut functions = tors::functions_in(&mut conn, None).await?;
    let cadence_rows: Vec<(i64, String, serde_json::Value)> = sqlx::query_as(
        "SELECT p.entity_id, p.key, p.value FROM entity_properties p \
         JOIN entities t ON t.id = p.entity_id AND t.entity_type = 'tor' WHERE p.key = ANY($1)",
    )
    .bind(&cadence::key::ALL[..])
    .fetch_all(&mut *conn)
    .await?;
    let dependencies = dependencies::all(&mut *conn).await?;
    let tors = all_tors
        .into_iter()
        .map(|tor| {
            let (mine, rest): (Vec<_>, Vec<_>) =
                functions.drain(..).partition(|f| f.tor_id == tor.id);
            functions = rest;
            let cadence = cadence::Cadence::from_properties(|key| {
                cadence_rows
                    .iter()
                    .find(|(id, k, _)| *id == tor.id && k == key)
                    .map(|(_, _, v)| v.clone())
            })
            .map(|c| c.info());
            GovernanceTor {
                tor,
                cadence,
                functions: mine,
            }
        })
        .collect();
    Ok(GovernanceMap { tors, dependencies })
}

impl GovernanceMap {
    /// The canonical order: ToRs by label, name and id; each ToR's functions by label and
    /// id; holders by username and id; all compared bytewise. Sorting here rather than in
    /// SQL makes the order independent of the database's collation and of `sort_order`,
    /// which the graph projection does not carry.
    pub fn sorted(mut self) -> GovernanceMap {
        self.dependencies.sort();
        self.tors.sort_by(|a, b| {
            (&a.tor.label, &a.tor.name, a.tor.id).cmp(&(&b.tor.label, &b.tor.name, b.tor.id))
        });
        for tor in &mut self.tors {
            tor.functions
                .sort_by(|a, b| (&a.label, a.id).cmp(&(&b.label, b.id)));
            for function in &mut tor.functions {
                function
                    .holders
                    .sort_by(|a, b| (&a.username, a.id).cmp(&(&b.username, b.id)));
            }
        }
        self
    }

    /// ToRs at the top of the hierarchy (no parent, or a parent that is not in the map).
    pub fn roots(&self) -> Vec<&GovernanceTor> {
        self.tors
            .iter()
            .filter(|t| {
                t.tor
                    .parent_id
                    .is_none_or(|p| !self.tors.iter().any(|o| o.tor.id == p))
            })
            .collect()
    }

    pub fn children_of(&self, id: i64) -> Vec<&GovernanceTor> {
        self.tors
            .iter()
            .filter(|t| t.tor.parent_id == Some(id))
            .collect()
    }

    pub fn graph(&self) -> GovernanceGraph {
        let mut nodes = Vec::new();
        let mut edges = Vec::new();
        let mut users = std::collections::BTreeMap::new();
        for t in &self.tors {
            let tor_node = format!("tor:{}", t.tor.id);
            nodes.push(GraphNode {
                id: tor_node.clone(),
                kind: "tor",
                label: t.tor.label.clone(),
            });
            if let Some(parent) = t.tor.parent_id {
                edges.push(GraphEdge {
                    source: tor_node.clone(),
                    target: format!("tor:{parent}"),
                    relation: rel::REPORTS_TO,
                    is_blocking: None,
                });
            }
            for f in &t.functions {
                let f_node = format!("function:{}", f.id);
                nodes.push(GraphNode {
                    id: f_node.clone(),
                    kind: "function",
                    label: f.label.clone(),
                });
                edges.push(GraphEdge {
                    source: f_node.clone(),
                    target: tor_node.clone(),
                    relation: rel::BELONGS_TO_TOR,
                    is_blocking: None,
                });
                for h in &f.holders {
                    users.insert(h.id, h.display_name.clone());
                    edges.push(GraphEdge {
                        source: format!("user:{}", h.id),
                        target: f_node.clone(),
                        relation: rel::FILLS_POSITION,
                        is_blocking: None,
                    });
                }
            }
        }
        edges.extend(self.dependencies.iter().map(|d| GraphEdge {
            source: format!("tor:{}", d.source_id),
            target: format!("tor:{}", d.target_id),
            relation: d.relation_type.relation_type(),
            is_blocking: Some(d.is_blocking),
        }));
        nodes.extend(users.into_iter().map(|(id, label)| GraphNode {
            id: format!("user:{id}"),
            kind: "user",
            label,
        }));
        GovernanceGraph { nodes, edges }
    }
}
