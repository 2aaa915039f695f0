//! A small kubelet over containerd's CRI socket: runs pods the way a kubelet would (same
//! labels, cgroup parent and log layout), for the node tests, the demo and `rampart-kubelet`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rampart_integration::cri::CriError> {
//! use rampart_integration::cri::{ContainerSpec, Cri, PodSpec, TestPod};
//! use std::time::Duration;
//!
//! let cri = Cri::connect_default().await?;
//! let pod = TestPod::run(
//!     &cri,
//!     &PodSpec::new("web").label("app", "nginx"),
//!     &[ContainerSpec::new("nginx", "rampart.local/nginx:latest")],
//! )
//! .await?;
//! let out = pod.exec("nginx", &["cat", "/etc/passwd"]).await?;
//! assert_eq!(out.exit_code, 0);
//! println!("{:?}", pod.ip);
//! pod.remove().await?;
//! # Ok(()) }
//! ```

mod client;
mod error;
mod exec;
mod find;
mod logs;
mod node;
mod pod;
mod spec;
mod status;
mod teardown;
mod test_pod;

pub use client::Cri;
pub use error::CriError;
pub use exec::ExecOutput;
pub use logs::{LogLine, Stream, join_partials, log_text, parse_log, read_log};
pub use node::{
    CGROUP_ROOT, DEFAULT_NODE_DIR, NODE_DIR_ENV, SOCKET_ENV, cgroup_parent, default_socket,
    node_dir, pod_log_dir,
};
pub use pod::{Container, Pod, RunOptions, RunningPod, short_id};
pub use spec::{
    ContainerSpec, LABEL_CONTAINER_NAME, LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID,
    PodSpec, SeccompProfile, parse_key_value,
};
pub use status::{
    ContainerFilter, ContainerState, ContainerStatus, ContainerSummary, PodFilter, PodSummary,
};
pub use test_pod::{TestPod, test_node, unique_name};

/// The generated CRI types, for what this module does not wrap.
pub use k8s_cri::v1 as api;
