//! Reading the json-file log back as `docker logs` wants it.

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};

/// `docker logs` options.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Include stdout.
    pub stdout: bool,
    /// Include stderr.
    pub stderr: bool,
    /// Only the last N lines.
    pub tail: Option<usize>,
    /// Prefix each line with its time.
    pub timestamps: bool,
}

/// The selected entries, as multiplexed frames (or raw text for a terminal container).
pub fn read(path: &Path, opts: &LogOptions, tty: bool) -> Result<Vec<u8>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::Internal(format!("read log: {e}"))),
    };
    let entries: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| match e["stream"].as_str() {
            Some("stdout") => opts.stdout,
            Some("stderr") => opts.stderr,
            _ => false,
        })
        .collect();
    let skip = opts.tail.map_or(0, |n| entries.len().saturating_sub(n));
    let mut out = Vec::new();
    for e in &entries[skip..] {
        let mut line = String::new();
        if opts.timestamps {
            line.push_str(e["time"].as_str().unwrap_or(""));
            line.push(' ');
        }
        line.push_str(e["log"].as_str().unwrap_or(""));
        if tty {
            out.extend_from_slice(line.as_bytes());
        } else {
            let stream = if e["stream"] == "stderr" { 2 } else { 1 };
            out.extend_from_slice(&[stream, 0, 0, 0]);
            out.extend_from_slice(&(line.len() as u32).to_be_bytes());
            out.extend_from_slice(line.as_bytes());
        }
    }
    Ok(out)
}
