//! What a handler decided about one notification: the answer the task gets, and what (if
//! anything) is reported about it. Shared by the handlers and the dispatcher, owned by neither.

use std::os::fd::OwnedFd;

use rampart_policy::{Decision, EventType, Operation, Verdict};

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
pub struct Outcome<'v> {
    pub answer: Answer,
    pub report: Option<Report<'v>>,
}

impl Outcome<'_> {
    pub fn errno(errno: i32) -> Self {
        Self {
            answer: Answer::Errno(errno),
            report: None,
        }
    }
}

/// What the decision was about, for the event.
pub struct Subject {
    pub event_type: EventType,
    pub syscall: &'static str,
    pub process: String,
    pub path: String,
    pub remote: String,
}

impl Subject {
    /// A file access by `process` (its executable) to `path`, through `syscall`.
    pub fn file(syscall: &'static str, process: &str, path: &str) -> Self {
        Subject {
            event_type: EventType::FileAccess,
            syscall,
            process: process.to_owned(),
            path: path.to_owned(),
            remote: String::new(),
        }
    }
}

/// A decision to report: the policy's verdict, what it was about, and the message saying why.
pub struct Report<'v> {
    pub decision: Decision<'v>,
    pub subject: Subject,
    pub message: String,
}

/// Block → `errno` and a report; Alert → `allowed()` and a report; Allow → `allowed()`.
pub fn outcome<'v>(
    decision: Decision<'v>,
    w: &Workload,
    op: &Operation<'_>,
    subject: Subject,
    errno: i32,
    allowed: impl FnOnce() -> Answer,
) -> Outcome<'v> {
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
    let message = decision.message(&w.policy_workload(), op);
    Outcome {
        answer,
        report: Some(Report {
            decision,
            subject,
            message,
        }),
    }
}
