//! The json-file log driver's format, as Docker writes it: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"RFC 3339 with nanoseconds"}`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// An open log file, rotated by size: `<log>` is renamed `<log>.1` (older ones shift up
/// to `<log>.<max_files - 1>`, the oldest is dropped) and a new `<log>` begins.
pub struct JsonLog {
    file: File,
    path: PathBuf,
    size: u64,
    /// 0: never rotate.
    max_size: u64,
    max_files: u32,
    /// `--log-opt labels/env` attributes written with each entry.
    attrs: Option<serde_json::Value>,
}

impl JsonLog {
    /// Opens for appending (a restarted container keeps its earlier lines).
    pub fn open(path: &Path, max_size: u64, max_files: u32) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(JsonLog {
            file,
            path: path.to_path_buf(),
            size,
            max_size,
            max_files: max_files.max(1),
            attrs: None,
        })
    }

    /// Writes `attrs` (a JSON object) with each entry.
    pub fn with_attrs(mut self, attrs: Option<serde_json::Value>) -> Self {
        self.attrs = attrs.filter(|a| a.as_object().is_some_and(|m| !m.is_empty()));
        self
    }

    /// Makes room for `incoming` bytes, rotating when the file would pass its limit.
    fn rotate_if_needed(&mut self, incoming: u64) {
        if self.max_size == 0 || self.size == 0 || self.size + incoming <= self.max_size {
            return;
        }
        let name = |i: u32| PathBuf::from(format!("{}.{i}", self.path.display()));
        if self.max_files == 1 {
            // Only one file: start it over.
            if self.file.set_len(0).is_ok() {
                self.size = 0;
            }
            return;
        }
        let _ = std::fs::remove_file(name(self.max_files - 1));
        for i in (1..self.max_files - 1).rev() {
            let _ = std::fs::rename(name(i), name(i + 1));
        }
        let _ = std::fs::rename(&self.path, name(1));
        if let Ok(f) = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
        {
            self.file = f;
            self.size = 0;
        }
    }

    /// Appends one entry; `text` is a line with its newline, or a final partial line.
    pub fn write(&mut self, stream: &str, text: &[u8]) {
        let mut entry = serde_json::json!({
            "log": String::from_utf8_lossy(text),
            "stream": stream,
            "time": berth_types::time::now_rfc3339(),
        });
        if let Some(a) = &self.attrs {
            entry["attrs"] = a.clone();
        }
        // One write per entry, so a reader never sees half a line.
        let mut line = entry.to_string().into_bytes();
        line.push(b'\n');
        self.rotate_if_needed(line.len() as u64);
        if self.file.write_all(&line).is_ok() {
            self.size += line.len() as u64;
        }
    }
}
