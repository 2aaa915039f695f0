//! Whether the last plan rampartd gave for a workload required protection, so that a container
//! whose policy demands enforcement does not start unprotected just because rampartd happens to
//! be down when its pod is recreated.
//!
//! Keyed by what survives a pod being recreated by its controller: namespace, container name and
//! the pod's labels minus the per-revision hashes controllers add. Pod names and uids change on
//! every recreation and would make the memory useless exactly when it is needed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use rampart_protos::agent::Workload;

/// Labels that differ between revisions of the same workload.
const VOLATILE_LABELS: &[&str] = &[
    "pod-template-hash",
    "controller-revision-hash",
    "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index",
    "batch.kubernetes.io/controller-uid",
    "controller-uid",
    "batch.kubernetes.io/job-name",
    "job-name",
];

/// Enough for every workload on a node; when full it starts over rather than grow without bound.
const CAPACITY: usize = 4096;

type Key = (String, String, BTreeMap<String, String>);

#[derive(Default)]
pub struct RequiredMemory {
    map: Mutex<HashMap<Key, bool>>,
}

fn key(w: &Workload) -> Key {
    let labels = w
        .pod_labels
        .iter()
        .filter(|(k, _)| !VOLATILE_LABELS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (w.namespace.clone(), w.container_name.clone(), labels)
}

impl RequiredMemory {
    pub fn record(&self, w: &Workload, required: bool) {
        let mut m = self.map.lock().expect("required lock");
        if m.len() >= CAPACITY && !m.contains_key(&key(w)) {
            m.clear();
        }
        m.insert(key(w), required);
    }

    pub fn last_required(&self, w: &Workload) -> bool {
        self.map
            .lock()
            .expect("required lock")
            .get(&key(w))
            .copied()
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(pod: &str, hash: &str) -> Workload {
        Workload {
            namespace: "shop".into(),
            pod_name: pod.into(),
            container_name: "nginx".into(),
            pod_labels: [
                ("app".to_string(), "nginx".to_string()),
                ("pod-template-hash".to_string(), hash.to_string()),
            ]
            .into(),
            ..Default::default()
        }
    }

    #[test]
    fn survives_the_pod_being_recreated() {
        let m = RequiredMemory::default();
        assert!(!m.last_required(&w("web-a", "111")));
        m.record(&w("web-a", "111"), true);
        assert!(m.last_required(&w("web-b", "222")));
        m.record(&w("web-c", "222"), false);
        assert!(!m.last_required(&w("web-a", "111")));
    }

    #[test]
    fn other_workloads_are_not_affected() {
        let m = RequiredMemory::default();
        m.record(&w("web-a", "1"), true);
        let mut other = w("db-0", "1");
        other.pod_labels.insert("app".into(), "postgres".into());
        assert!(!m.last_required(&other));
    }
}
