//! The kill-process response, done by the agent while the task is still stopped in the notified
//! syscall: a pidfd taken now names exactly this process (a pid could be reused later; a pidfd
//! can't), and the notification id, still valid after the pidfd is open, proves the pidfd's process
//! is the one that made the call.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use crate::sys::{notify, pidfd};

#[derive(Debug, thiserror::Error)]
pub enum KillError {
    #[error("cannot open a pidfd for pid {pid}: {source}")]
    Pidfd { pid: u32, source: io::Error },
    #[error("the task left the syscall before it could be killed (pid {pid})")]
    Gone { pid: u32 },
    #[error("cannot send SIGKILL to pid {pid}: {source}")]
    Signal { pid: u32, source: io::Error },
}

/// SIGKILLs the process (thread group `tgid`) whose task is stopped in notification `id`.
pub fn kill(notify_fd: BorrowedFd<'_>, id: u64, tgid: u32) -> Result<(), KillError> {
    if tgid == 0 {
        return Err(KillError::Gone { pid: tgid });
    }
    let pidfd = pidfd::open(tgid).map_err(|source| KillError::Pidfd { pid: tgid, source })?;
    if !notify::id_valid(notify_fd, id) {
        return Err(KillError::Gone { pid: tgid });
    }
    pidfd::kill(pidfd.as_fd()).map_err(|source| KillError::Signal { pid: tgid, source })
}
