//! The message channel between the runtime and the processes it forks (a SEQPACKET socket
//! pair, one JSON message per packet), so the parent knows each setup step's outcome.

use std::os::fd::{AsFd, OwnedFd};

use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType, socketpair};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Messages exchanged during container setup.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Msg {
    /// Parent → child: go on (cgroup joined, mappings written, hooks run, ...).
    Continue,
    /// Child → parent: a new user namespace exists; write its id mappings.
    MapIds,
    /// Child → parent: this is the host pid of the container process.
    Pid(i32),
    /// Child → parent: mounts are done, run prestart and createRuntime hooks now.
    RunCreateHooks,
    /// Child → parent: setup finished, the process waits for `start` (or execs, for exec).
    Ready,
    /// Child → parent: setup failed with this message.
    Failed(String),
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// Creates a connected pair (parent end, child end); both are close-on-exec.
pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| Error::io("create sync socket pair", e))?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    /// Sends one message.
    pub fn send(&self, msg: &Msg) -> Result<()> {
        let buf = serde_json::to_vec(msg).expect("messages always serialize");
        rustix::net::send(self.fd.as_fd(), &buf, SendFlags::NOSIGNAL)
            .map_err(|e| Error::io("send on sync socket", e))?;
        Ok(())
    }

    /// Receives one message; a closed peer is an error naming what was expected.
    pub fn recv(&self) -> Result<Msg> {
        let mut buf = vec![0u8; 64 * 1024];
        let n = loop {
            match rustix::net::recv(self.fd.as_fd(), &mut buf, RecvFlags::empty()) {
                Ok((n, _)) => break n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(Error::io("receive on sync socket", e)),
            }
        };
        if n == 0 {
            return Err(Error::Init("container process exited during setup".into()));
        }
        serde_json::from_slice(&buf[..n])
            .map_err(|e| Error::Init(format!("bad message on sync socket: {e}")))
    }

    /// Receives and requires a specific message; a `Failed` from the peer becomes the error.
    pub fn expect(&self, want: &Msg) -> Result<()> {
        match self.recv()? {
            m if &m == want => Ok(()),
            Msg::Failed(e) => Err(Error::Init(e)),
            other => Err(Error::Init(format!(
                "expected {want:?} on sync socket, got {other:?}"
            ))),
        }
    }
}
