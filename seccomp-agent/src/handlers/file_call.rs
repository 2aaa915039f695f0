//! The shape chmod and truncate share: find the file the task names inside the container,
//! decide one access to it, and when allowed do the call on that same file with the task's
//! credentials still assumed, answering the task with the result.

use rampart_policy::{Access, Operation, WorkloadView};

use crate::container::entry::File;
use crate::container::resolve::OpenRequest;
use crate::outcome::{Answer, Outcome, Subject, outcome};
use crate::task::Task;
use crate::workload::Workload;

/// What one file call is, for the decision and its report.
pub struct FileCall<'a> {
    pub request: OpenRequest<'a>,
    pub access: Access,
    pub syscall: &'static str,
    /// The errno a refusal answers with.
    pub deny: i32,
}

/// Decides `call` for `task`; `act` does the allowed call on the file and says the answer.
pub fn decide_and_do(
    w: &Workload,
    view: &WorkloadView,
    task: &Task,
    call: FileCall<'_>,
    act: impl FnOnce(&File) -> Answer,
) -> Outcome {
    let (file, creds) = match task.find_file(&call.request) {
        Ok(r) => r,
        Err(e) => return Outcome::errno(e.errno()),
    };
    let op = Operation::FileAccess {
        path: &file.path,
        access: call.access,
        process: task.identity(),
    };
    let subject = Subject::new(call.syscall, task.exe());
    let result = outcome(
        view.decide_as(&op, task.user().as_ref()),
        w,
        &op,
        subject,
        call.deny,
        || act(&file),
    );
    drop(creds);
    result
}
