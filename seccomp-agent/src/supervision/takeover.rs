//! Restart survival on the agent's side: every notify fd the agent starts supervising is also
//! handed to the fd holder (`holder::server`), and on start the agent takes back everything the
//! holder holds, so containers started under an earlier agent stay supervised.
//!
//! Never closed-to-open: an fd the holder can't take is still supervised (it just won't survive a
//! restart), and an fd the agent gives up to fail closed is released from the holder too.

use std::collections::HashSet;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use oci_spec::runtime::ContainerProcessState;
use tracing::{error, info, info_span, warn};

use crate::guard::FileGuard;
use crate::holder::client::{HolderClient, HolderClientError};
use crate::supervision::shutdown::Stopper;
use crate::supervision::supervised::Supervised;
use crate::supervision::supervisor::{self, Handler, Phase, Supervision, Watcher};
use crate::workload::Workload;

/// Starts supervisor threads, with the holder (if any) kept informed and the stopper tracking them.
pub struct Supervisors {
    handler: Arc<dyn Handler>,
    holder: Option<Arc<HolderClient>>,
    stopper: Arc<Stopper>,
    supervised: Supervised,
    guard: Option<Arc<FileGuard>>,
}

impl Supervisors {
    pub fn new(
        handler: Arc<dyn Handler>,
        holder: Option<Arc<HolderClient>>,
        stopper: Arc<Stopper>,
        supervised: Supervised,
        guard: Option<Arc<FileGuard>>,
    ) -> Self {
        Self {
            handler,
            holder,
            stopper,
            supervised,
            guard,
        }
    }

    /// Supervises a fresh notify fd from runc: a copy goes to the holder first, then a thread
    /// starts answering. Blocks for up to the holder's timeout: call off the async runtime.
    pub fn supervise_new(&self, state: &ContainerProcessState, fd: OwnedFd) {
        let w = Arc::new(Workload::from_state(state));
        let _span = info_span!("container", pod = %w.pod_name, namespace = %w.namespace,
            container = %w.container_name)
        .entered();
        let held = self.holder.as_ref().and_then(|holder| {
            match holder.hold(state, Phase::RuntimeInit, fd.as_fd()) {
                Ok(id) => Some(HeldFd::new(holder.clone(), id)),
                // Unreachable: HolderClient warned once already.
                Err(HolderClientError::Connect { .. }) => None,
                Err(e) => {
                    warn!(error = %e, "the fd holder did not take this notify fd; it is supervised, but will not survive an agent restart");
                    None
                }
            }
        });
        info!(pid = w.pid, id = %w.container_id, held = held.as_ref().map(|h| h.id),
            exec_by_guard = w.exec_by_guard, "supervising a new notify fd");
        self.handler.arrived(&w);
        self.start(fd, w, Phase::RuntimeInit, held);
    }

    /// Takes over every fd the holder holds (on agent start): the file guard groups first (their
    /// pending events wait on them), then the notify fds. Returns how many notify fds are
    /// supervised.
    pub fn take_over(&self) -> Result<usize, HolderClientError> {
        let Some(holder) = &self.holder else {
            return Ok(0);
        };
        let (notify_fds, groups) = holder.list_all()?;
        // A container with no notify fd left has no task under its filter: it ended.
        let running: HashSet<String> = notify_fds
            .iter()
            .map(|t| t.state.state().id().clone())
            .collect();
        for g in groups {
            match &self.guard {
                // Its container ended while no agent ran: nothing is left to guard.
                _ if !running.contains(&g.meta.workload.container_id) => {
                    info!(container = %g.meta.workload.container_id, held = g.id, "file guard group of an ended container; released");
                    if let Err(e) = holder.release(g.id) {
                        warn!(held = g.id, error = %e, "the holder could not let go of it");
                    }
                }
                Some(guard) => guard.adopt(g.fd, g.meta, g.id),
                None => warn!(container = %g.meta.workload.container_id,
                    "the holder keeps a file guard group, but this agent runs without the file guard: its opens and execs wait until an agent with it takes over"),
            }
        }
        let mut seen = HashSet::new();
        let mut count = 0;
        for taken in notify_fds {
            if !seen.insert(taken.id) {
                continue;
            }
            let w = Arc::new(Workload::from_state(&taken.state));
            let _span = info_span!("container", pod = %w.pod_name, namespace = %w.namespace,
                container = %w.container_name)
            .entered();
            info!(pid = w.pid, id = %w.container_id, held = taken.id, phase = ?taken.phase,
                "took over a notify fd from the holder");
            if self.start(
                taken.fd,
                w,
                taken.phase,
                Some(HeldFd::new(holder.clone(), taken.id)),
            ) {
                count += 1;
            }
        }
        Ok(count)
    }

    fn start(&self, fd: OwnedFd, w: Arc<Workload>, phase: Phase, held: Option<HeldFd>) -> bool {
        let mut held = held;
        let supervision = Supervision {
            phase,
            stop: Some(self.stopper.signal()),
            watcher: held
                .as_ref()
                .map(|h| Box::new(h.clone()) as Box<dyn Watcher>),
        };
        self.supervised.add(&w);
        match supervisor::spawn_with(fd, w, self.handler.clone(), supervision) {
            Ok(thread) => {
                self.stopper.track(thread);
                true
            }
            Err(e) => {
                error!(error = %e, "cannot start a supervisor thread; the container's notified syscalls will fail");
                // Our copy is gone with the thread that never ran: the holder's must go too, or
                // those syscalls would wait instead of failing.
                if let Some(h) = held.as_mut() {
                    h.giving_up();
                }
                false
            }
        }
    }
}

/// A supervised fd the holder holds a copy of, as the supervisor's [`Watcher`].
#[derive(Clone)]
struct HeldFd {
    holder: Arc<HolderClient>,
    id: u64,
    released: bool,
}

impl HeldFd {
    fn new(holder: Arc<HolderClient>, id: u64) -> Self {
        Self {
            holder,
            id,
            released: false,
        }
    }

    fn release(&mut self, why: &str) {
        if self.released {
            return;
        }
        match self.holder.release(self.id) {
            Ok(()) => self.released = true,
            Err(e) => error!(held = self.id, error = %e,
                "{why}, and the fd holder could not be told to let go of its copy: until it does (or is stopped), the container's notified syscalls wait instead of failing"),
        }
    }
}

impl Watcher for HeldFd {
    fn phase_changed(&mut self, phase: Phase) {
        if self.released {
            return;
        }
        if let Err(e) = self.holder.set_phase(self.id, phase) {
            // The holder's record would be wrong in the unsafe direction (a later agent would let
            // runc's "init" through unchecked): it must not hand this fd to a later agent.
            error!(held = self.id, error = %e, "the fd holder did not record that the workload started; releasing its copy, so this container will not survive an agent restart");
            self.release("releasing a notify fd whose phase the holder missed");
        }
    }

    fn giving_up(&mut self) {
        self.release("the agent gave up a notify fd to fail closed");
    }
}
