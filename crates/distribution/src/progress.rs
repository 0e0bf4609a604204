//! Docker's JSON progress messages (`{"status", "id", "progressDetail", "progress"}`),
//! which the docker CLI draws as its usual bars, sent to whoever streams the response.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;

/// Where progress goes. Cloning shares the destination; sending never blocks.
#[derive(Clone, Default)]
pub struct Progress {
    tx: Option<UnboundedSender<Value>>,
}

impl Progress {
    /// Progress sent down `tx`.
    pub fn new(tx: UnboundedSender<Value>) -> Self {
        Progress { tx: Some(tx) }
    }

    /// Progress nobody reads.
    pub fn discard() -> Self {
        Progress { tx: None }
    }

    /// Sends one message as is.
    pub fn send(&self, message: Value) {
        if let Some(tx) = &self.tx {
            // A client that went away stops reading; the work goes on regardless.
            let _ = tx.send(message);
        }
    }

    /// A status line: `{"status": "..."}`.
    pub fn status(&self, status: impl Into<String>) {
        self.send(json!({"status": status.into()}));
    }

    /// A status line about an object: `{"status": "...", "id": "..."}`.
    pub fn status_id(&self, id: &str, status: impl Into<String>) {
        self.send(json!({"status": status.into(), "id": id}));
    }

    /// A layer's new state (`Pulling fs layer`, `Pull complete`, `Pushed`...).
    pub fn layer(&self, id: &str, status: impl Into<String>) {
        self.send(json!({"status": status.into(), "progressDetail": {}, "id": id}));
    }

    /// Bytes done out of a total for a layer, with the bar older clients print as is.
    pub fn bytes(&self, id: &str, status: &str, current: u64, total: u64) {
        self.send(json!({
            "status": status,
            "progressDetail": {"current": current, "total": total},
            "progress": bar(current, total),
            "id": id,
        }));
    }

    /// An `aux` message (push's digest, load's image id).
    pub fn aux(&self, aux: Value) {
        self.send(json!({"progressDetail": {}, "aux": aux}));
    }
}

pub use berth_types::units::progress_bar as bar;

/// Sends byte counts for one layer at most every 100 ms (and always the last), so a fast
/// download does not flood the client with messages.
pub(crate) struct Throttled {
    progress: Progress,
    id: String,
    status: &'static str,
    total: u64,
    last: Mutex<Option<Instant>>,
}

impl Throttled {
    pub fn new(progress: Progress, id: &str, status: &'static str, total: u64) -> Self {
        Throttled {
            progress,
            id: id.to_string(),
            status,
            total,
            last: Mutex::new(None),
        }
    }

    pub fn update(&self, current: u64) {
        let mut last = self.last.lock().expect("progress clock");
        let due = last.is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
        if due || current >= self.total {
            *last = Some(Instant::now());
            self.progress
                .bytes(&self.id, self.status, current, self.total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_like_docker() {
        assert_eq!(
            bar(0, 2_000_000),
            format!("[>{}]       0B/2MB", " ".repeat(50))
        );
        assert_eq!(
            bar(1_000_000, 2_000_000),
            format!("[{}>{}]      1MB/2MB", "=".repeat(25), " ".repeat(25))
        );
        assert_eq!(
            bar(2_000_000, 2_000_000),
            format!("[{}>]      2MB/2MB", "=".repeat(50))
        );
    }
}
