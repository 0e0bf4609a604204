//! Container operations: create, start, kill, delete, pause, resume, exec and queries. Each
//! validates first and undoes what it did when a later step fails.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_cgroups::Manager;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources, Process, Spec};
use rustix::fs::{Mode, OFlags};

use crate::error::{Error, IoContext, Result};
use crate::launch::{self, Launch, Namespaces, Role};
use crate::security::CapSets;
use crate::spec::{self, Bundle};
use crate::state::{self, EXEC_FIFO, OciState, Record, StateRoot, Status};
use crate::{console, hooks, seccomp, sys};

/// Options of `create` (and `run`).
#[derive(Debug, Default, Clone)]
pub struct CreateOptions {
    /// Unix socket that receives the pty master when `process.terminal` is set.
    pub console_socket: Option<PathBuf>,
    /// File to write the init's pid to.
    pub pid_file: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root.
    pub no_pivot: bool,
    /// Number of descriptors after stdio to pass into the container.
    pub preserve_fds: u32,
}

/// Options of `exec`.
#[derive(Debug, Default, Clone)]
pub struct ExecOptions {
    /// Unix socket that receives the pty master when the process has a terminal.
    pub console_socket: Option<PathBuf>,
    /// File to write the new process's pid to.
    pub pid_file: Option<PathBuf>,
    /// Number of descriptors after stdio to pass into the container.
    pub preserve_fds: u32,
}

/// A container known to the state root.
#[derive(Debug)]
pub struct Container {
    root: StateRoot,
    /// What was recorded at create time.
    pub record: Record,
}

fn cgroup_for(id: &str, spec: &Spec) -> Result<Manager> {
    let path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_string_lossy().into_owned());
    Ok(Manager::new(path.as_deref(), id)?)
}

/// The config's resources, with runc's always-allowed devices appended to any device rules:
/// without them a "deny all" rule would stop init from creating /dev/null or a terminal.
fn resources(spec: &Spec) -> Option<LinuxResources> {
    let mut res = spec.linux().as_ref().and_then(|l| l.resources().clone())?;
    if let Some(rules) = res.devices().clone() {
        let defaults: Vec<LinuxDeviceCgroup> = serde_json::from_value(serde_json::json!([
            {"allow": true, "type": "c", "access": "m"},
            {"allow": true, "type": "b", "access": "m"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rwm"}
        ]))
        .expect("static device rules parse");
        res.set_devices(Some(rules.into_iter().chain(defaults).collect()));
    }
    Some(res)
}

fn compile_seccomp(spec: &Spec, root: &StateRoot) -> Result<Option<seccomp::Filter>> {
    let cache = root.path().join(".seccomp-cache");
    spec.linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(|p| seccomp::compile_cached(p, Some(&cache)))
        .transpose()
}

/// Undoes a half-done create unless disarmed.
struct CreateGuard<'a> {
    root: &'a StateRoot,
    id: &'a str,
    cgroup: Option<&'a Manager>,
    armed: bool,
}

impl Drop for CreateGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(cg) = self.cgroup {
            let _ = cg.kill_all(libc::SIGKILL);
            let _ = cg.destroy();
        }
        let _ = self.root.remove(self.id);
    }
}

/// Creates a container from the bundle at `bundle_dir`; its init waits for [`Container::start`].
pub fn create(
    root: &StateRoot,
    id: &str,
    bundle_dir: &Path,
    opts: &CreateOptions,
) -> Result<Container> {
    state::validate_id(id)?;
    let bundle = spec::load_bundle(bundle_dir)?;
    let Bundle { dir, rootfs, spec } = &bundle;
    let process = spec
        .process()
        .as_ref()
        .expect("validated: process is present");
    let namespaces = Namespaces::for_init(spec);
    if namespaces.user == launch::UserNs::Inherit {
        CapSets::from_spec(process.capabilities().as_ref()).check_grantable()?;
    }
    let terminal = process.terminal().unwrap_or(false);
    if terminal && opts.console_socket.is_none() {
        return Err(Error::InvalidArgument(
            "process.terminal is true: pass --console-socket to receive the terminal".into(),
        ));
    }
    let cgroup = cgroup_for(id, spec)?;
    let resources = resources(spec);
    if let Some(res) = &resources {
        cgroup.validate(res)?;
    }
    let seccomp = compile_seccomp(spec, root)?;
    let console = match (&opts.console_socket, terminal) {
        (Some(path), true) => Some(console::connect(path)?),
        _ => None,
    };

    let state_dir = root.reserve(id)?;
    let mut guard = CreateGuard {
        root,
        id,
        cgroup: None,
        armed: true,
    };
    let fifo = make_exec_fifo(&state_dir)?;
    cgroup.create()?;
    guard.cgroup = Some(&cgroup);
    if let Some(res) = &resources {
        cgroup.apply(res)?;
    }
    let created = state::now_rfc3339();
    let oci_state = OciState {
        oci_version: spec.version().clone(),
        id: id.to_string(),
        pid: 0,
        // runtime-tools expects "created" in the state that creation-time hooks read.
        status: Status::Created,
        bundle: dir.clone(),
        rootfs: rootfs.clone(),
        created: created.clone(),
        owner: String::new(),
        annotations: annotations(spec),
    };
    let launch = Launch {
        spec,
        process,
        role: Role::Init {
            fifo,
            bundle: dir.clone(),
            rootfs: rootfs.clone(),
            no_pivot: opts.no_pivot,
            state: Box::new(oci_state.clone()),
        },
        namespaces,
        cgroup: &cgroup,
        console,
        seccomp,
        preserve_fds: opts.preserve_fds,
    };
    let mut run_create_hooks = |pid: i32| -> Result<()> {
        let mut st = oci_state.clone();
        st.pid = pid;
        let hooks = spec.hooks().as_ref();
        #[allow(deprecated)]
        hooks::run_all("prestart", hooks.and_then(|h| h.prestart().as_ref()), &st)?;
        hooks::run_all(
            "createRuntime",
            hooks.and_then(|h| h.create_runtime().as_ref()),
            &st,
        )
    };
    let pid = launch::spawn(&launch, &mut run_create_hooks)?;
    let record = Record {
        id: id.to_string(),
        pid,
        pid_start: state::live_start_time(pid).unwrap_or(0),
        bundle: dir.clone(),
        rootfs: rootfs.clone(),
        created,
        config: spec.clone(),
    };
    let saved = root
        .save(&record)
        .and_then(|()| write_pid_file(opts.pid_file.as_deref(), pid));
    if let Err(e) = saved {
        let _ = sys::kill(pid, libc::SIGKILL);
        let _ = sys::waitpid(pid, 0);
        return Err(e);
    }
    guard.armed = false;
    Ok(Container {
        root: root.clone(),
        record,
    })
}

fn annotations(spec: &Spec) -> std::collections::BTreeMap<String, String> {
    spec.annotations()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// Creates the exec FIFO; returns an O_PATH handle on the state dir, through which init
/// opens the FIFO after pivot_root (without needing /proc in the container).
fn make_exec_fifo(state_dir: &Path) -> Result<OwnedFd> {
    let path = state_dir.join(EXEC_FIFO);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &path,
        rustix::fs::FileType::Fifo,
        Mode::from_raw_mode(0o622),
        0,
    )
    .ctx(|| format!("create {}", path.display()))?;
    // The umask narrowed the mode; init may run as a mapped root that is "other" here.
    rustix::fs::chmod(&path, Mode::from_raw_mode(0o622))
        .ctx(|| format!("chmod {}", path.display()))?;
    rustix::fs::open(
        state_dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {}", state_dir.display()))
}

fn write_pid_file(path: Option<&Path>, pid: i32) -> Result<()> {
    match path {
        Some(p) => state::write_atomic(p, pid.to_string().as_bytes()),
        None => Ok(()),
    }
}

impl Container {
    /// Loads a container by id.
    pub fn load(root: &StateRoot, id: &str) -> Result<Self> {
        Ok(Container {
            root: root.clone(),
            record: root.load(id)?,
        })
    }

    /// The container id.
    pub fn id(&self) -> &str {
        &self.record.id
    }

    /// The container's cgroup.
    pub fn cgroup(&self) -> Result<Manager> {
        cgroup_for(&self.record.id, &self.record.config)
    }

    fn init_alive(&self) -> bool {
        self.record.pid > 0
            && state::live_start_time(self.record.pid) == Some(self.record.pid_start)
    }

    fn fifo_path(&self) -> PathBuf {
        self.root.container_dir(&self.record.id).join(EXEC_FIFO)
    }

    /// The status, read from the live system.
    pub fn status(&self) -> Status {
        if !self.init_alive() {
            Status::Stopped
        } else if self.fifo_path().exists() {
            Status::Created
        } else if self
            .cgroup()
            .and_then(|c| Ok(c.is_frozen()?))
            .unwrap_or(false)
        {
            Status::Paused
        } else {
            Status::Running
        }
    }

    /// The state as `state` prints it.
    pub fn oci_state(&self) -> OciState {
        let status = self.status();
        OciState {
            oci_version: self.record.config.version().clone(),
            id: self.record.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.record.pid
            },
            status,
            bundle: self.record.bundle.clone(),
            rootfs: self.record.rootfs.clone(),
            created: self.record.created.clone(),
            owner: String::new(),
            annotations: annotations(&self.record.config),
        }
    }

    fn pidfd(&self) -> Result<OwnedFd> {
        let fd =
            sys::pidfd_open(self.record.pid).ctx(|| format!("open pid {}", self.record.pid))?;
        // The pid could have been reused between the record and the pidfd: check again.
        if !self.init_alive() {
            return Err(Error::WrongStatus(format!(
                "container {} is not running",
                self.id()
            )));
        }
        Ok(fd)
    }

    /// Lets a created container's init exec the user process, then runs poststart hooks.
    pub fn start(&self) -> Result<()> {
        match self.status() {
            Status::Created => {}
            Status::Stopped => {
                return Err(Error::WrongStatus(format!(
                    "cannot start a container that has stopped: {}",
                    self.id()
                )));
            }
            s => {
                return Err(Error::WrongStatus(format!(
                    "cannot start a container that is {s}: {}",
                    self.id()
                )));
            }
        }
        let pidfd = self.pidfd()?;
        let fifo = rustix::fs::open(
            self.fifo_path(),
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| format!("open {}", self.fifo_path().display()))?;
        // Wait for init's byte, or for init to die: a reader alone would block forever then.
        let mut fds = [
            rustix::event::PollFd::new(&fifo, rustix::event::PollFlags::IN),
            rustix::event::PollFd::new(&pidfd, rustix::event::PollFlags::IN),
        ];
        loop {
            match rustix::event::poll(&mut fds, None) {
                Err(rustix::io::Errno::INTR) => continue,
                r => {
                    r.ctx(|| "wait for container init".into())?;
                    break;
                }
            }
        }
        let mut byte = [0u8; 1];
        let got = rustix::io::read(&fifo, &mut byte).unwrap_or(0);
        let _ = std::fs::remove_file(self.fifo_path());
        if got != 1 {
            return Err(Error::Init(format!(
                "container {} init exited before start",
                self.id()
            )));
        }
        let mut st = self.oci_state();
        st.status = Status::Running;
        st.pid = self.record.pid;
        let poststart = self
            .record
            .config
            .hooks()
            .as_ref()
            .and_then(|h| h.poststart().as_ref());
        // The spec says a failing poststart hook only warrants a warning.
        if let Err(e) = hooks::run_all("poststart", poststart, &st) {
            eprintln!("warning: {e}");
        }
        Ok(())
    }

    /// Sends `signal` to the init, or with `all` to every process in the cgroup.
    pub fn kill(&self, signal: i32, all: bool) -> Result<()> {
        match self.status() {
            Status::Stopped if !all => {
                return Err(Error::WrongStatus(format!(
                    "container {} is not running",
                    self.id()
                )));
            }
            _ => {}
        }
        if all {
            return Ok(self.cgroup()?.kill_all(signal)?);
        }
        let pidfd = self.pidfd()?;
        sys::pidfd_send_signal(pidfd.as_fd(), signal)
            .ctx(|| format!("send signal {signal} to container {}", self.id()))
    }

    /// Freezes every process of the container.
    pub fn pause(&self) -> Result<()> {
        match self.status() {
            Status::Running | Status::Created => Ok(self.cgroup()?.freeze()?),
            s => Err(Error::WrongStatus(format!(
                "container {} is {s}, not running",
                self.id()
            ))),
        }
    }

    /// Thaws a paused container.
    pub fn resume(&self) -> Result<()> {
        match self.status() {
            Status::Paused => Ok(self.cgroup()?.thaw()?),
            s => Err(Error::WrongStatus(format!(
                "container {} is {s}, not paused",
                self.id()
            ))),
        }
    }

    /// Host pids of every process in the container.
    pub fn pids(&self) -> Result<Vec<i32>> {
        Ok(self.cgroup()?.pids()?)
    }

    /// Cgroup statistics.
    pub fn stats(&self) -> Result<berth_cgroups::Stats> {
        Ok(self.cgroup()?.stats()?)
    }

    /// Applies new resource limits to a live container.
    pub fn update(&self, res: &LinuxResources) -> Result<()> {
        let cg = self.cgroup()?;
        cg.validate(res)?;
        Ok(cg.apply(res)?)
    }

    /// Removes the container: its processes (only with `force` if it runs), cgroup and
    /// state; then runs poststop hooks.
    pub fn delete(self, force: bool) -> Result<()> {
        let status = self.status();
        let cg = self.cgroup()?;
        match status {
            Status::Stopped | Status::Created => {}
            Status::Running | Status::Paused if force => {}
            s => {
                return Err(Error::WrongStatus(format!(
                    "cannot delete container {} that is not stopped: {s}",
                    self.id()
                )));
            }
        }
        if status != Status::Stopped {
            if status == Status::Paused {
                let _ = cg.thaw();
            }
            if let Ok(fd) = self.pidfd() {
                let _ = sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
                wait_for_exit(&fd, Duration::from_secs(10));
            }
        }
        // Without a pid namespace, processes can outlive the init.
        let _ = cg.kill_all(libc::SIGKILL);
        cg.destroy()?;
        let mut st = self.oci_state();
        st.status = Status::Stopped;
        let poststop = self
            .record
            .config
            .hooks()
            .as_ref()
            .and_then(|h| h.poststop().as_ref());
        if let Err(e) = hooks::run_all("poststop", poststop, &st) {
            eprintln!("warning: {e}");
        }
        self.root.remove(self.id())
    }

    /// Starts `process` inside the running container; returns its pid, a child of the caller.
    pub fn exec(&self, process: &Process, opts: &ExecOptions) -> Result<i32> {
        match self.status() {
            Status::Running | Status::Created => {}
            s => {
                return Err(Error::WrongStatus(format!(
                    "cannot exec in a {s} container {}",
                    self.id()
                )));
            }
        }
        let mut spec = self.record.config.clone();
        spec.set_process(Some(process.clone()));
        spec::validate(&spec)?;
        let terminal = process.terminal().unwrap_or(false);
        let console = match (&opts.console_socket, terminal) {
            (Some(path), true) => Some(console::connect(path)?),
            (None, true) => {
                return Err(Error::InvalidArgument(
                    "a terminal needs --console-socket".into(),
                ));
            }
            _ => None,
        };
        let cgroup = self.cgroup()?;
        let launch = Launch {
            spec: &spec,
            process,
            role: Role::Exec,
            namespaces: Namespaces::for_exec(self.record.pid)?,
            cgroup: &cgroup,
            console,
            seccomp: compile_seccomp(&spec, &self.root)?,
            preserve_fds: opts.preserve_fds,
        };
        let pid = launch::spawn(&launch, &mut |_| Ok(()))?;
        write_pid_file(opts.pid_file.as_deref(), pid)?;
        Ok(pid)
    }
}

/// Waits until the process behind `pidfd` exits, up to `timeout`.
fn wait_for_exit(pidfd: &OwnedFd, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let mut fds = [rustix::event::PollFd::new(
            pidfd,
            rustix::event::PollFlags::IN,
        )];
        let left = deadline.saturating_duration_since(Instant::now());
        let ts = rustix::time::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos() as i64,
        };
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(n) if n > 0 => return,
            Err(rustix::io::Errno::INTR) => continue,
            _ => return,
        }
    }
}

/// Every container under the state root, skipping records that cannot be read.
pub fn list(root: &StateRoot) -> Result<Vec<Container>> {
    Ok(root
        .ids()?
        .into_iter()
        .filter_map(|id| Container::load(root, &id).ok())
        .collect())
}
