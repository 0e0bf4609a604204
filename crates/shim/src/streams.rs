//! The container's stdio as the shim holds it: pipes (or a pty) from the container, lines
//! to the log, frames to attached clients on `attach.sock`.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::event::{PollFd, PollFlags, poll};
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use crate::log::JsonLog;

const STDOUT: u8 = 1;
const STDERR: u8 = 2;

/// The container's side of its stdio, installed as descriptors 0-2 while it is created.
pub struct ContainerStdio {
    stdin: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
    /// Where the runtime sends the pty master, for a container with a terminal.
    pub console_socket: Option<PathBuf>,
    console_listener: Option<OwnedFd>,
}

fn dev_null() -> std::io::Result<OwnedFd> {
    Ok(std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?
        .into())
}

fn dup_onto(fd: BorrowedFd<'_>, target: i32) -> std::io::Result<()> {
    berth_runtime::sys::dup_onto(fd, target)
}

impl ContainerStdio {
    /// Makes the container's descriptors ours as 0, 1, 2 (the runtime's fork inherits them).
    pub fn install(&self) -> std::io::Result<()> {
        dup_onto(self.stdin.as_fd(), 0)?;
        dup_onto(self.stdout.as_fd(), 1)?;
        dup_onto(self.stderr.as_fd(), 2)
    }
}

fn unix_listener(path: &Path) -> std::io::Result<OwnedFd> {
    let _ = std::fs::remove_file(path);
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )?;
    rustix::net::bind(&fd, &SocketAddrUnix::new(path)?)?;
    rustix::net::listen(&fd, 16)?;
    Ok(fd)
}

/// The shim's side.
pub struct Streams {
    log: JsonLog,
    tty: bool,
    sources: Vec<(u8, OwnedFd)>,
    listener: OwnedFd,
    attach_path: PathBuf,
    attachers: Vec<OwnedFd>,
    partial: [Vec<u8>; 2],
}

impl Streams {
    /// Pipes (or a console socket for a terminal) and the attach socket in `state_dir`.
    pub fn new(
        log: JsonLog,
        state_dir: &Path,
        tty: bool,
    ) -> std::io::Result<(Self, ContainerStdio)> {
        // Socket paths are limited to 108 bytes and state dirs carry 64-digit ids: bind
        // relative to the state dir, which is our working directory from here on.
        std::env::set_current_dir(state_dir)?;
        let attach_path = state_dir.join("attach.sock");
        let listener = unix_listener(Path::new("attach.sock"))?;
        // Accepted in a loop until empty when poll says so: must never block.
        rustix::io::ioctl_fionbio(&listener, true)?;
        let (sources, stdio) = if tty {
            let console_path = PathBuf::from("console.sock");
            let console = unix_listener(&console_path)?;
            let stdio = ContainerStdio {
                stdin: dev_null()?,
                stdout: dev_null()?,
                stderr: dev_null()?,
                console_socket: Some(console_path),
                console_listener: Some(console),
            };
            (Vec::new(), stdio)
        } else {
            let (out_r, out_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
            let (err_r, err_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
            let stdio = ContainerStdio {
                stdin: dev_null()?,
                stdout: out_w,
                stderr: err_w,
                console_socket: None,
                console_listener: None,
            };
            (vec![(STDOUT, out_r), (STDERR, err_r)], stdio)
        };
        let s = Streams {
            log,
            tty,
            sources,
            listener,
            attach_path,
            attachers: Vec::new(),
            partial: [Vec::new(), Vec::new()],
        };
        Ok((s, stdio))
    }

    /// Points 0-2 back at /dev/null after the container took its copies.
    pub fn restore_own_stdio() {
        if let Ok(null) = dev_null() {
            for target in 0..3 {
                let _ = dup_onto(null.as_fd(), target);
            }
        }
    }

    /// Drops our copies of the container's ends; for a terminal, takes the pty master.
    pub fn after_create(&mut self, stdio: ContainerStdio) -> std::io::Result<()> {
        if let (Some(listener), Some(path)) = (&stdio.console_listener, &stdio.console_socket) {
            let conn = rustix::net::accept_with(listener, SocketFlags::CLOEXEC)?;
            let master =
                berth_runtime::console::recv_fd(conn.as_fd()).map_err(std::io::Error::other)?;
            self.sources.push((STDOUT, master));
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    }

    /// Waits for output, attach clients or init's exit; returns true once init exited.
    pub fn pump(&mut self, pidfd: BorrowedFd<'_>) -> std::io::Result<bool> {
        let mut fds: Vec<PollFd<'_>> = self
            .sources
            .iter()
            .map(|(_, fd)| PollFd::new(fd, PollFlags::IN))
            .collect();
        let n_sources = fds.len();
        fds.push(PollFd::new(&self.listener, PollFlags::IN));
        fds.push(PollFd::new(&pidfd, PollFlags::IN));
        match poll(&mut fds, None) {
            Err(rustix::io::Errno::INTR) => return Ok(false),
            r => r?,
        };
        let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        // Clients first: berthd connects them before the process starts, so accepting
        // before reading means they see the first bytes too.
        if ready[n_sources] {
            while let Ok(conn) = rustix::net::accept_with(
                &self.listener,
                SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            ) {
                self.attachers.push(conn);
            }
        }
        self.read_ready(&ready[..n_sources]);
        Ok(ready[n_sources + 1])
    }

    /// Reads once from each ready source, stdout first; sources at end of file are dropped.
    fn read_ready(&mut self, ready: &[bool]) {
        let mut buf = [0u8; 32 * 1024];
        let mut finished = Vec::new();
        for (i, _) in ready.iter().enumerate().filter(|(_, r)| **r) {
            let (stream, fd) = &self.sources[i];
            let stream = *stream;
            match rustix::io::read(fd, &mut buf) {
                Ok(0) => finished.push(i),
                Ok(n) => self.output(stream, &buf[..n]),
                Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => {}
                // EIO is how a pty master reports that the terminal's last user is gone.
                Err(_) => finished.push(i),
            }
        }
        for i in finished.into_iter().rev() {
            self.sources.remove(i);
        }
    }

    fn output(&mut self, stream: u8, data: &[u8]) {
        let name = if stream == STDOUT { "stdout" } else { "stderr" };
        let partial = &mut self.partial[stream as usize - 1];
        partial.extend_from_slice(data);
        while let Some(pos) = partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = partial.drain(..=pos).collect();
            self.log.write(name, &line);
        }
        let frame = if self.tty {
            data.to_vec()
        } else {
            let mut f = vec![stream, 0, 0, 0];
            f.extend_from_slice(&(data.len() as u32).to_be_bytes());
            f.extend_from_slice(data);
            f
        };
        // A client that cannot keep up is dropped rather than stalling the container.
        self.attachers
            .retain(|c| rustix::io::write(c, &frame).is_ok_and(|n| n == frame.len()));
    }

    /// Reads what is left after init exited (bounded: children may hold the pipes).
    pub fn drain(&mut self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while !self.sources.is_empty() && std::time::Instant::now() < deadline {
            let timeout = rustix::time::Timespec {
                tv_sec: 0,
                tv_nsec: 100_000_000,
            };
            let mut fds: Vec<PollFd<'_>> = self
                .sources
                .iter()
                .map(|(_, fd)| PollFd::new(fd, PollFlags::IN))
                .collect();
            if poll(&mut fds, Some(&timeout)).unwrap_or(0) == 0 {
                break;
            }
            let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
            drop(fds);
            self.read_ready(&ready);
        }
    }

    /// Flushes partial lines, disconnects clients, removes the attach socket.
    pub fn close(&mut self) {
        for (i, name) in ["stdout", "stderr"].iter().enumerate() {
            let rest = std::mem::take(&mut self.partial[i]);
            if !rest.is_empty() {
                self.log.write(name, &rest);
            }
        }
        self.attachers.clear();
        let _ = std::fs::remove_file(&self.attach_path);
    }
}
