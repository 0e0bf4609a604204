//! The wire protocol between `berthd` and a `berth-shim` on the shim's `attach.sock`.
//!
//! Every connection opens with one kind byte:
//! - [`ATTACH`], then one byte of [`STDIN`] | [`STDOUT`] | [`STDERR`] flags. The shim
//!   sends the container's output (Docker's 8-byte-header frames, or raw bytes for a
//!   terminal) for the streams asked for. The client sends stdin as frames of a 4-byte
//!   big-endian length and that many bytes; a zero-length frame closes the container's
//!   stdin. A client that just goes away leaves stdin open (that is how detaching works).
//! - [`RESIZE`], then height and width as big-endian u16: the terminal is resized and
//!   the shim closes the connection.
//!
//! Example: attaching stdout and stderr and sending "hi\n" then end of input is the bytes
//! `a 06 00000003 "hi\n" 00000000`.

/// Opens an attach connection.
pub const ATTACH: u8 = b'a';
/// Opens a resize request.
pub const RESIZE: u8 = b'r';
/// Attach flag: the client sends stdin.
pub const STDIN: u8 = 1;
/// Attach flag: the client wants stdout.
pub const STDOUT: u8 = 2;
/// Attach flag: the client wants stderr.
pub const STDERR: u8 = 4;

/// The opening bytes of an attach connection.
pub fn attach_header(stdin: bool, stdout: bool, stderr: bool) -> [u8; 2] {
    let mut flags = 0;
    if stdin {
        flags |= STDIN;
    }
    if stdout {
        flags |= STDOUT;
    }
    if stderr {
        flags |= STDERR;
    }
    [ATTACH, flags]
}

/// A stdin frame carrying `data` (empty: end of input).
pub fn stdin_frame(data: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(4 + data.len());
    f.extend_from_slice(&(data.len() as u32).to_be_bytes());
    f.extend_from_slice(data);
    f
}

/// A complete resize request.
pub fn resize_request(height: u16, width: u16) -> [u8; 5] {
    let [h0, h1] = height.to_be_bytes();
    let [w0, w1] = width.to_be_bytes();
    [RESIZE, h0, h1, w0, w1]
}

/// Splits complete stdin frames off the front of `buf`; returns their payloads (an empty
/// payload means end of input) and leaves an incomplete frame in `buf`.
pub fn take_stdin_frames(buf: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while buf.len() - pos >= 4 {
        let len = u32::from_be_bytes(buf[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        if buf.len() - pos - 4 < len {
            break;
        }
        out.push(buf[pos + 4..pos + 4 + len].to_vec());
        pos += 4 + len;
    }
    buf.drain(..pos);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_at_their_boundaries() {
        let mut buf = stdin_frame(b"hi\n");
        buf.extend(stdin_frame(b""));
        buf.extend(&stdin_frame(b"partial")[..6]);
        let frames = take_stdin_frames(&mut buf);
        assert_eq!(frames, vec![b"hi\n".to_vec(), Vec::new()]);
        assert_eq!(buf.len(), 6);
    }

    #[test]
    fn headers_carry_their_flags() {
        assert_eq!(attach_header(true, false, true), [ATTACH, STDIN | STDERR]);
        assert_eq!(resize_request(24, 80), [RESIZE, 0, 24, 0, 80]);
    }
}
