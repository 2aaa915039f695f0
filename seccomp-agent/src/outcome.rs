//! What a handler decided about one notification: the answer the task gets, and what (if
//! anything) is reported about it. Shared by the handlers and the dispatcher, owned by neither.

use std::os::fd::OwnedFd;

use rampart_policy::{Alert, Decision, Operation, Response, Timestamp, Verdict};

use crate::workload::Workload;

/// How a notification is answered.
#[derive(Debug)]
pub enum Answer {
    /// Let the kernel run the syscall. Only for decisions that don't depend on user memory, or
    /// that an in-kernel check backs (see the crate docs).
    Continue,
    /// Fail it with this errno (positive).
    Errno(i32),
    /// The agent did the syscall itself (an emulated open): install this fd and return its number.
    Inject { fd: OwnedFd, cloexec: bool },
    /// The agent did the syscall itself (an emulated unlink, rename, link, chmod, truncate): return
    /// this value to the task without running it.
    Done(i64),
    /// Another thread answers it later (an open that waits, such as a FIFO's).
    Deferred,
}

/// What a handler decided, with what to report.
pub struct Outcome {
    pub answer: Answer,
    pub report: Option<Report>,
}

impl Outcome {
    pub fn errno(errno: i32) -> Self {
        Self {
            answer: Answer::Errno(errno),
            report: None,
        }
    }
}

/// What the agent knows of a decision beside the operation: the syscall the task made and the
/// executable of the task that made it. The rest of the alert is the policy crate's mapping.
pub struct Subject {
    pub syscall: &'static str,
    pub process: String,
}

impl Subject {
    pub fn new(syscall: &'static str, process: &str) -> Self {
        Subject {
            syscall,
            process: process.to_owned(),
        }
    }
}

/// A decision to report: the alert as the policy crate maps it (event type, action, severity,
/// message), and the response the dispatcher carries out.
pub struct Report {
    pub alert: Alert,
    pub response: Option<Response>,
}

/// What decides notified syscalls, as alerts name it.
pub const ENFORCER: &str = "seccomp-notify";

/// Block → `errno` and a report; Alert → `allowed()` and a report; Allow → `allowed()`.
pub fn outcome(
    decision: Decision<'_>,
    w: &Workload,
    op: &Operation<'_>,
    subject: Subject,
    errno: i32,
    allowed: impl FnOnce() -> Answer,
) -> Outcome {
    let answer = match decision.verdict {
        Verdict::Allow => {
            return Outcome {
                answer: allowed(),
                report: None,
            };
        }
        Verdict::Alert => allowed(),
        Verdict::Block => Answer::Errno(errno),
    };
    Outcome {
        answer,
        report: report(&decision, w, op, subject),
    }
}

/// The alert for a reportable decision, with what the agent knows beside it.
fn report(
    decision: &Decision<'_>,
    w: &Workload,
    op: &Operation<'_>,
    subject: Subject,
) -> Option<Report> {
    let mut alert = Alert::from_decision(decision, &w.policy_workload(), op, Timestamp::now())?;
    alert.syscall = Some(subject.syscall.to_owned());
    // An exec's operation names the program; the process is the one that asked for it.
    if alert.process_path.is_none() && !subject.process.is_empty() {
        alert.process_path = Some(subject.process);
    }
    alert.container_id = Some(w.container_id.clone());
    alert.enforcer = Some(ENFORCER.to_owned());
    Some(Report {
        alert,
        response: decision.response(),
    })
}
