//! Stopping and removing pods, idempotently: teardown runs after failures, on half-made pods,
//! and sometimes twice.

use std::time::Duration;

use k8s_cri::v1 as cri;

use super::client::{Cri, long_request, request};
use super::error::CriError;
use super::node;
use super::pod::short_id;
use super::status::{ContainerFilter, ContainerState, PodFilter};

impl Cri {
    /// Stops the pod's containers (SIGTERM, then SIGKILL after `grace`) and the sandbox.
    #[tracing::instrument(skip(self))]
    pub async fn stop_pod(&self, pod_id: &str, grace: Duration) -> Result<(), CriError> {
        let containers = self
            .list_containers(&ContainerFilter::in_pod(pod_id))
            .await?;
        for c in containers
            .iter()
            .filter(|c| c.state != ContainerState::Exited)
        {
            let req = cri::StopContainerRequest {
                container_id: c.id.clone(),
                timeout: i64::try_from(grace.as_secs()).unwrap_or(i64::MAX),
            };
            match self
                .runtime
                .clone()
                .stop_container(long_request(req, grace))
                .await
            {
                Ok(_) => {}
                Err(s) if s.code() == tonic::Code::NotFound => {}
                Err(s) => return Err(CriError::rpc("stop container", &c.id, s)),
            }
        }
        let req = cri::StopPodSandboxRequest {
            pod_sandbox_id: pod_id.into(),
        };
        match self.runtime.clone().stop_pod_sandbox(request(req)).await {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
            Err(s) => Err(CriError::rpc("stop pod", pod_id, s)),
        }
    }

    /// Stops and removes the pod, its containers and its log directory. A pod that is already
    /// gone is not an error, so teardown can run twice.
    #[tracing::instrument(skip(self))]
    pub async fn remove_pod(&self, pod_id: &str) -> Result<(), CriError> {
        let status = match self.pod_status(pod_id).await {
            Ok(s) => s.status.unwrap_or_default(),
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        };
        // Teardown: no grace, SIGKILL straight away (a shell as pid 1 ignores SIGTERM anyway).
        self.stop_pod(pod_id, Duration::ZERO).await?;
        for c in self
            .list_containers(&ContainerFilter::in_pod(pod_id))
            .await?
        {
            let req = cri::RemoveContainerRequest {
                container_id: c.id.clone(),
            };
            match self.runtime.clone().remove_container(request(req)).await {
                Ok(_) => {}
                Err(s) if s.code() == tonic::Code::NotFound => {}
                Err(s) => return Err(CriError::rpc("remove container", &c.id, s)),
            }
        }
        let req = cri::RemovePodSandboxRequest {
            pod_sandbox_id: pod_id.into(),
        };
        match self.runtime.clone().remove_pod_sandbox(request(req)).await {
            Ok(_) => {}
            Err(s) if s.code() == tonic::Code::NotFound => {}
            Err(s) => return Err(CriError::rpc("remove pod", pod_id, s)),
        }
        // Like a kubelet, logs go with the pod; only ever our own layout under the node dir.
        let md = status.metadata.unwrap_or_default();
        if !md.name.is_empty() && !md.namespace.is_empty() && !md.uid.is_empty() {
            let dir = node::pod_log_dir(self.node_dir(), &md.namespace, &md.name, &md.uid);
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "could not remove pod logs")
                }
            }
        }
        for failure in node::remove_pod_cgroups(&md.uid).await {
            tracing::warn!(%failure, "could not remove pod cgroup");
        }
        tracing::info!("pod removed");
        Ok(())
    }

    /// Removes every pod sandbox on the node (teardown). Keeps going past failures and names
    /// them all at the end; returns how many pods were removed.
    pub async fn remove_all_pods(&self) -> Result<usize, CriError> {
        let pods = self.list_pods(&PodFilter::default()).await?;
        let mut removed = 0;
        let mut failures = Vec::new();
        for p in &pods {
            match self.remove_pod(&p.id).await {
                Ok(()) => removed += 1,
                Err(e) => failures.push(format!("{} ({}): {e}", p.full_name(), short_id(&p.id))),
            }
        }
        if failures.is_empty() {
            Ok(removed)
        } else {
            Err(CriError::RemoveFailed { failures })
        }
    }
}
