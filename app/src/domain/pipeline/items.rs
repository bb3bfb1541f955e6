//! Suggestions and proposals, the consequences of workflow moves, and deleting items.
//!
//! Anyone who may view a ToR (`tor.view`) may suggest and propose there. Accepting a
//! suggestion creates a draft proposal from it (`spawns_proposal`). An approved proposal waits
//! in the ToR's agenda queue until it is scheduled into a meeting ([`super::meetings`]).

use serde_json::json;
use sqlx::PgConnection;

use super::{Item, NewItem, agenda, authorize, authors, create, load, load_for_update};
use crate::domain::audit::{self, Actor};
use crate::domain::{Capability, DomainError, DomainResult, kind, rel, tors};
use crate::store::{self, Page, PageRequest, Properties};

/// The relation from an item of `kind` to its ToR, for kinds that hang off a ToR.
pub fn tor_relation(kind: &str) -> Option<&'static str> {
    match kind {
        kind::SUGGESTION => Some(rel::SUGGESTED_TO),
        kind::PROPOSAL => Some(rel::SUBMITTED_TO),
        kind::MEETING => Some(rel::MEETING_OF),
        _ => None,
    }
}

/// A new suggestion (status `open`) or proposal (status `draft`) on ToR `tor_id`.
pub async fn submit(
    conn: &mut PgConnection,
    actor: &Actor,
    item_kind: &str,
    tor_id: i64,
    title: &str,
    description: &str,
) -> DomainResult<i64> {
    let (status, relation) = match item_kind {
        kind::SUGGESTION => ("open", rel::SUGGESTED_TO),
        kind::PROPOSAL => ("draft", rel::SUBMITTED_TO),
        other => return Err(DomainError::Invalid(format!("{other} is not submitted"))),
    };
    tors::summary(&mut *conn, tor_id).await?;
    authorize(conn, actor, Capability::ViewTor, tor_id).await?;
    create(
        conn,
        actor,
        NewItem {
            kind: item_kind,
            name: None,
            title,
            status,
            description,
            sort_order: 0,
            properties: Vec::new(),
            parent: (relation, tor_id),
        },
    )
    .await
}

/// Suggestions, proposals or meetings of a ToR, optionally in some statuses, by id.
pub async fn list(
    conn: &mut PgConnection,
    item_kind: &str,
    tor_id: i64,
    statuses: &[&str],
    page: PageRequest,
) -> DomainResult<Page<Item>> {
    let relation = tor_relation(item_kind)
        .ok_or_else(|| DomainError::Invalid(format!("{item_kind} is not listed by ToR")))?;
    super::children(conn, item_kind, relation, tor_id, statuses, page).await
}

/// Checks a move's preconditions beyond the workflow: agenda points are decided only while
/// their meeting is in progress.
pub(super) async fn before_move(
    conn: &mut PgConnection,
    item: &Item,
    to: &str,
) -> DomainResult<()> {
    if item.kind == kind::AGENDA_POINT {
        let meeting = agenda::meeting_of_point(conn, item.id).await?;
        let ok = match to {
            "decided" => meeting.status == "in_progress",
            _ => matches!(meeting.status.as_str(), "confirmed" | "in_progress"),
        };
        if !ok {
            return Err(DomainError::Conflict(format!(
                "agenda points are {} only while the meeting is {}; it is {}",
                if to == "decided" { "decided" } else { "moved" },
                if to == "decided" {
                    "in progress"
                } else {
                    "confirmed or in progress"
                },
                meeting.status
            )));
        }
    }
    Ok(())
}

/// The consequences of a move, in the same transaction.
pub(super) async fn after_move(
    conn: &mut PgConnection,
    actor: &Actor,
    item: &Item,
    to: &str,
    outcome: Option<&str>,
) -> DomainResult<()> {
    match (item.kind.as_str(), to) {
        (kind::SUGGESTION, "accepted") => {
            let proposal = create(
                conn,
                actor,
                NewItem {
                    kind: kind::PROPOSAL,
                    name: None,
                    title: &item.title,
                    status: "draft",
                    description: &item.description,
                    sort_order: 0,
                    properties: Vec::new(),
                    parent: (rel::SUBMITTED_TO, item.tor_id),
                },
            )
            .await?;
            store::relate(
                conn,
                rel::SPAWNS_PROPOSAL,
                item.id,
                proposal,
                &Properties::new(),
            )
            .await?;
            // The suggestion's authors may carry their idea on as the proposal's authors.
            for author in authors(&mut *conn, item.id).await? {
                store::relate(conn, rel::AUTHORED_BY, proposal, author, &Properties::new()).await?;
            }
        }
        // What a meeting did not decide goes back to the queue, whether it was cancelled or
        // ended without reaching it.
        (kind::MEETING, "cancelled" | "completed") => {
            agenda::release_agenda(conn, actor, item.id).await?
        }
        (kind::AGENDA_POINT, "decided") => {
            agenda::record_decision(conn, actor, item, outcome.unwrap_or_default()).await?
        }
        (kind::AGENDA_POINT, "deferred") => agenda::return_to_queue(conn, actor, item.id).await?,
        _ => {}
    }
    Ok(())
}

/// The suggestion's proposal, when accepting it created one.
pub async fn proposal_of(conn: &mut PgConnection, suggestion_id: i64) -> DomainResult<Option<i64>> {
    Ok(
        store::targets_of(&mut *conn, rel::SPAWNS_PROPOSAL, suggestion_id)
            .await?
            .first()
            .copied(),
    )
}

/// Authors may delete their own suggestions and proposals; others need `capability`.
async fn authorize_author_or(
    conn: &mut PgConnection,
    actor: &Actor,
    item: &Item,
    capability: Capability,
) -> DomainResult<()> {
    if let Some(user_id) = actor.user_id
        && authors(&mut *conn, item.id).await?.contains(&user_id)
    {
        return Ok(());
    }
    authorize(conn, actor, capability, item.tor_id).await
}

/// Deletes an item with what only it holds, or refuses (409) when it is part of the record
/// or other items depend on it:
/// - a suggestion unless accepted (its proposal carries it on);
/// - a proposal unless scheduled or decided (an agenda point refers to it);
/// - a meeting that has not been held (projected, confirmed or cancelled), with its agenda
///   points (with their courses of action and opinions); their proposals return to the
///   agenda queue;
/// - a course of action of an open point that no opinion prefers, with its sections;
/// - draft minutes with their sections and action items; an action item of draft minutes.
pub async fn delete(conn: &mut PgConnection, actor: &Actor, id: i64) -> DomainResult<Item> {
    let item = load_for_update(conn, id, None).await?;
    let refuse = |why: String| Err(DomainError::Conflict(why));
    let mut removed = vec![id];
    match item.kind.as_str() {
        kind::SUGGESTION => {
            authorize_author_or(conn, actor, &item, Capability::SetAgenda).await?;
            if let Some(p) = proposal_of(conn, id).await? {
                return refuse(format!(
                    "this suggestion was accepted and became proposal {p}; it stays as that proposal's origin"
                ));
            }
        }
        kind::PROPOSAL => {
            authorize_author_or(conn, actor, &item, Capability::EditTor).await?;
            if matches!(item.status.as_str(), "scheduled" | "decided") {
                return refuse(format!(
                    "this proposal is {} on a meeting's agenda; remove it from the agenda or keep it",
                    item.status
                ));
            }
        }
        kind::MEETING => {
            authorize(conn, actor, Capability::CallMeeting, item.tor_id).await?;
            if matches!(item.status.as_str(), "in_progress" | "completed") {
                return refuse(format!(
                    "a meeting that is {} is part of the record and cannot be deleted; cancel it before it starts instead",
                    item.status.replace('_', " ")
                ));
            }
            agenda::release_agenda(conn, actor, id).await?;
            let points: Vec<i64> =
                super::all_children(conn, kind::AGENDA_POINT, rel::AGENDA_OF, id)
                    .await?
                    .iter()
                    .map(|p| p.id)
                    .collect();
            removed.extend(super::coa::dependents(conn, &points).await?);
            removed.extend(points);
        }
        kind::COA => {
            removed = super::coa::deletable(conn, actor, &item).await?;
        }
        kind::MINUTES | kind::ACTION_ITEM => {
            authorize(conn, actor, Capability::RecordMinutes, item.tor_id).await?;
            let minutes = if item.kind == kind::MINUTES {
                item.clone()
            } else {
                let parent = store::targets_of(&mut *conn, rel::ACTION_OF, id).await?;
                let parent = *parent.first().ok_or_else(|| {
                    DomainError::NotFound(format!("the minutes of action item {id}"))
                })?;
                load(conn, parent, Some(kind::MINUTES)).await?
            };
            if minutes.status != "draft" {
                return refuse(format!(
                    "the minutes are {}; only draft minutes (and their action items) can be deleted",
                    minutes.status
                ));
            }
            if item.kind == kind::MINUTES {
                for (k, r) in [
                    (kind::MINUTES_SECTION, rel::SECTION_OF),
                    (kind::ACTION_ITEM, rel::ACTION_OF),
                ] {
                    let children = super::all_children(conn, k, r, id).await?;
                    removed.extend(children.iter().map(|c| c.id));
                }
            }
        }
        other => {
            return Err(DomainError::Invalid(format!(
                "a {} cannot be deleted on its own",
                other.replace('_', " ")
            )));
        }
    }
    sqlx::query("DELETE FROM entities WHERE id = ANY($1)")
        .bind(&removed)
        .execute(&mut *conn)
        .await?;
    audit::record(
        conn,
        actor,
        &format!("{}.delete", item.kind),
        Some((&item.kind, id)),
        json!({"title": item.title, "tor_id": item.tor_id, "removed": removed.len()}),
    )
    .await?;
    Ok(item)
}

/// Changes the title and description of an open suggestion or a draft proposal: its author,
/// or someone with `tor.edit`.
pub async fn edit(
    conn: &mut PgConnection,
    actor: &Actor,
    id: i64,
    title: Option<&str>,
    description: Option<&str>,
) -> DomainResult<Item> {
    let item = load_for_update(conn, id, None).await?;
    let editable = matches!(
        (item.kind.as_str(), item.status.as_str()),
        (kind::SUGGESTION, "open") | (kind::PROPOSAL, "draft")
    );
    authorize_author_or(conn, actor, &item, Capability::EditTor).await?;
    if !editable {
        return Err(DomainError::Conflict(format!(
            "only open suggestions and draft proposals can be edited; this {} is {}",
            item.kind, item.status
        )));
    }
    let mut patch = store::EntityPatch::default();
    if let Some(t) = title {
        patch.label = Some(super::check_title(t)?);
    }
    if let Some(d) = description {
        super::check_text("the description", d)?;
        patch
            .properties
            .insert(super::key::DESCRIPTION.into(), Some(json!(d.trim())));
    }
    store::update_entity(conn, id, &patch).await?;
    audit::record(
        conn,
        actor,
        &format!("{}.update", item.kind),
        Some((&item.kind, id)),
        json!({"tor_id": item.tor_id}),
    )
    .await?;
    load(conn, id, None).await
}
