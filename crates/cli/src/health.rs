//! The healthcheck flags of `run`/`create` (`--health-cmd`, `--health-interval`,
//! `--health-timeout`, `--health-retries`, `--health-start-period`,
//! `--health-start-interval`, `--no-healthcheck`) as `Config.Healthcheck`.

use serde_json::{Value, json};

use crate::CliError;

/// The healthcheck flags.
#[derive(clap::Args, Default)]
pub struct HealthArgs {
    /// Command to run to check health
    #[arg(long = "health-cmd")]
    cmd: Option<String>,
    /// Time between running the check (ms|s|m|h)
    #[arg(long = "health-interval")]
    interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h)
    #[arg(long = "health-timeout")]
    timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries")]
    retries: Option<u32>,
    /// Start period for the container to initialize before counting retries (ms|s|m|h)
    #[arg(long = "health-start-period")]
    start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h)
    #[arg(long = "health-start-interval")]
    start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    none: bool,
    /// What to do when the container turns unhealthy: none, kill, restart or stop
    #[arg(long = "health-on-failure")]
    on_failure: Option<String>,
}

/// A Go duration (`1m30s`, `500ms`, `2h`) in nanoseconds.
fn duration_ns(flag: &str, s: &str) -> Result<u64, CliError> {
    let secs = berth_types::time::parse_go_duration(s).ok_or_else(|| CliError {
        message: format!("berth: invalid argument {s:?} for \"--{flag}\" flag: time: invalid duration {s:?}\n\nRun 'berth run --help' for more information"),
        code: 125,
    })?;
    Ok((secs * 1e9).round() as u64)
}

/// Writes the flags into a create body's `Healthcheck`.
pub fn apply(a: &HealthArgs, body: &mut Value) -> Result<(), CliError> {
    if let Some(action) = &a.on_failure {
        body["HostConfig"]["HealthOnFailure"] = json!(action);
    }
    if a.none {
        body["Healthcheck"] = json!({"Test": ["NONE"]});
        return Ok(());
    }
    let mut h = serde_json::Map::new();
    if let Some(cmd) = &a.cmd {
        h.insert("Test".into(), json!(["CMD-SHELL", cmd]));
    }
    for (flag, key, v) in [
        ("health-interval", "Interval", &a.interval),
        ("health-timeout", "Timeout", &a.timeout),
        ("health-start-period", "StartPeriod", &a.start_period),
        ("health-start-interval", "StartInterval", &a.start_interval),
    ] {
        if let Some(v) = v {
            h.insert(key.into(), json!(duration_ns(flag, v)?));
        }
    }
    if let Some(r) = a.retries {
        h.insert("Retries".into(), json!(r));
    }
    if !h.is_empty() {
        body["Healthcheck"] = Value::Object(h);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(duration_ns("x", "1m30s").unwrap(), 90_000_000_000);
        assert_eq!(duration_ns("x", "500ms").unwrap(), 500_000_000);
        assert!(duration_ns("x", "5").is_err());
        assert!(duration_ns("x", "5y").is_err());
    }
}
