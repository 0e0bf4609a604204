//! The default seccomp profile of engine containers, with Docker's rules: deny with EPERM
//! by default, allow the syscalls ordinary programs use, allow the privileged ones only
//! with the capability that makes them meaningful, answer clone3 with ENOSYS (so libc
//! falls back to clone, whose namespace flags are filtered) unless CAP_SYS_ADMIN is held.

use serde_json::{Value, json};

/// Syscalls every container may make.
const ALLOWED: &str = "accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32 \
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64 \
clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3 \
epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old \
eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate \
fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr \
flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate \
ftruncate64 futex futex_time64 futex_waitv futimesat getcpu getcwd getdents getdents64 getegid getegid32 \
geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid \
getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list \
getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr \
inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents \
io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit ipc kill landlock_add_rule \
landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listxattr \
llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise membarrier memfd_create \
memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr \
mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink \
mremap msgctl msgget msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat \
_newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free \
pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6 \
pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg \
recvmmsg_time64 recvmsg remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir \
rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend \
rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr \
sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval \
sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam sched_setscheduler \
sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64 \
sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 \
setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid \
setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32 \
setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn \
socketcall socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync sync_file_range \
syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 \
timer_settime timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime \
timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat utime utimensat \
utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev \
process_vm_readv process_vm_writev ptrace arch_prctl modify_ldt";

/// Syscalls allowed only with a capability.
const BY_CAPABILITY: &[(&str, &str)] = &[
    (
        "CAP_SYS_ADMIN",
        "bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount \
        mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname sethostname \
        setns syslog umount umount2 unshare",
    ),
    ("CAP_SYS_BOOT", "reboot"),
    ("CAP_SYS_CHROOT", "chroot"),
    ("CAP_SYS_MODULE", "delete_module init_module finit_module"),
    ("CAP_SYS_PACCT", "acct"),
    ("CAP_SYS_PTRACE", "kcmp pidfd_getfd process_madvise"),
    ("CAP_SYS_RAWIO", "iopl ioperm"),
    (
        "CAP_SYS_TIME",
        "settimeofday stime clock_settime clock_settime64",
    ),
    ("CAP_SYS_TTY_CONFIG", "vhangup"),
    (
        "CAP_SYS_NICE",
        "get_mempolicy mbind set_mempolicy set_mempolicy_home_node",
    ),
    ("CAP_SYSLOG", "syslog"),
    ("CAP_BPF", "bpf"),
    ("CAP_PERFMON", "perf_event_open"),
    ("CAP_DAC_READ_SEARCH", "open_by_handle_at"),
];

/// Namespace flags of clone(2) that a container without CAP_SYS_ADMIN may not pass.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

fn names(list: &str) -> Vec<&str> {
    list.split_whitespace().collect()
}

fn architectures() -> Value {
    match std::env::consts::ARCH {
        "aarch64" => json!(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]),
        _ => json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
    }
}

/// The profile for a container holding `caps`.
pub fn default_profile(caps: &[String]) -> Value {
    let has = |c: &str| caps.iter().any(|x| x == c);
    let mut rules = vec![json!({"names": names(ALLOWED), "action": "SCMP_ACT_ALLOW"})];
    rules.push(json!({"names": ["socket"], "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]}));
    for persona in [0u64, 8, 131_072, 131_080, 4_294_967_295] {
        rules.push(json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": persona, "op": "SCMP_CMP_EQ"}]}));
    }
    for (cap, list) in BY_CAPABILITY {
        if has(cap) {
            rules.push(json!({"names": names(list), "action": "SCMP_ACT_ALLOW"}));
        }
    }
    if !has("CAP_SYS_ADMIN") {
        rules.push(json!({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": CLONE_NAMESPACE_FLAGS, "op": "SCMP_CMP_MASKED_EQ"}]}));
        rules.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}));
    }
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": architectures(),
        "syscalls": rules
    })
}

/// The Go name of this machine's architecture, as Docker profiles' `arches` use it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// A profile as `--security-opt seccomp=<json>` sends it (the docker CLI reads the
/// file): Docker's format (`archMap`, `includes`/`excludes` by capability and
/// architecture) or OCI's, as the OCI `linux.seccomp` for a container holding `caps`.
pub fn from_profile(text: &str, caps: &[String]) -> crate::Result<Value> {
    let bad =
        |m: String| crate::Error::InvalidInput(format!("Decoding seccomp profile failed: {m}"));
    let p: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let default = p["defaultAction"]
        .as_str()
        .filter(|a| a.starts_with("SCMP_ACT_"))
        .ok_or_else(|| bad("defaultAction is missing".into()))?;
    let mut out = json!({"defaultAction": default});
    if let Some(e) = p.get("defaultErrnoRet").filter(|v| !v.is_null()) {
        out["defaultErrnoRet"] = e.clone();
    }
    out["architectures"] = if let Some(a) = p["architectures"].as_array().filter(|a| !a.is_empty())
    {
        Value::Array(a.clone())
    } else if let Some(map) = p["archMap"].as_array() {
        // Only this machine's entry: its architecture and the ones it also runs.
        let native = architectures();
        let mine = map
            .iter()
            .find(|m| native.get(0) == Some(&m["architecture"]))
            .map(|m| {
                let mut v = vec![m["architecture"].clone()];
                v.extend(
                    m["subArchitectures"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                );
                Value::Array(v)
            });
        mine.unwrap_or(native)
    } else {
        architectures()
    };
    let has_all = |list: &Value| {
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .all(|c| caps.iter().any(|x| x == c))
    };
    let any_of = |list: &Value| {
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|c| caps.iter().any(|x| x == c))
    };
    let arch_in = |list: &Value| {
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|a| a == go_arch())
    };
    let mut rules = Vec::new();
    for rule in p["syscalls"].as_array().into_iter().flatten() {
        let inc = &rule["includes"];
        let exc = &rule["excludes"];
        if !has_all(&inc["caps"])
            || (inc["arches"].as_array().is_some_and(|a| !a.is_empty()) && !arch_in(&inc["arches"]))
            || any_of(&exc["caps"])
            || arch_in(&exc["arches"])
        {
            continue;
        }
        let mut names: Vec<Value> = rule["names"].as_array().cloned().unwrap_or_default();
        if let Some(n) = rule["name"].as_str() {
            names.push(json!(n));
        }
        if names.is_empty() {
            continue;
        }
        let action = rule["action"]
            .as_str()
            .ok_or_else(|| bad("a syscall rule has no action".into()))?;
        let mut r = json!({"names": names, "action": action});
        if let Some(a) = rule["args"].as_array().filter(|a| !a.is_empty()) {
            r["args"] = Value::Array(a.clone());
        }
        if let Some(e) = rule.get("errnoRet").filter(|v| !v.is_null()) {
            r["errnoRet"] = e.clone();
        }
        rules.push(r);
    }
    out["syscalls"] = Value::Array(rules);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privileged_syscalls_follow_capabilities() {
        let plain = default_profile(&["CAP_CHOWN".to_string()]).to_string();
        assert!(!plain.contains("\"mount\""), "mount needs CAP_SYS_ADMIN");
        assert!(plain.contains("\"errnoRet\":38"), "clone3 answers ENOSYS");
        let admin = default_profile(&["CAP_SYS_ADMIN".to_string()]).to_string();
        assert!(admin.contains("\"mount\"") && !admin.contains("\"errnoRet\":38"));
    }

    #[test]
    fn docker_profiles_are_filtered_by_capability_and_architecture() {
        let profile = r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
                        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": []}],
            "syscalls": [
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                {"names": ["mount"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["chroot"], "action": "SCMP_ACT_ERRNO", "includes": {"arches": ["s390x"]}}
            ]}"#;
        let p = from_profile(profile, &["CAP_CHOWN".into()]).unwrap();
        assert_eq!(p["defaultAction"], "SCMP_ACT_ALLOW");
        assert_eq!(p["syscalls"].as_array().unwrap().len(), 2, "{p}");
        assert_eq!(p["syscalls"][0]["errnoRet"], 1);
        let admin = from_profile(profile, &["CAP_SYS_ADMIN".into()]).unwrap();
        assert_eq!(admin["syscalls"].as_array().unwrap().len(), 1);
        if std::env::consts::ARCH == "x86_64" {
            assert_eq!(
                p["architectures"],
                json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
            );
        }
        assert!(from_profile("{}", &[]).is_err());
    }
}
