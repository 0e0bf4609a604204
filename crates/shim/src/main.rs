//! `berth-shim`: the supervisor of one container, started by `berthd`, outliving it.
//!
//! It creates the container in-process with the runtime library (no runtime exec on the
//! start path), holds the container's stdout and stderr pipes, appends every line to the
//! json-file log, copies output to attached clients (in Docker's stream format), and when
//! the container's init exits records the exit code and time in `exit.json`, removes the
//! runtime state and exits. It never starts threads: it forks through the runtime.
//!
//! Protocol with berthd: arguments name the container; the shim prints one JSON line on
//! its stdout, `{"pid": N}` once the container is created (its process waits for
//! `start`, which berthd issues through the runtime library after connecting attach
//! clients) or `{"error": "..."}`, then detaches from berthd's pipes. Attach clients
//! speak the protocol of `berth_types::shim` on `attach.sock` in the state directory.
//!
//! Exec mode (`--exec-process FILE`): the same supervision for one extra process in a
//! running container. The shim prints `{"ready": true}` once its attach socket listens,
//! waits for a line on stdin (berthd connects the clients meanwhile), then runs the
//! process and reports `{"pid": N}` as above; its exit goes to `exit.json` as well.

mod log;
mod memory;
mod streams;

use std::io::Write;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use berth_runtime::{CreateOptions, StateRoot};

/// Parsed arguments.
struct Args {
    id: String,
    bundle: Option<PathBuf>,
    runtime_root: PathBuf,
    state_dir: PathBuf,
    log: Option<PathBuf>,
    /// Rotate the log past this many bytes (0: never).
    log_max_size: u64,
    /// Keep this many log files.
    log_max_files: u32,
    /// Attributes written with each log entry (a JSON object).
    log_attrs: Option<serde_json::Value>,
    /// Exec mode: the process to run in the running container `id`.
    exec_process: Option<PathBuf>,
    stdio: streams::StdioConfig,
}

const USAGE: &str = "usage: berth-shim --id ID --runtime-root DIR --state-dir DIR [--bundle DIR [--log FILE [--log-max-size BYTES --log-max-files N] [--log-attrs JSON]] | --exec-process FILE] [--tty true|false] [--stdin true|false] [--raw-output true|false]";

fn parse_args() -> Result<Args, String> {
    let mut values = std::collections::HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let known = [
            "--id",
            "--bundle",
            "--runtime-root",
            "--state-dir",
            "--log",
            "--log-max-size",
            "--log-max-files",
            "--log-attrs",
            "--exec-process",
            "--tty",
            "--stdin",
            "--raw-output",
        ];
        if !known.contains(&flag.as_str()) {
            return Err(format!("unknown flag {flag}"));
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        values.insert(flag, value);
    }
    let mut take = |k: &str| values.remove(k);
    let required = |v: Option<String>, k: &str| v.ok_or_else(|| format!("{k} is required"));
    let args = Args {
        id: required(take("--id"), "--id")?,
        bundle: take("--bundle").map(PathBuf::from),
        runtime_root: required(take("--runtime-root"), "--runtime-root")?.into(),
        state_dir: required(take("--state-dir"), "--state-dir")?.into(),
        log: take("--log").map(PathBuf::from),
        log_max_size: take("--log-max-size")
            .map_or(Ok(0), |v| v.parse())
            .map_err(|_| "--log-max-size: expected bytes".to_string())?,
        log_max_files: take("--log-max-files")
            .map_or(Ok(1), |v| v.parse())
            .map_err(|_| "--log-max-files: expected a count".to_string())?,
        log_attrs: take("--log-attrs")
            .map(|v| serde_json::from_str(&v))
            .transpose()
            .map_err(|e| format!("--log-attrs: {e}"))?,
        exec_process: take("--exec-process").map(PathBuf::from),
        stdio: {
            let tty = take("--tty").as_deref() == Some("true");
            streams::StdioConfig {
                tty,
                stdin: take("--stdin").as_deref() == Some("true"),
                raw_output: take("--raw-output").map_or(tty, |v| v == "true"),
            }
        },
    };
    if args.bundle.is_none() == args.exec_process.is_none() {
        return Err("give either --bundle (a container) or --exec-process (an exec)".into());
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("berth-shim: {e}; {USAGE}");
            std::process::exit(2);
        }
    };
    // Report channel: our stdout as berthd gave it; everything else goes to /dev/null.
    // SAFETY: a close-on-exec duplicate of our own stdout, owned by `report` alone.
    let report = unsafe { OwnedFd::from_raw_fd(libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3)) };
    let mut report = std::fs::File::from(report);
    match setup(&args, &mut report) {
        Ok(sup) => {
            let _ = writeln!(report, "{}", serde_json::json!({ "pid": sup.pid }));
            drop(report);
            memory::shed();
            let code = sup.run();
            std::process::exit(code);
        }
        Err(e) => {
            let _ = writeln!(report, "{}", serde_json::json!({ "error": e }));
            std::process::exit(1);
        }
    }
}

/// Everything the supervision loop needs.
struct Supervisor {
    id: String,
    pid: i32,
    root: StateRoot,
    streams: streams::Streams,
    state_dir: PathBuf,
    /// An exec's shim leaves the container alone when its process exits.
    is_exec: bool,
}

fn setup(args: &Args, report: &mut std::fs::File) -> Result<Supervisor, String> {
    // A session of our own: berthd's signals and exit do not reach us.
    let _ = rustix::process::setsid();
    // SAFETY: prctl with integer arguments on ourselves.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let root = StateRoot::open(&args.runtime_root).map_err(|e| e.to_string())?;
    let log = match &args.log {
        Some(path) => Some(
            log::JsonLog::open(path, args.log_max_size, args.log_max_files)
                .map_err(|e| format!("open log {}: {e}", path.display()))?
                .with_attrs(args.log_attrs.clone()),
        ),
        None => None,
    };
    let (mut streams, container_stdio) = streams::Streams::new(log, &args.state_dir, &args.stdio)
        .map_err(|e| format!("set up stdio: {e}"))?;
    let exec_process = match &args.exec_process {
        Some(path) => Some(read_process(path)?),
        None => None,
    };
    if exec_process.is_some() {
        // An exec runs at once: let berthd connect its clients first, then go.
        let _ = writeln!(report, "{}", serde_json::json!({ "ready": true }));
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        streams.accept_waiting();
    }
    let opts = CreateOptions {
        console_socket: container_stdio.console_socket.clone(),
        ..Default::default()
    };
    // The container inherits descriptors 0-2 at fork: point them at its pipes for the
    // duration of create, then back at /dev/null.
    container_stdio
        .install()
        .map_err(|e| format!("install stdio: {e}"))?;
    let pid = match (&exec_process, &args.bundle) {
        (Some(process), _) => exec(&root, &args.id, process, &opts),
        (None, Some(bundle)) => berth_runtime::create(&root, &args.id, bundle, &opts)
            .map(|c| c.record.pid)
            .map_err(|e| e.to_string()),
        (None, None) => Err("nothing to run".into()),
    };
    streams::Streams::restore_own_stdio();
    let pid = pid?;
    streams
        .after_create(container_stdio, args.stdio.stdin)
        .map_err(|e| format!("terminal: {e}"))?;
    Ok(Supervisor {
        id: args.id.clone(),
        pid,
        root,
        streams,
        state_dir: args.state_dir.clone(),
        is_exec: exec_process.is_some(),
    })
}

fn read_process(path: &std::path::Path) -> Result<oci_spec::runtime::Process, String> {
    let data = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    serde_json::from_slice(&data).map_err(|e| format!("parse {}: {e}", path.display()))
}

fn exec(
    root: &StateRoot,
    id: &str,
    process: &oci_spec::runtime::Process,
    opts: &CreateOptions,
) -> Result<i32, String> {
    let container = berth_runtime::Container::load(root, id).map_err(|e| e.to_string())?;
    let exec_opts = berth_runtime::ExecOptions {
        console_socket: opts.console_socket.clone(),
        ..Default::default()
    };
    container
        .exec(process, &exec_opts)
        .map_err(|e| e.to_string())
}

impl Supervisor {
    /// Copies output until init exits; records the exit; cleans up the runtime state.
    fn run(mut self) -> i32 {
        let pidfd = match berth_runtime::sys::pidfd_open(self.pid) {
            Ok(fd) => fd,
            Err(_) => return self.finish(255),
        };
        loop {
            match self.streams.pump(pidfd.as_fd()) {
                Ok(true) => break,
                Ok(false) => continue,
                Err(_) => break,
            }
        }
        self.streams.drain();
        let status = berth_runtime::sys::waitpid(self.pid, 0).ok().flatten();
        let code = status.map(berth_runtime::sys::exit_code).unwrap_or(255);
        self.finish(code)
    }

    fn finish(mut self, code: i32) -> i32 {
        let container = if self.is_exec {
            None
        } else {
            berth_runtime::Container::load(&self.root, &self.id).ok()
        };
        // Read before the cgroup goes with the container's state.
        let oom_killed = container
            .as_ref()
            .and_then(|c| c.cgroup().ok())
            .is_some_and(|cg| cg.oom_kills() > 0);
        let exit = serde_json::json!({
            "ExitCode": code,
            "FinishedAt": berth_types::time::now_rfc3339(),
            "OOMKilled": oom_killed,
        });
        let path = self.state_dir.join("exit.json");
        let _ = berth_runtime::state::write_atomic(&path, exit.to_string().as_bytes());
        self.streams.close();
        if let Some(c) = container {
            let _ = c.delete(true);
        }
        0
    }
}
