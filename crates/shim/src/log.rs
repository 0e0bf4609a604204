//! The json-file log driver's format, as Docker writes it: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"RFC 3339 with nanoseconds"}`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// An open log file.
pub struct JsonLog {
    file: File,
}

impl JsonLog {
    /// Opens for appending (a restarted container keeps its earlier lines).
    pub fn open(path: &Path) -> std::io::Result<Self> {
        Ok(JsonLog {
            file: OpenOptions::new().create(true).append(true).open(path)?,
        })
    }

    /// Appends one entry; `text` is a line with its newline, or a final partial line.
    pub fn write(&mut self, stream: &str, text: &[u8]) {
        let entry = serde_json::json!({
            "log": String::from_utf8_lossy(text),
            "stream": stream,
            "time": berth_types::time::now_rfc3339(),
        });
        // One write per entry, so a reader never sees half a line.
        let mut line = entry.to_string().into_bytes();
        line.push(b'\n');
        let _ = self.file.write_all(&line);
    }
}
