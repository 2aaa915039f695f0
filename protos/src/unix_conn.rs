//! A unary ttrpc client on one unix stream: concurrent calls share the connection, told apart by
//! their (odd) stream ids. [`crate::client::DaemonClient`] reconnects around it.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::ttrpc::{self, Decoder, TtrpcError};

type Pending = ttrpc::PendingCalls;

/// One connection. Dropping it closes the stream and fails its pending calls.
pub struct UnixConn {
    frames: mpsc::UnboundedSender<Vec<u8>>,
    pending: Pending,
    next_stream: AtomicU32,
    /// Set once the stream is unusable (EOF, read or write error); never cleared.
    closed: Arc<AtomicBool>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Drop for UnixConn {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

impl UnixConn {
    pub async fn connect(path: &Path) -> std::io::Result<Self> {
        Ok(Self::new(UnixStream::connect(path).await?))
    }

    /// Must be called inside a tokio runtime: it spawns the stream's reader and writer.
    pub fn new(stream: UnixStream) -> Self {
        let (rd, wr) = stream.into_split();
        let pending: Pending = Arc::default();
        let closed = Arc::new(AtomicBool::new(false));
        let (frames, rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_responses(rd, pending.clone(), closed.clone()));
        let writer = tokio::spawn(write_frames(wr, rx, closed.clone()));
        UnixConn {
            frames,
            pending,
            next_stream: AtomicU32::new(1),
            closed,
            reader,
            writer,
        }
    }

    /// The stream broke; calls on it fail at once and a new connection is needed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Calls `service.method` and waits up to `timeout` for its answer. The timeout is also sent
    /// to the server, which gives up on the call then.
    pub async fn call<Req: Message, Rsp: Message + Default>(
        &self,
        service: &str,
        method: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Rsp, TtrpcError> {
        let name = || format!("{service}.{method}");
        // Client streams are odd; wrapping past u32::MAX would take two billion calls.
        let stream_id = self.next_stream.fetch_add(2, Ordering::Relaxed);
        let envelope = ttrpc::Request {
            service: service.into(),
            method: method.into(),
            payload: req.encode_to_vec(),
            timeout_nano: i64::try_from(timeout.as_nanos()).unwrap_or(i64::MAX),
            metadata: Vec::new(),
        };
        let wire =
            ttrpc::encode_message(stream_id, ttrpc::TYPE_REQUEST, &envelope.encode_to_vec())?;
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .expect("pending lock")
            .insert(stream_id, tx);
        let forget = || {
            self.pending
                .lock()
                .expect("pending lock")
                .remove(&stream_id)
        };
        // The reader marks the stream closed before clearing `pending`, so a call registered
        // after that clear sees the mark here instead of waiting out its timeout.
        if self.is_closed() || self.frames.send(wire).is_err() {
            forget();
            return Err(TtrpcError::Closed(name()));
        }
        let rsp = ttrpc::await_response(rx, timeout, service, method).await;
        if matches!(rsp, Err(TtrpcError::Timeout { .. })) {
            forget();
        }
        rsp
    }
}

// Frames go through one task so that a caller giving up mid-write (its future dropped) can never
// leave half a frame on the stream.
async fn write_frames(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    closed: Arc<AtomicBool>,
) {
    while let Some(frame) = rx.recv().await {
        if let Err(e) = wr.write_all(&frame).await {
            tracing::debug!(error = %e, "ttrpc connection write failed");
            closed.store(true, Ordering::SeqCst);
            return;
        }
    }
}

async fn read_responses(mut rd: OwnedReadHalf, pending: Pending, closed: Arc<AtomicBool>) {
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
        ttrpc::dispatch_responses(&mut decoder, &pending);
    }
    closed.store(true, Ordering::SeqCst);
    // Dropping the senders fails every pending call with Closed.
    pending.lock().expect("pending lock").clear();
}
