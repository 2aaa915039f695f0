//! execve, execveat: refused before the exec when policy doesn't allow the executable (resolved
//! inside the container, symlinks followed); allowed ones CONTINUE. A CONTINUE re-reads the path,
//! so a task that rewrites it after the check could exec something else: the file guard's check
//! of the file actually opened for exec (fanotify FAN_OPEN_EXEC_PERM, `guard`) is the backstop,
//! told here which inode this thread may exec. The first exec of a container is also where the
//! guard starts watching it: before its workload runs, and before the read-only opens the
//! filter no longer notifies.
//! Whether the file is the image's own is decided on the file (`container::origin`): a memfd, a
//! file written after start or one on a volume is drift, and gets no allowance of its path.

use std::os::fd::{AsFd, BorrowedFd};

use nix::fcntl::OFlag;
use rampart_policy::{Decision, Operation, WorkloadView};
use tracing::{error, warn};

use crate::container::origin::Origin;
use crate::container::resolve::OpenRequest;
use crate::guard::FileGuard;
use crate::outcome::{Answer, Outcome, Subject, outcome};
use crate::syscall::{Dir, ExecCall};
use crate::task::Task;
use crate::workload::Workload;

const DENY: i32 = libc::EACCES;

/// Where the file task `tid` execs comes from, if any rule of `view` can tell it from the image's
/// (`Origin::Unchecked` otherwise: nothing to look up).
pub fn origin(view: &WorkloadView, tid: u32, file: BorrowedFd<'_>, path: &str) -> Origin {
    if view.exec_depends_on_origin() {
        Origin::of(tid, file, path)
    } else {
        Origin::Unchecked
    }
}

/// An exec of `path`, a file from `origin`: the allow-list and the exec rules decide, and for a
/// file that is not the image's (written after start, a memfd, on a volume) the drift rule too;
/// the strictest wins. Only the image's file at a path gets the path's allowance.
pub fn decide<'a>(
    view: &'a WorkloadView,
    path: &'a str,
    origin: Origin,
) -> (Decision<'a>, Operation<'a>) {
    let exec = Operation::Exec {
        path,
        in_image: origin.in_image(),
    };
    let by_path = (view.decide(&exec), exec);
    if origin.in_image() {
        return by_path;
    }
    let drift = Operation::Drift { path };
    let by_origin = (view.decide(&drift), drift);
    // Ties go to the drift rule: it says why the file is refused.
    if by_origin.0.verdict >= by_path.0.verdict && !by_origin.0.is_allow() {
        by_origin
    } else {
        by_path
    }
}

pub fn handle(
    w: &Workload,
    view: &WorkloadView,
    task: &Task,
    call: &ExecCall,
    guard: Option<&FileGuard>,
) -> Outcome {
    let ExecCall {
        syscall,
        dir,
        path,
        flags,
    } = call;
    let pid = task.tid();
    let empty_path = path.is_empty() && *flags & libc::AT_EMPTY_PATH as u64 != 0;
    // The file the exec names, held open: its inode is what the backstop lets through.
    let (file, target) = if empty_path {
        // fexecve(fd): the descriptor is the program.
        let Dir::Fd(n) = dir else {
            return Outcome::errno(libc::EBADF);
        };
        let link = format!("/proc/{pid}/fd/{n}");
        let opened = nix::fcntl::open(
            link.as_str(),
            OFlag::O_PATH | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        );
        match (opened, std::fs::read_link(&link)) {
            (Ok(fd), Ok(p)) => (fd, p.to_string_lossy().into_owned()),
            _ => return Outcome::errno(libc::EBADF),
        }
    } else {
        let req = OpenRequest {
            dir: *dir,
            path,
            flags: if *flags & libc::AT_SYMLINK_NOFOLLOW as u64 != 0 {
                libc::O_NOFOLLOW as u64
            } else {
                0
            },
            resolve: 0,
        };
        match task.find_file(&req) {
            Ok((file, _creds)) => (file.fd, file.path),
            // What the exec would have failed with anyway (ENOENT for a PATH search miss).
            Err(e) => return Outcome::errno(e.errno()),
        }
    };
    let (decision, op) = decide(view, &target, origin(view, pid, file.as_fd(), &target));
    let subject = Subject::new(syscall, task.exe());
    let mut result = outcome(decision, w, &op, subject, DENY, || Answer::Continue);
    // Read-only opens are the guard's to decide unless the pod keeps them on the seccomp path.
    let reads = view.guards_reads() && !w.reads_by_seccomp();
    match guard {
        Some(g) if matches!(result.answer, Answer::Continue) => {
            // Before the CONTINUE: the kernel's exec open must find the marks and the approval.
            match g.watch(w, pid, reads) {
                Ok(()) => g.approve(pid, file.as_fd()),
                Err(e) if reads => {
                    error!(pid, error = %e, "file guard: cannot watch this container's mounts; \
                        refusing the exec, since its read-only opens would go unchecked");
                    result.answer = Answer::Errno(libc::EPERM);
                }
                Err(e) => {
                    warn!(pid, error = %e, "file guard: cannot watch this container's mounts; \
                        its allowed execs rely on the seccomp check alone");
                    g.approve(pid, file.as_fd());
                }
            }
        }
        Some(g) => g.revoke(pid),
        None if reads && matches!(result.answer, Answer::Continue) => {
            error!(
                pid,
                "file guard not running: refusing the exec, since this container's \
                read-only opens would go unchecked (see the agent's start-up log)"
            );
            result.answer = Answer::Errno(libc::EPERM);
        }
        None => {}
    }
    result
}
