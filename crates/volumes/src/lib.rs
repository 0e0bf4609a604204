//! # berth-volumes
//!
//! Docker's `local` volume driver: named and anonymous volumes as directories under
//! `data-root/volumes/<name>/_data`, their records in the metadata store, driver options
//! (`type`, `device`, `o`: a tmpfs, an NFS share, a bind of a host directory) mounted on
//! the volume's directory when a container first uses it, and the copy of an image's
//! content into a new, empty volume.
//!
//! **Owns:** the `volumes` table and `data-root/volumes/`.
//! **Does not:** know which containers use a volume: callers say (the daemon asks the
//! container service before a removal).

mod copy;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_metadata::{Db, Table};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use copy::copy_tree;

/// Errors, in the shape the API maps to status codes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 404.
    #[error("get {0}: no such volume")]
    NotFound(String),
    /// 400.
    #[error("{0}")]
    InvalidInput(String),
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// 500.
    #[error("{0}")]
    Internal(String),
}

impl From<berth_metadata::Error> for Error {
    fn from(e: berth_metadata::Error) -> Self {
        Error::Internal(e.to_string())
    }
}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Docker labels an anonymous volume with this (Docker 23 and later).
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// A volume as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VolumeRecord {
    /// Unique name (64 hex digits for anonymous ones).
    pub name: String,
    /// Always `local`.
    pub driver: String,
    /// RFC 3339.
    pub created: String,
    /// User labels (anonymous volumes carry [`ANONYMOUS_LABEL`]).
    pub labels: BTreeMap<String, String>,
    /// Driver options: `type`, `device`, `o`.
    pub options: BTreeMap<String, String>,
}

impl VolumeRecord {
    /// Made for one container without a name.
    pub fn is_anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }
}

const VOLUMES: Table<VolumeRecord> = Table::new("volumes");

/// The volume service.
#[derive(Clone)]
pub struct VolumeService {
    db: Arc<Db>,
    root: PathBuf,
    events: berth_events::Events,
}

/// Docker's rule for volume names.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() >= 2
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

impl VolumeService {
    /// Volumes under `data_root/volumes`.
    pub fn new(db: Arc<Db>, data_root: &Path, events: berth_events::Events) -> Result<Self> {
        let root = data_root.join("volumes");
        std::fs::create_dir_all(&root)
            .map_err(|e| Error::Internal(format!("create {}: {e}", root.display())))?;
        Ok(VolumeService { db, root, events })
    }

    fn emit(&self, action: &str, name: &str) {
        self.events.emit(
            berth_events::Event::new(berth_events::kind::VOLUME, action, name)
                .attr("driver", "local"),
        );
    }

    /// The directory containers see.
    pub fn mountpoint(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    /// `POST /volumes/create`: creates the volume, or returns the existing one of that
    /// name (as Docker does) when the driver and options agree.
    pub fn create(
        &self,
        name: Option<&str>,
        driver: &str,
        options: BTreeMap<String, String>,
        labels: BTreeMap<String, String>,
    ) -> Result<VolumeRecord> {
        let driver = if driver.is_empty() { "local" } else { driver };
        if driver != "local" {
            return Err(Error::NotFound(format!(
                "driver {driver} (only the local driver is built in)"
            )));
        }
        for key in options.keys() {
            if !["type", "device", "o", "size"].contains(&key.as_str()) {
                return Err(Error::InvalidInput(format!(
                    "invalid option key: {key:?} (the local driver takes type, device and o)"
                )));
            }
        }
        if options.contains_key("type") != options.contains_key("device") {
            return Err(Error::InvalidInput(
                "the local driver needs both type and device to mount a volume".into(),
            ));
        }
        let (name, anonymous) = match name.filter(|n| !n.is_empty()) {
            Some(n) => (n.to_string(), false),
            None => (
                berth_types::id::random_hex(32).map_err(|e| Error::Internal(e.to_string()))?,
                true,
            ),
        };
        if !valid_name(&name) {
            return Err(Error::InvalidInput(format!(
                "create {name}: {name:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed"
            )));
        }
        let mut labels = labels;
        if anonymous {
            labels.insert(ANONYMOUS_LABEL.into(), String::new());
        }
        let rec = VolumeRecord {
            name: name.clone(),
            driver: "local".into(),
            created: berth_types::time::now_rfc3339(),
            labels,
            options,
        };
        let dir = self.mountpoint(&name);
        let mut made = false;
        let stored = self.db.write(|tx| -> Result<VolumeRecord> {
            if let Some(existing) = tx.get(&VOLUMES, &name)? {
                if existing.options != rec.options {
                    return Err(Error::Conflict(format!(
                        "create {name}: volume already exists with other options"
                    )));
                }
                return Ok(existing);
            }
            made = true;
            // The directory first: a crash after it leaves an empty directory that a
            // later create of the name adopts, never a record without its directory.
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::Internal(format!("create {}: {e}", dir.display())))?;
            tx.put(&VOLUMES, &name, &rec)?;
            Ok(rec.clone())
        })?;
        if made {
            self.emit("create", &name);
        }
        Ok(stored)
    }

    /// A volume by name.
    pub fn get(&self, name: &str) -> Result<VolumeRecord> {
        self.db
            .read(|tx| tx.get(&VOLUMES, name))?
            .ok_or_else(|| Error::NotFound(name.to_string()))
    }

    /// Every volume, by name.
    pub fn list(&self) -> Result<Vec<VolumeRecord>> {
        let mut all: Vec<VolumeRecord> = self
            .db
            .read(|tx| tx.list(&VOLUMES))?
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    /// Docker's JSON for a volume.
    pub fn inspect_json(&self, v: &VolumeRecord) -> Value {
        json!({
            "CreatedAt": v.created,
            "Driver": v.driver,
            "Labels": v.labels,
            "Mountpoint": self.mountpoint(&v.name),
            "Name": v.name,
            "Options": if v.options.is_empty() { Value::Null } else { json!(v.options) },
            "Scope": "local",
        })
    }

    /// Makes the volume ready for a container: mounts what its driver options describe,
    /// once. Returns the host directory to bind.
    pub fn prepare(&self, name: &str) -> Result<PathBuf> {
        let v = self.get(name)?;
        let dir = self.mountpoint(name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Internal(format!("create {}: {e}", dir.display())))?;
        if let (Some(kind), Some(device)) = (v.options.get("type"), v.options.get("device"))
            && !is_mounted(&dir)
        {
            mount_device(kind, device, v.options.get("o").map(String::as_str), &dir)?;
        }
        Ok(dir)
    }

    /// Unmounts what [`VolumeService::prepare`] mounted (when the last container using the
    /// volume stops, as Docker's local driver does: a tmpfs volume's content goes with it).
    pub fn release(&self, name: &str) {
        let Ok(v) = self.get(name) else { return };
        let dir = self.mountpoint(name);
        if v.options.contains_key("type") && is_mounted(&dir) {
            let _ = rustix::mount::unmount(&dir, rustix::mount::UnmountFlags::DETACH);
        }
    }

    /// Whether the volume holds nothing yet (the image's content is copied into such a
    /// volume at its first use).
    pub fn is_empty(&self, name: &str) -> bool {
        std::fs::read_dir(self.mountpoint(name)).is_ok_and(|mut d| d.next().is_none())
    }

    /// Removes a volume no container uses (the caller checked): unmounts it and deletes
    /// its data, then its record.
    pub fn remove(&self, name: &str) -> Result<()> {
        self.get(name)?;
        let dir = self.mountpoint(name);
        if is_mounted(&dir) {
            rustix::mount::unmount(&dir, rustix::mount::UnmountFlags::DETACH)
                .map_err(|e| Error::Internal(format!("unmount {}: {e}", dir.display())))?;
        }
        // The record goes last: a crash in between leaves a volume with less data, never
        // data that nothing names.
        let _ = std::fs::remove_dir_all(self.root.join(name));
        self.db.write(|tx| tx.delete(&VOLUMES, name))?;
        self.emit("destroy", name);
        Ok(())
    }
}

/// Disk space used under `path`, in bytes (allocated blocks; symlinks not followed).
pub fn dir_size(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

/// Whether something is mounted on `dir` (per /proc/self/mountinfo).
fn is_mounted(dir: &Path) -> bool {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let target = dir.to_string_lossy();
    text.lines()
        .any(|l| l.split(' ').nth(4) == Some(target.as_ref()))
}

/// `mount -t kind -o opts device dir`, as the local driver does (`o=bind` binds a path).
fn mount_device(kind: &str, device: &str, opts: Option<&str>, dir: &Path) -> Result<()> {
    let opts = opts.unwrap_or("");
    let bind = opts.split(',').any(|o| o == "bind" || o == "rbind");
    let result = if bind {
        rustix::mount::mount_bind_recursive(device, dir)
    } else {
        let fstype = if kind == "none" { "" } else { kind };
        let data = std::ffi::CString::new(opts)
            .map_err(|_| Error::InvalidInput(format!("invalid mount options: {opts:?}")))?;
        rustix::mount::mount(
            device,
            dir,
            fstype,
            rustix::mount::MountFlags::empty(),
            Some(data.as_c_str()),
        )
    };
    result.map_err(|e| {
        Error::InvalidInput(format!(
            "error while mounting volume '{}': failed to mount local volume: mount {device}:{} (type {kind}, options {opts}): {e}",
            dir.display(),
            dir.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> (tempfile::TempDir, VolumeService) {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(&dir.path().join("m.redb")).unwrap());
        let events = berth_events::Events::open(
            &dir.path().join("events"),
            berth_events::DEFAULT_JOURNAL_BYTES,
        )
        .unwrap();
        let svc = VolumeService::new(db, dir.path(), events).unwrap();
        (dir, svc)
    }

    #[test]
    fn create_is_idempotent_and_names_are_checked() {
        let (_d, svc) = service();
        let a = svc
            .create(Some("data"), "", BTreeMap::new(), BTreeMap::new())
            .unwrap();
        let b = svc
            .create(Some("data"), "local", BTreeMap::new(), BTreeMap::new())
            .unwrap();
        assert_eq!(a.created, b.created);
        assert!(svc.mountpoint("data").is_dir());
        assert!(
            svc.create(Some("a/b"), "", BTreeMap::new(), BTreeMap::new())
                .is_err()
        );
        assert!(
            svc.create(Some("x"), "nfs-plugin", BTreeMap::new(), BTreeMap::new())
                .is_err()
        );
        let anon = svc
            .create(None, "", BTreeMap::new(), BTreeMap::new())
            .unwrap();
        assert!(anon.is_anonymous());
        assert_eq!(anon.name.len(), 64);
        svc.remove("data").unwrap();
        assert!(!svc.mountpoint("data").exists());
        assert!(matches!(svc.get("data"), Err(Error::NotFound(_))));
    }

    #[test]
    fn driver_options_are_checked() {
        let (_d, svc) = service();
        let mut o = BTreeMap::new();
        o.insert("type".to_string(), "tmpfs".to_string());
        assert!(
            svc.create(Some("half"), "", o.clone(), BTreeMap::new())
                .is_err()
        );
        o.insert("device".to_string(), "tmpfs".to_string());
        o.insert("o".to_string(), "size=1m".to_string());
        svc.create(Some("mem"), "", o, BTreeMap::new()).unwrap();
        let dir = svc.prepare("mem").unwrap();
        assert!(is_mounted(&dir));
        svc.remove("mem").unwrap();
        assert!(!is_mounted(&dir));
        let mut bad = BTreeMap::new();
        bad.insert("colour".to_string(), "red".to_string());
        assert!(svc.create(Some("odd"), "", bad, BTreeMap::new()).is_err());
    }
}
