//! execve, execveat: refused before the exec when policy doesn't allow the executable (resolved
//! inside the container, symlinks followed); allowed ones CONTINUE. A CONTINUE re-reads the path,
//! so a task that rewrites it after the check could exec something else: the kernel auditor's
//! check on the file actually executed (fanotify FAN_OPEN_EXEC_PERM) is the backstop.
//! `fexecve` of a memfd is drift: a binary that is in no image.

use rampart_policy::{EventType, Operation, WorkloadView};

use crate::policy_handler::{Outcome, Subject, outcome, process_path};
use crate::resolve::{self, OpenRequest};
use crate::supervisor::Answer;
use crate::syscall::{Call, Dir};
use crate::task::TaskInfo;
use crate::workload::Workload;

const DENY: i32 = libc::EACCES;

pub fn handle<'v>(w: &Workload, view: &'v WorkloadView, pid: u32, call: &Call) -> Outcome<'v> {
    let Call::Exec { dir, path, flags } = call else {
        return Outcome::errno(libc::EPERM);
    };
    let process = process_path(pid);
    let empty_path = path.is_empty() && *flags & libc::AT_EMPTY_PATH as u64 != 0;
    let target = if empty_path {
        // fexecve(fd): the descriptor is the program.
        let Dir::Fd(n) = dir else {
            return Outcome::errno(libc::EBADF);
        };
        match std::fs::read_link(format!("/proc/{pid}/fd/{n}")) {
            Ok(p) => p.to_string_lossy().into_owned(),
            Err(_) => return Outcome::errno(libc::EBADF),
        }
    } else {
        let Ok(task) = TaskInfo::read(pid) else {
            return Outcome::errno(libc::EPERM);
        };
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
        match resolve::resolve(pid, &task, &req) {
            Ok((object, _creds)) => object.path().to_string_lossy().into_owned(),
            // What the exec would have failed with anyway (ENOENT for a PATH search miss).
            Err(errno) => return Outcome::errno(errno),
        }
    };
    let memfd = target.starts_with("/memfd:");
    let (op, event_type) = if memfd {
        (Operation::Drift { path: &target }, EventType::Drift)
    } else {
        (
            Operation::Exec { path: &target },
            EventType::ProcessExecution,
        )
    };
    let decision = view.decide(&op);
    let subject = Subject {
        event_type,
        syscall: if empty_path || matches!(dir, Dir::Fd(_)) {
            "execveat"
        } else {
            "execve"
        },
        process,
        path: target.clone(),
        remote: String::new(),
    };
    outcome(decision, w, &op, subject, DENY, || Answer::Continue)
}
