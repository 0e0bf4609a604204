//! Reading the json-file log back as `docker logs` wants it: the rotated files oldest
//! first (`<log>.2`, `<log>.1`, `<log>`), filtered by stream and time, as multiplexed
//! frames (or raw text for a terminal container); and following the live file, across
//! rotations, for `logs -f`.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

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
    /// Only entries at or after this time (nanoseconds since the epoch).
    pub since: Option<i128>,
    /// Only entries before this time (nanoseconds since the epoch).
    pub until: Option<i128>,
    /// Put each entry's attributes (`k=v,...`) and a space before it.
    pub details: bool,
}

/// The log files of a container, oldest first.
fn files(path: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u32, PathBuf)> = Vec::new();
    if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
        let prefix = format!("{}.", name.to_string_lossy());
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if let Some(k) = n.strip_prefix(&prefix).and_then(|k| k.parse().ok()) {
                rotated.push((k, e.path()));
            }
        }
    }
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut out: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    out.push(path.to_path_buf());
    out
}

impl LogOptions {
    fn wants(&self, e: &Value) -> bool {
        let stream_ok = match e["stream"].as_str() {
            Some("stdout") => self.stdout,
            Some("stderr") => self.stderr,
            _ => false,
        };
        if !stream_ok {
            return false;
        }
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        let t = e["time"]
            .as_str()
            .and_then(berth_types::time::parse_rfc3339_nanos)
            .unwrap_or(0);
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }

    /// One entry as Docker sends it.
    fn frame(&self, e: &Value, tty: bool, out: &mut Vec<u8>) {
        let mut line = String::new();
        if self.timestamps {
            line.push_str(e["time"].as_str().unwrap_or(""));
            line.push(' ');
        }
        if self.details {
            // dockerd's form: query-escaped `k=v` pairs joined by commas, then a space
            // (a lone space when there are none).
            let pairs: Vec<String> = e["attrs"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| {
                    format!(
                        "{}={}",
                        query_escape(k),
                        query_escape(v.as_str().unwrap_or(""))
                    )
                })
                .collect();
            line.push_str(&pairs.join(","));
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
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn parse_entries(text: &str) -> impl Iterator<Item = Value> + '_ {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
}

/// The selected entries, and where a follower continues in the live file.
pub fn read(path: &Path, opts: &LogOptions, tty: bool) -> Result<(Vec<u8>, Follower)> {
    let mut entries: Vec<Value> = Vec::new();
    let mut follower = Follower::new(path);
    for f in files(path) {
        let bytes = match std::fs::read(&f) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::Internal(format!("read log: {e}"))),
        };
        if f == path {
            // Only complete lines: a follower picks up a line being written.
            let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
            follower.offset = complete as u64;
            follower.inode = std::fs::metadata(&f).map(|m| m.ino()).unwrap_or(0);
            entries.extend(
                parse_entries(&String::from_utf8_lossy(&bytes[..complete]))
                    .filter(|e| opts.wants(e)),
            );
        } else {
            entries
                .extend(parse_entries(&String::from_utf8_lossy(&bytes)).filter(|e| opts.wants(e)));
        }
    }
    let skip = opts.tail.map_or(0, |n| entries.len().saturating_sub(n));
    let mut out = Vec::new();
    for e in &entries[skip..] {
        opts.frame(e, tty, &mut out);
    }
    Ok((out, follower))
}

/// Follows the live log file from an offset; a rotation (a new file at the path) is
/// noticed by its inode, and the new file is read from its start.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    offset: u64,
    inode: u64,
}

impl Follower {
    fn new(path: &Path) -> Self {
        Follower {
            path: path.to_path_buf(),
            offset: 0,
            inode: 0,
        }
    }

    /// New complete entries since the last call, as frames.
    pub fn poll(&mut self, opts: &LogOptions, tty: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let Ok(meta) = std::fs::metadata(&self.path) else {
            return out;
        };
        if meta.ino() != self.inode {
            // Rotated: finish the old file (now `<log>.1`), then start the new one.
            let old = PathBuf::from(format!("{}.1", self.path.display()));
            if self.inode != 0 && std::fs::metadata(&old).is_ok_and(|m| m.ino() == self.inode) {
                self.read_from(&old, opts, tty, &mut out);
            }
            self.inode = meta.ino();
            self.offset = 0;
        }
        let path = self.path.clone();
        self.read_from(&path, opts, tty, &mut out);
        out
    }

    fn read_from(&mut self, path: &Path, opts: &LogOptions, tty: bool, out: &mut Vec<u8>) {
        let Ok(mut f) = std::fs::File::open(path) else {
            return;
        };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() {
            return;
        }
        let complete = buf.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
        self.offset += complete as u64;
        for e in parse_entries(&String::from_utf8_lossy(&buf[..complete])) {
            if opts.wants(&e) {
                opts.frame(&e, tty, out);
            }
        }
    }
}
