//! unlink, unlinkat, rmdir: decided on the entry's real path (its parent resolved inside the
//! container), then done by the agent on that same parent and name with the task's credentials,
//! so a path rewritten after the check changes nothing.

use nix::unistd::{UnlinkatFlags, unlinkat};
use rampart_policy::{Access, Operation, WorkloadView};

use crate::container::entry;
use crate::container::task::TaskInfo;
use crate::container::task::exe_path;
use crate::outcome::Answer;
use crate::outcome::{Outcome, Subject, outcome};
use crate::syscall::Call;
use crate::workload::Workload;

const DENY: i32 = libc::EACCES;

pub fn handle<'v>(w: &Workload, view: &'v WorkloadView, pid: u32, call: &Call) -> Outcome<'v> {
    let Call::Remove { dir, path, flags } = call else {
        return Outcome::errno(libc::EPERM);
    };
    if *flags & !(libc::AT_REMOVEDIR as u64) != 0 {
        return Outcome::errno(libc::EINVAL);
    }
    let remove_dir = *flags & libc::AT_REMOVEDIR as u64 != 0;
    let Ok(task) = TaskInfo::read(pid) else {
        return Outcome::errno(libc::EPERM);
    };
    let process = exe_path(pid);
    let (e, creds) = match entry::find(pid, &task, *dir, path) {
        Ok(r) => r,
        Err(errno) => return Outcome::errno(errno),
    };
    let op = Operation::FileAccess {
        path: &e.path,
        access: Access::Delete,
        process: &process,
    };
    let subject = Subject::file(
        if remove_dir { "rmdir" } else { "unlinkat" },
        &process,
        &e.path,
    );
    let result = outcome(view.decide(&op), w, &op, subject, DENY, || {
        let how = if remove_dir {
            UnlinkatFlags::RemoveDir
        } else {
            UnlinkatFlags::NoRemoveDir
        };
        match unlinkat(&e.parent, e.name.as_c_str(), how) {
            Ok(()) => Answer::Done(0),
            Err(errno) => Answer::Errno(errno as i32),
        }
    });
    drop(creds);
    result
}
