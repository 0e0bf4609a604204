//! Protection of the runtime binary against being overwritten from inside a container
//! (CVE-2019-5736): a process that runs the runtime's code inside a container (init before
//! exec, or a program whose interpreter is `/proc/self/exe`) could otherwise reopen
//! /proc/PID/exe for writing and replace the host's binary.
//!
//! Before it creates any container process, the runtime re-executes itself from a place
//! no write can reach: the same file seen through a detached, read-only overlay mount
//! (made with the new mount API, so it has no mount point and shares the page cache with
//! the original: nothing is copied), or, where overlayfs is not available, a sealed memfd
//! copy. A binary that already lives on a read-only mount needs neither.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{MemfdFlags, Mode, OFlags, SealFlags, StatVfsMountFlags};
use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};

const SEALS: SealFlags = SealFlags::SEAL
    .union(SealFlags::SHRINK)
    .union(SealFlags::GROW)
    .union(SealFlags::WRITE);

/// Whether the file behind `fd` can never be written: a sealed memfd, or a file on a
/// read-only mount.
pub fn is_write_protected(fd: impl AsFd) -> bool {
    let fd = fd.as_fd();
    rustix::fs::fcntl_get_seals(fd).is_ok_and(|s| s.contains(SEALS))
        || rustix::fs::fstatvfs(fd).is_ok_and(|s| s.f_flag.contains(StatVfsMountFlags::RDONLY))
}

/// Whether the running binary is already out of a container's reach.
pub fn is_protected() -> bool {
    std::fs::File::open("/proc/self/exe").is_ok_and(is_write_protected)
}

/// The running binary, opened through a detached read-only overlay whose layers are its
/// directory and `empty_dir` (overlayfs needs two lower layers when it has no upper one).
fn readonly_overlay_view(empty_dir: &Path) -> io::Result<OwnedFd> {
    let exe = std::fs::read_link("/proc/self/exe")?;
    let (Some(dir), Some(name)) = (exe.parent(), exe.file_name()) else {
        return Err(io::Error::from_raw_os_error(libc::ENOENT));
    };
    // ':' and ',' separate overlay options and layers; such paths take the memfd way.
    let layers = format!("{}:{}", dir.display(), empty_dir.display());
    if layers.contains(',') || dir.as_os_str().as_bytes().contains(&b':') {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    std::fs::create_dir_all(empty_dir)?;
    let fs = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    rustix::mount::fsconfig_set_string(&fs, "lowerdir", layers.as_str())?;
    rustix::mount::fsconfig_create(&fs)?;
    let attrs = MountAttrFlags::MOUNT_ATTR_RDONLY | MountAttrFlags::MOUNT_ATTR_NODEV;
    let mnt = rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs)?;
    Ok(rustix::fs::openat(
        &mnt,
        name,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// A sealed memfd copy of the running binary.
fn sealed_copy() -> io::Result<OwnedFd> {
    let mut exe = std::fs::File::open("/proc/self/exe")?;
    let memfd = rustix::fs::memfd_create(
        "berth-runtime",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )?;
    let mut out = std::fs::File::from(memfd);
    std::io::copy(&mut exe, &mut out)?;
    rustix::fs::fcntl_add_seals(&out, SEALS)?;
    Ok(out.into())
}

/// Re-executes the current program from a write-protected view of itself (see the module
/// doc). `empty_dir` is a directory the runtime owns, used as an empty overlay layer.
/// Returns only on failure.
pub fn reexec_protected(empty_dir: &Path) -> io::Error {
    let fd = match readonly_overlay_view(empty_dir).or_else(|_| sealed_copy()) {
        Ok(fd) => fd,
        Err(e) => return e,
    };
    let args: Vec<CString> = std::env::args_os()
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    let path = CString::new(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd())).expect("no NUL");
    // The descriptor is close-on-exec; exec through /proc still works because the kernel
    // opens the file before it closes the descriptor.
    crate::sys::execve(&path, &args, &env)
}
