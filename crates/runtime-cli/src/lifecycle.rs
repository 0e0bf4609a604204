//! create, start, run, kill, delete.

use std::path::PathBuf;

use anyhow::{Context, Result};
use berth_runtime::{Container, CreateOptions, StateRoot, sys};

use crate::{signals, tty};

/// Flags of `create`.
#[derive(clap::Args, Debug, Clone)]
pub struct CreateArgs {
    /// Path to the bundle directory
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// File to write the container's pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Do not use pivot_root (for a rootfs on ramfs)
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Accepted for runc compatibility: no session keyring is created
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass this many extra descriptors (after stdio) into the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Container id
    pub id: String,
}

/// Flags of `run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Detach from the container's process
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits
    #[arg(long)]
    pub keep: bool,
}

fn options(a: &CreateArgs) -> CreateOptions {
    CreateOptions {
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        no_pivot: a.no_pivot,
        preserve_fds: a.preserve_fds,
    }
}

/// `create`.
pub fn create(root: &StateRoot, a: CreateArgs) -> Result<()> {
    berth_runtime::create(root, &a.id, &a.bundle, &options(&a))?;
    Ok(())
}

/// `start`.
pub fn start(root: &StateRoot, id: &str) -> Result<()> {
    Ok(Container::load(root, id)?.start()?)
}

/// `run`: create + start, then (unless detached) wait and remove the container.
pub fn run(root: &StateRoot, a: RunArgs) -> Result<i32> {
    let spec = berth_runtime::spec::parse_config(&a.create.bundle.join("config.json"))?;
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let mut opts = options(&a.create);
    let listener = tty::listener_if_needed(terminal, &mut opts.console_socket, a.detach)?;
    let container = berth_runtime::create(root, &a.create.id, &a.create.bundle, &opts)?;
    let master = listener.as_ref().map(|l| l.receive_master()).transpose()?;
    if let Err(e) = container.start() {
        let _ = Container::load(root, &a.create.id).and_then(|c| c.delete(true));
        return Err(e.into());
    }
    if a.detach {
        return Ok(0);
    }
    let pid = container.record.pid;
    signals::forward_to(pid);
    if let Some(master) = &master {
        tty::proxy(master)?;
    }
    let status = sys::waitpid(pid, 0).context("wait for container")?;
    let code = status.map(sys::exit_code).unwrap_or(255);
    if !a.keep {
        Container::load(root, &a.create.id)?.delete(true)?;
    }
    Ok(code)
}

/// `kill`.
pub fn kill(root: &StateRoot, id: &str, signal: &str, all: bool) -> Result<()> {
    let sig = berth_runtime::signal::parse(signal).map_err(anyhow::Error::msg)?;
    Ok(Container::load(root, id)?.kill(sig, all)?)
}

/// `delete`: every id is tried; the first error is reported.
pub fn delete(root: &StateRoot, ids: &[String], force: bool) -> Result<()> {
    let mut first_error = None;
    for id in ids {
        let r = match Container::load(root, id) {
            Ok(c) => c.delete(force),
            // runc: deleting a missing container with --force is not an error.
            Err(berth_runtime::Error::NotFound(_)) if force => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}
