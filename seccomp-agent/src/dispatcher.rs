//! The dispatcher (`PolicyHandler`): each notification is decoded once, handed with its `Task` to
//! the handler of its kind, and answered; reportable decisions go to rampartd as events, with the
//! kill responses done here. It holds the compiled policy snapshot and each container's view of
//! it, so policy is evaluated locally: no round trip on the syscall's path.

use std::collections::HashMap;
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};

use rampart_policy::{Operation, Response, Snapshot, WorkloadView};
use tracing::{debug, warn};

use crate::backstop::egress_guard::EgressGuard;
use crate::backstop::exec_guard::{ExecGuard, ExecJudge};
use crate::backstop::kill_process::{self, KillError};
use crate::container::memory::TaskMemory;
use crate::container::procfs::{TaskError, exe_path};
use crate::handlers::{chmod, connect, exec, hardening, new_name, open, remove, truncate};
use crate::outcome::{Answer, Outcome, Report, Subject, outcome};
use crate::reporter::Reporter;
use crate::stage_times::{self, Stage};
use crate::supervision::supervisor::{Handler, Phase};
use crate::sys::notify::{self, Notification};
use crate::syscall::{Call, DecodeError, decode};
use crate::task::Task;
use crate::workload::Workload;
use rampart_protos::event::to_event;

/// Containers whose views are kept before the cache starts over.
const MAX_VIEWS: usize = 4096;

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

    /// Starts the egress backstop (`backstop::egress_guard`). Without it, an allowed connect or
    /// send can be raced by a thread rewriting the sockaddr after the check.
    pub fn start_egress_guard(&self) -> std::io::Result<()> {
        let guard = EgressGuard::start()?;
        let _ = self.egress_guard.set(guard);
        Ok(())
    }

    /// Starts the exec backstop (`backstop::exec_guard`) with this handler as its judge. Without
    /// it, an allowed exec can be raced by a thread rewriting the path after the check.
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
            .map_err(DecodeError::from)
            .and_then(|mem| decode(n, &mem));
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
            if !matches!(call, Call::Exec(_)) {
                // runc's own setup (see `Phase`): let it run as the runtime intended.
                return Answer::Continue;
            }
            // This execve starts the workload: it is the first thing policy decides.
            *phase = Phase::Workload;
        }
        let view = self.view(w);
        stage_times::mark(Stage::View);
        let task = Task::new(n.pid);
        let outcome = match &call {
            Call::Open(c) => open::handle(w, &view, &task, fd, n.id, c),
            Call::Exec(c) => exec::handle(w, &view, &task, c, self.exec_guard.get().map(|g| &**g)),
            Call::Connect(c) => connect::handle(w, &view, &task, c, self.egress_guard.get()),
            Call::Remove(c) => remove::handle(w, &view, &task, c),
            Call::NewName(c) => new_name::handle(w, &view, &task, c),
            Call::Chmod(c) => chmod::handle(w, &view, &task, c),
            Call::Truncate(c) => truncate::handle(w, &view, &task, c),
            Call::Hardening(c) => hardening::handle(w, &view, &task, c),
            Call::Other { nr } => {
                // The filter only notifies what this agent handles; anything else is a filter
                // this agent did not write. Refuse rather than guess.
                warn!(
                    nr,
                    "notification for a syscall the agent does not handle; answering EPERM"
                );
                Outcome::errno(libc::EPERM)
            }
        };
        if let Some(Report {
            mut alert,
            response,
        }) = outcome.report
        {
            alert.pid = Some(n.pid);
            // Kill-pod needs nothing here: rampartd stops the pod when it records the alert.
            if response == Some(Response::KillProcess) {
                match kill(&task, fd, n.id) {
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
        // The exec's own syscall is gone by now: the kernel is opening the file for it.
        let subject = Subject::new("execve", &exe_path(tid));
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

#[derive(Debug, thiserror::Error)]
enum KillResponseError {
    #[error("cannot find the task's thread group: {0}")]
    Task(Arc<TaskError>),
    #[error(transparent)]
    Kill(#[from] KillError),
}

/// SIGKILLs the thread group of `task` (notifications name the calling thread).
fn kill(task: &Task, fd: BorrowedFd<'_>, id: u64) -> Result<(), KillResponseError> {
    let tgid = task.info().map_err(KillResponseError::Task)?.tgid;
    Ok(kill_process::kill(fd, id, tgid)?)
}
