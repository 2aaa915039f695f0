//! The connection: gRPC over containerd's unix socket, with per-call deadlines so a wedged
//! containerd turns into an error instead of a hung test.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

use super::error::CriError;
use super::node;

/// Deadline of ordinary CRI calls (everything but exec and graceful stops, which add their own).
const RPC_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
// ExecSync returns a command's whole output in one message; tonic's 4 MiB default is too small
// for a test that cats a big file.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// A client of containerd's CRI runtime and image services. Cheap to clone; clones share the
/// connection.
#[derive(Debug, Clone)]
pub struct Cri {
    socket: PathBuf,
    node_dir: PathBuf,
    pub(crate) runtime: RuntimeServiceClient<Channel>,
    pub(crate) images: ImageServiceClient<Channel>,
}

impl Cri {
    /// Connects to the CRI socket at `path` and checks that containerd answers.
    #[tracing::instrument(skip_all, fields(socket = %path.as_ref().display()))]
    pub async fn connect(path: impl AsRef<Path>) -> Result<Cri, CriError> {
        let socket = path.as_ref().to_path_buf();
        match std::fs::metadata(&socket) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CriError::SocketMissing { path: socket });
            }
            Err(e) => {
                return Err(CriError::Connect {
                    path: socket,
                    reason: e.to_string(),
                });
            }
        }
        // The URI is a placeholder: the connector below ignores it and dials the socket.
        let endpoint = Endpoint::from_static("http://[::1]:50051").connect_timeout(CONNECT_TIMEOUT);
        let dial = socket.clone();
        let channel =
            endpoint
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let dial = dial.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(dial).await?))
                    }
                }))
                .await
                .map_err(|e| CriError::Connect {
                    path: socket.clone(),
                    reason: error_chain(&e),
                })?;
        let cri = Cri {
            runtime: RuntimeServiceClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE),
            images: ImageServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE),
            node_dir: node::node_dir(),
            socket,
        };
        let version = cri.version().await?;
        tracing::debug!(
            runtime = %version.runtime_name,
            runtime_version = %version.runtime_version,
            "connected"
        );
        Ok(cri)
    }

    /// Connects to `$RAMPART_CRI_SOCKET`, or the node's default socket.
    pub async fn connect_default() -> Result<Cri, CriError> {
        Cri::connect(node::default_socket()).await
    }

    /// Uses `dir` instead of `$RAMPART_NODE_DIR` for pod log directories.
    pub fn with_node_dir(mut self, dir: impl Into<PathBuf>) -> Cri {
        self.node_dir = dir.into();
        self
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn node_dir(&self) -> &Path {
        &self.node_dir
    }

    /// The runtime's name and version (`containerd`, `v2.1.9`, CRI `v1`).
    pub async fn version(&self) -> Result<cri::VersionResponse, CriError> {
        let req = cri::VersionRequest {
            version: "v1".into(),
        };
        self.runtime
            .clone()
            .version(request(req))
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| CriError::rpc("version", "of the CRI runtime", s))
    }

    /// The raw runtime and image clients, for calls this driver does not wrap.
    pub fn raw(&self) -> (RuntimeServiceClient<Channel>, ImageServiceClient<Channel>) {
        (self.runtime.clone(), self.images.clone())
    }

    /// True when `image` is in containerd's k8s.io namespace.
    pub async fn image_present(&self, image: &str) -> Result<bool, CriError> {
        let req = cri::ImageStatusRequest {
            image: Some(cri::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            verbose: false,
        };
        let resp = self
            .images
            .clone()
            .image_status(request(req))
            .await
            .map_err(|s| CriError::rpc("image status", image, s))?;
        Ok(resp.into_inner().image.is_some())
    }

    /// Fails with a clear message when `image` is missing (rampart never pulls).
    pub async fn require_image(&self, image: &str) -> Result<(), CriError> {
        if self.image_present(image).await? {
            Ok(())
        } else {
            Err(CriError::ImageMissing {
                image: image.into(),
            })
        }
    }

    /// Tags of the images containerd holds for CRI.
    pub async fn list_images(&self) -> Result<Vec<String>, CriError> {
        let resp = self
            .images
            .clone()
            .list_images(request(cri::ListImagesRequest { filter: None }))
            .await
            .map_err(|s| CriError::rpc("list images", "", s))?;
        let mut tags: Vec<String> = resp
            .into_inner()
            .images
            .into_iter()
            .flat_map(|i| {
                if i.repo_tags.is_empty() {
                    vec![i.id]
                } else {
                    i.repo_tags
                }
            })
            .collect();
        tags.sort();
        Ok(tags)
    }
}

/// A request with the usual deadline. (Not `Endpoint::timeout`: that one caps every call,
/// including execs that are allowed to run longer.)
pub(crate) fn request<T>(msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.set_timeout(RPC_TIMEOUT);
    req
}

/// A request whose deadline is `extra` beyond the usual one, for calls that legitimately wait.
pub(crate) fn long_request<T>(msg: T, extra: Duration) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.set_timeout(RPC_TIMEOUT + extra);
    req
}

// tonic's transport errors say "transport error" at the top and the useful part (ENOENT,
// EACCES, ECONNREFUSED) in their sources.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}
