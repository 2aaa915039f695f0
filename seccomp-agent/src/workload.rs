//! Who a notify fd belongs to, from what runc hands over: the OCI state's annotations (containerd's
//! CRI sets the pod and container names there) and the profile's `listenerMetadata`, which
//! rampart-nri fills with the workload's identity.

use oci_spec::runtime::ContainerProcessState;

/// CRI annotations that containerd puts on every container's OCI spec.
pub mod annotations {
    pub const SANDBOX_NAME: &str = "io.kubernetes.cri.sandbox-name";
    pub const SANDBOX_NAMESPACE: &str = "io.kubernetes.cri.sandbox-namespace";
    pub const SANDBOX_UID: &str = "io.kubernetes.cri.sandbox-uid";
    pub const CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";
    pub const CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
    pub const IMAGE_NAME: &str = "io.kubernetes.cri.image-name";
    /// Set by rampart-nri: the pod's labels as a JSON object (CRI doesn't pass labels to the
    /// runtime, and policies select pods by label).
    pub const POD_LABELS: &str = "rampart.dev/pod-labels";
    /// Set by rampart-nri when the plan left execve to the file guard (`exec_by_guard`).
    pub use rampart_protos::agent::{EXEC_GUARD_ANNOTATION as EXEC_GUARD, EXEC_GUARD_FANOTIFY};
}

pub use rampart_protos::agent::{READ_OPENS_LABEL, READ_OPENS_SECCOMP};

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Workload {
    pub container_id: String,
    pub namespace: String,
    pub pod_name: String,
    pub pod_uid: String,
    pub container_name: String,
    pub image: String,
    /// The pid runc reported: the container's init, or the exec'd process.
    pub pid: i32,
    /// `listenerMetadata` as set in the profile, verbatim.
    pub metadata: Option<String>,
    pub pod_labels: std::collections::BTreeMap<String, String>,
    /// The fd is the container's own (runc create: its init and everything it starts), not a
    /// process exec'd into it later. The container ends when this fd's tasks do.
    pub is_init: bool,
    /// The filter notifies no execve: the file guard decides every exec of the container.
    #[serde(default)]
    pub exec_by_guard: bool,
}

impl Workload {
    pub fn from_state(state: &ContainerProcessState) -> Self {
        let st = state.state();
        let ann = st.annotations().clone().unwrap_or_default();
        let get = |k: &str| ann.get(k).cloned().unwrap_or_default();
        Self {
            container_id: st.id().clone(),
            namespace: get(annotations::SANDBOX_NAMESPACE),
            pod_name: get(annotations::SANDBOX_NAME),
            pod_uid: get(annotations::SANDBOX_UID),
            container_name: get(annotations::CONTAINER_NAME),
            image: get(annotations::IMAGE_NAME),
            pid: *state.pid(),
            metadata: state.metadata().clone(),
            pod_labels: ann
                .get(annotations::POD_LABELS)
                .and_then(|j| serde_json::from_str(j).ok())
                .unwrap_or_default(),
            is_init: *st.status() == oci_spec::runtime::ContainerState::Creating,
            exec_by_guard: ann.get(annotations::EXEC_GUARD).map(String::as_str)
                == Some(annotations::EXEC_GUARD_FANOTIFY),
        }
    }

    /// The pod asked to keep every open on the seccomp path (`READ_OPENS_LABEL`).
    pub fn reads_by_seccomp(&self) -> bool {
        self.pod_labels.get(READ_OPENS_LABEL).map(String::as_str) == Some(READ_OPENS_SECCOMP)
    }

    /// The identity as the agent API carries it.
    pub fn to_proto(&self) -> rampart_protos::agent::Workload {
        rampart_protos::agent::Workload {
            namespace: self.namespace.clone(),
            pod_name: self.pod_name.clone(),
            pod_uid: self.pod_uid.clone(),
            pod_labels: self.pod_labels.clone(),
            container_name: self.container_name.clone(),
            container_id: self.container_id.clone(),
            image: self.image.clone(),
            ..Default::default()
        }
    }

    /// The identity policies select on.
    pub fn policy_workload(&self) -> rampart_policy::Workload {
        rampart_policy::Workload {
            namespace: self.namespace.clone(),
            pod_name: self.pod_name.clone(),
            pod_labels: self.pod_labels.clone(),
            container_name: self.container_name.clone(),
            image: self.image.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cri_annotations_from_runc_state() {
        let json = r#"{"ociVersion":"1.0.2","fds":["seccompFd"],"pid":4242,"metadata":"rampart:v1",
          "state":{"ociVersion":"1.0.2","id":"abc123","status":"creating","pid":4242,"bundle":"/b",
          "annotations":{"io.kubernetes.cri.sandbox-name":"vulnerable-nginx-pod",
            "io.kubernetes.cri.sandbox-namespace":"default","io.kubernetes.cri.container-name":"nginx",
            "io.kubernetes.cri.image-name":"rampart.local/nginx:latest"}}}"#;
        let state: ContainerProcessState = serde_json::from_str(json).unwrap();
        let w = Workload::from_state(&state);
        assert_eq!(w.container_id, "abc123");
        assert_eq!(w.pod_name, "vulnerable-nginx-pod");
        assert_eq!(w.namespace, "default");
        assert_eq!(w.container_name, "nginx");
        assert_eq!(w.image, "rampart.local/nginx:latest");
        assert_eq!(w.pid, 4242);
        assert_eq!(w.metadata.as_deref(), Some("rampart:v1"));
        assert!(w.is_init, "status creating: runc create's init");
    }
}
