//! Terminals: the pseudo-terminal a container gets when `process.terminal` is true, and the
//! runc console-socket protocol that hands its master side to whoever drives the container.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};
use rustix::pty::OpenptFlags;

use crate::error::{Error, IoContext, Result};
use crate::sys;

/// Connects to the `--console-socket` path.
pub fn connect(path: &Path) -> Result<OwnedFd> {
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .ctx(|| "create console socket".into())?;
    let addr =
        SocketAddrUnix::new(path).ctx(|| format!("console socket path {}", path.display()))?;
    rustix::net::connect(&fd, &addr)
        .ctx(|| format!("connect to console socket {}", path.display()))?;
    Ok(fd)
}

/// Opens a new pseudo-terminal from the current /dev/ptmx; returns (master, slave).
pub fn open_pty(size: Option<(u16, u16)>) -> Result<(OwnedFd, OwnedFd)> {
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .ctx(|| "open /dev/ptmx".into())?;
    rustix::pty::unlockpt(&master).ctx(|| "unlock pty".into())?;
    let slave = rustix::pty::ioctl_tiocgptpeer(
        &master,
        OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC,
    )
    .ctx(|| "open pty peer".into())?;
    if let Some((height, width)) = size {
        let ws = rustix::termios::Winsize {
            ws_row: height,
            ws_col: width,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(&master, ws).ctx(|| "process.consoleSize".into())?;
    }
    Ok((master, slave))
}

/// Makes `slave` this session's controlling terminal and the process's stdio.
pub fn become_terminal(slave: BorrowedFd<'_>) -> Result<()> {
    sys::set_controlling_tty(slave).ctx(|| "set controlling terminal".into())?;
    for target in 0..3 {
        sys::dup_onto(slave, target).ctx(|| format!("dup terminal onto fd {target}"))?;
    }
    Ok(())
}

/// Sends `fd` over a unix socket with `name` as payload, as runc's SendFd does.
pub fn send_fd(sock: BorrowedFd<'_>, fd: BorrowedFd<'_>, name: &str) -> Result<()> {
    let fds = [fd];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(&fds));
    let iov = [io::IoSlice::new(name.as_bytes())];
    rustix::net::sendmsg(sock, &iov, &mut control, SendFlags::NOSIGNAL)
        .ctx(|| "send terminal over console socket".into())?;
    Ok(())
}

/// Receives one descriptor sent with [`send_fd`].
pub fn recv_fd(sock: BorrowedFd<'_>) -> Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut iov = [io::IoSliceMut::new(&mut buf)];
    rustix::net::recvmsg(sock, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC)
        .ctx(|| "receive terminal from console socket".into())?;
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = msg
            && let Some(fd) = fds.next()
        {
            return Ok(fd);
        }
    }
    Err(Error::Init(
        "console socket message carried no descriptor".into(),
    ))
}

/// Borrows a descriptor for the send functions.
pub fn borrow(fd: &OwnedFd) -> BorrowedFd<'_> {
    fd.as_fd()
}
