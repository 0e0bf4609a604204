//! Starting a process inside a container: the runtime side of the handshake, and the two
//! forked stages that run in the new process tree.
//!
//! ```text
//! runtime ──fork──▶ stage 1: joins the cgroup (done by the runtime), enters or creates the
//!    ▲               user namespace, joins namespaces by path, unshares new ones, then
//!    │               forks the container process as the runtime's own child (CLONE_PARENT)
//!    │                 └──▶ container process: pid 1 of the new pid namespace; builds the
//!    └── sync socket ◀───   rootfs (init) or joins nothing more (exec), drops privileges,
//!                           reports Ready, and execs the user's program (after `start`).
//! ```
//! The runtime is single-threaded while it forks; the children only exec or `_exit`.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use berth_cgroups::Manager;
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};
use rustix::fs::{Mode, OFlags};

use crate::error::{Error, IoContext, Result};
use crate::rootfs::{self, RootfsBuilder};
use crate::security::{self, CapSets};
use crate::state::OciState;
use crate::sync::{self, Channel, Msg};
use crate::{console, hooks, seccomp, sys};

/// What the new process becomes.
pub enum Role {
    /// The container's init: builds the rootfs and waits on the exec FIFO for `start`.
    Init {
        /// O_PATH handle on the state dir, which holds exec.fifo.
        fifo: OwnedFd,
        /// Bundle directory (relative bind sources resolve against it).
        bundle: PathBuf,
        /// Absolute rootfs path.
        rootfs: PathBuf,
        /// Move the rootfs over / instead of pivot_root.
        no_pivot: bool,
        /// The state hooks see, with status and pid filled in by the process itself.
        state: Box<OciState>,
    },
    /// An additional process in a running container.
    Exec,
}

/// How a user namespace is obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserNs {
    /// Stay in the runtime's user namespace.
    Inherit,
    /// Create one; the runtime writes its id mappings.
    New,
    /// Join the one at this path.
    Join(PathBuf),
}

/// The namespaces a new process enters.
#[derive(Debug, Clone)]
pub struct Namespaces {
    /// The user namespace, handled first.
    pub user: UserNs,
    /// Namespaces joined by path, as (CLONE_NEW* flag, path); the mount namespace comes last.
    pub joins: Vec<(libc::c_int, PathBuf)>,
    /// CLONE_NEW* flags of namespaces created fresh.
    pub unshare: libc::c_int,
}

fn clone_flag(t: LinuxNamespaceType) -> libc::c_int {
    match t {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => libc::CLONE_NEWTIME,
    }
}

/// The /proc/PID/ns entry names, in the order exec joins them (user first, mount last).
const NS_ORDER: [(&str, libc::c_int); 7] = [
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("net", libc::CLONE_NEWNET),
    ("pid", libc::CLONE_NEWPID),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("time", libc::CLONE_NEWTIME),
    ("mnt", libc::CLONE_NEWNS),
];

impl Namespaces {
    /// The namespaces of a container's init, from `linux.namespaces`.
    pub fn for_init(spec: &Spec) -> Self {
        let mut ns = Namespaces {
            user: UserNs::Inherit,
            joins: Vec::new(),
            unshare: 0,
        };
        let list = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default();
        for n in list {
            let flag = clone_flag(n.typ());
            match (n.typ(), n.path()) {
                (LinuxNamespaceType::User, None) => ns.user = UserNs::New,
                (LinuxNamespaceType::User, Some(p)) => ns.user = UserNs::Join(p.clone()),
                (_, Some(p)) => ns.joins.push((flag, p.clone())),
                (_, None) => ns.unshare |= flag,
            }
        }
        ns.joins.sort_by_key(|(flag, _)| *flag == libc::CLONE_NEWNS);
        ns
    }

    /// The namespaces of a running init that differ from the runtime's own.
    pub fn for_exec(init_pid: i32) -> Result<Self> {
        let differs = |name: &str| -> Result<bool> {
            let theirs = std::fs::metadata(format!("/proc/{init_pid}/ns/{name}"));
            let ours = std::fs::metadata(format!("/proc/self/ns/{name}"));
            match (theirs, ours) {
                (Ok(t), Ok(o)) => {
                    use std::os::unix::fs::MetadataExt;
                    Ok(t.ino() != o.ino() || t.dev() != o.dev())
                }
                (Err(e), _) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                (Err(e), _) => Err(Error::io(
                    format!("inspect namespace {name} of pid {init_pid}"),
                    e,
                )),
                (Ok(_), Err(_)) => Ok(true),
            }
        };
        let user = if differs("user")? {
            UserNs::Join(PathBuf::from(format!("/proc/{init_pid}/ns/user")))
        } else {
            UserNs::Inherit
        };
        let mut joins = Vec::new();
        for (name, flag) in NS_ORDER {
            if differs(name)? {
                joins.push((flag, PathBuf::from(format!("/proc/{init_pid}/ns/{name}"))));
            }
        }
        Ok(Namespaces {
            user,
            joins,
            unshare: 0,
        })
    }

    /// Whether the process gets a mount namespace of its own (new, or joined by path, as
    /// runc treats both), where the rootfs is built. Without one the runtime only chroots.
    fn has_mount_ns(&self) -> bool {
        self.unshare & libc::CLONE_NEWNS != 0
            || self
                .joins
                .iter()
                .any(|(flag, _)| *flag == libc::CLONE_NEWNS)
    }
}

/// Everything a new container process needs, decided by the runtime before it forks.
pub struct Launch<'a> {
    /// The container's config.
    pub spec: &'a Spec,
    /// The process to run (the config's own, or an exec's).
    pub process: &'a Process,
    /// Init or exec.
    pub role: Role,
    /// Namespaces to enter.
    pub namespaces: Namespaces,
    /// The container's cgroup, which the process joins before anything of it runs.
    pub cgroup: &'a Manager,
    /// Connected `--console-socket`, when `process.terminal` is set.
    pub console: Option<OwnedFd>,
    /// The compiled seccomp filter, if any.
    pub seccomp: Option<seccomp::Filter>,
    /// How many descriptors after stdio pass into the container (`--preserve-fds`).
    pub preserve_fds: u32,
}

/// Forks the process and drives its setup to the Ready point; returns its host pid, a child
/// of the caller. `on_create_hooks` runs prestart and createRuntime hooks (init only).
pub fn spawn(l: &Launch<'_>, on_create_hooks: &mut dyn FnMut(i32) -> Result<()>) -> Result<i32> {
    let (parent, child) = sync::pair()?;
    // SAFETY: the runtime forks before it starts any thread (the CLI and the shim are
    // single-threaded at this point); the child only runs setup code and then execs or exits.
    let stage1 = unsafe { sys::fork() }.ctx(|| "fork".into())?;
    if stage1 == 0 {
        drop(parent);
        stage1_main(l, child);
    }
    drop(child);
    let mut pid = None;
    let result = drive(l, &parent, stage1, &mut pid, on_create_hooks);
    if result.is_err() {
        for p in [pid, Some(stage1)].into_iter().flatten() {
            let _ = sys::kill(p, libc::SIGKILL);
            let _ = sys::waitpid(p, 0);
        }
    }
    result
}

fn drive(
    l: &Launch<'_>,
    chan: &Channel,
    stage1: i32,
    pid: &mut Option<i32>,
    on_create_hooks: &mut dyn FnMut(i32) -> Result<()>,
) -> Result<i32> {
    l.cgroup.add_process(stage1)?;
    chan.send(&Msg::Continue)?;
    loop {
        match chan.recv()? {
            Msg::MapIds => {
                write_id_maps(stage1, l.spec)?;
                chan.send(&Msg::Continue)?;
            }
            Msg::Pid(p) => {
                *pid = Some(p);
                let status = sys::waitpid(stage1, 0).ctx(|| "wait for setup stage".into())?;
                if status.map(sys::exit_code) != Some(0) {
                    return Err(Error::Init("setup stage failed".into()));
                }
                if let Some(adj) = l.process.oom_score_adj() {
                    std::fs::write(format!("/proc/{p}/oom_score_adj"), adj.to_string())
                        .ctx(|| format!("process.oomScoreAdj: set {adj}"))?;
                }
                chan.send(&Msg::Pid(p))?;
            }
            Msg::RunCreateHooks => {
                on_create_hooks(pid.unwrap_or_default())?;
                chan.send(&Msg::Continue)?;
            }
            Msg::Ready => return pid.ok_or_else(|| Error::Init("ready before pid".into())),
            Msg::Failed(e) => {
                if pid.is_none() {
                    let _ = sys::waitpid(stage1, 0);
                }
                return Err(Error::Init(e));
            }
            Msg::Continue => return Err(Error::Init("unexpected message from container".into())),
        }
    }
}

fn write_id_maps(pid: i32, spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    for (file, maps) in [
        ("uid_map", linux.and_then(|l| l.uid_mappings().clone())),
        ("gid_map", linux.and_then(|l| l.gid_mappings().clone())),
    ] {
        let text: String = maps
            .unwrap_or_default()
            .iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect();
        std::fs::write(format!("/proc/{pid}/{file}"), &text)
            .ctx(|| format!("write {file} {:?}", text.trim_end()))?;
    }
    Ok(())
}

/// Reports a setup failure to the runtime and exits; used by both stages.
fn fail(chan: &Channel, e: Error) -> ! {
    let _ = chan.send(&Msg::Failed(e.to_string()));
    sys::exit_now(1)
}

fn stage1_main(l: &Launch<'_>, chan: Channel) -> ! {
    match stage1(l, &chan) {
        Ok(()) => sys::exit_now(0),
        Err(e) => fail(&chan, e),
    }
}

fn stage1(l: &Launch<'_>, chan: &Channel) -> Result<()> {
    sys::cloexec_from(3 + l.preserve_fds).ctx(|| "mark descriptors close-on-exec".into())?;
    for fd in 3..3 + l.preserve_fds as i32 {
        sys::clear_cloexec(fd).ctx(|| format!("--preserve-fds: fd {fd}"))?;
    }
    security::set_not_dumpable()?;
    chan.expect(&Msg::Continue)?;
    match &l.namespaces.user {
        UserNs::Inherit => {}
        UserNs::New => {
            sys::unshare(libc::CLONE_NEWUSER).ctx(|| "create user namespace".into())?;
            chan.send(&Msg::MapIds)?;
            chan.expect(&Msg::Continue)?;
            become_ns_root()?;
        }
        UserNs::Join(path) => {
            let fd = open_ns(path)?;
            sys::setns(fd.as_fd(), libc::CLONE_NEWUSER)
                .ctx(|| format!("join user namespace {}", path.display()))?;
            become_ns_root()?;
        }
    }
    // Open every namespace before joining any: joining the mount namespace changes what
    // the remaining paths mean.
    let fds: Vec<(libc::c_int, &Path, OwnedFd)> = l
        .namespaces
        .joins
        .iter()
        .map(|(flag, path)| open_ns(path).map(|fd| (*flag, path.as_path(), fd)))
        .collect::<Result<_>>()?;
    for (flag, path, fd) in &fds {
        sys::setns(fd.as_fd(), *flag).ctx(|| format!("join namespace {}", path.display()))?;
    }
    drop(fds);
    if l.namespaces.unshare != 0 {
        sys::unshare(l.namespaces.unshare).ctx(|| "create namespaces".into())?;
    }
    // SAFETY: this forked process is single-threaded.
    let pid = unsafe { sys::fork_sibling() }.ctx(|| "fork container process".into())?;
    if pid == 0 {
        container_main(l, chan);
    }
    chan.send(&Msg::Pid(pid))
}

fn become_ns_root() -> Result<()> {
    sys::setresgid(0).ctx(|| "setgid 0 in user namespace".into())?;
    sys::setresuid(0).ctx(|| "setuid 0 in user namespace".into())
}

fn open_ns(path: &Path) -> Result<OwnedFd> {
    rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .ctx(|| format!("open namespace {}", path.display()))
}

fn container_main(l: &Launch<'_>, chan: &Channel) -> ! {
    let result = (|| -> Result<Infallible> {
        let host_pid = match chan.recv()? {
            Msg::Pid(p) => p,
            other => return Err(Error::Init(format!("expected pid, got {other:?}"))),
        };
        match &l.role {
            Role::Init { .. } => init_setup(l, chan, host_pid),
            Role::Exec => exec_setup(l, chan),
        }
    })();
    match result {
        Err(e) => fail(chan, e),
    }
}

fn init_setup(l: &Launch<'_>, chan: &Channel, host_pid: i32) -> Result<Infallible> {
    let Role::Init {
        fifo,
        bundle,
        rootfs,
        no_pivot,
        state,
    } = &l.role
    else {
        unreachable!("init_setup runs for Role::Init only")
    };
    let mut state = (**state).clone();
    state.pid = host_pid;
    rustix::process::setsid().ctx(|| "setsid".into())?;
    rustix::process::umask(Mode::empty());
    let linux = l.spec.linux().as_ref();
    let user_ns = l.namespaces.user != UserNs::Inherit;
    let new_mnt = l.namespaces.has_mount_ns();
    if new_mnt {
        let builder = RootfsBuilder {
            spec: l.spec,
            rootfs,
            bundle,
            cgroupns: l.namespaces.unshare & libc::CLONE_NEWCGROUP != 0,
            userns: user_ns,
        };
        builder.prepare()?;
    }
    let hooks = l.spec.hooks().as_ref();
    #[allow(deprecated)]
    let has_create_hooks = hooks.is_some_and(|h| {
        h.prestart().as_ref().is_some_and(|v| !v.is_empty())
            || h.create_runtime().as_ref().is_some_and(|v| !v.is_empty())
    });
    if has_create_hooks {
        chan.send(&Msg::RunCreateHooks)?;
        chan.expect(&Msg::Continue)?;
    }
    hooks::run_all(
        "createContainer",
        hooks.and_then(|h| h.create_container().as_ref()),
        &state,
    )?;
    if new_mnt {
        if *no_pivot {
            rootfs::move_root(rootfs)?
        } else {
            rootfs::pivot(rootfs)?
        }
    } else {
        rustix::process::chroot(rootfs.as_path())
            .ctx(|| format!("chroot to {}", rootfs.display()))?;
        std::env::set_current_dir("/").ctx(|| "chdir to new root".into())?;
    }
    for (name, value) in linux
        .and_then(|l| l.sysctl().as_ref())
        .into_iter()
        .flatten()
    {
        let path = Path::new("/proc/sys").join(name.replace('.', "/"));
        std::fs::write(&path, value).ctx(|| format!("linux.sysctl.{name}: write {value:?}"))?;
    }
    if let Some(h) = l.spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        rustix::system::sethostname(h.as_bytes()).ctx(|| format!("hostname: set {h:?}"))?;
    }
    if let Some(d) = l.spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        rustix::system::setdomainname(d.as_bytes()).ctx(|| format!("domainname: set {d:?}"))?;
    }
    // After sysctls: /proc/sys is usually among the read-only paths.
    if new_mnt {
        let paths = |f: fn(&oci_spec::runtime::Linux) -> &Option<Vec<String>>| {
            linux.and_then(|l| f(l).as_deref()).unwrap_or_default()
        };
        rootfs::readonly_paths(paths(|l| l.readonly_paths()))?;
        rootfs::mask_paths(paths(|l| l.masked_paths()))?;
    }
    if l.process.terminal().unwrap_or(false) {
        let slave = setup_terminal(l)?;
        rootfs::bind_console(&slave)?;
    }
    if let Some(p) = linux.and_then(|l| l.personality().as_ref()) {
        security::set_personality(p)?;
    }
    // Without a mount namespace "/" is the host's root mount: never remount it.
    if new_mnt {
        if l.spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
            rootfs::readonly_root()?;
        }
        rootfs::set_root_propagation(l.spec)?;
    }
    finish(l, chan, Some((fifo, &state)))
}

fn exec_setup(l: &Launch<'_>, chan: &Channel) -> Result<Infallible> {
    if l.process.terminal().unwrap_or(false) {
        rustix::process::setsid().ctx(|| "setsid".into())?;
        setup_terminal(l)?;
    }
    finish(l, chan, None)
}

/// Opens a pty in the container's /dev/pts, sends its master over the console socket and
/// makes the slave this process's terminal; returns the slave.
fn setup_terminal(l: &Launch<'_>) -> Result<OwnedFd> {
    let sock = l.console.as_ref().ok_or_else(|| {
        Error::InvalidConfig("process.terminal is true but no console socket was given".into())
    })?;
    let size = l
        .process
        .console_size()
        .as_ref()
        .map(|b| (b.height() as u16, b.width() as u16));
    let (master, slave) = console::open_pty(size)?;
    console::send_fd(sock.as_fd(), master.as_fd(), "/dev/ptmx")?;
    drop(master);
    console::become_terminal(slave.as_fd())?;
    Ok(slave)
}

/// The steps shared by init and exec from privilege drop to exec.
fn finish(
    l: &Launch<'_>,
    chan: &Channel,
    init: Option<(&OwnedFd, &OciState)>,
) -> Result<Infallible> {
    let p = l.process;
    security::set_rlimits(p.rlimits().as_deref().unwrap_or_default())?;
    let env = environment(p);
    let exe = find_executable(p, &env)?;
    // Checked before a seccomp filter exists: the profile may deny getcwd.
    enter_cwd(p.cwd())?;
    let nnp = p.no_new_privileges().unwrap_or(false);
    if !nnp {
        // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while we have it.
        if let Some(f) = &l.seccomp {
            f.load()?;
        }
    }
    let caps = CapSets::from_spec(p.capabilities().as_ref());
    caps.drop_bounding()?;
    security::switch_user(p)?;
    caps.apply()?;
    // Again as the user, so a directory the user may not enter is refused as it would be
    // for any process of theirs. The path resolves the same way as the checked one above.
    std::env::set_current_dir(p.cwd()).ctx(|| {
        format!(
            "process.cwd: chdir to {} as the process user",
            p.cwd().display()
        )
    })?;
    rustix::process::umask(Mode::from_raw_mode(p.user().umask().unwrap_or(0o022)));
    if nnp {
        security::set_no_new_privs()?;
    }
    chan.send(&Msg::Ready)?;
    // Nobody reads the sync socket after Ready: report on the container's stderr instead.
    let Err(e) = after_ready(l, init, &exe, &env);
    eprintln!("berth-runtime: {e}");
    sys::exit_now(127)
}

/// From `start` to exec: the exec FIFO, startContainer hooks, a late seccomp filter.
fn after_ready(
    l: &Launch<'_>,
    init: Option<(&OwnedFd, &OciState)>,
    exe: &Path,
    env: &[String],
) -> Result<Infallible> {
    let p = l.process;
    if let Some((fifo, state)) = init {
        wait_for_start(fifo)?;
        let mut state = state.clone();
        state.status = crate::state::Status::Running;
        let hooks = l
            .spec
            .hooks()
            .as_ref()
            .and_then(|h| h.start_container().as_ref());
        hooks::run_all("startContainer", hooks, &state)?;
    }
    if p.no_new_privileges().unwrap_or(false)
        && let Some(f) = &l.seccomp
    {
        f.load()?;
    }
    let argv: Vec<CString> = p
        .args()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|a| {
            CString::new(a.as_bytes())
                .map_err(|_| Error::InvalidConfig("process.args: contains a NUL byte".into()))
        })
        .collect::<Result<_>>()?;
    let envp: Vec<CString> = env
        .iter()
        .filter_map(|e| CString::new(e.as_bytes()).ok())
        .collect();
    let path = CString::new(exe.as_os_str().as_bytes())
        .map_err(|_| Error::InvalidConfig("process.args[0]: contains a NUL byte".into()))?;
    sys::reset_signals();
    let err = sys::execve(&path, &argv, &envp);
    Err(Error::io(format!("exec {}", exe.display()), err))
}

/// Blocks until `start` opens the exec FIFO, then tells it we are about to exec.
fn wait_for_start(state_dir: &OwnedFd) -> Result<()> {
    let fd = rustix::fs::openat(
        state_dir,
        crate::state::EXEC_FIFO,
        OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open exec fifo".into())?;
    rustix::io::write(&fd, b"0").ctx(|| "write exec fifo".into())?;
    Ok(())
}

/// The process environment, with HOME added as runc does when the config lacks it.
fn environment(p: &Process) -> Vec<String> {
    let mut env = p.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_of(p.user().uid())));
    }
    env
}

fn home_of(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let f: Vec<&str> = line.split(':').collect();
                (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| f[5].to_string())
            })
        })
        .unwrap_or_else(|| "/".to_string())
}

/// Finds args[0] in the container like execvp would, so a missing program fails `create`
/// instead of a later `start`.
fn find_executable(p: &Process, env: &[String]) -> Result<PathBuf> {
    let name = p
        .args()
        .as_deref()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or_default();
    let is_exec = |path: &Path| {
        rustix::fs::access(path, rustix::fs::Access::EXEC_OK).is_ok() && !path.is_dir()
    };
    if name.contains('/') {
        let path = PathBuf::from(&name);
        let path = if path.is_absolute() {
            path
        } else {
            p.cwd().join(path)
        };
        return if is_exec(&path) {
            Ok(path)
        } else {
            Err(Error::InvalidConfig(format!(
                "exec: {name:?}: stat {name}: no such file or directory"
            )))
        };
    }
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path_var
        .split(':')
        .map(|dir| Path::new(dir).join(&name))
        .find(|candidate| is_exec(candidate))
        .ok_or_else(|| {
            Error::InvalidConfig(format!(
                "exec: {name:?}: executable file not found in $PATH"
            ))
        })
}

/// Enters the working directory and checks it is inside the container's root: a cwd that
/// goes through a leaked descriptor (/proc/self/fd/N) would point at the host.
fn enter_cwd(cwd: &Path) -> Result<()> {
    std::env::set_current_dir(cwd).ctx(|| format!("process.cwd: chdir to {}", cwd.display()))?;
    let now = rustix::process::getcwd(Vec::new()).ctx(|| "getcwd".into())?;
    let now = now.to_bytes();
    if now.first() != Some(&b'/') || now.starts_with(b"(unreachable)") {
        return Err(Error::InvalidConfig(format!(
            "process.cwd: {} resolves outside the container's root",
            cwd.display()
        )));
    }
    Ok(())
}
