//! # berth-content
//!
//! The content-addressed blob store: layers, image configs and manifests, each stored once
//! under `blobs/sha256/<hex>` by the digest of its bytes (OCI image-layout semantics).
//!
//! **Owns:** the one audited crash-safe write path for blobs: bytes stream into a temp file
//! in `ingest/` while hashed, are fsynced, checked against the expected digest, renamed
//! into place, and the directory is fsynced. A crash at any instant leaves either no blob
//! or a complete, correct one (stale temp files are removed at open).
//! **Does not:** know what a blob means, or which blobs are referenced (the metadata store
//! and garbage collection decide that).

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A digest string is not `sha256:` and 64 lower-case hex digits.
    #[error("invalid digest {0:?}: expected sha256: and 64 hex digits")]
    InvalidDigest(String),
    /// Written bytes do not hash to the digest they were announced with.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What the writer was told to expect.
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
    },
    /// The blob is not in the store.
    #[error("blob {0} not found")]
    NotFound(Digest),
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: io::Error,
    },
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// A sha256 content digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        Digest {
            hex: to_hex(&Sha256::digest(data)),
        }
    }

    /// The 64 hex digits, without the algorithm.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex digits, as docker shows short ids.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

/// A running sha256 over bytes seen one piece at a time (a download, an upload).
#[derive(Clone, Default)]
pub struct Hasher(Sha256);

impl Hasher {
    /// A hasher that has seen nothing.
    pub fn new() -> Self {
        Hasher(Sha256::new())
    }

    /// Adds bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest of everything seen so far.
    pub fn digest(&self) -> Digest {
        Digest {
            hex: to_hex(&self.0.clone().finalize()),
        }
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| Error::InvalidDigest(s.into()))?;
        let ok = hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok {
            Ok(Digest {
                hex: hex.to_string(),
            })
        } else {
            Err(Error::InvalidDigest(s.into()))
        }
    }
}

/// The store, rooted at a directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating) the store and removes temp files a crash left in `ingest/`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        for d in [root.join("blobs/sha256"), root.join("ingest")] {
            fs::create_dir_all(&d).map_err(io_err(format!("create {}", d.display())))?;
        }
        if let Ok(entries) = fs::read_dir(root.join("ingest")) {
            for e in entries.flatten() {
                let _ = fs::remove_file(e.path());
            }
        }
        Ok(Store { root })
    }

    /// Where a blob lives.
    pub fn path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    /// Whether the blob is present.
    pub fn contains(&self, d: &Digest) -> bool {
        self.path(d).exists()
    }

    /// Opens a blob for reading.
    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        File::open(self.path(d)).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                Error::NotFound(d.clone())
            } else {
                io_err(format!("open blob {d}"))(e)
            }
        })
    }

    /// Reads a whole (small) blob.
    pub fn read(&self, d: &Digest) -> Result<Vec<u8>> {
        fs::read(self.path(d)).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                Error::NotFound(d.clone())
            } else {
                io_err(format!("read blob {d}"))(e)
            }
        })
    }

    /// Size of a blob in bytes.
    pub fn size(&self, d: &Digest) -> Result<u64> {
        fs::metadata(self.path(d))
            .map(|m| m.len())
            .map_err(|_| Error::NotFound(d.clone()))
    }

    /// Stores bytes held in memory; returns their digest.
    pub fn put(&self, data: &[u8]) -> Result<Digest> {
        let mut w = self.writer()?;
        w.write_all(data).map_err(io_err("write blob"))?;
        w.commit(None)
    }

    /// Starts streaming a new blob.
    pub fn writer(&self) -> Result<Writer> {
        let file = tempfile_in(&self.root.join("ingest"))?;
        Ok(Writer {
            store: self.clone(),
            file: Some(file),
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Removes a blob; a missing one is fine.
    pub fn delete(&self, d: &Digest) -> Result<()> {
        match fs::remove_file(self.path(d)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(io_err(format!("delete blob {d}"))(e))
            }
            _ => Ok(()),
        }
    }

    /// Every blob in the store.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let dir = self.root.join("blobs/sha256");
        let entries = fs::read_dir(&dir).map_err(io_err(format!("read {}", dir.display())))?;
        Ok(entries
            .flatten()
            .filter_map(|e| {
                format!("sha256:{}", e.file_name().to_string_lossy())
                    .parse()
                    .ok()
            })
            .collect())
    }
}

struct TempFile {
    path: PathBuf,
    file: File,
}

fn tempfile_in(dir: &Path) -> Result<TempFile> {
    for attempt in 0..100u32 {
        let name = format!(".tmp-{}-{}-{attempt}", std::process::id(), unique());
        let path = dir.join(name);
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => return Ok(TempFile { path, file }),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err(format!("create temp file in {}", dir.display()))(e)),
        }
    }
    Err(Error::Io {
        context: "create temp file".into(),
        source: io::Error::other("no free name"),
    })
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    t.as_nanos() as u64 ^ N.fetch_add(1, Ordering::Relaxed)
}

/// A blob being written. Dropping it without [`Writer::commit`] removes the temp file.
pub struct Writer {
    store: Store,
    file: Option<TempFile>,
    hasher: Sha256,
    size: u64,
}

impl Writer {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Finishes the blob: fsync, digest check against `expected` (if given), rename into
    /// place, fsync the directory. Returns the digest.
    pub fn commit(mut self, expected: Option<&Digest>) -> Result<Digest> {
        let tmp = self.file.take().expect("commit runs once");
        let actual = Digest {
            hex: to_hex(&self.hasher.clone().finalize()),
        };
        if let Some(exp) = expected
            && exp != &actual
        {
            let _ = fs::remove_file(&tmp.path);
            return Err(Error::DigestMismatch {
                expected: exp.clone(),
                actual,
            });
        }
        tmp.file.sync_all().map_err(io_err("fsync blob"))?;
        let dest = self.store.path(&actual);
        fs::rename(&tmp.path, &dest).map_err(io_err(format!("store blob {actual}")))?;
        let dir = File::open(dest.parent().expect("blob paths have a parent"))
            .map_err(io_err("open blob dir"))?;
        dir.sync_all().map_err(io_err("fsync blob dir"))?;
        Ok(actual)
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let f = &mut self.file.as_mut().expect("not committed").file;
        let n = f.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().expect("not committed").file.flush()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(tmp) = self.file.take() {
            let _ = fs::remove_file(tmp.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_read_and_digest() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let d = s.put(b"hello").unwrap();
        assert_eq!(
            d.to_string(),
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(s.read(&d).unwrap(), b"hello");
        assert_eq!(s.size(&d).unwrap(), 5);
        assert_eq!(s.list().unwrap(), vec![d.clone()]);
        s.delete(&d).unwrap();
        assert!(matches!(s.read(&d), Err(Error::NotFound(_))));
    }

    #[test]
    fn mismatch_stores_nothing_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let wrong = Digest::of(b"other");
        let mut w = s.writer().unwrap();
        w.write_all(b"hello").unwrap();
        assert!(matches!(
            w.commit(Some(&wrong)),
            Err(Error::DigestMismatch { .. })
        ));
        assert!(s.list().unwrap().is_empty());
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
        // An abandoned writer leaves nothing either.
        let mut w = s.writer().unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
    }

    #[test]
    fn digests_parse_strictly() {
        assert!("sha256:abc".parse::<Digest>().is_err());
        assert!(
            format!("sha256:{}", "A".repeat(64))
                .parse::<Digest>()
                .is_err()
        );
        let d: Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
        assert_eq!(d.short(), "aaaaaaaaaaaa");
    }
}
