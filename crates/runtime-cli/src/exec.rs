//! `exec`: a new process in a running container, from `--process` JSON or from flags over
//! the container's own process settings.

use std::path::PathBuf;

use anyhow::{Context, Result};
use berth_runtime::{Container, ExecOptions, StateRoot, sys};
use oci_spec::runtime::{Capability, Process};

use crate::{signals, tty};

/// Flags of `exec`.
#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// Unix socket that receives the pty master
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Working directory in the container
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// Set an environment variable (KEY=VALUE)
    #[arg(short, long)]
    env: Vec<String>,
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    tty: bool,
    /// UID[:GID] to run as
    #[arg(short, long)]
    user: Option<String>,
    /// Additional group ids
    #[arg(short = 'g', long = "additional-gids")]
    additional_gids: Vec<u32>,
    /// JSON file with the process to run (process in config.json's format)
    #[arg(short, long)]
    process: Option<PathBuf>,
    /// Detach from the process
    #[arg(short, long)]
    detach: bool,
    /// File to write the process pid to
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Set no_new_privs for the process
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    /// Add a capability to the bounding, effective, permitted and inheritable sets
    #[arg(short, long)]
    cap: Vec<String>,
    /// Pass this many extra descriptors (after stdio) into the process
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    /// Accepted for runc compatibility; ignored
    #[arg(long = "process-label", hide = true)]
    process_label: Option<String>,
    /// Accepted for runc compatibility; ignored
    #[arg(long, hide = true)]
    apparmor: Option<String>,
    /// Accepted for runc compatibility; ignored
    #[arg(long = "ignore-paused", hide = true)]
    ignore_paused: bool,
    /// Container id
    id: String,
    /// Command and arguments (when --process is not given)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn process_from_flags(a: &ExecArgs, base: &Process) -> Result<Process> {
    anyhow::ensure!(!a.command.is_empty(), "exec needs a command or --process");
    let mut p = base.clone();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(a.env.iter().cloned());
    p.set_env(Some(env));
    let mut user = p.user().clone();
    if let Some(u) = &a.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
        user.set_uid(
            uid.parse()
                .with_context(|| format!("--user {u}: uid must be a number"))?,
        );
        user.set_gid(
            gid.parse()
                .with_context(|| format!("--user {u}: gid must be a number"))?,
        );
    }
    if !a.additional_gids.is_empty() {
        user.set_additional_gids(Some(a.additional_gids.clone()));
    }
    p.set_user(user);
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !a.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &a.cap {
            let cap: Capability = serde_json::from_value(serde_json::Value::String(name.clone()))
                .with_context(|| format!("--cap {name}: unknown capability"))?;
            let add = |s: &Option<std::collections::HashSet<Capability>>| {
                let mut s = s.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
            caps.set_inheritable(add(caps.inheritable()));
        }
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}

/// `exec`.
pub fn exec(root: &StateRoot, a: ExecArgs) -> Result<i32> {
    let container = Container::load(root, &a.id)?;
    let process = match &a.process {
        Some(path) => {
            let text = std::fs::read(path)
                .with_context(|| format!("read --process {}", path.display()))?;
            serde_json::from_slice::<Process>(&text)
                .with_context(|| format!("parse --process {}", path.display()))?
        }
        None => {
            let base = container
                .record
                .config
                .process()
                .clone()
                .unwrap_or_default();
            process_from_flags(&a, &base)?
        }
    };
    let terminal = process.terminal().unwrap_or(false);
    let mut opts = ExecOptions {
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
    };
    let listener = tty::listener_if_needed(terminal, &mut opts.console_socket, a.detach)?;
    let pid = container.exec(&process, &opts)?;
    if a.detach {
        return Ok(0);
    }
    signals::forward_to(pid);
    if let Some(l) = &listener {
        tty::proxy(&l.receive_master()?)?;
    }
    let status = sys::waitpid(pid, 0).context("wait for process")?;
    Ok(status.map(sys::exit_code).unwrap_or(255))
}
