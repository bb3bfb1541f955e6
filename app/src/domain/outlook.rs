//! Reading and writing a ToR's meeting cadence, and the outlook: the meetings every ToR a
//! reader may see will hold in a window of days, in the environment's time zone.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Serialize;
use serde_json::json;
use sqlx::{PgConnection, PgExecutor};

use super::audit::{self, Actor};
use super::cadence::{self, Cadence, CadenceInfo};
use super::{Capability, DomainError, DomainResult, abac, kind};
use crate::graph::Projection;
use crate::store::{self, EntityPatch};

/// Default and largest outlook window, in days.
pub const DEFAULT_DAYS: u16 = 30;
pub const MAX_DAYS: u16 = 90;

/// A ToR's cadence as stored (`None`: none, or one that cannot be understood).
pub async fn cadence_of(exec: impl PgExecutor<'_>, tor_id: i64) -> DomainResult<Option<Cadence>> {
    let properties = store::properties_of(exec, &[tor_id]).await?;
    Ok(properties.get(&tor_id).and_then(cadence::from_map))
}

/// Sets (or with `None` removes) a ToR's cadence.
pub async fn set_cadence(
    conn: &mut PgConnection,
    actor: &Actor,
    tor_id: i64,
    cadence: Option<&Cadence>,
) -> DomainResult<Option<CadenceInfo>> {
    match store::get_entity_in(&mut *conn, tor_id).await? {
        Some(e) if e.entity.entity_type == kind::TOR => {}
        _ => return Err(DomainError::NotFound(format!("ToR {tor_id}"))),
    }
    let before = cadence_of(&mut *conn, tor_id).await?;
    let patch = EntityPatch {
        properties: Cadence::to_properties(cadence)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        ..Default::default()
    };
    store::update_entity(conn, tor_id, &patch).await?;
    let info = cadence.map(Cadence::info);
    if before.as_ref() != cadence {
        audit::record(
            conn,
            actor,
            "tor.cadence.update",
            Some((kind::TOR, tor_id)),
            json!({"cadence": info.as_ref().map(|i| &i.summary)}),
        )
        .await?;
    }
    Ok(info)
}

/// One projected meeting.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Meeting {
    pub tor_id: i64,
    pub tor_name: String,
    pub tor_label: String,
    /// Local date, `YYYY-MM-DD`.
    pub date: String,
    /// Local start time, `HH:MM`.
    pub start_time: String,
    /// RFC 3339 with the offset in force that day, e.g. `2026-03-30T09:00:00+02:00`.
    pub start: String,
    pub end: String,
    pub duration_minutes: u32,
    pub location: String,
    pub cadence: &'static str,
    /// The planned meeting (see [`crate::domain::pipeline::meetings`]) at this time, if any;
    /// `None` for a date the cadence projects that no meeting has been planned for.
    pub meeting_id: Option<i64>,
    /// The planned meeting's status.
    pub status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outlook {
    /// IANA name of the environment's time zone.
    pub timezone: String,
    /// First and last day of the window, inclusive.
    pub from: String,
    pub to: String,
    pub days: u16,
    pub meetings: Vec<Meeting>,
}

/// Who reads the outlook: `all` when they may view every ToR (`tors.view`), else the ToRs
/// their capabilities show them.
pub struct Reader {
    pub user_id: i64,
    pub sees_all: bool,
}

fn rfc3339(z: &jiff::Zoned) -> String {
    z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// The ToRs a reader may see: every ToR with `tors.view`, else those on which they hold
/// `tor.view` (from a role: all; from a position: that ToR).
async fn visible(
    conn: &mut PgConnection,
    graph: Option<&Projection>,
    reader: &Reader,
) -> DomainResult<Option<Vec<i64>>> {
    if reader.sees_all {
        return Ok(None);
    }
    let grants = abac::grants(&mut *conn, graph, reader.user_id).await?;
    let view: Vec<_> = grants
        .iter()
        .filter(|g| g.capability == Capability::ViewTor)
        .collect();
    if view.iter().any(|g| g.tor_id.is_none()) {
        return Ok(None);
    }
    Ok(Some(view.iter().filter_map(|g| g.tor_id).collect()))
}

/// The meetings of the active ToRs `reader` may see on the `days` (1..=[`MAX_DAYS`]) dates
/// from `from`, by start time, then ToR label.
pub async fn outlook(
    conn: &mut PgConnection,
    graph: Option<&Projection>,
    reader: &Reader,
    tz: &TimeZone,
    from: Date,
    days: u16,
) -> DomainResult<Outlook> {
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(DomainError::Invalid(format!(
            "the window is 1 … {MAX_DAYS} days, not {days}"
        )));
    }
    let visible = visible(conn, graph, reader).await?;
    let rows: Vec<(i64, String, String, serde_json::Value)> = sqlx::query_as(
        "SELECT t.id, t.name, t.label, \
                COALESCE(jsonb_object_agg(p.key, p.value) FILTER (WHERE p.key IS NOT NULL), '{}'::jsonb) \
         FROM entities t LEFT JOIN entity_properties p ON p.entity_id = t.id AND p.key = ANY($1) \
         WHERE t.entity_type = 'tor' AND t.is_active AND ($2::bigint[] IS NULL OR t.id = ANY($2)) \
         GROUP BY t.id",
    )
    .bind(&cadence::key::ALL[..])
    .bind(visible.as_deref())
    .fetch_all(&mut *conn)
    .await?;
    let mut meetings = Vec::new();
    let mut tors = Vec::new();
    for (id, name, label, properties) in rows {
        let label = if label.is_empty() {
            name.clone()
        } else {
            label
        };
        tors.push((id, name.clone(), label.clone()));
        let Some(cadence) = Cadence::from_properties(|k| properties.get(k).cloned()) else {
            continue;
        };
        let info = cadence.info();
        for (start, end) in cadence.meetings(from, days, tz) {
            meetings.push((
                start.timestamp(),
                Meeting {
                    tor_id: id,
                    tor_name: name.clone(),
                    tor_label: label.clone(),
                    date: start.date().to_string(),
                    start_time: start.strftime("%H:%M").to_string(),
                    start: rfc3339(&start),
                    end: rfc3339(&end),
                    duration_minutes: cadence.duration_minutes,
                    location: cadence.location.clone(),
                    cadence: info.meeting_cadence,
                    meeting_id: None,
                    status: None,
                },
            ));
        }
    }
    let last = from
        .checked_add(jiff::Span::new().days(i64::from(days) - 1))
        .unwrap_or(from);
    planned(conn, tz, &tors, from, last, &mut meetings).await?;
    meetings.sort_by(|(a, ma), (b, mb)| {
        (a, &ma.tor_label, ma.tor_id).cmp(&(b, &mb.tor_label, mb.tor_id))
    });
    Ok(Outlook {
        timezone: tz.iana_name().unwrap_or("UTC").to_string(),
        from: from.to_string(),
        to: last.to_string(),
        days,
        meetings: meetings.into_iter().map(|(_, m)| m).collect(),
    })
}

type PlannedRow = (
    i64,
    i64,
    String,
    Option<String>,
    Option<serde_json::Value>,
    Option<String>,
    Option<String>,
);

/// Puts the planned meetings of `tors` from `from` to `last` into `meetings`: each takes the
/// place of the projection at its time; a cancelled one removes it.
async fn planned(
    conn: &mut PgConnection,
    tz: &TimeZone,
    tors: &[(i64, String, String)],
    from: Date,
    last: Date,
    meetings: &mut Vec<(jiff::Timestamp, Meeting)>,
) -> DomainResult<()> {
    let ids: Vec<i64> = tors.iter().map(|t| t.0).collect();
    let rows: Vec<PlannedRow> = sqlx::query_as(
        "SELECT m.id, mo.target_id, d.value #>> '{}', t.value #>> '{}', du.value, \
                loc.value #>> '{}', s.value #>> '{}' \
         FROM entities m \
         JOIN relations mo ON mo.source_id = m.id \
         JOIN entities mot ON mot.id = mo.relation_type_id AND mot.name = 'meeting_of' \
         JOIN entity_properties d ON d.entity_id = m.id AND d.key = 'meeting_date' \
         LEFT JOIN entity_properties t ON t.entity_id = m.id AND t.key = 'meeting_time' \
         LEFT JOIN entity_properties du ON du.entity_id = m.id AND du.key = 'duration_minutes' \
         LEFT JOIN entity_properties loc ON loc.entity_id = m.id AND loc.key = 'location' \
         LEFT JOIN entity_properties s ON s.entity_id = m.id AND s.key = 'status' \
         WHERE m.entity_type = 'meeting' AND mo.target_id = ANY($1) \
           AND d.value #>> '{}' BETWEEN $2 AND $3",
    )
    .bind(&ids)
    .bind(from.to_string())
    .bind(last.to_string())
    .fetch_all(&mut *conn)
    .await?;
    for (meeting_id, tor_id, date, time, duration, location, status) in rows {
        let Some((_, name, label)) = tors.iter().find(|t| t.0 == tor_id) else {
            continue;
        };
        let time = time.unwrap_or_else(|| "09:00".into());
        let Ok(date) = date.parse::<Date>() else {
            continue;
        };
        let Some(start) =
            cadence::parse_time(&time).and_then(|t| date.to_datetime(t).to_zoned(tz.clone()).ok())
        else {
            continue;
        };
        let duration = duration
            .and_then(|d| d.as_u64())
            .and_then(|d| u32::try_from(d).ok())
            .unwrap_or(60);
        let start_time = start.strftime("%H:%M").to_string();
        let date = start.date().to_string();
        // The projection at this time, if any, is what this meeting made real.
        let mut cadence_name = "";
        meetings.retain(|(_, m)| {
            let same = m.tor_id == tor_id && m.date == date && m.start_time == start_time;
            if same {
                cadence_name = m.cadence;
            }
            !same
        });
        if status.as_deref() == Some("cancelled") {
            continue;
        }
        let Ok(end) = start.checked_add(jiff::Span::new().minutes(duration)) else {
            continue;
        };
        meetings.push((
            start.timestamp(),
            Meeting {
                tor_id,
                tor_name: name.clone(),
                tor_label: label.clone(),
                date,
                start_time,
                start: rfc3339(&start),
                end: rfc3339(&end),
                duration_minutes: duration,
                location: location.unwrap_or_default(),
                cadence: cadence_name,
                meeting_id: Some(meeting_id),
                status,
            },
        ));
    }
    Ok(())
}

/// Today in `tz`.
pub fn today(tz: &TimeZone) -> Date {
    jiff::Timestamp::now().to_zoned(tz.clone()).date()
}
