//! Receiving descriptors over a unix socket (SCM_RIGHTS).

use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};

/// More than any sender of ours passes in one message (runc passes one: the notify fd).
const MAX_FDS: usize = 8;

/// One non-blocking read: the bytes go to `buf`, the descriptors that came with them (close-on-exec)
/// are appended to `fds`. Returns the byte count; 0 is end of stream.
pub fn recv_with_fds(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
) -> io::Result<usize> {
    recv_msg::<MAX_FDS>(sock, buf, fds, MsgFlags::MSG_DONTWAIT).map(|(n, _)| n)
}

/// One `recvmsg` with `flags` (and always MSG_CMSG_CLOEXEC), with room for `MAX` descriptors:
/// the bytes go to `buf`, the descriptors that came with them are appended to `fds`. Returns the
/// byte count (0 is end of stream) and the message's flags, for the caller's own checks (such as
/// MSG_TRUNC). Descriptors cut off for want of room (MSG_CTRUNC) are an error; the ones that did
/// arrive are in `fds` all the same.
pub fn recv_msg<const MAX: usize>(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
    flags: MsgFlags,
) -> io::Result<(usize, MsgFlags)> {
    let mut cmsg = nix::cmsg_space!([RawFd; MAX]);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        flags | MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    for c in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(received) = c {
            for raw in received {
                // SAFETY: SCM_RIGHTS installed these descriptors in our table for us alone.
                fds.push(unsafe { OwnedFd::from_raw_fd(raw) });
            }
        }
    }
    if msg.flags.contains(MsgFlags::MSG_CTRUNC) {
        return Err(io::Error::other(format!(
            "descriptors were truncated (more than {MAX} in one message)"
        )));
    }
    Ok((msg.bytes, msg.flags))
}
