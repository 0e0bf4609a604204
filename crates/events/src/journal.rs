//! The bounded journal: `events.jsonl`, rotated into `events.1.jsonl` when it passes its
//! size, one JSON line per event.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::Event;

const CURRENT: &str = "events.jsonl";
const PREVIOUS: &str = "events.1.jsonl";

pub(crate) struct Journal {
    dir: PathBuf,
    file: File,
    size: u64,
    max: u64,
    last_nano: i64,
}

impl Journal {
    pub(crate) fn open(dir: &Path, max: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let last_nano = read(&files(dir)).last().map_or(0, |e| e.time_nano);
        let file = open_append(&dir.join(CURRENT))?;
        let size = file.metadata()?.len();
        let mut journal = Journal {
            dir: dir.into(),
            file,
            size,
            max,
            last_nano,
        };
        // A torn last line (a write cut by a crash) must not glue onto the next event.
        if size > 0 && !ends_with_newline(&dir.join(CURRENT))? {
            journal.file.write_all(b"\n")?;
            journal.size += 1;
        }
        Ok(journal)
    }

    pub(crate) fn last_nano(&self) -> i64 {
        self.last_nano
    }

    pub(crate) fn append(&mut self, event: &Event) -> std::io::Result<()> {
        self.last_nano = event.time_nano;
        let mut line = serde_json::to_vec(event).map_err(std::io::Error::other)?;
        line.push(b'\n');
        if self.size > 0 && self.size + line.len() as u64 > self.max {
            self.rotate()?;
        }
        // One write: a crash leaves the line whole or torn at the end, never interleaved.
        self.file.write_all(&line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        std::fs::rename(self.dir.join(CURRENT), self.dir.join(PREVIOUS))?;
        self.file = open_append(&self.dir.join(CURRENT))?;
        self.size = 0;
        Ok(())
    }
}

/// The journal's two files in `dir`, oldest first.
pub(crate) fn files(dir: &Path) -> [PathBuf; 2] {
    [dir.join(PREVIOUS), dir.join(CURRENT)]
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn ends_with_newline(path: &Path) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path)?;
    f.seek(SeekFrom::End(-1))?;
    let mut b = [0u8];
    f.read_exact(&mut b)?;
    Ok(b[0] == b'\n')
}

/// Every event the files hold, in order; lines that do not parse (torn by a crash) are
/// skipped.
pub(crate) fn read(files: &[PathBuf]) -> Vec<Event> {
    let mut out = Vec::new();
    for path in files {
        let Ok(f) = File::open(path) else { continue };
        for line in BufReader::new(f).lines() {
            let Ok(line) = line else { break };
            if let Ok(e) = serde_json::from_str::<Event>(&line) {
                out.push(e);
            }
        }
    }
    out
}
