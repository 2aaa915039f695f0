//! Serves a [`DaemonService`] over ttrpc on a unix socket.
//!
//! Every connection gets its peer's credentials checked once (SO_PEERCRED, uid 0 only), then a
//! reader that decodes requests and spawns one task per call, so calls on one connection run
//! concurrently (ttrpc tells them apart by stream id) and a long poll holds up nothing else.
//! Answers go through one writer task per connection. Whatever a peer sends, it gets a status or
//! a log line: malformed envelopes, unknown methods, oversized messages and panicking handlers
//! are answered with an error and the connection stays up.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use prost::Message as _;
use rampart_protos::agent::{DAEMON_SERVICE, DEFAULT_SOCKET};
use rampart_protos::ttrpc::{self, Decoded, Decoder, code};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

use super::service::{DaemonService, dispatch};
use super::socket::{self, SocketError};
use super::{CallContext, Peer};

/// How long a refused peer has to send its first request, so it can be told why it is refused.
const REFUSE_GRACE: Duration = Duration::from_secs(1);
/// How long answers already computed may take to drain when a connection ends.
const DRAIN: Duration = Duration::from_secs(1);

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

type Frames = mpsc::UnboundedSender<Vec<u8>>;

async fn serve_connection<S: DaemonService>(
    stream: UnixStream,
    peer: &Peer,
    service: Arc<S>,
    config: Arc<ServerConfig>,
) {
    let (mut rd, wr) = stream.into_split();
    let (frames, rx) = mpsc::unbounded_channel();
    let mut writer = tokio::spawn(write_frames(wr, rx));
    let in_flight = Arc::new(Semaphore::new(config.max_in_flight));
    let mut calls = JoinSet::new();
    let mut decoder = Decoder::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            read = rd.read(&mut buf) => match read {
                Ok(0) => {
                    tracing::debug!("agent closed its connection");
                    break;
                }
                Ok(n) => {
                    decoder.push(&buf[..n]);
                    while let Some(decoded) = decoder.next_message() {
                        let conn = Conn { peer, service: &service, config: &config, frames: &frames, in_flight: &in_flight };
                        conn.on_message(decoded, &mut calls);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading from an agent failed; closing its connection");
                    break;
                }
            },
            Some(_) = calls.join_next(), if !calls.is_empty() => {}
        }
    }
    // Nobody is left to read answers to calls still running.
    calls.shutdown().await;
    drop(frames);
    if tokio::time::timeout(DRAIN, &mut writer).await.is_err() {
        writer.abort();
    }
}

/// What handling one message needs from its connection.
struct Conn<'a, S> {
    peer: &'a Peer,
    service: &'a Arc<S>,
    config: &'a ServerConfig,
    frames: &'a Frames,
    in_flight: &'a Arc<Semaphore>,
}

impl<S: DaemonService> Conn<'_, S> {
    fn on_message(&self, decoded: Decoded, calls: &mut JoinSet<()>) {
        let m = match decoded {
            Decoded::Oversized {
                stream_id,
                msg_type,
                len,
            } => {
                tracing::warn!(
                    stream = stream_id,
                    len,
                    "oversized ttrpc message from an agent"
                );
                if msg_type == ttrpc::TYPE_REQUEST {
                    let msg = format!(
                        "message of {len} bytes exceeds ttrpc's limit of {} bytes",
                        ttrpc::MAX_MESSAGE_LEN
                    );
                    respond(
                        self.frames,
                        stream_id,
                        ttrpc::Response::error(code::RESOURCE_EXHAUSTED, msg),
                    );
                }
                return;
            }
            Decoded::Message(m) => m,
        };
        let reject = |code: i32, msg: String| {
            tracing::warn!(stream = m.stream_id, "rejected an agent's message: {msg}");
            respond(self.frames, m.stream_id, ttrpc::Response::error(code, msg));
        };
        if m.msg_type != ttrpc::TYPE_REQUEST {
            // Nothing to answer: a response or stream data is not a call. Logged, not fatal.
            tracing::warn!(
                stream = m.stream_id,
                msg_type = m.msg_type,
                "ignoring a ttrpc message that is not a request"
            );
            return;
        }
        if m.stream_id % 2 == 0 {
            return reject(
                code::INVALID_ARGUMENT,
                format!(
                    "stream id {} is even; client streams must be odd",
                    m.stream_id
                ),
            );
        }
        let req = match ttrpc::Request::decode(m.payload.clone()) {
            Ok(r) => r,
            Err(e) => {
                return reject(
                    code::INVALID_ARGUMENT,
                    format!("malformed ttrpc request envelope: {e}"),
                );
            }
        };
        if req.service != DAEMON_SERVICE {
            return reject(
                code::UNIMPLEMENTED,
                format!("rampartd serves {DAEMON_SERVICE}, not {}", req.service),
            );
        }
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            return reject(
                code::RESOURCE_EXHAUSTED,
                format!(
                    "{} calls already running on this connection; retry later",
                    self.config.max_in_flight
                ),
            );
        };
        let budget = match u64::try_from(req.timeout_nano) {
            Ok(n) if n > 0 => Duration::from_nanos(n).min(self.config.max_request_time),
            _ => self.config.max_request_time,
        };
        let ctx = CallContext {
            peer: self.peer.clone(),
            method: req.method,
            deadline: tokio::time::Instant::now() + budget,
        };
        let call = run_call(
            self.service.clone(),
            ctx,
            req.payload,
            m.stream_id,
            self.frames.clone(),
        );
        calls.spawn(async move {
            let _permit = permit;
            call.await
        });
    }
}

/// Aborts the task when the call is given up (deadline, connection closed).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn run_call<S: DaemonService>(
    service: Arc<S>,
    ctx: CallContext,
    payload: Vec<u8>,
    stream_id: u32,
    frames: Frames,
) {
    let method = ctx.method.clone();
    let deadline = ctx.deadline;
    let span = tracing::debug_span!("rpc", method = %method, stream = stream_id);
    // Its own task, so that a panicking handler becomes an INTERNAL answer, not a silent drop.
    let mut handler = AbortOnDrop(tokio::spawn(
        async move { dispatch(&*service, &ctx, &payload).await }.instrument(span.clone()),
    ));
    let rsp = match tokio::time::timeout_at(deadline, &mut handler.0).await {
        Ok(Ok(Ok(payload))) => ttrpc::Response::ok(payload),
        Ok(Ok(Err(e))) => {
            span.in_scope(|| tracing::warn!(error = %e, "call failed"));
            ttrpc::Response::error(e.code(), e.to_string())
        }
        Ok(Err(e)) => {
            span.in_scope(|| tracing::error!(error = %e, "handler panicked"));
            ttrpc::Response::error(
                code::INTERNAL,
                format!("rampartd failed handling {method}; its log has the reason"),
            )
        }
        Err(_) => {
            span.in_scope(|| tracing::warn!("call ran past its deadline"));
            ttrpc::Response::error(
                code::DEADLINE_EXCEEDED,
                format!("{method} did not finish within its timeout"),
            )
        }
    };
    respond(&frames, stream_id, rsp);
}

fn respond(frames: &Frames, stream_id: u32, rsp: ttrpc::Response) {
    let wire = ttrpc::encode_message(stream_id, ttrpc::TYPE_RESPONSE, &rsp.encode_to_vec())
        .or_else(|e| {
            let rsp = ttrpc::Response::error(code::RESOURCE_EXHAUSTED, e.to_string());
            ttrpc::encode_message(stream_id, ttrpc::TYPE_RESPONSE, &rsp.encode_to_vec())
        });
    match wire {
        // A closed channel means the connection is gone; nobody is left to answer.
        Ok(wire) => {
            let _ = frames.send(wire);
        }
        Err(e) => tracing::error!(stream = stream_id, error = %e, "cannot encode an answer"),
    }
}

async fn write_frames(mut wr: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(frame) = rx.recv().await {
        if let Err(e) = wr.write_all(&frame).await {
            tracing::warn!(error = %e, "writing to an agent failed; its answers are lost");
            return;
        }
    }
}
