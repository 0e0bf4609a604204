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
pub fn clean(p: &Path) -> PathBuf {
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
    unpack_observed(layer, root, opts, &mut |_, _| {})
}

/// [`unpack_into`], showing every regular file's bytes to `seen` (its cleaned relative
/// path, then its data piece by piece) as they are written: a build hashes its context's
/// files this way instead of reading them back.
pub fn unpack_observed(
    layer: impl Read,
    root: BorrowedFd<'_>,
    opts: Options,
    seen: &mut dyn FnMut(&Path, &[u8]),
) -> Result<()> {
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
            EntryType::GNUSparse if sparse_size(&entry) > MAX_SPARSE => {
                return Err(Error::Archive(format!(
                    "{}: a sparse file of {} bytes is more than Berth unpacks ({MAX_SPARSE})",
                    raw_path.display(),
                    sparse_size(&entry)
                )));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                seen(&path, &[]);
                let mut watched = Watched {
                    inner: &mut entry,
                    path: &path,
                    seen: &mut *seen,
                };
                write_file(dir.as_fd(), &name_str, &mut watched, &meta)
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

/// A reader that shows what it reads to an observer.
struct Watched<'a, R> {
    inner: R,
    path: &'a Path,
    seen: &'a mut dyn FnMut(&Path, &[u8]),
}

impl<R: Read> Read for Watched<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            (self.seen)(self.path, &buf[..n]);
        }
        Ok(n)
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
    copy_sparse(data, &std::fs::File::from(fd))
}

/// The largest apparent size of a sparse file (its holes cost reading, not disk).
const MAX_SPARSE: u64 = 1 << 40;

fn sparse_size<R: Read>(entry: &tar::Entry<'_, R>) -> u64 {
    entry
        .header()
        .as_gnu()
        .and_then(|g| g.real_size().ok())
        .unwrap_or(0)
}

/// Copies `data` into `file`, leaving a hole wherever a whole block is zero: a sparse
/// file stays sparse, and an archive's holes (read back as zeros) never cost disk.
fn copy_sparse(data: &mut impl Read, file: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    const BLOCK: usize = 64 * 1024;
    static ZEROS: [u8; BLOCK] = [0; BLOCK];
    let mut buf = vec![0u8; BLOCK];
    let mut pos = 0u64;
    loop {
        let mut n = 0;
        while n < BLOCK {
            match data.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(got) => n += got,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if n == 0 {
            break;
        }
        if buf[..n] != ZEROS[..n] {
            file.write_all_at(&buf[..n], pos)?;
        }
        pos += n as u64;
    }
    // A file that ends in a hole gets its length here.
    file.set_len(pos)
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
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn paths_are_clamped_to_the_root() {
        assert_eq!(
            clean(Path::new("../../etc/passwd")),
            PathBuf::from("etc/passwd")
        );
        assert_eq!(clean(Path::new("/abs/x")), PathBuf::from("abs/x"));
        assert_eq!(clean(Path::new("./a/../b")), PathBuf::from("b"));
    }

    /// A destination inside a parent directory that also holds `outside/`, where nothing
    /// may ever appear.
    struct Scene {
        top: tempfile::TempDir,
    }

    impl Scene {
        fn new() -> Scene {
            let top = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(top.path().join("dest")).unwrap();
            std::fs::create_dir_all(top.path().join("outside")).unwrap();
            std::fs::write(top.path().join("outside/secret"), "host data").unwrap();
            Scene { top }
        }
        fn dest(&self) -> PathBuf {
            self.top.path().join("dest")
        }
        fn outside(&self) -> PathBuf {
            self.top.path().join("outside")
        }
        /// Only the secret is outside, unchanged, and nothing appeared next to `dest`.
        fn assert_outside_untouched(&self) {
            let names: Vec<_> = std::fs::read_dir(self.outside())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names, vec![std::ffi::OsString::from("secret")]);
            assert_eq!(
                std::fs::read_to_string(self.outside().join("secret")).unwrap(),
                "host data"
            );
            let top: Vec<_> = std::fs::read_dir(self.top.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(top.len(), 2, "{top:?}");
        }
    }

    fn entry(
        kind: EntryType,
        path: &str,
        link: Option<&str>,
        data: &[u8],
    ) -> (tar::Header, Vec<u8>) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        // set_path refuses `..`; the raw name field takes anything, as a hostile tar would.
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        (h, data.to_vec())
    }

    fn archive(entries: &[(tar::Header, Vec<u8>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (h, data) in entries {
            b.append(h, data.as_slice()).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn dot_dot_and_absolute_paths_stay_inside() {
        let s = Scene::new();
        let tar = archive(&[
            entry(
                EntryType::Regular,
                "../../outside/secret",
                None,
                b"overwritten",
            ),
            entry(EntryType::Regular, "/abs.txt", None, b"abs"),
        ]);
        unpack(tar.as_slice(), &s.dest()).unwrap();
        assert_eq!(
            std::fs::read_to_string(s.dest().join("outside/secret")).unwrap(),
            "overwritten"
        );
        assert_eq!(
            std::fs::read_to_string(s.dest().join("abs.txt")).unwrap(),
            "abs"
        );
        s.assert_outside_untouched();
    }

    #[test]
    fn a_symlink_out_of_the_layer_is_not_written_through() {
        let s = Scene::new();
        let outside = s.outside().display().to_string();
        let tar = archive(&[
            entry(EntryType::Symlink, "abs", Some(&outside), b""),
            entry(EntryType::Symlink, "rel", Some("../../../../outside"), b""),
            entry(EntryType::Regular, "abs/secret", None, b"via absolute link"),
            entry(EntryType::Regular, "rel/new", None, b"via relative link"),
        ]);
        // Written inside (the links resolve within the layer), never through them.
        unpack(tar.as_slice(), &s.dest()).unwrap();
        // `../../../../outside` from the layer's root is its own `/outside`.
        assert_eq!(
            std::fs::read_to_string(s.dest().join("outside/new")).unwrap(),
            "via relative link"
        );
        s.assert_outside_untouched();
    }

    #[test]
    fn a_hard_link_to_a_host_file_is_never_made() {
        let s = Scene::new();
        let secret = s.outside().join("secret").display().to_string();
        let up = s.outside().display().to_string();
        // The targets resolve inside the layer, where there is no such file: refused.
        for link in [
            vec![entry(EntryType::Link, "direct", Some(&secret), b"")],
            vec![
                entry(EntryType::Symlink, "up", Some(&up), b""),
                entry(EntryType::Link, "through", Some("up/secret"), b""),
            ],
        ] {
            let e = unpack(archive(&link).as_slice(), &s.dest()).unwrap_err();
            assert!(e.to_string().contains("extract"), "{e}");
        }
        assert_eq!(
            std::fs::metadata(s.outside().join("secret"))
                .unwrap()
                .nlink(),
            1
        );
        s.assert_outside_untouched();
    }

    #[test]
    fn device_nodes_are_made_inside() {
        let s = Scene::new();
        let mut h = entry(EntryType::Char, "dev/null", None, b"");
        h.0.set_device_major(1).unwrap();
        h.0.set_device_minor(3).unwrap();
        h.0.set_cksum();
        let tar = archive(&[h, entry(EntryType::Fifo, "../fifo", None, b"")]);
        unpack(tar.as_slice(), &s.dest()).unwrap();
        use std::os::unix::fs::FileTypeExt;
        let dev = std::fs::symlink_metadata(s.dest().join("dev/null")).unwrap();
        assert!(dev.file_type().is_char_device());
        assert_eq!(dev.rdev(), libc::makedev(1, 3));
        assert!(
            std::fs::symlink_metadata(s.dest().join("fifo"))
                .unwrap()
                .file_type()
                .is_fifo()
        );
        s.assert_outside_untouched();
    }

    /// A GNU sparse entry: `real` bytes of which only `data` (at offset 0) is stored.
    fn sparse(path: &str, real: u64, data: &[u8]) -> (tar::Header, Vec<u8>) {
        let mut h = tar::Header::new_gnu();
        h.set_path(path).unwrap();
        h.set_entry_type(EntryType::GNUSparse);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        let g = h.as_gnu_mut().unwrap();
        g.set_real_size(real);
        g.sparse[0].set_offset(0);
        g.sparse[0].set_length(data.len() as u64);
        g.sparse[1].set_offset(real);
        g.sparse[1].set_length(0);
        h.set_cksum();
        (h, data.to_vec())
    }

    #[test]
    fn huge_sparse_files_cost_no_disk_and_absurd_ones_are_refused() {
        let s = Scene::new();
        let real = 4u64 << 30;
        let tar = archive(&[sparse("holes", real, &[7u8; 512])]);
        unpack(tar.as_slice(), &s.dest()).unwrap();
        let m = std::fs::metadata(s.dest().join("holes")).unwrap();
        assert_eq!(m.len(), real);
        assert!(
            m.blocks() * 512 < (1 << 20),
            "{} bytes allocated",
            m.blocks() * 512
        );
        let s2 = Scene::new();
        let tar = archive(&[sparse("absurd", 1 << 50, &[7u8; 512])]);
        let e = unpack(tar.as_slice(), &s2.dest()).unwrap_err();
        assert!(e.to_string().contains("sparse file"), "{e}");
        s.assert_outside_untouched();
        s2.assert_outside_untouched();
    }
}
