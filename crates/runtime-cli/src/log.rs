//! Error reporting the way runc's callers read it: a line on stderr, and with `--log` a
//! line in the log file (`--log-format json` gives `{"level","msg","time"}`, which
//! containerd's go-runc parses to show the cause of a failure).

use std::io::Write;
use std::path::PathBuf;

/// Where errors go.
pub struct Logger {
    file: Option<PathBuf>,
    json: bool,
}

impl Logger {
    /// Creates a logger for the global flags.
    pub fn new(file: Option<PathBuf>, format: &str, _debug: bool) -> Self {
        Logger {
            file,
            json: format == "json",
        }
    }

    /// Reports an error.
    pub fn error(&self, msg: &str) {
        eprintln!("berth-runtime: {msg}");
        let Some(path) = &self.file else { return };
        let line = if self.json {
            let time = berth_runtime::state::now_rfc3339();
            serde_json::json!({"level": "error", "msg": msg, "time": time}).to_string()
        } else {
            format!("level=error msg={msg:?}")
        };
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}
