//! Docker's legacy hijack: a client that posts to `attach` or `exec/{id}/start` without
//! an `Upgrade` header still gets the raw stream, after a plain `200 OK` without a body
//! length. hyper hands a connection over only after a `101`, so this adapter sits under
//! hyper on each connection: it follows the requests going in (heads, then bodies by
//! length or chunks), adds `Connection: Upgrade` and `Upgrade: tcp` to a legacy hijack
//! request, and turns the `101` answering it into Docker's `200 OK`. After any upgrade
//! both directions are passed through untouched.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Where the reader is in the client's byte stream.
#[derive(Debug)]
enum In {
    /// Collecting a request head.
    Head(Vec<u8>),
    /// Passing `n` body bytes.
    Body(u64),
    /// A chunked body: collecting a chunk-size line.
    ChunkSize(Vec<u8>),
    /// Passing chunk data and its CRLF.
    ChunkData(u64),
    /// After the last chunk: collecting trailers up to an empty line.
    Trailers(Vec<u8>),
    /// Upgraded (or given up on): bytes go through as they are.
    Raw,
}

/// Where the writer is in the server's byte stream.
#[derive(Debug, PartialEq, Eq)]
enum Out {
    /// Responses go through as they are.
    Through,
    /// The next response answers a legacy hijack: collect its head.
    LegacyHead,
}

/// A connection with the legacy hijack translated (see the module doc).
pub struct LegacyHijack<T> {
    inner: T,
    input: In,
    /// After the current request's body, bytes become raw (the request asked to upgrade).
    raw_after_body: bool,
    /// Processed client bytes not yet handed to hyper.
    ready: Vec<u8>,
    output: Out,
    head_out: Vec<u8>,
    /// Server bytes not yet written to the client.
    unsent: Vec<u8>,
}

impl<T> LegacyHijack<T> {
    /// Wraps a freshly accepted connection.
    pub fn new(inner: T) -> Self {
        LegacyHijack {
            inner,
            input: In::Head(Vec::new()),
            raw_after_body: false,
            ready: Vec::new(),
            output: Out::Through,
            head_out: Vec::new(),
            unsent: Vec::new(),
        }
    }

    /// Feeds client bytes through the request parser into `ready`.
    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match &mut self.input {
                In::Raw => {
                    self.ready.extend_from_slice(data);
                    return;
                }
                In::Head(buf) => {
                    buf.extend_from_slice(data);
                    let Some(end) = find(buf, b"\r\n\r\n") else {
                        if buf.len() > 1 << 20 {
                            // Not HTTP we understand: stop interpreting.
                            let all = std::mem::take(buf);
                            self.ready.extend_from_slice(&all);
                            self.input = In::Raw;
                        }
                        return;
                    };
                    let all = std::mem::take(buf);
                    let (head, rest) = all.split_at(end + 4);
                    let rest = rest.to_vec();
                    self.take_head(head);
                    self.feed(&rest);
                    return;
                }
                In::Body(n) => {
                    let take = (*n).min(data.len() as u64) as usize;
                    self.ready.extend_from_slice(&data[..take]);
                    *n -= take as u64;
                    data = &data[take..];
                    if *n == 0 {
                        self.next_request();
                    }
                }
                In::ChunkSize(line) => {
                    let Some(pos) = data.iter().position(|b| *b == b'\n') else {
                        line.extend_from_slice(data);
                        self.ready.extend_from_slice(data);
                        return;
                    };
                    line.extend_from_slice(&data[..=pos]);
                    self.ready.extend_from_slice(&data[..=pos]);
                    data = &data[pos + 1..];
                    let text = String::from_utf8_lossy(line);
                    let size = u64::from_str_radix(text.trim().split(';').next().unwrap_or(""), 16);
                    self.input = match size {
                        Ok(0) => In::Trailers(Vec::new()),
                        Ok(n) => In::ChunkData(n + 2),
                        Err(_) => In::Raw,
                    };
                }
                In::ChunkData(n) => {
                    let take = (*n).min(data.len() as u64) as usize;
                    self.ready.extend_from_slice(&data[..take]);
                    *n -= take as u64;
                    data = &data[take..];
                    if *n == 0 {
                        self.input = In::ChunkSize(Vec::new());
                    }
                }
                In::Trailers(buf) => {
                    let Some(pos) = data.iter().position(|b| *b == b'\n') else {
                        buf.extend_from_slice(data);
                        self.ready.extend_from_slice(data);
                        return;
                    };
                    buf.extend_from_slice(&data[..=pos]);
                    self.ready.extend_from_slice(&data[..=pos]);
                    data = &data[pos + 1..];
                    if buf == b"\r\n" || buf == b"\n" {
                        self.next_request();
                    } else {
                        buf.clear();
                    }
                }
            }
        }
    }

    fn next_request(&mut self) {
        self.input = if self.raw_after_body {
            In::Raw
        } else {
            In::Head(Vec::new())
        };
    }

    /// Passes one request head on (rewritten for a legacy hijack) and sets up its body.
    fn take_head(&mut self, head: &[u8]) {
        let text = String::from_utf8_lossy(head).into_owned();
        let mut lines = text.split("\r\n");
        let request_line = lines.next().unwrap_or("");
        let headers: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
        let header = |name: &str| {
            headers.iter().find_map(|h| {
                let (k, v) = h.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
        };
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let upgrading = header("upgrade").is_some();
        let legacy = !upgrading && method == "POST" && is_hijack_path(path);
        if legacy {
            let mut rewritten = format!("{request_line}\r\n");
            for h in &headers {
                let name = h.split(':').next().unwrap_or("").trim();
                if !name.eq_ignore_ascii_case("connection") {
                    rewritten.push_str(h);
                    rewritten.push_str("\r\n");
                }
            }
            rewritten.push_str("Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n");
            self.ready.extend_from_slice(rewritten.as_bytes());
            self.output = Out::LegacyHead;
        } else {
            self.ready.extend_from_slice(head);
        }
        self.raw_after_body = upgrading || legacy;
        let chunked =
            header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        let length = header("content-length")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        self.input = if chunked {
            In::ChunkSize(Vec::new())
        } else if length > 0 {
            In::Body(length)
        } else {
            In::Head(Vec::new())
        };
        if matches!(self.input, In::Head(_)) {
            self.next_request();
        }
    }

    /// Takes server bytes: through, or the head of the answer to a legacy hijack, which
    /// becomes Docker's 200 when it is a 101.
    fn take_output(&mut self, data: &[u8]) {
        if self.output == Out::Through {
            self.unsent.extend_from_slice(data);
            return;
        }
        self.head_out.extend_from_slice(data);
        let Some(end) = find(&self.head_out, b"\r\n\r\n") else {
            return;
        };
        let all = std::mem::take(&mut self.head_out);
        let (head, rest) = all.split_at(end + 4);
        let text = String::from_utf8_lossy(head);
        if text.starts_with("HTTP/1.1 101") {
            let content_type = text
                .split("\r\n")
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case("content-type")
                        .then(|| v.trim().to_string())
                })
                .unwrap_or_else(|| "application/vnd.docker.raw-stream".into());
            self.unsent.extend_from_slice(
                format!("HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n\r\n").as_bytes(),
            );
        } else {
            // Refused (no such container, ...): the client reads an ordinary answer and
            // will not send raw bytes.
            self.unsent.extend_from_slice(head);
            if !matches!(self.input, In::Raw) {
                self.raw_after_body = false;
            }
        }
        self.unsent.extend_from_slice(rest);
        self.output = Out::Through;
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `[/v1.NN]/containers/{id}/attach` and `[/v1.NN]/exec/{id}/start`, query ignored.
fn is_hijack_path(path: &str) -> bool {
    let path = path.split('?').next().unwrap_or("");
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let segs = match segs.first() {
        Some(s) if s.starts_with('v') && s[1..].starts_with(|c: char| c.is_ascii_digit()) => {
            &segs[1..]
        }
        _ => &segs[..],
    };
    matches!(segs, ["containers", _, "attach"] | ["exec", _, "start"])
}

impl<T: AsyncRead + Unpin> AsyncRead for LegacyHijack<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.ready.is_empty() {
                let n = this.ready.len().min(buf.remaining());
                buf.put_slice(&this.ready[..n]);
                this.ready.drain(..n);
                return Poll::Ready(Ok(()));
            }
            if matches!(this.input, In::Raw) {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            let mut tmp = [0u8; 16 * 1024];
            let mut rb = ReadBuf::new(&mut tmp);
            match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    let got = rb.filled().to_vec();
                    if got.is_empty() {
                        // End of stream; a half-collected head goes through for hyper to judge.
                        if let In::Head(h) = &mut this.input {
                            let rest = std::mem::take(h);
                            this.ready.extend_from_slice(&rest);
                        }
                        if this.ready.is_empty() {
                            return Poll::Ready(Ok(()));
                        }
                        continue;
                    }
                    this.feed(&got);
                }
                other => return other,
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> LegacyHijack<T> {
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.unsent.is_empty() {
            match Pin::new(&mut self.inner).poll_write(cx, &self.unsent) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.unsent.drain(..n);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for LegacyHijack<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match this.poll_drain(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
        if this.output == Out::Through {
            return Pin::new(&mut this.inner).poll_write(cx, data);
        }
        this.take_output(data);
        // Accepted into our buffer; pushed out by the next write or flush.
        let _ = this.poll_drain(cx);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match this.poll_drain(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_flush(cx),
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match this.poll_drain(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_shutdown(cx),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through(input: &[&[u8]]) -> (Vec<u8>, LegacyHijack<()>) {
        let mut c = LegacyHijack::new(());
        for chunk in input {
            c.feed(chunk);
        }
        let out = std::mem::take(&mut c.ready);
        (out, c)
    }

    #[test]
    fn a_legacy_attach_is_rewritten_and_what_follows_is_raw() {
        let req = b"POST /v1.41/containers/abc/attach?stream=1 HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\nRAW BYTES";
        let (out, c) = through(&[&req[..20], &req[20..]]);
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.contains("Connection: Upgrade\r\nUpgrade: tcp\r\n\r\nRAW BYTES"),
            "{text}"
        );
        assert!(!text.contains("keep-alive"));
        assert_eq!(c.output, Out::LegacyHead);
    }

    #[test]
    fn bodies_are_skipped_by_length_and_by_chunks() {
        let (out, c) = through(&[
            b"POST /containers/create HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
            b"POST /images/create HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            b"POST /exec/e1/start HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
        ]);
        let text = String::from_utf8_lossy(&out);
        assert_eq!(text.matches("Upgrade: tcp").count(), 1, "{text}");
        assert!(text.ends_with("Upgrade: tcp\r\n\r\n{}"), "{text}");
        assert!(matches!(c.input, In::Raw));
    }

    #[test]
    fn a_101_becomes_dockers_200() {
        let mut c = LegacyHijack::new(());
        c.output = Out::LegacyHead;
        c.take_output(b"HTTP/1.1 101 Switching Protocols\r\ncontent-type: application/vnd.docker.multiplexed-stream\r\nconnection: Upgrade\r\nupgrade: tcp\r\n\r\n");
        c.take_output(b"\x01\x00\x00\x00");
        assert_eq!(
            c.unsent,
            b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n\r\n\x01\x00\x00\x00"
        );
    }

    #[test]
    fn upgrade_requests_and_other_paths_pass_unchanged() {
        let req: &[u8] =
            b"POST /containers/abc/attach HTTP/1.1\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n";
        let (out, c) = through(&[req]);
        assert_eq!(out, req);
        assert_eq!(c.output, Out::Through);
        assert!(!is_hijack_path("/containers/abc/logs"));
        assert!(is_hijack_path("/v1.24/exec/xyz/start"));
    }
}
