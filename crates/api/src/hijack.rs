//! Hijacked connections (attach, exec start): after the HTTP response the connection
//! carries a process's output to the client and the client's input to the process, until
//! the process ends, the client detaches with its detach keys, or goes away.

use std::os::unix::net::UnixStream;

use axum::http::StatusCode;
use axum::response::Response;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::ApiError;

/// How client input is encoded for the process's stream.
#[derive(Debug, Clone)]
pub struct StdinCodec {
    /// Wraps bytes the client typed.
    pub frame: fn(&[u8]) -> Vec<u8>,
    /// Sent when the client's input ends; `None` ends the session instead (Docker closes
    /// the process's stdin only for `StdinOnce` without a terminal).
    pub end: Option<Vec<u8>>,
}

/// A process's stdio, as a backend hands it over.
#[derive(Debug)]
pub struct ProcessIo {
    /// Output from the process; input to it (when `stdin` is set).
    pub stream: UnixStream,
    /// `None`: the client's input is read and discarded.
    pub stdin: Option<StdinCodec>,
}

/// What the session needs to know besides the stream.
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// Raw output (a terminal) rather than multiplexed frames.
    pub tty: bool,
    /// The byte sequence that detaches the client (empty: none).
    pub detach_keys: Vec<u8>,
    /// Bytes sent before the live output (the log, for `logs=1`).
    pub prelude: Vec<u8>,
    /// Called when the client leaves while the process runs on (the `detach` events).
    pub on_detach: Option<DetachHook>,
}

/// How a client left a session whose process runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetachCause {
    /// It sent the detach keys (clients that do not look for them themselves).
    Keys,
    /// It closed its side (the docker CLI detaches this way: it spots the keys itself).
    Gone,
}

/// What runs when a client detaches.
#[derive(Clone)]
pub struct DetachHook(pub std::sync::Arc<dyn Fn(DetachCause) + Send + Sync>);

impl std::fmt::Debug for DetachHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DetachHook")
    }
}

/// Parses Docker's detach key notation (see `berth_types::detach`) for a request.
pub fn parse_detach_keys(spec: &str) -> Result<Vec<u8>, ApiError> {
    berth_types::detach::parse(spec).map_err(ApiError::bad_request)
}

/// Finds the detach sequence in a byte stream, holding back bytes that may be its start.
struct DetachScanner {
    keys: Vec<u8>,
    held: Vec<u8>,
}

impl DetachScanner {
    /// Returns the bytes to forward and whether the sequence was completed.
    fn feed(&mut self, data: &[u8]) -> (Vec<u8>, bool) {
        if self.keys.is_empty() {
            return (data.to_vec(), false);
        }
        let mut out = Vec::with_capacity(data.len());
        for &b in data {
            if b == self.keys[self.held.len()] {
                self.held.push(b);
                if self.held.len() == self.keys.len() {
                    return (out, true);
                }
            } else {
                out.append(&mut self.held);
                if b == self.keys[0] {
                    self.held.push(b);
                } else {
                    out.push(b);
                }
            }
        }
        (out, false)
    }
}

/// Answers with 101 and runs the session on the upgraded connection once the process's
/// stream arrives.
pub fn upgrade(
    req: &mut axum::extract::Request,
    io: tokio::sync::oneshot::Receiver<ProcessIo>,
    session: Session,
) -> Response {
    let upgrade = hyper::upgrade::on(req);
    let tty = session.tty;
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let client = hyper_util::rt::TokioIo::new(upgraded);
        let Ok(io) = io.await else { return };
        run(client, io, session).await;
    });
    switching_protocols(tty)
}

/// `data` as the stream's stdout: a Docker frame, or raw for a terminal.
pub fn stdout_frame(tty: bool, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + data.len());
    if !tty {
        out.extend_from_slice(&[1, 0, 0, 0]);
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// The 101 answer of a hijacked endpoint.
pub fn switching_protocols(tty: bool) -> Response {
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("content-type", content_type(tty))
        .header("connection", "Upgrade")
        .header("upgrade", "tcp")
        .body(axum::body::Body::empty())
        .expect("static response parts are valid")
}

/// Docker's content type for a process stream.
pub fn content_type(tty: bool) -> &'static str {
    if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}

/// Copies both ways until the session ends.
pub async fn run<C>(client: C, io: ProcessIo, session: Session)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    if io.stream.set_nonblocking(true).is_err() {
        return;
    }
    let Ok(source) = tokio::net::UnixStream::from_std(io.stream) else {
        return;
    };
    let (mut from_process, mut to_process) = source.into_split();
    let (mut from_client, mut to_client) = tokio::io::split(client);
    let output = async {
        if !session.prelude.is_empty() {
            // Clients that read the raw socket after parsing the head with a buffered
            // reader (docker-py) lose bytes that arrive together with the head: give the
            // head a moment to be read on its own, as dockerd's scheduling does.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            let _ = to_client.write_all(&session.prelude).await;
        }
        let _ = tokio::io::copy(&mut from_process, &mut to_client).await;
        let _ = to_client.shutdown().await;
    };
    let input = async {
        let mut scanner = DetachScanner {
            keys: session.detach_keys.clone(),
            held: Vec::new(),
        };
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = match from_client.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let Some(codec) = &io.stdin else { continue };
            let (data, detached) = scanner.feed(&buf[..n]);
            if !data.is_empty() && to_process.write_all(&(codec.frame)(&data)).await.is_err() {
                return None;
            }
            if detached {
                return Some(DetachCause::Keys);
            }
        }
        // End of the client's input.
        match io.stdin.as_ref().and_then(|c| c.end.as_ref()) {
            Some(end) => {
                let _ = to_process.write_all(end).await;
                // Output goes on until the process is done.
                std::future::pending::<Option<DetachCause>>().await
            }
            None if io.stdin.is_some() => Some(DetachCause::Gone),
            // A client that sends no input may half-close; keep its output flowing.
            None => std::future::pending::<Option<DetachCause>>().await,
        }
    };
    tokio::select! {
        _ = output => {}
        left = input => {
            if let (Some(cause), Some(hook)) = (left, &session.on_detach) {
                (hook.0)(cause);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scanner_holds_back_a_partial_sequence_and_releases_it_on_mismatch() {
        let mut s = DetachScanner {
            keys: vec![16, 17],
            held: Vec::new(),
        };
        assert_eq!(s.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(s.feed(b"c"), (b"\x10c".to_vec(), false));
        assert_eq!(s.feed(b"x\x10\x10"), (b"x\x10".to_vec(), false));
        assert_eq!(s.feed(b"\x11rest"), (Vec::new(), true));
    }
}
