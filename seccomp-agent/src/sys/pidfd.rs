//! pidfd_open(2), pidfd_getfd(2) and pidfd_send_signal(2), which nix does not wrap: a process handle that can't
//! name a later process reusing the pid.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A pidfd of process `pid`.
pub fn open(pid: u32) -> io::Result<OwnedFd> {
    open_with(pid, 0)
}

/// A pidfd of thread `tid` (PIDFD_THREAD, Linux 6.9; older kernels answer EINVAL for a thread
/// that is not its process's leader).
pub fn open_thread(tid: u32) -> io::Result<OwnedFd> {
    open_with(tid, libc::O_EXCL)
}

fn open_with(pid: u32, flags: libc::c_int) -> io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: pidfd_open takes a pid and flags by value and touches no memory of ours.
    let rc = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, flags) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(rc as i32) })
}

/// A duplicate of descriptor `fd` of the process `pidfd` names (the agent may: it has
/// CAP_SYS_PTRACE over the workload).
pub fn get_fd(pidfd: BorrowedFd<'_>, fd: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_getfd takes two descriptors and flags by value and touches no memory of ours.
    let rc = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(rc as i32) })
}

/// Sends SIGKILL to the process `pidfd` names.
pub fn kill(pidfd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: a NULL siginfo is allowed (the kernel fills in a SI_USER one); the descriptor is
    // borrowed for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kills_the_process_it_names() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let fd = open(child.id()).unwrap();
        kill(std::os::fd::AsFd::as_fd(&fd)).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL)
        );
        assert_eq!(
            open(u32::MAX).unwrap_err().raw_os_error(),
            Some(libc::ESRCH)
        );
    }
}
