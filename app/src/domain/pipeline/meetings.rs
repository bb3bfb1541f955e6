//! Meetings of a ToR: created for a date (one of the slots the ToR's cadence projects, or any
//! other), their agenda (approved proposals from the queue, or ad-hoc points), the roll call
//! and the decisions taken on agenda points.
//!
//! A meeting's entity name is `meeting-<tor>-<date>-<HHMM>`, so a ToR cannot hold two
//! meetings at the same time (the unique name makes the second a 409, also under races).

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgConnection;

use super::{Item, NewItem, all_children, authorize, create, load, load_for_update};
use crate::domain::audit::{self, Actor};
use crate::domain::{Capability, DomainError, DomainResult, UserRef, kind, outlook, rel, tors};
use crate::store::{self, Properties};

/// Property keys of a meeting.
pub mod key {
    pub const DATE: &str = "meeting_date";
    pub const TIME: &str = "meeting_time";
    pub const DURATION: &str = "duration_minutes";
    pub const LOCATION: &str = "location";
    /// Relation property of `attended`.
    pub const ATTENDANCE: &str = "attendance";
}

/// What a new meeting says; empty fields take the ToR's cadence defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMeeting {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// `HH:MM`.
    #[serde(default)]
    pub time: String,
    #[serde(default)]
    pub duration_minutes: Option<u32>,
    #[serde(default)]
    pub location: String,
    #[serde(default)]
    pub title: String,
}

/// A date and time the cadence projects and no meeting holds yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Slot {
    pub date: String,
    pub time: String,
    pub duration_minutes: u32,
    pub location: String,
}

pub fn parse_date(text: &str) -> DomainResult<Date> {
    text.trim()
        .parse::<Date>()
        .map_err(|_| DomainError::Invalid(format!("a date is YYYY-MM-DD, not {:?}", text.trim())))
}

fn parse_time(text: &str) -> DomainResult<Time> {
    let bad = || DomainError::Invalid(format!("a time is HH:MM, not {:?}", text.trim()));
    let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
    let (h, m): (i8, i8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    Time::new(h, m, 0, 0).map_err(|_| bad())
}

fn hhmm(time: Time) -> String {
    format!("{:02}:{:02}", time.hour(), time.minute())
}

/// Creates a meeting (status `projected`) of ToR `tor_id`; needs `meeting.call`.
pub async fn create_meeting(
    conn: &mut PgConnection,
    actor: &Actor,
    tor_id: i64,
    new: &NewMeeting,
) -> DomainResult<i64> {
    let tor = tors::summary(&mut *conn, tor_id).await?;
    let tor_label = if tor.label.is_empty() {
        tor.name
    } else {
        tor.label
    };
    authorize(conn, actor, Capability::CallMeeting, tor_id).await?;
    let cadence = outlook::cadence_of(&mut *conn, tor_id).await?;
    let date = parse_date(&new.date)?;
    let time = match new.time.trim() {
        "" => cadence
            .as_ref()
            .map_or(Time::constant(9, 0, 0, 0), |c| c.time),
        t => parse_time(t)?,
    };
    let duration = new
        .duration_minutes
        .unwrap_or_else(|| cadence.as_ref().map_or(60, |c| c.duration_minutes));
    if !(1..=24 * 60).contains(&duration) {
        return Err(DomainError::Invalid(format!(
            "a meeting lasts 1 … 1440 minutes, not {duration}"
        )));
    }
    let location = match new.location.trim() {
        "" => cadence.map(|c| c.location).unwrap_or_default(),
        l => l.to_owned(),
    };
    crate::domain::check_label("the location", &location)?;
    let title = match new.title.trim() {
        "" => format!("{} meeting", tor_label),
        t => t.to_owned(),
    };
    let name = format!(
        "meeting-{tor_id}-{date}-{:02}{:02}",
        time.hour(),
        time.minute()
    );
    if store::find_entity(&mut *conn, kind::MEETING, &name)
        .await?
        .is_some()
    {
        return Err(DomainError::Conflict(format!(
            "{} already has a meeting on {date} at {}",
            tor_label,
            hhmm(time)
        )));
    }
    // yyyymmdd fits an i32 and lists a ToR's meetings by date.
    let sort_order =
        i32::from(date.year()) * 10_000 + i32::from(date.month()) * 100 + i32::from(date.day());
    create(
        conn,
        actor,
        NewItem {
            kind: kind::MEETING,
            name: Some(name),
            title: &title,
            status: "projected",
            description: "",
            sort_order,
            properties: vec![
                (key::DATE, json!(date.to_string())),
                (key::TIME, json!(hhmm(time))),
                (key::DURATION, json!(duration)),
                (key::LOCATION, json!(location)),
            ],
            parent: (rel::MEETING_OF, tor_id),
        },
    )
    .await
}

/// The slots the ToR's cadence projects in `days` days from `from` that no meeting takes.
pub async fn slots(
    conn: &mut PgConnection,
    tor_id: i64,
    tz: &TimeZone,
    from: Date,
    days: u16,
) -> DomainResult<Vec<Slot>> {
    let Some(cadence) = outlook::cadence_of(&mut *conn, tor_id).await? else {
        return Ok(Vec::new());
    };
    let taken: Vec<String> = sqlx::query_scalar(
        "SELECT e.name FROM entities e JOIN relations r ON r.source_id = e.id AND r.target_id = $1 \
         JOIN entities rt ON rt.id = r.relation_type_id AND rt.name = 'meeting_of' \
         WHERE e.entity_type = 'meeting'",
    )
    .bind(tor_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(cadence
        .meetings(from, days, tz)
        .into_iter()
        .filter_map(|(start, _)| {
            let (date, time) = (start.date(), start.time());
            let name = format!(
                "meeting-{tor_id}-{date}-{:02}{:02}",
                time.hour(),
                time.minute()
            );
            (!taken.contains(&name)).then(|| Slot {
                date: date.to_string(),
                time: hhmm(time),
                duration_minutes: cadence.duration_minutes,
                location: cadence.location.clone(),
            })
        })
        .collect())
}

/// An agenda point with the proposal it came from and the decision taken on it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgendaEntry {
    #[serde(flatten)]
    pub point: Item,
    pub proposal_id: Option<i64>,
    pub decision: Option<Item>,
    pub coas: Vec<super::coa::CoaView>,
    pub opinions: Vec<super::coa::OpinionView>,
}

/// A member of the ToR and what the roll call says of them (`None`: not recorded).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attendee {
    pub user: UserRef,
    pub attendance: Option<Attendance>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attendance {
    Present,
    Absent,
    Excused,
}

impl Attendance {
    pub fn parse(text: &str) -> Option<Attendance> {
        match text {
            "present" => Some(Attendance::Present),
            "absent" => Some(Attendance::Absent),
            "excused" => Some(Attendance::Excused),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Attendance::Present => "present",
            Attendance::Absent => "absent",
            Attendance::Excused => "excused",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeetingDetail {
    #[serde(flatten)]
    pub meeting: Item,
    pub agenda: Vec<AgendaEntry>,
    pub attendance: Vec<Attendee>,
    pub minutes_id: Option<i64>,
}

/// The users who fill a position of the ToR, by display name.
pub async fn members(conn: &mut PgConnection, tor_id: i64) -> DomainResult<Vec<UserRef>> {
    Ok(sqlx::query_as(
        "SELECT DISTINCT u.id, u.name AS username, u.label AS display_name FROM entities u \
         JOIN relations fp ON fp.source_id = u.id \
         JOIN entities fpt ON fpt.id = fp.relation_type_id AND fpt.name = 'fills_position' \
         JOIN relations bt ON bt.source_id = fp.target_id \
         JOIN entities btt ON btt.id = bt.relation_type_id AND btt.name = 'belongs_to_tor' \
         WHERE bt.target_id = $1 AND u.entity_type = 'user' AND u.is_active \
         ORDER BY u.label, u.id",
    )
    .bind(tor_id)
    .fetch_all(conn)
    .await?)
}

pub async fn detail(conn: &mut PgConnection, id: i64) -> DomainResult<MeetingDetail> {
    let meeting = load(conn, id, Some(kind::MEETING)).await?;
    let mut agenda = Vec::new();
    for point in all_children(conn, kind::AGENDA_POINT, rel::AGENDA_OF, id).await? {
        let proposal_id = super::agenda::proposal_of_point(conn, point.id).await?;
        let decision = all_children(conn, kind::DECISION, rel::DECIDES, point.id)
            .await?
            .pop();
        let (coas, opinions) = super::coa::of_point(conn, point.id).await?;
        agenda.push(AgendaEntry {
            point,
            proposal_id,
            decision,
            coas,
            opinions,
        });
    }
    let recorded: Vec<(i64, Option<String>)> = sqlx::query_as(
        "SELECT r.source_id, p.value #>> '{}' FROM relations r \
         JOIN entities rt ON rt.id = r.relation_type_id AND rt.name = 'attended' \
         LEFT JOIN relation_properties p ON p.relation_id = r.id AND p.key = 'attendance' \
         WHERE r.target_id = $1",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let attendance = members(conn, meeting.tor_id)
        .await?
        .into_iter()
        .map(|user| Attendee {
            attendance: recorded
                .iter()
                .find(|(u, _)| *u == user.id)
                .and_then(|(_, a)| a.as_deref().and_then(Attendance::parse)),
            user,
        })
        .collect();
    let minutes_id = all_children(conn, kind::MINUTES, rel::MINUTES_OF, id)
        .await?
        .first()
        .map(|m| m.id);
    Ok(MeetingDetail {
        meeting,
        agenda,
        attendance,
        minutes_id,
    })
}

/// Records a member's attendance (roll call); needs `minutes.record`, once the meeting is
/// confirmed and until it is cancelled.
pub async fn set_attendance(
    conn: &mut PgConnection,
    actor: &Actor,
    meeting_id: i64,
    user_id: i64,
    attendance: Attendance,
) -> DomainResult<()> {
    let meeting = load_for_update(conn, meeting_id, Some(kind::MEETING)).await?;
    authorize(conn, actor, Capability::RecordMinutes, meeting.tor_id).await?;
    if !matches!(
        meeting.status.as_str(),
        "confirmed" | "in_progress" | "completed"
    ) {
        return Err(DomainError::Conflict(format!(
            "the roll call opens when the meeting is confirmed; it is {}",
            meeting.status
        )));
    }
    if !members(conn, meeting.tor_id)
        .await?
        .iter()
        .any(|m| m.id == user_id)
    {
        return Err(DomainError::Invalid(format!(
            "user {user_id} fills no position of this ToR"
        )));
    }
    let relation =
        store::relate(conn, rel::ATTENDED, user_id, meeting_id, &Properties::new()).await?;
    store::set_relation_property(
        conn,
        relation.id,
        key::ATTENDANCE,
        &json!(attendance.as_str()),
    )
    .await?;
    audit::record(
        conn,
        actor,
        "meeting.attendance",
        Some((kind::MEETING, meeting_id)),
        json!({"user_id": user_id, "attendance": attendance}),
    )
    .await?;
    Ok(())
}
