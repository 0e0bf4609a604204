//! The container's stdio as the shim holds it: pipes (or a pty) to and from the
//! container, lines to the log, frames to and from clients on `attach.sock` (protocol in
//! `berth_types::shim`).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use berth_types::shim as proto;
use rustix::event::{PollFd, PollFlags, poll};
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use crate::log::JsonLog;

const STDOUT: u8 = 1;
const STDERR: u8 = 2;
/// Stdin waiting for the container beyond this stops reading from clients.
const STDIN_BACKLOG: usize = 256 * 1024;

/// How the shim sets up the container's stdio.
pub struct StdioConfig {
    /// A pseudo-terminal instead of pipes.
    pub tty: bool,
    /// Keep a stdin the clients can write to (Docker's OpenStdin); /dev/null otherwise.
    pub stdin: bool,
    /// Send output to clients as it comes instead of in Docker's stream frames (an exec
    /// may have a terminal yet be started with framed output).
    pub raw_output: bool,
}

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
    rustix::net::listen(&fd, 64)?;
    Ok(fd)
}

/// What a client connection turned out to be, once its first bytes arrived.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Nothing read yet: gets all output meanwhile (its header is sent on connect, so
    /// this lasts only until the next read).
    Unknown,
    /// An attach client with its flags.
    Attach(u8),
    /// Served and finished; dropped at the next sweep.
    Done,
}

/// One connection on attach.sock.
struct Client {
    fd: OwnedFd,
    kind: Kind,
    inbuf: Vec<u8>,
    /// The client sent end of file: nothing more to read, output still goes out.
    read_closed: bool,
}

impl Client {
    fn wants(&self, stream: u8) -> bool {
        let flag = if stream == STDOUT {
            proto::STDOUT
        } else {
            proto::STDERR
        };
        match self.kind {
            Kind::Unknown => true,
            Kind::Attach(flags) => flags & flag != 0,
            Kind::Done => false,
        }
    }
}

/// The shim's side.
pub struct Streams {
    log: Option<JsonLog>,
    tty: bool,
    raw_output: bool,
    sources: Vec<(u8, OwnedFd)>,
    /// Where client stdin goes: the write end of the stdin pipe or the pty master.
    stdin: Option<OwnedFd>,
    stdin_buf: Vec<u8>,
    /// End of input was asked for: close stdin once `stdin_buf` is written.
    stdin_closing: bool,
    /// The pty master, for resizing.
    master: Option<OwnedFd>,
    listener: OwnedFd,
    attach_path: PathBuf,
    clients: Vec<Client>,
    partial: [Vec<u8>; 2],
}

impl Streams {
    /// Pipes (or a console socket for a terminal) and the attach socket in `state_dir`.
    pub fn new(
        log: Option<JsonLog>,
        state_dir: &Path,
        cfg: &StdioConfig,
    ) -> std::io::Result<(Self, ContainerStdio)> {
        // Socket paths are limited to 108 bytes and state dirs carry 64-digit ids: bind
        // relative to the state dir, which is our working directory from here on.
        std::env::set_current_dir(state_dir)?;
        let attach_path = state_dir.join("attach.sock");
        let listener = unix_listener(Path::new("attach.sock"))?;
        // Accepted in a loop until empty when poll says so: must never block.
        rustix::io::ioctl_fionbio(&listener, true)?;
        let mut stdin_writer = None;
        let (sources, stdio) = if cfg.tty {
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
            let stdin = if cfg.stdin {
                let (in_r, in_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
                rustix::io::ioctl_fionbio(&in_w, true)?;
                stdin_writer = Some(in_w);
                in_r
            } else {
                dev_null()?
            };
            let stdio = ContainerStdio {
                stdin,
                stdout: out_w,
                stderr: err_w,
                console_socket: None,
                console_listener: None,
            };
            (vec![(STDOUT, out_r), (STDERR, err_r)], stdio)
        };
        let s = Streams {
            log,
            tty: cfg.tty,
            raw_output: cfg.raw_output,
            sources,
            stdin: stdin_writer,
            stdin_buf: Vec::new(),
            stdin_closing: false,
            master: None,
            listener,
            attach_path,
            clients: Vec::new(),
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
    pub fn after_create(&mut self, stdio: ContainerStdio, stdin: bool) -> std::io::Result<()> {
        if let (Some(listener), Some(path)) = (&stdio.console_listener, &stdio.console_socket) {
            let conn = rustix::net::accept_with(listener, SocketFlags::CLOEXEC)?;
            let master =
                berth_runtime::console::recv_fd(conn.as_fd()).map_err(std::io::Error::other)?;
            if stdin {
                let writer = rustix::io::fcntl_dupfd_cloexec(&master, 3)?;
                self.stdin = Some(writer);
            }
            self.master = Some(rustix::io::fcntl_dupfd_cloexec(&master, 3)?);
            self.sources.push((STDOUT, master));
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    }

    /// Takes every client waiting on the attach socket (before a process starts, so they
    /// see its first bytes).
    pub fn accept_waiting(&mut self) {
        while let Ok(fd) =
            rustix::net::accept_with(&self.listener, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK)
        {
            self.clients.push(Client {
                fd,
                kind: Kind::Unknown,
                inbuf: Vec::new(),
                read_closed: false,
            });
        }
        // Their headers were sent on connect: read them now so the first output is routed
        // by the flags the clients asked for.
        for i in 0..self.clients.len() {
            self.read_client(i);
        }
        self.sweep();
    }

    /// Waits for output, clients, stdin room or init's exit; returns true once it exited.
    pub fn pump(&mut self, pidfd: BorrowedFd<'_>) -> std::io::Result<bool> {
        let want_client_input = self.stdin_buf.len() < STDIN_BACKLOG;
        let mut fds: Vec<PollFd<'_>> = self
            .sources
            .iter()
            .map(|(_, fd)| PollFd::new(fd, PollFlags::IN))
            .collect();
        let n_sources = fds.len();
        fds.push(PollFd::new(&self.listener, PollFlags::IN));
        fds.push(PollFd::new(&pidfd, PollFlags::IN));
        let stdin_slot = match &self.stdin {
            Some(fd) if !self.stdin_buf.is_empty() => {
                fds.push(PollFd::new(fd, PollFlags::OUT));
                Some(fds.len() - 1)
            }
            _ => None,
        };
        let first_client = fds.len();
        let polled: Vec<usize> = (0..self.clients.len())
            .filter(|i| want_client_input && !self.clients[*i].read_closed)
            .collect();
        for i in &polled {
            fds.push(PollFd::new(&self.clients[*i].fd, PollFlags::IN));
        }
        match poll(&mut fds, None) {
            Err(rustix::io::Errno::INTR) => return Ok(false),
            r => r?,
        };
        let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        if ready[n_sources] {
            self.accept_waiting();
        }
        for (slot, i) in polled.iter().enumerate() {
            if ready[first_client + slot] {
                self.read_client(*i);
            }
        }
        if stdin_slot.is_some_and(|s| ready[s]) {
            self.flush_stdin();
        }
        self.sweep();
        self.read_ready(&ready[..n_sources]);
        Ok(ready[n_sources + 1])
    }

    /// Reads what a client sent: its header, then stdin frames or a resize request.
    fn read_client(&mut self, i: usize) {
        let mut buf = [0u8; 32 * 1024];
        let c = &mut self.clients[i];
        match rustix::io::read(&c.fd, &mut buf) {
            Ok(0) => c.read_closed = true,
            Ok(n) => c.inbuf.extend_from_slice(&buf[..n]),
            Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => return,
            Err(_) => {
                c.kind = Kind::Done;
                return;
            }
        }
        if c.kind == Kind::Unknown {
            match c.inbuf.first().copied() {
                Some(proto::ATTACH) if c.inbuf.len() >= 2 => {
                    c.kind = Kind::Attach(c.inbuf[1]);
                    c.inbuf.drain(..2);
                }
                Some(proto::RESIZE) if c.inbuf.len() >= 5 => {
                    let h = u16::from_be_bytes([c.inbuf[1], c.inbuf[2]]);
                    let w = u16::from_be_bytes([c.inbuf[3], c.inbuf[4]]);
                    c.kind = Kind::Done;
                    self.resize(h, w);
                    return;
                }
                Some(proto::ATTACH) | Some(proto::RESIZE) if !c.read_closed => return,
                _ => {
                    c.kind = Kind::Done;
                    return;
                }
            }
        }
        let Kind::Attach(flags) = c.kind else { return };
        let frames = proto::take_stdin_frames(&mut c.inbuf);
        if flags & proto::STDIN == 0 {
            return;
        }
        for f in frames {
            if f.is_empty() {
                self.stdin_closing = true;
            } else if !self.stdin_closing {
                self.stdin_buf.extend_from_slice(&f);
            }
        }
        self.flush_stdin();
    }

    /// Writes buffered stdin as far as the container takes it; closes it when asked.
    fn flush_stdin(&mut self) {
        let Some(fd) = &self.stdin else {
            self.stdin_buf.clear();
            return;
        };
        while !self.stdin_buf.is_empty() {
            match rustix::io::write(fd, &self.stdin_buf) {
                Ok(n) => {
                    self.stdin_buf.drain(..n);
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::AGAIN) => return,
                // The container closed its stdin: nothing will read the rest.
                Err(_) => {
                    self.stdin = None;
                    self.stdin_buf.clear();
                    return;
                }
            }
        }
        // A terminal has no end of input to send; its stdin stays for the next client.
        if self.stdin_closing && !self.tty {
            self.stdin = None;
        }
    }

    fn resize(&self, height: u16, width: u16) {
        if let Some(master) = &self.master {
            let ws = rustix::termios::Winsize {
                ws_row: height,
                ws_col: width,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            let _ = rustix::termios::tcsetwinsize(master, ws);
        }
    }

    /// Drops finished connections.
    fn sweep(&mut self) {
        self.clients.retain(|c| c.kind != Kind::Done);
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
        if let Some(log) = &mut self.log {
            let name = if stream == STDOUT { "stdout" } else { "stderr" };
            let partial = &mut self.partial[stream as usize - 1];
            partial.extend_from_slice(data);
            while let Some(pos) = partial.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = partial.drain(..=pos).collect();
                log.write(name, &line);
            }
        }
        let frame = if self.raw_output {
            data.to_vec()
        } else {
            let mut f = vec![stream, 0, 0, 0];
            f.extend_from_slice(&(data.len() as u32).to_be_bytes());
            f.extend_from_slice(data);
            f
        };
        // A client that cannot keep up is dropped rather than stalling the container.
        self.clients.retain(|c| {
            !c.wants(stream) || rustix::io::write(&c.fd, &frame).is_ok_and(|n| n == frame.len())
        });
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
        if let Some(log) = &mut self.log {
            for (i, name) in ["stdout", "stderr"].iter().enumerate() {
                let rest = std::mem::take(&mut self.partial[i]);
                if !rest.is_empty() {
                    log.write(name, &rest);
                }
            }
        }
        self.clients.clear();
        let _ = std::fs::remove_file(&self.attach_path);
    }
}
