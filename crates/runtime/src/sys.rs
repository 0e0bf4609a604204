//! Thin, checked wrappers over the system calls the runtime needs that `rustix` does not
//! cover the way a runtime must use them (raw mount flags, clone with CLONE_PARENT, setns by
//! fd, execve). Every `unsafe` block of the setup path lives here.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

fn cstr(p: &Path) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// mount(2) with raw flags; `None` arguments are passed as NULL.
pub fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let source = source.map(cstr).transpose()?;
    let target = cstr(target)?;
    let fstype = fstype
        .map(|s| CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL)))
        .transpose()?;
    let data = data
        .map(|s| CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL)))
        .transpose()?;
    let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is either NULL or a NUL-terminated string that outlives the call.
    check(unsafe {
        libc::mount(
            ptr(&source),
            target.as_ptr(),
            ptr(&fstype),
            flags,
            ptr(&data).cast(),
        )
    })
}

/// umount2(2).
pub fn umount2(target: &Path, flags: libc::c_int) -> io::Result<()> {
    let target = cstr(target)?;
    // SAFETY: `target` is a valid NUL-terminated string for the duration of the call.
    check(unsafe { libc::umount2(target.as_ptr(), flags) })
}

/// pivot_root(2).
pub fn pivot_root(new_root: &Path, put_old: &Path) -> io::Result<()> {
    let (a, b) = (cstr(new_root)?, cstr(put_old)?);
    // SAFETY: both arguments are valid NUL-terminated strings; the syscall takes no other memory.
    check(unsafe { libc::syscall(libc::SYS_pivot_root, a.as_ptr(), b.as_ptr()) } as libc::c_int)
}

/// unshare(2).
pub fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: unshare only changes this process's namespaces; it takes no pointers.
    check(unsafe { libc::unshare(flags) })
}

/// setns(2) on an open namespace file.
pub fn setns(fd: BorrowedFd<'_>, nstype: libc::c_int) -> io::Result<()> {
    // SAFETY: `fd` is a live descriptor borrowed for the call.
    check(unsafe { libc::setns(fd.as_raw_fd(), nstype) })
}

/// Forks. The child gets `Ok(0)`.
///
/// # Safety
/// The caller must be single-threaded, or the child must only call async-signal-safe
/// functions: another thread may hold a lock (e.g. the allocator's) at the time of the fork.
pub unsafe fn fork() -> io::Result<libc::pid_t> {
    // SAFETY: upheld by the caller, see above.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(pid)
    }
}

/// Forks a sibling: the child's parent is the caller's parent (CLONE_PARENT), so the process
/// that runs the runtime can wait for the container process directly.
///
/// # Safety
/// Same as [`fork`]: the caller must be single-threaded.
pub unsafe fn fork_sibling() -> io::Result<libc::pid_t> {
    let flags = (libc::CLONE_PARENT as libc::c_ulong) | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: a raw clone without CLONE_VM and a NULL stack behaves like fork(): the child gets
    // a copy of the address space and continues on its own copy of the stack.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if pid < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(pid as libc::pid_t)
    }
}

/// Exits immediately, without running atexit handlers or flushing stdio buffers that the
/// forked child shares with its parent.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no memory of ours.
    unsafe { libc::_exit(code) }
}

/// Gives every signal its default disposition and unblocks them all. Dispositions set to
/// "ignore" survive execve, and Rust programs ignore SIGPIPE: without this the container's
/// processes would inherit that (`yes | head -1` would never end by SIGPIPE).
pub fn reset_signals() {
    /// The kernel's `struct sigaction` for rt_sigaction(2) (glibc's signal() refuses the
    /// two real-time signals it reserves, which a parent may still have ignored).
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let dfl = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction reads `dfl` (a kernel sigaction with SIG_DFL) during the
        // call and writes nothing (old action NULL); the mask size is the kernel's 8 bytes.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            )
        };
    }
    // SAFETY: an empty set initialised by sigemptyset, passed by pointer for the call only.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// seccomp(SECCOMP_SET_MODE_FILTER, flags, prog): installs a BPF program given as raw
/// `struct sock_filter` entries.
pub fn seccomp_set_filter(program: &[u8], flags: u32) -> io::Result<()> {
    if program.is_empty() || !program.len().is_multiple_of(8) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let prog = libc::sock_fprog {
        len: (program.len() / 8) as u16,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `program`, whole 8-byte sock_filter entries that outlive
    // the call; the kernel copies the program and writes nothing back.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags as libc::c_ulong,
            &prog as *const libc::sock_fprog,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// execve(2); returns only on failure.
pub fn execve(path: &CStr, argv: &[CString], envp: &[CString]) -> io::Error {
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());
    // SAFETY: path and every element are NUL-terminated strings kept alive by the caller's
    // vectors; both arrays end in NULL as execve requires.
    unsafe { libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr()) };
    io::Error::last_os_error()
}

/// Sets real, effective and saved user ids.
pub fn setresuid(uid: u32) -> io::Result<()> {
    // SAFETY: plain integer arguments; glibc applies the change to every thread.
    check(unsafe { libc::setresuid(uid, uid, uid) })
}

/// Sets real, effective and saved group ids.
pub fn setresgid(gid: u32) -> io::Result<()> {
    // SAFETY: plain integer arguments.
    check(unsafe { libc::setresgid(gid, gid, gid) })
}

/// Sets the supplementary group list.
pub fn setgroups(gids: &[u32]) -> io::Result<()> {
    // SAFETY: the pointer and length describe the live slice.
    check(unsafe { libc::setgroups(gids.len(), gids.as_ptr()) })
}

/// prctl(2) with integer arguments.
pub fn prctl(option: libc::c_int, arg2: libc::c_ulong) -> io::Result<()> {
    // SAFETY: only integer-argument prctl options are passed through this wrapper.
    check(unsafe { libc::prctl(option, arg2, 0, 0, 0) })
}

/// Sets one resource limit.
pub fn setrlimit(resource: libc::c_int, soft: u64, hard: u64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `lim` is a valid rlimit that lives across the call.
    check(unsafe { libc::setrlimit(resource as _, &lim) })
}

/// Sets the execution domain.
pub fn personality(persona: libc::c_ulong) -> io::Result<()> {
    // SAFETY: personality takes an integer and no memory.
    check(unsafe { libc::personality(persona) })
}

/// Marks every descriptor from `first` up close-on-exec, so nothing the runtime holds leaks
/// into the container.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on descriptors.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    check(r as libc::c_int)
}

/// Clears close-on-exec on one descriptor (the ones `--preserve-fds` passes on).
pub fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an integer fd with integer arguments.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) })
}

/// Makes `fd` the controlling terminal of this session.
pub fn set_controlling_tty(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) })
}

/// Duplicates `fd` onto `target` (dup3 without flags, so the copy is inherited by exec).
pub fn dup_onto(fd: BorrowedFd<'_>, target: RawFd) -> io::Result<()> {
    if fd.as_raw_fd() == target {
        return Ok(());
    }
    // SAFETY: both are integer descriptors; dup2 replaces `target` atomically.
    check(unsafe { libc::dup2(fd.as_raw_fd(), target) })
}

/// waitpid(2) for one pid; returns the raw status.
pub fn waitpid(pid: libc::pid_t, flags: libc::c_int) -> io::Result<Option<libc::c_int>> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid out-pointer for the call.
        let r = unsafe { libc::waitpid(pid, &mut status, flags) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        return Ok(if r == 0 { None } else { Some(status) });
    }
}

/// Converts a wait status to a shell-style exit code (128 + signal for a killed process).
pub fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        255
    }
}

/// kill(2).
pub fn kill(pid: libc::pid_t, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: kill takes integers only.
    check(unsafe { libc::kill(pid, sig) })
}

/// Opens a pidfd for `pid`, so waiting for it and signalling it cannot hit a reused pid.
pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes integers and returns a new descriptor we then own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Sends a signal through a pidfd.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: NULL siginfo is allowed and means "as kill(2) would send".
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            0usize,
            0u32,
        )
    };
    check(r as libc::c_int)
}
