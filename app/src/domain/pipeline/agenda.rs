//! A meeting's agenda: points scheduled from the agenda queue (or of their own), what
//! cancelling a meeting or deferring a point gives back to the queue, and the decision a
//! decided point records.

use serde_json::json;
use sqlx::PgConnection;

use super::meetings::key;
use super::{Item, NewItem, all_children, authorize, create, load, load_for_update, set_status};
use crate::domain::audit::Actor;
use crate::domain::{Capability, DomainError, DomainResult, kind, rel};
use crate::store::{self, Properties};

/// The proposal an agenda point came from.
pub async fn proposal_of_point(
    conn: &mut PgConnection,
    point_id: i64,
) -> DomainResult<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT r.source_id FROM relations r JOIN entities rt ON rt.id = r.relation_type_id \
         WHERE rt.name = 'spawns_agenda_point' AND r.target_id = $1",
    )
    .bind(point_id)
    .fetch_optional(conn)
    .await?)
}

/// The meeting an agenda point is on.
pub async fn meeting_of_point(conn: &mut PgConnection, point_id: i64) -> DomainResult<Item> {
    let meeting = store::targets_of(&mut *conn, rel::AGENDA_OF, point_id).await?;
    let id = *meeting
        .first()
        .ok_or_else(|| DomainError::NotFound(format!("the meeting of agenda point {point_id}")))?;
    load(conn, id, Some(kind::MEETING)).await
}

/// What to put on a meeting's agenda.
#[derive(Debug, Clone)]
pub enum AgendaSource {
    /// An approved proposal from the ToR's agenda queue.
    Proposal(i64),
    /// A point of its own (reports, any other business).
    Point { title: String, description: String },
}

/// Adds a point to the agenda of a meeting that has not ended; needs `agenda.set`. A
/// proposal must be approved (in the queue) and of the meeting's ToR; it becomes `scheduled`.
pub async fn schedule(
    conn: &mut PgConnection,
    actor: &Actor,
    meeting_id: i64,
    source: &AgendaSource,
) -> DomainResult<i64> {
    let meeting = load_for_update(conn, meeting_id, Some(kind::MEETING)).await?;
    authorize(conn, actor, Capability::SetAgenda, meeting.tor_id).await?;
    if !matches!(
        meeting.status.as_str(),
        "projected" | "confirmed" | "in_progress"
    ) {
        return Err(DomainError::Conflict(format!(
            "the meeting is {}; its agenda is closed",
            meeting.status
        )));
    }
    let position = all_children(conn, kind::AGENDA_POINT, rel::AGENDA_OF, meeting_id)
        .await?
        .len() as i32
        + 1;
    let (proposal, title, description) = match source {
        AgendaSource::Proposal(id) => {
            let proposal = load_for_update(conn, *id, Some(kind::PROPOSAL)).await?;
            if proposal.tor_id != meeting.tor_id {
                return Err(DomainError::Invalid(format!(
                    "proposal {id} belongs to another ToR"
                )));
            }
            if proposal.status != "approved" {
                return Err(DomainError::Conflict(format!(
                    "only approved proposals in the agenda queue can be scheduled; proposal {id} is {}",
                    proposal.status.replace('_', " ")
                )));
            }
            let (t, d) = (proposal.title.clone(), proposal.description.clone());
            (Some(proposal), t, d)
        }
        AgendaSource::Point { title, description } => (None, title.clone(), description.clone()),
    };
    let point = create(
        conn,
        actor,
        NewItem {
            kind: kind::AGENDA_POINT,
            name: None,
            title: &title,
            status: "open",
            description: &description,
            sort_order: position,
            properties: Vec::new(),
            parent: (rel::AGENDA_OF, meeting_id),
        },
    )
    .await?;
    if let Some(proposal) = proposal {
        store::relate(
            conn,
            rel::SPAWNS_AGENDA_POINT,
            proposal.id,
            point,
            &Properties::new(),
        )
        .await?;
        set_status(conn, actor, &proposal, "scheduled", None).await?;
    }
    Ok(point)
}

/// A cancelled, completed or deleted meeting gives its open points' proposals back to the
/// queue; the points are deferred.
pub(super) async fn release_agenda(
    conn: &mut PgConnection,
    actor: &Actor,
    meeting_id: i64,
) -> DomainResult<()> {
    for point in all_children(conn, kind::AGENDA_POINT, rel::AGENDA_OF, meeting_id).await? {
        if point.status == "open" {
            set_status(conn, actor, &point, "deferred", None).await?;
            return_to_queue(conn, actor, point.id).await?;
        }
    }
    Ok(())
}

/// The proposal of a deferred agenda point goes back to the agenda queue (`approved`).
pub(super) async fn return_to_queue(
    conn: &mut PgConnection,
    actor: &Actor,
    point_id: i64,
) -> DomainResult<()> {
    if let Some(p) = proposal_of_point(conn, point_id).await? {
        let proposal = load_for_update(conn, p, Some(kind::PROPOSAL)).await?;
        if proposal.status == "scheduled" {
            set_status(conn, actor, &proposal, "approved", None).await?;
        }
    }
    Ok(())
}

/// A decided agenda point gets a `decision` holding the outcome; its proposal is `decided`.
pub(super) async fn record_decision(
    conn: &mut PgConnection,
    actor: &Actor,
    point: &Item,
    outcome: &str,
) -> DomainResult<()> {
    let meeting = meeting_of_point(conn, point.id).await?;
    create(
        conn,
        actor,
        NewItem {
            kind: kind::DECISION,
            name: None,
            title: &point.title,
            status: "recorded",
            description: outcome,
            sort_order: 0,
            properties: vec![("decided_on", json!(meeting.text(key::DATE)))],
            parent: (rel::DECIDES, point.id),
        },
    )
    .await?;
    if let Some(p) = proposal_of_point(conn, point.id).await? {
        let proposal = load_for_update(conn, p, Some(kind::PROPOSAL)).await?;
        set_status(conn, actor, &proposal, "decided", Some(outcome)).await?;
    }
    Ok(())
}
