//! `events` (`system events`): the engine's events as they happen, or between
//! `--since` and `--until`, printed as the docker CLI prints them.

use std::io::Write;

use serde_json::{Value, json};

use crate::client::{Client, enc};
use crate::{CmdResult, format};

/// `events` flags.
#[derive(clap::Args)]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long = "format")]
    format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long = "since")]
    since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long = "until")]
    until: Option<String>,
}

/// `events`: streams until `--until` passes (or forever), one line per event.
pub fn events(c: &Client, a: EventsArgs) -> CmdResult {
    let mut query = Vec::new();
    if let Some(s) = &a.since {
        query.push(format!("since={}", enc(&crate::containers::log_time(s)?)));
    }
    if let Some(u) = &a.until {
        query.push(format!("until={}", enc(&crate::containers::log_time(u)?)));
    }
    let filters = crate::images::filters_json(&a.filter)?;
    if !filters.is_empty() {
        query.push(format!("filters={}", enc(&filters)));
    }
    let path = if query.is_empty() {
        "/events".to_string()
    } else {
        format!("/events?{}", query.join("&"))
    };
    let template = match a.format.as_deref() {
        None | Some("") => None,
        Some(f) => Some(format::template(f).map_err(crate::CliError::new)?),
    };
    let mut resp = c.send("GET", &path, None, &[])?.error_for_status()?;
    let mut out = std::io::stdout().lock();
    let mut failed = None;
    crate::registry::each_message(&mut resp, |m| {
        let line = match &template {
            // `{{json .}}` is the message as the API sent it.
            Some(_) if a.format.as_deref().map(str::trim) == Some("{{json .}}") => m.to_string(),
            Some(t) => match gotmpl::to_value(&go_fields(&m))
                .map_err(|e| e.to_string())
                .and_then(|v| t.execute_to_string(&v).map_err(|e| e.to_string()))
            {
                Ok(s) => s,
                Err(e) => {
                    failed.get_or_insert(e);
                    return;
                }
            },
            None => pretty(&m),
        };
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    })?;
    match failed {
        Some(e) => Err(crate::CliError::new(format!("template: {e}"))),
        None => Ok(0),
    }
}

/// When an event message happened (`timeNano`, or `time` from older daemons), as
/// RFC 3339 with nanoseconds.
pub fn event_time(m: &Value) -> String {
    let nanos = m["timeNano"]
        .as_i64()
        .filter(|n| *n != 0)
        .unwrap_or_else(|| m["time"].as_i64().unwrap_or(0) * 1_000_000_000);
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(nanos.max(0) as u64);
    berth_types::time::rfc3339(when)
}

/// The docker CLI's line: time, type, action, actor, then `(k=v, ...)` sorted.
fn pretty(m: &Value) -> String {
    let mut line = format!(
        "{} {} {} {}",
        event_time(m),
        m["Type"].as_str().unwrap_or(""),
        m["Action"].as_str().unwrap_or(""),
        m["Actor"]["ID"].as_str().unwrap_or("")
    );
    if let Some(attrs) = m["Actor"]["Attributes"]
        .as_object()
        .filter(|a| !a.is_empty())
    {
        let mut pairs: Vec<String> = attrs
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect();
        pairs.sort();
        line.push_str(&format!(" ({})", pairs.join(", ")));
    }
    line
}

/// The message under the Go field names templates use (`.Status`, `.ID`, `.From`,
/// `.Type`, `.Action`, `.Actor.ID`, `.Actor.Attributes`, `.Scope`, `.Time`, `.TimeNano`).
fn go_fields(m: &Value) -> Value {
    json!({
        "Status": m["status"], "ID": m["id"], "From": m["from"],
        "Type": m["Type"], "Action": m["Action"], "Actor": m["Actor"],
        "Scope": m["scope"], "Time": m["time"], "TimeNano": m["timeNano"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_like_the_docker_cli() {
        let m = json!({"Type": "container", "Action": "start", "timeNano": 1_700_000_000_000_000_123i64,
            "Actor": {"ID": "abc", "Attributes": {"name": "web", "image": "busybox"}}});
        assert_eq!(
            pretty(&m),
            "2023-11-14T22:13:20.000000123Z container start abc (image=busybox, name=web)"
        );
    }
}
