//! The connection to containerd's CRI runtime service: gRPC over its unix socket.
//!
//! The same dialing as `rampart_integration::cri::Cri::connect` (test infrastructure, which
//! rampartd must not depend on), but lazy: rampartd may start before containerd, and a channel
//! that dials on first use (and again after containerd restarts) suits a long-lived daemon.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// Env var naming containerd's CRI socket (shared with the node scripts and rampart-kubelet).
pub const SOCKET_ENV: &str = "RAMPART_CRI_SOCKET";
/// Where containerd listens on a stock node.
pub const DEFAULT_SOCKET: &str = "/run/containerd/containerd.sock";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// `$RAMPART_CRI_SOCKET`, or containerd's default socket.
pub fn default_socket() -> PathBuf {
    match std::env::var_os(SOCKET_ENV) {
        Some(sock) if !sock.is_empty() => PathBuf::from(sock),
        _ => PathBuf::from(DEFAULT_SOCKET),
    }
}

/// A runtime-service client whose channel dials `socket` when first used. Never fails: a missing
/// or dead socket shows up as the first call's error.
pub(crate) fn lazy_runtime_client(socket: &Path) -> RuntimeServiceClient<Channel> {
    // The URI is a placeholder: the connector below ignores it and dials the socket.
    let endpoint = Endpoint::from_static("http://[::1]:50051").connect_timeout(CONNECT_TIMEOUT);
    let dial = socket.to_path_buf();
    let channel = endpoint.connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
        let dial = dial.clone();
        async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(dial).await?)) }
    }));
    RuntimeServiceClient::new(channel)
}

/// A request that gives up after `timeout` instead of hanging on a wedged containerd.
pub(crate) fn request<T>(msg: T, timeout: Duration) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.set_timeout(timeout);
    req
}

/// The status's message and the causes under it: tonic puts "transport error" on top and the
/// useful part (ENOENT, EACCES, ECONNREFUSED) in the sources.
pub(crate) fn status_text(status: &tonic::Status) -> String {
    let mut parts = vec![if status.message().is_empty() {
        format!("{:?}", status.code())
    } else {
        format!("{} ({:?})", status.message(), status.code())
    }];
    let mut source = std::error::Error::source(status);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}
