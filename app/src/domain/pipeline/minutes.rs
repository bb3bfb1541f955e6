//! Minutes of a meeting: generated as a scaffold from what the meeting recorded (attendance,
//! agenda, decisions), edited section by section while draft, with action items (an owner
//! and a due date each), then approved and distributed through the workflow.
//!
//! While the minutes are draft, [`refresh`] brings the generated sections up to date with the
//! meeting (a late roll call, a decision recorded after the minutes were started). A secretary
//! asks for it; it is not automatic, so the text never changes under someone typing. Each
//! generated section remembers the text it was last generated with, so a section edited by
//! hand since then is kept unless the secretary asks to replace it too.

use serde::Serialize;
use serde_json::json;
use sqlx::PgConnection;

use super::meetings::{self, Attendance, MeetingDetail};
use super::{Item, NewItem, all_children, authorize, create, load, load_for_update, set_status};
use crate::domain::audit::{self, Actor};
use crate::domain::{Capability, DomainError, DomainResult, UserRef, kind, rel, users};
use crate::store::{self, Properties};

/// The sections every minutes start with: (kind, heading).
pub const SECTIONS: [(&str, &str); 5] = [
    ("attendance", "Attendance"),
    ("agenda", "Agenda"),
    ("decisions", "Decisions"),
    ("action_items", "Action items"),
    ("notes", "Notes"),
];

/// The sections filled from the meeting; the others are written by hand.
pub const GENERATED: [&str; 3] = ["attendance", "agenda", "decisions"];

/// Property keys.
pub mod key {
    pub const SECTION_KIND: &str = "section_kind";
    pub const DUE_DATE: &str = "due_date";
    /// A generated section's text as last generated (tells a hand edit from the scaffold).
    pub const GENERATED_TEXT: &str = "generated_text";
}

/// What [`refresh`] did, by section heading.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RefreshReport {
    /// Rewritten from the meeting.
    pub refreshed: Vec<String>,
    /// Already what the meeting says.
    pub unchanged: Vec<String>,
    /// Edited by hand since generated, and kept (pass `overwrite_edited` to replace them).
    pub kept_edited: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionItem {
    #[serde(flatten)]
    pub item: Item,
    pub owner: Option<UserRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MinutesDetail {
    #[serde(flatten)]
    pub minutes: Item,
    pub meeting_id: i64,
    /// Section bodies are in `description`.
    pub sections: Vec<Item>,
    pub action_items: Vec<ActionItem>,
}

fn names(attendees: &[&UserRef]) -> String {
    attendees
        .iter()
        .map(|u| u.display_name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The scaffold text of each section, from what the meeting recorded.
fn scaffold(meeting: &MeetingDetail, section: &str) -> String {
    match section {
        "attendance" => {
            let mut lines = Vec::new();
            for (what, label) in [
                (Some(Attendance::Present), "Present"),
                (Some(Attendance::Excused), "Excused"),
                (Some(Attendance::Absent), "Absent"),
                (None, "Not recorded"),
            ] {
                let who: Vec<&UserRef> = meeting
                    .attendance
                    .iter()
                    .filter(|a| a.attendance == what)
                    .map(|a| &a.user)
                    .collect();
                if !who.is_empty() {
                    lines.push(format!("{label}: {}", names(&who)));
                }
            }
            lines.join("\n")
        }
        "agenda" => meeting
            .agenda
            .iter()
            .enumerate()
            .map(|(i, e)| format!("{}. {}", i + 1, e.point.title))
            .collect::<Vec<_>>()
            .join("\n"),
        "decisions" => meeting
            .agenda
            .iter()
            .filter_map(|e| match (&e.decision, e.point.status.as_str()) {
                (Some(d), _) => Some(format!("{}: {}", e.point.title, d.description)),
                (None, "deferred") => Some(format!("{}: deferred", e.point.title)),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Generates the minutes of a meeting that is in progress or completed; needs
/// `minutes.record`. A meeting has one set of minutes (a second is a 409).
pub async fn generate(
    conn: &mut PgConnection,
    actor: &Actor,
    meeting_id: i64,
) -> DomainResult<i64> {
    let meeting = load_for_update(conn, meeting_id, Some(kind::MEETING)).await?;
    authorize(conn, actor, Capability::RecordMinutes, meeting.tor_id).await?;
    if !matches!(meeting.status.as_str(), "in_progress" | "completed") {
        return Err(DomainError::Conflict(format!(
            "minutes are written once the meeting has started; it is {}",
            meeting.status
        )));
    }
    let detail = meetings::detail(conn, meeting_id).await?;
    if let Some(existing) = detail.minutes_id {
        return Err(DomainError::Conflict(format!(
            "this meeting already has minutes ({existing})"
        )));
    }
    let title = format!(
        "Minutes: {} ({})",
        meeting.title,
        meeting.text(meetings::key::DATE)
    );
    let minutes = create(
        conn,
        actor,
        NewItem {
            kind: kind::MINUTES,
            name: Some(format!("minutes-{meeting_id}")),
            title: &title,
            status: "draft",
            description: "",
            sort_order: 0,
            properties: Vec::new(),
            parent: (rel::MINUTES_OF, meeting_id),
        },
    )
    .await?;
    for (i, (section, heading)) in SECTIONS.iter().enumerate() {
        let text = scaffold(&detail, section).trim().to_owned();
        let mut properties = vec![(key::SECTION_KIND, json!(section))];
        if GENERATED.contains(section) {
            properties.push((key::GENERATED_TEXT, json!(text)));
        }
        create(
            conn,
            actor,
            NewItem {
                kind: kind::MINUTES_SECTION,
                name: None,
                title: heading,
                status: "",
                description: &text,
                sort_order: i as i32,
                properties,
                parent: (rel::SECTION_OF, minutes),
            },
        )
        .await?;
    }
    Ok(minutes)
}

pub async fn detail(conn: &mut PgConnection, id: i64) -> DomainResult<MinutesDetail> {
    let minutes = load(conn, id, Some(kind::MINUTES)).await?;
    let meeting_id = *store::targets_of(&mut *conn, rel::MINUTES_OF, id)
        .await?
        .first()
        .ok_or_else(|| DomainError::NotFound(format!("the meeting of minutes {id}")))?;
    let sections = all_children(conn, kind::MINUTES_SECTION, rel::SECTION_OF, id).await?;
    let mut action_items = Vec::new();
    for item in all_children(conn, kind::ACTION_ITEM, rel::ACTION_OF, id).await? {
        let owner = match store::targets_of(&mut *conn, rel::ASSIGNED_TO, item.id)
            .await?
            .first()
        {
            Some(&user) => users::get(&mut *conn, user).await?.map(|u| UserRef {
                id: u.id,
                username: u.username,
                display_name: u.display_name,
            }),
            None => None,
        };
        action_items.push(ActionItem { item, owner });
    }
    Ok(MinutesDetail {
        minutes,
        meeting_id,
        sections,
        action_items,
    })
}

/// The draft minutes an edit applies to, after checking `minutes.record`.
async fn draft_minutes(conn: &mut PgConnection, actor: &Actor, id: i64) -> DomainResult<Item> {
    let minutes = load_for_update(conn, id, Some(kind::MINUTES)).await?;
    authorize(conn, actor, Capability::RecordMinutes, minutes.tor_id).await?;
    if minutes.status != "draft" {
        return Err(DomainError::Conflict(format!(
            "the minutes are {}; only draft minutes can be changed",
            minutes.status
        )));
    }
    Ok(minutes)
}

/// Regenerates the generated sections of draft minutes from the meeting as it is now
/// (needs `minutes.record`). Sections edited by hand since they were generated (or minutes
/// drafted before sections remembered their generated text) are kept unless
/// `overwrite_edited`; hand-written sections are never touched.
pub async fn refresh(
    conn: &mut PgConnection,
    actor: &Actor,
    minutes_id: i64,
    overwrite_edited: bool,
) -> DomainResult<RefreshReport> {
    draft_minutes(conn, actor, minutes_id).await?;
    let current = detail(conn, minutes_id).await?;
    let meeting = meetings::detail(conn, current.meeting_id).await?;
    let mut report = RefreshReport::default();
    for section in &current.sections {
        let section_kind = section.text(key::SECTION_KIND);
        if !GENERATED.contains(&section_kind.as_str()) {
            continue;
        }
        let fresh = scaffold(&meeting, &section_kind).trim().to_owned();
        let last_generated = section.properties.get(key::GENERATED_TEXT);
        let edited = last_generated.and_then(|v| v.as_str()) != Some(section.description.as_str());
        if edited && !overwrite_edited {
            report.kept_edited.push(section.title.clone());
            continue;
        }
        if !edited && section.description == fresh {
            report.unchanged.push(section.title.clone());
            continue;
        }
        store::set_property(conn, section.id, super::key::DESCRIPTION, &json!(fresh)).await?;
        store::set_property(conn, section.id, key::GENERATED_TEXT, &json!(fresh)).await?;
        report.refreshed.push(section.title.clone());
    }
    if !report.refreshed.is_empty() {
        audit::record(
            conn,
            actor,
            "minutes.refresh",
            Some((kind::MINUTES, minutes_id)),
            json!({"refreshed": report.refreshed, "kept_edited": report.kept_edited}),
        )
        .await?;
    }
    Ok(report)
}

/// Replaces a section's text.
pub async fn edit_section(
    conn: &mut PgConnection,
    actor: &Actor,
    minutes_id: i64,
    section_id: i64,
    body: &str,
) -> DomainResult<Item> {
    draft_minutes(conn, actor, minutes_id).await?;
    let section = load(conn, section_id, Some(kind::MINUTES_SECTION)).await?;
    if store::targets_of(&mut *conn, rel::SECTION_OF, section_id).await? != [minutes_id] {
        return Err(DomainError::NotFound(format!(
            "section {section_id} of minutes {minutes_id}"
        )));
    }
    super::check_text("a section", body)?;
    store::set_property(conn, section_id, super::key::DESCRIPTION, &json!(body)).await?;
    audit::record(
        conn,
        actor,
        "minutes.section.update",
        Some((kind::MINUTES, minutes_id)),
        json!({"section_id": section_id, "section": section.title}),
    )
    .await?;
    load(conn, section_id, Some(kind::MINUTES_SECTION)).await
}

/// Adds an action item to draft minutes: what, who (an active user) and by when.
pub async fn add_action_item(
    conn: &mut PgConnection,
    actor: &Actor,
    minutes_id: i64,
    description: &str,
    owner_id: i64,
    due_date: &str,
) -> DomainResult<i64> {
    draft_minutes(conn, actor, minutes_id).await?;
    match users::get(&mut *conn, owner_id).await? {
        Some(u) if u.is_active => {}
        _ => {
            return Err(DomainError::Invalid(format!(
                "the owner {owner_id} is not an active user"
            )));
        }
    }
    let due = match due_date.trim() {
        "" => None,
        d => Some(meetings::parse_date(d)?.to_string()),
    };
    let id = create(
        conn,
        actor,
        NewItem {
            kind: kind::ACTION_ITEM,
            name: None,
            title: description,
            status: "open",
            description: "",
            sort_order: 0,
            properties: due.map(|d| (key::DUE_DATE, json!(d))).into_iter().collect(),
            parent: (rel::ACTION_OF, minutes_id),
        },
    )
    .await?;
    store::relate(conn, rel::ASSIGNED_TO, id, owner_id, &Properties::new()).await?;
    Ok(id)
}

/// Whether the acting user owns action item `id`. Owners may close their own item even when
/// they cannot otherwise see the ToR (someone from outside the committee who was given a
/// task): callers skip the ToR's view check for them, and only for them.
pub async fn owns_action_item(
    conn: &mut PgConnection,
    actor: &Actor,
    id: i64,
) -> DomainResult<bool> {
    let Some(user_id) = actor.user_id else {
        return Ok(false);
    };
    let owners = store::targets_of(&mut *conn, rel::ASSIGNED_TO, id).await?;
    Ok(owners.contains(&user_id))
}

/// Marks an action item done or open again: its owner, or someone with `minutes.record`.
pub async fn set_action_done(
    conn: &mut PgConnection,
    actor: &Actor,
    id: i64,
    done: bool,
) -> DomainResult<Item> {
    let item = load_for_update(conn, id, Some(kind::ACTION_ITEM)).await?;
    if !owns_action_item(conn, actor, id).await? {
        authorize(conn, actor, Capability::RecordMinutes, item.tor_id).await?;
    }
    let to = if done { "done" } else { "open" };
    if item.status != to {
        set_status(conn, actor, &item, to, None).await?;
    }
    load(conn, id, Some(kind::ACTION_ITEM)).await
}
