//! Serves a [`DaemonService`] over ttrpc on a unix socket.
//!
//! Every connection gets its peer's credentials checked once (SO_PEERCRED, uid 0 only), then is
//! served by `rampart_protos::ttrpc::server` (shared with rampart-nri): one task per call, so calls
//! on one connection run concurrently and a long poll holds up nothing else, and whatever a peer
//! sends gets a status or a log line. What is rampartd's: the peer check, each call's
//! [`CallContext`], deadlines bounded by [`ServerConfig::max_request_time`] and enforced, calls
//! cancelled when their agent leaves, and [`DaemonService::disconnected`] after.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use prost::Message as _;
use rampart_protos::agent::{DAEMON_SERVICE, DEFAULT_SOCKET};
use rampart_protos::ttrpc::server::{Call, Deadlines, ServeOptions};
use rampart_protos::ttrpc::{self, Decoded, Decoder, Status, code};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::service::{DaemonService, dispatch};
use super::socket::{self, SocketError};
use super::{CallContext, Peer};

/// How long a refused peer has to send its first request, so it can be told why it is refused.
const REFUSE_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub socket: PathBuf,
    /// The longest any call may run, whatever timeout the client sent (0 = none); it bounds
    /// the GetSnapshot long poll too.
    pub max_request_time: Duration,
    /// Calls running at once on one connection; more are answered RESOURCE_EXHAUSTED.
    pub max_in_flight: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            socket: PathBuf::from(DEFAULT_SOCKET),
            max_request_time: Duration::from_secs(300),
            max_in_flight: 256,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Socket(#[from] SocketError),
}

pub struct Server<S> {
    listener: UnixListener,
    path: PathBuf,
    service: Arc<S>,
    config: Arc<ServerConfig>,
}

impl<S: DaemonService> Server<S> {
    /// Listens on `config.socket` (see [`socket::listen`]). Must run inside a tokio runtime.
    pub fn bind(config: ServerConfig, service: Arc<S>) -> Result<Self, ServerError> {
        let listener = socket::listen(&config.socket)?;
        tracing::info!(socket = %config.socket.display(), "agent API listening");
        Ok(Server {
            listener,
            path: config.socket.clone(),
            service,
            config: Arc::new(config),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves until `shutdown` completes, then closes every connection and removes the socket.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let mut conns = JoinSet::new();
        let mut next_conn: u64 = 0;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        next_conn += 1;
                        conns.spawn(handle_connection(
                            stream,
                            next_conn,
                            self.service.clone(),
                            self.config.clone(),
                        ));
                    }
                    Err(e) => {
                        // EMFILE and the like pass; exiting would take every agent down with it.
                        tracing::warn!(error = %e, "accepting an agent connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        conns.shutdown().await;
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(socket = %self.path.display(), error = %e, "cannot remove the socket")
            }
        }
        tracing::info!(socket = %self.path.display(), "agent API stopped");
    }
}

async fn handle_connection<S: DaemonService>(
    stream: UnixStream,
    conn_id: u64,
    service: Arc<S>,
    config: Arc<ServerConfig>,
) {
    let cred = match stream.peer_cred() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(conn = conn_id, error = %e, "cannot read a connection's credentials (SO_PEERCRED); closing it");
            return;
        }
    };
    let peer = Peer {
        conn_id,
        uid: cred.uid(),
        gid: cred.gid(),
        pid: cred.pid(),
        connected_at: SystemTime::now(),
    };
    if peer.uid != 0 {
        tracing::warn!(
            conn = conn_id,
            uid = peer.uid,
            pid = ?peer.pid,
            "refusing an agent API connection from uid {} (pid {}): only root may use it",
            peer.uid,
            peer.pid.map_or_else(|| "unknown".to_string(), |p| p.to_string()),
        );
        refuse(stream, &peer).await;
        return;
    }
    let span = tracing::info_span!("agent_conn", conn = conn_id, pid = ?peer.pid);
    async {
        tracing::debug!("agent connected");
        serve_connection(stream, &peer, service.clone(), config).await;
        service.disconnected(&peer);
    }
    .instrument(span)
    .await
}

/// Tells a refused peer why, if it sends a request soon, and closes its connection.
async fn refuse(mut stream: UnixStream, peer: &Peer) {
    let mut decoder = Decoder::default();
    let mut buf = [0u8; 4096];
    let first = tokio::time::timeout(REFUSE_GRACE, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => decoder.push(&buf[..n]),
            }
            match decoder.next_message() {
                Some(Decoded::Message(m)) => return Some(m.stream_id),
                Some(Decoded::Oversized { stream_id, .. }) => return Some(stream_id),
                None => {}
            }
        }
    })
    .await;
    if let Ok(Some(stream_id)) = first {
        let rsp = ttrpc::Response::error(
            code::PERMISSION_DENIED,
            format!(
                "rampartd serves root (uid 0) only, and this process runs as uid {}",
                peer.uid
            ),
        );
        if let Ok(wire) =
            ttrpc::encode_message(stream_id, ttrpc::TYPE_RESPONSE, &rsp.encode_to_vec())
        {
            let _ = stream.write_all(&wire).await;
        }
    }
}

async fn serve_connection<S: DaemonService>(
    stream: UnixStream,
    peer: &Peer,
    service: Arc<S>,
    config: Arc<ServerConfig>,
) {
    let router = {
        let peer = peer.clone();
        move |call: Call| {
            let (service, peer) = (service.clone(), peer.clone());
            async move { route(&*service, peer, call).await }
        }
    };
    let options = ServeOptions {
        name: "rampartd",
        deadlines: Deadlines::Enforced {
            max: config.max_request_time,
        },
        max_in_flight: Some(config.max_in_flight),
        // A call's answer is all an agent waits for; work for an agent that left is wasted.
        cancel_on_close: true,
    };
    let (rd, wr) = stream.into_split();
    match ttrpc::server::serve(rd, wr, &router, &options).await {
        Ok(()) => tracing::debug!("agent closed its connection"),
        Err(e) => {
            tracing::warn!(error = %e, "reading from an agent failed; closing its connection")
        }
    }
}

/// One call of the agent API, with its peer.
async fn route<S: DaemonService>(service: &S, peer: Peer, call: Call) -> Result<Vec<u8>, Status> {
    if call.service != DAEMON_SERVICE {
        let msg = format!("rampartd serves {DAEMON_SERVICE}, not {}", call.service);
        tracing::warn!("rejected an agent's message: {msg}");
        return Err(Status::new(code::UNIMPLEMENTED, msg));
    }
    let ctx = CallContext {
        peer,
        method: call.method,
        // Enforced deadlines are always set.
        deadline: call.deadline.unwrap_or_else(tokio::time::Instant::now),
    };
    dispatch(service, &ctx, &call.payload).await.map_err(|e| {
        tracing::warn!(error = %e, "call failed");
        Status::new(e.code(), e.to_string())
    })
}
