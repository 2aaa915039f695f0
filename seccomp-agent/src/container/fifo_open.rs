//! Opening a FIFO blocks until the other end opens: runc's own exec FIFO (its init opens it for
//! writing and waits for `runc start`) and any FIFO a workload uses. The supervisor thread must
//! not wait with it, so such an open is finished on a thread of its own, which answers the
//! notification when the FIFO is ready, and gives up as soon as the task stops waiting (a signal
//! or its death invalidates the notification).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::stat::Mode;
use tracing::debug;

use crate::sys::creds::{self, FsCreds};
use crate::sys::notify;

/// Whether opening a FIFO with `flags` would wait for a peer. O_RDWR never waits on Linux, and
/// O_NONBLOCK doesn't either (a writer gets ENXIO instead).
pub fn would_block(flags: u64) -> bool {
    let flags = flags as i32;
    let mode = flags & libc::O_ACCMODE;
    flags & libc::O_NONBLOCK == 0 && (mode == libc::O_RDONLY || mode == libc::O_WRONLY)
}

/// Finishes the open of `fifo` (an O_PATH descriptor) on another thread and answers notification
/// `id` on `notify_fd` from there.
pub fn spawn(
    notify_fd: OwnedFd,
    id: u64,
    fifo: OwnedFd,
    flags: u64,
    creds: FsCreds,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("fifo-open".into())
        .spawn(move || {
            let answer = match creds::assume(&creds) {
                Ok(_guard) => wait_open(&notify_fd, id, &fifo, flags as i32),
                Err(e) => Err(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EPERM))),
            };
            let sent = match answer {
                Ok(Some(fd)) => notify::addfd_send(
                    notify_fd.as_fd(),
                    id,
                    fd.as_fd(),
                    flags as i32 & libc::O_CLOEXEC != 0,
                )
                .map(drop),
                Ok(None) => return, // the task stopped waiting; nothing to answer
                Err(errno) => notify::respond_errno(notify_fd.as_fd(), id, errno as i32),
            };
            if let Err(e) = sent {
                debug!(error = %e, "answering a FIFO open failed (the task may be gone)");
            }
        })
        .map(drop)
}

/// Polls until the FIFO has a peer. `Ok(None)`: the notification is no longer valid.
fn wait_open(
    notify_fd: &OwnedFd,
    id: u64,
    fifo: &OwnedFd,
    flags: i32,
) -> Result<Option<OwnedFd>, Errno> {
    let path =
        CString::new(format!("/proc/self/fd/{}", fifo.as_raw_fd())).map_err(|_| Errno::EINVAL)?;
    let open_flags = OFlag::from_bits_truncate(
        (flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW))
            | libc::O_NONBLOCK
            | libc::O_CLOEXEC,
    );
    let blocking = |fd: OwnedFd| -> Result<OwnedFd, Errno> {
        let fl = fcntl(fd.as_fd(), FcntlArg::F_GETFL)?;
        fcntl(
            fd.as_fd(),
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(fl) & !OFlag::O_NONBLOCK),
        )?;
        Ok(fd)
    };
    if flags & libc::O_ACCMODE == libc::O_WRONLY {
        // A writer's non-blocking open fails with ENXIO until a reader exists: retry.
        let mut wait = Duration::from_micros(200);
        loop {
            match nix::fcntl::open(path.as_c_str(), open_flags, Mode::empty()) {
                Ok(fd) => return blocking(fd).map(Some),
                Err(Errno::ENXIO) => {
                    if !notify::id_valid(notify_fd.as_fd(), id) {
                        return Ok(None);
                    }
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_millis(20));
                }
                Err(e) => return Err(e),
            }
        }
    }
    // A reader's non-blocking open succeeds at once; it is ready when a writer has written or
    // come and gone, which is as close as user space can see to "a writer opened".
    let fd = nix::fcntl::open(path.as_c_str(), open_flags, Mode::empty())?;
    loop {
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(50u16)) {
            Ok(n) if n > 0 => return blocking(fd).map(Some),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
        if !notify::id_valid(notify_fd.as_fd(), id) {
            return Ok(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_opens_wait() {
        assert!(would_block(libc::O_RDONLY as u64));
        assert!(would_block(libc::O_WRONLY as u64));
        assert!(!would_block(libc::O_RDWR as u64));
        assert!(!would_block((libc::O_WRONLY | libc::O_NONBLOCK) as u64));
    }
}
