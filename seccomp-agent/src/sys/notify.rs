//! seccomp user-notification ioctls on a listener fd (see seccomp_unotify(2)).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

/// One notification: a task is stopped in a syscall until it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notification {
    /// The kernel's cookie; stale once the task dies or the syscall is interrupted.
    pub id: u64,
    /// The task, in the agent's pid namespace (the kernel translates it).
    pub pid: u32,
    pub nr: i32,
    pub arch: u32,
    pub args: [u64; 6],
}

fn ioctl<T>(fd: BorrowedFd<'_>, request: libc::Ioctl, arg: *mut T) -> io::Result<libc::c_int> {
    // SAFETY: every caller passes a request whose argument type is T, and `arg` points to a live,
    // properly sized and aligned T for the duration of the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request, arg) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Takes the next pending notification. `ENOENT` means none was pending (another thread took
/// it, or the task went away): callers wait for readiness again.
pub fn recv(fd: BorrowedFd<'_>) -> io::Result<Notification> {
    // SAFETY: seccomp_notif is plain data; the kernel requires it zeroed on entry.
    let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut n)?;
    Ok(Notification {
        id: n.id,
        pid: n.pid,
        nr: n.data.nr,
        arch: n.data.arch,
        args: n.data.args,
    })
}

fn send(fd: BorrowedFd<'_>, id: u64, val: i64, error: i32, flags: u32) -> io::Result<()> {
    let mut resp = libc::seccomp_notif_resp {
        id,
        val,
        error,
        flags,
    };
    ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp).map(drop)
}

/// Lets the syscall run in the kernel as if no filter had stopped it. Only safe when the decision
/// did not depend on user memory the task can still change (seccomp_unotify(2), NOTES).
pub fn respond_continue(fd: BorrowedFd<'_>, id: u64) -> io::Result<()> {
    send(fd, id, 0, 0, libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32)
}

/// Fails the syscall with `errno` (positive, e.g. `libc::EPERM`).
pub fn respond_errno(fd: BorrowedFd<'_>, id: u64, errno: i32) -> io::Result<()> {
    send(fd, id, 0, -errno, 0)
}

/// Answers the syscall with return value `val`: the agent did it itself (an emulated unlink,
/// rename, chmod, ...), so the kernel must not run it again.
pub fn respond_value(fd: BorrowedFd<'_>, id: u64, val: i64) -> io::Result<()> {
    send(fd, id, val, 0, 0)
}

/// Whether the notification still refers to the same stopped syscall. Checked after reading the
/// task's memory: a pid may be reused by another task between RECV and the read.
pub fn id_valid(fd: BorrowedFd<'_>, id: u64) -> bool {
    let mut id = id;
    ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &mut id).is_ok()
}

/// Installs `src` in the task's fd table and answers the syscall with the new fd number, in one
/// atomic step (SECCOMP_ADDFD_FLAG_SEND): the emulated open's result.
pub fn addfd_send(
    fd: BorrowedFd<'_>,
    id: u64,
    src: BorrowedFd<'_>,
    cloexec: bool,
) -> io::Result<RawFd> {
    let mut addfd = libc::seccomp_notif_addfd {
        id,
        flags: libc::SECCOMP_ADDFD_FLAG_SEND as u32,
        srcfd: src.as_raw_fd() as u32,
        newfd: 0,
        newfd_flags: if cloexec { libc::O_CLOEXEC as u32 } else { 0 },
    };
    ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_ADDFD, &mut addfd)
}

/// Asks the kernel to wake the supervisor on the notifying task's CPU and to switch to it
/// synchronously (Linux >= 6.6); a wakeup that crosses CPUs costs tens of µs on a VM.
pub fn set_sync_wakeup(fd: BorrowedFd<'_>) -> io::Result<()> {
    const SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: libc::c_ulong = 1;
    // SAFETY: unlike the other notify ioctls, SET_FLAGS takes the flags as the argument's value,
    // not through a pointer (kernel/seccomp.c: seccomp_notify_set_flags(filter, arg)).
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS,
            SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
