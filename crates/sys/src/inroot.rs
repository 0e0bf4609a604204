//! Path resolution confined to a container's root: every lookup goes through openat2 with
//! RESOLVE_IN_ROOT, so a symlink in an image (`/proc -> /`, `/etc -> /host/etc`) resolves
//! inside the rootfs and a mount can never land on the host.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
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
/// handle on it. Symlinks along the way are followed, confined to `root`; a dangling one
/// gets its target created, as `mkdir -p` through a symlink would.
pub fn mkdir_all(root: BorrowedFd<'_>, path: &Path, mode: u32) -> io::Result<OwnedFd> {
    let mut pending: std::collections::VecDeque<std::ffi::OsString> =
        relative(path).iter().map(|c| c.to_os_string()).collect();
    let mut so_far = PathBuf::new();
    let mut hops = 0;
    while let Some(comp) = pending.pop_front() {
        if comp == ".." {
            so_far.pop();
            continue;
        }
        let candidate = so_far.join(&comp);
        match open(root, &candidate, OFlags::PATH | OFlags::DIRECTORY) {
            Ok(_) => {
                so_far = candidate;
                continue;
            }
            Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
            Err(_) => {}
        }
        let parent = reopen_dir(&open(root, &so_far, OFlags::PATH | OFlags::DIRECTORY)?)?;
        match rustix::fs::readlinkat(parent.as_fd(), comp.as_os_str(), Vec::new()) {
            Ok(target) => {
                hops += 1;
                if hops > 40 {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = PathBuf::from(std::ffi::OsStr::from_bytes(target.as_bytes()));
                if target.is_absolute() {
                    so_far = PathBuf::new();
                }
                for c in target.iter().rev().filter(|c| *c != "/") {
                    pending.push_front(c.to_os_string());
                }
            }
            Err(_) => {
                match rustix::fs::mkdirat(
                    parent.as_fd(),
                    comp.as_os_str(),
                    Mode::from_raw_mode(mode),
                ) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                so_far = candidate;
            }
        }
    }
    open(root, &so_far, OFlags::PATH | OFlags::DIRECTORY)
}

/// Makes sure a regular file exists at `path` inside `root` (creating parent directories,
/// and the target of a dangling symlink), for bind-mounting a file onto it; returns an
/// O_PATH handle on it.
pub fn ensure_file(root: BorrowedFd<'_>, path: &Path) -> io::Result<OwnedFd> {
    let mut path = path.to_path_buf();
    for _ in 0..40 {
        if let Ok(fd) = open_path(root, &path) {
            return Ok(fd);
        }
        let (parent, name) = split(&path)?;
        let dir = reopen_dir(&mkdir_all(root, parent, 0o755)?)?;
        match rustix::fs::openat(
            dir.as_fd(),
            name,
            OFlags::CREATE | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        ) {
            Ok(_) | Err(rustix::io::Errno::EXIST) => return open_path(root, &path),
            Err(rustix::io::Errno::LOOP) => {
                let target = rustix::fs::readlinkat(dir.as_fd(), name, Vec::new())?;
                let target = PathBuf::from(std::ffi::OsStr::from_bytes(target.as_bytes()));
                path = if target.is_absolute() {
                    target
                } else {
                    parent.join(target)
                };
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::Error::from_raw_os_error(libc::ELOOP))
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
        symlink(outside.path().join("dangling-dir"), root.path().join("dd")).unwrap();
        mkdir_all(rootfd.as_fd(), Path::new("/dd/sub"), 0o755).unwrap();
        symlink("/elsewhere/f", root.path().join("df")).unwrap();
        ensure_file(rootfd.as_fd(), Path::new("/df")).unwrap();
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
        assert!(!outside.path().join("dangling-dir").exists());
        let inside = root.path().join(outside.path().strip_prefix("/").unwrap());
        assert!(inside.join("dangling-dir/sub").is_dir());
        assert!(root.path().join("elsewhere/f").is_file());
    }
}
