//! rampartd's kernel auditor: the eBPF parts that follow the registry rather than a syscall. They
//! live in rampartd because it holds both halves they need: which cgroup is which container
//! (rampart-nri binds each one before its process starts, and re-announces them after a restart)
//! and the policy snapshot (re-applied to every bound container at each reload).
//!
//! - [`ingress`]: ingress rules, enforced by a cgroup_skb program per scoped container;
//! - [`process`]: forks, execs and exits of every scoped container (the ancestry of every alert)
//!   and drift in containers no seccomp filter decides execs for;
//! - [`flows`]: their TCP connections, counted per workload.
//!
//! What they find becomes the policy crate's alert here and joins the agents' events on their way
//! to journald.

pub mod flows;
pub mod ingress;
pub mod process;

use std::sync::{Arc, RwLock};

use rampart_policy::{Snapshot, WorkloadView};
use rampart_protos::agent::{Mechanism, ProcessRef, SensorCount, WorkloadFlows};
use tokio::sync::mpsc;

use crate::api::{KernelAuditor, ReportedEvent};
use crate::planner::policy_workload;
use crate::registry::{ContainerEntry, Registry};
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

/// What the parts and their event readers share.
struct Shared {
    snapshot: RwLock<Arc<Snapshot>>,
    registry: Arc<Registry>,
    events: mpsc::Sender<ReportedEvent>,
}

impl Shared {
    fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn view(&self, entry: &ContainerEntry) -> WorkloadView {
        self.snapshot()
            .for_workload(&policy_workload(&entry.workload))
    }

    /// Hands an event to the alert pipeline. Called on a sensor's reader thread: it waits while
    /// the pipeline is full, and the sensor's ring then fills and counts its drops.
    fn report(&self, event: ReportedEvent) {
        let _ = self.events.blocking_send(event);
    }
}

pub struct Auditor {
    shared: Arc<Shared>,
    ingress: IngressEnforcer,
    process: ProcessWatch,
    flows: FlowWatch,
}

impl Auditor {
    /// Loads the parts (a part that fails to load is kept off, and says why in `mechanisms`).
    pub fn start(registry: Arc<Registry>, events: mpsc::Sender<ReportedEvent>) -> Arc<Auditor> {
        let shared = Arc::new(Shared {
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            registry,
            events,
        });
        Arc::new(Auditor {
            ingress: IngressEnforcer::start(shared.clone()),
            process: ProcessWatch::start(shared.clone()),
            flows: FlowWatch::start(),
            shared,
        })
    }

    /// Makes `snapshot` the rules in force, for every bound container.
    pub fn set_snapshot(&self, snapshot: Arc<Snapshot>) {
        *self
            .shared
            .snapshot
            .write()
            .unwrap_or_else(|e| e.into_inner()) = snapshot;
        for entry in self.shared.registry.list() {
            if let Err(e) = self.bound(&entry) {
                tracing::error!(container_id = %entry.container_id(), pod = %entry.workload.pod_name, error = %e, "not enforced in the kernel after the reload");
            }
        }
    }
}

impl KernelAuditor for Auditor {
    fn planned(&self, container_id: &str, execs_decided: bool) {
        self.process.planned(container_id, execs_decided);
    }

    fn bound(&self, entry: &ContainerEntry) -> Result<(), String> {
        let view = self.shared.view(entry);
        let ingress = self.ingress.bound(entry, &view);
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
        self.ingress.unbound(entry);
        self.process.unbound(entry);
        self.flows.unbound(entry);
    }

    fn workload(&self, container_id: &str) -> Option<(WorkloadFlows, u64)> {
        let (flows, flow_drops) = self.flows.workload(container_id)?;
        Some((flows, flow_drops + self.process.dropped_for(container_id)))
    }

    fn ancestors(&self, pid: u32) -> Vec<ProcessRef> {
        self.process.ancestors(pid)
    }

    fn mechanisms(&self) -> Vec<Mechanism> {
        vec![
            self.process.mechanism(),
            self.flows.mechanism(),
            self.ingress.mechanism(),
        ]
    }

    fn sensors(&self) -> Vec<SensorCount> {
        self.process
            .sensor()
            .into_iter()
            .chain(self.flows.sensor())
            .chain(self.ingress.sensor())
            .collect()
    }
}
