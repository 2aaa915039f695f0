//! Telling rampartd which cgroup a container runs in (and when it is gone), so the kernel events
//! rampart-audit sees by cgroup id map to pods. What was bound is also kept here
//! ([`KnownContainers`]): the Hello rampart-nri sends at every reconnect carries it, so a restarted
//! rampartd gets its registry back without waiting for the runtime to Synchronize again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rampart_protos::agent::BindRequest;
use rampart_protos::nri::{Container, PodSandbox};

use crate::cgroup::{self, CgroupError};
use crate::daemon::{Daemon, DaemonError};
use crate::workload;

/// The containers rampart-nri has bound and not unbound, by container id.
#[derive(Debug, Clone, Default)]
pub struct KnownContainers(Arc<Mutex<BTreeMap<String, BindRequest>>>);

impl KnownContainers {
    /// What to announce to rampartd, in container id order.
    pub fn list(&self) -> Vec<BindRequest> {
        self.lock().values().cloned().collect()
    }

    fn insert(&self, container_id: &str, req: BindRequest) {
        self.lock().insert(container_id.to_owned(), req);
    }

    fn remove(&self, container_id: &str) {
        self.lock().remove(container_id);
    }

    // Each update is one map operation: a poisoned lock still holds a consistent map.
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BindRequest>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct Binder<D> {
    daemon: Arc<D>,
    known: KnownContainers,
    /// Found once: the hierarchy does not move while the node runs.
    v2_root: Result<PathBuf, String>,
    timeout: Duration,
}

impl<D: Daemon> Binder<D> {
    pub fn new(daemon: Arc<D>, sys_fs_cgroup: &Path, timeout: Duration) -> Self {
        let v2_root = cgroup::v2_root(sys_fs_cgroup).map_err(|e| {
            tracing::error!(error = %e, "containers' cgroups cannot be bound to workloads");
            e.to_string()
        });
        Binder {
            daemon,
            known: KnownContainers::default(),
            v2_root,
            timeout,
        }
    }

    /// The containers bound so far (shared: it follows later binds and unbinds).
    pub fn known(&self) -> KnownContainers {
        self.known.clone()
    }

    /// The BindRequest for a container whose cgroup exists (from runc create on).
    pub fn request(&self, pod: &PodSandbox, c: &Container) -> Result<BindRequest, BindError> {
        let root = self
            .v2_root
            .as_ref()
            .map_err(|e| BindError::NoV2(e.clone()))?;
        let path = c
            .linux
            .as_ref()
            .map(|l| l.cgroups_path.as_str())
            .unwrap_or("");
        let cg = cgroup::resolve(root, path)?;
        Ok(BindRequest {
            workload: Some(workload::workload(pod, c)),
            cgroup_id: cg.id,
            cgroup_path: cg.dir.display().to_string(),
            pid: c.pid,
            // The policies annotation is added only with the injected rules.
            filtered: c
                .annotations
                .contains_key(crate::adjust::POLICIES_ANNOTATION),
        })
    }

    /// Binds, logging failures: a container whose events cannot be mapped still runs (its
    /// seccomp filter is already in place), and the runtime must not wait on rampartd here. The
    /// error says why (for the caller that refuses a required container).
    pub async fn bind(&self, pod: &PodSandbox, c: &Container) -> Result<BindRequest, String> {
        let req = match self.request(pod, c) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(container_id = %c.id, error = %e, "cannot bind the container's cgroup; kernel events from it will not map to its pod");
                return Err(e.to_string());
            }
        };
        let sent = req.clone();
        // Kept even if this bind fails: the next reconnect's Hello announces it again.
        self.known.insert(&c.id, req.clone());
        let started = std::time::Instant::now();
        let res = tokio::time::timeout(self.timeout, self.daemon.bind(req))
            .await
            .unwrap_or(Err(DaemonError::Timeout {
                call: "BindContainer",
                timeout: self.timeout,
            }));
        match res {
            Ok(()) => {
                tracing::info!(container_id = %c.id, cgroup_id = sent.cgroup_id, pid = c.pid, bind_us = started.elapsed().as_micros() as u64, "bound");
                Ok(sent)
            }
            Err(e) => {
                tracing::error!(container_id = %c.id, cgroup_id = sent.cgroup_id, error = %e, "BindContainer failed; kernel events from this container may not map to its pod, and rampartd's kernel enforcement (ingress rules) may not hold for it");
                Err(e.to_string())
            }
        }
    }

    pub async fn unbind(&self, c: &Container) {
        self.known.remove(&c.id);
        let res = tokio::time::timeout(self.timeout, self.daemon.unbind(&c.id))
            .await
            .unwrap_or(Err(DaemonError::Timeout {
                call: "UnbindContainer",
                timeout: self.timeout,
            }));
        if let Err(e) = res {
            tracing::warn!(container_id = %c.id, error = %e, "UnbindContainer failed; rampartd keeps a stale binding until it reconciles");
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("{0}")]
    NoV2(String),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
}
