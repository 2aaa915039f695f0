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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rampart_audit::{IngressEvent, IngressGuard};
use rampart_policy::{Alert, AlertAction, Direction, Operation, Timestamp, Verdict, WorkloadView};
use rampart_protos::agent::{Mechanism, SensorCount};
use rampart_protos::event::to_event;

use super::Shared;
use crate::api::ReportedEvent;
use crate::planner::policy_workload;
use crate::registry::ContainerEntry;

/// The mechanism's name in `rampartctl status` and the alerts' `enforcer`.
pub const MECHANISM: &str = "cgroup-ingress";

/// Where the guard's maps and links are pinned: they keep deciding while rampartd restarts.
const BPFFS: &str = "/sys/fs/bpf";
const PINS: &str = "/sys/fs/bpf/rampart/ingress";

pub struct IngressEnforcer {
    guard: Result<Arc<IngressGuard>, String>,
    /// Starts reading the guard's events: once the registry can name their containers.
    reader: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    /// Bound containers whose cgroup is guarded: container id → cgroup id.
    guarded: Mutex<HashMap<String, u64>>,
    /// Decisions whose container or rule could not be named (it went away, or a reload changed
    /// the rules in between): counted, and logged.
    unattributed: Arc<AtomicU64>,
}

impl IngressEnforcer {
    /// Loads the guard (a failure is kept, and said by `bound` and `mechanism`) and starts the
    /// thread that turns its events into alerts.
    pub(super) fn start(shared: Arc<Shared>) -> IngressEnforcer {
        let unattributed = Arc::new(AtomicU64::new(0));
        let uncounted = unattributed.clone();
        let on_event = move |e: IngressEvent| match alert(&shared, &e) {
            Ok(reported) => shared.report(reported),
            Err(why) => {
                uncounted.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(cgroup_id = e.cgroup_id, peer = %e.peer, port = e.port, verdict = ?e.verdict, "an ingress decision could not be reported: {why}");
            }
        };
        let guard = match rampart_audit::bpffs::ensure_mounted(Path::new(BPFFS)) {
            Ok(()) => IngressGuard::start_pinned(Path::new(PINS)),
            Err(e) => {
                tracing::warn!(error = %e, "ingress links not pinned: while rampartd restarts, ingress rules are not enforced");
                IngressGuard::start_with(1 << 18, None, None)
            }
        }
        .map_err(|e| e.to_string());
        // What waits in the ring (refused while rampartd was down) names cgroups the registry
        // knows only once rampart-nri has announced its containers: read from then on.
        let reader: Option<Box<dyn FnOnce() + Send>> = guard.as_ref().ok().map(|g| {
            let g = g.clone();
            Box::new(move || {
                if let Err(e) = g.read_events(on_event) {
                    tracing::error!(error = %e, "ingress decisions will not be reported");
                }
            }) as Box<dyn FnOnce() + Send>
        });
        match &guard {
            Ok(g) => tracing::info!(
                adopted = g.guarded().len(),
                "ingress guard on: cgroup_skb programs on containers with ingress rules"
            ),
            Err(e) => tracing::error!(error = %e, "ingress rules cannot be enforced on this node"),
        }
        IngressEnforcer {
            guard,
            reader: Mutex::new(reader),
            guarded: Mutex::new(HashMap::new()),
            unattributed,
        }
    }

    /// Reads the guard's events from now on (once; later calls do nothing).
    pub(super) fn report_events(&self) {
        let reader = self.reader.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(start) = reader {
            start();
        }
    }

    fn lock_guarded(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        // Each update is one map operation: a poisoned lock still holds a consistent map.
        self.guarded.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Guards the container's cgroup with its table (or releases it when it has none).
    pub(super) fn bound(&self, entry: &ContainerEntry, view: &WorkloadView) -> Result<(), String> {
        let table = view.ingress_table();
        let id = entry.container_id().to_owned();
        if table.is_empty() {
            let known = self.lock_guarded().remove(&id);
            // A link adopted from an earlier rampartd is the guard's, not yet in `guarded`.
            let adopted = super::cgroup_of(entry).ok();
            if let Ok(guard) = &self.guard {
                for cgroup in known.into_iter().chain(adopted) {
                    if guard.guarded().contains(&cgroup) {
                        guard.release(cgroup);
                    }
                }
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

    pub(super) fn unbound(&self, entry: &ContainerEntry) {
        if let (Some(cgroup), Ok(guard)) = (
            self.lock_guarded().remove(entry.container_id()),
            &self.guard,
        ) {
            guard.release(cgroup);
        }
    }

    pub(super) fn mechanism(&self) -> Mechanism {
        // Links adopted from an earlier rampartd count too.
        let guarded = self.guard.as_ref().map_or(0, |g| g.guarded().len());
        let unattributed = self.unattributed.load(Ordering::Relaxed);
        let unnamed = if unattributed > 0 {
            format!("; {unattributed} decisions could not be reported (see rampartd's log)")
        } else {
            String::new()
        };
        Mechanism {
            name: MECHANISM.to_owned(),
            in_use: self.guard.is_ok(),
            detail: match &self.guard {
                Ok(_) => format!(
                    "ingress rules: TCP connections as they open, UDP datagrams, raw and ICMP \
                     echo packets, refused in the kernel by peer, local port and protocol \
                     (cgroup_skb); containers guarded: {guarded}{unnamed}"
                ),
                Err(why) => why.clone(),
            },
        }
    }

    pub(super) fn sensor(&self) -> Option<SensorCount> {
        let guard = self.guard.as_ref().ok()?;
        let c = guard.counts();
        Some(SensorCount {
            name: MECHANISM.to_owned(),
            written: c.written,
            dropped: c.dropped,
        })
    }
}

/// The alert for a kernel event, as the agents report theirs: the peer, port and protocol
/// decided again by the container's view (the table is that decision written out).
fn alert(shared: &Shared, e: &IngressEvent) -> Result<ReportedEvent, &'static str> {
    let entry = shared
        .registry
        .resolve("", e.cgroup_id)
        .ok_or("its container is no longer bound")?;
    let workload = policy_workload(&entry.workload);
    let view = shared.view(&entry);
    let op = Operation::Connect {
        direction: Direction::Ingress,
        address: e.peer,
        port: e.port,
        protocol: e.protocol,
        process: "",
    };
    let decision = view.decide(&op);
    let mut alert = Alert::from_decision(&decision, &workload, &op, Timestamp::now())
        .ok_or("the rules in force now allow it (a reload in between)")?;
    // The kernel's verdict is what happened. A policy-wide kill-pod response does not apply to
    // ingress (the policy crate refuses one on an ingress rule): a forged source address must
    // not stop the pod.
    alert.action = match e.verdict {
        Verdict::Alert => AlertAction::Alerted,
        _ => AlertAction::Blocked,
    };
    alert.container_id = Some(entry.workload.container_id.clone());
    alert.enforcer = Some(MECHANISM.to_owned());
    Ok(ReportedEvent {
        event: to_event(&alert, e.cgroup_id),
        workload: Some(entry),
    })
}
