//! Building the container's filesystem view inside its new mount namespace: propagation,
//! the config's mounts (confined to the rootfs), device nodes, pivot_root, masked and
//! read-only paths.

use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};
use rustix::fs::{Mode, OFlags};

use crate::error::{Error, IoContext, Result};
use crate::sys;
use berth_sys::inroot;

/// Mount flags, propagation and fs data parsed from a mount's `options`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// MS_* flags for mount(2).
    pub flags: libc::c_ulong,
    /// Flags cleared explicitly (`rw`, `suid`, ...), which matter for remounts.
    pub cleared: libc::c_ulong,
    /// Propagation changes, applied one by one after the mount.
    pub propagation: Vec<libc::c_ulong>,
    /// Filesystem-specific options, comma-joined.
    pub data: String,
}

/// Parses OCI/fstab-style mount options the way runc does.
pub fn parse_options(options: &[String]) -> MountOptions {
    let mut o = MountOptions::default();
    let mut data = Vec::new();
    for opt in options {
        let (set, clear, prop): (libc::c_ulong, libc::c_ulong, libc::c_ulong) = match opt.as_str() {
            "defaults" => (0, 0, 0),
            "ro" => (libc::MS_RDONLY, 0, 0),
            "rw" => (0, libc::MS_RDONLY, 0),
            "nosuid" => (libc::MS_NOSUID, 0, 0),
            "suid" => (0, libc::MS_NOSUID, 0),
            "nodev" => (libc::MS_NODEV, 0, 0),
            "dev" => (0, libc::MS_NODEV, 0),
            "noexec" => (libc::MS_NOEXEC, 0, 0),
            "exec" => (0, libc::MS_NOEXEC, 0),
            "sync" => (libc::MS_SYNCHRONOUS, 0, 0),
            "async" => (0, libc::MS_SYNCHRONOUS, 0),
            "dirsync" => (libc::MS_DIRSYNC, 0, 0),
            "remount" => (libc::MS_REMOUNT, 0, 0),
            "mand" => (libc::MS_MANDLOCK, 0, 0),
            "nomand" => (0, libc::MS_MANDLOCK, 0),
            "atime" => (0, libc::MS_NOATIME, 0),
            "noatime" => (libc::MS_NOATIME, 0, 0),
            "diratime" => (0, libc::MS_NODIRATIME, 0),
            "nodiratime" => (libc::MS_NODIRATIME, 0, 0),
            "relatime" => (libc::MS_RELATIME, 0, 0),
            "norelatime" => (0, libc::MS_RELATIME, 0),
            "strictatime" => (libc::MS_STRICTATIME, 0, 0),
            "nostrictatime" => (0, libc::MS_STRICTATIME, 0),
            "silent" => (libc::MS_SILENT, 0, 0),
            "loud" => (0, libc::MS_SILENT, 0),
            "bind" => (libc::MS_BIND, 0, 0),
            "rbind" => (libc::MS_BIND | libc::MS_REC, 0, 0),
            "private" => (0, 0, libc::MS_PRIVATE),
            "rprivate" => (0, 0, libc::MS_PRIVATE | libc::MS_REC),
            "shared" => (0, 0, libc::MS_SHARED),
            "rshared" => (0, 0, libc::MS_SHARED | libc::MS_REC),
            "slave" => (0, 0, libc::MS_SLAVE),
            "rslave" => (0, 0, libc::MS_SLAVE | libc::MS_REC),
            "unbindable" => (0, 0, libc::MS_UNBINDABLE),
            "runbindable" => (0, 0, libc::MS_UNBINDABLE | libc::MS_REC),
            // Handled elsewhere or not applicable to a plain mount(2).
            "tmpcopyup" | "idmap" | "ridmap" => (0, 0, 0),
            other => {
                data.push(other.to_string());
                (0, 0, 0)
            }
        };
        o.flags = (o.flags | set) & !clear;
        o.cleared |= clear;
        if prop != 0 {
            o.propagation.push(prop);
        }
    }
    o.data = data.join(",");
    o
}

/// Context for building one container's filesystem.
pub struct RootfsBuilder<'a> {
    /// The container's config.
    pub spec: &'a Spec,
    /// Absolute rootfs path on the host.
    pub rootfs: &'a Path,
    /// The bundle dir, against which relative bind sources resolve.
    pub bundle: &'a Path,
    /// Whether the container has its own cgroup namespace.
    pub cgroupns: bool,
    /// Whether the container has its own user namespace (then devices are bind-mounted).
    pub userns: bool,
}

impl RootfsBuilder<'_> {
    /// Everything before pivot_root: propagation, self-bind of the rootfs, mounts, devices.
    pub fn prepare(&self) -> Result<()> {
        let linux = self.spec.linux().as_ref();
        let propagation = linux.and_then(|l| l.rootfs_propagation().as_deref());
        let initial = match propagation {
            Some("private") | Some("rprivate") => libc::MS_PRIVATE | libc::MS_REC,
            _ => libc::MS_SLAVE | libc::MS_REC,
        };
        sys::mount(None, Path::new("/"), None, initial, None)
            .ctx(|| "make / a slave mount".to_string())?;
        sys::mount(
            Some(self.rootfs),
            self.rootfs,
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        )
        .ctx(|| format!("bind rootfs {} onto itself", self.rootfs.display()))?;
        let root = rustix::fs::open(
            self.rootfs,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| format!("open rootfs {}", self.rootfs.display()))?;
        let mounts = self.spec.mounts().as_deref().unwrap_or_default();
        for (i, m) in mounts.iter().enumerate() {
            self.mount_one(root.as_fd(), m).map_err(|e| {
                Error::Init(format!("mounts[{i}] ({}): {e}", m.destination().display()))
            })?;
        }
        let dev_is_tmpfs = mounts
            .iter()
            .any(|m| m.destination() == Path::new("/dev") && m.typ().as_deref() != Some("bind"));
        if dev_is_tmpfs {
            self.create_default_devices(root.as_fd())?;
        }
        for d in linux
            .and_then(|l| l.devices().as_deref())
            .unwrap_or_default()
        {
            self.create_device(root.as_fd(), d)
                .map_err(|e| Error::Init(format!("linux.devices {}: {e}", d.path().display())))?;
        }
        Ok(())
    }

    fn mount_one(&self, root: BorrowedFd<'_>, m: &Mount) -> io::Result<()> {
        let opts = parse_options(m.options().as_deref().unwrap_or_default());
        let typ = m.typ().as_deref().unwrap_or("none");
        if typ == "cgroup" || typ == "cgroup2" {
            return self.mount_cgroup(root, m, &opts);
        }
        let dest = m.destination();
        if opts.flags & libc::MS_BIND != 0 || typ == "bind" {
            let src = self.bind_source(m);
            let target = if fs::metadata(&src)?.is_dir() {
                inroot::mkdir_all(root, dest, 0o755)?
            } else {
                inroot::ensure_file(root, dest)?
            };
            let rec = opts.flags & libc::MS_REC;
            sys::mount(
                Some(&src),
                &inroot::fd_path(&target),
                None,
                libc::MS_BIND | rec,
                None,
            )?;
            let mounted = inroot::open_path(root, dest)?;
            let extra = opts.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT);
            if extra != 0 {
                remount(&mounted, extra | rec)?;
            }
            return apply_propagation(&mounted, &opts.propagation);
        }
        let target = inroot::mkdir_all(root, dest, 0o755)?;
        let source = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
        let data = (!opts.data.is_empty()).then_some(opts.data.as_str());
        let flags = opts.flags;
        let result = sys::mount(
            Some(&source),
            &inroot::fd_path(&target),
            Some(typ),
            flags,
            data,
        );
        match result {
            // mqueue and sysfs refuse some flag combinations under user namespaces; runc
            // retries sysfs as a recursive bind of the host's /sys in that case.
            Err(e) if typ == "sysfs" && e.raw_os_error() == Some(libc::EPERM) => {
                sys::mount(
                    Some(Path::new("/sys")),
                    &inroot::fd_path(&target),
                    None,
                    libc::MS_BIND | libc::MS_REC,
                    None,
                )?;
                let mounted = inroot::open_path(root, dest)?;
                remount(&mounted, (flags & !libc::MS_REMOUNT) | libc::MS_REC)?;
            }
            r => r?,
        }
        let mounted = inroot::open_path(root, dest)?;
        apply_propagation(&mounted, &opts.propagation)
    }

    fn bind_source(&self, m: &Mount) -> PathBuf {
        let src = m.source().clone().unwrap_or_default();
        if src.is_absolute() {
            src
        } else {
            self.bundle.join(src)
        }
    }

    /// A cgroup mount: cgroup2 (or per-controller v1 mounts) inside a cgroup namespace, else
    /// binds of the container's own cgroup directories, so the host tree stays hidden.
    fn mount_cgroup(&self, root: BorrowedFd<'_>, m: &Mount, opts: &MountOptions) -> io::Result<()> {
        let dest = m.destination();
        let flags = opts.flags & !libc::MS_RDONLY;
        let target = inroot::mkdir_all(root, dest, 0o755)?;
        if berth_cgroups::detect() == berth_cgroups::Version::V2 {
            if self.cgroupns {
                sys::mount(
                    Some(Path::new("cgroup2")),
                    &inroot::fd_path(&target),
                    Some("cgroup2"),
                    flags,
                    None,
                )?;
            } else {
                let own = own_cgroup_path("")?;
                sys::mount(
                    Some(&Path::new("/sys/fs/cgroup").join(own.trim_start_matches('/'))),
                    &inroot::fd_path(&target),
                    None,
                    libc::MS_BIND | libc::MS_REC,
                    None,
                )?;
            }
        } else {
            sys::mount(
                Some(Path::new("tmpfs")),
                &inroot::fd_path(&target),
                Some("tmpfs"),
                flags,
                Some("mode=755"),
            )?;
            for h in v1_hierarchies()? {
                let sub = dest.join(&h.name);
                let fd = inroot::mkdir_all(root, &sub, 0o755)?;
                if self.cgroupns {
                    sys::mount(
                        Some(Path::new("cgroup")),
                        &inroot::fd_path(&fd),
                        Some("cgroup"),
                        flags,
                        Some(&h.options),
                    )?;
                } else {
                    let src = h.mountpoint.join(h.own_path.trim_start_matches('/'));
                    sys::mount(
                        Some(&src),
                        &inroot::fd_path(&fd),
                        None,
                        libc::MS_BIND | libc::MS_REC,
                        None,
                    )?;
                }
                if opts.flags & libc::MS_RDONLY != 0 {
                    remount(&inroot::open_path(root, &sub)?, flags | libc::MS_RDONLY)?;
                }
                // Combined hierarchies (cpu,cpuacct) are also reachable by each name.
                if h.name.contains(',') {
                    for part in h.name.split(',') {
                        let dir = inroot::reopen_dir(&inroot::open_path(root, dest)?)?;
                        let _ = rustix::fs::symlinkat(h.name.as_str(), dir.as_fd(), part);
                    }
                }
            }
        }
        if opts.flags & libc::MS_RDONLY != 0 {
            remount(&inroot::open_path(root, dest)?, flags | libc::MS_RDONLY)?;
        }
        Ok(())
    }

    fn create_default_devices(&self, root: BorrowedFd<'_>) -> Result<()> {
        for (name, major, minor) in DEFAULT_DEVICES {
            let path = Path::new("/dev").join(name);
            self.make_node(root, &path, libc::S_IFCHR, *major, *minor, 0o666, 0, 0)
                .map_err(|e| {
                    Error::Init(format!("create default device {}: {e}", path.display()))
                })?;
        }
        let dev = inroot::reopen_dir(
            &inroot::open_path(root, Path::new("/dev")).ctx(|| "open /dev in rootfs".into())?,
        )
        .ctx(|| "open /dev in rootfs".into())?;
        let links = [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
            ("ptmx", "pts/ptmx"),
        ];
        for (name, target) in links {
            match rustix::fs::symlinkat(target, dev.as_fd(), name) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(Error::io(format!("create /dev/{name} link"), e)),
            }
        }
        if Path::new("/proc/kcore").exists() {
            let _ = rustix::fs::symlinkat("/proc/kcore", dev.as_fd(), "core");
        }
        Ok(())
    }

    fn create_device(&self, root: BorrowedFd<'_>, d: &LinuxDevice) -> io::Result<()> {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
            LinuxDeviceType::B => libc::S_IFBLK,
            LinuxDeviceType::P => libc::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(io::Error::other("type \"a\" is only for cgroup rules"));
            }
        };
        let mode = d.file_mode().unwrap_or(0o666) & 0o7777;
        self.make_node(
            root,
            d.path(),
            kind,
            d.major() as u64,
            d.minor() as u64,
            mode,
            d.uid().unwrap_or(0),
            d.gid().unwrap_or(0),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn make_node(
        &self,
        root: BorrowedFd<'_>,
        path: &Path,
        kind: u32,
        major: u64,
        minor: u64,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> io::Result<()> {
        let (parent, name) = inroot::split(path)?;
        let dir = inroot::reopen_dir(&inroot::mkdir_all(root, parent, 0o755)?)?;
        if self.userns {
            // mknod is not allowed in a user namespace: bind the host's node instead.
            let target = inroot::ensure_file(root, path)?;
            return sys::mount(
                Some(path),
                &inroot::fd_path(&target),
                None,
                libc::MS_BIND,
                None,
            );
        }
        let _ = rustix::fs::unlinkat(dir.as_fd(), name, rustix::fs::AtFlags::empty());
        let dev = rustix::fs::makedev(major as u32, minor as u32);
        let file_type = rustix::fs::FileType::from_raw_mode(kind);
        rustix::fs::mknodat(dir.as_fd(), name, file_type, Mode::from_raw_mode(mode), dev)?;
        rustix::fs::chownat(
            dir.as_fd(),
            name,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )?;
        Ok(())
    }
}

/// The device nodes every container gets in its /dev (runc's default set).
const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

fn remount(target: &OwnedFd, flags: libc::c_ulong) -> io::Result<()> {
    let path = inroot::fd_path(target);
    // Flags the kernel locked on this mount (e.g. nosuid in a user namespace) must be kept,
    // or the remount fails with EPERM.
    let locked = locked_flags(target);
    sys::mount(
        None,
        &path,
        None,
        flags | libc::MS_REMOUNT | libc::MS_BIND | locked,
        None,
    )
}

fn locked_flags(fd: &OwnedFd) -> libc::c_ulong {
    let Ok(st) = rustix::fs::fstatvfs(fd) else {
        return 0;
    };
    let f = st.f_flag;
    let mut out = 0;
    for (st_flag, ms_flag) in [
        (rustix::fs::StatVfsMountFlags::NOSUID, libc::MS_NOSUID),
        (rustix::fs::StatVfsMountFlags::NODEV, libc::MS_NODEV),
        (rustix::fs::StatVfsMountFlags::NOEXEC, libc::MS_NOEXEC),
        (rustix::fs::StatVfsMountFlags::RDONLY, 0),
    ] {
        if f.contains(st_flag) {
            out |= ms_flag;
        }
    }
    out
}

fn apply_propagation(target: &OwnedFd, props: &[libc::c_ulong]) -> io::Result<()> {
    for p in props {
        sys::mount(None, &inroot::fd_path(target), None, *p, None)?;
    }
    Ok(())
}

/// One cgroup v1 hierarchy as this process sees it.
struct Hierarchy {
    /// Directory name under /sys/fs/cgroup (e.g. "memory", "cpu,cpuacct", "systemd").
    name: String,
    mountpoint: PathBuf,
    /// Mount options naming the controllers (e.g. "memory", "none,name=systemd").
    options: String,
    /// This process's cgroup within the hierarchy.
    own_path: String,
}

fn v1_hierarchies() -> io::Result<Vec<Hierarchy>> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")?;
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut rf = right.split_whitespace();
        if rf.next() != Some("cgroup") {
            continue;
        }
        let super_opts = rf.nth(1).unwrap_or_default();
        let mountpoint = PathBuf::from(left.split_whitespace().nth(4).unwrap_or_default());
        let controllers: Vec<&str> = super_opts
            .split(',')
            .filter(|o| {
                !matches!(*o, "rw" | "ro")
                    && !o.starts_with("release_agent")
                    && *o != "clone_children"
                    && *o != "noprefix"
            })
            .collect();
        let key = controllers
            .iter()
            .map(|c| c.trim_start_matches("name="))
            .collect::<Vec<_>>()
            .join(",");
        let own = own_cgroup_path(&key)?;
        let name = mountpoint
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or(key);
        let options = if controllers.iter().any(|c| c.starts_with("name=")) {
            format!("none,{}", controllers.join(","))
        } else {
            controllers.join(",")
        };
        out.push(Hierarchy {
            name,
            mountpoint,
            options,
            own_path: own,
        });
    }
    Ok(out)
}

/// This process's cgroup path in the hierarchy whose controller list is `controllers`
/// ("" = the v2 unified hierarchy), from /proc/self/cgroup.
fn own_cgroup_path(controllers: &str) -> io::Result<String> {
    let text = fs::read_to_string("/proc/self/cgroup")?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrl, path) = (
            parts.next(),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("/"),
        );
        let ctrl = ctrl
            .split(',')
            .map(|c| c.trim_start_matches("name="))
            .collect::<Vec<_>>()
            .join(",");
        if ctrl == controllers {
            return Ok(path.to_string());
        }
    }
    Ok("/".to_string())
}

/// pivot_root into `rootfs` (runc's fchdir dance, which needs no temporary directory) and
/// detach the old root.
pub fn pivot(rootfs: &Path) -> Result<()> {
    let old = rustix::fs::open(
        "/",
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open old root".into())?;
    let new = rustix::fs::open(
        rootfs,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open rootfs {}", rootfs.display()))?;
    rustix::process::fchdir(&new).ctx(|| "enter rootfs".into())?;
    sys::pivot_root(Path::new("."), Path::new("."))
        .ctx(|| format!("pivot_root to {}", rootfs.display()))?;
    rustix::process::fchdir(&old).ctx(|| "enter old root".into())?;
    // Keep the unmount of the old root from propagating back to the host.
    sys::mount(
        None,
        Path::new("."),
        None,
        libc::MS_SLAVE | libc::MS_REC,
        None,
    )
    .ctx(|| "make old root a slave".into())?;
    sys::umount2(Path::new("."), libc::MNT_DETACH).ctx(|| "detach old root".into())?;
    std::env::set_current_dir("/").ctx(|| "chdir to new root".into())
}

/// Without pivot_root (for a rootfs on a ramfs): move the rootfs mount over / and chroot.
pub fn move_root(rootfs: &Path) -> Result<()> {
    std::env::set_current_dir(rootfs).ctx(|| format!("chdir to {}", rootfs.display()))?;
    sys::mount(Some(rootfs), Path::new("/"), None, libc::MS_MOVE, None)
        .ctx(|| "move rootfs to /".into())?;
    rustix::process::chroot(".").ctx(|| "chroot to rootfs".into())?;
    std::env::set_current_dir("/").ctx(|| "chdir to new root".into())
}

/// Hides each path: directories under an empty read-only tmpfs, files under /dev/null.
pub fn mask_paths(paths: &[String]) -> Result<()> {
    for p in paths {
        let path = Path::new(p);
        let meta = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::path("inspect masked path", path, e)),
        };
        let r = if meta.is_dir() {
            sys::mount(
                Some(Path::new("tmpfs")),
                path,
                Some("tmpfs"),
                libc::MS_RDONLY,
                None,
            )
        } else {
            sys::mount(
                Some(Path::new("/dev/null")),
                path,
                None,
                libc::MS_BIND,
                None,
            )
        };
        r.ctx(|| format!("mask {p}"))?;
    }
    Ok(())
}

/// Makes each path read-only with a recursive bind over itself and a read-only remount.
pub fn readonly_paths(paths: &[String]) -> Result<()> {
    for p in paths {
        let path = Path::new(p);
        match sys::mount(Some(path), path, None, libc::MS_BIND | libc::MS_REC, None) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::path("bind read-only path", path, e)),
        }
        let fd = rustix::fs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
            .ctx(|| format!("open {p}"))?;
        remount(&fd, libc::MS_RDONLY | libc::MS_REC).ctx(|| format!("remount {p} read-only"))?;
    }
    Ok(())
}

/// Remounts the (pivoted) root read-only.
pub fn readonly_root() -> Result<()> {
    let fd = rustix::fs::open("/", OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
        .ctx(|| "open /".into())?;
    remount(&fd, libc::MS_RDONLY).ctx(|| "remount / read-only".into())
}

/// Applies `linux.rootfsPropagation` to the new root, once mounts are in place.
pub fn set_root_propagation(spec: &Spec) -> Result<()> {
    let Some(p) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().clone())
    else {
        return Ok(());
    };
    let opts = parse_options(std::slice::from_ref(&p));
    for flag in opts.propagation {
        sys::mount(None, Path::new("/"), None, flag, None)
            .ctx(|| format!("linux.rootfsPropagation {p}"))?;
    }
    Ok(())
}

/// Whether a path's device numbers say it is a character device (used by tests and checks).
pub fn is_char_device(path: &Path) -> bool {
    fs::metadata(path)
        .map(|m| m.mode() & libc::S_IFMT == libc::S_IFCHR)
        .unwrap_or(false)
}

/// Creates `/dev/console` as a bind of the container's terminal.
pub fn bind_console(slave: &OwnedFd) -> Result<()> {
    let console = Path::new("/dev/console");
    if fs::symlink_metadata(console).is_err() {
        fs::File::create(console).ctx(|| "create /dev/console".into())?;
    }
    sys::mount(
        Some(&inroot::fd_path(slave)),
        console,
        None,
        libc::MS_BIND,
        None,
    )
    .ctx(|| "bind the terminal to /dev/console".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> MountOptions {
        parse_options(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn options_parse_like_runc() {
        let o = opts(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, libc::MS_NOSUID | libc::MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        let o = opts(&["rbind", "ro", "rprivate"]);
        assert_eq!(o.flags, libc::MS_BIND | libc::MS_REC | libc::MS_RDONLY);
        assert_eq!(o.propagation, vec![libc::MS_PRIVATE | libc::MS_REC]);
        assert_eq!(opts(&["ro", "rw"]).flags, 0);
    }
}
