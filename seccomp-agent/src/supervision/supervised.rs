//! The containers this agent supervises, as it announces them to rampartd in every Hello: after
//! a restart of rampartd, its registry is rebuilt from these (and rampart-nri's bindings).
//!
//! Entries are weak: a container is listed while something still supervises it (its supervisor
//! threads hold the workload), and drops out once they have all ended.

use std::sync::{Arc, Mutex, Weak};

use rampart_protos::agent::BindRequest;

use crate::workload::Workload;

#[derive(Debug, Clone, Default)]
pub struct Supervised(Arc<Mutex<Vec<Weak<Workload>>>>);

impl Supervised {
    pub fn add(&self, w: &Arc<Workload>) {
        let mut all = self.lock();
        // Every exec into a container hands over a notify fd: without pruning here, an agent
        // that never reconnects would keep one dead entry per exec.
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(w));
    }

    /// The containers still supervised, one entry each (a container with several notify fds,
    /// from `exec`s, is listed once).
    pub fn list(&self) -> Vec<BindRequest> {
        let mut all = self.lock();
        all.retain(|w| w.strong_count() > 0);
        let mut seen = std::collections::HashSet::new();
        all.iter()
            .filter_map(Weak::upgrade)
            .filter(|w| seen.insert(w.container_id.clone()))
            .map(|w| BindRequest {
                workload: Some(w.to_proto()),
                // rampart-nri's binding has the cgroup; rampartd keeps it over this one.
                cgroup_id: 0,
                cgroup_path: String::new(),
                pid: u32::try_from(w.pid).unwrap_or(0),
                // The agent supervises its filter's notifications.
                filtered: true,
            })
            .collect()
    }

    // Every update is one Vec operation: a poisoned lock still holds a consistent list.
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Weak<Workload>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_each_live_container_once() {
        let s = Supervised::default();
        let w = |id: &str| {
            Arc::new(Workload {
                container_id: id.into(),
                pod_name: "web".into(),
                pid: 9,
                ..Default::default()
            })
        };
        let (a, a_exec, b) = (w("a"), w("a"), w("b"));
        s.add(&a);
        s.add(&a_exec);
        s.add(&b);
        let ids = |s: &Supervised| -> Vec<String> {
            s.list()
                .into_iter()
                .map(|r| r.workload.unwrap().container_id)
                .collect()
        };
        assert_eq!(ids(&s), ["a", "b"]);
        drop(b);
        assert_eq!(ids(&s), ["a"]);
        assert_eq!(s.list()[0].workload.as_ref().unwrap().pod_name, "web");
        // Adding prunes what has ended, list or not.
        drop((a, a_exec));
        s.add(&w("c"));
        assert_eq!(s.lock().len(), 1);
    }
}
