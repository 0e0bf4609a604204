//! Path resolution confined to a container's root: every lookup goes through openat2 with
//! RESOLVE_IN_ROOT, so a symlink in an image (`/proc -> /`, `/etc -> /host/etc`) resolves
//! inside the rootfs and a mount can never land on the host.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

fn resolve_flags() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

/// Opens `path` (taken as relative to `root` even if absolute) confined to `root`.
pub fn open(root: BorrowedFd<'_>, path: &Path, flags: OFlags) -> io::Result<OwnedFd> {
    let rel = relative(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        &rel
    };
    loop {
        match rustix::fs::openat2(
            root,
            rel,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            resolve_flags(),
        ) {
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => continue,
            r => return r.map_err(io::Error::from),
        }
    }
}

/// An O_PATH handle on `path` inside `root`.
pub fn open_path(root: BorrowedFd<'_>, path: &Path) -> io::Result<OwnedFd> {
    open(root, path, OFlags::PATH)
}

fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| matches!(c, Component::Normal(_) | Component::ParentDir))
        .collect()
}

/// Creates the directory `path` and its missing parents inside `root` and returns an O_PATH
/// handle on it. Existing symlinks along the way are followed, confined to `root`.
pub fn mkdir_all(root: BorrowedFd<'_>, path: &Path, mode: u32) -> io::Result<OwnedFd> {
    let rel = relative(path);
    let mut cur = open(root, Path::new("."), OFlags::PATH | OFlags::DIRECTORY)?;
    let mut so_far = PathBuf::new();
    for comp in rel.components() {
        so_far.push(comp);
        cur = match open(root, &so_far, OFlags::PATH | OFlags::DIRECTORY) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let name = comp.as_os_str();
                match rustix::fs::mkdirat(cur.as_fd(), name, Mode::from_raw_mode(mode)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                open(root, &so_far, OFlags::PATH | OFlags::DIRECTORY)?
            }
            Err(e) => return Err(e),
        };
    }
    Ok(cur)
}

/// Makes sure a regular file exists at `path` inside `root` (creating parent directories),
/// for bind-mounting a file onto it; returns an O_PATH handle on it.
pub fn ensure_file(root: BorrowedFd<'_>, path: &Path) -> io::Result<OwnedFd> {
    if let Ok(fd) = open_path(root, path) {
        return Ok(fd);
    }
    let (parent, name) = split(path)?;
    let dir = mkdir_all(root, parent, 0o755)?;
    let dir = reopen_dir(&dir)?;
    match rustix::fs::openat(
        dir.as_fd(),
        name,
        OFlags::CREATE | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    ) {
        Ok(_) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(e.into()),
    }
    open_path(root, path)
}

/// Splits a path into its parent and final name; the root itself has no name.
pub fn split(path: &Path) -> io::Result<(&Path, &std::ffi::OsStr)> {
    match (path.parent(), path.file_name()) {
        (Some(p), Some(n)) => Ok((p, n)),
        _ => Err(io::Error::from_raw_os_error(libc::EINVAL)),
    }
}

/// Turns an O_PATH directory handle into one usable as a `*at` base for creating entries.
pub fn reopen_dir(fd: &OwnedFd) -> io::Result<OwnedFd> {
    rustix::fs::openat(
        fd.as_fd(),
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(Into::into)
}

/// The /proc path that names an open descriptor, for mount(2) targets.
pub fn fd_path(fd: &impl AsFd) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_stay_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        symlink(outside.path(), root.path().join("escape")).unwrap();
        symlink("../../../..", root.path().join("up")).unwrap();
        let rootfd =
            rustix::fs::open(root.path(), OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        mkdir_all(rootfd.as_fd(), Path::new("/escape/x"), 0o755).unwrap();
        mkdir_all(rootfd.as_fd(), Path::new("/up/y"), 0o755).unwrap();
        ensure_file(rootfd.as_fd(), Path::new("/up/z/file")).unwrap();
        // Both resolved inside the root: the absolute symlink target is re-rooted.
        assert!(!outside.path().join("x").exists());
        assert!(
            root.path()
                .join(outside.path().strip_prefix("/").unwrap())
                .join("x")
                .is_dir()
        );
        assert!(root.path().join("y").is_dir());
        assert!(root.path().join("z/file").is_file());
    }
}
