//! The kill-pod response: SIGKILL every container of a pod through containerd's CRI, the way
//! `crictl stop --timeout 0` does.
//!
//! Only the containers are stopped. The sandbox (pause process, network namespace, IP) stays:
//! it belongs to the kubelet, which sees the containers exit with 137 and acts on the pod's
//! restartPolicy: `Always` (every Deployment) restarts them with back-off, `OnFailure` too (137
//! is a failure), `Never` leaves the pod Failed. Keeping a workload down for good is the API
//! server's business (scale to zero, delete the pod), not the node's.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use k8s_cri::v1 as api;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tokio::task::JoinSet;
use tonic::transport::Channel;
use tracing::Instrument;

use super::cri;

/// Deadline of the listing calls.
const LIST_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline of each StopContainer: containerd answers once the container has exited, which
/// after SIGKILL takes milliseconds unless a process is stuck in the kernel (D state).
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Which pod: its sandbox id, or its namespace and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodRef {
    /// The CRI pod sandbox id (what NRI and the registry know the pod by).
    SandboxId(String),
    /// Kubernetes namespace and pod name. Every sandbox of that pod is covered, including an old
    /// one the kubelet has not removed yet.
    Name { namespace: String, name: String },
}

impl PodRef {
    pub fn sandbox(id: impl Into<String>) -> PodRef {
        PodRef::SandboxId(id.into())
    }

    pub fn named(namespace: impl Into<String>, name: impl Into<String>) -> PodRef {
        PodRef::Name {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for PodRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PodRef::SandboxId(id) => write!(f, "sandbox {id}"),
            PodRef::Name { namespace, name } => write!(f, "{namespace}/{name}"),
        }
    }
}

/// What kill-pod did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KilledPod {
    pub namespace: String,
    pub name: String,
    /// The sandboxes whose containers were looked at, oldest first.
    pub sandbox_ids: Vec<String>,
    /// Containers that were created or running and have now been stopped with SIGKILL.
    pub stopped: Vec<PodContainer>,
    /// Containers that had already exited (or vanished) before they could be stopped.
    pub already_exited: Vec<PodContainer>,
}

/// One container of the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodContainer {
    pub id: String,
    pub name: String,
    pub sandbox_id: String,
}

/// Why kill-pod failed. Messages say what failed and what to do.
#[derive(Debug, thiserror::Error)]
pub enum KillPodError {
    #[error(
        "containerd's CRI socket {} does not exist: is containerd running? Point rampartd at \
         the socket containerd listens on (RAMPART_CRI_SOCKET; default {})",
        .path.display(),
        cri::DEFAULT_SOCKET
    )]
    SocketMissing { path: PathBuf },

    #[error(
        "containerd's CRI at {} does not answer: {reason} (is containerd running, and is \
         rampartd root so it may open the socket?)",
        .path.display()
    )]
    Unreachable { path: PathBuf, reason: String },

    #[error("CRI {op} for {target} failed: {reason}")]
    Rpc {
        op: &'static str,
        target: String,
        reason: String,
    },

    #[error("pod {pod} not found on this node (already deleted, or not a CRI pod)")]
    PodNotFound { pod: String },

    #[error(
        "pod {pod}: could not stop {}; stopped: {}. The pod may still run: retry, or stop it by hand (crictl stop --timeout 0 <id>)",
        .failed.join("; "),
        list_or_none(.stopped)
    )]
    StopFailed {
        pod: String,
        stopped: Vec<String>,
        failed: Vec<String>,
    },
}

impl KillPodError {
    /// True when the pod was not there: a caller may count that as already done.
    pub fn is_not_found(&self) -> bool {
        matches!(self, KillPodError::PodNotFound { .. })
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// Stops pods through containerd's CRI. Cheap to create; the connection is made on first use
/// and re-made after containerd restarts, so rampartd may start before containerd does.
#[derive(Debug)]
pub struct PodKiller {
    socket: PathBuf,
    runtime: OnceLock<RuntimeServiceClient<Channel>>,
}

impl PodKiller {
    pub fn new(socket: impl Into<PathBuf>) -> PodKiller {
        PodKiller {
            socket: socket.into(),
            runtime: OnceLock::new(),
        }
    }

    /// At `$RAMPART_CRI_SOCKET`, or containerd's default socket.
    pub fn from_env() -> PodKiller {
        PodKiller::new(cri::default_socket())
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Stops every container of the pod with SIGKILL (StopContainer, timeout 0), all at once so
    /// no container keeps running while another is being stopped. The sandbox is left to the
    /// kubelet. Containers that already exited are reported, not stopped again.
    pub async fn kill_pod(&self, pod: &PodRef) -> Result<KilledPod, KillPodError> {
        let span = tracing::info_span!("kill_pod", pod = %pod);
        async {
            let result = self.kill(pod).await;
            match &result {
                Ok(k) => tracing::info!(
                    stopped = k.stopped.len(),
                    already_exited = k.already_exited.len(),
                    "pod killed"
                ),
                Err(e) => tracing::warn!(error = %e, "kill-pod failed"),
            }
            result
        }
        .instrument(span)
        .await
    }

    async fn kill(&self, pod: &PodRef) -> Result<KilledPod, KillPodError> {
        // Checked every time: a lazy channel would report a missing socket only as "transport
        // error", and the socket may come and go with containerd.
        if !self.socket.exists() {
            return Err(KillPodError::SocketMissing {
                path: self.socket.clone(),
            });
        }
        let sandboxes = self.sandboxes(pod).await?;
        let Some(first) = sandboxes.first() else {
            return Err(KillPodError::PodNotFound {
                pod: pod.to_string(),
            });
        };
        let meta = first.metadata.clone().unwrap_or_default();
        let mut killed = KilledPod {
            namespace: meta.namespace,
            name: meta.name,
            sandbox_ids: sandboxes.iter().map(|s| s.id.clone()).collect(),
            stopped: Vec::new(),
            already_exited: Vec::new(),
        };

        let mut to_stop = Vec::new();
        for sandbox in &sandboxes {
            for c in self.containers(&sandbox.id).await? {
                let container = PodContainer {
                    name: c.metadata.map(|m| m.name).unwrap_or_default(),
                    id: c.id,
                    sandbox_id: c.pod_sandbox_id,
                };
                if c.state == api::ContainerState::ContainerExited as i32 {
                    killed.already_exited.push(container);
                } else {
                    to_stop.push(container);
                }
            }
        }

        let pod_name = format!("{}/{}", killed.namespace, killed.name);
        let mut stops = JoinSet::new();
        for container in to_stop {
            let runtime = self.runtime().clone();
            let span = tracing::info_span!(
                "stop_container",
                pod = %pod_name,
                container = %container.name,
                container_id = %container.id,
            );
            stops.spawn(
                async move { (stop(runtime, &container.id).await, container) }.instrument(span),
            );
        }
        let mut failed = Vec::new();
        while let Some(joined) = stops.join_next().await {
            match joined {
                Ok((Ok(Stopped::Now), c)) => killed.stopped.push(c),
                Ok((Ok(Stopped::AlreadyGone), c)) => killed.already_exited.push(c),
                Ok((Err(reason), c)) => failed.push(format!("{} ({}): {reason}", c.name, c.id)),
                Err(e) => failed.push(format!("a stop task died: {e}")),
            }
        }
        // Completion order is noise: keep records stable from one kill to the next.
        killed
            .stopped
            .sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        killed
            .already_exited
            .sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        if failed.is_empty() {
            Ok(killed)
        } else {
            Err(KillPodError::StopFailed {
                pod: pod_name,
                stopped: killed.stopped.iter().map(|c| c.name.clone()).collect(),
                failed,
            })
        }
    }

    fn runtime(&self) -> &RuntimeServiceClient<Channel> {
        // Made inside the first call because tonic's channel spawns its worker on the current
        // tokio runtime.
        self.runtime
            .get_or_init(|| cri::lazy_runtime_client(&self.socket))
    }

    /// The pod's sandboxes, oldest first.
    async fn sandboxes(&self, pod: &PodRef) -> Result<Vec<api::PodSandbox>, KillPodError> {
        let filter = match pod {
            PodRef::SandboxId(id) => api::PodSandboxFilter {
                id: id.clone(),
                ..Default::default()
            },
            // CRI cannot filter by name; the kubelet's labels would do, but only on pods the
            // kubelet made, so match the metadata.
            PodRef::Name { .. } => api::PodSandboxFilter::default(),
        };
        let req = api::ListPodSandboxRequest {
            filter: Some(filter),
        };
        let resp = self
            .runtime()
            .clone()
            .list_pod_sandbox(cri::request(req, LIST_TIMEOUT))
            .await
            .map_err(|s| self.rpc_error("ListPodSandbox", pod.to_string(), &s))?;
        let mut sandboxes: Vec<api::PodSandbox> = resp
            .into_inner()
            .items
            .into_iter()
            .filter(|s| match pod {
                // containerd also matches id prefixes; a kill must name exactly one pod.
                PodRef::SandboxId(id) => s.id == *id,
                PodRef::Name { namespace, name } => s
                    .metadata
                    .as_ref()
                    .is_some_and(|m| m.namespace == *namespace && m.name == *name),
            })
            .collect();
        sandboxes.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(sandboxes)
    }

    async fn containers(&self, sandbox_id: &str) -> Result<Vec<api::Container>, KillPodError> {
        let req = api::ListContainersRequest {
            filter: Some(api::ContainerFilter {
                pod_sandbox_id: sandbox_id.into(),
                ..Default::default()
            }),
        };
        let resp = self
            .runtime()
            .clone()
            .list_containers(cri::request(req, LIST_TIMEOUT))
            .await
            .map_err(|s| self.rpc_error("ListContainers", format!("sandbox {sandbox_id}"), &s))?;
        Ok(resp
            .into_inner()
            .containers
            .into_iter()
            // The filter is by prefix too.
            .filter(|c| c.pod_sandbox_id == sandbox_id)
            .collect())
    }

    fn rpc_error(&self, op: &'static str, target: String, status: &tonic::Status) -> KillPodError {
        if status.code() == tonic::Code::Unavailable {
            KillPodError::Unreachable {
                path: self.socket.clone(),
                reason: cri::status_text(status),
            }
        } else {
            KillPodError::Rpc {
                op,
                target,
                reason: cri::status_text(status),
            }
        }
    }
}

enum Stopped {
    Now,
    AlreadyGone,
}

async fn stop(mut runtime: RuntimeServiceClient<Channel>, id: &str) -> Result<Stopped, String> {
    let req = api::StopContainerRequest {
        container_id: id.into(),
        // 0: no SIGTERM and grace period, SIGKILL straight away.
        timeout: 0,
    };
    match runtime
        .stop_container(cri::request(req, STOP_TIMEOUT))
        .await
    {
        Ok(_) => {
            tracing::info!("container stopped");
            Ok(Stopped::Now)
        }
        // Removed between the listing and now.
        Err(s) if s.code() == tonic::Code::NotFound => Ok(Stopped::AlreadyGone),
        Err(s) => Err(cri::status_text(&s)),
    }
}
