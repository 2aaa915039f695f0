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

use crate::outcome::Answer;
use crate::supervision::shutdown::StopSignal;
use crate::sys::creds;
use crate::sys::notify::{self, Notification};
use crate::workload::Workload;

pub use crate::phase::Phase;

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

    /// A fresh fd from runc, before it is supervised: its first task is runc's, still to exec
    /// the process.
    fn arrived(&self, _workload: &Workload) {}

    /// Every task of the fd's filter exited.
    fn ended(&self, _workload: &Workload) {}
}

/// Who else must hear of one fd's life: the fd holder, which keeps a copy of the fd so that it
/// outlives an agent restart (see `supervision::takeover`).
pub trait Watcher: Send + 'static {
    /// The handler moved the fd to `phase`. Called before the notification that moved it is
    /// answered, so no workload code runs before the watcher knows.
    fn phase_changed(&mut self, phase: Phase);
    /// The supervisor closes the fd on purpose, to fail the container's notified syscalls closed
    /// (ENOSYS): every other copy must be closed too, or those syscalls would wait instead.
    fn giving_up(&mut self);
}

/// How one fd is supervised, beyond its handler.
pub struct Supervision {
    /// Where the fd's tasks are: `RuntimeInit` for a fresh fd from runc; what the holder recorded
    /// for an fd taken over from an earlier agent.
    pub phase: Phase,
    /// When it fires, the thread answers the notification it is handling, takes no new one and
    /// ends, leaving pending notifications queued in the kernel for the next agent.
    pub stop: Option<StopSignal>,
    pub watcher: Option<Box<dyn Watcher>>,
}

impl Default for Supervision {
    fn default() -> Self {
        Self {
            phase: Phase::RuntimeInit,
            stop: None,
            watcher: None,
        }
    }
}

/// Starts supervising `fd` for `workload`. The thread ends when every task that uses the filter
/// has exited (POLLHUP), closing the fd.
pub fn spawn(
    fd: OwnedFd,
    workload: Arc<Workload>,
    handler: Arc<dyn Handler>,
) -> io::Result<std::thread::JoinHandle<()>> {
    spawn_with(fd, workload, handler, Supervision::default())
}

/// [`spawn`], with a starting phase, a stop signal and a watcher.
pub fn spawn_with(
    fd: OwnedFd,
    workload: Arc<Workload>,
    handler: Arc<dyn Handler>,
    supervision: Supervision,
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
        .spawn(move || run(fd, &workload, handler.as_ref(), supervision))
}

fn run(fd: OwnedFd, workload: &Workload, handler: &dyn Handler, supervision: Supervision) {
    let span = info_span!("notify", pod = %workload.pod_name, namespace = %workload.namespace,
        container = %workload.container_name, pid = workload.pid);
    let _enter = span.enter();
    let Supervision {
        mut phase,
        stop,
        mut watcher,
    } = supervision;
    let give_up = |watcher: &mut Option<Box<dyn Watcher>>, why: &str| {
        error!("{why}; closing the notify fd (the container's notified syscalls fail)");
        if let Some(w) = watcher.as_mut() {
            w.giving_up();
        }
    };
    if let Err(e) = creds::private_fs_context() {
        // Without it, emulated opens would apply the agent's umask: refuse to serve.
        give_up(
            &mut watcher,
            &format!("cannot give the supervisor thread its own fs context: {e}"),
        );
        return;
    }
    loop {
        match wait(fd.as_fd(), stop.as_ref().map(|s| s.as_fd())) {
            Ok(Ready::Notification) => {}
            Ok(Ready::Hangup) => {
                debug!("every task of the filter exited; closing its notify fd");
                handler.ended(workload);
                return;
            }
            Ok(Ready::Stop) => {
                debug!(
                    "agent stopping; leaving the notify fd's pending notifications to the next agent"
                );
                return;
            }
            Err(e) => {
                give_up(&mut watcher, &format!("polling the notify fd failed: {e}"));
                return;
            }
        }
        let n = match notify::recv(fd.as_fd()) {
            Ok(n) => n,
            // The task left the syscall (fatal signal) between poll and recv.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                give_up(
                    &mut watcher,
                    &format!("SECCOMP_IOCTL_NOTIF_RECV failed: {e}"),
                );
                return;
            }
        };
        let before = phase;
        let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            handler.handle(workload, fd.as_fd(), &mut phase, &n)
        }))
        .unwrap_or_else(|_| {
            warn!(nr = n.nr, "handler panicked; answering EPERM");
            Answer::Errno(libc::EPERM)
        });
        if phase != before
            && let Some(w) = watcher.as_mut()
        {
            w.phase_changed(phase);
        }
        if let Err(e) = respond(fd.as_fd(), n.id, answer) {
            // ENOENT: the task is gone or the syscall was interrupted; nothing waits for us.
            if e.raw_os_error() != Some(libc::ENOENT) {
                warn!(error = %e, nr = n.nr, "answering a notification failed");
            }
        }
        if creds::thread_poisoned() {
            // Closing the fd makes the container's notified syscalls fail (ENOSYS): fail closed.
            give_up(
                &mut watcher,
                "could not restore this thread's credentials after an emulated syscall",
            );
            return;
        }
    }
}

enum Ready {
    Notification,
    Hangup,
    Stop,
}

fn wait(fd: BorrowedFd<'_>, stop: Option<BorrowedFd<'_>>) -> io::Result<Ready> {
    loop {
        let mut fds = [
            PollFd::new(fd, PollFlags::POLLIN),
            PollFd::new(stop.unwrap_or(fd), PollFlags::POLLIN),
        ];
        let polled = if stop.is_some() { 2 } else { 1 };
        match poll(&mut fds[..polled], PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        // Stopping wins over a pending notification: it stays queued for the next agent.
        if stop.is_some() && !fds[1].revents().unwrap_or(PollFlags::empty()).is_empty() {
            return Ok(Ready::Stop);
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
        Answer::Done(val) => notify::respond_value(fd, id, val),
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
