//! The process sensor on every container a policy scopes: rampart-audit's [`ProcessSensor`]
//! watches the container's cgroup from its bind (before its process starts), so that every alert,
//! the agents' included, names the processes that started the one that acted, exited ones too.
//!
//! Drift in containers whose execs no seccomp filter decides (they ran before rampart-nri, or
//! their filter could not be injected and the node is lenient): the sensor tells from the file
//! the kernel executes whether it is the image's, and such an exec is a Drift alert. Where the
//! policy blocks drift, the kernel kills the process before it runs (`kill_drift`). Where a
//! filter decides execs, the seccomp agent reports drift itself, and the sensor stays quiet.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rampart_audit::process_table::{HostProcfs, ProcessTable};
use rampart_audit::{Exec, ProcessSensor};
use rampart_policy::{Alert, AlertAction, Operation, Timestamp, Verdict, WorkloadView};
use rampart_protos::agent::{Mechanism, ProcessRef, SensorCount};
use rampart_protos::event::to_event;

use super::{Plans, Shared};
use crate::api::ReportedEvent;
use crate::planner::policy_workload;
use crate::registry::ContainerEntry;

/// The mechanism's name in `rampartctl status` and the alerts' `enforcer`.
pub const MECHANISM: &str = "tracepoint-process";

pub struct ProcessWatch {
    sensor: Result<Arc<ProcessSensor>, String>,
    /// Container id → the cgroup id watched for it.
    watched: Mutex<HashMap<String, u64>>,
    plans: Arc<Plans>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Each update is one map operation: a poisoned lock still holds a consistent map.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ProcessWatch {
    pub(super) fn start(shared: Arc<Shared>, plans: Arc<Plans>) -> ProcessWatch {
        let filtered = plans.clone();
        let sensor = ProcessSensor::start(Some(Box::new(move |e: &Exec| {
            if let Some(reported) = drift(&shared, &filtered, e) {
                shared.report(reported);
            }
        })))
        .map_err(|e| e.to_string());
        match &sensor {
            Ok(_) => {
                tracing::info!("process sensor on: forks, execs and exits of bound containers")
            }
            Err(e) => {
                tracing::error!(error = %e, "process sensor off: alerts name fewer ancestors, and drift in unfiltered containers goes unseen")
            }
        }
        ProcessWatch {
            sensor,
            watched: Mutex::new(HashMap::new()),
            plans,
        }
    }

    /// Watches the scoped container's cgroup `cgroup`; kills its drift in the kernel if a
    /// policy blocks drift and no filter decides its execs.
    pub(super) fn bound(
        &self,
        entry: &ContainerEntry,
        view: &WorkloadView,
        cgroup: u64,
    ) -> Result<(), String> {
        let Ok(sensor) = &self.sensor else {
            // Only ancestry and unfiltered drift are lost; nothing the agents enforce.
            return Ok(());
        };
        let id = entry.container_id();
        sensor.watch(cgroup).map_err(|e| e.to_string())?;
        lock(&self.watched).insert(id.to_owned(), cgroup);
        let filtered = self.plans.execs_decided(id);
        let blocks = drift_verdict(view) == Verdict::Block;
        sensor
            .kill_drift(cgroup, blocks && !filtered)
            .map_err(|e| format!("its drift rule can't be enforced: {e}"))?;
        if blocks && !filtered {
            tracing::warn!(container_id = %id, pod = %entry.workload.pod_name, "no seccomp filter decides this container's execs: its drift is killed by the kernel instead");
        }
        Ok(())
    }

    /// The container is gone.
    pub(super) fn unbound(&self, entry: &ContainerEntry) {
        self.unwatch(entry);
    }

    /// No policy scopes the container (any more).
    pub(super) fn unwatch(&self, entry: &ContainerEntry) {
        if let (Some(cgroup), Ok(sensor)) = (
            lock(&self.watched).remove(entry.container_id()),
            &self.sensor,
        ) {
            sensor.unwatch(cgroup);
        }
    }

    /// The container's events the sensor's ring could not hold; None if it is not watched.
    pub(super) fn dropped_for(&self, container_id: &str) -> Option<u64> {
        match (&self.sensor, lock(&self.watched).get(container_id)) {
            (Ok(sensor), Some(cgroup)) => Some(sensor.dropped_for(*cgroup)),
            _ => None,
        }
    }

    pub(super) fn ancestors(&self, pid: u32) -> Vec<ProcessRef> {
        let chain = match &self.sensor {
            Ok(s) => s.ancestry(pid),
            // What /proc still shows.
            Err(_) => ProcessTable::default().ancestry(pid, &HostProcfs),
        };
        chain
            .into_iter()
            .map(|a| ProcessRef {
                pid: a.pid,
                executable: a.executable,
                args: a.args,
            })
            .collect()
    }

    pub(super) fn mechanism(&self) -> Mechanism {
        let watched = lock(&self.watched).len();
        Mechanism {
            name: MECHANISM.to_owned(),
            in_use: self.sensor.is_ok(),
            detail: match &self.sensor {
                Ok(_) => format!(
                    "forks, execs and exits of scoped containers (BTF tracepoints), for every \
                     alert's ancestry, and drift where no seccomp filter decides execs; \
                     containers watched: {watched}"
                ),
                Err(why) => why.clone(),
            },
        }
    }

    pub(super) fn sensor(&self) -> Option<SensorCount> {
        let sensor = self.sensor.as_ref().ok()?;
        let c = sensor.counts();
        Some(SensorCount {
            name: MECHANISM.to_owned(),
            written: c.written,
            dropped: c.dropped,
        })
    }
}

/// What the policy says of drift in this view (drift rules have no paths: any path decides it).
fn drift_verdict(view: &WorkloadView) -> Verdict {
    view.decide(&Operation::Drift { path: "" }).verdict
}

/// The Drift alert for an exec of a file that is not the image's, in a container whose filter
/// does not decide execs; None otherwise.
fn drift(shared: &Shared, plans: &Plans, e: &Exec) -> Option<ReportedEvent> {
    if !e.origin.is_drift() {
        return None;
    }
    let entry = shared.registry.resolve("", e.cgroup_id)?;
    if plans.execs_decided(entry.container_id()) {
        return None;
    }
    // The name it was run by (a memfd's own name), unless that is a descriptor's name or
    // relative: then where /proc showed it.
    let by_name = e.filename.starts_with("memfd:")
        || (e.filename.starts_with('/')
            && !e.filename.starts_with("/proc/")
            && !e.filename.starts_with("/dev/fd/"));
    let path = if by_name {
        e.filename.as_str()
    } else {
        e.executable.as_str()
    };
    let op = Operation::Drift { path };
    let workload = policy_workload(&entry.workload);
    let view = shared.view(&entry);
    let decision = view.decide(&op);
    let mut alert = Alert::from_decision(&decision, &workload, &op, Timestamp::now())?;
    // What happened is what the kernel did: killed, or ran (a block that came too late to be
    // in the kernel's map is reported as an alert, not as a refusal).
    if !e.killed {
        alert.action = AlertAction::Alerted;
    } else if alert.action != AlertAction::PodKilled {
        // A kill-pod response stays: rampartd stops the pod when it records the alert.
        alert.action = AlertAction::Blocked;
        alert.process_killed();
    }
    alert.pid = Some(e.pid);
    alert.process_path = Some(e.executable.clone());
    alert.args = (!e.args.is_empty()).then(|| e.args.clone());
    alert.syscall = Some("execve".to_owned());
    alert.container_id = Some(entry.workload.container_id.clone());
    alert.enforcer = Some(MECHANISM.to_owned());
    tracing::info!(container_id = %entry.workload.container_id, pid = e.pid, path, origin = e.origin.as_str(), inode = e.inode, killed = e.killed, "drift");
    Some(ReportedEvent {
        event: to_event(&alert, e.cgroup_id),
        workload: Some(entry),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::RwLock;
    use std::time::SystemTime;

    use rampart_audit::ExecOrigin;
    use rampart_policy::{Snapshot, parse_str};
    use rampart_protos::agent::{Action, EventType, Workload};
    use tokio::sync::mpsc;

    use super::*;
    use crate::registry::Registry;

    const DRIFT: &str = "apiVersion: rampart.dev/v1alpha1\nkind: RuntimePolicy\nmetadata: {name: NoDrift}\nspec:\n  drift: {action: block}\n";

    fn shared() -> Shared {
        let registry = Arc::new(Registry::new());
        registry
            .bind(ContainerEntry {
                workload: Workload {
                    namespace: "default".into(),
                    pod_name: "web".into(),
                    container_name: "nginx".into(),
                    container_id: "c1".into(),
                    ..Default::default()
                },
                cgroup_id: 7,
                cgroup_path: "/sys/fs/cgroup/c1".into(),
                pid: 1,
                bound_at: SystemTime::now(),
            })
            .unwrap();
        let snapshot = Snapshot::new(parse_str("d.yaml", DRIFT).unwrap()).unwrap();
        Shared {
            snapshot: RwLock::new(Arc::new(snapshot)),
            views: Mutex::new(HashMap::new()),
            registry,
            events: mpsc::channel(1).0,
        }
    }

    fn exec(origin: ExecOrigin, killed: bool) -> Exec {
        Exec {
            pid: 42,
            ppid: 41,
            cgroup_id: 7,
            filename: "/tmp/x".into(),
            executable: "/tmp/x".into(),
            args: vec!["x".into()],
            origin,
            inode: 9,
            device: 1,
            killed,
        }
    }

    #[test]
    fn a_drifting_exec_the_kernel_killed_is_a_process_killed_drift_record() {
        let (shared, planned) = (shared(), Plans::default());
        let r = drift(&shared, &planned, &exec(ExecOrigin::Upper, true)).expect("a record");
        assert_eq!(r.event.event_type, EventType::Drift as i32);
        assert_eq!(r.event.action, Action::ProcessKilled as i32);
        assert_eq!(r.event.enforcer, MECHANISM);
        assert_eq!(r.event.file_path, "/tmp/x");
        assert_eq!((r.event.pid, r.event.cgroup_id), (42, 7));
        // Not killed (the block was not in the kernel's map yet): it ran, and says so.
        let r = drift(&shared, &planned, &exec(ExecOrigin::Memfd, false)).unwrap();
        assert_eq!(r.event.action, Action::Alerted as i32);
    }

    #[test]
    fn the_image_s_files_and_filtered_containers_are_left_to_others() {
        let (shared, planned) = (shared(), Plans::default());
        assert!(drift(&shared, &planned, &exec(ExecOrigin::Image, false)).is_none());
        assert!(drift(&shared, &planned, &exec(ExecOrigin::Unknown, false)).is_none());
        planned.record(
            "c1",
            &rampart_protos::agent::PlanResponse {
                protected: true,
                notify_syscalls: vec!["execve".into()],
                ..Default::default()
            },
        );
        assert!(
            drift(&shared, &planned, &exec(ExecOrigin::Upper, false)).is_none(),
            "the seccomp agent reports this container's drift"
        );
        let mut other = exec(ExecOrigin::Upper, false);
        other.cgroup_id = 8;
        assert!(drift(&shared, &planned, &other).is_none(), "not bound");
    }

    #[test]
    fn a_memfd_is_named_by_its_own_name_a_descriptor_path_by_proc() {
        let (shared, planned) = (shared(), Plans::default());
        let mut e = exec(ExecOrigin::Memfd, false);
        e.filename = "memfd:payload".into();
        e.executable = "/memfd:payload (deleted)".into();
        let r = drift(&shared, &planned, &e).unwrap();
        assert_eq!(r.event.file_path, "memfd:payload");
        let mut e = exec(ExecOrigin::Deleted, false);
        e.filename = "/proc/self/fd/3".into();
        e.executable = "/tmp/gone (deleted)".into();
        let r = drift(&shared, &planned, &e).unwrap();
        assert_eq!(r.event.file_path, "/tmp/gone (deleted)");
    }
}
