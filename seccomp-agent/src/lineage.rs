//! Who started whom: the kernel auditor's process sensor watches each protected container's
//! cgroup from its notify fd's arrival, and every event the agent reports carries the processes
//! that started the one that acted (`ancestors`), exited ones included. They are looked up by
//! the reporting task, after the task that acted has been answered: never on the syscall path.
//! Without the sensor an event names the parent /proc still shows, if any.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rampart_audit::ProcessSensor;
use rampart_audit::process_table::{HostProcfs, ProcessTable};
use rampart_protos::agent::{ProcessRef, SensorCount};
use tracing::{debug, warn};

use crate::container::cgroup;
use crate::mechanisms::PROCESS_SENSOR;
use crate::workload::Workload;

/// Containers remembered as watched before the map starts over (watching again is idempotent).
const MAX_WATCHED: usize = 16_384;

#[derive(Default)]
pub struct Lineage {
    sensor: Option<Arc<ProcessSensor>>,
    /// Where cgroup v2 is mounted (found once; None: no cgroup v2, nothing is watched).
    cgroup_root: Option<PathBuf>,
    /// Container id → the cgroup id the sensor watches for it.
    watched: Mutex<HashMap<String, u64>>,
}

impl Lineage {
    pub fn new(sensor: Option<Arc<ProcessSensor>>) -> Lineage {
        let cgroup_root = match (&sensor, cgroup::v2_mount()) {
            (Some(_), Ok(root)) => Some(root),
            (Some(_), Err(e)) => {
                warn!(error = %e, "process sensor: no cgroup v2 to watch containers by; alerts name fewer ancestors");
                None
            }
            (None, _) => None,
        };
        Lineage {
            sensor,
            cgroup_root,
            watched: Mutex::new(HashMap::new()),
        }
    }

    fn watched(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.watched.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes sure the container of task `tid` is watched (its first task, when its notify fd
    /// arrives; any task of it, after an agent restart).
    pub fn watch(&self, w: &Workload, tid: u32) {
        let (Some(sensor), Some(root)) = (&self.sensor, &self.cgroup_root) else {
            return;
        };
        if self.watched().contains_key(&w.container_id) {
            return;
        }
        let id = cgroup::of_task(root, tid).and_then(|dir| cgroup::id(&dir));
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

    /// The sensor's counts, as reports carry them.
    pub fn sensor_counts(&self) -> Vec<SensorCount> {
        self.sensor
            .iter()
            .map(|s| {
                let c = s.counts();
                SensorCount {
                    name: PROCESS_SENSOR.into(),
                    written: c.written,
                    dropped: c.dropped,
                }
            })
            .collect()
    }
}
