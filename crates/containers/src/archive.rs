//! `docker cp` and `docker export`: the archive API (`HEAD`/`GET`/`PUT
//! /containers/{id}/archive`) and `GET /containers/{id}/export`.
//!
//! Safety (the CVE-2018-15664 class): a path is resolved once, by the kernel, with
//! `openat2(RESOLVE_IN_ROOT)` against the container's root, so no symlink the container
//! holds (or swaps in while we work) can lead outside it; everything after that goes
//! through descriptors, opening children with `O_NOFOLLOW`. A running container's root
//! is `/proc/<pid>/root`, which also shows its volumes and binds; a stopped one's rootfs
//! is mounted for the operation (its volumes are not visible then).

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use berth_sys::inroot;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use serde_json::{Value, json};

use crate::{ContainerRecord, ContainerService, Error, Result, Slot, internal};

/// A container's filesystem, open for one operation.
struct Root<'a> {
    fd: OwnedFd,
    /// The rootfs mounted for this operation (stopped containers), unmounted on drop.
    mounted: Option<&'a ContainerService>,
    id: String,
    _slot: Option<Slot<'a>>,
}

impl Drop for Root<'_> {
    fn drop(&mut self) {
        if let Some(svc) = self.mounted {
            svc.unmount_rootfs(&self.id);
        }
    }
}

/// Go's `os.FileMode` bits, which the docker CLI reads in the path stat.
fn go_mode(st: &rustix::fs::Stat) -> u32 {
    let perm = st.st_mode & 0o777;
    let mut mode = perm;
    if st.st_mode & 0o4000 != 0 {
        mode |= 1 << 23;
    }
    if st.st_mode & 0o2000 != 0 {
        mode |= 1 << 22;
    }
    if st.st_mode & 0o1000 != 0 {
        mode |= 1 << 20;
    }
    mode | match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => 1 << 31,
        FileType::Symlink => 1 << 27,
        FileType::BlockDevice => 1 << 26,
        FileType::CharacterDevice => (1 << 26) | (1 << 21),
        FileType::Fifo => 1 << 25,
        FileType::Socket => 1 << 24,
        _ => 0,
    }
}

fn not_found(path: &str, rec: &ContainerRecord) -> Error {
    Error::Missing(format!(
        "Could not find the file {path} in container {}",
        rec.name
    ))
}

/// The parent directory (resolved in the root) and the last name of `path`; the root
/// itself is `(root, ".")`.
fn locate(root: BorrowedFd<'_>, path: &str) -> std::io::Result<(OwnedFd, String)> {
    let trimmed = path.trim_end_matches('/');
    let p = Path::new(if trimmed.is_empty() { "/" } else { trimmed });
    match inroot::split(p) {
        Ok((parent, name)) if name != "." => {
            let dir = inroot::reopen_dir(&inroot::open_path(root, parent)?)?;
            Ok((dir, name.to_string_lossy().into_owned()))
        }
        _ => {
            let base = inroot::reopen_dir(&inroot::open_path(root, p)?)?;
            Ok((base, ".".into()))
        }
    }
}

impl ContainerService {
    /// Opens the container's filesystem: `/proc/<pid>/root` while it runs, else its rootfs
    /// mounted for the operation (no start can happen meanwhile).
    fn open_root(&self, name: &str) -> Result<(ContainerRecord, Root<'_>)> {
        let rec = self.get(name)?;
        if matches!(rec.state.status.as_str(), "running" | "paused") && rec.state.pid > 0 {
            let fd = rustix::fs::open(
                format!("/proc/{}/root", rec.state.pid),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(internal)?;
            let id = rec.id.clone();
            return Ok((
                rec,
                Root {
                    fd,
                    mounted: None,
                    id,
                    _slot: None,
                },
            ));
        }
        let slot = self.wait_for_slot(&rec.id);
        let rec = self.get(&rec.id)?;
        let rootfs = self.mount_rootfs(&rec)?;
        let root = Root {
            fd: rustix::fs::open(
                &rootfs,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(internal)?,
            mounted: Some(self),
            id: rec.id.clone(),
            _slot: Some(slot),
        };
        // Its volumes and binds on top, as it would see them (they go with the rootfs's
        // detached unmount).
        for m in self.all_mounts(&rec)?.iter().filter(|m| m.kind != "tmpfs") {
            let source = if m.kind == "volume" {
                self.volumes
                    .prepare(&m.name)
                    .map_err(crate::volumes::volume_error)?
            } else {
                PathBuf::from(&m.source)
            };
            let target = inroot::mkdir_all(root.fd.as_fd(), Path::new(&m.target), 0o755)
                .map_err(|e| Error::Internal(format!("mount point {}: {e}", m.target)))?;
            rustix::mount::mount_bind_recursive(&source, inroot::fd_path(&target)).map_err(
                |e| Error::Internal(format!("mount {} at {}: {e}", source.display(), m.target)),
            )?;
        }
        Ok((rec, root))
    }

    /// `HEAD /containers/{id}/archive`: Docker's path stat (name, size, mode, mtime,
    /// link target).
    pub fn archive_stat(&self, name: &str, path: &str) -> Result<Value> {
        let (rec, root) = self.open_root(name)?;
        let (dir, last) = locate(root.fd.as_fd(), path).map_err(|_| not_found(path, &rec))?;
        let st = rustix::fs::statat(&dir, last.as_str(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|_| not_found(path, &rec))?;
        let link = if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
            let target =
                rustix::fs::readlinkat(&dir, last.as_str(), Vec::new()).map_err(internal)?;
            let target = target.to_string_lossy().into_owned();
            if target.starts_with('/') {
                target
            } else {
                let parent = Path::new(path.trim_end_matches('/'))
                    .parent()
                    .unwrap_or(Path::new("/"));
                parent.join(target).display().to_string()
            }
        } else {
            String::new()
        };
        let mtime = std::time::UNIX_EPOCH
            + std::time::Duration::new(st.st_mtime.max(0) as u64, st.st_mtime_nsec as u32);
        let shown = if last == "." {
            Path::new(path)
                .file_name()
                .map_or("/".to_string(), |n| n.to_string_lossy().into_owned())
        } else {
            last
        };
        Ok(json!({
            "name": shown,
            "size": st.st_size,
            "mode": go_mode(&st),
            "mtime": berth_types::time::rfc3339(mtime),
            "linkTarget": link,
        }))
    }

    /// `GET /containers/{id}/archive`: a tar of `path` (a file, or a directory and what is
    /// under it) named by its last component; symlinks are archived as links.
    pub fn archive_get(&self, name: &str, path: &str, out: &mut dyn Write) -> Result<()> {
        let (rec, root) = self.open_root(name)?;
        let (dir, last) = locate(root.fd.as_fd(), path).map_err(|_| not_found(path, &rec))?;
        let top = if last == "." {
            Path::new(path.trim_end_matches('/'))
                .file_name()
                .map_or(".".into(), |n| n.to_string_lossy().into_owned())
        } else {
            last.clone()
        };
        let top = if path.ends_with("/.") {
            ".".to_string()
        } else {
            top
        };
        let mut tar = tar::Builder::new(out);
        tar.follow_symlinks(false);
        if last == "." {
            let me = rustix::fs::openat(
                &dir,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(internal)?;
            let st = rustix::fs::fstat(&me).map_err(internal)?;
            append_dir(&mut tar, &me, &st, &top)?;
        } else {
            append_entry(&mut tar, dir.as_fd(), &last, &top)?;
        }
        tar.finish().map_err(internal)?;
        self.emit(&rec, "archive-path");
        Ok(())
    }

    /// `PUT /containers/{id}/archive`: extracts `input` into the directory `path`,
    /// confined to it; entries are owned by the container's root unless `copy_uid_gid`.
    pub fn archive_put(
        &self,
        name: &str,
        path: &str,
        copy_uid_gid: bool,
        input: &mut dyn Read,
    ) -> Result<()> {
        let (rec, root) = self.open_root(name)?;
        if rec.host_config["ReadonlyRootfs"].as_bool() == Some(true) {
            return Err(Error::Conflict(
                "container rootfs is marked read-only".into(),
            ));
        }
        let target = inroot::open_path(root.fd.as_fd(), Path::new(path))
            .map_err(|_| not_found(path, &rec))?;
        let st = rustix::fs::fstat(&target).map_err(internal)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            return Err(Error::InvalidInput(format!(
                "extraction point is not a directory: {path}"
            )));
        }
        let opts = berth_snapshots::unpack::Options {
            whiteouts: false,
            owner: if copy_uid_gid { None } else { Some((0, 0)) },
        };
        berth_snapshots::unpack::unpack_into(input, target.as_fd(), opts)
            .map_err(|e| Error::InvalidInput(format!("copy into the container: {e}")))?;
        self.emit(&rec, "extract-to-dir");
        Ok(())
    }

    /// `GET /containers/{id}/export`: the container's root filesystem (without its
    /// volumes and binds) as one tar.
    pub fn export(&self, name: &str, out: &mut dyn Write) -> Result<()> {
        let rec = self.get(name)?;
        let running = matches!(rec.state.status.as_str(), "running" | "paused");
        let _slot = (!running).then(|| self.wait_for_slot(&rec.id));
        let rootfs: PathBuf = if running {
            self.rootfs(&rec.id)
        } else {
            self.mount_rootfs(&rec)?
        };
        let result = (|| -> Result<()> {
            let dir = rustix::fs::open(
                &rootfs,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(internal)?;
            let mut tar = tar::Builder::new(out);
            tar.follow_symlinks(false);
            append_children(&mut tar, &dir, "")?;
            tar.finish().map_err(internal)
        })();
        if !running {
            self.unmount_rootfs(&rec.id);
        }
        if result.is_ok() {
            self.emit(&rec, "export");
        }
        result
    }
}

type Tar<'w> = tar::Builder<&'w mut dyn Write>;

fn header_for(st: &rustix::fs::Stat, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

/// Appends the entry `name` of `dir` as `archive_path`, without following it.
fn append_entry(
    tar: &mut Tar<'_>,
    dir: BorrowedFd<'_>,
    name: &str,
    archive_path: &str,
) -> Result<()> {
    let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        // Gone since it was listed (the container is running): nothing to copy.
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(internal(e)),
    };
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => {
            let Ok(sub) = rustix::fs::openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) else {
                return Ok(());
            };
            append_dir(tar, &sub, &st, archive_path)
        }
        FileType::RegularFile => {
            let Ok(fd) = rustix::fs::openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) else {
                return Ok(());
            };
            // The size from the open file: it may have changed since the stat.
            let st = rustix::fs::fstat(&fd).map_err(internal)?;
            let mut h = header_for(&st, tar::EntryType::Regular);
            h.set_size(st.st_size as u64);
            let file = std::fs::File::from(fd);
            tar.append_data(&mut h, archive_path, file.take(st.st_size as u64))
                .map_err(internal)
        }
        FileType::Symlink => {
            let target = rustix::fs::readlinkat(dir, name, Vec::new()).map_err(internal)?;
            let mut h = header_for(&st, tar::EntryType::Symlink);
            tar.append_link(&mut h, archive_path, target.to_string_lossy().as_ref())
                .map_err(internal)
        }
        kind @ (FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo) => {
            let entry = match kind {
                FileType::CharacterDevice => tar::EntryType::Char,
                FileType::BlockDevice => tar::EntryType::Block,
                _ => tar::EntryType::Fifo,
            };
            let mut h = header_for(&st, entry);
            let _ = h.set_device_major(rustix::fs::major(st.st_rdev));
            let _ = h.set_device_minor(rustix::fs::minor(st.st_rdev));
            tar.append_data(&mut h, archive_path, std::io::empty())
                .map_err(internal)
        }
        // Sockets cannot be archived.
        _ => Ok(()),
    }
}

fn append_dir(
    tar: &mut Tar<'_>,
    dir: &OwnedFd,
    st: &rustix::fs::Stat,
    archive_path: &str,
) -> Result<()> {
    let mut h = header_for(st, tar::EntryType::Directory);
    tar.append_data(&mut h, format!("{archive_path}/"), std::io::empty())
        .map_err(internal)?;
    append_children(tar, dir, archive_path)
}

/// The entries of a directory, sorted (archives list them in a stable order).
fn sorted_names(dir: &OwnedFd) -> Result<Vec<String>> {
    let mut names: Vec<String> = rustix::fs::Dir::read_from(dir)
        .map_err(internal)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "." && n != "..")
        .collect();
    names.sort();
    Ok(names)
}

fn append_children(tar: &mut Tar<'_>, dir: &OwnedFd, prefix: &str) -> Result<()> {
    for n in sorted_names(dir)? {
        let path = if prefix.is_empty() {
            n.clone()
        } else {
            format!("{prefix}/{n}")
        };
        append_entry(tar, dir.as_fd(), &n, &path)?;
    }
    Ok(())
}

/// Writes the container's writable layer (the overlay upper directory) as an image layer:
/// overlayfs whiteouts (0/0 character devices) become `.wh.<name>` entries and opaque
/// directories get a `.wh..wh..opq` marker.
/// A mount point the engine made (an empty `/etc/hosts`, `/proc`, a `/dev` holding only
/// such points): Docker keeps these in an init layer, so commits never carry them.
fn is_engine_stub(dir: BorrowedFd<'_>, name: &str, path: &str, kind: FileType, size: i64) -> bool {
    if !crate::changes::ENGINE_PATHS.contains(&path) {
        return false;
    }
    match kind {
        FileType::RegularFile => size == 0,
        FileType::Directory => {
            let Ok(sub) = rustix::fs::openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) else {
                return false;
            };
            sorted_names(&sub).is_ok_and(|names| {
                names.iter().all(|c| {
                    rustix::fs::statat(&sub, c.as_str(), AtFlags::SYMLINK_NOFOLLOW).is_ok_and(
                        |st| {
                            is_engine_stub(
                                sub.as_fd(),
                                c,
                                &format!("{path}/{c}"),
                                FileType::from_raw_mode(st.st_mode),
                                st.st_size,
                            )
                        },
                    )
                })
            })
        }
        _ => false,
    }
}

pub(crate) fn diff_tar(upper: &Path, out: &mut dyn Write) -> Result<()> {
    let dir = rustix::fs::open(
        upper,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(internal)?;
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    append_diff_children(&mut tar, &dir, "")?;
    tar.finish().map_err(internal)
}

fn append_diff_children(tar: &mut Tar<'_>, dir: &OwnedFd, prefix: &str) -> Result<()> {
    let names = sorted_names(dir)?;
    let join = |n: &str| {
        if prefix.is_empty() {
            n.to_string()
        } else {
            format!("{prefix}/{n}")
        }
    };
    for n in names {
        let st =
            rustix::fs::statat(dir, n.as_str(), AtFlags::SYMLINK_NOFOLLOW).map_err(internal)?;
        let kind = FileType::from_raw_mode(st.st_mode);
        if is_engine_stub(dir.as_fd(), &n, &format!("/{}", join(&n)), kind, st.st_size) {
            continue;
        }
        if kind == FileType::CharacterDevice && st.st_rdev == 0 {
            let mut h = header_for(&st, tar::EntryType::Regular);
            h.set_mode(0o644);
            tar.append_data(&mut h, join(&format!(".wh.{n}")), std::io::empty())
                .map_err(internal)?;
            continue;
        }
        if kind != FileType::Directory {
            append_entry(tar, dir.as_fd(), &n, &join(&n))?;
            continue;
        }
        let sub = rustix::fs::openat(
            dir,
            n.as_str(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(internal)?;
        let mut h = header_for(&st, tar::EntryType::Directory);
        tar.append_data(&mut h, format!("{}/", join(&n)), std::io::empty())
            .map_err(internal)?;
        let mut flag = [0u8; 1];
        let opaque = rustix::fs::fgetxattr(&sub, "trusted.overlay.opaque", &mut flag)
            .is_ok_and(|len| len == 1 && flag[0] == b'y');
        if opaque {
            let mut m = header_for(&st, tar::EntryType::Regular);
            m.set_mode(0o644);
            tar.append_data(
                &mut m,
                format!("{}/.wh..wh..opq", join(&n)),
                std::io::empty(),
            )
            .map_err(internal)?;
        }
        append_diff_children(tar, &sub, &join(&n))?;
    }
    Ok(())
}

impl ContainerService {
    /// `POST /commit`: the container's changes as a new layer over its image, configured
    /// from its config (with `overrides` from the request and the options' changes). The
    /// container is paused meanwhile when it runs and `pause` is set.
    pub fn commit(
        &self,
        name: &str,
        overrides: &Value,
        opts: &berth_images::CommitOptions,
        pause: bool,
    ) -> Result<String> {
        let rec = self.get(name)?;
        // A container that exits meanwhile cannot be paused, and need not be.
        let paused_here = pause && rec.state.status == "running" && self.pause(&rec.id).is_ok();
        let result = {
            let mut config = rec.config.clone();
            if let (Some(c), Some(o)) = (config.as_object_mut(), overrides.as_object()) {
                for (k, v) in o {
                    if !v.is_null() {
                        c.insert(k.clone(), v.clone());
                    }
                }
            }
            let mut opts = opts.clone();
            if opts.created_by.is_empty() {
                opts.created_by = crate::spec::argv(&rec.config).unwrap_or_default().join(" ");
            }
            self.commit_layer(&rec, &config, &opts)
        };
        if paused_here {
            let _ = self.unpause(&rec.id);
        }
        if let Ok(image) = &result {
            self.events.emit(
                self.event(&rec, "commit")
                    .attr("comment", &opts.comment)
                    .attr("imageID", image)
                    .attr("imageRef", opts.reference.clone().unwrap_or_default()),
            );
        }
        result
    }

    /// The container's changes as a layer over its image, with exactly `config` as the
    /// new image's container config (a build step keeps its image's Cmd, not the RUN's).
    pub fn commit_with_config(
        &self,
        name: &str,
        config: &Value,
        opts: &berth_images::CommitOptions,
    ) -> Result<String> {
        let rec = self.get(name)?;
        self.commit_layer(&rec, config, opts)
    }

    fn commit_layer(
        &self,
        rec: &ContainerRecord,
        config: &Value,
        opts: &berth_images::CommitOptions,
    ) -> Result<String> {
        let (reader, mut writer) = std::io::pipe().map_err(internal)?;
        let upper = self.data_dir(&rec.id).join("diff");
        let producer = std::thread::spawn(move || diff_tar(&upper, &mut writer));
        let committed = self
            .images
            .commit(&rec.image_id, reader, config, opts)
            .map_err(Error::Image);
        let produced = producer
            .join()
            .map_err(|_| Error::Internal("the layer writer panicked".into()))?;
        // The store's refusal (a bad reference) explains more than the broken pipe the
        // writer then hit.
        let id = committed?;
        produced?;
        Ok(id)
    }
}
