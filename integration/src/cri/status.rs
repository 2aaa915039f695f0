//! Reading what runs: pod and container listings, statuses, the pod IP, and the verbose info
//! containerd attaches (the OCI runtime spec, the pid).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use k8s_cri::v1 as cri;
use serde::Serialize;
use serde_json::Value;

use super::client::{Cri, request};
use super::error::CriError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    Created,
    Running,
    Exited,
    Unknown,
}

impl ContainerState {
    pub(crate) fn from_cri(state: i32) -> ContainerState {
        match cri::ContainerState::try_from(state) {
            Ok(cri::ContainerState::ContainerCreated) => ContainerState::Created,
            Ok(cri::ContainerState::ContainerRunning) => ContainerState::Running,
            Ok(cri::ContainerState::ContainerExited) => ContainerState::Exited,
            _ => ContainerState::Unknown,
        }
    }
}

impl fmt::Display for ContainerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Exited => "exited",
            ContainerState::Unknown => "unknown",
        })
    }
}

/// A pod sandbox as ListPodSandbox reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodSummary {
    pub id: String,
    pub name: String,
    pub namespace: String,
    pub uid: String,
    /// The sandbox is ready (not stopped).
    pub ready: bool,
    /// Nanoseconds since the epoch.
    pub created_at: i64,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

impl PodSummary {
    /// `namespace/name`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    fn from_cri(p: cri::PodSandbox) -> PodSummary {
        let md = p.metadata.unwrap_or_default();
        PodSummary {
            ready: p.state == cri::PodSandboxState::SandboxReady as i32,
            id: p.id,
            name: md.name,
            namespace: md.namespace,
            uid: md.uid,
            created_at: p.created_at,
            labels: sorted(p.labels),
            annotations: sorted(p.annotations),
        }
    }
}

/// A container as ListContainers reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerSummary {
    pub id: String,
    pub pod_id: String,
    pub name: String,
    pub image: String,
    pub state: ContainerState,
    /// Nanoseconds since the epoch.
    pub created_at: i64,
    pub labels: BTreeMap<String, String>,
}

impl ContainerSummary {
    fn from_cri(c: cri::Container) -> ContainerSummary {
        ContainerSummary {
            name: c.metadata.unwrap_or_default().name,
            image: c.image.map(|i| i.image).unwrap_or_default(),
            state: ContainerState::from_cri(c.state),
            id: c.id,
            pod_id: c.pod_sandbox_id,
            created_at: c.created_at,
            labels: sorted(c.labels),
        }
    }
}

/// ContainerStatus with verbose info: what tests assert on.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerStatus {
    pub id: String,
    pub name: String,
    pub state: ContainerState,
    pub exit_code: i32,
    pub reason: String,
    pub message: String,
    /// Nanoseconds since the epoch; 0 when not yet.
    pub started_at: i64,
    pub finished_at: i64,
    pub image: String,
    /// Absolute path of the container's CRI log file.
    pub log_path: PathBuf,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// containerd's verbose info: each key of the info map, its value parsed as JSON when it is
    /// JSON. containerd puts everything under `info` (pid, runtimeSpec, sandboxID, …).
    pub info: Value,
    /// The status as CRI returned it.
    pub raw: cri::ContainerStatus,
}

impl ContainerStatus {
    /// containerd's verbose info object (`info.info`).
    pub fn verbose(&self) -> Option<&Value> {
        self.info.get("info")
    }

    /// The OCI runtime spec containerd generated (what runc got as config.json, before any
    /// runtime wrapper rewrote it).
    pub fn runtime_spec(&self) -> Option<&Value> {
        self.verbose()?.get("runtimeSpec")
    }

    /// The runtime spec's `linux.seccomp`, `None` when the container runs unconfined.
    pub fn seccomp(&self) -> Option<&Value> {
        self.runtime_spec()?
            .get("linux")?
            .get("seccomp")
            .filter(|v| !v.is_null())
    }

    /// The container's init pid on the node, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.verbose()?
            .get("pid")?
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
            .filter(|&p| p != 0)
    }

    /// What `rampart-kubelet inspect` prints, shaped like `crictl inspect`.
    pub fn inspect_json(&self) -> Value {
        serde_json::json!({
            "status": self.raw,
            "info": self.verbose().cloned().unwrap_or_else(|| self.info.clone()),
        })
    }
}

/// Which pods to list. Empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct PodFilter {
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub id: Option<String>,
    /// Every label must match (server side).
    pub labels: BTreeMap<String, String>,
    pub ready_only: bool,
}

impl PodFilter {
    pub fn named(namespace: impl Into<String>, name: impl Into<String>) -> PodFilter {
        PodFilter {
            namespace: Some(namespace.into()),
            name: Some(name.into()),
            ..PodFilter::default()
        }
    }

    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> PodFilter {
        self.labels.insert(key.into(), value.into());
        self
    }
}

/// Which containers to list. Empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct ContainerFilter {
    pub pod_id: Option<String>,
    pub name: Option<String>,
    pub id: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub running_only: bool,
}

impl ContainerFilter {
    pub fn in_pod(pod_id: impl Into<String>) -> ContainerFilter {
        ContainerFilter {
            pod_id: Some(pod_id.into()),
            ..ContainerFilter::default()
        }
    }
}

impl Cri {
    /// Pod sandboxes, oldest first.
    pub async fn list_pods(&self, filter: &PodFilter) -> Result<Vec<PodSummary>, CriError> {
        let req = cri::ListPodSandboxRequest {
            filter: Some(cri::PodSandboxFilter {
                id: filter.id.clone().unwrap_or_default(),
                state: filter.ready_only.then_some(cri::PodSandboxStateValue {
                    state: cri::PodSandboxState::SandboxReady as i32,
                }),
                label_selector: filter
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            }),
        };
        let resp = self
            .runtime
            .clone()
            .list_pod_sandbox(request(req))
            .await
            .map_err(|s| CriError::rpc("list pods", "", s))?;
        let mut pods: Vec<PodSummary> = resp
            .into_inner()
            .items
            .into_iter()
            .map(PodSummary::from_cri)
            .filter(|p| {
                filter
                    .namespace
                    .as_ref()
                    .is_none_or(|ns| *ns == p.namespace)
            })
            .filter(|p| filter.name.as_ref().is_none_or(|n| *n == p.name))
            .collect();
        pods.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(pods)
    }

    /// Containers, oldest first.
    pub async fn list_containers(
        &self,
        filter: &ContainerFilter,
    ) -> Result<Vec<ContainerSummary>, CriError> {
        let req = cri::ListContainersRequest {
            filter: Some(cri::ContainerFilter {
                id: filter.id.clone().unwrap_or_default(),
                state: filter.running_only.then_some(cri::ContainerStateValue {
                    state: cri::ContainerState::ContainerRunning as i32,
                }),
                pod_sandbox_id: filter.pod_id.clone().unwrap_or_default(),
                label_selector: filter
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            }),
        };
        let resp = self
            .runtime
            .clone()
            .list_containers(request(req))
            .await
            .map_err(|s| CriError::rpc("list containers", "", s))?;
        let mut containers: Vec<ContainerSummary> = resp
            .into_inner()
            .containers
            .into_iter()
            .map(ContainerSummary::from_cri)
            .filter(|c| filter.name.as_ref().is_none_or(|n| *n == c.name))
            .collect();
        containers.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(containers)
    }

    /// PodSandboxStatus as CRI returns it (verbose: with containerd's info map).
    pub async fn pod_status(
        &self,
        pod_id: &str,
    ) -> Result<cri::PodSandboxStatusResponse, CriError> {
        let req = cri::PodSandboxStatusRequest {
            pod_sandbox_id: pod_id.into(),
            verbose: true,
        };
        self.runtime
            .clone()
            .pod_sandbox_status(request(req))
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| CriError::rpc("pod status", format!("of pod {pod_id}"), s))
    }

    /// The pod's IP on the CNI bridge; `None` for a host-network pod (or one without network).
    pub async fn pod_ip(&self, pod_id: &str) -> Result<Option<IpAddr>, CriError> {
        let status = self.pod_status(pod_id).await?;
        let ip = status
            .status
            .and_then(|s| s.network)
            .map(|n| n.ip)
            .unwrap_or_default();
        if ip.is_empty() {
            return Ok(None);
        }
        ip.parse().map(Some).map_err(|_| {
            CriError::invalid(
                "pod IP from containerd",
                format!("{ip:?} is not an IP address"),
            )
        })
    }

    /// PodSandboxStatus with containerd's verbose info parsed, shaped like `crictl inspectp`.
    pub async fn pod_inspect_json(&self, pod_id: &str) -> Result<Value, CriError> {
        let resp = self.pod_status(pod_id).await?;
        let info = parse_info(resp.info);
        Ok(serde_json::json!({
            "status": resp.status,
            "info": info.get("info").cloned().unwrap_or(info),
        }))
    }

    /// ContainerStatus with verbose info.
    #[tracing::instrument(skip(self))]
    pub async fn container_status(&self, container_id: &str) -> Result<ContainerStatus, CriError> {
        let req = cri::ContainerStatusRequest {
            container_id: container_id.into(),
            verbose: true,
        };
        let resp = self
            .runtime
            .clone()
            .container_status(request(req))
            .await
            .map_err(|s| {
                CriError::rpc(
                    "container status",
                    format!("of container {container_id}"),
                    s,
                )
            })?
            .into_inner();
        let raw = resp.status.ok_or_else(|| {
            CriError::invalid(
                "container status",
                format!("containerd returned none for {container_id}"),
            )
        })?;
        Ok(ContainerStatus {
            id: raw.id.clone(),
            name: raw.metadata.clone().unwrap_or_default().name,
            state: ContainerState::from_cri(raw.state),
            exit_code: raw.exit_code,
            reason: raw.reason.clone(),
            message: raw.message.clone(),
            started_at: raw.started_at,
            finished_at: raw.finished_at,
            image: raw.image.clone().map(|i| i.image).unwrap_or_default(),
            log_path: PathBuf::from(&raw.log_path),
            labels: sorted(raw.labels.clone()),
            annotations: sorted(raw.annotations.clone()),
            info: parse_info(resp.info),
            raw,
        })
    }
}

/// containerd's verbose info map: values are JSON documents as strings; keep anything that does
/// not parse as a plain string rather than failing a status call over it.
pub(crate) fn parse_info(info: HashMap<String, String>) -> Value {
    let map = info
        .into_iter()
        .map(|(k, v)| {
            let value = serde_json::from_str(&v).unwrap_or(Value::String(v));
            (k, value)
        })
        .collect();
    Value::Object(map)
}

fn sorted(map: HashMap<String, String>) -> BTreeMap<String, String> {
    map.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_with_info(info: &str) -> ContainerStatus {
        ContainerStatus {
            id: "c".into(),
            name: "c".into(),
            state: ContainerState::Running,
            exit_code: 0,
            reason: String::new(),
            message: String::new(),
            started_at: 0,
            finished_at: 0,
            image: String::new(),
            log_path: PathBuf::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            info: parse_info(HashMap::from([("info".to_owned(), info.to_owned())])),
            raw: cri::ContainerStatus::default(),
        }
    }

    #[test]
    fn reads_seccomp_and_pid_from_verbose_info() {
        let s = status_with_info(
            r#"{"pid":4242,"runtimeSpec":{"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","listenerPath":"/run/rampart/seccomp.sock"}}}}"#,
        );
        assert_eq!(s.pid(), Some(4242));
        assert_eq!(
            s.seccomp().unwrap()["listenerPath"],
            "/run/rampart/seccomp.sock"
        );
        assert_eq!(s.inspect_json()["info"]["pid"], 4242);
    }

    #[test]
    fn unconfined_has_no_seccomp_and_bad_json_is_kept_as_text() {
        let s = status_with_info(r#"{"pid":0,"runtimeSpec":{"linux":{}}}"#);
        assert!(s.seccomp().is_none());
        assert_eq!(s.pid(), None);
        let s = status_with_info("not json");
        assert_eq!(s.info["info"], "not json");
        assert!(s.runtime_spec().is_none());
    }

    #[test]
    fn container_state_from_cri_values() {
        assert_eq!(ContainerState::from_cri(1), ContainerState::Running);
        assert_eq!(ContainerState::from_cri(2), ContainerState::Exited);
        assert_eq!(ContainerState::from_cri(99), ContainerState::Unknown);
    }
}
