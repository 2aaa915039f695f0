//! Unix SOCK_SEQPACKET sockets with descriptors attached (SCM_RIGHTS): the fd holder's transport.
//! Each message arrives whole, with its descriptors, so no framing is needed.

use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Duration;

use nix::sys::socket::{
    AddressFamily, Backlog, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr, accept4, bind,
    connect as nix_connect, getsockopt, listen as nix_listen, sendmsg, setsockopt, socket, sockopt,
};
use nix::sys::time::TimeVal;

use super::scm;

/// More descriptors than any message of the holder's protocol carries (one).
const MAX_FDS: usize = 4;

fn new_socket() -> io::Result<OwnedFd> {
    socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(io::Error::from)
}

/// A listening socket bound at `path` (which must not exist).
pub fn listen(path: &Path) -> io::Result<OwnedFd> {
    let sock = new_socket()?;
    let addr = UnixAddr::new(path).map_err(io::Error::from)?;
    bind(sock.as_raw_fd(), &addr).map_err(io::Error::from)?;
    nix_listen(&sock, Backlog::new(64).map_err(io::Error::from)?).map_err(io::Error::from)?;
    Ok(sock)
}

/// Accepts one connection (close-on-exec, blocking).
pub fn accept(listener: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let raw = accept4(listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC).map_err(io::Error::from)?;
    // SAFETY: accept4 returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Connects to `path`; sends and receives on the result time out after `timeout`.
pub fn connect(path: &Path, timeout: Duration) -> io::Result<OwnedFd> {
    let sock = new_socket()?;
    set_timeouts(sock.as_fd(), timeout)?;
    let addr = UnixAddr::new(path).map_err(io::Error::from)?;
    nix_connect(sock.as_raw_fd(), &addr).map_err(io::Error::from)?;
    Ok(sock)
}

/// Bounds blocking sends and receives on `sock`.
pub fn set_timeouts(sock: BorrowedFd<'_>, timeout: Duration) -> io::Result<()> {
    let tv = TimeVal::from(libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    });
    setsockopt(&sock, sockopt::ReceiveTimeout, &tv).map_err(io::Error::from)?;
    setsockopt(&sock, sockopt::SendTimeout, &tv).map_err(io::Error::from)
}

/// The uid of the process at the other end.
pub fn peer_uid(sock: BorrowedFd<'_>) -> io::Result<u32> {
    getsockopt(&sock, sockopt::PeerCredentials)
        .map(|c| c.uid())
        .map_err(io::Error::from)
}

/// Sends one message with `fds` attached.
pub fn send(sock: BorrowedFd<'_>, data: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let cmsgs = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage] = if raw.is_empty() { &[] } else { &cmsgs };
    let n = sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(data)],
        cmsgs,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(io::Error::from)?;
    if n != data.len() {
        return Err(io::Error::other("the message was sent in part"));
    }
    Ok(())
}

/// Receives one message into `buf`; its descriptors (close-on-exec) are appended to `fds`.
/// Returns the byte count; 0 is end of stream. A message longer than `buf` is an error.
pub fn recv(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
    nonblocking: bool,
) -> io::Result<usize> {
    let flags = if nonblocking {
        MsgFlags::MSG_DONTWAIT
    } else {
        MsgFlags::empty()
    };
    let (n, flags) = scm::recv_msg::<MAX_FDS>(sock, buf, fds, flags)?;
    if flags.contains(MsgFlags::MSG_TRUNC) {
        return Err(io::Error::other(format!(
            "a message longer than {} bytes was truncated",
            buf.len()
        )));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::socketpair;

    #[test]
    fn a_message_and_its_fd_arrive_together() {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let (r, _w) = std::io::pipe().unwrap();
        send(a.as_fd(), b"one", &[r.as_fd()]).unwrap();
        send(a.as_fd(), b"two", &[]).unwrap();
        let mut buf = [0u8; 16];
        let mut fds = Vec::new();
        assert_eq!(recv(b.as_fd(), &mut buf, &mut fds, true).unwrap(), 3);
        assert_eq!(&buf[..3], b"one");
        assert_eq!(fds.len(), 1);
        assert_eq!(recv(b.as_fd(), &mut buf, &mut fds, true).unwrap(), 3);
        assert_eq!(fds.len(), 1);
        let mut small = [0u8; 2];
        send(a.as_fd(), b"three", &[]).unwrap();
        assert!(recv(b.as_fd(), &mut small, &mut fds, true).is_err());
    }
}
