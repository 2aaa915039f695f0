//! Ingress rules, enforced: rampart-audit's [`IngressGuard`] (a cgroup_skb/ingress program) on
//! the cgroup of every bound container an ingress rule scopes, with the table the policy crate
//! compiles from the snapshot in force. rampartd does it itself because it holds both halves: the
//! registry (which cgroup is which container, from before the container's process starts) and the
//! snapshot (re-applied to every bound container at each reload).
//!
//! What the program refuses or reports becomes the policy crate's alert here: the event's peer,
//! port and protocol decided again by the same view (the table is that decision written out), so
//! the record names the rule, and it joins the agents' events on their way to journald.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use rampart_audit::{IngressEvent, IngressGuard};
use rampart_policy::{Alert, AlertAction, Direction, Operation, Snapshot, Timestamp, Verdict};
use rampart_protos::agent::{Mechanism, SensorCount};
use rampart_protos::event::to_event;
use tokio::sync::mpsc;

use crate::api::{KernelEnforcer, ReportedEvent};
use crate::planner::policy_workload;
use crate::registry::{ContainerEntry, Registry};

/// The mechanism's name in `rampartctl status` and the alerts' `enforcer`.
pub const MECHANISM: &str = "cgroup-ingress";

pub struct IngressEnforcer {
    guard: Result<Arc<IngressGuard>, String>,
    shared: Arc<Shared>,
    /// Bound containers whose cgroup is guarded: container id → cgroup id.
    guarded: Mutex<HashMap<String, u64>>,
}

/// What the event reader needs too.
struct Shared {
    snapshot: RwLock<Arc<Snapshot>>,
    registry: Arc<Registry>,
    /// Refusals whose container or rule could not be named (it went away, or a reload changed
    /// the rules in between): counted, and logged.
    unattributed: std::sync::atomic::AtomicU64,
}

impl IngressEnforcer {
    /// Loads the guard (a failure is kept, and said by `bound` and `mechanisms`) and starts the
    /// thread that turns its events into reported events on `events`.
    pub fn start(registry: Arc<Registry>, events: mpsc::Sender<ReportedEvent>) -> Arc<Self> {
        let shared = Arc::new(Shared {
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            registry,
            unattributed: Default::default(),
        });
        let reader = shared.clone();
        let guard = IngressGuard::start(move |e| {
            if let Some(reported) = reader.report(&e) {
                // Waits while the pipeline is full: the ring then fills and counts its drops.
                let _ = events.blocking_send(reported);
            }
        })
        .map_err(|e| e.to_string());
        match &guard {
            Ok(_) => tracing::info!(
                "ingress guard on: cgroup_skb programs on containers with ingress rules"
            ),
            Err(e) => tracing::error!(error = %e, "ingress rules cannot be enforced on this node"),
        }
        Arc::new(IngressEnforcer {
            guard,
            shared,
            guarded: Mutex::new(HashMap::new()),
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
                tracing::error!(container_id = %entry.container_id(), pod = %entry.workload.pod_name, error = %e, "ingress rules not enforced after the reload");
            }
        }
    }

    fn lock_guarded(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        // Each update is one map operation: a poisoned lock still holds a consistent map.
        self.guarded.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl KernelEnforcer for IngressEnforcer {
    fn bound(&self, entry: &ContainerEntry) -> Result<(), String> {
        let table = self
            .shared
            .snapshot()
            .for_workload(&policy_workload(&entry.workload))
            .ingress_table();
        let id = entry.container_id().to_owned();
        if table.is_empty() {
            if let (Some(cgroup), Ok(guard)) = (self.lock_guarded().remove(&id), &self.guard) {
                guard.release(cgroup);
            }
            return Ok(());
        }
        let guard = self.guard.as_ref().map_err(|why| {
            format!("its ingress rules need the ingress guard, which is off: {why}")
        })?;
        if entry.cgroup_path.is_empty() {
            return Err(
                "its ingress rules need its cgroup, which its binding does not name (an older \
                 rampart-nri?)"
                    .into(),
            );
        }
        let cgroup = guard
            .guard(Path::new(&entry.cgroup_path), &table)
            .map_err(|e| e.to_string())?;
        tracing::info!(
            container_id = %id,
            pod = %entry.workload.pod_name,
            cgroup_id = cgroup,
            cells = table.v4.len() + table.v6.len(),
            "ingress rules enforced"
        );
        self.lock_guarded().insert(id, cgroup);
        Ok(())
    }

    fn unbound(&self, entry: &ContainerEntry) {
        if let (Some(cgroup), Ok(guard)) = (
            self.lock_guarded().remove(entry.container_id()),
            &self.guard,
        ) {
            guard.release(cgroup);
        }
    }

    fn mechanisms(&self) -> Vec<Mechanism> {
        let guarded = self.lock_guarded().len();
        let unattributed = self
            .shared
            .unattributed
            .load(std::sync::atomic::Ordering::Relaxed);
        let unnamed = if unattributed > 0 {
            format!("; {unattributed} decisions could not be reported (see rampartd's log)")
        } else {
            String::new()
        };
        vec![Mechanism {
            name: MECHANISM.to_owned(),
            in_use: self.guard.is_ok(),
            detail: match &self.guard {
                Ok(_) => format!(
                    "ingress rules: TCP connections as they open, UDP datagrams, raw and ICMP \
                     echo packets, refused in the kernel by peer, local port and protocol \
                     (cgroup_skb); {guarded} containers guarded{unnamed}"
                ),
                Err(why) => why.clone(),
            },
        }]
    }

    fn sensors(&self) -> Vec<SensorCount> {
        let Ok(guard) = &self.guard else {
            return Vec::new();
        };
        let c = guard.counts();
        vec![SensorCount {
            name: MECHANISM.to_owned(),
            written: c.written,
            dropped: c.dropped,
        }]
    }
}

impl Shared {
    fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The alert for a kernel event, as the agents report theirs.
    fn report(&self, e: &IngressEvent) -> Option<ReportedEvent> {
        let unattributed = |why: &str| {
            self.unattributed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(cgroup_id = e.cgroup_id, peer = %e.peer, port = e.port, verdict = ?e.verdict, "an ingress decision could not be reported: {why}");
            None
        };
        let Some(entry) = self.registry.resolve("", e.cgroup_id) else {
            return unattributed("its container is no longer bound");
        };
        let workload = policy_workload(&entry.workload);
        let snapshot = self.snapshot();
        let view = snapshot.for_workload(&workload);
        let op = Operation::Connect {
            direction: Direction::Ingress,
            address: e.peer,
            port: e.port,
            protocol: e.protocol,
            process: "",
        };
        let decision = view.decide(&op);
        let Some(mut alert) = Alert::from_decision(&decision, &workload, &op, Timestamp::now())
        else {
            return unattributed("the rules in force now allow it (a reload in between)");
        };
        // The kernel's verdict is what happened.
        if e.verdict == Verdict::Alert {
            alert.action = AlertAction::Alerted;
        } else if alert.action == AlertAction::Alerted {
            alert.action = AlertAction::Blocked;
        }
        alert.container_id = Some(entry.workload.container_id.clone());
        alert.enforcer = Some(MECHANISM.to_owned());
        Some(ReportedEvent {
            event: to_event(&alert, e.cgroup_id),
            workload: Some(entry),
        })
    }
}
