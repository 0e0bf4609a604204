//! Protection of the runtime binary against being overwritten from inside a container
//! (CVE-2019-5736): a process that runs the runtime's code inside a container (init before
//! exec, or a program whose interpreter is `/proc/self/exe`) could otherwise reopen
//! /proc/PID/exe for writing and replace the host's binary. The runtime therefore re-executes
//! itself from a sealed, read-only memfd copy before it creates any container process.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{MemfdFlags, SealFlags};

const SEALS: SealFlags = SealFlags::SEAL
    .union(SealFlags::SHRINK)
    .union(SealFlags::GROW)
    .union(SealFlags::WRITE);

/// Whether the running binary is already a sealed memfd.
pub fn is_sealed() -> bool {
    let Ok(f) = std::fs::File::open("/proc/self/exe") else {
        return false;
    };
    rustix::fs::fcntl_get_seals(&f).is_ok_and(|s| s.contains(SEALS))
}

/// Copies the running binary into a sealed memfd.
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

/// Re-executes the current program from a sealed memfd copy unless it already runs from
/// one. Returns only on failure.
pub fn reexec_sealed() -> io::Error {
    let fd = match sealed_copy() {
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
    // The memfd is close-on-exec; exec through /proc still works because the kernel opens
    // the file before it closes the descriptor.
    crate::sys::execve(&path, &args, &env)
}
