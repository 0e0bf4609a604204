//! The on-disk record of a container under the runtime's state root, and how its status is
//! derived from the live system rather than trusted from the file.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

pub use berth_types::time::now_rfc3339;

use crate::error::{Error, IoContext, Result};

/// The status values of the OCI runtime spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being created: init has not finished its setup yet.
    Creating,
    /// Set up and waiting for `start`.
    Created,
    /// The user process runs.
    Running,
    /// Frozen by `pause`.
    Paused,
    /// The init process has exited.
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.write_str(s)
    }
}

/// What the runtime remembers about a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// Container id.
    pub id: String,
    /// Host pid of the container's init (pid 1 of its pid namespace).
    pub pid: i32,
    /// Start time of `pid` in clock ticks since boot, to detect pid reuse.
    pub pid_start: u64,
    /// Absolute bundle path.
    pub bundle: PathBuf,
    /// Absolute rootfs path.
    pub rootfs: PathBuf,
    /// Creation time, RFC 3339 in UTC.
    pub created: String,
    /// The config the container was created from: exec and delete need its process
    /// defaults, cgroup path and hooks even if the bundle is gone.
    pub config: Spec,
}

/// The JSON that `state` prints, as runc prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    /// Version of the OCI runtime spec.
    pub oci_version: String,
    /// Container id.
    pub id: String,
    /// Init pid (0 once stopped).
    pub pid: i32,
    /// Current status.
    pub status: Status,
    /// Absolute bundle path.
    pub bundle: PathBuf,
    /// Absolute rootfs path.
    pub rootfs: PathBuf,
    /// Creation time.
    pub created: String,
    /// Owner name (empty when run as root, as runc prints it).
    pub owner: String,
    /// The config's annotations.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub annotations: BTreeMap<String, String>,
}

/// The directory that holds every container's state: `--root`.
#[derive(Debug, Clone)]
pub struct StateRoot {
    dir: PathBuf,
}

impl StateRoot {
    /// Opens (creating if needed, mode 0700) the state root.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .ctx(|| format!("create state root {}", dir.display()))?;
        Ok(StateRoot { dir })
    }

    /// The state root path.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The state directory of one container.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Ids of every container with a state directory, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let mut ids: Vec<String> = fs::read_dir(&self.dir)
            .ctx(|| format!("read state root {}", self.dir.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join(STATE_FILE).exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Claims the id by creating its directory; fails if it exists.
    pub fn reserve(&self, id: &str) -> Result<PathBuf> {
        validate_id(id)?;
        let dir = self.container_dir(id);
        match fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::AlreadyExists(id.to_string()))
            }
            Err(e) => Err(Error::path("create state dir", &dir, e)),
        }
    }

    /// Reads a container's record.
    pub fn load(&self, id: &str) -> Result<Record> {
        validate_id(id)?;
        let path = self.container_dir(id).join(STATE_FILE);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.to_string()));
            }
            Err(e) => return Err(Error::path("read", &path, e)),
        };
        serde_json::from_slice(&data).map_err(|e| {
            Error::io(
                format!("parse {}", path.display()),
                std::io::Error::other(e),
            )
        })
    }

    /// Writes a record atomically: a crash leaves either the old or the new file.
    pub fn save(&self, record: &Record) -> Result<()> {
        let dir = self.container_dir(&record.id);
        let data = serde_json::to_vec(record).expect("a record always serializes");
        write_atomic(&dir.join(STATE_FILE), &data)
    }

    /// Removes a container's state directory.
    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.container_dir(id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::path("remove state dir", dir, e)),
        }
    }
}

const STATE_FILE: &str = "state.json";
/// Name of the FIFO that `start` opens to let init exec the user process.
pub const EXEC_FIFO: &str = "exec.fifo";

/// Accepts the ids runc accepts: letters, digits and `_ + - .`, not `.` or `..`.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "invalid container id {id:?}: use letters, digits, '_', '+', '-' and '.'"
        )))
    }
}

/// Writes `data` to `path` through a temp file, fsync and rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    // Unique per writer: two writers of one path must not share (and truncate) a temp.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp.{}.{n}", std::process::id()));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .ctx(|| format!("create {}", tmp.display()))?;
    f.write_all(data)
        .ctx(|| format!("write {}", tmp.display()))?;
    f.sync_all().ctx(|| format!("fsync {}", tmp.display()))?;
    fs::rename(&tmp, path).ctx(|| format!("rename {} to {}", tmp.display(), path.display()))
}

/// Start time of a process (field 22 of /proc/PID/stat), or `None` if it is gone or a zombie.
pub fn live_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // After the state (field 3) comes field 4; field 22 is 18 further.
    fields.nth(18)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(validate_id("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "../x"] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn own_start_time_is_readable() {
        assert!(live_start_time(std::process::id() as i32).is_some());
        assert!(live_start_time(i32::MAX).is_none());
    }
}
