//! rampartd's kernel auditor: the eBPF parts that follow the registry rather than a syscall. They
//! live in rampartd because it holds both halves they need: which cgroup is which container
//! (rampart-nri binds each one before its process starts, and re-announces them after a restart)
//! and the policy snapshot (re-applied to every bound container at each reload).
//!
//! - [`ingress`]: ingress rules, enforced by a cgroup_skb program per scoped container;
//! - [`process`]: forks, execs and exits of every scoped container (the ancestry of every alert)
//!   and drift in containers no seccomp filter decides execs for;
//! - [`flows`]: their TCP connections, counted per workload;
//! - [`files`]: files written where no seccomp filter decided the open (integrity rules).
//!
//! What they find becomes the policy crate's alert here and joins the agents' events on their way
//! to journald.

pub mod files;
pub mod flows;
pub mod ingress;
pub mod process;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use rampart_policy::{Snapshot, WorkloadView};
use rampart_protos::agent::{Mechanism, PlanResponse, ProcessRef, SensorCount, WorkloadFlows};
use tokio::sync::mpsc;

use crate::api::{KernelAuditor, ReportedEvent};
use crate::planner::policy_workload;
use crate::registry::{ContainerEntry, Registry};
use files::FileWatch;
use flows::FlowWatch;
use ingress::IngressEnforcer;
use process::ProcessWatch;

/// The cgroup id of a bound container: the binding's, or its directory's inode.
fn cgroup_of(entry: &ContainerEntry) -> Result<u64, String> {
    match entry.cgroup_id {
        0 => std::fs::metadata(&entry.cgroup_path)
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
            .map_err(|e| {
                format!(
                    "its cgroup is not known (a binding without a cgroup id, {:?}: {e})",
                    entry.cgroup_path
                )
            }),
        id => Ok(id),
    }
}

/// What each container's seccomp filter decides, from its plan: where it does, the seccomp agent
/// reports, and the sensors stay quiet.
#[derive(Default)]
struct Plans(Mutex<HashMap<String, Plan>>);

#[derive(Debug, Clone, Copy, Default)]
struct Plan {
    execs: bool,
    opens: bool,
}

/// Plans remembered before the map starts over (containers planned and never bound).
const MAX_PLANS: usize = 65_536;

impl Plans {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Plan>> {
        // Each update is one map operation: a poisoned lock still holds a consistent map.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, container_id: &str, plan: &PlanResponse) {
        let notified = |s: &str| plan.notify_syscalls.iter().any(|n| n == s);
        let decided = Plan {
            execs: plan.protected
                && (notified("execve") || notified("execveat") || plan.exec_by_guard),
            opens: plan.protected && (notified("openat") || notified("openat2")),
        };
        let mut plans = self.lock();
        if plans.len() >= MAX_PLANS {
            plans.clear();
        }
        plans.insert(container_id.to_owned(), decided);
    }

    fn forget(&self, container_id: &str) {
        self.lock().remove(container_id);
    }

    /// No plan (the container ran before rampart-nri) decides nothing.
    fn execs_decided(&self, container_id: &str) -> bool {
        self.lock().get(container_id).is_some_and(|p| p.execs)
    }

    fn opens_decided(&self, container_id: &str) -> bool {
        self.lock().get(container_id).is_some_and(|p| p.opens)
    }
}

/// What the parts and their event readers share.
struct Shared {
    snapshot: RwLock<Arc<Snapshot>>,
    /// Each bound container's view of the snapshot in force, compiled once: the sensors' events
    /// (a write's close, an exec) are decided by it one by one.
    views: Mutex<HashMap<String, Arc<WorkloadView>>>,
    registry: Arc<Registry>,
    events: mpsc::Sender<ReportedEvent>,
}

/// Views kept before the cache starts over (containers bound and not unbound).
const MAX_VIEWS: usize = 16_384;

impl Shared {
    fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn view(&self, entry: &ContainerEntry) -> Arc<WorkloadView> {
        let mut views = self.views.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = views.get(entry.container_id()) {
            return v.clone();
        }
        let view = Arc::new(
            self.snapshot()
                .for_workload(&policy_workload(&entry.workload)),
        );
        if views.len() >= MAX_VIEWS {
            views.clear();
        }
        views.insert(entry.container_id().to_owned(), view.clone());
        view
    }

    fn forget_view(&self, container_id: &str) {
        self.views
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(container_id);
    }

    /// Hands an event to the alert pipeline. Called on a sensor's reader thread: it waits while
    /// the pipeline is full, and the sensor's ring then fills and counts its drops.
    fn report(&self, event: ReportedEvent) {
        let _ = self.events.blocking_send(event);
    }
}

pub struct Auditor {
    shared: Arc<Shared>,
    plans: Arc<Plans>,
    ingress: IngressEnforcer,
    process: ProcessWatch,
    flows: FlowWatch,
    files: FileWatch,
}

impl Auditor {
    /// Loads the parts (a part that fails to load is kept off, and says why in `mechanisms`).
    pub fn start(registry: Arc<Registry>, events: mpsc::Sender<ReportedEvent>) -> Arc<Auditor> {
        let shared = Arc::new(Shared {
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            views: Mutex::new(HashMap::new()),
            registry,
            events,
        });
        let plans = Arc::new(Plans::default());
        let auditor = Arc::new(Auditor {
            ingress: IngressEnforcer::start(shared.clone()),
            process: ProcessWatch::start(shared.clone(), plans.clone()),
            flows: FlowWatch::start(),
            files: FileWatch::start(shared.clone(), plans.clone()),
            plans,
            shared,
        });
        // If rampart-nri never announces (it is not running), events are reported anyway.
        let later = Arc::downgrade(&auditor);
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(30));
            if let Some(a) = later.upgrade() {
                a.ingress.report_events();
            }
        });
        auditor
    }

    /// Makes `snapshot` the rules in force, for every bound container.
    pub fn set_snapshot(&self, snapshot: Arc<Snapshot>) {
        *self
            .shared
            .snapshot
            .write()
            .unwrap_or_else(|e| e.into_inner()) = snapshot;
        self.shared
            .views
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        for entry in self.shared.registry.list() {
            if let Err(e) = self.bound(&entry) {
                tracing::error!(container_id = %entry.container_id(), pod = %entry.workload.pod_name, error = %e, "not enforced in the kernel after the reload");
            }
        }
    }
}

impl KernelAuditor for Auditor {
    fn planned(&self, container_id: &str, plan: &PlanResponse) {
        self.plans.record(container_id, plan);
    }

    fn announced(&self) {
        self.ingress.report_events();
    }

    fn bound(&self, entry: &ContainerEntry) -> Result<(), String> {
        let view = self.shared.view(entry);
        let ingress = self.ingress.bound(entry, &view);
        self.files.bound(entry, &view);
        let watched = if view.policy_names().next().is_none() {
            self.process.unwatch(entry);
            self.flows.unbound(entry);
            Ok(())
        } else {
            cgroup_of(entry).and_then(|cgroup| {
                self.flows.bound(entry, cgroup);
                self.process.bound(entry, &view, cgroup)
            })
        };
        match (watched, ingress) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
            (Err(p), Err(i)) => Err(format!("{p}; {i}")),
        }
    }

    fn unbound(&self, entry: &ContainerEntry) {
        self.plans.forget(entry.container_id());
        self.shared.forget_view(entry.container_id());
        self.ingress.unbound(entry);
        self.process.unbound(entry);
        self.flows.unbound(entry);
        self.files.unbound(entry);
    }

    fn workload(&self, container_id: &str) -> Option<(Option<WorkloadFlows>, u64)> {
        let flows = self.flows.workload(container_id);
        let process = self.process.dropped_for(container_id);
        if flows.is_none() && process.is_none() {
            return None;
        }
        let (flows, flow_drops) = flows.map_or((None, 0), |(f, d)| (Some(f), d));
        Some((flows, flow_drops + process.unwrap_or(0)))
    }

    fn ancestors(&self, pid: u32) -> Vec<ProcessRef> {
        self.process.ancestors(pid)
    }

    fn mechanisms(&self) -> Vec<Mechanism> {
        vec![
            self.process.mechanism(),
            self.flows.mechanism(),
            self.files.mechanism(),
            self.ingress.mechanism(),
        ]
    }

    fn sensors(&self) -> Vec<SensorCount> {
        self.process
            .sensor()
            .into_iter()
            .chain(self.flows.sensor())
            .chain(self.files.sensor())
            .chain(self.ingress.sensor())
            .collect()
    }
}
