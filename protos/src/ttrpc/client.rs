//! A unary ttrpc client on any byte stream: rampart-nri's calls to the runtime over a mux virtual
//! connection, and the agents' calls to rampartd over a unix socket ([`crate::client`]).
//!
//! Concurrent calls share the connection, told apart by their (odd) stream ids; answers may come
//! in any order. One task reads and hands each response to its call, one task writes, so that a
//! caller giving up mid-write (its future dropped) can never leave half a message on the stream.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{Decoded, Decoder, Response, TtrpcError, code};

/// Calls waiting for their response, by stream id.
type PendingCalls = Arc<Mutex<HashMap<u32, oneshot::Sender<Response>>>>;

/// One connection; cheap to clone. Dropping the last clone closes the stream and fails its
/// pending calls.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    messages: mpsc::UnboundedSender<Vec<u8>>,
    pending: PendingCalls,
    next_stream: AtomicU32,
    /// Set once the stream is unusable (EOF, read or write error); never cleared.
    closed: Arc<AtomicBool>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

impl Client {
    /// Must be called inside a tokio runtime: it spawns the stream's reader and writer.
    pub fn new<T>(io: T) -> Self
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (rd, wr) = tokio::io::split(io);
        Self::from_halves(rd, wr)
    }

    /// [`Client::new`] on a stream already split (a unix stream's owned halves need no lock
    /// between them).
    pub fn from_halves<R, W>(rd: R, wr: W) -> Self
    where
        R: AsyncRead + Send + Unpin + 'static,
        W: AsyncWrite + Send + Unpin + 'static,
    {
        let pending: PendingCalls = Arc::default();
        let closed = Arc::new(AtomicBool::new(false));
        let (messages, rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_responses(rd, pending.clone(), closed.clone()));
        let writer = tokio::spawn(write_messages(wr, rx, pending.clone(), closed.clone()));
        Client {
            inner: Arc::new(Inner {
                messages,
                pending,
                next_stream: AtomicU32::new(1),
                closed,
                reader,
                writer,
            }),
        }
    }

    /// The stream broke; calls on it fail at once and a new connection is needed.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    /// Calls `service.method` and waits up to `timeout` for its answer. The timeout is also sent
    /// to the server, which may give up on the call then.
    pub async fn call<Req: prost::Message, Rsp: prost::Message + Default>(
        &self,
        service: &str,
        method: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Rsp, TtrpcError> {
        let inner = &*self.inner;
        // Client streams are odd; wrapping past u32::MAX would take two billion calls.
        let stream_id = inner.next_stream.fetch_add(2, Ordering::Relaxed);
        let envelope = super::Request {
            service: service.into(),
            method: method.into(),
            payload: req.encode_to_vec(),
            timeout_nano: i64::try_from(timeout.as_nanos()).unwrap_or(i64::MAX),
            metadata: Vec::new(),
        };
        let wire =
            super::encode_message(stream_id, super::TYPE_REQUEST, &envelope.encode_to_vec())?;
        let (tx, rx) = oneshot::channel();
        inner
            .pending
            .lock()
            .expect("pending lock")
            .insert(stream_id, tx);
        let forget = || {
            inner
                .pending
                .lock()
                .expect("pending lock")
                .remove(&stream_id)
        };
        // The reader marks the stream closed before clearing `pending`, so a call registered
        // after that clear sees the mark here instead of waiting out its timeout.
        if self.is_closed() || inner.messages.send(wire).is_err() {
            forget();
            return Err(TtrpcError::Closed(format!("{service}.{method}")));
        }
        let rsp = await_response(rx, timeout, service, method).await;
        if matches!(rsp, Err(TtrpcError::Timeout { .. })) {
            forget();
        }
        rsp
    }
}

/// The stream is unusable: calls registered from now on see `closed`, and dropping the senders
/// fails every pending call with Closed.
fn close(pending: &PendingCalls, closed: &AtomicBool) {
    closed.store(true, Ordering::SeqCst);
    pending.lock().expect("pending lock").clear();
}

async fn write_messages<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    pending: PendingCalls,
    closed: Arc<AtomicBool>,
) {
    while let Some(message) = rx.recv().await {
        // Flushed one by one: a call waits for its answer, so nothing may sit in a buffer.
        let written = match wr.write_all(&message).await {
            Ok(()) => wr.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            tracing::debug!(error = %e, "ttrpc connection write failed");
            // A request that did not go out will not be answered: fail the calls now rather than
            // at their timeouts.
            close(&pending, &closed);
            return;
        }
    }
}

async fn read_responses<R: AsyncRead + Unpin>(
    mut rd: R,
    pending: PendingCalls,
    closed: Arc<AtomicBool>,
) {
    let mut decoder = Decoder::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(error = %e, "ttrpc connection read failed");
                break;
            }
        };
        decoder.push(&buf[..n]);
        dispatch_responses(&mut decoder, &pending);
    }
    close(&pending, &closed);
}

/// Hands every complete response in `decoder` to the call waiting on its stream id. Responses
/// that can't be decoded, or are too large, reach their caller as an error status, so a call
/// never waits on an answer that came.
fn dispatch_responses(decoder: &mut Decoder, pending: &PendingCalls) {
    while let Some(decoded) = decoder.next_message() {
        let (stream_id, rsp) = match decoded {
            Decoded::Message(m) if m.msg_type == super::TYPE_RESPONSE => {
                match Response::decode(m.payload) {
                    Ok(rsp) => (m.stream_id, rsp),
                    Err(e) => (
                        m.stream_id,
                        Response::error(
                            code::INTERNAL,
                            format!("undecodable ttrpc response envelope: {e}"),
                        ),
                    ),
                }
            }
            Decoded::Message(m) => {
                tracing::warn!(
                    stream = m.stream_id,
                    msg_type = m.msg_type,
                    "ignoring a ttrpc message that is not a response"
                );
                continue;
            }
            Decoded::Oversized { stream_id, len, .. } => (
                stream_id,
                Response::error(
                    code::RESOURCE_EXHAUSTED,
                    format!("response of {len} bytes is too large"),
                ),
            ),
        };
        match pending.lock().expect("pending lock").remove(&stream_id) {
            Some(tx) => {
                let _ = tx.send(rsp);
            }
            None => tracing::debug!(
                stream = stream_id,
                "ttrpc response for no pending call (it timed out)"
            ),
        }
    }
}

/// Waits for the response to one call and turns it into the caller's answer: the decoded
/// payload, or the error status, a timeout, or a closed connection. The caller removes its
/// pending entry on a timeout (no response will come to take it out).
async fn await_response<Rsp: prost::Message + Default>(
    rx: oneshot::Receiver<Response>,
    timeout: Duration,
    service: &str,
    method: &str,
) -> Result<Rsp, TtrpcError> {
    let rsp = match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(rsp)) => rsp,
        Ok(Err(_)) => return Err(TtrpcError::Closed(format!("{service}.{method}"))),
        Err(_) => {
            return Err(TtrpcError::Timeout {
                service: service.into(),
                method: method.into(),
                after: timeout,
            });
        }
    };
    let status = rsp.status.unwrap_or_default();
    if status.code != code::OK {
        return Err(TtrpcError::Status {
            service: service.into(),
            method: method.into(),
            code: status.code,
            message: status.message,
        });
    }
    Rsp::decode(rsp.payload.as_slice()).map_err(|source| TtrpcError::Decode {
        what: "response payload",
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Message, Request, encode_message};
    use super::*;
    use crate::nri::{Empty, RegisterPluginRequest, UpdateContainersResponse};
    use tokio::io::DuplexStream;

    const T: Duration = Duration::from_secs(5);

    /// The server's end, scripted.
    struct Peer {
        io: DuplexStream,
        decoder: Decoder,
    }

    impl Peer {
        async fn request(&mut self) -> (u32, Request) {
            let mut buf = [0u8; 4096];
            loop {
                if let Some(Decoded::Message(Message {
                    stream_id,
                    msg_type,
                    payload,
                    ..
                })) = self.decoder.next_message()
                {
                    assert_eq!(msg_type, super::super::TYPE_REQUEST);
                    return (stream_id, Request::decode(payload).unwrap());
                }
                let n = tokio::time::timeout(T, self.io.read(&mut buf))
                    .await
                    .expect("a request in time")
                    .unwrap();
                assert!(n > 0, "client closed the stream");
                self.decoder.push(&buf[..n]);
            }
        }

        async fn answer(&mut self, stream_id: u32, rsp: Response) {
            let wire = encode_message(stream_id, super::super::TYPE_RESPONSE, &rsp.encode_to_vec())
                .unwrap();
            self.io.write_all(&wire).await.unwrap();
        }
    }

    fn pair() -> (Client, Peer) {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let peer = Peer {
            io: theirs,
            decoder: Decoder::default(),
        };
        (Client::new(ours), peer)
    }

    fn register(name: &str) -> RegisterPluginRequest {
        RegisterPluginRequest {
            plugin_name: name.into(),
            plugin_idx: "10".into(),
        }
    }

    #[tokio::test]
    async fn a_call_is_answered_with_its_response() {
        let (client, mut peer) = pair();
        let call = tokio::spawn({
            let client = client.clone();
            async move {
                client
                    .call::<_, UpdateContainersResponse>("svc", "Method", &register("a"), T)
                    .await
            }
        });
        let (id, req) = peer.request().await;
        assert_eq!(id % 2, 1, "client streams are odd");
        assert_eq!(
            (req.service.as_str(), req.method.as_str()),
            ("svc", "Method")
        );
        assert_eq!(
            RegisterPluginRequest::decode(req.payload.as_slice()).unwrap(),
            register("a")
        );
        assert_eq!(req.timeout_nano, T.as_nanos() as i64, "the timeout travels");
        let rsp = UpdateContainersResponse {
            failed: vec![Default::default()],
        };
        peer.answer(id, Response::ok(rsp.encode_to_vec())).await;
        assert_eq!(call.await.unwrap().unwrap(), rsp);
    }

    #[tokio::test]
    async fn an_error_status_fails_the_call_with_it() {
        let (client, mut peer) = pair();
        let call =
            tokio::spawn(async move { client.call::<_, Empty>("svc", "Nope", &Empty {}, T).await });
        let (id, _) = peer.request().await;
        peer.answer(id, Response::error(code::UNIMPLEMENTED, "no Nope here"))
            .await;
        let err = call.await.unwrap().unwrap_err();
        assert!(
            matches!(&err, TtrpcError::Status { code: code::UNIMPLEMENTED, message, .. } if message == "no Nope here"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn concurrent_calls_get_their_own_answers_in_any_order() {
        let (client, mut peer) = pair();
        let calls: Vec<_> = ["first", "second", "third"]
            .into_iter()
            .map(|name| {
                let client = client.clone();
                tokio::spawn(async move {
                    client
                        .call::<_, RegisterPluginRequest>("svc", name, &register(name), T)
                        .await
                })
            })
            .collect();
        let mut requests = Vec::new();
        for _ in 0..3 {
            requests.push(peer.request().await);
        }
        let mut ids: Vec<_> = requests.iter().map(|(id, _)| *id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 3, "each call has its own stream");
        // Answered last first, each with the request it came with.
        for (id, req) in requests.into_iter().rev() {
            peer.answer(id, Response::ok(req.payload)).await;
        }
        for (call, name) in calls.into_iter().zip(["first", "second", "third"]) {
            assert_eq!(call.await.unwrap().unwrap(), register(name));
        }
    }

    #[tokio::test]
    async fn an_unanswered_call_times_out_and_the_connection_lives_on() {
        let (client, mut peer) = pair();
        let short = Duration::from_millis(100);
        let started = std::time::Instant::now();
        let call = tokio::spawn({
            let client = client.clone();
            async move {
                client
                    .call::<_, Empty>("svc", "Slow", &Empty {}, short)
                    .await
            }
        });
        let (late, _) = peer.request().await;
        let err = call.await.unwrap().unwrap_err();
        assert!(
            matches!(&err, TtrpcError::Timeout { method, after, .. } if method == "Slow" && *after == short),
            "{err}"
        );
        assert!(started.elapsed() >= short);
        assert!(client.inner.pending.lock().unwrap().is_empty(), "forgotten");

        // Its answer coming after all is dropped, and the next call is answered.
        peer.answer(late, Response::ok(Vec::new())).await;
        let next = tokio::spawn({
            let client = client.clone();
            async move { client.call::<_, Empty>("svc", "Fast", &Empty {}, T).await }
        });
        let (id, req) = peer.request().await;
        assert_eq!(req.method, "Fast");
        peer.answer(id, Response::ok(Vec::new())).await;
        next.await.unwrap().unwrap();
        assert!(!client.is_closed());
    }

    #[tokio::test]
    async fn the_peer_closing_fails_pending_and_later_calls() {
        let (client, mut peer) = pair();
        let call = tokio::spawn({
            let client = client.clone();
            async move {
                client
                    .call::<_, Empty>("svc", "Pending", &Empty {}, T)
                    .await
            }
        });
        peer.request().await;
        drop(peer);
        let err = call.await.unwrap().unwrap_err();
        assert!(
            matches!(&err, TtrpcError::Closed(name) if name == "svc.Pending"),
            "{err}"
        );
        assert!(client.is_closed());
        let started = std::time::Instant::now();
        let err = client
            .call::<_, Empty>("svc", "After", &Empty {}, T)
            .await
            .unwrap_err();
        assert!(matches!(err, TtrpcError::Closed(_)), "{err}");
        assert!(started.elapsed() < T, "failed at once, not at its timeout");
    }

    #[tokio::test]
    async fn undecodable_and_oversized_answers_reach_their_call() {
        let (client, mut peer) = pair();
        let call = tokio::spawn({
            let client = client.clone();
            async move { client.call::<_, Empty>("svc", "Junk", &Empty {}, T).await }
        });
        let (id, _) = peer.request().await;
        let wire = encode_message(id, super::super::TYPE_RESPONSE, &[0x20, 0xff]).unwrap();
        peer.io.write_all(&wire).await.unwrap();
        let err = call.await.unwrap().unwrap_err();
        assert!(
            matches!(
                err,
                TtrpcError::Status {
                    code: code::INTERNAL,
                    ..
                }
            ),
            "{err}"
        );

        let call =
            tokio::spawn(async move { client.call::<_, Empty>("svc", "Big", &Empty {}, T).await });
        let (id, _) = peer.request().await;
        let header = super::super::Header {
            length: (super::super::MAX_MESSAGE_LEN + 1) as u32,
            stream_id: id,
            msg_type: super::super::TYPE_RESPONSE,
            flags: 0,
        };
        peer.io.write_all(&header.encode()).await.unwrap();
        let err = call.await.unwrap().unwrap_err();
        assert!(
            matches!(
                err,
                TtrpcError::Status {
                    code: code::RESOURCE_EXHAUSTED,
                    ..
                }
            ),
            "{err}"
        );
    }
}
