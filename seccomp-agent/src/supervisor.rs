//! Answers every notification on one notify fd, on a thread of its own.
//!
//! A thread per fd rather than a task on a shared runtime: one container's slow answer never delays
//! another's, and a thread blocked in RECV is what SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP wakes on the
//! notifying task's CPU. Threads are cheap next to the containers they serve.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use tracing::{debug, error, info_span, warn};

use crate::sys::creds;
use crate::sys::notify::{self, Notification};
use crate::workload::Workload;

/// How a notification is answered.
#[derive(Debug)]
pub enum Answer {
    /// Let the kernel run the syscall. Only for decisions that don't depend on user memory, or
    /// that an in-kernel check backs (see the crate docs).
    Continue,
    /// Fail it with this errno (positive).
    Errno(i32),
    /// The agent did the syscall itself (an emulated open): install this fd and return its number.
    Inject { fd: OwnedFd, cloexec: bool },
    /// Another thread answers it later (an open that waits, such as a FIFO's).
    Deferred,
}

/// Where the tasks of one notify fd are in their life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// runc's init, between installing the filter and exec'ing the container's process: runc
    /// itself (trusted) reads /etc/passwd and /etc/group to set up the user and opens its exec
    /// FIFO. Nothing the workload controls runs yet. Ends at the first execve.
    RuntimeInit,
    /// The workload's own code: every notification is decided by policy.
    Workload,
}

/// Decides notifications. Called on the fd's supervising thread; it must answer quickly and must
/// not panic (a panic is caught and answered with EPERM, never CONTINUE).
pub trait Handler: Send + Sync + 'static {
    fn handle(
        &self,
        workload: &Workload,
        notify_fd: BorrowedFd<'_>,
        phase: &mut Phase,
        n: &Notification,
    ) -> Answer;
}

/// Starts supervising `fd` for `workload`. The thread ends when every task that uses the filter
/// has exited (POLLHUP), closing the fd.
pub fn spawn(
    fd: OwnedFd,
    workload: Arc<Workload>,
    handler: Arc<dyn Handler>,
) -> io::Result<std::thread::JoinHandle<()>> {
    // Best effort: older kernels (< 6.6) lack the flag and still work, only slower.
    if let Err(e) = notify::set_sync_wakeup(fd.as_fd()) {
        debug!(error = %e, "SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP unavailable");
    }
    std::thread::Builder::new()
        .name(format!(
            "notify-{}",
            workload
                .container_id
                .get(..12)
                .unwrap_or(&workload.container_id)
        ))
        .spawn(move || run(fd, &workload, handler.as_ref()))
}

fn run(fd: OwnedFd, workload: &Workload, handler: &dyn Handler) {
    let span = info_span!("notify", pod = %workload.pod_name, namespace = %workload.namespace,
        container = %workload.container_name, pid = workload.pid);
    let _enter = span.enter();
    if let Err(e) = creds::private_fs_context() {
        // Without it, emulated opens would apply the agent's umask: refuse to serve.
        error!(error = %e, "cannot give the supervisor thread its own fs context; closing the notify fd");
        return;
    }
    let mut phase = Phase::RuntimeInit;
    loop {
        match wait(fd.as_fd()) {
            Ok(Ready::Notification) => {}
            Ok(Ready::Hangup) => {
                debug!("every task of the filter exited; closing its notify fd");
                return;
            }
            Err(e) => {
                warn!(error = %e, "polling the notify fd failed; giving it up");
                return;
            }
        }
        let n = match notify::recv(fd.as_fd()) {
            Ok(n) => n,
            // The task left the syscall (fatal signal) between poll and recv.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                warn!(error = %e, "SECCOMP_IOCTL_NOTIF_RECV failed; giving the fd up");
                return;
            }
        };
        let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            handler.handle(workload, fd.as_fd(), &mut phase, &n)
        }))
        .unwrap_or_else(|_| {
            warn!(nr = n.nr, "handler panicked; answering EPERM");
            Answer::Errno(libc::EPERM)
        });
        if let Err(e) = respond(fd.as_fd(), n.id, answer) {
            // ENOENT: the task is gone or the syscall was interrupted; nothing waits for us.
            if e.raw_os_error() != Some(libc::ENOENT) {
                warn!(error = %e, nr = n.nr, "answering a notification failed");
            }
        }
        if creds::thread_poisoned() {
            // Closing the fd makes the container's notified syscalls fail (ENOSYS): fail closed.
            error!(
                "could not restore this thread's credentials after an emulated syscall; closing the notify fd"
            );
            return;
        }
    }
}

enum Ready {
    Notification,
    Hangup,
}

fn wait(fd: BorrowedFd<'_>) -> io::Result<Ready> {
    loop {
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let ev = fds[0].revents().unwrap_or(PollFlags::empty());
        if ev.contains(PollFlags::POLLIN) {
            return Ok(Ready::Notification);
        }
        if ev.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL) {
            return Ok(Ready::Hangup);
        }
    }
}

fn respond(fd: BorrowedFd<'_>, id: u64, answer: Answer) -> io::Result<()> {
    match answer {
        Answer::Continue => notify::respond_continue(fd, id),
        Answer::Errno(errno) => notify::respond_errno(fd, id, errno),
        Answer::Deferred => Ok(()),
        Answer::Inject { fd: src, cloexec } => {
            match notify::addfd_send(fd, id, src.as_fd(), cloexec) {
                Ok(_) => Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Err(e),
                // The task's fd table is full (EMFILE) or similar: the syscall must still get an
                // answer, and the honest one is the error an open would have returned.
                Err(e) => notify::respond_errno(fd, id, e.raw_os_error().unwrap_or(libc::EPERM)),
            }
        }
    }
}
