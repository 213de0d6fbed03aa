//! Cursor pagination: a page ends with an opaque cursor naming the last row's sort key, so pages
//! stay stable while rows are inserted, and each page is an index range scan, not an OFFSET.

use crate::CoreError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 100;

/// A validated page request.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub limit: i64,
    pub after: Option<(DateTime<Utc>, Uuid)>,
}

impl PageRequest {
    pub fn parse(limit: Option<i64>, cursor: Option<&str>) -> Result<Self, CoreError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(CoreError::invalid("limit", format!("must be between 1 and {MAX_LIMIT}")));
        }
        let after = cursor.map(decode).transpose()?;
        Ok(Self { limit, after })
    }

    /// Rows to fetch: one more than the page, to know whether another page follows.
    pub fn fetch_limit(&self) -> i64 {
        self.limit + 1
    }
}

pub fn encode(at: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{id}", at.timestamp_micros()))
}

fn decode(cursor: &str) -> Result<(DateTime<Utc>, Uuid), CoreError> {
    let bad = || CoreError::invalid("cursor", "is not a cursor this API returned");
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (micros, id) = text.split_once('|').ok_or_else(bad)?;
    let at = micros.parse::<i64>().ok().and_then(DateTime::from_timestamp_micros).ok_or_else(bad)?;
    let id = id.parse::<Uuid>().map_err(|_| bad())?;
    Ok((at, id))
}

/// Cuts the extra row off and returns the cursor of the next page, if there is one.
pub fn finish<T>(
    mut rows: Vec<T>,
    page: &PageRequest,
    key: impl Fn(&T) -> (DateTime<Utc>, Uuid),
) -> (Vec<T>, Option<String>) {
    let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
    if rows.len() > limit {
        rows.truncate(limit);
        let next = rows.last().map(|row| {
            let (at, id) = key(row);
            encode(at, id)
        });
        (rows, next)
    } else {
        (rows, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() -> Result<(), CoreError> {
        let at = DateTime::from_timestamp_micros(1_780_000_000_123_456).unwrap_or_default();
        let id = Uuid::now_v7();
        let page = PageRequest::parse(Some(10), Some(&encode(at, id)))?;
        assert_eq!(page.after, Some((at, id)));
        Ok(())
    }

    #[test]
    fn bad_limits_and_cursors_name_the_field() {
        assert!(matches!(PageRequest::parse(Some(101), None), Err(CoreError::Validation(f)) if f[0].field == "limit"));
        assert!(
            matches!(PageRequest::parse(None, Some("garbage!")), Err(CoreError::Validation(f)) if f[0].field == "cursor")
        );
    }
}
