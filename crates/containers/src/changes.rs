//! `docker diff`: what a container changed, read from its overlay upper directory.
//! Whiteouts (0/0 character devices) are deletions; an entry that also exists in an image
//! layer is a change, otherwise an addition. Directories that only hold changed entries
//! are in the upper directory too (overlayfs copies them up), so `/tmp` shows as changed
//! when a file in it is added, as with Docker.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Docker's change kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Changed (0).
    Modified = 0,
    /// Added (1).
    Added = 1,
    /// Deleted (2).
    Deleted = 2,
}

/// Mount points the engine makes in every container (Docker keeps them in an "init"
/// layer below the container's own, so `docker diff` never shows them).
pub(crate) const ENGINE_PATHS: &[&str] = &[
    "/dev",
    "/dev/pts",
    "/dev/shm",
    "/dev/mqueue",
    "/dev/console",
    "/proc",
    "/sys",
    "/sys/fs/cgroup",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/mtab",
    "/.dockerenv",
    "/sbin/docker-init",
];

/// Changes between `lower` (image layers, topmost first) and `upper`, sorted by path,
/// without the engine's own mount points and the directories that hold only them.
pub fn changes(upper: &Path, lower: &[PathBuf]) -> Vec<(String, Kind)> {
    let mut out = Vec::new();
    walk(upper, Path::new("/"), lower, &mut out);
    out.retain(|(p, _)| !ENGINE_PATHS.contains(&p.as_str()));
    let holds_only_engine_paths = |dir: &str, all: &[(String, Kind)]| {
        let prefix = format!("{dir}/");
        ENGINE_PATHS.iter().any(|e| e.starts_with(&prefix))
            && !all.iter().any(|(p, _)| p.starts_with(&prefix))
    };
    let snapshot = out.clone();
    out.retain(|(p, _)| !holds_only_engine_paths(p, &snapshot));
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn in_lower(lower: &[PathBuf], rel: &Path) -> bool {
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    lower
        .iter()
        .any(|l| std::fs::symlink_metadata(l.join(rel)).is_ok())
}

fn walk(dir: &Path, rel: &Path, lower: &[PathBuf], out: &mut Vec<(String, Kind)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = rel.join(e.file_name());
        let Ok(meta) = e.metadata() else { continue };
        let whiteout = meta.file_type().is_char_device() && meta.rdev() == 0;
        let kind = if whiteout {
            Kind::Deleted
        } else if in_lower(lower, &path) {
            Kind::Modified
        } else {
            Kind::Added
        };
        out.push((path.display().to_string(), kind));
        // An added directory's contents are all additions and are listed too.
        if meta.is_dir() {
            walk(&e.path(), &path, lower, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn additions_changes_and_deletions() {
        let lower = tempfile::tempdir().unwrap();
        let upper = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(lower.path().join("etc")).unwrap();
        std::fs::write(lower.path().join("etc/passwd"), "x").unwrap();
        std::fs::write(lower.path().join("gone"), "x").unwrap();
        std::fs::create_dir_all(upper.path().join("etc")).unwrap();
        std::fs::write(upper.path().join("etc/passwd"), "y").unwrap();
        std::fs::write(upper.path().join("etc/new"), "z").unwrap();
        let c = std::ffi::CString::new(upper.path().join("gone").to_str().unwrap()).unwrap();
        // SAFETY: mknod with a NUL-terminated path in a test directory.
        let made = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, 0) };
        assert_eq!(made, 0);
        let got = changes(upper.path(), &[lower.path().to_path_buf()]);
        assert_eq!(
            got,
            vec![
                ("/etc".to_string(), Kind::Modified),
                ("/etc/new".to_string(), Kind::Added),
                ("/etc/passwd".to_string(), Kind::Modified),
                ("/gone".to_string(), Kind::Deleted),
            ]
        );
    }
}
