//! The dispatcher (`PolicyHandler`): each notification is decoded once, handed with its `Task` to
//! the handler of its kind, and answered; reportable decisions go to rampartd as events, with the
//! kill responses done here. It holds the compiled policy snapshot and each container's view of
//! it, so policy is evaluated locally: no round trip on the syscall's path.

use std::collections::HashMap;
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};

use rampart_policy::{Access, Operation, Response, Snapshot, Verdict, WorkloadView};
use tracing::{debug, error, warn};

use crate::backstop::egress_guard::EgressGuard;
use crate::backstop::kill_process::{self, KillError};
use crate::container::memory::TaskMemory;
use crate::container::procfs::{TaskError, exe_path};
use crate::guard::ready::ReadyDir;
use crate::guard::runtime::Runtimes;
use crate::guard::{Deferred, FileGuard, GuardJudge, ReadVerdict};
use crate::handlers::{chmod, connect, exec, hardening, new_name, open, remove, truncate};
use crate::holder::client::HolderClient;
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
    /// The file guard (read-only opens, and the backstop for allowed execs), when the agent
    /// could start it.
    file_guard: OnceLock<Arc<FileGuard>>,
    /// The backstop for allowed connects and sends, when the agent could start it.
    egress_guard: OnceLock<EgressGuard>,
}

impl PolicyHandler {
    pub fn new(version: u64, snapshot: Snapshot, reporter: Arc<dyn Reporter>) -> Self {
        Self {
            snapshot: RwLock::new((version, Arc::new(snapshot))),
            views: Mutex::new(HashMap::new()),
            reporter,
            file_guard: OnceLock::new(),
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

    /// Starts the file guard (`guard`) with this handler as its judge, its groups handed to
    /// `holder` so they outlive this agent. Without it, read-only opens of protected containers
    /// can't be allowed (their first exec is refused), and an allowed exec can be raced by a
    /// thread rewriting the path after the check.
    pub fn start_file_guard(
        self: &Arc<Self>,
        holder: Option<Arc<HolderClient>>,
        runtimes: Runtimes,
        ready: Option<ReadyDir>,
    ) -> std::io::Result<Arc<FileGuard>> {
        let judge: Weak<dyn GuardJudge> = Arc::downgrade(self) as Weak<dyn GuardJudge>;
        let guard = FileGuard::start(judge, holder, runtimes, ready)?;
        let _ = self.file_guard.set(guard.clone());
        Ok(guard)
    }

    pub fn file_guard(&self) -> Option<&Arc<FileGuard>> {
        self.file_guard.get()
    }

    /// Swaps in a new snapshot; views are rebuilt lazily on each container's next notification,
    /// and what the file guard remembered is decided again.
    pub fn publish(&self, version: u64, snapshot: Snapshot) {
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = (version, Arc::new(snapshot));
        if let Some(g) = self.file_guard.get() {
            g.invalidate_all(|w| !w.reads_by_seccomp() && self.view(w).guards_reads());
        }
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
            // runc's own setup (see `Phase`) runs as the runtime intended. It ends at the exec of
            // the container's process: the first execve, or, where the filter leaves execve to
            // the file guard, the first call of a task that does not run the runtime's binary.
            let runs_runtime = || self.file_guard.get().is_some_and(|g| g.runs_runtime(n.pid));
            let runtime = !matches!(call, Call::Exec(_)) && (!w.exec_by_guard || runs_runtime());
            if runtime {
                return Answer::Continue;
            }
            *phase = Phase::Workload;
        }
        let view = self.view(w);
        stage_times::mark(Stage::View);
        let task = Task::deciding(n.pid, &view);
        let outcome = match &call {
            Call::Open(c) => open::handle(w, &view, &task, fd, n.id, c),
            Call::Exec(c) => exec::handle(w, &view, &task, c, self.file_guard.get().map(|g| &**g)),
            Call::Connect(c) => connect::handle(w, &view, &task, c, self.egress_guard.get()),
            Call::Remove(c) => remove::handle(w, &view, &task, c),
            Call::NewName(c) => {
                let o = new_name::handle(w, &view, &task, c);
                // A name moved or was added: what the guard remembered by inode may now sit
                // under other rules.
                if matches!(o.answer, Answer::Done(_))
                    && let Some(g) = self.file_guard.get()
                {
                    g.invalidate(&w.container_id);
                }
                o
            }
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

    fn arrived(&self, w: &Workload) {
        let Ok(tid) = u32::try_from(w.pid) else {
            return;
        };
        if !(w.is_init && w.exec_by_guard) {
            return;
        }
        let Some(guard) = self.file_guard.get() else {
            error!(container = %w.container_id, "the plan left this container's execs to the file guard, which is not running: rampart-nri will not see it watched, and follows the failure policy");
            return;
        };
        if !guard.runs_runtime(tid) {
            // Its setup calls could not be told from the workload's: refuse to vouch for it.
            error!(container = %w.container_id, pid = tid, "the container's first task does not run a known runtime binary (a runc that runs a copy of itself? see --runtime); its execs are left unwatched, and rampart-nri follows the failure policy");
            return;
        }
        let view = self.view(w);
        let reads = view.guards_reads() && !w.reads_by_seccomp();
        match guard.prepare(w, tid, reads) {
            Ok(()) => {
                debug!(container = %w.container_id, "file guard: watching before the container starts")
            }
            Err(e) => error!(container = %w.container_id, error = %e,
                "file guard: cannot prepare the container whose execs it decides; rampart-nri will not see it watched, and follows the failure policy"),
        }
    }

    fn ended(&self, w: &Workload) {
        if !w.is_init {
            return;
        }
        // The container's own tasks are gone (a pid namespace dies with its init).
        self.forget(&w.container_id);
        if let Some(g) = self.file_guard.get() {
            g.ended(&w.container_id);
        }
    }
}

/// What the file guard's reports name as the enforcer.
pub const GUARD_ENFORCER: &str = "fanotify";
const GUARD_EXEC_ENFORCER: &str = rampart_protos::agent::EXEC_GUARD_ENFORCER;

impl PolicyHandler {
    /// What the file guard reports about a decision, with the kill-process response carried out
    /// now (before the task is answered: it never runs on past its refused open). The report
    /// itself is sent by the returned closure, once the task is answered.
    fn guard_report(&self, o: Outcome, tid: u32, enforcer: &str) -> Option<Deferred> {
        let Report {
            mut alert,
            response,
        } = o.report?;
        alert.pid = Some(tid);
        alert.enforcer = Some(enforcer.to_owned());
        if response == Some(Response::KillProcess) {
            // The task waits in its open for this answer: its pid can't be reused meanwhile.
            match Task::new(tid).info().map(|i| i.tgid) {
                Ok(tgid) => match crate::sys::pidfd::open(tgid)
                    .and_then(|p| crate::sys::pidfd::kill(std::os::fd::AsFd::as_fd(&p)))
                {
                    Ok(()) => alert.process_killed(),
                    Err(e) => {
                        warn!(tid, error = %e, "kill-process response failed; the open is still refused")
                    }
                },
                Err(e) => {
                    warn!(tid, error = %e, "kill-process response failed; the open is still refused")
                }
            }
        }
        let reporter = self.reporter.clone();
        Some(Box::new(move || reporter.report(to_event(&alert, 0))))
    }
}

/// Opens and execs the file guard decides on the file the kernel is opening.
impl GuardJudge for PolicyHandler {
    fn judge_read(
        &self,
        w: &Workload,
        tid: u32,
        path: &str,
        is_workload_task: &dyn Fn() -> bool,
    ) -> ReadVerdict {
        let view = self.view(w);
        // Read lazily, each at most once: the executable, whether it is the image's, its user.
        let task = Task::deciding(tid, &view);
        let depends = view.read_depends_on_process(path);
        // A rule names this executable, or one limited to users applies to it: only then does it
        // matter whether the file is the image's, and who runs it.
        let needs_subject = depends && view.read_needs_subject(path, task.exe());
        let process = match (depends, needs_subject) {
            (_, true) => task.identity(),
            // The path matches no process-limited rule either way.
            (true, false) => task.exe(),
            (false, _) => "",
        };
        let op = Operation::FileAccess {
            path,
            access: Access::Read,
            process,
        };
        let user = if needs_subject { task.user() } else { None };
        let decision = view.decide_as(&op, user.as_ref());
        if decision.verdict == Verdict::Allow {
            return ReadVerdict::Allow {
                remember: !depends && !view.is_learning(),
                report: None,
            };
        }
        if !is_workload_task() {
            // The host's or the runtime's own access (runc exec looking the user up in the
            // container's /etc/passwd): not the workload's, not policy's to refuse.
            return ReadVerdict::Allow {
                remember: false,
                report: None,
            };
        }
        // Which open syscall it was, the kernel doesn't say (reading /proc/PID/syscall would
        // double the cost of a refusal): "open" stands for all of them.
        let subject = Subject::new("open", task.exe());
        let o = outcome(decision, w, &op, subject, libc::EACCES, || Answer::Continue);
        let allowed = matches!(o.answer, Answer::Continue);
        let report = self.guard_report(o, tid, GUARD_ENFORCER);
        if allowed {
            ReadVerdict::Allow {
                remember: false,
                report,
            }
        } else {
            ReadVerdict::Deny(report)
        }
    }

    fn judge_exec(&self, w: &Workload, tid: u32, path: &str, file: BorrowedFd<'_>) -> bool {
        let view = self.view(w);
        let (decision, op) = exec::decide(&view, path, exec::origin(&view, tid, file, path));
        // The exec's own syscall is gone by now: the kernel is opening the file for it.
        let subject = Subject::new("execve", &exe_path(tid));
        let o = outcome(decision, w, &op, subject, libc::EACCES, || Answer::Continue);
        let allowed = matches!(o.answer, Answer::Continue);
        if let Some(send) = self.guard_report(o, tid, GUARD_EXEC_ENFORCER) {
            send();
        }
        allowed
    }

    fn exec_allowed(&self, w: &Workload, tid: u32, path: &str, file: BorrowedFd<'_>) -> bool {
        let view = self.view(w);
        let origin = exec::origin(&view, tid, file, path);
        !view.is_learning() && exec::decide(&view, path, origin).0.verdict == Verdict::Allow
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
