//! execve, execveat: refused before the exec when policy doesn't allow the executable (resolved
//! inside the container, symlinks followed); allowed ones CONTINUE. A CONTINUE re-reads the path,
//! so a task that rewrites it after the check could exec something else: the exec guard's check
//! of the file actually opened for exec (fanotify FAN_OPEN_EXEC_PERM, `backstop::exec_guard`) is
//! the backstop, told here which inode this thread may exec.
//! `fexecve` of a memfd is drift: a binary that is in no image.

use std::os::fd::AsFd;

use nix::fcntl::OFlag;
use rampart_policy::{Operation, WorkloadView};
use tracing::warn;

use crate::backstop::exec_guard::ExecGuard;
use crate::container::resolve::OpenRequest;
use crate::outcome::{Answer, Outcome, Subject, outcome};
use crate::syscall::{Dir, ExecCall};
use crate::task::Task;
use crate::workload::Workload;

const DENY: i32 = libc::EACCES;

pub fn handle(
    w: &Workload,
    view: &WorkloadView,
    task: &Task,
    call: &ExecCall,
    guard: Option<&ExecGuard>,
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
    let memfd = target.starts_with("/memfd:");
    // A program run from a memfd is in no image: drift, whatever its name.
    let op = if memfd {
        Operation::Drift { path: &target }
    } else {
        Operation::Exec { path: &target }
    };
    let decision = view.decide(&op);
    let subject = Subject::new(syscall, task.exe());
    let result = outcome(decision, w, &op, subject, DENY, || Answer::Continue);
    if let Some(g) = guard {
        if matches!(result.answer, Answer::Continue) {
            // Before the CONTINUE: the kernel's exec open must find the marks and the approval.
            if let Err(e) = g.watch(pid, w) {
                warn!(pid, error = %e, "exec backstop: cannot watch this container's mounts; \
                      its allowed execs rely on the seccomp check alone");
            }
            g.approve(pid, file.as_fd());
        } else {
            g.revoke(pid);
        }
    }
    result
}
