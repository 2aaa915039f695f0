//! The seccomp agent's decisions: each notification is decoded, its object resolved inside the
//! container, checked against the workload's view of the compiled policy snapshot, and answered.
//! Reportable decisions go to rampartd as events. The policy is evaluated here, locally, from the
//! snapshot: no round trip on the syscall's path.

use std::collections::HashMap;
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};

use rampart_policy::{
    Alert, Decision, EventType, Operation, Response, Snapshot, Timestamp, Verdict, WorkloadView,
};
use rampart_protos::agent;
use rampart_protos::event::to_event;
use tracing::{debug, warn};

use crate::egress_guard::EgressGuard;
use crate::exec_guard::{ExecGuard, ExecJudge};
use crate::kill_process;
use crate::memory::TaskMemory;
use crate::stage_times::{self, Stage};
use crate::supervisor::{Answer, Handler, Phase};
use crate::sys::notify::{self, Notification};
use crate::syscall::{Call, decode};
use crate::task::TaskInfo;
use crate::workload::Workload;
use crate::{
    handle_chmod, handle_connect, handle_exec, handle_hardening, handle_new_name, handle_open,
    handle_remove, handle_truncate,
};

/// Containers whose views are kept before the cache starts over.
const MAX_VIEWS: usize = 4096;

/// Where reportable decisions go (rampartd's ReportEvents, batched by the caller). Must not block.
pub trait Reporter: Send + Sync + 'static {
    fn report(&self, event: agent::Event);
}

/// The current snapshot and each container's view of it.
pub struct PolicyHandler {
    snapshot: RwLock<(u64, Arc<Snapshot>)>,
    views: Mutex<HashMap<String, (u64, Arc<WorkloadView>)>>,
    reporter: Arc<dyn Reporter>,
    /// The backstop for allowed execs, when the agent could start it.
    exec_guard: OnceLock<Arc<ExecGuard>>,
    /// The backstop for allowed connects and sends, when the agent could start it.
    egress_guard: OnceLock<EgressGuard>,
}

impl PolicyHandler {
    pub fn new(version: u64, snapshot: Snapshot, reporter: Arc<dyn Reporter>) -> Self {
        Self {
            snapshot: RwLock::new((version, Arc::new(snapshot))),
            views: Mutex::new(HashMap::new()),
            reporter,
            exec_guard: OnceLock::new(),
            egress_guard: OnceLock::new(),
        }
    }

    /// Starts the egress backstop (`egress_guard`). Without it, an allowed connect or send can be
    /// raced by a thread rewriting the sockaddr after the check.
    pub fn start_egress_guard(&self) -> std::io::Result<()> {
        let guard = EgressGuard::start()?;
        let _ = self.egress_guard.set(guard);
        Ok(())
    }

    /// Starts the exec backstop (`exec_guard`) with this handler as its judge. Without it, an
    /// allowed exec can be raced by a thread rewriting the path after the check.
    pub fn start_exec_guard(self: &Arc<Self>) -> std::io::Result<()> {
        let judge: Weak<dyn ExecJudge> = Arc::downgrade(self) as Weak<dyn ExecJudge>;
        let guard = ExecGuard::start(judge)?;
        let _ = self.exec_guard.set(guard);
        Ok(())
    }

    /// Swaps in a new snapshot; views are rebuilt lazily on each container's next notification.
    pub fn publish(&self, version: u64, snapshot: Snapshot) {
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = (version, Arc::new(snapshot));
    }

    pub fn version(&self) -> u64 {
        self.snapshot.read().unwrap_or_else(|e| e.into_inner()).0
    }

    /// Forgets a container's view (its processes are gone).
    pub fn forget(&self, container_id: &str) {
        self.views
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(container_id);
    }

    fn view(&self, w: &Workload) -> Arc<WorkloadView> {
        let (version, snapshot) = {
            let s = self.snapshot.read().unwrap_or_else(|e| e.into_inner());
            (s.0, s.1.clone())
        };
        let mut views = self.views.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((v, view)) = views.get(&w.container_id)
            && *v == version
        {
            return view.clone();
        }
        let view = Arc::new(snapshot.for_workload(&w.policy_workload()));
        if views.len() >= MAX_VIEWS {
            // Containers come and go and nothing tells this map when one is gone for good;
            // views are rebuilt on demand, so dropping them all is only a little slower.
            views.clear();
        }
        views.insert(w.container_id.clone(), (version, view.clone()));
        view
    }
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

/// A decision to report: the alert as the policy crate maps it, and the response to carry out.
pub struct Report {
    pub alert: Alert,
    pub response: Option<Response>,
}

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

/// What decides notified syscalls, as alerts name it.
const ENFORCER: &str = "seccomp-notify";

impl Handler for PolicyHandler {
    fn handle(
        &self,
        w: &Workload,
        fd: BorrowedFd<'_>,
        phase: &mut Phase,
        n: &Notification,
    ) -> Answer {
        // Read the arguments once, then make sure they belonged to this notification's task.
        let call = TaskMemory::open(n.pid)
            .map_err(|e| e.to_string())
            .and_then(|mem| decode(n, &mem).map_err(|e| e.to_string()));
        if !notify::id_valid(fd, n.id) {
            return Answer::Errno(libc::EPERM);
        }
        let call = match call {
            Ok(c) => c,
            Err(e) => {
                // Unreadable arguments are never allowed: the kernel would read what we couldn't.
                debug!(pid = n.pid, nr = n.nr, error = %e, "cannot read the syscall's arguments");
                return Answer::Errno(libc::EPERM);
            }
        };
        stage_times::mark(Stage::Args);
        if *phase == Phase::RuntimeInit {
            if !matches!(call, Call::Exec { .. }) {
                // runc's own setup (see `Phase`): let it run as the runtime intended.
                return Answer::Continue;
            }
            // This execve starts the workload: it is the first thing policy decides.
            *phase = Phase::Workload;
        }
        let view = self.view(w);
        stage_times::mark(Stage::View);
        let outcome = match &call {
            Call::Open { .. } => handle_open::handle(w, &view, fd, n, &call),
            Call::Exec { .. } => {
                handle_exec::handle(w, &view, n.pid, &call, self.exec_guard.get().map(|g| &**g))
            }
            Call::Connect { .. } => {
                handle_connect::handle(w, &view, n.pid, &call, self.egress_guard.get())
            }
            Call::Remove { .. } => handle_remove::handle(w, &view, n.pid, &call),
            Call::NewName { .. } => handle_new_name::handle(w, &view, n.pid, &call),
            Call::Chmod { .. } => handle_chmod::handle(w, &view, n.pid, &call),
            Call::Truncate { .. } => handle_truncate::handle(w, &view, n.pid, &call),
            Call::Other { nr } => match handle_hardening::name_of(*nr) {
                Some(name) => handle_hardening::handle(w, &view, n.pid, name),
                None => {
                    // The filter only notifies what this agent handles; anything else is a
                    // filter this agent did not write. Refuse rather than guess.
                    warn!(
                        nr,
                        "notification for a syscall the agent does not handle; answering EPERM"
                    );
                    Outcome {
                        answer: Answer::Errno(libc::EPERM),
                        report: None,
                    }
                }
            },
        };
        if let Some(Report {
            mut alert,
            response,
        }) = outcome.report
        {
            alert.pid = Some(n.pid);
            if response == Some(Response::KillProcess) {
                match kill_tgid(n.pid)
                    .and_then(|tgid| kill_process::kill(fd, n.id, tgid).map_err(|e| e.to_string()))
                {
                    Ok(()) => alert.process_killed(),
                    Err(e) => {
                        warn!(pid = n.pid, error = %e, "kill-process response failed; the call is still denied")
                    }
                }
            }
            self.reporter.report(to_event(&alert, 0));
            stage_times::mark(Stage::Report);
        }
        outcome.answer
    }
}

/// Execs the backstop caught that no seccomp check allowed (a path rewritten after the check):
/// decided by policy on the file actually opened for exec.
impl ExecJudge for PolicyHandler {
    fn judge_exec(&self, w: &Workload, tid: u32, path: &str) -> bool {
        let view = self.view(w);
        let op = Operation::Exec { path };
        let subject = Subject {
            event_type: EventType::ProcessExecution,
            syscall: "execve",
            process: process_path(tid),
            path: path.to_owned(),
            remote: String::new(),
        };
        let o = outcome(view.decide(&op), w, &op, subject, libc::EACCES, || {
            Answer::Continue
        });
        let allowed = matches!(o.answer, Answer::Continue);
        if let Some(Report { mut alert, .. }) = o.report {
            alert.pid = Some(tid);
            alert.enforcer = Some("fanotify-exec".to_owned());
            self.reporter.report(to_event(&alert, 0));
        }
        allowed
    }
}

/// The thread group of task `tid` (notifications name the calling thread).
fn kill_tgid(tid: u32) -> Result<u32, String> {
    TaskInfo::read(tid)
        .map(|t| t.tgid)
        .map_err(|e| e.to_string())
}

/// The executable of task `pid`, as the container names it ("" if unknown).
pub fn process_path(pid: u32) -> String {
    crate::task::exe_path(pid)
}
