//! Security properties, each with a test that would fail on the vulnerable design:
//! seccomp, the runtime binary behind /proc/self/exe, leaked descriptors and cwd,
//! symlinked mount targets and exec --cwd.

mod common;

use common::{TestBundle, stderr, stdout};
use serde_json::json;

#[test]
fn seccomp_denies_and_returns_configured_errnos() {
    let mut b = TestBundle::new(&[
        "sh",
        "-c",
        "mkdir /tmp/x 2>&1; berth-probe clone3; grep '^Seccomp:' /proc/self/status",
    ]);
    b.add_probe();
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["a_syscall_this_libseccomp_does_not_know"], "action": "SCMP_ACT_ERRNO"}
        ]
    });
    // The second run loads the program compiled by the first from the cache.
    for _ in 0..2 {
        let out = b.run();
        let text = stdout(&out);
        assert!(
            text.contains("Operation not permitted"),
            "{text} {}",
            stderr(&out)
        );
        assert!(text.contains("clone3 errno 38"), "{text}");
        assert!(text.contains("Seccomp:\t2"), "{text}");
    }
    let cached: Vec<_> = std::fs::read_dir(b.state_root.path().join(".seccomp-cache"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(cached.len(), 1, "one compiled program for one profile");
}

/// The shape of Docker's default profile: deny by default with EPERM, allow a list, and
/// answer clone3 with ENOSYS so that glibc falls back to clone.
#[test]
fn docker_shaped_allowlist_profile_loads_and_works() {
    let mut b = TestBundle::new(&[
        "sh",
        "-c",
        "echo alive; berth-probe clone3; unshare -n true 2>&1 | head -1",
    ]);
    b.add_probe();
    let allowed = [
        "access",
        "arch_prctl",
        "brk",
        "capget",
        "capset",
        "chdir",
        "clock_gettime",
        "clock_nanosleep",
        "clone",
        "close",
        "close_range",
        "dup",
        "dup2",
        "dup3",
        "execve",
        "execveat",
        "exit",
        "exit_group",
        "faccessat",
        "faccessat2",
        "fchdir",
        "fcntl",
        "fstat",
        "fstatfs",
        "futex",
        "getcwd",
        "getdents64",
        "getegid",
        "geteuid",
        "getgid",
        "getgroups",
        "getpgrp",
        "getpid",
        "getppid",
        "getrandom",
        "getrlimit",
        "gettid",
        "getuid",
        "ioctl",
        "lseek",
        "lstat",
        "madvise",
        "mmap",
        "mprotect",
        "munmap",
        "nanosleep",
        "newfstatat",
        "open",
        "openat",
        "openat2",
        "pipe",
        "pipe2",
        "poll",
        "ppoll",
        "prctl",
        "pread64",
        "prlimit64",
        "read",
        "readlink",
        "readlinkat",
        "rseq",
        "rt_sigaction",
        "rt_sigprocmask",
        "rt_sigreturn",
        "rt_sigsuspend",
        "sched_getaffinity",
        "set_robust_list",
        "set_tid_address",
        "setgid",
        "setgroups",
        "setresgid",
        "setresuid",
        "setsid",
        "setuid",
        "sigaltstack",
        "stat",
        "statfs",
        "statx",
        "sysinfo",
        "tgkill",
        "umask",
        "uname",
        "vfork",
        "wait4",
        "write",
        "writev",
        "fork",
        "getpgid",
        "setpgid",
    ];
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": allowed.to_vec(), "action": "SCMP_ACT_ALLOW"},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            // As Docker does without CAP_SYS_ADMIN: clone only without namespace flags.
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288u64, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
        ]
    });
    let out = b.run();
    let text = stdout(&out);
    assert!(text.starts_with("alive\n"), "{text} {}", stderr(&out));
    assert!(
        text.contains("clone3 errno 38"),
        "clone3 must be ENOSYS, not EPERM: {text}"
    );
    assert!(
        text.contains("Operation not permitted"),
        "unshare is not allowed: {text}"
    );
}

#[test]
fn runtime_binary_is_neither_reachable_nor_writable_from_the_container() {
    let b = TestBundle::new(&["sleep", "100"]);
    b.add_probe();
    assert!(b.create().status.success());
    let pid = b.state()["pid"].as_i64().unwrap();
    // While init still runs the runtime's code, its executable is a read-only view (or a
    // sealed copy) of the binary: no write can reach the host's file through it.
    let exe = std::fs::File::open(format!("/proc/{pid}/exe")).unwrap();
    assert!(
        berth_runtime::selfexe::is_write_protected(&exe),
        "init runs a writable binary"
    );
    let write = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/exe"));
    assert!(
        write.is_err(),
        "the runtime binary behind init opened for writing"
    );
    // And a container process cannot even open it (init is not dumpable).
    let out = b.cmd(&["exec", &b.id, "berth-probe", "open-write", "/proc/1/exe"]);
    let text = stdout(&out);
    assert!(
        text.starts_with("open /proc/1/exe: errno"),
        "{text} {}",
        stderr(&out)
    );
    let out = b.cmd(&[
        "exec",
        &b.id,
        "sh",
        "-c",
        "cat /proc/1/exe > /dev/null 2>&1 && echo READ || echo DENIED",
    ]);
    assert_eq!(stdout(&out), "DENIED\n");
}

#[test]
fn no_host_descriptor_leaks_into_the_container() {
    let b = TestBundle::new(&["berth-probe", "fds"]);
    b.add_probe();
    let out = b.run();
    assert!(out.status.success(), "{}", stderr(&out));
    for line in stdout(&out).lines() {
        let (fd, target) = line.split_once(' ').unwrap();
        let fd: i32 = fd.parse().unwrap();
        // 0-2 are stdio; one more is the probe's own handle on /proc/self/fd.
        assert!(
            fd <= 2 || target.starts_with("/proc/"),
            "leaked fd {fd} -> {target}"
        );
        assert!(!target.contains("berth"), "leaked fd {fd} -> {target}");
    }
}

#[test]
fn cwd_through_a_descriptor_cannot_reach_the_host() {
    for fd in 3..9 {
        let mut b = TestBundle::new(&["sh", "-c", "pwd; ls"]);
        b.config["process"]["cwd"] = json!(format!("/proc/self/fd/{fd}/../../.."));
        let out = b.run();
        assert!(
            !out.status.success(),
            "cwd via fd {fd} was accepted: {}",
            stdout(&out)
        );
        b.assert_no_leftovers();
    }
}

#[test]
fn mount_through_a_symlink_stays_inside_the_rootfs() {
    let mut b = TestBundle::new(&["sh", "-c", "touch /evil/written && echo ok"]);
    let host_dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(host_dir.path(), b.rootfs().join("evil")).unwrap();
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/evil", "type": "tmpfs", "source": "tmpfs"}));
    let out = b.run();
    assert_eq!(stdout(&out), "ok\n", "{}", stderr(&out));
    assert!(
        !host_dir.path().join("written").exists(),
        "the mount landed on the host"
    );
    assert_eq!(std::fs::read_dir(host_dir.path()).unwrap().count(), 0);
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(host_dir.path().to_str().unwrap()));
}

#[test]
fn exec_cwd_through_a_symlink_stays_inside() {
    let b = TestBundle::new(&["sleep", "100"]);
    std::os::unix::fs::symlink("../../../../../..", b.rootfs().join("up")).unwrap();
    std::fs::write(b.rootfs().join("marker"), "x").unwrap();
    assert!(b.create().status.success());
    assert!(b.cmd(&["start", &b.id]).status.success());
    let out = b.cmd(&[
        "exec",
        "--cwd",
        "/up",
        &b.id,
        "sh",
        "-c",
        "ls marker && pwd -P",
    ]);
    assert_eq!(stdout(&out), "marker\n/\n", "{}", stderr(&out));
}
