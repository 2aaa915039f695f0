//! Hardening syscalls a policy audits instead of denying (`action: alert`): the filter sends
//! them here, the agent reports them and lets them run. Their decision depends only on the
//! syscall's number, never on user memory, so CONTINUE is safe. (Denied ones never get here:
//! the filter refuses them in the kernel.)

use rampart_policy::{Operation, WorkloadView};

use crate::outcome::{Answer, Outcome, Subject, outcome};
use crate::syscall::HardeningCall;
use crate::task::Task;
use crate::workload::Workload;

pub fn handle(w: &Workload, view: &WorkloadView, task: &Task, call: &HardeningCall) -> Outcome {
    let name = call.syscall;
    let op = Operation::Syscall { name };
    let subject = Subject::new(name, task.exe());
    outcome(view.decide(&op), w, &op, subject, libc::EPERM, || {
        Answer::Continue
    })
}
