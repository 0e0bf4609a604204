//! Restart policies (`--restart no|always|unless-stopped|on-failure[:N]`) with Docker's
//! back-off: the first restart after 100 ms, each next one after twice as long (at most
//! a minute), back to 100 ms once a run lasted 10 s. A manual stop or kill is never undone
//! by the policy; `always` (and `unless-stopped` unless stopped by hand) containers come
//! back when berthd starts.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{ContainerRecord, ContainerService, Error, Result};

/// What a container's restarts need to remember.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RestartState {
    /// Restarts by the policy since the last manual start (Docker's RestartCount).
    pub count: u32,
    /// Stopped or killed by hand: the policy does not bring it back.
    pub manually_stopped: bool,
    /// The delay before the last restart, in milliseconds.
    pub delay_ms: u64,
}

const FIRST_DELAY_MS: u64 = 100;
const MAX_DELAY_MS: u64 = 60_000;
const RESET_AFTER_SECS: i64 = 10;

fn policy(host: &Value) -> (&str, i64) {
    let p = &host["RestartPolicy"];
    (
        p["Name"].as_str().filter(|n| !n.is_empty()).unwrap_or("no"),
        p["MaximumRetryCount"].as_i64().unwrap_or(0),
    )
}

/// Refuses policies Docker refuses.
pub fn validate(host: &Value) -> Result<()> {
    let (name, max) = policy(host);
    match name {
        "no" | "always" | "unless-stopped" | "on-failure" => {}
        other => {
            return Err(Error::InvalidInput(format!(
                "invalid restart policy '{other}': use no, always, unless-stopped or on-failure[:max-retries]"
            )));
        }
    }
    if max < 0 {
        return Err(Error::InvalidInput(
            "invalid restart policy: maximum retry count cannot be negative".into(),
        ));
    }
    if max > 0 && name != "on-failure" {
        return Err(Error::InvalidInput(format!(
            "invalid restart policy: maximum retry count can only be used with 'on-failure', not '{name}'"
        )));
    }
    if name != "no" && host["AutoRemove"].as_bool() == Some(true) {
        return Err(Error::InvalidInput(
            "conflicting options: cannot specify both --restart and --rm".into(),
        ));
    }
    Ok(())
}

/// Whether the policy restarts a container that just exited.
fn wants_restart(rec: &ContainerRecord) -> bool {
    if rec.restart.manually_stopped {
        return false;
    }
    match policy(&rec.host_config) {
        ("always" | "unless-stopped", _) => true,
        ("on-failure", max) => {
            rec.state.exit_code != 0 && (max == 0 || i64::from(rec.restart.count) < max)
        }
        _ => false,
    }
}

/// Marks a container whose exit was just recorded as `restarting` (with its next delay)
/// when its policy restarts it.
pub(crate) fn mark_restarting(rec: &mut ContainerRecord) {
    if wants_restart(rec) {
        rec.restart.delay_ms = next_delay(rec);
        rec.state.status = "restarting".into();
    }
}

/// Whether berthd brings the container back when it starts.
fn wants_start_on_boot(rec: &ContainerRecord) -> bool {
    match policy(&rec.host_config) {
        ("always", _) => true,
        ("unless-stopped", _) => !rec.restart.manually_stopped,
        _ => false,
    }
}

/// The next delay: doubled, or the first again after a long enough run.
fn next_delay(rec: &ContainerRecord) -> u64 {
    let ran = match (
        berth_types::time::parse_rfc3339_seconds(&rec.state.started_at),
        berth_types::time::parse_rfc3339_seconds(&rec.state.finished_at),
    ) {
        (Some(a), Some(b)) => b - a,
        _ => 0,
    };
    if rec.restart.delay_ms == 0 || ran >= RESET_AFTER_SECS {
        FIRST_DELAY_MS
    } else {
        (rec.restart.delay_ms * 2).min(MAX_DELAY_MS)
    }
}

impl ContainerService {
    /// Called once per recorded exit: schedules the restart [`mark_restarting`] decided.
    /// Returns the record as it stands (`restarting` while a restart waits).
    pub(crate) fn after_exit(&self, rec: ContainerRecord) -> ContainerRecord {
        if rec.state.status != "restarting" {
            return rec;
        }
        let delay = rec.restart.delay_ms;
        let service = self.clone();
        let id = rec.id.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(delay));
            // Stopped, removed or started by hand meanwhile: nothing to do.
            let still = service
                .lookup(&id)
                .is_ok_and(|r| r.state.status == "restarting");
            if still {
                let _ = service.modify(&id, |r| r.restart.count += 1);
                if let Err(e) = service.start_by_policy(&id) {
                    service.retry_later(&id, &e);
                }
            }
        });
        rec
    }

    /// Starts, at berthd's start, the containers their policy keeps running.
    pub(crate) fn start_on_boot(&self, rec: &ContainerRecord) {
        let down = rec.state.status == "exited" || rec.state.status == "restarting";
        if down
            && wants_start_on_boot(rec)
            && let Err(e) = self.start_by_policy(&rec.id)
        {
            self.retry_later(&rec.id, &e);
        }
    }

    /// A start by the policy failed: that counts as another exit, tried again after the
    /// next delay (as Docker keeps trying).
    fn retry_later(&self, id: &str, e: &Error) {
        tracing::warn!(container = id, "restart: {e}");
        let message = e.to_string();
        if let Ok(rec) = self.modify(id, |r| {
            r.state.status = "exited".into();
            r.state.error = message;
            mark_restarting(r);
        }) {
            self.after_exit(rec);
        }
    }

    /// Marks a container stopped by hand (`stop`, or `kill` with its stop signal or
    /// SIGKILL): the policy leaves it down. A waiting restart is called off.
    pub(crate) fn mark_manually_stopped(&self, id: &str) {
        let _ = self.modify(id, |r| {
            r.restart.manually_stopped = true;
            if r.state.status == "restarting" {
                r.state.status = "exited".into();
            }
        });
    }
}
