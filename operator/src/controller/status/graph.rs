//! GraphSynced, from the graph step's observation. Never part of Ready.

use super::GraphObservation;
use super::conditions::{ConditionUpdate, GRAPH_SYNCED, find, reason};
use crate::crd::{AhltEnvironmentStatus, GraphStatus};

/// GraphSynced. Never part of Ready (see the module doc).
pub(super) fn graph_condition<'a>(
    next: &AhltEnvironmentStatus,
    g: &GraphObservation,
) -> ConditionUpdate<'a> {
    let update = |status, reason, message| ConditionUpdate {
        type_: GRAPH_SYNCED,
        status,
        reason,
        message,
    };
    let served = |image: &str, request: &Option<String>| match request {
        Some(r) => format!("{image} for resyncRequest {r:?}"),
        None => image.to_owned(),
    };
    match g {
        GraphObservation::NotConfigured => update(
            "True",
            reason::NOT_CONFIGURED,
            "spec.graph is not set".into(),
        ),
        GraphObservation::Unobserved => match find(&next.conditions, GRAPH_SYNCED) {
            Some(c) => ConditionUpdate {
                type_: GRAPH_SYNCED,
                status: static_status(&c.status),
                reason: reason_of(&c.reason),
                message: c.message.clone(),
            },
            None => update(
                "Unknown",
                reason::PENDING,
                "the graph resync waits for the database".into(),
            ),
        },
        GraphObservation::WaitingForRollout { image } => update(
            "False",
            reason::PENDING,
            format!("the graph is resynced once {image} serves"),
        ),
        // Succeeded is already recorded in `next.graph`.
        GraphObservation::UpToDate | GraphObservation::Succeeded { .. } => match &next.graph {
            Some(GraphStatus {
                last_resync_image: Some(image),
                last_resync_time,
                ..
            }) => update(
                "True",
                reason::SYNCED,
                synced_message(image, next.graph.as_ref(), last_resync_time),
            ),
            _ => update(
                "Unknown",
                reason::NOT_REQUESTED,
                "no resync asked for: resyncOnRollout is false and resyncRequest is not set".into(),
            ),
        },
        GraphObservation::Resyncing { image, request } => update(
            "False",
            reason::RESYNCING,
            format!("resyncing the graph with {}", served(image, request)),
        ),
        GraphObservation::Failed {
            image,
            request,
            message,
            ..
        } => update(
            "False",
            reason::RESYNC_FAILED,
            format!(
                "the graph resync with {} failed; a new resyncRequest or image retries: {message}",
                served(image, request)
            ),
        ),
        GraphObservation::CredentialsMissing { message } => {
            update("False", reason::CREDENTIALS_MISSING, message.clone())
        }
    }
}

/// The Synced message, from status alone: a pass that only finds the resync up to date
/// says exactly what the pass that saw it succeed said.
fn synced_message(image: &str, graph: Option<&GraphStatus>, time: &Option<String>) -> String {
    let request = graph
        .and_then(|g| g.last_resync_request.as_deref())
        .map(|r| format!(", last resyncRequest {r:?}"))
        .unwrap_or_default();
    let at = time
        .as_deref()
        .map(|t| format!(" at {t}"))
        .unwrap_or_default();
    format!("graph resynced with {image}{request}{at}")
}

/// Condition statuses as the `&'static str` the updates carry.
fn static_status(status: &str) -> &'static str {
    match status {
        "True" => "True",
        "False" => "False",
        _ => "Unknown",
    }
}

/// A kept GraphSynced reason as one of the bounded reasons.
fn reason_of(r: &str) -> &'static str {
    [
        reason::NOT_CONFIGURED,
        reason::PENDING,
        reason::NOT_REQUESTED,
        reason::RESYNCING,
        reason::SYNCED,
        reason::RESYNC_FAILED,
        reason::CREDENTIALS_MISSING,
    ]
    .into_iter()
    .find(|known| *known == r)
    .unwrap_or(reason::PENDING)
}
