//! A hijacked connection at the terminal: output demultiplexed to stdout and stderr (or
//! copied raw for a terminal), stdin sent up (raw mode when it is a terminal), the
//! window size kept in sync, and the detach keys noticed on our side, as the docker CLI
//! does.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::client::Hijacked;

/// How the session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The process's output ended.
    Output,
    /// The user typed the detach keys.
    Detached,
}

/// Puts the terminal on stdin into raw mode until dropped.
pub struct RawMode {
    saved: Option<rustix::termios::Termios>,
}

impl RawMode {
    /// Raw mode if stdin is a terminal; a no-op otherwise.
    pub fn enter() -> Self {
        let stdin = std::io::stdin();
        let Ok(saved) = rustix::termios::tcgetattr(stdin.as_fd()) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        raw.make_raw();
        let _ =
            rustix::termios::tcsetattr(stdin.as_fd(), rustix::termios::OptionalActions::Now, &raw);
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin().as_fd(),
                rustix::termios::OptionalActions::Now,
                t,
            );
        }
    }
}

/// The terminal size on stdout, as (height, width).
pub fn terminal_size() -> Option<(u16, u16)> {
    let ws = rustix::termios::tcgetwinsize(std::io::stdout().as_fd()).ok()?;
    (ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Whether stdin is a terminal.
pub fn stdin_is_terminal() -> bool {
    rustix::termios::isatty(std::io::stdin().as_fd())
}

/// Runs the session until the output ends or the user detaches. With `send_stdin`, our
/// stdin goes up (end of input half-closes the connection); `detach_keys` are scanned
/// for in it. `on_resize` is called with the terminal size whenever it changes.
pub fn run(
    h: Hijacked,
    send_stdin: bool,
    detach_keys: Vec<u8>,
    on_resize: Option<Box<dyn Fn(u16, u16) + Send>>,
) -> std::io::Result<Ended> {
    let detached = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    if send_stdin {
        let mut up = h.stream.try_clone()?;
        let detached = detached.clone();
        std::thread::spawn(move || pump_stdin(&mut up, &detach_keys, &detached));
    }
    if let Some(resize) = on_resize {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut last = None;
            while !done.load(Ordering::Relaxed) {
                let now = terminal_size();
                if now.is_some() && now != last {
                    if let Some((hgt, w)) = now {
                        resize(hgt, w);
                    }
                    last = now;
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        });
    }
    let result = copy_output(&h.pending, &h.stream, h.tty);
    done.store(true, Ordering::Relaxed);
    if detached.load(Ordering::Relaxed) {
        return Ok(Ended::Detached);
    }
    match result {
        // Our reader went away (`berth logs x | head`): that ends the session quietly.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Ended::Output),
        r => r.map(|_| Ended::Output),
    }
}

fn pump_stdin(up: &mut UnixStream, keys: &[u8], detached: &AtomicBool) {
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 4096];
    let mut matched = 0;
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut out = Vec::with_capacity(n);
        for &b in &buf[..n] {
            if !keys.is_empty() && b == keys[matched] {
                matched += 1;
                if matched == keys.len() {
                    detached.store(true, Ordering::Relaxed);
                    let _ = up.write_all(&out);
                    let _ = up.shutdown(std::net::Shutdown::Both);
                    return;
                }
                continue;
            }
            out.extend_from_slice(&keys[..matched]);
            matched = 0;
            out.push(b);
        }
        if up.write_all(&out).is_err() {
            return;
        }
    }
    let _ = up.shutdown(std::net::Shutdown::Write);
}

/// Copies output until the connection ends: raw, or Docker's 8-byte-header frames.
fn copy_output(pending: &[u8], stream: &UnixStream, tty: bool) -> std::io::Result<()> {
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    let mut reader = pending.chain(stream);
    if tty {
        let mut buf = [0u8; 32 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return Ok(()),
            };
            stdout.write_all(&buf[..n])?;
            stdout.flush()?;
        }
    }
    let mut header = [0u8; 8];
    loop {
        if reader.read_exact(&mut header).is_err() {
            return Ok(());
        }
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let mut payload = vec![0u8; len];
        if reader.read_exact(&mut payload).is_err() {
            return Ok(());
        }
        if header[0] == 2 {
            stderr.write_all(&payload)?;
            stderr.flush()?;
        } else {
            stdout.write_all(&payload)?;
            stdout.flush()?;
        }
    }
}
