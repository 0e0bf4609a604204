//! A small synchronous HTTP/1.1 client for the Engine API on a unix socket: one
//! connection per request, bodies by length, chunked or until close, and the hijacked
//! connection after `101 Switching Protocols` for attach and exec. No async runtime: the
//! CLI's own start stays near a millisecond.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use serde_json::Value;

/// What went wrong talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket could not be reached.
    #[error("Cannot connect to the Berth daemon at unix://{0}. Is berthd running? ({1})")]
    Connect(String, std::io::Error),
    /// The daemon answered with an error status.
    #[error("Error response from daemon: {message}")]
    Daemon {
        /// HTTP status.
        status: u16,
        /// Docker's `message`.
        message: String,
    },
    /// The exchange broke off or made no sense.
    #[error("{0}")]
    Protocol(String),
}

/// Shorthand for results of this module.
pub type Result<T> = std::result::Result<T, ClientError>;

/// Where the daemon is.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
}

/// A response whose body has not been read yet.
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Lower-cased header names with their values.
    pub headers: Vec<(String, String)>,
    reader: BufReader<UnixStream>,
    body: BodyKind,
}

enum BodyKind {
    Length(u64),
    Chunked,
    UntilClose,
}

fn proto(e: impl std::fmt::Display) -> ClientError {
    ClientError::Protocol(format!("talking to the daemon: {e}"))
}

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Percent-encodes a path segment that names an object, keeping the `/`, `:` and `@`
/// of image references as docker sends them.
pub fn enc_path(s: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b'/')
        .remove(b':')
        .remove(b'@');
    percent_encoding::utf8_percent_encode(s, KEEP).to_string()
}

impl Client {
    /// A client for the socket at `host` (`unix:///path` or a path).
    pub fn new(host: &str) -> std::result::Result<Self, String> {
        let path = host.strip_prefix("unix://").unwrap_or(host);
        if !path.starts_with('/') {
            return Err(format!(
                "unsupported host {host}: berth talks to unix:///path/to/berth.sock"
            ));
        }
        Ok(Client {
            socket: path.into(),
        })
    }

    fn connect(&self) -> Result<UnixStream> {
        UnixStream::connect(&self.socket)
            .map_err(|e| ClientError::Connect(self.socket.display().to_string(), e))
    }

    /// Sends a request; `body` is JSON (or raw bytes with `raw_body`).
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        extra_headers: &[(&str, &str)],
    ) -> Result<Response> {
        let mut s = self.connect()?;
        let mut head =
            format!("{method} {path} HTTP/1.1\r\nHost: berth\r\nUser-Agent: berth-cli\r\n");
        for (k, v) in extra_headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(b) = body {
            if !extra_headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                head.push_str("Content-Type: application/json\r\n");
            }
            head.push_str(&format!("Content-Length: {}\r\n", b.len()));
        }
        head.push_str("\r\n");
        let mut msg = head.into_bytes();
        if let Some(b) = body {
            msg.extend_from_slice(b);
        }
        s.write_all(&msg).map_err(proto)?;
        read_response(s)
    }

    /// A request whose successful answer is JSON (or nothing).
    pub fn json(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let bytes = body.map(|b| b.to_string().into_bytes());
        let resp = self.send(method, path, bytes.as_deref(), &[])?;
        let resp = resp.error_for_status()?;
        let text = resp.into_bytes()?;
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&text).map_err(proto)
    }

    /// GET returning JSON.
    pub fn get(&self, path: &str) -> Result<Value> {
        self.json("GET", path, None)
    }

    /// POST with a JSON body (or none) returning JSON (or nothing).
    pub fn post(&self, path: &str, body: Option<&Value>) -> Result<Value> {
        self.json("POST", path, body)
    }

    /// A request that hijacks the connection: the raw stream after the daemon's 101 (or
    /// a 200 from a daemon that hijacks without upgrading), with any bytes that arrived
    /// along with the response head.
    pub fn hijack(&self, path: &str, body: Option<&Value>) -> Result<Hijacked> {
        let bytes = body.map(|b| b.to_string().into_bytes());
        let resp = self.send(
            "POST",
            path,
            bytes.as_deref(),
            &[("Connection", "Upgrade"), ("Upgrade", "tcp")],
        )?;
        if resp.status != 101 && resp.status != 200 {
            return Err(match resp.error_for_status() {
                Err(e) => e,
                Ok(r) => ClientError::Protocol(format!("unexpected status {}", r.status)),
            });
        }
        let tty = resp.header("content-type") == Some("application/vnd.docker.raw-stream");
        let pending = resp.reader.buffer().to_vec();
        let stream = resp.reader.into_inner();
        Ok(Hijacked {
            stream,
            pending,
            tty,
        })
    }
}

/// A hijacked connection.
pub struct Hijacked {
    /// The connection, both ways.
    pub stream: UnixStream,
    /// Output that arrived with the response head: comes before anything read from
    /// `stream`.
    pub pending: Vec<u8>,
    /// Raw output (a terminal) rather than multiplexed frames.
    pub tty: bool,
}

fn read_response(s: UnixStream) -> Result<Response> {
    let mut reader = BufReader::new(s);
    let mut line = String::new();
    reader.read_line(&mut line).map_err(proto)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| ClientError::Protocol("the daemon sent no HTTP status".into()))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).map_err(proto)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let body = if status == 101 || status == 204 || status == 304 {
        BodyKind::Length(0)
    } else if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        BodyKind::Chunked
    } else if let Some(n) = header("content-length").and_then(|v| v.parse().ok()) {
        BodyKind::Length(n)
    } else {
        BodyKind::UntilClose
    };
    Ok(Response {
        status,
        headers,
        reader,
        body,
    })
}

impl Response {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Turns an error status into [`ClientError::Daemon`] with Docker's message.
    pub fn error_for_status(self) -> Result<Self> {
        if self.status < 400 {
            return Ok(self);
        }
        let status = self.status;
        let body = self.into_bytes().unwrap_or_default();
        let message = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
        Err(ClientError::Daemon { status, message })
    }

    /// Reads the next piece of the body (empty at the end).
    pub fn read_chunk(&mut self) -> Result<Vec<u8>> {
        match self.body {
            BodyKind::Length(0) => Ok(Vec::new()),
            BodyKind::Length(n) => {
                let mut buf = vec![0u8; n.min(64 * 1024) as usize];
                let got = self.reader.read(&mut buf).map_err(proto)?;
                buf.truncate(got);
                self.body = BodyKind::Length(if got == 0 { 0 } else { n - got as u64 });
                Ok(buf)
            }
            BodyKind::UntilClose => {
                let mut buf = vec![0u8; 64 * 1024];
                let got = self.reader.read(&mut buf).map_err(proto)?;
                buf.truncate(got);
                Ok(buf)
            }
            BodyKind::Chunked => {
                let mut line = String::new();
                self.reader.read_line(&mut line).map_err(proto)?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| {
                    ClientError::Protocol("bad chunk size from the daemon".into())
                })?;
                let mut buf = vec![0u8; size];
                self.reader.read_exact(&mut buf).map_err(proto)?;
                let mut crlf = [0u8; 2];
                let _ = self.reader.read_exact(&mut crlf);
                if size == 0 {
                    self.body = BodyKind::Length(0);
                }
                Ok(buf)
            }
        }
    }

    /// The whole body.
    pub fn into_bytes(mut self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let c = self.read_chunk()?;
            if c.is_empty() {
                return Ok(out);
            }
            out.extend_from_slice(&c);
        }
    }
}
