//! Keyset pagination (`?limit=&after=`) and the positive ids used in paths, queries and cursors.
//!
//! A paginated list answers `{"items": [...], "next_after": <id|null>}`; the next page is
//! requested with `after=<next_after>`. Cursors are ids, so pages never repeat or skip an item
//! even while rows are added.

use serde::{Deserialize, Deserializer, Serialize};

use crate::http::error::{AppError, AppResult};
use crate::store::PageRequest;

/// A database id: a positive integer. Zero, negatives, overflow and non-numbers are rejected by
/// the extractor, so `/entities/-1` is a 400 like `/entities/abc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Id(pub i64);

impl Id {
    /// Parses the canonical decimal form only: digits, no sign, no leading zero, no spaces,
    /// so `/tokens/01`, `/tokens/+1` and `/tokens/%201` are refused like `/tokens/x`.
    pub fn parse(raw: &str) -> Option<Id> {
        let canonical =
            !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) && !raw.starts_with('0');
        canonical.then(|| raw.parse::<i64>().ok()).flatten().map(Id)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IdVisitor)
    }
}

struct IdVisitor;

impl serde::de::Visitor<'_> for IdVisitor {
    type Value = Id;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an id (a positive integer)")
    }

    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Id, E> {
        if n > 0 {
            Ok(Id(n))
        } else {
            Err(E::custom(format!(
                "{n} is not a valid id (ids are positive integers)"
            )))
        }
    }

    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Id, E> {
        i64::try_from(n)
            .map_err(|_| E::custom(format!("{n} is not a valid id (too large)")))
            .and_then(|n| self.visit_i64(n))
    }

    /// Paths and query strings arrive as text.
    fn visit_str<E: serde::de::Error>(self, raw: &str) -> Result<Id, E> {
        Id::parse(raw).ok_or_else(|| {
            E::custom(format!(
                "{:?} is not a valid id (ids are positive integers without sign or leading zeros)",
                crate::text::clip(raw)
            ))
        })
    }
}

/// `?limit=&after=` for endpoints that take nothing else.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    pub limit: Option<i64>,
    pub after: Option<Id>,
}

impl PageParams {
    pub fn request(&self) -> AppResult<PageRequest> {
        page_request(self.limit, self.after)
    }
}

/// Checks a requested page: `limit` in `1..=500` (default 50), `after` a previous `next_after`.
pub fn page_request(limit: Option<i64>, after: Option<Id>) -> AppResult<PageRequest> {
    let limit = limit.unwrap_or(PageRequest::DEFAULT_LIMIT);
    if !(1..=PageRequest::MAX_LIMIT).contains(&limit) {
        return Err(AppError::BadRequest(format!(
            "limit must be between 1 and {}",
            PageRequest::MAX_LIMIT
        )));
    }
    Ok(PageRequest {
        after: after.map(|a| a.0),
        limit,
    })
}

/// An empty query value (`?type=`) means "no filter".
pub fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_outside_the_allowed_range_are_refused() {
        for bad in [0, -1, PageRequest::MAX_LIMIT + 1, i64::MAX] {
            assert!(page_request(Some(bad), None).is_err(), "{bad}");
        }
        assert_eq!(page_request(None, None).unwrap(), PageRequest::default());
        assert_eq!(
            page_request(Some(500), Some(Id(7))).unwrap(),
            PageRequest {
                after: Some(7),
                limit: 500
            }
        );
    }

    #[test]
    fn ids_must_be_positive() {
        assert_eq!(serde_json::from_str::<Id>("12").unwrap(), Id(12));
        for bad in ["0", "-3", "1.5", "\"x\"", "99999999999999999999"] {
            assert!(serde_json::from_str::<Id>(bad).is_err(), "{bad}");
        }
    }
}
