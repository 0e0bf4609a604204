//! Attaching a cgroup v2 device program with the bpf(2) syscall.
//!
//! Only the four commands needed are wrapped: PROG_LOAD, PROG_ATTACH,
//! PROG_QUERY (+ PROG_GET_FD_BY_ID) and PROG_DETACH. The attribute structs
//! are prefixes of the kernel's `union bpf_attr`; the kernel accepts a
//! shorter struct than its own and treats the missing tail as zero.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use crate::devices::Insn;
use crate::error::{Error, Result};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;

const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// Most programs attached to one cgroup that we look at when replacing
/// our old program (the kernel's own limit is 64).
const MAX_QUERY_PROGS: usize = 64;

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct ProgQueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdByIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// Call bpf(2) with `attr`; returns the (non-negative) result.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<i64> {
    // SAFETY: `attr` is a live, properly aligned #[repr(C)] struct whose
    // layout matches the prefix of `union bpf_attr` for `cmd`, and the size
    // passed is its exact size; any pointers inside it point to buffers the
    // caller keeps alive across this call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Wrap a file descriptor returned by the kernel.
fn owned_fd(raw: i64) -> OwnedFd {
    // SAFETY: `raw` was just returned by a successful bpf(2) call that
    // creates a new descriptor, so it is open and owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(raw as RawFd) }
}

/// Load `prog` and make it the only device program we own on `dir`: the
/// new program is attached first and the old ones detached after, so the
/// cgroup is never without a filter.
pub(crate) fn replace_device_program(dir: &Path, prog: &[Insn]) -> Result<()> {
    let fail = |op: &'static str, err: io::Error, log: String| Error::Bpf {
        op,
        path: dir.to_path_buf(),
        err,
        log,
    };
    let cgroup = File::open(dir).map_err(|err| Error::Read {
        path: dir.to_path_buf(),
        err,
    })?;
    let old = query_programs(&cgroup).map_err(|e| fail("prog_query", e, String::new()))?;
    let new = load_program(prog).map_err(|(e, log)| fail("prog_load", e, log))?;
    attach(&cgroup, &new).map_err(|e| fail("prog_attach", e, String::new()))?;
    for id in old {
        detach_by_id(&cgroup, id).map_err(|e| fail("prog_detach", e, String::new()))?;
    }
    Ok(())
}

fn load_program(prog: &[Insn]) -> std::result::Result<OwnedFd, (io::Error, String)> {
    // Device programs need no GPL-only helpers, so any license will do.
    let license = c"Apache";
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    attr.prog_name[..6].copy_from_slice(b"berth\0");
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(owned_fd(fd)),
        Err(err) => Err((err, verifier_log(prog, license))),
    }
}

/// Load again with the verifier log on, to explain a failed load.
fn verifier_log(prog: &[Insn], license: &std::ffi::CStr) -> String {
    let mut log = vec![0u8; 64 * 1024];
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        ..Default::default()
    };
    if let Ok(fd) = bpf(BPF_PROG_LOAD, &mut attr) {
        drop(owned_fd(fd));
        return String::new();
    }
    let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
    let text = String::from_utf8_lossy(&log[..end]);
    let last_line = text.lines().rev().find(|l| !l.trim().is_empty());
    last_line.map_or(String::new(), |l| format!(" (verifier: {})", l.trim()))
}

fn attach(cgroup: &File, prog: &OwnedFd) -> io::Result<()> {
    let mut attr = ProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        // ALLOW_MULTI so a parent's program (e.g. systemd's) keeps running
        // and so we can attach the new program before removing the old one.
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map(drop)
}

/// Ids of the device programs attached directly to this cgroup.
fn query_programs(cgroup: &File) -> io::Result<Vec<u32>> {
    let mut ids = vec![0u32; MAX_QUERY_PROGS];
    let mut attr = ProgQueryAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr)?;
    ids.truncate(attr.prog_cnt as usize);
    Ok(ids)
}

fn detach_by_id(cgroup: &File, id: u32) -> io::Result<()> {
    let mut get = GetFdByIdAttr {
        prog_id: id,
        ..Default::default()
    };
    let prog = match bpf(BPF_PROG_GET_FD_BY_ID, &mut get) {
        Ok(fd) => owned_fd(fd),
        // Detached by someone else meanwhile.
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut attr = ProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: 0,
    };
    match bpf(BPF_PROG_DETACH, &mut attr) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        other => other.map(drop),
    }
}
