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
//! clients) or `{"error": "..."}`, then detaches from berthd's pipes.

mod log;
mod streams;

use std::io::Write;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use berth_runtime::{CreateOptions, StateRoot};

/// Parsed arguments.
struct Args {
    id: String,
    bundle: PathBuf,
    runtime_root: PathBuf,
    state_dir: PathBuf,
    log: PathBuf,
    tty: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut get = |name: &str| -> Result<String, String> {
        match (it.next(), it.next()) {
            (Some(flag), Some(value)) if flag == name => Ok(value),
            _ => Err(format!("expected {name} VALUE")),
        }
    };
    let id = get("--id")?;
    let bundle = get("--bundle")?.into();
    let runtime_root = get("--runtime-root")?.into();
    let state_dir = get("--state-dir")?.into();
    let log = get("--log")?.into();
    let tty = get("--tty")? == "true";
    Ok(Args {
        id,
        bundle,
        runtime_root,
        state_dir,
        log,
        tty,
    })
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "berth-shim: {e}; usage: berth-shim --id ID --bundle DIR --runtime-root DIR --state-dir DIR --log FILE --tty true|false"
            );
            std::process::exit(2);
        }
    };
    // Report channel: our stdout as berthd gave it; everything else goes to /dev/null.
    // SAFETY: a close-on-exec duplicate of our own stdout, owned by `report` alone.
    let report = unsafe { OwnedFd::from_raw_fd(libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3)) };
    let mut report = std::fs::File::from(report);
    match setup(&args) {
        Ok(sup) => {
            let _ = writeln!(report, "{}", serde_json::json!({ "pid": sup.pid }));
            drop(report);
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
}

fn setup(args: &Args) -> Result<Supervisor, String> {
    // A session of our own: berthd's signals and exit do not reach us.
    let _ = rustix::process::setsid();
    // SAFETY: prctl with integer arguments on ourselves.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let root = StateRoot::open(&args.runtime_root).map_err(|e| e.to_string())?;
    let log = log::JsonLog::open(&args.log)
        .map_err(|e| format!("open log {}: {e}", args.log.display()))?;
    let (streams, container_stdio) = streams::Streams::new(log, &args.state_dir, args.tty)
        .map_err(|e| format!("set up stdio: {e}"))?;
    let opts = CreateOptions {
        console_socket: container_stdio.console_socket.clone(),
        ..Default::default()
    };
    // The container inherits descriptors 0-2 at fork: point them at its pipes for the
    // duration of create, then back at /dev/null.
    container_stdio
        .install()
        .map_err(|e| format!("install stdio: {e}"))?;
    let created = berth_runtime::create(&root, &args.id, &args.bundle, &opts);
    streams::Streams::restore_own_stdio();
    let container = created.map_err(|e| e.to_string())?;
    let mut streams = streams;
    streams
        .after_create(container_stdio)
        .map_err(|e| format!("terminal: {e}"))?;
    Ok(Supervisor {
        id: args.id.clone(),
        pid: container.record.pid,
        root,
        streams,
        state_dir: args.state_dir.clone(),
    })
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
        let exit =
            serde_json::json!({ "ExitCode": code, "FinishedAt": berth_types::time::now_rfc3339() });
        let path = self.state_dir.join("exit.json");
        let _ = berth_runtime::state::write_atomic(&path, exit.to_string().as_bytes());
        self.streams.close();
        if let Ok(c) = berth_runtime::Container::load(&self.root, &self.id) {
            let _ = c.delete(true);
        }
        0
    }
}
