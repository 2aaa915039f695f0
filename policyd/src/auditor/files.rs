//! The write sensor on every container an integrity rule scopes: rampart-audit's [`WriteSensor`]
//! (fanotify, close after write) on the container's root filesystem from its bind, so that a
//! modification the seccomp filter did not decide is still a FileIntegrity record: in a
//! container whose filter does not decide opens (it ran before rampart-nri, or it was created
//! before the rule existed), and anywhere a block rule was got round (a descriptor opened before
//! the rule, a shared mapping). Reported, never refused: the write has happened.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rampart_audit::{Write, WriteSensor};
use rampart_policy::{Alert, AlertAction, Operation, Timestamp, Verdict, WorkloadView};
use rampart_protos::agent::{Mechanism, SensorCount};
use rampart_protos::event::to_event;

use super::{Plans, Shared};
use crate::api::ReportedEvent;
use crate::planner::policy_workload;
use crate::registry::ContainerEntry;

/// The mechanism's name in `rampartctl status` and the alerts' `enforcer`.
pub const MECHANISM: &str = "fanotify-write";

pub struct FileWatch {
    sensor: Result<Arc<WriteSensor>, String>,
    /// Container id → the device number of its watched root.
    watched: Mutex<HashMap<String, u64>>,
    /// Device number → container id, for the reader.
    by_device: Arc<Mutex<HashMap<u64, String>>>,
    reported: Arc<std::sync::atomic::AtomicU64>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Each update is one map operation: a poisoned lock still holds a consistent map.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FileWatch {
    pub(super) fn start(shared: Arc<Shared>, plans: Arc<Plans>) -> FileWatch {
        let by_device: Arc<Mutex<HashMap<u64, String>>> = Arc::default();
        let reported = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (devices, count) = (by_device.clone(), reported.clone());
        let sensor = WriteSensor::start(Box::new(move |w: &Write| {
            let container = lock(&devices).get(&w.device).cloned();
            if let Some(r) = container.and_then(|c| modified(&shared, &plans, &c, w)) {
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                shared.report(r);
            }
        }))
        .map_err(|e| e.to_string());
        if let Err(e) = &sensor {
            tracing::error!(error = %e, "write sensor off: modifications no seccomp filter decided go unreported");
        }
        FileWatch {
            sensor,
            watched: Mutex::new(HashMap::new()),
            by_device,
            reported,
        }
    }

    /// Watches the container's root if an integrity rule scopes it.
    pub(super) fn bound(&self, entry: &ContainerEntry, view: &WorkloadView) {
        let Ok(sensor) = &self.sensor else {
            return;
        };
        let id = entry.container_id();
        if !view.watches_integrity() {
            self.unbound(entry);
            return;
        }
        if lock(&self.watched).contains_key(id) {
            return;
        }
        match sensor.watch(entry.pid) {
            Ok(device) => {
                lock(&self.by_device).insert(device, id.to_owned());
                lock(&self.watched).insert(id.to_owned(), device);
            }
            Err(e) => {
                tracing::warn!(container_id = %id, error = %e, "write sensor: cannot watch the container's root; modifications its filter does not decide go unreported")
            }
        }
    }

    pub(super) fn unbound(&self, entry: &ContainerEntry) {
        if let (Some(device), Ok(sensor)) = (
            lock(&self.watched).remove(entry.container_id()),
            &self.sensor,
        ) {
            sensor.unwatch(device);
            lock(&self.by_device).remove(&device);
        }
    }

    pub(super) fn mechanism(&self) -> Mechanism {
        let watched = lock(&self.watched).len();
        Mechanism {
            name: MECHANISM.to_owned(),
            in_use: self.sensor.is_ok(),
            detail: match &self.sensor {
                Ok(_) => format!(
                    "files written in the root filesystems of containers with integrity rules \
                     (fanotify, on close), reported where no seccomp filter decided the open; \
                     containers watched: {watched}"
                ),
                Err(why) => why.clone(),
            },
        }
    }

    pub(super) fn sensor(&self) -> Option<SensorCount> {
        let sensor = self.sensor.as_ref().ok()?;
        Some(SensorCount {
            name: MECHANISM.to_owned(),
            written: self.reported.load(std::sync::atomic::Ordering::Relaxed),
            dropped: sensor.lost(),
        })
    }
}

/// The FileIntegrity record for a write, where the seccomp agent did not decide it: its filter
/// does not decide opens, or the rule blocks (the open was got round). None otherwise.
fn modified(
    shared: &Shared,
    plans: &Plans,
    container_id: &str,
    w: &Write,
) -> Option<ReportedEvent> {
    let entry = shared.registry.by_container_id(container_id)?;
    let process = std::fs::read_link(format!("/proc/{}/exe", w.pid))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let op = Operation::IntegrityWrite {
        path: &w.path,
        process: &process,
    };
    let workload = policy_workload(&entry.workload);
    let view = shared.view(&entry);
    let decision = view.decide(&op);
    if plans.opens_decided(container_id)
        && (decision.verdict != Verdict::Block || process.is_empty())
    {
        // The agent decided and reported the open. A block got round is reported only when the
        // writer is known: one that has exited may have been a process the rule excepts, whose
        // open the agent allowed.
        return None;
    }
    let mut alert = Alert::from_decision(&decision, &workload, &op, Timestamp::now())?;
    // It has happened: reported, not refused.
    alert.action = AlertAction::Alerted;
    alert.pid = (w.pid > 0).then_some(w.pid as u32);
    alert.container_id = Some(entry.workload.container_id.clone());
    alert.enforcer = Some(MECHANISM.to_owned());
    Some(ReportedEvent {
        event: to_event(&alert, entry.cgroup_id),
        workload: Some(entry),
    })
}
