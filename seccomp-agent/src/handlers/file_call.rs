//! The shape chmod and truncate share: find the file the task names inside the container,
//! decide one access to it, and when allowed do the call on that same file with the task's
//! credentials still assumed, answering the task with the result.

use rampart_policy::{Access, Operation, WorkloadView};

use crate::container::entry::{self, File};
use crate::container::resolve::OpenRequest;
use crate::container::task::TaskInfo;
use crate::container::task::exe_path;
use crate::outcome::Answer;
use crate::outcome::{Outcome, Subject, outcome};
use crate::workload::Workload;

/// What one file call is, for the decision and its report.
pub struct FileCall<'a> {
    pub request: OpenRequest<'a>,
    pub access: Access,
    pub syscall: &'static str,
    /// The errno a refusal answers with.
    pub deny: i32,
}

/// Decides `call` for task `pid`; `act` does the allowed call on the file and says the answer.
pub fn decide_and_do<'v>(
    w: &Workload,
    view: &'v WorkloadView,
    pid: u32,
    call: FileCall<'_>,
    act: impl FnOnce(&File) -> Answer,
) -> Outcome<'v> {
    let Ok(task) = TaskInfo::read(pid) else {
        return Outcome::errno(libc::EPERM);
    };
    let process = exe_path(pid);
    let (file, creds) = match entry::find_file(pid, &task, &call.request) {
        Ok(r) => r,
        Err(errno) => return Outcome::errno(errno),
    };
    let op = Operation::FileAccess {
        path: &file.path,
        access: call.access,
        process: &process,
    };
    let subject = Subject::file(call.syscall, &process, &file.path);
    let result = outcome(view.decide(&op), w, &op, subject, call.deny, || act(&file));
    drop(creds);
    result
}
