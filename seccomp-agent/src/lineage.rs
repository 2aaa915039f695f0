//! Who started whom: the kernel auditor's process sensor watches each protected container's
//! cgroup from its notify fd's arrival, and every alert the agent reports carries the processes
//! that started the one that acted (`Alert::ancestors`), exited ones included. Without the
//! sensor an alert names the parent /proc still shows, if any.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rampart_audit::ProcessSensor;
use rampart_audit::process_table::{HostProcfs, ProcessTable};
use rampart_policy::ProcessRef;
use tracing::{debug, warn};

use crate::container::cgroup;
use crate::workload::Workload;

/// Containers remembered as watched before the map starts over (watching again is idempotent).
const MAX_WATCHED: usize = 16_384;

#[derive(Default)]
pub struct Lineage {
    sensor: Option<Arc<ProcessSensor>>,
    /// Container id → the cgroup id the sensor watches for it.
    watched: Mutex<HashMap<String, u64>>,
}

impl Lineage {
    pub fn new(sensor: Option<Arc<ProcessSensor>>) -> Lineage {
        Lineage {
            sensor,
            watched: Mutex::new(HashMap::new()),
        }
    }

    fn watched(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.watched.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes sure the container of task `tid` is watched (its first task, when its notify fd
    /// arrives; any task of it, after an agent restart).
    pub fn watch(&self, w: &Workload, tid: u32) {
        let Some(sensor) = &self.sensor else { return };
        if self.watched().contains_key(&w.container_id) {
            return;
        }
        let id = cgroup::v2_mount()
            .and_then(|root| cgroup::of_task(&root, tid))
            .and_then(|dir| cgroup::id(&dir));
        match id.map(|id| (id, sensor.watch(id))) {
            Ok((id, Ok(()))) => {
                let mut watched = self.watched();
                if watched.len() >= MAX_WATCHED {
                    watched.clear();
                }
                watched.insert(w.container_id.clone(), id);
                debug!(container = %w.container_id, cgroup_id = id, "process sensor: watching");
            }
            Ok((_, Err(e))) => {
                warn!(container = %w.container_id, error = %e, "process sensor: cannot watch the container; its alerts name fewer ancestors")
            }
            Err(e) => {
                warn!(container = %w.container_id, error = %e, "process sensor: cannot find the container's cgroup; its alerts name fewer ancestors")
            }
        }
    }

    /// The container ended.
    pub fn ended(&self, container_id: &str) {
        if let (Some(sensor), Some(id)) = (&self.sensor, self.watched().remove(container_id)) {
            sensor.unwatch(id);
        }
    }

    /// The processes that started `pid`, its parent first.
    pub fn ancestors(&self, pid: u32) -> Vec<ProcessRef> {
        let chain = match &self.sensor {
            Some(s) => s.ancestry(pid),
            None => ProcessTable::default().ancestry(pid, &HostProcfs),
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
}
