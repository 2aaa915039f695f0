//! The only `unsafe` of the responses: pidfd_open, pidfd_send_signal and a zero-timeout poll,
//! each returning `io::Result` so kill_process is safe code. Raw syscalls because glibc only
//! grew wrappers in 2.36 and libc does not expose them for every target.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `PIDFD_THREAD` (Linux 6.9): a pidfd for a thread that is not its group's leader. Same value
/// as `O_EXCL`, as the kernel defines it.
const PIDFD_THREAD: libc::c_uint = libc::O_EXCL as libc::c_uint;

/// pidfd_open(2) for a whole process (`thread == false`) or a single thread (`thread == true`,
/// Linux 6.9+). The descriptor is close-on-exec, as every pidfd is.
pub(crate) fn pidfd_open(pid: libc::pid_t, thread: bool) -> io::Result<OwnedFd> {
    let flags = if thread { PIDFD_THREAD } else { 0 };
    // SAFETY: integer arguments only; the kernel reads no memory of ours.
    let rc = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, flags) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let raw = i32::try_from(rc).map_err(|_| io::Error::other("pidfd_open returned a bad fd"))?;
    // SAFETY: the kernel just installed this descriptor for us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// pidfd_send_signal(2) with no siginfo and no flags: the signal goes to the process (or, for a
/// thread pidfd, the thread; SIGKILL takes the whole process either way).
pub(crate) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: `pidfd` is a live descriptor for the duration of the call (it is borrowed), the
    // siginfo pointer is NULL, which the kernel accepts, and the flags are 0.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0 as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// True when the pidfd's process has exited (a pidfd polls readable from exit on, zombie or
/// reaped). Does not block.
pub(crate) fn pidfd_exited(pidfd: BorrowedFd<'_>) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one pollfd that lives across the call, count 1, timeout 0 (no blocking).
        let rc = unsafe { libc::poll(&mut pfd, 1, 0) };
        if rc >= 0 {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    if pfd.revents & libc::POLLNVAL != 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    Ok(pfd.revents & (libc::POLLIN | libc::POLLHUP) != 0)
}
