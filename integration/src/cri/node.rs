//! Where the local node keeps things: the conventions shared with `scripts/node` (which tears
//! them down), so both sides agree on paths without talking to each other.

use std::path::{Path, PathBuf};

/// Env var naming containerd's CRI socket.
pub const SOCKET_ENV: &str = "RAMPART_CRI_SOCKET";
/// Env var naming the node directory (containerd's state, pod logs, …).
pub const NODE_DIR_ENV: &str = "RAMPART_NODE_DIR";
/// The node directory when `RAMPART_NODE_DIR` is unset.
pub const DEFAULT_NODE_DIR: &str = "/var/lib/rampart-node";

/// The cgroup parent every pod goes under; `scripts/node down` removes it in every hierarchy.
pub const CGROUP_ROOT: &str = "/rampart-pods";

/// `$RAMPART_NODE_DIR`, or the default.
pub fn node_dir() -> PathBuf {
    match std::env::var_os(NODE_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(DEFAULT_NODE_DIR),
    }
}

/// `$RAMPART_CRI_SOCKET`, or `<node dir>/containerd.sock`.
pub fn default_socket() -> PathBuf {
    match std::env::var_os(SOCKET_ENV) {
        Some(sock) if !sock.is_empty() => PathBuf::from(sock),
        _ => node_dir().join("containerd.sock"),
    }
}

/// Kubelet's layout, `<node dir>/pods/<namespace>_<name>_<uid>`, so log tooling that knows
/// Kubernetes finds the files where it expects them.
pub fn pod_log_dir(node_dir: &Path, namespace: &str, name: &str, uid: &str) -> PathBuf {
    node_dir
        .join("pods")
        .join(format!("{namespace}_{name}_{uid}"))
}

/// Cgroupfs parent of a pod (containerd runs runc with the cgroupfs driver here).
pub fn cgroup_parent(uid: &str) -> String {
    format!("{CGROUP_ROOT}/pod{uid}")
}

const CGROUP_MOUNTS: &str = "/sys/fs/cgroup";
// EBUSY is 16 on every Linux architecture; spelled out rather than a libc dependency for one
// constant.
const EBUSY: i32 = 16;

/// Removes the pod's (empty) cgroup in every hierarchy, as a kubelet's pod cgroup manager does:
/// runc removes the containers' cgroups but not the parent it created implicitly. Best effort:
/// returns what could not be removed; `scripts/node down` sweeps whatever is left.
pub(crate) async fn remove_pod_cgroups(uid: &str) -> Vec<String> {
    // The uid ends up in a path: never let one climb out of the pods' tree.
    if uid.is_empty() || !uid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Vec::new();
    }
    let relative = cgroup_parent(uid);
    let relative = relative.trim_start_matches('/');
    let Ok(hierarchies) = std::fs::read_dir(CGROUP_MOUNTS) else {
        return Vec::new();
    };
    let mut failed = Vec::new();
    for hierarchy in hierarchies.flatten() {
        let dir = hierarchy.path().join(relative);
        // The last processes of a just-killed pod may take a moment to leave (EBUSY).
        let mut attempts = 0;
        loop {
            match std::fs::remove_dir(&dir) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) if e.raw_os_error() == Some(EBUSY) && attempts < 20 => {
                    attempts += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) => {
                    failed.push(format!("{}: {e}", dir.display()));
                    break;
                }
            }
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_dir_follows_kubelet_layout() {
        assert_eq!(
            pod_log_dir(Path::new("/var/lib/rampart-node"), "default", "web", "u1"),
            PathBuf::from("/var/lib/rampart-node/pods/default_web_u1")
        );
    }

    #[test]
    fn cgroup_parent_is_under_rampart_pods() {
        assert_eq!(cgroup_parent("u1"), "/rampart-pods/podu1");
    }

    #[tokio::test]
    async fn strange_uids_touch_nothing() {
        assert!(remove_pod_cgroups("../../etc").await.is_empty());
        assert!(remove_pod_cgroups("").await.is_empty());
    }
}
