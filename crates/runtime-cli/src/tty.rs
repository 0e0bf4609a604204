//! Foreground terminals: when `run` or `exec` has a terminal but no `--console-socket`, the
//! CLI receives the pty master itself and copies between it and its own stdio, like runc.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use anyhow::{Context, Result};
use rustix::event::{PollFd, PollFlags, poll};
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

/// A listening console socket in a private temp directory.
pub struct ConsoleListener {
    dir: tempfile::TempDir,
    sock: OwnedFd,
}

impl ConsoleListener {
    /// Creates the socket.
    pub fn new() -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("berth-console").tempdir()?;
        let sock = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )?;
        let addr = SocketAddrUnix::new(dir.path().join("console.sock"))?;
        rustix::net::bind(&sock, &addr)?;
        rustix::net::listen(&sock, 1)?;
        Ok(ConsoleListener { dir, sock })
    }

    /// The socket path to pass as console socket.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("console.sock")
    }

    /// Accepts the runtime's connection and receives the pty master.
    pub fn receive_master(&self) -> Result<OwnedFd> {
        let conn = rustix::net::accept_with(&self.sock, SocketFlags::CLOEXEC)?;
        Ok(berth_runtime::console::recv_fd(conn.as_fd())?)
    }
}

/// When a process wants a terminal and the caller gave no console socket, makes one here
/// (the CLI then proxies the terminal itself) and points `console_socket` at it.
pub fn listener_if_needed(
    terminal: bool,
    console_socket: &mut Option<PathBuf>,
    detach: bool,
) -> Result<Option<ConsoleListener>> {
    if !terminal || console_socket.is_some() {
        return Ok(None);
    }
    anyhow::ensure!(
        !detach,
        "cannot detach from a terminal without --console-socket to hand it to"
    );
    let l = ConsoleListener::new()?;
    *console_socket = Some(l.path());
    Ok(Some(l))
}

/// Puts our terminal in raw mode while alive.
struct RawMode {
    saved: Option<rustix::termios::Termios>,
}

impl RawMode {
    fn enable() -> Self {
        let stdin = std::io::stdin();
        let Ok(saved) = rustix::termios::tcgetattr(&stdin) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        raw.make_raw();
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw);
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin(),
                rustix::termios::OptionalActions::Now,
                t,
            );
        }
    }
}

/// Copies stdin → master and master → stdout until the master closes (the container side
/// exited).
pub fn proxy(master: &OwnedFd) -> Result<()> {
    let _raw = RawMode::enable();
    if let Ok(ws) = rustix::termios::tcgetwinsize(std::io::stdin()) {
        let _ = rustix::termios::tcsetwinsize(master, ws);
    }
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut stdin_open = true;
    let mut buf = [0u8; 8192];
    loop {
        let mut fds = vec![PollFd::new(master, PollFlags::IN)];
        if stdin_open {
            fds.push(PollFd::new(&stdin, PollFlags::IN));
        }
        match poll(&mut fds, None) {
            Err(rustix::io::Errno::INTR) => continue,
            r => r.context("poll terminal")?,
        };
        let master_ready = fds[0].revents();
        let stdin_ready = fds
            .get(1)
            .map(|f| f.revents())
            .unwrap_or(PollFlags::empty());
        if master_ready.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) {
            match rustix::io::read(master, &mut buf) {
                Ok(0) | Err(rustix::io::Errno::IO) => return Ok(()),
                Ok(n) => write_all(&stdout, &buf[..n])?,
                Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => {}
                Err(e) => return Err(e).context("read terminal"),
            }
        }
        if stdin_ready.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) {
            match rustix::io::read(&stdin, &mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => write_all(master, &buf[..n])?,
            }
        }
    }
}

fn write_all(fd: impl AsFd, mut data: &[u8]) -> Result<()> {
    while !data.is_empty() {
        match rustix::io::write(&fd, data) {
            Ok(n) => data = &data[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e).context("write terminal"),
        }
    }
    Ok(())
}
