//! Events for status transitions: a Warning per newly failed condition, a Normal event when
//! Ready becomes True, nothing when nothing flipped (repeated passes stay quiet).

use super::conditions::{READY, Reason, find};
use crate::crd::AhltEnvironmentStatus;

/// An event to publish for a status transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionEvent {
    pub warning: bool,
    pub reason: String,
    pub note: String,
}

impl TransitionEvent {
    pub fn normal(reason: &str, note: &str) -> Self {
        Self {
            warning: false,
            reason: reason.to_owned(),
            note: note.to_owned(),
        }
    }

    pub fn warning(reason: &str, note: &str) -> Self {
        Self {
            warning: true,
            reason: reason.to_owned(),
            note: note.to_owned(),
        }
    }
}

/// Events for what changed between two statuses: a Warning for each condition that newly
/// failed (one per reason), a Normal event when Ready becomes True. Nothing when nothing
/// flipped, so repeated passes stay quiet.
pub fn transition_events(
    old: &AhltEnvironmentStatus,
    new: &AhltEnvironmentStatus,
) -> Vec<TransitionEvent> {
    let mut events: Vec<TransitionEvent> = Vec::new();
    for c in &new.conditions {
        let before = find(&old.conditions, &c.type_);
        let changed = before.is_none_or(|b| b.status != c.status || b.reason != c.reason);
        if !changed {
            continue;
        }
        if c.status == "False" && !Reason::parse(&c.reason).is_some_and(Reason::in_progress) {
            if !events.iter().any(|e| e.reason == c.reason) {
                events.push(TransitionEvent {
                    warning: true,
                    reason: c.reason.clone(),
                    note: c.message.clone(),
                });
            }
        } else if c.type_ == READY && c.status == "True" {
            events.push(TransitionEvent {
                warning: false,
                reason: READY.to_owned(),
                note: c.message.clone(),
            });
        }
    }
    events
}
