//! What can go wrong talking to containerd's CRI, worded for the person who has to fix it.

use std::path::PathBuf;
use std::time::Duration;

use tonic::Code;

/// Every failure of the CRI driver. Messages name what failed and, where there is one, what to do.
#[derive(Debug, thiserror::Error)]
pub enum CriError {
    #[error(
        "containerd's CRI socket {} not found: is the node up? run `make node-up` \
         (or set RAMPART_CRI_SOCKET / --socket)",
        .path.display()
    )]
    SocketMissing { path: PathBuf },

    #[error(
        "cannot connect to containerd's CRI at {}: {reason}{hint}",
        .path.display(),
        hint = connect_hint(.reason)
    )]
    Connect { path: PathBuf, reason: String },

    /// A CRI call returned an error status.
    #[error("{op} {target}: {}{hint}", status_text(.status), hint = rpc_hint(.status))]
    Rpc {
        op: &'static str,
        target: String,
        status: Box<tonic::Status>,
    },

    #[error(
        "image {image} is not in containerd's k8s.io namespace (rampart never pulls): \
         run `make node-up`, which builds and imports the node's images"
    )]
    ImageMissing { image: String },

    #[error("pod {namespace}/{name} not found (see `rampart-kubelet ps`)")]
    PodNotFound { namespace: String, name: String },

    #[error("container {name:?} not found in pod {pod}; it has: {}", list_or_none(.available))]
    ContainerNotFound {
        pod: String,
        name: String,
        available: Vec<String>,
    },

    #[error(
        "pod {pod} has {} containers ({}): name one (rampart-kubelet: --container)",
        .available.len(),
        .available.join(", ")
    )]
    AmbiguousContainer { pod: String, available: Vec<String> },

    #[error("pod {pod} has no containers")]
    NoContainers { pod: String },

    #[error(
        "container {container} in pod {pod} exited with code {exit_code}{}{}",
        reason_text(.reason, .message),
        log_tail_text(.log_tail)
    )]
    ContainerExited {
        pod: String,
        container: String,
        exit_code: i32,
        reason: String,
        message: String,
        log_tail: Vec<String>,
    },

    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },

    #[error("invalid {what}: {reason}")]
    InvalidSpec { what: String, reason: String },

    #[error("{action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("containerd returned {what} that is not valid JSON: {source}")]
    BadJson {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("some pods could not be removed: {}", .failures.join("; "))]
    RemoveFailed { failures: Vec<String> },
}

impl CriError {
    pub(crate) fn rpc(op: &'static str, target: impl Into<String>, status: tonic::Status) -> Self {
        CriError::Rpc {
            op,
            target: target.into(),
            status: Box::new(status),
        }
    }

    pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        CriError::InvalidSpec {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// The gRPC code when containerd answered with an error.
    pub fn code(&self) -> Option<Code> {
        match self {
            CriError::Rpc { status, .. } => Some(status.code()),
            _ => None,
        }
    }

    /// True when the object is already gone: removal paths treat that as success.
    pub fn is_not_found(&self) -> bool {
        matches!(self.code(), Some(Code::NotFound))
            || matches!(
                self,
                CriError::PodNotFound { .. } | CriError::ContainerNotFound { .. }
            )
    }
}

fn status_text(status: &tonic::Status) -> String {
    if status.message().is_empty() {
        format!("{:?}", status.code())
    } else {
        format!("{} ({:?})", status.message(), status.code())
    }
}

fn rpc_hint(status: &tonic::Status) -> &'static str {
    match status.code() {
        Code::Unavailable => {
            ": containerd is not answering; is the node up? (`scripts/node status`, \
             $RAMPART_NODE_DIR/containerd.log)"
        }
        Code::DeadlineExceeded => {
            ": containerd did not answer in time; see $RAMPART_NODE_DIR/containerd.log"
        }
        Code::Unimplemented => ": this containerd does not serve CRI v1 on that socket",
        _ => "",
    }
}

fn connect_hint(reason: &str) -> &'static str {
    if reason.contains("ermission denied") {
        ": the socket is root's; run as root"
    } else if reason.contains("onnection refused") {
        ": the socket exists but nothing listens; is containerd running? (`scripts/node status`)"
    } else {
        ""
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "no containers".to_owned()
    } else {
        items.join(", ")
    }
}

fn reason_text(reason: &str, message: &str) -> String {
    match (reason.is_empty(), message.trim().is_empty()) {
        (true, true) => String::new(),
        (false, true) => format!(" ({reason})"),
        (true, false) => format!(" ({})", message.trim()),
        (false, false) => format!(" ({reason}: {})", message.trim()),
    }
}

fn log_tail_text(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!("; last log lines: {}", lines.join(" | "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_missing_says_what_to_do() {
        let e = CriError::SocketMissing {
            path: "/var/lib/rampart-node/containerd.sock".into(),
        };
        assert_eq!(
            e.to_string(),
            "containerd's CRI socket /var/lib/rampart-node/containerd.sock not found: is the node \
             up? run `make node-up` (or set RAMPART_CRI_SOCKET / --socket)"
        );
    }

    #[test]
    fn exited_container_names_code_reason_and_logs() {
        let e = CriError::ContainerExited {
            pod: "default/p".into(),
            container: "c".into(),
            exit_code: 1,
            reason: "Error".into(),
            message: String::new(),
            log_tail: vec!["nginx: [emerg] bad".into()],
        };
        assert_eq!(
            e.to_string(),
            "container c in pod default/p exited with code 1 (Error); last log lines: nginx: [emerg] bad"
        );
    }

    #[test]
    fn rpc_not_found_is_not_found() {
        let e = CriError::rpc("remove pod", "abc", tonic::Status::not_found("gone"));
        assert!(e.is_not_found());
        assert_eq!(e.to_string(), "remove pod abc: gone (NotFound)");
    }
}
