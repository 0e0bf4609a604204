//! Times as Docker writes them: RFC 3339 in UTC with nanoseconds.

use std::time::{SystemTime, UNIX_EPOCH};

/// The current time as RFC 3339 with nanoseconds, in UTC, as runc writes `created`.
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// Seconds since the epoch of a time (negative before 1970).
pub fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// A time as RFC 3339 with nanoseconds, in UTC.
pub fn rfc3339(t: SystemTime) -> String {
    let now = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        now.subsec_nanos()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Parses the RFC 3339 UTC form [`rfc3339`] writes (fraction optional) back to seconds
/// since the epoch.
pub fn parse_rfc3339_seconds(s: &str) -> Option<i64> {
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.trim_end_matches('Z');
    let time = time.split('.').next()?;
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, min, sec) = (t.next()??, t.next()??, t.next()??);
    Some(days_from_civil(y, m, day) * 86_400 + h * 3600 + min * 60 + sec)
}

/// Like [`parse_rfc3339_seconds`], keeping the fraction: nanoseconds since the epoch.
pub fn parse_rfc3339_nanos(s: &str) -> Option<i128> {
    let secs = parse_rfc3339_seconds(s)?;
    let frac = s
        .split_once('.')
        .map(|(_, f)| f.trim_end_matches('Z'))
        .unwrap_or("");
    let digits: String = frac
        .chars()
        .take_while(char::is_ascii_digit)
        .take(9)
        .collect();
    let nanos = if digits.is_empty() {
        0
    } else {
        digits.parse::<i128>().ok()? * 10i128.pow(9 - digits.len() as u32)
    };
    Some(i128::from(secs) * 1_000_000_000 + nanos)
}

/// Docker's `since`/`until` parameters: Unix seconds with an optional fraction
/// (`1700000000.5`), as nanoseconds since the epoch.
pub fn parse_unix_nanos(s: &str) -> Option<i128> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i128 = whole.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let nanos = if digits.is_empty() {
        0
    } else {
        digits.parse::<i128>().ok()? * 10i128.pow(9 - digits.len() as u32)
    };
    Some(secs * 1_000_000_000 + nanos)
}

/// Docker's human durations ("Less than a second", "About a minute", "3 hours"), as
/// `ps` shows them in STATUS and CREATED.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..60 => format!("{s} seconds"),
        60..120 => "About a minute".into(),
        120..3600 => format!("{} minutes", s / 60),
        3600..7200 => "About an hour".into(),
        7200..172_800 => format!("{} hours", s / 3600),
        172_800..1_209_600 => format!("{} days", s / 86_400),
        1_209_600..7_776_000 => format!("{} weeks", s / 604_800),
        7_776_000..63_072_000 => format!("{} months", s / 2_592_000),
        _ => format!("{} years", s / 31_536_000),
    }
}

/// A point in time as docker's `--since`/`--until`/`until=` take it: Unix seconds (with
/// a fraction), RFC 3339, or a Go duration before `now` (`10m`, `1h30m`, `45s`).
/// Returns Unix seconds.
pub fn parse_point_in_time(v: &str, now: f64) -> Option<f64> {
    if let Ok(n) = v.parse::<f64>() {
        return Some(n);
    }
    if let Some(t) = parse_rfc3339_nanos(v) {
        return Some(t as f64 / 1e9);
    }
    parse_go_duration(v).map(|secs| now - secs)
}

/// A Go duration (`1h30m`, `45s`, `500ms`, `2us`, `10ns`) in seconds; `None` when it is
/// not one (a bare number has no unit).
pub fn parse_go_duration(v: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut num = String::new();
    let mut chars = v.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch.is_ascii_digit() || ch == '.' {
            num.push(ch);
            continue;
        }
        let mut unit = ch.to_string();
        while let Some(&c) = chars.peek() {
            if c.is_ascii_digit() || c == '.' {
                break;
            }
            unit.push(c);
            chars.next();
        }
        let n: f64 = num.parse().ok()?;
        num.clear();
        total += n * match unit.as_str() {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
    }
    (num.is_empty() && !v.is_empty()).then_some(total)
}

/// Proleptic Gregorian date to days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_in_time_parse_like_dockers() {
        assert_eq!(parse_point_in_time("100.5", 0.0), Some(100.5));
        assert_eq!(parse_point_in_time("1h30m", 10_000.0), Some(4_600.0));
        assert_eq!(parse_go_duration("1m30s"), Some(90.0));
        assert_eq!(parse_go_duration("250ms"), Some(0.25));
        assert_eq!(parse_go_duration("5"), None);
        assert_eq!(parse_go_duration("5y"), None);
        assert_eq!(parse_point_in_time("1970-01-01T00:01:00Z", 0.0), Some(60.0));
        assert_eq!(parse_point_in_time("10x", 0.0), None);
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(3 * 86_400), "3 days");
    }

    #[test]
    fn nanosecond_times_parse() {
        assert_eq!(
            parse_rfc3339_nanos("1970-01-01T00:00:01.5Z"),
            Some(1_500_000_000)
        );
        assert_eq!(parse_unix_nanos("2.000000001"), Some(2_000_000_001));
        assert_eq!(parse_unix_nanos("7"), Some(7_000_000_000));
        assert_eq!(parse_unix_nanos("x"), None);
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_513), (2026, 3, 1));
        for days in [0, 19_723, 20_513, -1, 40_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m as i64, d as i64), days);
        }
    }

    #[test]
    fn round_trip() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_764_597_600);
        let s = rfc3339(t);
        assert_eq!(s, "2025-12-01T14:00:00.000000000Z");
        assert_eq!(parse_rfc3339_seconds(&s), Some(1_764_597_600));
        assert_eq!(unix_seconds(t), 1_764_597_600);
    }
}
