//! Hardening syscalls a policy audits instead of denying (`action: alert`): the filter sends
//! them here, the agent reports them and lets them run. Their decision depends only on the
//! syscall's number, never on user memory, so CONTINUE is safe. (Denied ones never get here:
//! the filter refuses them in the kernel.)

use rampart_policy::{EventType, Operation, WorkloadView};

use crate::outcome::{Answer, Outcome, Subject, outcome};
use crate::syscall::HardeningCall;
use crate::task::Task;
use crate::workload::Workload;

pub fn handle<'v>(
    w: &Workload,
    view: &'v WorkloadView,
    task: &Task,
    call: &HardeningCall,
) -> Outcome<'v> {
    let name = call.syscall;
    let op = Operation::Syscall { name };
    let subject = Subject {
        event_type: EventType::Syscall,
        syscall: name,
        process: task.exe().to_owned(),
        path: String::new(),
        remote: String::new(),
    };
    outcome(view.decide(&op), w, &op, subject, libc::EPERM, || {
        Answer::Continue
    })
}
