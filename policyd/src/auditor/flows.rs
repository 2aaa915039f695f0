//! The flow sensor on every container a policy scopes: rampart-audit's [`FlowSensor`] watches the
//! container's cgroup from its bind, and rampartd counts its TCP connections (answered connects,
//! accepts, failed connects, closes and the bytes of closed ones) for `rampartctl status`.
//! Connections are counted, not written to journald: the rules that decide or report them are
//! the seccomp agent's (egress) and the ingress guard's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rampart_audit::{Flow, FlowKind, FlowSensor};
use rampart_protos::agent::{Mechanism, SensorCount, WorkloadFlows};

use crate::registry::ContainerEntry;

/// The mechanism's name in `rampartctl status`.
pub const MECHANISM: &str = "tracepoint-tcp";

pub struct FlowWatch {
    sensor: Result<Arc<FlowSensor>, String>,
    /// Container id → the cgroup id watched for it.
    watched: Mutex<HashMap<String, u64>>,
    /// Cgroup id → its counts, from the sensor's reader thread.
    counts: Arc<Mutex<HashMap<u64, WorkloadFlows>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Each update is one map operation: a poisoned lock still holds a consistent map.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FlowWatch {
    pub(super) fn start() -> FlowWatch {
        let counts: Arc<Mutex<HashMap<u64, WorkloadFlows>>> = Arc::default();
        let tally = counts.clone();
        let sensor = FlowSensor::start(Box::new(move |f: &Flow| {
            let mut all = lock(&tally);
            // Only watched cgroups' flows arrive, and `bound` made their entry.
            let Some(c) = all.get_mut(&f.cgroup_id) else {
                return;
            };
            match f.kind {
                FlowKind::Connected => c.connected += 1,
                FlowKind::Accepted => c.accepted += 1,
                FlowKind::Failed => c.failed += 1,
                FlowKind::Closed => {
                    c.closed += 1;
                    c.bytes_sent += f.bytes_sent;
                    c.bytes_received += f.bytes_received;
                }
                FlowKind::UdpSent => c.udp_sent += 1,
                FlowKind::UdpReceived => c.udp_received += 1,
            }
        }))
        .map_err(|e| e.to_string());
        if let Err(e) = &sensor {
            tracing::error!(error = %e, "flow sensor off: no connection counts per workload");
        }
        FlowWatch {
            sensor,
            watched: Mutex::new(HashMap::new()),
            counts,
        }
    }

    /// Watches the scoped container's cgroup `cgroup`.
    pub(super) fn bound(&self, entry: &ContainerEntry, cgroup: u64) {
        let Ok(sensor) = &self.sensor else {
            return;
        };
        let id = entry.container_id();
        // UDP needs programs on the cgroup itself (its directory); TCP only the map entry.
        if !entry.cgroup_path.is_empty()
            && let Err(e) = sensor.attach_udp(std::path::Path::new(&entry.cgroup_path))
        {
            tracing::warn!(container_id = %id, error = %e, "flow sensor: cannot watch the container's UDP; its UDP flows go uncounted");
        }
        match sensor.watch(cgroup) {
            Ok(()) => {
                lock(&self.counts).entry(cgroup).or_default();
                lock(&self.watched).insert(id.to_owned(), cgroup);
            }
            Err(e) => {
                tracing::warn!(container_id = %id, error = %e, "flow sensor: cannot watch the container; its connections go uncounted")
            }
        }
    }

    pub(super) fn unbound(&self, entry: &ContainerEntry) {
        if let (Some(cgroup), Ok(sensor)) = (
            lock(&self.watched).remove(entry.container_id()),
            &self.sensor,
        ) {
            sensor.unwatch(cgroup);
            lock(&self.counts).remove(&cgroup);
        }
    }

    /// The container's counts, and its events the ring could not hold.
    pub(super) fn workload(&self, container_id: &str) -> Option<(WorkloadFlows, u64)> {
        let sensor = self.sensor.as_ref().ok()?;
        let cgroup = *lock(&self.watched).get(container_id)?;
        let flows = lock(&self.counts).get(&cgroup).cloned().unwrap_or_default();
        Some((flows, sensor.dropped_for(cgroup)))
    }

    pub(super) fn mechanism(&self) -> Mechanism {
        let watched = lock(&self.watched).len();
        Mechanism {
            name: MECHANISM.to_owned(),
            in_use: self.sensor.is_ok(),
            detail: match &self.sensor {
                Ok(_) => format!(
                    "TCP connections of scoped containers as they open, fail and close (a BTF \
                     tracepoint), and their UDP flows as first seen (cgroup sock_addr programs), \
                     counted per workload; containers watched: {watched}"
                ),
                Err(why) => why.clone(),
            },
        }
    }

    pub(super) fn sensor(&self) -> Option<SensorCount> {
        let c = self.sensor.as_ref().ok()?.counts();
        Some(SensorCount {
            name: MECHANISM.to_owned(),
            written: c.written,
            dropped: c.dropped,
        })
    }
}
