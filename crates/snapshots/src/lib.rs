//! # berth-snapshots
//!
//! Image layers unpacked into directories, one per layer stack position, keyed by the
//! OCI chain id (so two images that share their bottom layers share those directories);
//! stacked with overlayfs for containers.
//!
//! ## Vocabulary and states
//! - a **snapshot** is `snapshots/<chain id hex>/fs`, holding one layer's changes in
//!   overlayfs's format (whiteouts as 0/0 character devices, opaque directories marked
//!   with `trusted.overlay.opaque=y`);
//! - **unpacking** happens in `snapshots/tmp-*` and becomes visible by one `rename`, so a
//!   snapshot either exists complete or not at all; `tmp-*` left by a crash are removed at
//!   [`Snapshotter::open`].
//!
//! Example: an image with diff ids `[a, b]` has chain ids `[a, sha256(a + " " + b)]`;
//! [`Snapshotter::lowerdirs`] gives `[dir(chain b), dir(chain a)]`, topmost first, as
//! overlayfs's `lowerdir=` wants them.
//!
//! **Owns:** the `snapshots/` directory and the layer extractor ([`unpack`]), which never
//! writes outside its destination (every path resolves with `openat2(RESOLVE_IN_ROOT)`).
//! **Does not:** decide which snapshots are still referenced (garbage collection).

pub mod unpack;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// Errors of the snapshotter.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The layer archive is malformed.
    #[error("layer archive: {0}")]
    Archive(String),
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// OCI chain ids of a layer stack given its diff ids (`sha256:...`), bottom first.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => {
                let h = Sha256::digest(format!("{prev} {d}").as_bytes());
                format!(
                    "sha256:{}",
                    h.iter().map(|b| format!("{b:02x}")).collect::<String>()
                )
            }
        };
        out.push(next);
    }
    out
}

/// The snapshot directory tree.
#[derive(Debug, Clone)]
pub struct Snapshotter {
    root: PathBuf,
}

/// A snapshot being written; see [`Snapshotter::prepare`].
pub struct Pending {
    tmp: PathBuf,
    fs: PathBuf,
    final_dir: PathBuf,
    chain_id: String,
    done: bool,
}

impl Pending {
    /// The directory to fill.
    pub fn path(&self) -> &Path {
        &self.fs
    }

    /// Makes the snapshot visible under its chain id (one rename).
    pub fn commit(mut self) -> Result<PathBuf> {
        self.done = true;
        match fs::rename(&self.tmp, &self.final_dir) {
            Ok(()) => Ok(self.final_dir.join("fs")),
            // Someone else finished the same snapshot first: theirs is as good as ours.
            Err(_) if self.final_dir.join("fs").is_dir() => {
                let _ = fs::remove_dir_all(&self.tmp);
                Ok(self.final_dir.join("fs"))
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&self.tmp);
                Err(io_err(format!("commit snapshot {}", self.chain_id))(e))
            }
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

fn key(chain_id: &str) -> &str {
    chain_id.strip_prefix("sha256:").unwrap_or(chain_id)
}

impl Snapshotter {
    /// Opens (creating) `root` and removes unpacks a crash interrupted.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(io_err(format!("create {}", root.display())))?;
        for e in fs::read_dir(&root)
            .map_err(io_err(format!("read {}", root.display())))?
            .flatten()
        {
            if e.file_name().to_string_lossy().starts_with("tmp-") {
                let _ = fs::remove_dir_all(e.path());
            }
        }
        Ok(Snapshotter { root })
    }

    /// The directory holding a snapshot's files.
    pub fn path(&self, chain_id: &str) -> PathBuf {
        self.root.join(key(chain_id)).join("fs")
    }

    /// The chain ids of every complete snapshot.
    pub fn list(&self) -> Vec<String> {
        fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with("tmp-"))
            .map(|n| format!("sha256:{n}"))
            .collect()
    }

    /// Whether a snapshot is complete and present.
    pub fn exists(&self, chain_id: &str) -> bool {
        self.path(chain_id).is_dir()
    }

    /// Unpacks `layer` (an uncompressed tar) as snapshot `chain_id` unless it exists.
    pub fn unpack(&self, chain_id: &str, layer: impl Read) -> Result<PathBuf> {
        let Some(pending) = self.prepare(chain_id)? else {
            return Ok(self.path(chain_id));
        };
        unpack::unpack(layer, pending.path())?;
        pending.commit()
    }

    /// Starts snapshot `chain_id` in a private directory, or `None` when it exists. The
    /// caller fills [`Pending::path`] and checks what it wrote (a pull verifies digests
    /// after the last byte) before [`Pending::commit`]; dropping it removes everything.
    pub fn prepare(&self, chain_id: &str) -> Result<Option<Pending>> {
        let final_dir = self.root.join(key(chain_id));
        if final_dir.join("fs").is_dir() {
            return Ok(None);
        }
        // Unique per call: threads of one process may unpack the same layer at once.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = self
            .root
            .join(format!("tmp-{}-{}-{n}", key(chain_id), std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(tmp.join("fs")).map_err(io_err(format!("create {}", tmp.display())))?;
        Ok(Some(Pending {
            fs: tmp.join("fs"),
            tmp,
            final_dir,
            chain_id: chain_id.to_string(),
            done: false,
        }))
    }

    /// The lower directories for a stack of chain ids (bottom first), topmost first.
    pub fn lowerdirs(&self, chain_ids: &[String]) -> Vec<PathBuf> {
        chain_ids.iter().rev().map(|c| self.path(c)).collect()
    }

    /// Removes a snapshot.
    pub fn remove(&self, chain_id: &str) -> Result<()> {
        let dir = self.root.join(key(chain_id));
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(io_err(format!("remove {}", dir.display()))(e))
            }
            _ => Ok(()),
        }
    }

    /// The snapshot root.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_oci_formula() {
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        let expected = Sha256::digest(format!("{a} {b}").as_bytes());
        assert_eq!(
            ids[1],
            format!(
                "sha256:{}",
                expected
                    .iter()
                    .map(|x| format!("{x:02x}"))
                    .collect::<String>()
            )
        );
    }
}
