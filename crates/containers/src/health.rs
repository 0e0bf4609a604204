//! Healthchecks: the image's `HEALTHCHECK` or `--health-*` run inside the container on
//! their interval (through `berth-runtime exec`, a fork and exec of its own, never a fork
//! of berthd), with Docker's states (`starting`, `healthy`, `unhealthy`), failing streak,
//! the last five results and the start period; `ps` shows them.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{ContainerRecord, ContainerService};

/// `.State.Health`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Health {
    /// starting, healthy or unhealthy.
    #[serde(rename = "Status")]
    pub status: String,
    /// Failures in a row.
    #[serde(rename = "FailingStreak")]
    pub failing_streak: u32,
    /// The last five results.
    #[serde(rename = "Log")]
    pub log: Vec<Probe>,
}

/// One check's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Probe {
    /// RFC 3339.
    #[serde(rename = "Start")]
    pub start: String,
    /// RFC 3339.
    #[serde(rename = "End")]
    pub end: String,
    /// 0 healthy, else failing (-1 when it could not run or timed out).
    #[serde(rename = "ExitCode")]
    pub exit_code: i32,
    /// The first 4 KiB of its output.
    #[serde(rename = "Output")]
    pub output: String,
}

/// A container's check, with Docker's defaults.
struct Check {
    argv: Vec<String>,
    interval: Duration,
    timeout: Duration,
    start_period: Duration,
    start_interval: Duration,
    retries: u32,
}

fn nanos(v: &Value, default: Duration) -> Duration {
    match v.as_u64() {
        Some(n) if n > 0 => Duration::from_nanos(n),
        _ => default,
    }
}

/// The check a container runs, if any (`NONE` and no test mean none).
fn check_of(config: &Value) -> Option<Check> {
    let h = &config["Healthcheck"];
    let test: Vec<String> = h["Test"]
        .as_array()?
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    let argv = match test.first().map(String::as_str) {
        Some("CMD") => test[1..].to_vec(),
        Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), test[1..].join(" ")],
        _ => return None,
    };
    if argv.is_empty() {
        return None;
    }
    Some(Check {
        argv,
        interval: nanos(&h["Interval"], Duration::from_secs(30)),
        timeout: nanos(&h["Timeout"], Duration::from_secs(30)),
        start_period: nanos(&h["StartPeriod"], Duration::ZERO),
        start_interval: nanos(&h["StartInterval"], Duration::from_secs(5)),
        retries: h["Retries"].as_u64().filter(|r| *r > 0).unwrap_or(3) as u32,
    })
}

/// Beyond Docker: what happens when a container turns unhealthy (`--health-on-failure`,
/// stored as `HostConfig.HealthOnFailure`, or the label `berth.health-on-failure` that
/// any Docker client can set).
fn on_failure(rec: &ContainerRecord) -> String {
    rec.host_config["HealthOnFailure"]
        .as_str()
        .or_else(|| rec.config["Labels"]["berth.health-on-failure"].as_str())
        .unwrap_or("none")
        .to_string()
}

/// Refuses an unknown `--health-on-failure`.
pub(crate) fn validate(config: &Value, host: &Value) -> crate::Result<()> {
    let v = host["HealthOnFailure"]
        .as_str()
        .or_else(|| config["Labels"]["berth.health-on-failure"].as_str());
    match v {
        None | Some("" | "none" | "kill" | "restart" | "stop") => Ok(()),
        Some(other) => Err(crate::Error::InvalidInput(format!(
            "invalid --health-on-failure {other:?}: use none, kill, restart or stop"
        ))),
    }
}

/// What `ps` adds to "Up ..."
pub(crate) fn status_suffix(rec: &ContainerRecord) -> &'static str {
    match rec.health.as_ref().map(|h| h.status.as_str()) {
        Some("healthy") => " (healthy)",
        Some("unhealthy") => " (unhealthy)",
        Some("starting") => " (health: starting)",
        _ => "",
    }
}

impl ContainerService {
    /// Starts the check loop of a container that just started (or that runs when berthd
    /// starts), if it has a check.
    pub(crate) fn watch_health(&self, id: &str) {
        let Ok(rec) = self.get(id) else { return };
        let Some(check) = check_of(&rec.config) else {
            return;
        };
        let started_at = rec.state.started_at.clone();
        if rec.health.is_none() {
            let _ = self.modify(id, |r| {
                r.health = Some(Health {
                    status: "starting".into(),
                    ..Default::default()
                })
            });
        }
        let svc = self.clone();
        let id = id.to_string();
        std::thread::spawn(move || svc.health_loop(&id, &started_at, &check));
    }

    /// Runs the check until the run it was started for ends.
    fn health_loop(&self, id: &str, started_at: &str, check: &Check) {
        let began = Instant::now();
        loop {
            let in_start = began.elapsed() < check.start_period;
            let healthy = self
                .get(id)
                .ok()
                .and_then(|r| r.health)
                .is_some_and(|h| h.status == "healthy");
            let wait = if in_start && !healthy {
                check.start_interval.min(check.interval)
            } else {
                check.interval
            };
            std::thread::sleep(wait);
            let Ok(rec) = self.get(id) else { return };
            if rec.state.started_at != started_at
                || !matches!(rec.state.status.as_str(), "running" | "paused")
            {
                return;
            }
            if rec.state.status == "paused" {
                // No check in a frozen container; the loop goes on after unpause.
                continue;
            }
            let probe = self.probe(id, check);
            let in_start = began.elapsed() < check.start_period;
            let mut turned_unhealthy = false;
            let mut changed_to = None;
            let _ = self.modify(id, |r| {
                if r.state.started_at != started_at {
                    return;
                }
                let h = r.health.get_or_insert_with(Health::default);
                let was_unhealthy = h.status == "unhealthy";
                let before = h.status.clone();
                if probe.exit_code == 0 {
                    h.status = "healthy".into();
                    h.failing_streak = 0;
                } else if !in_start || h.status == "healthy" {
                    // Failures in the start period do not count, as in Docker.
                    h.failing_streak += 1;
                    if h.failing_streak >= check.retries {
                        h.status = "unhealthy".into();
                    }
                }
                h.log.push(probe);
                let extra = h.log.len().saturating_sub(5);
                h.log.drain(..extra);
                turned_unhealthy = !was_unhealthy && h.status == "unhealthy";
                if h.status != before {
                    changed_to = Some(h.status.clone());
                }
            });
            if let Some(status) = changed_to {
                self.emit(&rec, &format!("health_status: {status}"));
            }
            if turned_unhealthy {
                self.act_on_failure(id, &rec);
            }
        }
    }

    /// Carries out `--health-on-failure` once a container has turned unhealthy.
    fn act_on_failure(&self, id: &str, rec: &ContainerRecord) {
        let action = on_failure(rec);
        let done = match action.as_str() {
            "kill" => self.kill(id, libc::SIGKILL),
            "stop" => self.stop(id, None).map(drop),
            "restart" => self.restart(id, None, &mut |_| {}),
            _ => return,
        };
        match done {
            Ok(()) => tracing::info!(container = id, action, "unhealthy: health-on-failure"),
            Err(e) => tracing::warn!(container = id, action, "unhealthy: health-on-failure: {e}"),
        }
    }

    /// One run of the check, killed after its timeout.
    fn probe(&self, id: &str, check: &Check) -> Probe {
        let start = berth_types::time::now_rfc3339();
        let runtime = self.shim.with_file_name("berth-runtime");
        let child = Command::new(&runtime)
            .arg("--root")
            .arg(self.runtime_root())
            .args(["exec", id])
            .args(&check.argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                return Probe {
                    start,
                    end: berth_types::time::now_rfc3339(),
                    exit_code: -1,
                    output: format!("run {}: {e}", runtime.display()),
                };
            }
        };
        let deadline = Instant::now() + check.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        let mut output = String::new();
        if let Some(mut o) = child.stdout.take() {
            let _ = o.read_to_string(&mut output);
        }
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut output);
        }
        output.truncate(4096);
        let (exit_code, output) = match status {
            Some(s) => (s.code().unwrap_or(-1), output),
            None => (
                -1,
                format!("Health check exceeded timeout ({:?})", check.timeout),
            ),
        };
        Probe {
            start,
            end: berth_types::time::now_rfc3339(),
            exit_code,
            output,
        }
    }
}
