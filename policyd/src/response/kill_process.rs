//! The kill-process response: SIGKILL to one process, and never to another one that happens to
//! have the same pid by the time the decision arrives.
//!
//! A pid alone names whoever holds it now. Between the enforcer seeing the event and rampartd
//! acting, the process may exit and its pid go to an innocent one. So the request carries an
//! identity taken when the decision was made, and the kill goes through a pidfd, which names one
//! process for good:
//!
//! 1. `pidfd_open(pid)`: pins whatever process holds the pid now;
//! 2. re-read its start time from `/proc/<pid>/stat` and compare with the request's;
//! 3. check that the pinned process had not exited by then (so the stat we read was its own and
//!    not a successor's);
//! 4. `pidfd_send_signal(SIGKILL)`: reaches the pinned process or nobody.
//!
//! With a pidfd from the enforcer (the seccomp agent opens one while the notification is still
//! valid) steps 1–3 are already done: it only signals.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::{proc_stat, sys};

/// What to kill: a pid and the identity of the process that held it when the decision was made.
#[derive(Debug)]
pub struct KillProcess {
    /// In rampartd's pid namespace (the node's). May be a thread id: SIGKILL ends the whole
    /// process either way.
    pub pid: u32,
    pub identity: ProcessIdentity,
}

/// How the requester pinned down which process it meant.
#[derive(Debug)]
pub enum ProcessIdentity {
    /// Field 22 of `/proc/<pid>/stat` (clock ticks since boot) as the enforcer read it.
    StartTime(u64),
    /// A pidfd the enforcer opened while it knew the pid still named the process (e.g. checked
    /// with SECCOMP_IOCTL_NOTIF_ID_VALID afterwards). It is the identity: no start time check.
    Pidfd(OwnedFd),
}

impl KillProcess {
    /// Kill `pid` only if it still is the process that started at `start_time` ticks.
    pub fn new(pid: u32, start_time: u64) -> KillProcess {
        KillProcess {
            pid,
            identity: ProcessIdentity::StartTime(start_time),
        }
    }

    /// Kill the process behind `pidfd` (`pid` is for records and the safety checks).
    pub fn with_pidfd(pid: u32, pidfd: OwnedFd) -> KillProcess {
        KillProcess {
            pid,
            identity: ProcessIdentity::Pidfd(pidfd),
        }
    }
}

/// What happened. Only `Killed` means a signal was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KillOutcome {
    /// SIGKILL was delivered to the process the request named.
    Killed,
    /// The process had already exited (zombie or reaped): nothing to do.
    AlreadyGone,
    /// Nothing was sent, on purpose.
    Refused(Refusal),
}

impl fmt::Display for KillOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KillOutcome::Killed => f.write_str("killed"),
            KillOutcome::AlreadyGone => f.write_str("already gone"),
            KillOutcome::Refused(r) => write!(f, "refused: {r}"),
        }
    }
}

/// Why a kill was refused. These are not failures of rampartd: the request must not be obeyed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "pid {pid} now belongs to another process (it started at tick {found}, the request's \
         process at tick {expected}): the target exited and its pid was reused; nothing was \
         killed"
    )]
    PidReused { pid: u32, expected: u64, found: u64 },

    #[error("pid {pid} is not a process id (0 and ids above {max} are never valid targets)", max = i32::MAX)]
    InvalidPid { pid: u32 },

    #[error(
        "pid 1 is the node's init: killing it would take the node down; the request is wrong \
         (was a container-namespace pid sent instead of the node's?)"
    )]
    NodeInit,

    #[error(
        "pid {pid} is rampartd itself (or one of its threads); the request is wrong (check the \
         pid the enforcer reported)"
    )]
    OwnProcess { pid: u32 },
}

/// Failures that left the outcome unknown; the process may still run.
#[derive(Debug, thiserror::Error)]
pub enum KillProcessError {
    #[error(
        "pidfd_open({pid}) failed: {source}{hint}",
        hint = open_hint(.source)
    )]
    Open {
        pid: u32,
        #[source]
        source: io::Error,
    },

    #[error(
        "pid {pid} is a thread, not a process, and this kernel has no thread pidfds \
         (PIDFD_THREAD, Linux 6.9): report the process id (Tgid in /proc/{pid}/status) instead"
    )]
    ThreadUnsupported { pid: u32 },

    #[error(
        "cannot read the start time of pid {pid} from /proc/{pid}/stat: {source} \
         (is /proc mounted from rampartd's pid namespace? rampartd must run with the node's \
         pid namespace); nothing was killed"
    )]
    ReadStartTime {
        pid: u32,
        #[source]
        source: io::Error,
    },

    #[error("cannot tell whether pid {pid} is still alive (poll on its pidfd): {source}")]
    Poll {
        pid: u32,
        #[source]
        source: io::Error,
    },

    #[error(
        "sending SIGKILL to pid {pid} failed: {source}{hint}",
        hint = signal_hint(.source)
    )]
    Signal {
        pid: u32,
        #[source]
        source: io::Error,
    },
}

fn open_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::ENOSYS) => " (pidfds need Linux 5.3 or later)",
        Some(libc::EMFILE) | Some(libc::ENFILE) => {
            " (out of file descriptors: raise rampartd's RLIMIT_NOFILE)"
        }
        _ => "",
    }
}

fn signal_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EPERM) => " (rampartd needs CAP_KILL, i.e. run it as root on the node)",
        Some(libc::ENOSYS) => " (pidfd_send_signal needs Linux 5.1 or later)",
        _ => "",
    }
}

/// Takes a pidfd for `pid` (a process, or a thread on Linux 6.9+), for a requester that wants to
/// pin a process now and decide later. `Ok(None)` when no such pid exists.
pub fn open_pidfd(pid: u32) -> Result<Option<OwnedFd>, KillProcessError> {
    let Ok(raw) = libc::pid_t::try_from(pid) else {
        return Ok(None);
    };
    if raw == 0 {
        return Ok(None);
    }
    match sys::pidfd_open(raw, false) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(None),
        // Not a thread group leader (EINVAL before Linux 6.15 or so, ENOENT after): try it as
        // a thread.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOENT)) => {
            open_thread_pidfd(pid, raw)
        }
        Err(source) => Err(KillProcessError::Open { pid, source }),
    }
}

fn open_thread_pidfd(pid: u32, raw: libc::pid_t) -> Result<Option<OwnedFd>, KillProcessError> {
    match sys::pidfd_open(raw, true) {
        Ok(fd) => Ok(Some(fd)),
        // ENOENT: the pid is still referenced but its task is gone (exited meanwhile).
        Err(e) if matches!(e.raw_os_error(), Some(libc::ESRCH | libc::ENOENT)) => Ok(None),
        // PIDFD_THREAD itself is unknown to this kernel.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            Err(KillProcessError::ThreadUnsupported { pid })
        }
        Err(source) => Err(KillProcessError::Open { pid, source }),
    }
}

/// Sends SIGKILL to the process the request names, if it still runs and still is that process.
///
/// Never blocks (a few syscalls and one /proc read) and never waits for the process to die:
/// SIGKILL cannot be caught, and the parent (the container's runtime) reaps it.
pub fn kill_process(req: &KillProcess) -> Result<KillOutcome, KillProcessError> {
    let span = tracing::info_span!(
        "kill_process",
        pid = req.pid,
        start_time = tracing::field::Empty,
        via_pidfd = matches!(req.identity, ProcessIdentity::Pidfd(_)),
    );
    let _enter = span.enter();
    if let ProcessIdentity::StartTime(t) = req.identity {
        span.record("start_time", t);
    }

    let outcome = kill_checked(req)?;
    match &outcome {
        KillOutcome::Killed => tracing::info!("sent SIGKILL"),
        KillOutcome::AlreadyGone => tracing::info!("process had already exited"),
        KillOutcome::Refused(reason) => tracing::warn!(%reason, "kill refused"),
    }
    Ok(outcome)
}

fn kill_checked(req: &KillProcess) -> Result<KillOutcome, KillProcessError> {
    if let Some(refusal) = never_target(req.pid) {
        return Ok(KillOutcome::Refused(refusal));
    }
    match &req.identity {
        ProcessIdentity::Pidfd(pidfd) => signal_unless_exited(req.pid, pidfd.as_fd()),
        ProcessIdentity::StartTime(expected) => {
            let Some(pidfd) = open_pidfd(req.pid)? else {
                return Ok(KillOutcome::AlreadyGone);
            };
            let found = match proc_stat::start_time(req.pid) {
                Ok(t) => Some(t),
                // Reaped between the open and the read: the poll below says so.
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => None,
                Err(source) => {
                    return Err(KillProcessError::ReadStartTime {
                        pid: req.pid,
                        source,
                    });
                }
            };
            // Only a process that was still alive after the read can own what we read: once it
            // exits and is reaped, the pid (and its /proc entry) may belong to a successor.
            if exited(req.pid, pidfd.as_fd())? {
                return Ok(KillOutcome::AlreadyGone);
            }
            let Some(found) = found else {
                // Alive, yet its /proc entry is missing: /proc is not our pid namespace's.
                return Err(KillProcessError::ReadStartTime {
                    pid: req.pid,
                    source: io::Error::from(io::ErrorKind::NotFound),
                });
            };
            if found != *expected {
                return Ok(KillOutcome::Refused(Refusal::PidReused {
                    pid: req.pid,
                    expected: *expected,
                    found,
                }));
            }
            signal(req.pid, pidfd.as_fd())
        }
    }
}

fn signal_unless_exited(pid: u32, pidfd: BorrowedFd<'_>) -> Result<KillOutcome, KillProcessError> {
    // A zombie still accepts signals without complaint; say what really happened.
    if exited(pid, pidfd)? {
        return Ok(KillOutcome::AlreadyGone);
    }
    signal(pid, pidfd)
}

fn signal(pid: u32, pidfd: BorrowedFd<'_>) -> Result<KillOutcome, KillProcessError> {
    match sys::pidfd_send_signal(pidfd, libc::SIGKILL) {
        Ok(()) => Ok(KillOutcome::Killed),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(KillOutcome::AlreadyGone),
        Err(source) => Err(KillProcessError::Signal { pid, source }),
    }
}

fn exited(pid: u32, pidfd: BorrowedFd<'_>) -> Result<bool, KillProcessError> {
    sys::pidfd_exited(pidfd).map_err(|source| KillProcessError::Poll { pid, source })
}

/// Pids no request may name, whatever its identity says.
fn never_target(pid: u32) -> Option<Refusal> {
    if pid == 0 || i32::try_from(pid).is_err() {
        Some(Refusal::InvalidPid { pid })
    } else if pid == 1 {
        Some(Refusal::NodeInit)
    } else if pid == std::process::id()
        || std::path::Path::new(&format!("/proc/self/task/{pid}")).exists()
    {
        // A thread of ours counts too: SIGKILL to any thread ends the whole process.
        Some(Refusal::OwnProcess { pid })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dangerous_pids_are_refused_before_any_syscall() {
        let me = std::process::id();
        let start = proc_stat::start_time(me).unwrap();
        assert_eq!(
            kill_process(&KillProcess::new(me, start)).unwrap(),
            KillOutcome::Refused(Refusal::OwnProcess { pid: me })
        );
        assert_eq!(
            kill_process(&KillProcess::new(1, 0)).unwrap(),
            KillOutcome::Refused(Refusal::NodeInit)
        );
        for pid in [0, u32::MAX, i32::MAX as u32 + 1] {
            assert_eq!(
                kill_process(&KillProcess::new(pid, 0)).unwrap(),
                KillOutcome::Refused(Refusal::InvalidPid { pid })
            );
        }
    }

    #[test]
    fn refusal_messages_say_nothing_was_killed() {
        let r = Refusal::PidReused {
            pid: 42,
            expected: 100,
            found: 200,
        };
        let text = r.to_string();
        assert!(text.contains("pid 42") && text.contains("reused"), "{text}");
        assert!(text.contains("nothing was killed"), "{text}");
    }
}
