//! The server side of one ttrpc connection, on any byte stream: rampart-nri serves NRI's Plugin
//! service on a mux virtual connection with it, rampartd its agent API on unix sockets.
//!
//! [`serve`] reads requests and runs each on its own task, so calls on one connection run
//! concurrently and a long one holds up nothing else; answers go through one writer task. A
//! [`Router`] maps a call (service, method, payload, deadline) to its answer and knows nothing of
//! the wire. Whatever a peer sends, it gets a status or a log line: malformed envelopes, even
//! stream ids, oversized messages and panicking handlers are answered with an error and the
//! connection stays up. What a connection is before and after (who the peer is, what it means that
//! it left) stays with the caller.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;
use tracing::Instrument;

use super::{Decoded, Decoder, Message, Response, Status, code};

/// How long answers already computed may take to drain when a connection ends.
const DRAIN: Duration = Duration::from_secs(1);

/// One request, as a [`Router`] sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub service: String,
    pub method: String,
    pub payload: Vec<u8>,
    /// When the call is given up: the client's timeout, bounded by [`Deadlines::Enforced`].
    /// `None` if the client sent none and nothing bounds it.
    pub deadline: Option<Instant>,
}

/// Answers calls: the encoded response message, or the status to fail with. The future is
/// spawned, so it owns what it needs. Closures `Fn(Call) -> impl Future` are routers.
pub trait Router: Send + Sync {
    fn route(&self, call: Call) -> impl Future<Output = Result<Vec<u8>, Status>> + Send + 'static;
}

impl<F, Fut> Router for F
where
    F: Fn(Call) -> Fut + Send + Sync,
    Fut: Future<Output = Result<Vec<u8>, Status>> + Send + 'static,
{
    fn route(&self, call: Call) -> impl Future<Output = Result<Vec<u8>, Status>> + Send + 'static {
        self(call)
    }
}

/// What the server does with the timeout a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadlines {
    /// Passed on in [`Call::deadline`]; the call runs to completion whatever it says.
    Advisory,
    /// The call is cancelled at the earlier of the client's timeout and `max` (`max` alone if the
    /// client sent none) and answered DEADLINE_EXCEEDED.
    Enforced { max: Duration },
}

#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// How answers name this server ("rampartd failed handling Hello; ...").
    pub name: &'static str,
    pub deadlines: Deadlines,
    /// Calls running at once on the connection; more are answered RESOURCE_EXHAUSTED.
    pub max_in_flight: Option<usize>,
    /// Calls still running when the connection ends are cancelled; otherwise they run to
    /// completion and their answers are dropped.
    pub cancel_on_close: bool,
}

/// Serves `router` on one connection until the peer closes it (`Ok`) or reading fails (`Err`).
/// Answers still being written get a second to go out.
pub async fn serve<R, W, H>(rd: R, wr: W, router: &H, options: &ServeOptions) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
    H: Router,
{
    let (answers, rx) = mpsc::unbounded_channel();
    let mut writer = tokio::spawn(write_answers(wr, rx));
    // Dropping this future (the caller's task aborted) must not leave the writer behind.
    let _writer_guard = AbortOnDrop(writer.abort_handle());
    let conn = Conn {
        router,
        options,
        answers,
        in_flight: options.max_in_flight.map(|n| Arc::new(Semaphore::new(n))),
    };
    let mut calls = JoinSet::new();
    let ended = conn.read_requests(rd, &mut calls).await;
    // Nobody is left to read answers to calls still running. (Without cancel_on_close they are
    // not in `calls`.)
    calls.shutdown().await;
    drop(conn);
    if tokio::time::timeout(DRAIN, &mut writer).await.is_err() {
        writer.abort();
    }
    ended
}

type Answers = mpsc::UnboundedSender<Vec<u8>>;

/// What handling one message needs from its connection.
struct Conn<'a, H> {
    router: &'a H,
    options: &'a ServeOptions,
    answers: Answers,
    in_flight: Option<Arc<Semaphore>>,
}

impl<H: Router> Conn<'_, H> {
    async fn read_requests<R: AsyncRead + Unpin>(
        &self,
        mut rd: R,
        calls: &mut JoinSet<()>,
    ) -> std::io::Result<()> {
        let mut decoder = Decoder::default();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = rd.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            // Finished calls are reaped as requests come, so a long-lived connection does not
            // collect them.
            while calls.try_join_next().is_some() {}
            decoder.push(&buf[..n]);
            while let Some(decoded) = decoder.next_message() {
                self.on_message(decoded, calls);
            }
        }
    }

    fn on_message(&self, decoded: Decoded, calls: &mut JoinSet<()>) {
        let m = match decoded {
            Decoded::Oversized {
                stream_id,
                msg_type,
                len,
            } => {
                tracing::warn!(stream = stream_id, len, "oversized ttrpc message");
                if msg_type == super::TYPE_REQUEST {
                    let msg = format!(
                        "message of {len} bytes exceeds ttrpc's limit of {} bytes",
                        super::MAX_MESSAGE_LEN
                    );
                    respond(
                        &self.answers,
                        stream_id,
                        Response::error(code::RESOURCE_EXHAUSTED, msg),
                    );
                }
                return;
            }
            Decoded::Message(m) => m,
        };
        if m.msg_type != super::TYPE_REQUEST {
            // Nothing to answer: a response or stream data is not a call. Logged, not fatal.
            tracing::warn!(
                stream = m.stream_id,
                msg_type = m.msg_type,
                "ignoring a ttrpc message that is not a request"
            );
            return;
        }
        match self.accept(&m) {
            Ok((call, permit)) => {
                let (method, deadline) = (call.method.clone(), call.deadline);
                let answer = self.router.route(call);
                let call = run_call(answer, method, deadline, m.stream_id, *self.options);
                let answers = self.answers.clone();
                let call = async move {
                    let _permit = permit;
                    respond(&answers, m.stream_id, call.await);
                };
                if self.options.cancel_on_close {
                    calls.spawn(call);
                } else {
                    tokio::spawn(call);
                }
            }
            Err(status) => {
                tracing::warn!(
                    stream = m.stream_id,
                    "rejected a ttrpc message: {}",
                    status.message
                );
                respond(
                    &self.answers,
                    m.stream_id,
                    Response {
                        status: Some(status),
                        payload: Vec::new(),
                    },
                );
            }
        }
    }

    /// The call a request makes, or why it is refused before it reaches the router.
    fn accept(
        &self,
        m: &Message,
    ) -> Result<(Call, Option<tokio::sync::OwnedSemaphorePermit>), Status> {
        if m.stream_id.is_multiple_of(2) {
            return Err(Status::new(
                code::INVALID_ARGUMENT,
                format!(
                    "stream id {} is even; client streams must be odd",
                    m.stream_id
                ),
            ));
        }
        let req = super::Request::decode(m.payload.clone()).map_err(|e| {
            Status::new(
                code::INVALID_ARGUMENT,
                format!("malformed ttrpc request envelope: {e}"),
            )
        })?;
        let permit = match &self.in_flight {
            None => None,
            Some(sem) => Some(sem.clone().try_acquire_owned().map_err(|_| {
                Status::new(
                    code::RESOURCE_EXHAUSTED,
                    format!(
                        "{} calls already running on this connection; retry later",
                        self.options.max_in_flight.unwrap_or_default()
                    ),
                )
            })?),
        };
        let asked = match u64::try_from(req.timeout_nano) {
            Ok(n) if n > 0 => Some(Duration::from_nanos(n)),
            _ => None,
        };
        let budget = match self.options.deadlines {
            Deadlines::Advisory => asked,
            Deadlines::Enforced { max } => Some(asked.map_or(max, |t| t.min(max))),
        };
        let call = Call {
            service: req.service,
            method: req.method,
            payload: req.payload,
            deadline: budget.map(|b| Instant::now() + b),
        };
        Ok((call, permit))
    }
}

/// Aborts the task when the call is given up (deadline, connection closed).
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs one call to its answer, on its own task so that a panicking handler becomes an INTERNAL
/// answer, not a silent drop.
async fn run_call<F>(
    answer: F,
    method: String,
    deadline: Option<Instant>,
    stream_id: u32,
    options: ServeOptions,
) -> Response
where
    F: Future<Output = Result<Vec<u8>, Status>> + Send + 'static,
{
    let span = tracing::debug_span!("rpc", method = %method, stream = stream_id);
    let mut handler = tokio::spawn(answer.instrument(span.clone()));
    let _guard = AbortOnDrop(handler.abort_handle());
    let finished = match (options.deadlines, deadline) {
        (Deadlines::Enforced { .. }, Some(deadline)) => {
            tokio::time::timeout_at(deadline, &mut handler).await.ok()
        }
        _ => Some((&mut handler).await),
    };
    match finished {
        Some(Ok(Ok(payload))) => Response::ok(payload),
        Some(Ok(Err(status))) => Response {
            status: Some(status),
            payload: Vec::new(),
        },
        Some(Err(e)) => {
            span.in_scope(|| tracing::error!(error = %e, "handler panicked"));
            Response::error(
                code::INTERNAL,
                format!(
                    "{} failed handling {method}; its log has the reason",
                    options.name
                ),
            )
        }
        None => {
            span.in_scope(|| tracing::warn!("call ran past its deadline"));
            Response::error(
                code::DEADLINE_EXCEEDED,
                format!("{method} did not finish within its timeout"),
            )
        }
    }
}

fn respond(answers: &Answers, stream_id: u32, rsp: Response) {
    let wire = super::encode_message(stream_id, super::TYPE_RESPONSE, &rsp.encode_to_vec())
        .or_else(|e| {
            let rsp = Response::error(code::RESOURCE_EXHAUSTED, e.to_string());
            super::encode_message(stream_id, super::TYPE_RESPONSE, &rsp.encode_to_vec())
        });
    match wire {
        // A closed channel means the connection is gone; nobody is left to answer.
        Ok(wire) => {
            let _ = answers.send(wire);
        }
        Err(e) => tracing::error!(stream = stream_id, error = %e, "cannot encode an answer"),
    }
}

async fn write_answers<W: AsyncWrite + Unpin>(mut wr: W, mut rx: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(answer) = rx.recv().await {
        let written = match wr.write_all(&answer).await {
            Ok(()) => wr.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            tracing::warn!(error = %e, "writing to a ttrpc peer failed; its answers are lost");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Client, TtrpcError, encode_message};
    use super::*;
    use crate::nri::{Empty, RegisterPluginRequest};
    use std::sync::atomic::{AtomicBool, Ordering};

    const T: Duration = Duration::from_secs(5);

    fn options() -> ServeOptions {
        ServeOptions {
            name: "testd",
            deadlines: Deadlines::Advisory,
            max_in_flight: None,
            cancel_on_close: true,
        }
    }

    /// Serves "svc": Echo answers its payload, Sleep sleeps the milliseconds its plugin_idx
    /// says (then echoes), Deadline says whether the call has one, Panic panics; anything else
    /// is UNIMPLEMENTED.
    async fn route(call: Call) -> Result<Vec<u8>, Status> {
        match (call.service.as_str(), call.method.as_str()) {
            ("svc", "Echo") => Ok(call.payload),
            ("svc", "Sleep") => {
                let req = RegisterPluginRequest::decode(call.payload.as_slice()).unwrap();
                let ms = req.plugin_idx.parse().unwrap();
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(call.payload)
            }
            ("svc", "Deadline") => Ok(RegisterPluginRequest {
                plugin_name: format!("{:?}", call.deadline.is_some()),
                ..Default::default()
            }
            .encode_to_vec()),
            ("svc", "Panic") => panic!("asked to"),
            (s, m) => Err(Status::new(
                code::UNIMPLEMENTED,
                format!("testd does not serve {s}.{m}"),
            )),
        }
    }

    fn start(options: ServeOptions) -> (Client, tokio::task::JoinHandle<std::io::Result<()>>) {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(async move {
            let (rd, wr) = tokio::io::split(ours);
            serve(rd, wr, &route, &options).await
        });
        (Client::new(theirs), server)
    }

    fn sleep_req(ms: u64) -> RegisterPluginRequest {
        RegisterPluginRequest {
            plugin_name: "x".into(),
            plugin_idx: ms.to_string(),
        }
    }

    #[tokio::test]
    async fn calls_are_routed_and_unknown_methods_are_unimplemented() {
        let (client, _server) = start(options());
        let req = sleep_req(0);
        let rsp: RegisterPluginRequest = client.call("svc", "Echo", &req, T).await.unwrap();
        assert_eq!(rsp, req);
        for (service, method) in [("svc", "Frobnicate"), ("other", "Echo")] {
            let err = client
                .call::<_, Empty>(service, method, &Empty {}, T)
                .await
                .unwrap_err();
            assert!(
                matches!(&err, TtrpcError::Status { code: code::UNIMPLEMENTED, message, .. }
                    if message == &format!("testd does not serve {service}.{method}")),
                "{err}"
            );
        }
    }

    #[tokio::test]
    async fn calls_on_one_connection_run_concurrently() {
        let (client, _server) = start(options());
        let slow = tokio::spawn({
            let client = client.clone();
            async move {
                client
                    .call::<_, RegisterPluginRequest>("svc", "Sleep", &sleep_req(300), T)
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = std::time::Instant::now();
        let fast: RegisterPluginRequest =
            client.call("svc", "Echo", &sleep_req(0), T).await.unwrap();
        assert_eq!(fast, sleep_req(0));
        assert!(started.elapsed() < Duration::from_millis(200), "held up");
        assert!(!slow.is_finished());
        assert_eq!(slow.await.unwrap().unwrap(), sleep_req(300));
    }

    #[tokio::test]
    async fn enforced_deadlines_cancel_the_call_and_advisory_ones_do_not() {
        let enforced = ServeOptions {
            deadlines: Deadlines::Enforced {
                max: Duration::from_millis(100),
            },
            ..options()
        };
        let (client, _server) = start(enforced);
        let err = client
            .call::<_, RegisterPluginRequest>("svc", "Sleep", &sleep_req(1000), T)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, TtrpcError::Status { code: code::DEADLINE_EXCEEDED, message, .. }
                if message == "Sleep did not finish within its timeout"),
            "{err}"
        );

        // Advisory: the client's timeout is passed on, and the call runs past it.
        let (client, _server) = start(options());
        let rsp: RegisterPluginRequest = client
            .call("svc", "Sleep", &sleep_req(200), T)
            .await
            .unwrap();
        assert_eq!(rsp, sleep_req(200));
        let rsp: RegisterPluginRequest =
            client.call("svc", "Deadline", &Empty {}, T).await.unwrap();
        assert_eq!(rsp.plugin_name, "true");
    }

    #[tokio::test]
    async fn a_panicking_handler_is_internal_and_the_connection_lives() {
        let (client, _server) = start(options());
        let err = client
            .call::<_, Empty>("svc", "Panic", &Empty {}, T)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, TtrpcError::Status { code: code::INTERNAL, message, .. }
                if message == "testd failed handling Panic; its log has the reason"),
            "{err}"
        );
        client
            .call::<RegisterPluginRequest, RegisterPluginRequest>("svc", "Echo", &sleep_req(0), T)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn calls_over_the_in_flight_limit_are_refused() {
        let (client, _server) = start(ServeOptions {
            max_in_flight: Some(1),
            ..options()
        });
        let slow = tokio::spawn({
            let client = client.clone();
            async move {
                client
                    .call::<_, RegisterPluginRequest>("svc", "Sleep", &sleep_req(300), T)
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let err = client
            .call::<_, Empty>("svc", "Echo", &Empty {}, T)
            .await
            .unwrap_err();
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
        slow.await.unwrap().unwrap();
        client
            .call::<_, Empty>("svc", "Echo", &Empty {}, T)
            .await
            .unwrap();
    }

    /// Raw frames in, answers out: what no well-behaved client sends.
    #[tokio::test]
    async fn malformed_messages_are_answered_or_ignored() {
        let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
        let _server = tokio::spawn(async move {
            let (rd, wr) = tokio::io::split(ours);
            serve(rd, wr, &route, &options()).await
        });
        let mut wire = encode_message(1, super::super::TYPE_REQUEST, &[0x20, 0xff]).unwrap();
        let echo = super::super::Request {
            service: "svc".into(),
            method: "Echo".into(),
            payload: b"\x0a\x01x".to_vec(),
            ..Default::default()
        };
        wire.extend(encode_message(4, super::super::TYPE_REQUEST, &echo.encode_to_vec()).unwrap());
        wire.extend(encode_message(5, super::super::TYPE_RESPONSE, b"junk").unwrap());
        wire.extend(
            super::super::Header {
                length: (super::super::MAX_MESSAGE_LEN + 1) as u32,
                stream_id: 7,
                msg_type: super::super::TYPE_REQUEST,
                flags: 0,
            }
            .encode(),
        );
        wire.extend(vec![0u8; super::super::MAX_MESSAGE_LEN + 1]);
        wire.extend(encode_message(9, super::super::TYPE_REQUEST, &echo.encode_to_vec()).unwrap());
        // Answers are small enough to wait in the stream's buffer while this writes.
        theirs.write_all(&wire).await.unwrap();
        let mut answers = Vec::new();
        let mut decoder = Decoder::default();
        let mut buf = [0u8; 4096];
        while answers.len() < 4 {
            if let Some(Decoded::Message(m)) = decoder.next_message() {
                answers.push((m.stream_id, Response::decode(m.payload).unwrap()));
                continue;
            }
            let n = tokio::time::timeout(T, theirs.read(&mut buf))
                .await
                .expect("answers in time")
                .unwrap();
            assert!(n > 0);
            decoder.push(&buf[..n]);
        }
        let codes: Vec<_> = answers
            .iter()
            .map(|(id, r)| (*id, r.status.clone().unwrap_or_default().code))
            .collect();
        assert_eq!(
            codes,
            [
                (1, code::INVALID_ARGUMENT),
                (4, code::INVALID_ARGUMENT),
                (7, code::RESOURCE_EXHAUSTED),
                (9, code::OK),
            ],
            "the response on stream 5 is not answered"
        );
        assert_eq!(answers[3].1.payload, echo.payload);
    }

    #[tokio::test]
    async fn the_peer_closing_ends_serve_and_cancels_its_calls_if_asked() {
        for cancel_on_close in [true, false] {
            let finished = Arc::new(AtomicBool::new(false));
            let router = {
                let finished = finished.clone();
                move |_call: Call| {
                    let finished = finished.clone();
                    async move {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        finished.store(true, Ordering::SeqCst);
                        Ok(Vec::new())
                    }
                }
            };
            let (ours, theirs) = tokio::io::duplex(64 * 1024);
            let server = tokio::spawn(async move {
                let (rd, wr) = tokio::io::split(ours);
                let options = ServeOptions {
                    cancel_on_close,
                    ..options()
                };
                serve(rd, wr, &router, &options).await
            });
            let client = Client::new(theirs);
            let call = tokio::spawn({
                let client = client.clone();
                async move { client.call::<_, Empty>("svc", "Any", &Empty {}, T).await }
            });
            tokio::time::sleep(Duration::from_millis(50)).await;
            call.abort();
            drop(client);
            let ended = tokio::time::timeout(T, server).await.expect("serve ended");
            assert!(ended.unwrap().is_ok(), "a peer closing is a normal end");
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_eq!(
                finished.load(Ordering::SeqCst),
                !cancel_on_close,
                "cancel_on_close = {cancel_on_close}"
            );
        }
    }
}
