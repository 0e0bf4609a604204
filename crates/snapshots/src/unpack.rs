//! The layer extractor. `tar`'s own `unpack` follows host symlinks while checking paths,
//! writes devices and FIFOs as empty files and knows no whiteouts; this one resolves every
//! parent inside the destination (`openat2(RESOLVE_IN_ROOT)`), never follows the last
//! component, creates device nodes, FIFOs and hard links for real, turns OCI whiteouts
//! into overlayfs ones, and restores owners, modes, extended attributes and times.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use berth_sys::inroot;
use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid};
use tar::EntryType;

use crate::{Error, Result, io_err};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// A path from an archive, made relative with `..` resolved lexically and clamped at the
/// root (so `../../etc/x` means `etc/x` inside the destination).
fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(x) => out.push(x),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
}

/// How an archive is extracted.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// `.wh.` entries become overlayfs whiteouts (layers); otherwise they are plain files.
    pub whiteouts: bool,
    /// Owner every entry gets instead of the archive's (`docker cp` without `-a`).
    pub owner: Option<(u32, u32)>,
}

impl Options {
    /// For image layers.
    pub const LAYER: Options = Options {
        whiteouts: true,
        owner: None,
    };
}

/// Extracts the tar stream `layer` into `dest` (an existing, empty directory).
pub fn unpack(layer: impl Read, dest: &Path) -> Result<()> {
    let root = rustix::fs::open(
        dest,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err(format!("open {}", dest.display()))(e.into()))?;
    unpack_into(layer, root.as_fd(), Options::LAYER)
}

/// Extracts the tar stream `archive` under the directory `root` (nothing outside it can
/// be reached: every parent is resolved with `RESOLVE_IN_ROOT`, no last component is
/// followed), merging with what is there.
pub fn unpack_into(layer: impl Read, root: BorrowedFd<'_>, opts: Options) -> Result<()> {
    let mut archive = tar::Archive::new(layer);
    let entries = archive
        .entries()
        .map_err(|e| Error::Archive(e.to_string()))?;
    // Directory times are set last: creating their children would change them again.
    let mut dir_times: Vec<(PathBuf, i64)> = Vec::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::Archive(e.to_string()))?;
        let raw_path = entry
            .path()
            .map_err(|e| Error::Archive(e.to_string()))?
            .into_owned();
        let path = clean(&raw_path);
        let header = entry.header();
        let mut meta = Meta {
            mode: header.mode().map_err(|e| Error::Archive(e.to_string()))? & 0o7777,
            uid: header.uid().map_err(|e| Error::Archive(e.to_string()))? as u32,
            gid: header.gid().map_err(|e| Error::Archive(e.to_string()))? as u32,
            mtime: header.mtime().unwrap_or(0) as i64,
        };
        if let Some((uid, gid)) = opts.owner {
            (meta.uid, meta.gid) = (uid, gid);
        }
        let kind = header.entry_type();
        let context = || format!("extract {}", raw_path.display());
        let (Some(name), parent) = (
            path.file_name().map(|n| n.to_os_string()),
            path.parent().unwrap_or(Path::new("")),
        ) else {
            continue; // the root itself ("./")
        };
        let name_str = name.to_string_lossy().into_owned();
        let dir =
            inroot::reopen_dir(&inroot::mkdir_all(root, parent, 0o755).map_err(io_err(context()))?)
                .map_err(io_err(context()))?;
        if opts.whiteouts && name_str == OPAQUE_MARKER {
            rustix::fs::fsetxattr(
                &dir,
                "trusted.overlay.opaque",
                b"y",
                rustix::fs::XattrFlags::empty(),
            )
            .map_err(|e| io_err(context())(e.into()))?;
            continue;
        }
        if let Some(hidden) = name_str
            .strip_prefix(WHITEOUT_PREFIX)
            .filter(|_| opts.whiteouts)
        {
            remove_existing(dir.as_fd(), hidden);
            let dev = rustix::fs::makedev(0, 0);
            rustix::fs::mknodat(&dir, hidden, FileType::CharacterDevice, Mode::empty(), dev)
                .map_err(|e| io_err(context())(e.into()))?;
            continue;
        }
        let is_dir = kind == EntryType::Directory;
        if !is_dir {
            remove_existing(dir.as_fd(), &name_str);
        }
        let created = match kind {
            EntryType::Directory => make_dir(dir.as_fd(), &name_str, &meta),
            EntryType::Regular | EntryType::Continuous => {
                write_file(dir.as_fd(), &name_str, &mut entry, &meta)
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(|e| Error::Archive(e.to_string()))?
                    .unwrap_or_default();
                rustix::fs::symlinkat(target.as_ref(), &dir, name_str.as_str()).map_err(Into::into)
            }
            EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(|e| Error::Archive(e.to_string()))?
                    .unwrap_or_default();
                hard_link(root, &clean(&target), dir.as_fd(), &name_str)
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let ft = match kind {
                    EntryType::Char => FileType::CharacterDevice,
                    EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                rustix::fs::mknodat(
                    &dir,
                    name_str.as_str(),
                    ft,
                    Mode::from_raw_mode(meta.mode),
                    rustix::fs::makedev(major, minor),
                )
                .map_err(Into::into)
            }
            // PAX and GNU long-name headers are consumed by the reader; others carry nothing.
            _ => continue,
        };
        created.map_err(io_err(context()))?;
        apply_xattrs(dir.as_fd(), &name_str, &mut entry, kind);
        // A hard link shares its target's inode: its own header must not re-own it.
        if kind != EntryType::Link {
            let symlink = kind == EntryType::Symlink;
            set_owner_mode(dir.as_fd(), &name_str, &meta, symlink).map_err(io_err(context()))?;
        }
        if is_dir {
            dir_times.push((path.clone(), meta.mtime));
        } else if kind != EntryType::Link {
            set_mtime(dir.as_fd(), &name_str, meta.mtime);
        }
    }
    for (path, mtime) in dir_times.iter().rev() {
        if let (Some(name), Some(parent)) = (path.file_name(), path.parent())
            && let Ok(d) = inroot::open(root, parent, OFlags::RDONLY | OFlags::DIRECTORY)
        {
            set_mtime(d.as_fd(), &name.to_string_lossy(), *mtime);
        }
    }
    Ok(())
}

/// A later layer entry replaces what an earlier one (or a whiteout) left at the name.
fn remove_existing(dir: BorrowedFd<'_>, name: &str) {
    if rustix::fs::unlinkat(dir, name, AtFlags::empty()).is_err() {
        let _ = rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR);
    }
}

fn make_dir(dir: BorrowedFd<'_>, name: &str, meta: &Meta) -> std::io::Result<()> {
    match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(meta.mode)) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::EXIST) => {
            // An existing directory is kept (its contents merge); anything else is replaced.
            let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
            if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                Ok(())
            } else {
                remove_existing(dir, name);
                rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(meta.mode)).map_err(Into::into)
            }
        }
        Err(e) => Err(e.into()),
    }
}

fn write_file(
    dir: BorrowedFd<'_>,
    name: &str,
    data: &mut impl Read,
    meta: &Meta,
) -> std::io::Result<()> {
    let fd: OwnedFd = rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(meta.mode & 0o777),
    )?;
    let mut file = std::fs::File::from(fd);
    std::io::copy(data, &mut file)?;
    Ok(())
}

/// Links `name` to `target`, both confined to the root.
fn hard_link(
    root: BorrowedFd<'_>,
    target: &Path,
    dir: BorrowedFd<'_>,
    name: &str,
) -> std::io::Result<()> {
    let (tparent, tname) = inroot::split(target)?;
    let tdir = inroot::reopen_dir(&inroot::open_path(root, tparent)?)?;
    rustix::fs::linkat(&tdir, tname, dir, name, AtFlags::empty()).map_err(Into::into)
}

fn set_owner_mode(
    dir: BorrowedFd<'_>,
    name: &str,
    meta: &Meta,
    is_symlink: bool,
) -> std::io::Result<()> {
    rustix::fs::chownat(
        dir,
        name,
        Some(Uid::from_raw(meta.uid)),
        Some(Gid::from_raw(meta.gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    // chown clears set-id bits, so the mode goes on afterwards; symlinks have no mode.
    if !is_symlink {
        rustix::fs::chmodat(dir, name, Mode::from_raw_mode(meta.mode), AtFlags::empty())?;
    }
    Ok(())
}

fn set_mtime(dir: BorrowedFd<'_>, name: &str, mtime: i64) {
    let t = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    let times = Timestamps {
        last_access: t,
        last_modification: t,
    };
    let _ = rustix::fs::utimensat(dir, name, &times, AtFlags::SYMLINK_NOFOLLOW);
}

/// PAX `SCHILY.xattr.*` records become extended attributes (files and directories only).
fn apply_xattrs<R: Read>(
    dir: BorrowedFd<'_>,
    name: &str,
    entry: &mut tar::Entry<'_, R>,
    kind: EntryType,
) {
    if !matches!(
        kind,
        EntryType::Regular | EntryType::Continuous | EntryType::Directory
    ) {
        return;
    }
    let Ok(Some(exts)) = entry.pax_extensions() else {
        return;
    };
    let attrs: Vec<(String, Vec<u8>)> = exts
        .flatten()
        .filter_map(|e| {
            Some((
                e.key().ok()?.strip_prefix("SCHILY.xattr.")?.to_string(),
                e.value_bytes().to_vec(),
            ))
        })
        .collect();
    if attrs.is_empty() {
        return;
    }
    let flags = if kind == EntryType::Directory {
        OFlags::RDONLY | OFlags::DIRECTORY
    } else {
        OFlags::RDONLY
    };
    let Ok(fd) = rustix::fs::openat(
        dir,
        name,
        flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return;
    };
    for (k, v) in attrs {
        let _ = rustix::fs::fsetxattr(&fd, k.as_str(), &v, rustix::fs::XattrFlags::empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_clamped_to_the_root() {
        assert_eq!(
            clean(Path::new("../../etc/passwd")),
            PathBuf::from("etc/passwd")
        );
        assert_eq!(clean(Path::new("/abs/x")), PathBuf::from("abs/x"));
        assert_eq!(clean(Path::new("./a/../b")), PathBuf::from("b"));
    }
}
