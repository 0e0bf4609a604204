//! `GET /events`: the journal's events between `since` and `until`, then live ones until
//! `until` passes or the client goes, one JSON object per line, as dockerd streams them.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use berth_events::{EventFilter, Subscription};

use crate::query::{param, query_pairs};
use crate::{ApiError, Backends};

/// `GET /events?since=&until=&filters=`.
pub async fn events(
    State(b): State<Backends>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(q.as_deref());
    let now = now_nanos();
    let time = |key: &str| -> Result<Option<i64>, ApiError> {
        match param(&pairs, key).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => parse_timestamp(v, now).map(Some).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "invalid value for {key}: {v:?}: use Unix seconds (with a fraction) or RFC 3339"
                ))
            }),
        }
    };
    let (since, until) = (time("since")?, time("until")?);
    if let (Some(s), Some(u)) = (since, until)
        && u < s
    {
        return Err(ApiError::bad_request(format!(
            "`since` time ({}) cannot be after `until` time ({})",
            param(&pairs, "since").unwrap_or(""),
            param(&pairs, "until").unwrap_or("")
        )));
    }
    let filter = EventFilter::parse(param(&pairs, "filters").unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let sub = b.events.subscribe(since, until);
    let stream = futures_util::stream::unfold(Stream { sub, filter, until }, |mut s| async move {
        let line = s.next_line().await?;
        Some((Ok::<_, Infallible>(line), s))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

struct Stream {
    sub: Subscription,
    filter: EventFilter,
    until: Option<i64>,
}

impl Stream {
    /// The next matching event as a JSON line; `None` when the stream is over.
    async fn next_line(&mut self) -> Option<Bytes> {
        loop {
            let event = match self.sub.next_past() {
                Some(e) => e,
                None => self.next_live().await?,
            };
            if self.until.is_some_and(|u| event.time_nano > u) {
                return None;
            }
            if self.filter.matches(&event) {
                let mut line = serde_json::to_vec(&*event).ok()?;
                line.push(b'\n');
                return Some(Bytes::from(line));
            }
        }
    }

    async fn next_live(&mut self) -> Option<std::sync::Arc<berth_events::Event>> {
        let Some(until) = self.until else {
            return self.sub.next().await;
        };
        let left = until - now_nanos();
        if left <= 0 {
            return None;
        }
        let left = std::time::Duration::from_nanos(left as u64);
        tokio::time::timeout(left, self.sub.next()).await.ok()?
    }
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// `since`/`until` as the docker CLI sends them (`seconds.nanoseconds`), or any form
/// `--since` takes (RFC 3339, a Go duration before now); Unix nanoseconds.
fn parse_timestamp(v: &str, now: i64) -> Option<i64> {
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    if !secs.is_empty()
        && secs.bytes().all(|b| b.is_ascii_digit() || b == b'-')
        && frac.bytes().all(|b| b.is_ascii_digit())
    {
        let s: i64 = secs.parse().ok()?;
        let mut digits = frac.to_string();
        digits.truncate(9);
        while digits.len() < 9 {
            digits.push('0');
        }
        let n: i64 = digits.parse().ok()?;
        return s.checked_mul(1_000_000_000)?.checked_add(n);
    }
    berth_types::time::parse_point_in_time(v, now as f64 / 1e9).map(|t| (t * 1e9) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_keep_their_nanoseconds() {
        assert_eq!(
            parse_timestamp("1700000000.000000123", 0),
            Some(1_700_000_000_000_000_123)
        );
        assert_eq!(
            parse_timestamp("1700000000.5", 0),
            Some(1_700_000_000_500_000_000)
        );
        assert_eq!(
            parse_timestamp("1700000000", 0),
            Some(1_700_000_000_000_000_000)
        );
        assert_eq!(parse_timestamp("10s", 20_000_000_000), Some(10_000_000_000));
        assert_eq!(parse_timestamp("soon", 0), None);
    }
}
