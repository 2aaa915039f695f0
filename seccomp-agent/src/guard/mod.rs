//! The file guard: decides opens and execs in protected containers on the file the kernel is
//! opening, with fanotify permission events (FAN_OPEN_PERM, FAN_OPEN_EXEC_PERM) marked on every
//! mount of each container, and remembers allows in the kernel so that a file allowed once is
//! opened at native speed after.
//!
//! - Read-only opens never reach the seccomp filter (it tests the flags): the guard decides
//!   them, for every way of opening (open, openat, io_uring, a path through /proc/self/fd).
//! - Exec opens are decided here on the file itself. Where the plan left execve to the guard
//!   (`exec_by_guard`), nothing else decides them: an allowed exec costs no seccomp round trip,
//!   and the guard starts watching when the container's notify fd arrives (`prepare`), before
//!   rampart-nri lets the container start (`ready`). Otherwise the seccomp check decides first
//!   and the guard checks the opened file against what it allowed (`approvals`): the backstop
//!   that makes a path rewritten after that check gain nothing. Either way the kernel's own
//!   interpreter opens within an exec are told from programs by the opener's kernel stack
//!   (`interpreter`).
//! - An allow is remembered (an ignore mark on the inode, `group`) only when it stands for the
//!   whole container: a rule that does not depend on the process, a file with one name on the
//!   container's own root filesystem, the same policy snapshot. Policy changes, renames and
//!   links done by the agent, and any write to the file drop it.
//! - The groups outlive the agent: the fd holder keeps a copy of each, so a restart leaves
//!   events waiting in the kernel instead of allowing them. Events the dead agent had read but
//!   not answered are refused by the next one (`orphans`).

pub mod approvals;
pub mod elf;
pub mod group;
pub mod interpreter;
pub mod memfd;
pub mod mounts;
pub mod orphans;
pub mod poller;
pub mod ready;
pub mod runtime;

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, Weak};

use nix::errno::Errno;
use nix::sys::fanotify::{FanotifyResponse, MaskFlags, Response};
use nix::sys::stat::fstat;
use tracing::{debug, error, info, warn};

use crate::guard::approvals::{Approvals, Covered};
use crate::guard::group::{FileFacts, Group, GroupMeta};
use crate::guard::poller::{Answerer, Poller};
use crate::guard::ready::ReadyDir;
use crate::guard::runtime::Runtimes;
use crate::holder::client::HolderClient;
use crate::workload::Workload;

/// What the guard asks of policy (the dispatcher answers).
pub trait GuardJudge: Send + Sync + 'static {
    /// A read-only open of `path` by task `tid` of the workload's container. `is_workload_task`
    /// tells whether the task is the workload's own (not the host's or the runtime's): only
    /// those are refused and reported.
    fn judge_read(
        &self,
        w: &Workload,
        tid: u32,
        path: &str,
        is_workload_task: &dyn Fn() -> bool,
    ) -> ReadVerdict;
    /// An exec open no seccomp check covered, of `path` (the file `file`): decided by policy and
    /// reported. True to allow.
    fn judge_exec(&self, w: &Workload, tid: u32, path: &str, file: BorrowedFd<'_>) -> bool;
    /// Whether policy allows an exec of `path` (the file `file`) in the workload, as the current
    /// snapshot says: the condition for remembering it. Reports nothing.
    fn exec_allowed(&self, w: &Workload, tid: u32, path: &str, file: BorrowedFd<'_>) -> bool;
}

pub enum ReadVerdict {
    /// Allowed; `remember`: the decision is the same for every task of the container.
    Allow {
        remember: bool,
        report: Option<Deferred>,
    },
    Deny(Option<Deferred>),
}

/// What the judge left to do once the task is answered (sending its report): the open waits for
/// nothing but the verdict.
pub type Deferred = Box<dyn FnOnce() + Send>;

pub struct FileGuard {
    groups: Mutex<HashMap<String, (Arc<Group>, u64)>>,
    approvals: Approvals,
    poller: Poller,
    holder: Option<Arc<HolderClient>>,
    judge: Weak<dyn GuardJudge>,
    runtimes: Runtimes,
    /// The agent's own pid namespace (the host's).
    own_pid_ns: u64,
    /// Interpreter opens are told by the opener's kernel stack (`interpreter`); without it, by
    /// the window after an allowed exec open (`approvals`), and only static binaries' execs are
    /// remembered.
    kernel_interpreters: bool,
    /// Where rampart-nri learns that a container is watched.
    ready: Option<ReadyDir>,
}

impl FileGuard {
    /// Starts the thread that answers every group. Needs CAP_SYS_ADMIN (fanotify).
    pub fn start(
        judge: Weak<dyn GuardJudge>,
        holder: Option<Arc<HolderClient>>,
        runtimes: Runtimes,
        ready: Option<ReadyDir>,
    ) -> io::Result<Arc<FileGuard>> {
        if runtimes.is_empty() {
            warn!(
                "file guard: no container runtime binary found; runc exec's own setup reads in protected containers are decided by policy"
            );
        }
        // Fail here, not at the first container, when the kernel has no permission events.
        drop(nix::sys::fanotify::Fanotify::init(
            nix::sys::fanotify::InitFlags::FAN_CLASS_CONTENT,
            nix::sys::fanotify::EventFFlags::O_RDONLY,
        )?);
        let guard = Arc::new(FileGuard {
            groups: Mutex::new(HashMap::new()),
            approvals: Approvals::default(),
            poller: Poller::new()?,
            holder,
            judge,
            runtimes,
            own_pid_ns: mounts::ns_inode(std::process::id(), "pid")?,
            kernel_interpreters: interpreter::available(),
            ready,
        });
        if !guard.kernel_interpreters {
            warn!(
                "file guard: this kernel shows no task stacks (/proc/PID/stack); interpreter opens are recognised by timing after an allowed exec, and execs stay on the seccomp path"
            );
        }
        for i in 0..guard.poller.threads() {
            let g = guard.clone();
            std::thread::Builder::new()
                .name(format!("file-guard-{i}"))
                .spawn(move || g.poller.run(i, &*g))?;
        }
        info!("file guard on: fanotify permission events on protected containers' mounts");
        Ok(guard)
    }

    /// Whether this guard can decide execs with no seccomp check (what the agent tells rampartd,
    /// `EXEC_GUARD_ENFORCER`): it tells interpreters by the kernel's stack, memfds can be made
    /// non-executable, rampart-nri can be told when a container is watched, and runc's setup
    /// can be told from the workload by runc's binary.
    pub fn decides_execs(&self) -> Result<(), &'static str> {
        if !self.kernel_interpreters {
            Err("the kernel shows no task stacks (/proc/PID/stack) to tell interpreters by")
        } else if !memfd::available() {
            Err("the kernel has no vm.memfd_noexec (Linux 6.3) to make memfds non-executable")
        } else if self.runtimes.is_empty() {
            Err("no container runtime binary found (see --runtime) to tell runc's setup by")
        } else if self.ready.is_none() {
            Err("--exec-by-seccomp given")
        } else {
            Ok(())
        }
    }

    /// Whether task `tid` runs a container runtime's binary: runc's setup in a container, before
    /// it execs the process.
    pub fn runs_runtime(&self, tid: u32) -> bool {
        self.runtimes.runs(tid)
    }

    /// A container whose execs the guard alone decides (`exec_by_guard`) handed over its notify
    /// fd: its init `tid` is runc's, waiting to exec the container's process. Watches its
    /// mounts, makes its memfds non-executable, then tells rampart-nri it may start.
    pub fn prepare(&self, w: &Workload, tid: u32, reads: bool) -> io::Result<()> {
        self.watch(w, tid, reads)?;
        memfd::forbid_exec(tid).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot make the container's memfds non-executable: {e}"),
            )
        })?;
        match &self.ready {
            Some(r) => r.mark(&w.container_id),
            None => Err(io::Error::other("no directory to tell rampart-nri in")),
        }
    }

    fn groups(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Arc<Group>, u64)>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes sure the container of task `tid` has its group and that the mounts of the task's
    /// mount namespace are marked (once per namespace). `reads`: the group decides read-only
    /// opens too (fixed when the group is created). Called before the task's exec is answered.
    pub fn watch(&self, w: &Workload, tid: u32, reads: bool) -> io::Result<()> {
        let existing = self.groups().get(&w.container_id).map(|(g, _)| g.clone());
        let group = match existing {
            Some(g) => {
                if reads && !g.reads() {
                    g.enable_reads();
                }
                g
            }
            None => self.create(w, tid, reads)?,
        };
        group.mark(tid)
    }

    fn create(&self, w: &Workload, tid: u32, reads: bool) -> io::Result<Arc<Group>> {
        let group = Arc::new(Group::create(w, tid, reads)?);
        // Marked before anyone can see it: the first exec must find the marks.
        group.mark(tid)?;
        if let Some(holder) = &self.holder {
            match holder.hold_group(group.meta(), group.as_fd()) {
                Ok(id) => group.set_held(id),
                Err(e) => warn!(container = %w.container_id, error = %e,
                    "the fd holder did not take this container's file guard group; an agent restart will leave its opens and execs unchecked until the container restarts"),
            }
        }
        let mut groups = self.groups();
        if let Some((g, _)) = groups.get(&w.container_id) {
            // Another thread created one meanwhile: use it, and let this one go.
            let g = g.clone();
            drop(groups);
            self.release(&group);
            return Ok(g);
        }
        let token = match self.poller.add(group.clone()) {
            Ok(t) => t,
            Err(e) => {
                // Unanswered, the holder's copy would hold the container's opens forever.
                drop(groups);
                self.release(&group);
                return Err(e);
            }
        };
        groups.insert(w.container_id.clone(), (group.clone(), token));
        info!(container = %w.container_id, reads, "file guard: watching the container");
        Ok(group)
    }

    /// Takes back a group the holder kept for an earlier agent: its pending events are the
    /// dead agent's unanswered ones first (refused), then new ones (decided).
    pub fn adopt(&self, fd: OwnedFd, meta: GroupMeta, held: u64) {
        let fan = crate::sys::fanotify::adopt(fd);
        orphans::refuse(&fan);
        let container = meta.workload.container_id.clone();
        let group = Arc::new(Group::adopt(fan, meta, held));
        match self.poller.add(group.clone()) {
            Ok(token) => {
                self.groups().insert(container.clone(), (group, token));
                info!(container = %container, held, "file guard: took over the container's group from the holder");
            }
            Err(e) => error!(container = %container, error = %e,
                "file guard: cannot answer a group taken from the holder; its opens wait until an agent can"),
        }
    }

    /// The container ended: its group and the holder's copy go.
    pub fn ended(&self, container_id: &str) {
        if let Some(r) = &self.ready {
            r.clear(container_id);
        }
        let Some((group, token)) = self.groups().remove(container_id) else {
            return;
        };
        self.poller.remove(token);
        self.release(&group);
        debug!(
            container = container_id,
            "file guard: the container ended; group closed"
        );
    }

    fn release(&self, group: &Group) {
        if let (Some(holder), Some(id)) = (&self.holder, group.held())
            && let Err(e) = holder.release(id)
        {
            warn!(held = id, error = %e, "file guard: the holder could not let go of an ended container's group");
        }
    }

    /// Stops answering (the agent is stopping): returns once no event is read and unanswered.
    pub fn stop(&self) {
        self.poller.stop();
    }

    /// How many inodes the container's group remembers an allow for, as the kernel lists its
    /// marks (/proc/self/fdinfo). None: the container is not watched.
    pub fn remembered(&self, container_id: &str) -> Option<io::Result<usize>> {
        let group = self.groups().get(container_id).map(|(g, _)| g.clone())?;
        Some(group.remembered_in_kernel())
    }

    /// The containers it watches.
    pub fn watched(&self) -> Vec<String> {
        self.groups().keys().cloned().collect()
    }

    /// Drops what the container's group remembers (a name in it moved).
    pub fn invalidate(&self, container_id: &str) {
        let group = self.groups().get(container_id).map(|(g, _)| g.clone());
        if let Some(g) = group {
            g.invalidate();
        }
    }

    /// A new policy snapshot: drops what every group remembers, and turns reads on for the
    /// groups whose container's reads `decides_reads` now says are decided.
    pub fn invalidate_all(&self, decides_reads: impl Fn(&Workload) -> bool) {
        let all: Vec<Arc<Group>> = self.groups().values().map(|(g, _)| g.clone()).collect();
        for g in all {
            g.invalidate();
            if !g.reads() && decides_reads(g.workload()) {
                g.enable_reads();
                info!(container = %g.meta().workload.container_id, "file guard: a policy edit made the container's reads decided");
            }
        }
    }

    /// The seccomp check allowed thread `tid` to exec `file`.
    pub fn approve(&self, tid: u32, file: BorrowedFd<'_>) {
        match fstat(file) {
            Ok(st) => self.approvals.approve(tid, (st.st_dev, st.st_ino)),
            // Without the inode the exec open is decided by policy on its path instead.
            Err(_) => self.approvals.revoke(tid),
        }
    }

    /// The seccomp check refused an exec of `tid`.
    pub fn revoke(&self, tid: u32) {
        self.approvals.revoke(tid);
    }

    fn decide_exec(
        &self,
        group: &Group,
        tid: u32,
        file: BorrowedFd<'_>,
        judge: &dyn GuardJudge,
    ) -> bool {
        // The host's own execs of a container's files (an operator's nsenter) are not its.
        if !group.in_container(tid, self.own_pid_ns) {
            return true;
        }
        let st = fstat(file).ok();
        let inode = st.map(|s| (s.st_dev, s.st_ino));
        let generation = group.generation();
        let w = group.workload();
        let path = event_path(file);
        let (allowed, by_policy) = match self.approvals.check(tid, inode) {
            // The seccomp check decided (and reported) this exec.
            Some(Covered::Main) => (true, judge.exec_allowed(w, tid, &path, file)),
            // Never remembered: its exec open alone would let it run as a program.
            Some(Covered::FollowOn) if !self.kernel_interpreters => return true,
            _ if judge.exec_allowed(w, tid, &path, file) => (true, true),
            // Part of an exec already decided on its own file; never remembered, as above.
            _ if self.kernel_interpreters && interpreter::loading_interpreter(tid) => {
                return true;
            }
            // Decided and reported here (an audit rule allows and reports).
            _ => (judge.judge_exec(w, tid, &path, file), false),
        };
        match (allowed, inode) {
            // Its interpreters follow within the window (without the kernel's stack to tell).
            (true, Some(inode)) if !self.kernel_interpreters => {
                self.approvals.allowed_main(tid, inode)
            }
            (true, _) => {}
            (false, _) => self.approvals.revoke(tid),
        }
        if !allowed {
            return false;
        }
        // Remembered when policy allows it for the whole container. Without the kernel's stack,
        // only a static binary: a dynamic one's loader open must be seen to follow it.
        if by_policy
            && st.is_some_and(|st| FileFacts::from(&st).rememberable(group.meta().root_dev))
            && (self.kernel_interpreters || elf::is_static(file))
        {
            group.remember(file, MaskFlags::FAN_OPEN_EXEC_PERM, generation);
        }
        true
    }

    fn decide_read(
        &self,
        group: &Group,
        tid: u32,
        file: BorrowedFd<'_>,
        judge: &dyn GuardJudge,
    ) -> (bool, Option<Deferred>) {
        let generation = group.generation();
        let path = event_path(file);
        let verdict = judge.judge_read(group.workload(), tid, &path, &|| {
            group.is_workload_task(tid, &self.runtimes, self.own_pid_ns)
        });
        match verdict {
            ReadVerdict::Allow { remember, report } => {
                if remember
                    && FileFacts::of(file).is_some_and(|f| f.rememberable(group.meta().root_dev))
                {
                    group.remember(file, MaskFlags::FAN_OPEN_PERM, generation);
                }
                (true, report)
            }
            ReadVerdict::Deny(report) => (false, report),
        }
    }
}

impl Answerer for FileGuard {
    fn answer_all(&self, group: &Group) {
        // A few reads, then back to epoll (level-triggered: a busy group is served again), so
        // that one container's stream of events never holds up the others or a stop.
        for _ in 0..16 {
            let events = match group.fan().read_events() {
                Ok(e) if e.is_empty() => return,
                Ok(e) => e,
                Err(Errno::EAGAIN) => return,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    error!(container = %group.meta().workload.container_id, error = %e,
                        "file guard: reading the group's events failed; they wait for the next read");
                    return;
                }
            };
            let judge = self.judge.upgrade();
            for ev in events {
                let Some(fd) = ev.fd() else {
                    // An overflow: impossible with FAN_UNLIMITED_QUEUE.
                    warn!(container = %group.meta().workload.container_id, "file guard: event queue overflow");
                    continue;
                };
                let tid = u32::try_from(ev.pid()).unwrap_or(0);
                let mask = ev.mask();
                let (allow, then) = match &judge {
                    // The agent is shutting down: refuse, the next agent decides again.
                    None => (false, None),
                    Some(j) if mask.contains(MaskFlags::FAN_OPEN_EXEC_PERM) => {
                        (self.decide_exec(group, tid, fd, &**j), None)
                    }
                    Some(j) if mask.contains(MaskFlags::FAN_OPEN_PERM) => {
                        self.decide_read(group, tid, fd, &**j)
                    }
                    Some(_) => (true, None),
                };
                let response = if allow {
                    Response::FAN_ALLOW
                } else {
                    Response::FAN_DENY
                };
                if let Err(e) = group
                    .fan()
                    .write_response(FanotifyResponse::new(fd, response))
                {
                    warn!(tid, error = %e, "file guard: answering an event failed");
                }
                if let Some(then) = then {
                    then();
                }
            }
        }
    }
}

/// The path of the file an event opened, as the container names it: the event descriptor's
/// magic link resolves against the root of the mount namespace the file was opened in. An
/// unlinked file keeps its last name.
fn event_path(file: BorrowedFd<'_>) -> String {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    match link.strip_suffix(" (deleted)") {
        Some(p) => p.to_owned(),
        None => link,
    }
}
