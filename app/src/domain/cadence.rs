//! Meeting cadence of a ToR and the meetings it projects.
//!
//! Stored as ToR properties under upstream ahlt's names, as strings (so an export reads back
//! into upstream unchanged): `meeting_cadence` (`weekly`, `biweekly`, `monthly`, `daily`,
//! `working_days`; empty or `ad-hoc` for none), `cadence_day` (a weekday; for `monthly`
//! also a day of the month, `1`..`31`), `cadence_week` (`monthly` on a weekday only: `1`..`4`
//! or `last`; default `1`, upstream's "first <weekday> of the month"), `cadence_time`
//! (`HH:MM`, default 09:00), `cadence_duration_minutes` (default 60) and `default_location`.
//!
//! Meetings are wall-clock times in the environment's time zone: a 09:00 meeting stays at
//! 09:00 across a daylight-saving change (its UTC instant moves). A time that does not exist
//! on a day (skipped by a change) moves forward by the gap; one that occurs twice takes the
//! first. A day-of-month beyond a month's end falls on its last day (31 → 30 April, 28/29
//! February). Biweekly meetings fall in the even weeks counted from Monday 2026-01-05, as
//! upstream counts them.

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Span, Zoned};
use serde::Serialize;
use serde_json::{Value, json};

use crate::store::Properties;

/// Property keys of a cadence.
pub mod key {
    pub const CADENCE: &str = "meeting_cadence";
    pub const DAY: &str = "cadence_day";
    pub const WEEK: &str = "cadence_week";
    pub const TIME: &str = "cadence_time";
    pub const DURATION: &str = "cadence_duration_minutes";
    pub const LOCATION: &str = "default_location";
    pub const ALL: [&str; 6] = [CADENCE, DAY, WEEK, TIME, DURATION, LOCATION];
}

/// Which days a ToR meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recurrence {
    Daily,
    WorkingDays,
    Weekly(Weekday),
    /// Every other week, in the even weeks from the anchor Monday.
    Biweekly(Weekday),
    /// The `week`-th (1..=4) or, with `None`, the last `weekday` of each month.
    MonthlyWeekday {
        week: Option<u8>,
        weekday: Weekday,
    },
    /// This day of each month, or the month's last day when it is shorter.
    MonthlyDay(u8),
}

/// A ToR's cadence, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cadence {
    pub recurrence: Recurrence,
    pub time: Time,
    pub duration_minutes: u32,
    pub location: String,
}

/// A cadence as the forms and the API give it: upstream's property values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CadenceFields {
    pub meeting_cadence: String,
    #[serde(default)]
    pub cadence_day: String,
    #[serde(default)]
    pub cadence_week: String,
    #[serde(default)]
    pub cadence_time: String,
    #[serde(default)]
    pub cadence_duration_minutes: Option<u32>,
    #[serde(default)]
    pub default_location: String,
}

/// The cadence shown with a ToR (map, API): the stored fields and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CadenceInfo {
    pub meeting_cadence: &'static str,
    pub cadence_day: String,
    pub cadence_week: String,
    /// `HH:MM`.
    pub cadence_time: String,
    pub cadence_duration_minutes: u32,
    pub default_location: String,
    /// E.g. "Every other Monday at 09:00 for 120 minutes".
    pub summary: String,
}

const DEFAULT_TIME: Time = Time::constant(9, 0, 0, 0);
const DEFAULT_DURATION: u32 = 60;
const MAX_DURATION: u32 = 24 * 60;

fn weekday_of(name: &str) -> Option<Weekday> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "monday" | "mon" => Weekday::Monday,
        "tuesday" | "tue" => Weekday::Tuesday,
        "wednesday" | "wed" => Weekday::Wednesday,
        "thursday" | "thu" => Weekday::Thursday,
        "friday" | "fri" => Weekday::Friday,
        "saturday" | "sat" => Weekday::Saturday,
        "sunday" | "sun" => Weekday::Sunday,
        _ => return None,
    })
}

pub fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Monday => "monday",
        Weekday::Tuesday => "tuesday",
        Weekday::Wednesday => "wednesday",
        Weekday::Thursday => "thursday",
        Weekday::Friday => "friday",
        Weekday::Saturday => "saturday",
        Weekday::Sunday => "sunday",
    }
}

fn capitalised(day: Weekday) -> String {
    let name = weekday_name(day);
    name[..1].to_ascii_uppercase() + &name[1..]
}

pub(crate) fn parse_time(text: &str) -> Option<Time> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m): (i8, i8) = (h.parse().ok()?, m.parse().ok()?);
    Time::new(h, m, 0, 0).ok()
}

/// A stored value as text: strings as they are, numbers printed (upstream writes strings,
/// hand-made data may hold numbers).
fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

impl Cadence {
    /// Validates form or API fields: `Ok(None)` for no cadence, `Err` with a message a
    /// person can act on.
    pub fn from_fields(fields: &CadenceFields) -> Result<Option<Cadence>, String> {
        let kind = fields.meeting_cadence.trim().to_ascii_lowercase();
        let day = fields.cadence_day.trim();
        let weekday = || {
            weekday_of(day).ok_or_else(|| {
                format!("a {kind} cadence needs a weekday (monday … sunday), not {day:?}")
            })
        };
        let recurrence = match kind.as_str() {
            "" | "ad-hoc" | "adhoc" | "none" => return Ok(None),
            "daily" => Recurrence::Daily,
            "working_days" => Recurrence::WorkingDays,
            "weekly" => Recurrence::Weekly(weekday()?),
            "biweekly" => Recurrence::Biweekly(weekday()?),
            "monthly" => match day.parse::<u8>() {
                Ok(n @ 1..=31) => Recurrence::MonthlyDay(n),
                Ok(_) => return Err("a day of the month is 1 … 31".into()),
                Err(_) => {
                    let week = match fields.cadence_week.trim().to_ascii_lowercase().as_str() {
                        "" | "1" | "first" => Some(1),
                        "2" | "second" => Some(2),
                        "3" | "third" => Some(3),
                        "4" | "fourth" => Some(4),
                        "last" => None,
                        other => {
                            return Err(format!(
                                "the week of the month is 1 … 4 or last, not {other:?}"
                            ));
                        }
                    };
                    Recurrence::MonthlyWeekday {
                        week,
                        weekday: weekday_of(day).ok_or_else(|| {
                            format!(
                                "a monthly cadence needs a weekday or a day of the month (1 … 31), not {day:?}"
                            )
                        })?,
                    }
                }
            },
            other => {
                return Err(format!(
                    "unknown cadence {other:?}; use weekly, biweekly, monthly, daily, working_days or none"
                ));
            }
        };
        let time = match fields.cadence_time.trim() {
            "" => DEFAULT_TIME,
            t => parse_time(t).ok_or_else(|| format!("the time is HH:MM, not {t:?}"))?,
        };
        let duration_minutes = fields.cadence_duration_minutes.unwrap_or(DEFAULT_DURATION);
        if !(1..=MAX_DURATION).contains(&duration_minutes) {
            return Err(format!(
                "a meeting lasts 1 … {MAX_DURATION} minutes, not {duration_minutes}"
            ));
        }
        let location = fields.default_location.trim().to_owned();
        if location.chars().count() > 200 {
            return Err("the location must be at most 200 characters".into());
        }
        Ok(Some(Cadence {
            recurrence,
            time,
            duration_minutes,
            location,
        }))
    }

    /// The cadence stored in a ToR's properties; `None` when there is none or it cannot be
    /// understood (such a ToR projects no meetings).
    pub fn from_properties(get: impl Fn(&str) -> Option<Value>) -> Option<Cadence> {
        let duration = text(get(key::DURATION).as_ref());
        let fields = CadenceFields {
            meeting_cadence: text(get(key::CADENCE).as_ref()),
            cadence_day: text(get(key::DAY).as_ref()),
            cadence_week: text(get(key::WEEK).as_ref()),
            cadence_time: text(get(key::TIME).as_ref()),
            cadence_duration_minutes: if duration.is_empty() {
                None
            } else {
                Some(duration.parse().ok()?)
            },
            default_location: text(get(key::LOCATION).as_ref()),
        };
        Cadence::from_fields(&fields).ok().flatten()
    }

    /// The stored form: every cadence key, as strings (empty ones removed).
    pub fn to_properties(cadence: Option<&Cadence>) -> Vec<(&'static str, Option<Value>)> {
        let Some(c) = cadence else {
            return key::ALL.iter().map(|k| (*k, None)).collect();
        };
        let info = c.info();
        let opt = |s: String| (!s.is_empty()).then(|| json!(s));
        vec![
            (key::CADENCE, Some(json!(info.meeting_cadence))),
            (key::DAY, opt(info.cadence_day)),
            (key::WEEK, opt(info.cadence_week)),
            (key::TIME, Some(json!(info.cadence_time))),
            (key::DURATION, Some(json!(c.duration_minutes.to_string()))),
            (key::LOCATION, opt(info.default_location)),
        ]
    }

    pub fn info(&self) -> CadenceInfo {
        let (kind, day, week, when) = match self.recurrence {
            Recurrence::Daily => ("daily", String::new(), String::new(), "Every day".into()),
            Recurrence::WorkingDays => (
                "working_days",
                String::new(),
                String::new(),
                "Every working day (Monday to Friday)".into(),
            ),
            Recurrence::Weekly(d) => (
                "weekly",
                weekday_name(d).into(),
                String::new(),
                format!("Every {}", capitalised(d)),
            ),
            Recurrence::Biweekly(d) => (
                "biweekly",
                weekday_name(d).into(),
                String::new(),
                format!("Every other {}", capitalised(d)),
            ),
            Recurrence::MonthlyWeekday { week, weekday } => {
                let (stored, ordinal) = match week {
                    Some(1) => ("1", "first"),
                    Some(2) => ("2", "second"),
                    Some(3) => ("3", "third"),
                    Some(_) => ("4", "fourth"),
                    None => ("last", "last"),
                };
                (
                    "monthly",
                    weekday_name(weekday).into(),
                    stored.into(),
                    format!("The {ordinal} {} of every month", capitalised(weekday)),
                )
            }
            Recurrence::MonthlyDay(n) => (
                "monthly",
                n.to_string(),
                String::new(),
                format!("Day {n} of every month (or its last day)"),
            ),
        };
        let time = format!("{:02}:{:02}", self.time.hour(), self.time.minute());
        let mut summary = format!("{when} at {time} for {} minutes", self.duration_minutes);
        if !self.location.is_empty() {
            summary.push_str(&format!(", {}", self.location));
        }
        CadenceInfo {
            meeting_cadence: kind,
            cadence_day: day,
            cadence_week: week,
            cadence_time: time,
            cadence_duration_minutes: self.duration_minutes,
            default_location: self.location.clone(),
            summary,
        }
    }

    /// Does the ToR meet on `date`?
    pub fn meets_on(&self, date: Date) -> bool {
        match self.recurrence {
            Recurrence::Daily => true,
            Recurrence::WorkingDays => {
                !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
            }
            Recurrence::Weekly(d) => date.weekday() == d,
            Recurrence::Biweekly(d) => date.weekday() == d && is_even_week(date),
            Recurrence::MonthlyWeekday { week, weekday } => {
                date.weekday() == weekday
                    && match week {
                        Some(n) => (date.day() - 1) / 7 + 1 == n as i8,
                        None => date.day() + 7 > date.days_in_month(),
                    }
            }
            Recurrence::MonthlyDay(n) => date.day() == (n as i8).min(date.days_in_month()),
        }
    }

    /// The meetings starting on the `days` dates from `from` on, in `tz`.
    pub fn meetings(&self, from: Date, days: u16, tz: &TimeZone) -> Vec<(Zoned, Zoned)> {
        let mut out = Vec::new();
        let mut date = from;
        for _ in 0..days {
            if self.meets_on(date)
                && let Ok(start) = date.to_datetime(self.time).to_zoned(tz.clone())
                && let Ok(end) = start.checked_add(Span::new().minutes(self.duration_minutes))
            {
                out.push((start, end));
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
        out
    }
}

/// Monday 2026-01-05: biweekly meetings fall in the even weeks counted from it.
const BIWEEKLY_ANCHOR: Date = Date::constant(2026, 1, 5);

fn is_even_week(date: Date) -> bool {
    let days = date
        .since(BIWEEKLY_ANCHOR)
        .map(|s| i64::from(s.get_days()))
        .unwrap_or(0);
    days.div_euclid(7) % 2 == 0
}

/// A cadence's fields read from a property map.
pub fn from_map(properties: &Properties) -> Option<Cadence> {
    Cadence::from_properties(|k| properties.get(k).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cadence(kind: &str, day: &str, week: &str) -> Cadence {
        Cadence::from_fields(&CadenceFields {
            meeting_cadence: kind.into(),
            cadence_day: day.into(),
            cadence_week: week.into(),
            ..Default::default()
        })
        .unwrap()
        .unwrap()
    }

    fn dates(c: &Cadence, from: Date, days: u16) -> Vec<String> {
        c.meetings(from, days, &TimeZone::UTC)
            .into_iter()
            .map(|(s, _)| s.date().to_string())
            .collect()
    }

    #[test]
    fn upstream_values_parse_and_bad_ones_are_named() {
        let c = Cadence::from_properties(|k| match k {
            "meeting_cadence" => Some(json!("monthly")),
            "cadence_day" => Some(json!("wednesday")),
            "cadence_time" => Some(json!("10:00")),
            "cadence_duration_minutes" => Some(json!("90")),
            "default_location" => Some(json!("Conference Room A")),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            c.info().summary,
            "The first Wednesday of every month at 10:00 for 90 minutes, Conference Room A"
        );
        assert_eq!(Cadence::from_properties(|_| None), None);
        let bad = |kind: &str, day: &str| {
            Cadence::from_fields(&CadenceFields {
                meeting_cadence: kind.into(),
                cadence_day: day.into(),
                ..Default::default()
            })
            .unwrap_err()
        };
        assert!(bad("weekly", "").contains("weekday"));
        assert!(bad("monthly", "32").contains("1 … 31"));
        assert!(bad("fortnightly", "monday").contains("unknown cadence"));
    }

    #[test]
    fn properties_round_trip() {
        for c in [
            cadence("weekly", "friday", ""),
            cadence("biweekly", "monday", ""),
            cadence("monthly", "tuesday", "last"),
            cadence("monthly", "31", ""),
            cadence("working_days", "", ""),
        ] {
            let props: Properties = Cadence::to_properties(Some(&c))
                .into_iter()
                .filter_map(|(k, v)| Some((k.to_string(), v?)))
                .collect();
            assert_eq!(from_map(&props), Some(c));
        }
    }

    #[test]
    fn a_day_of_the_month_falls_on_short_months_last_day() {
        let c = cadence("monthly", "31", "");
        assert_eq!(
            dates(&c, Date::constant(2026, 1, 1), 120),
            ["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30"]
        );
        let leap = dates(&c, Date::constant(2028, 2, 1), 29);
        assert_eq!(leap, ["2028-02-29"]);
    }

    #[test]
    fn monthly_weekdays_cross_month_ends() {
        let last_friday = cadence("monthly", "friday", "last");
        assert_eq!(
            dates(&last_friday, Date::constant(2026, 1, 20), 40),
            ["2026-01-30", "2026-02-27"]
        );
        let first_monday = cadence("monthly", "monday", "");
        assert_eq!(
            dates(&first_monday, Date::constant(2026, 1, 27), 40),
            ["2026-02-02", "2026-03-02"]
        );
    }

    #[test]
    fn biweekly_counts_weeks_from_the_anchor_in_both_directions() {
        let c = cadence("biweekly", "monday", "");
        assert_eq!(
            dates(&c, Date::constant(2025, 12, 20), 30),
            ["2025-12-22", "2026-01-05"]
        );
    }
}
