//! Who a container is, for rampartd and for the seccomp agent, from what NRI says about it.

use rampart_protos::agent::Workload;
use rampart_protos::nri::{Container, PodSandbox};

/// CRI annotations containerd puts on every container's OCI spec (NRI passes them along).
pub mod cri {
    pub const CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
    pub const CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";
    pub const IMAGE_NAME: &str = "io.kubernetes.cri.image-name";
    /// `CONTAINER_TYPE`'s value for the pause container.
    pub const TYPE_SANDBOX: &str = "sandbox";
}

/// The version prefix of `listenerMetadata`, so the agent can tell formats apart later.
pub const METADATA_PREFIX: &str = "rampart/v1";

pub fn workload(pod: &PodSandbox, c: &Container) -> Workload {
    let name = if c.name.is_empty() {
        c.annotations
            .get(cri::CONTAINER_NAME)
            .cloned()
            .unwrap_or_default()
    } else {
        c.name.clone()
    };
    Workload {
        namespace: pod.namespace.clone(),
        pod_name: pod.name.clone(),
        pod_uid: pod.uid.clone(),
        pod_labels: pod.labels.clone(),
        pod_annotations: pod.annotations.clone(),
        container_name: name,
        container_id: c.id.clone(),
        // NRI 0.8's Container has no image field; containerd's CRI annotation has it.
        image: c
            .annotations
            .get(cri::IMAGE_NAME)
            .cloned()
            .unwrap_or_default(),
        pod_sandbox_id: if c.pod_sandbox_id.is_empty() {
            pod.id.clone()
        } else {
            c.pod_sandbox_id.clone()
        },
    }
}

/// The pause container. NRI only sends CreateContainer for application containers, but if a
/// runtime ever sends the sandbox, rampart must not put a filter on the pod's infrastructure.
pub fn is_sandbox(pod: &PodSandbox, c: &Container) -> bool {
    (!c.id.is_empty() && c.id == pod.id)
        || c.annotations.get(cri::CONTAINER_TYPE).map(String::as_str) == Some(cri::TYPE_SANDBOX)
}

/// `<namespace>/<pod>/<container>`, for logs and messages.
pub fn display(w: &Workload) -> String {
    format!("{}/{}/{}", w.namespace, w.pod_name, w.container_name)
}

/// What the seccomp agent gets as `listenerMetadata` (runc passes it verbatim with the fd).
pub fn listener_metadata(w: &Workload) -> String {
    format!("{METADATA_PREFIX} {}", display(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> PodSandbox {
        PodSandbox {
            id: "sb1".into(),
            name: "web-7d9".into(),
            uid: "u-1".into(),
            namespace: "shop".into(),
            labels: [("app".to_string(), "nginx".to_string())].into(),
            ..Default::default()
        }
    }

    #[test]
    fn builds_the_workload_from_pod_and_container() {
        let c = Container {
            id: "c1".into(),
            pod_sandbox_id: "sb1".into(),
            name: "nginx".into(),
            annotations: [(cri::IMAGE_NAME.to_string(), "nginx:1.25".to_string())].into(),
            ..Default::default()
        };
        let w = workload(&pod(), &c);
        assert_eq!(w.namespace, "shop");
        assert_eq!(w.pod_name, "web-7d9");
        assert_eq!(w.pod_uid, "u-1");
        assert_eq!(w.pod_labels["app"], "nginx");
        assert_eq!(w.container_name, "nginx");
        assert_eq!(w.container_id, "c1");
        assert_eq!(w.image, "nginx:1.25");
        assert_eq!(w.pod_sandbox_id, "sb1");
        assert_eq!(listener_metadata(&w), "rampart/v1 shop/web-7d9/nginx");
    }

    #[test]
    fn recognises_the_pause_container() {
        let by_id = Container {
            id: "sb1".into(),
            ..Default::default()
        };
        let by_type = Container {
            id: "x".into(),
            annotations: [(cri::CONTAINER_TYPE.to_string(), "sandbox".to_string())].into(),
            ..Default::default()
        };
        let app = Container {
            id: "c1".into(),
            annotations: [(cri::CONTAINER_TYPE.to_string(), "container".to_string())].into(),
            ..Default::default()
        };
        assert!(is_sandbox(&pod(), &by_id));
        assert!(is_sandbox(&pod(), &by_type));
        assert!(!is_sandbox(&pod(), &app));
    }
}
