//! unlink, unlinkat, rmdir: decided on the entry's real path (its parent resolved inside the
//! container), then done by the agent on that same parent and name with the task's credentials,
//! so a path rewritten after the check changes nothing.

use nix::unistd::{UnlinkatFlags, unlinkat};
use rampart_policy::{Access, Operation, WorkloadView};

use crate::outcome::{Answer, Outcome, Subject, outcome};
use crate::syscall::RemoveCall;
use crate::task::Task;
use crate::workload::Workload;

const DENY: i32 = libc::EACCES;

pub fn handle(w: &Workload, view: &WorkloadView, task: &Task, call: &RemoveCall) -> Outcome {
    let RemoveCall {
        syscall,
        dir,
        path,
        flags,
    } = call;
    if *flags & !(libc::AT_REMOVEDIR as u64) != 0 {
        return Outcome::errno(libc::EINVAL);
    }
    let remove_dir = *flags & libc::AT_REMOVEDIR as u64 != 0;
    let (e, creds) = match task.find(*dir, path) {
        Ok(r) => r,
        Err(e) => return Outcome::errno(e.errno()),
    };
    let op = Operation::FileAccess {
        path: &e.path,
        access: Access::Delete,
        process: task.identity(),
    };
    let subject = Subject::new(syscall, task.exe());
    let result = outcome(
        view.decide_as(&op, task.user().as_ref()),
        w,
        &op,
        subject,
        DENY,
        || {
            let how = if remove_dir {
                UnlinkatFlags::RemoveDir
            } else {
                UnlinkatFlags::NoRemoveDir
            };
            match unlinkat(&e.parent, e.name.as_c_str(), how) {
                Ok(()) => Answer::Done(0),
                Err(errno) => Answer::Errno(errno as i32),
            }
        },
    );
    drop(creds);
    result
}
