//! The workload registry: which containers run where, so that an event carrying only a container
//! id or a cgroup id (kernel events) maps back to its pod.
//!
//! rampart-nri fills it with BindContainer at StartContainer (and at Synchronize, for containers
//! that ran before it connected) and empties it with UnbindContainer. Entries are shared as
//! `Arc`s so that an event can keep the identity it was resolved to after an unbind.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use rampart_protos::agent::Workload;

/// One running container.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerEntry {
    pub workload: Workload,
    /// cgroup v2 id (inode of its directory); 0 when the binder did not know it.
    pub cgroup_id: u64,
    pub cgroup_path: String,
    pub pid: u32,
    pub bound_at: SystemTime,
}

impl ContainerEntry {
    pub fn container_id(&self) -> &str {
        &self.workload.container_id
    }

    pub fn pod(&self) -> PodKey {
        PodKey {
            namespace: self.workload.namespace.clone(),
            name: self.workload.pod_name.clone(),
            uid: self.workload.pod_uid.clone(),
        }
    }
}

/// A pod, as far as its containers tell. The uid tells apart two pods of one name (a pod
/// deleted and created again).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PodKey {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RegistryError {
    #[error("cannot bind a container without a container id (pod {namespace}/{pod})")]
    NoContainerId { namespace: String, pod: String },
}

/// What a bind changed besides adding the entry.
#[derive(Debug, Default)]
pub struct BindOutcome {
    /// The container was bound already (Synchronize after StartContainer); this entry was
    /// replaced.
    pub replaced: Option<Arc<ContainerEntry>>,
    /// Another container held this cgroup id: it went away without an unbind (the cgroup inode
    /// was reused), and was removed.
    pub evicted: Option<Arc<ContainerEntry>>,
}

/// The registry's data; [`Registry`] is the thread-safe wrapper the daemon shares.
#[derive(Debug, Default)]
pub struct Containers {
    by_id: HashMap<String, Arc<ContainerEntry>>,
    by_cgroup: HashMap<u64, String>,
    pods: BTreeMap<PodKey, BTreeSet<String>>,
}

impl Containers {
    pub fn bind(&mut self, entry: ContainerEntry) -> Result<BindOutcome, RegistryError> {
        if entry.container_id().is_empty() {
            return Err(RegistryError::NoContainerId {
                namespace: entry.workload.namespace.clone(),
                pod: entry.workload.pod_name.clone(),
            });
        }
        let id = entry.container_id().to_owned();
        let mut outcome = BindOutcome {
            replaced: self.unbind(&id),
            evicted: None,
        };
        if entry.cgroup_id != 0 {
            if let Some(other) = self.by_cgroup.get(&entry.cgroup_id).cloned() {
                outcome.evicted = self.unbind(&other);
            }
            self.by_cgroup.insert(entry.cgroup_id, id.clone());
        }
        self.pods.entry(entry.pod()).or_default().insert(id.clone());
        self.by_id.insert(id, Arc::new(entry));
        Ok(outcome)
    }

    /// A container an agent announced (after a restart of rampartd): bound unless the registry
    /// already holds it with as much or more (a cgroup id the announcement lacks). Returns
    /// whether it was bound.
    pub fn announce(&mut self, entry: ContainerEntry) -> Result<bool, RegistryError> {
        if let Some(held) = self.by_id.get(entry.container_id())
            && (held.cgroup_id != 0 || entry.cgroup_id == 0)
        {
            return Ok(false);
        }
        self.bind(entry).map(|_| true)
    }

    /// Removes a container; `None` if it was not bound (unbinding twice is not an error:
    /// StopContainer and RemoveContainer both unbind).
    pub fn unbind(&mut self, container_id: &str) -> Option<Arc<ContainerEntry>> {
        let entry = self.by_id.remove(container_id)?;
        if entry.cgroup_id != 0
            && self.by_cgroup.get(&entry.cgroup_id).map(String::as_str) == Some(container_id)
        {
            self.by_cgroup.remove(&entry.cgroup_id);
        }
        let pod = entry.pod();
        if let Some(ids) = self.pods.get_mut(&pod) {
            ids.remove(container_id);
            if ids.is_empty() {
                self.pods.remove(&pod);
            }
        }
        Some(entry)
    }

    pub fn by_container_id(&self, container_id: &str) -> Option<Arc<ContainerEntry>> {
        self.by_id.get(container_id).cloned()
    }

    pub fn by_cgroup_id(&self, cgroup_id: u64) -> Option<Arc<ContainerEntry>> {
        self.by_id.get(self.by_cgroup.get(&cgroup_id)?).cloned()
    }

    /// The container an event names: by container id if it has one, else by cgroup id.
    pub fn resolve(&self, container_id: &str, cgroup_id: u64) -> Option<Arc<ContainerEntry>> {
        if !container_id.is_empty()
            && let Some(e) = self.by_container_id(container_id)
        {
            return Some(e);
        }
        (cgroup_id != 0)
            .then(|| self.by_cgroup_id(cgroup_id))
            .flatten()
    }

    /// Container ids of a pod, sorted.
    pub fn pod_containers(&self, pod: &PodKey) -> Vec<String> {
        self.pods
            .get(pod)
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Pods by namespace and name (any uid), for operators who do not know the uid.
    pub fn pods_named(&self, namespace: &str, name: &str) -> Vec<PodKey> {
        self.pods
            .keys()
            .filter(|k| k.namespace == namespace && k.name == name)
            .cloned()
            .collect()
    }

    pub fn pods(&self) -> Vec<(PodKey, Vec<String>)> {
        self.pods
            .iter()
            .map(|(k, ids)| (k.clone(), ids.iter().cloned().collect()))
            .collect()
    }

    /// Every container, ordered by namespace, pod, container name, id: for `rampartctl status`.
    pub fn list(&self) -> Vec<Arc<ContainerEntry>> {
        let mut all: Vec<_> = self.by_id.values().cloned().collect();
        fn key(e: &ContainerEntry) -> (&str, &str, &str, &str) {
            let w = &e.workload;
            (
                w.namespace.as_str(),
                w.pod_name.as_str(),
                w.container_name.as_str(),
                w.container_id.as_str(),
            )
        }
        all.sort_by(|a, b| key(a).cmp(&key(b)));
        all
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// [`Containers`] behind a lock, shared by the API and the alert pipeline. Lookups (one per
/// event) take the read lock; binds are rare.
#[derive(Debug, Default)]
pub struct Registry {
    inner: RwLock<Containers>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn bind(&self, entry: ContainerEntry) -> Result<BindOutcome, RegistryError> {
        self.write().bind(entry)
    }

    pub fn unbind(&self, container_id: &str) -> Option<Arc<ContainerEntry>> {
        self.write().unbind(container_id)
    }

    pub fn announce(&self, entry: ContainerEntry) -> Result<bool, RegistryError> {
        self.write().announce(entry)
    }

    pub fn by_container_id(&self, container_id: &str) -> Option<Arc<ContainerEntry>> {
        self.read().by_container_id(container_id)
    }

    pub fn by_cgroup_id(&self, cgroup_id: u64) -> Option<Arc<ContainerEntry>> {
        self.read().by_cgroup_id(cgroup_id)
    }

    pub fn resolve(&self, container_id: &str, cgroup_id: u64) -> Option<Arc<ContainerEntry>> {
        self.read().resolve(container_id, cgroup_id)
    }

    pub fn pod_containers(&self, pod: &PodKey) -> Vec<String> {
        self.read().pod_containers(pod)
    }

    pub fn pods_named(&self, namespace: &str, name: &str) -> Vec<PodKey> {
        self.read().pods_named(namespace, name)
    }

    pub fn pods(&self) -> Vec<(PodKey, Vec<String>)> {
        self.read().pods()
    }

    pub fn list(&self) -> Vec<Arc<ContainerEntry>> {
        self.read().list()
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    // A panic while holding the lock leaves the maps consistent (every mutation is a few
    // infallible map operations), so a poisoned lock is still safe to use.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Containers> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Containers> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        ns: &str,
        pod: &str,
        uid: &str,
        ctr: &str,
        id: &str,
        cgroup_id: u64,
    ) -> ContainerEntry {
        ContainerEntry {
            workload: Workload {
                namespace: ns.into(),
                pod_name: pod.into(),
                pod_uid: uid.into(),
                container_name: ctr.into(),
                container_id: id.into(),
                ..Default::default()
            },
            cgroup_id,
            cgroup_path: format!("/sys/fs/cgroup/unified/{id}"),
            pid: 42,
            bound_at: SystemTime::UNIX_EPOCH,
        }
    }

    fn pod(ns: &str, name: &str, uid: &str) -> PodKey {
        PodKey {
            namespace: ns.into(),
            name: name.into(),
            uid: uid.into(),
        }
    }

    #[test]
    fn an_announcement_fills_in_but_never_replaces_what_knows_more() {
        let mut r = Containers::default();
        // The seccomp agent knows no cgroup id; rampart-nri's announcement replaces its entry.
        assert_eq!(
            r.announce(entry("default", "web", "u1", "nginx", "c1", 0)),
            Ok(true)
        );
        assert_eq!(
            r.announce(entry("default", "web", "u1", "nginx", "c1", 77)),
            Ok(true)
        );
        assert_eq!(r.by_cgroup_id(77).unwrap().container_id(), "c1");
        // ...and the agent's, coming later, leaves rampart-nri's in place.
        assert_eq!(
            r.announce(entry("default", "web", "u1", "nginx", "c1", 0)),
            Ok(false)
        );
        assert_eq!(r.by_container_id("c1").unwrap().cgroup_id, 77);
        assert_eq!(
            r.announce(entry("default", "web", "u1", "sidecar", "c2", 0)),
            Ok(true)
        );
        assert_eq!(r.len(), 2);
        assert!(
            r.announce(entry("default", "web", "u1", "x", "", 0))
                .is_err()
        );
    }

    #[test]
    fn lookups_by_container_and_cgroup() {
        let mut r = Containers::default();
        r.bind(entry("default", "web", "u1", "nginx", "c1", 100))
            .unwrap();
        r.bind(entry("default", "web", "u1", "sidecar", "c2", 101))
            .unwrap();
        assert_eq!(r.by_container_id("c1").unwrap().cgroup_id, 100);
        assert_eq!(r.by_cgroup_id(101).unwrap().container_id(), "c2");
        assert!(r.by_cgroup_id(999).is_none());
        assert_eq!(r.resolve("", 100).unwrap().container_id(), "c1");
        assert_eq!(r.resolve("c2", 100).unwrap().container_id(), "c2");
        // An unknown container id still falls back to the cgroup id (kernel events carry both).
        assert_eq!(r.resolve("gone", 101).unwrap().container_id(), "c2");
        assert!(r.resolve("", 0).is_none());
        assert_eq!(
            r.pod_containers(&pod("default", "web", "u1")),
            vec!["c1".to_string(), "c2".to_string()]
        );
        assert_eq!(
            r.pods_named("default", "web"),
            vec![pod("default", "web", "u1")]
        );
    }

    #[test]
    fn unbind_removes_every_index_and_empty_pods() {
        let mut r = Containers::default();
        r.bind(entry("ns", "p", "u", "a", "c1", 7)).unwrap();
        r.bind(entry("ns", "p", "u", "b", "c2", 8)).unwrap();
        assert_eq!(r.unbind("c1").unwrap().cgroup_id, 7);
        assert!(r.by_cgroup_id(7).is_none());
        assert_eq!(
            r.pod_containers(&pod("ns", "p", "u")),
            vec!["c2".to_string()]
        );
        assert!(r.unbind("c1").is_none(), "second unbind is a no-op");
        r.unbind("c2");
        assert!(r.pods().is_empty());
        assert!(r.is_empty());
    }

    #[test]
    fn rebind_replaces_and_reused_cgroup_evicts() {
        let mut r = Containers::default();
        r.bind(entry("ns", "p", "u", "a", "c1", 7)).unwrap();
        // Synchronize binds it again, now in a different cgroup.
        let out = r.bind(entry("ns", "p", "u", "a", "c1", 9)).unwrap();
        assert_eq!(out.replaced.unwrap().cgroup_id, 7);
        assert!(out.evicted.is_none());
        assert!(r.by_cgroup_id(7).is_none());
        assert_eq!(r.by_cgroup_id(9).unwrap().container_id(), "c1");
        // c1 vanished without an unbind and its cgroup inode went to a new container.
        let out = r.bind(entry("ns", "q", "v", "b", "c2", 9)).unwrap();
        assert_eq!(out.evicted.unwrap().container_id(), "c1");
        assert!(r.by_container_id("c1").is_none());
        assert_eq!(r.by_cgroup_id(9).unwrap().container_id(), "c2");
        assert!(r.pod_containers(&pod("ns", "p", "u")).is_empty());
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn pods_of_one_name_are_told_apart_by_uid() {
        let mut r = Containers::default();
        r.bind(entry("ns", "p", "old", "a", "c1", 0)).unwrap();
        r.bind(entry("ns", "p", "new", "a", "c2", 0)).unwrap();
        assert_eq!(r.pods_named("ns", "p").len(), 2);
        assert_eq!(
            r.pod_containers(&pod("ns", "p", "new")),
            vec!["c2".to_string()]
        );
        // cgroup id 0 means unknown: never indexed.
        assert!(r.by_cgroup_id(0).is_none());
    }

    #[test]
    fn container_id_is_required() {
        let mut r = Containers::default();
        let err = r.bind(entry("ns", "p", "u", "a", "", 1)).unwrap_err();
        assert!(err.to_string().contains("ns/p"), "{err}");
    }

    #[test]
    fn list_is_ordered_for_status() {
        let r = Registry::new();
        r.bind(entry("b", "p", "u", "a", "c3", 3)).unwrap();
        r.bind(entry("a", "q", "u", "z", "c2", 2)).unwrap();
        r.bind(entry("a", "q", "u", "b", "c1", 1)).unwrap();
        let ids: Vec<_> = r
            .list()
            .iter()
            .map(|e| e.container_id().to_owned())
            .collect();
        assert_eq!(ids, ["c1", "c2", "c3"]);
    }
}
