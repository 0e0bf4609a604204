//! Client side of a shim's `attach.sock` (protocol in `berth_types::shim`).

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::{Error, Result};

/// Connects to `dir/attach.sock` through a directory descriptor (the path with two
/// 64-digit ids can exceed the 108 bytes a socket address holds) and sends `opening`.
fn connect_raw(dir: &Path, opening: &[u8]) -> Result<UnixStream> {
    let d = std::fs::File::open(dir)
        .map_err(|e| Error::Internal(format!("attach: {}: {e}", dir.display())))?;
    let path = format!("/proc/self/fd/{}/attach.sock", d.as_raw_fd());
    let mut s = UnixStream::connect(path)
        .map_err(|e| Error::Internal(format!("attach: connect to the shim: {e}")))?;
    s.write_all(opening)
        .map_err(|e| Error::Internal(format!("attach: talk to the shim: {e}")))?;
    Ok(s)
}

/// An attach connection with the given opening header.
pub(crate) fn connect(dir: &Path, header: [u8; 2]) -> Result<UnixStream> {
    connect_raw(dir, &header)
}

/// Asks the shim to resize its terminal.
pub(crate) fn send_resize(dir: &Path, height: u16, width: u16) -> Result<()> {
    connect_raw(dir, &berth_types::shim::resize_request(height, width)).map(drop)
}
