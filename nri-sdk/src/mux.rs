//! NRI's connection multiplexer (containerd/nri `pkg/net/multiplex`): several virtual
//! connections over the one unix stream a plugin opens to the runtime.
//!
//! Every frame on the trunk is `[conn id: u32 BE][payload length: u32 BE][payload]`. Opening a
//! connection sends nothing: both ends simply agree on the ids. NRI uses
//! [`PLUGIN_SERVICE_CONN`] (1) for the plugin's ttrpc server, where the runtime calls Configure,
//! CreateContainer, ..., and [`RUNTIME_SERVICE_CONN`] (2) for the runtime's ttrpc server, where
//! the plugin calls RegisterPlugin and UpdateContainers.
//!
//! A virtual connection carries a byte stream, not messages: the Go side may split one ttrpc
//! message over several frames (its buffered writer flushes when full), so readers reassemble.
//! Frames for a connection nobody opened are dropped, as NRI's own mux does.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf};
use tokio::sync::{mpsc, watch};

/// Identifies a virtual connection on the trunk.
pub type ConnId = u32;

/// The runtime calls the plugin's services on this connection (NRI: `PluginServiceConn`).
pub const PLUGIN_SERVICE_CONN: ConnId = 1;
/// The plugin calls the runtime's services on this connection (NRI: `RuntimeServiceConn`).
pub const RUNTIME_SERVICE_CONN: ConnId = 2;
/// Reserved by NRI; never opened.
const RESERVED_CONN: ConnId = 0;

/// Frame header: conn id + payload length.
pub const FRAME_HEADER_LEN: usize = 8;
/// NRI's limit for one frame's payload: a whole ttrpc message (10-byte header + 4 MiB).
pub const MAX_FRAME_PAYLOAD: usize = crate::ttrpc::HEADER_LEN + crate::ttrpc::MAX_MESSAGE_LEN;

#[derive(Debug, thiserror::Error)]
pub enum MuxError {
    #[error("NRI connection closed: {0}")]
    Closed(String),
    #[error(
        "mux frame of {len} bytes exceeds NRI's limit of {MAX_FRAME_PAYLOAD}; \
         the peer is not speaking NRI's mux protocol or the stream is out of sync"
    )]
    Oversized { len: usize },
    #[error(
        "mux connection id {0} is reserved by NRI; use 1 (plugin service) or 2 (runtime service)"
    )]
    ReservedConn(ConnId),
    #[error("writing to the NRI socket failed: {0}")]
    Write(#[source] std::io::Error),
}

/// Encodes one frame.
pub fn encode_frame(conn: ConnId, payload: &[u8]) -> Result<Vec<u8>, MuxError> {
    if payload.len() > MAX_FRAME_PAYLOAD {
        return Err(MuxError::Oversized { len: payload.len() });
    }
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
    out.extend_from_slice(&conn.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Reassembles frames from however the trunk's bytes arrive.
#[derive(Default)]
pub struct FrameDecoder {
    buf: BytesMut,
}

impl FrameDecoder {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, `Ok(None)` while one is still partial.
    pub fn next_frame(&mut self) -> Result<Option<(ConnId, Bytes)>, MuxError> {
        if self.buf.len() < FRAME_HEADER_LEN {
            return Ok(None);
        }
        let conn = u32::from_be_bytes(self.buf[0..4].try_into().expect("4 bytes"));
        let len = u32::from_be_bytes(self.buf[4..8].try_into().expect("4 bytes")) as usize;
        if len > MAX_FRAME_PAYLOAD {
            return Err(MuxError::Oversized { len });
        }
        if self.buf.len() < FRAME_HEADER_LEN + len {
            return Ok(None);
        }
        self.buf.advance(FRAME_HEADER_LEN);
        Ok(Some((conn, self.buf.split_to(len).freeze())))
    }
}

type Routes = Arc<Mutex<HashMap<ConnId, mpsc::UnboundedSender<Bytes>>>>;

/// The multiplexer over one trunk. Dropping it does not close the trunk; [`Mux::close`] does.
pub struct Mux {
    routes: Routes,
    writer: TrunkWriter,
    closed: watch::Receiver<Option<String>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Mux {
    /// Starts demultiplexing `trunk`, with `conns` open before the first frame is read so that
    /// nothing the runtime sends early is dropped.
    pub fn new<T>(trunk: T, conns: &[ConnId]) -> Result<(Mux, Vec<VirtualConn>), MuxError>
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (rd, wr) = tokio::io::split(trunk);
        let (closed_tx, closed) = watch::channel(None);
        let closed_tx = Arc::new(closed_tx);
        let writer = TrunkWriter {
            inner: Arc::new(tokio::sync::Mutex::new(Box::new(wr) as BoxedWrite)),
            closed: closed.clone(),
        };
        let routes: Routes = Arc::default();
        let mut opened = Vec::with_capacity(conns.len());
        for &id in conns {
            opened.push(open(&routes, &writer, id)?);
        }
        let reader = tokio::spawn(read_trunk(rd, routes.clone(), closed_tx));
        Ok((
            Mux {
                routes,
                writer,
                closed,
                reader,
            },
            opened,
        ))
    }

    /// Opens another virtual connection. Frames that arrived for it before this call are lost.
    pub fn open(&self, id: ConnId) -> Result<VirtualConn, MuxError> {
        open(&self.routes, &self.writer, id)
    }

    /// Resolves once the trunk is gone, with why.
    pub async fn closed(&self) -> String {
        let mut rx = self.closed.clone();
        match rx.wait_for(|c| c.is_some()).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            Err(_) => "mux reader ended".into(),
        }
    }

    /// Closes the trunk and every virtual connection.
    pub async fn close(&self) {
        self.reader.abort();
        self.routes.lock().expect("mux routes lock").clear();
        let _ = self.writer.inner.lock().await.shutdown().await;
    }
}

impl Drop for Mux {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn open(routes: &Routes, writer: &TrunkWriter, id: ConnId) -> Result<VirtualConn, MuxError> {
    if id == RESERVED_CONN {
        return Err(MuxError::ReservedConn(id));
    }
    let (tx, rx) = mpsc::unbounded_channel();
    routes.lock().expect("mux routes lock").insert(id, tx);
    Ok(VirtualConn {
        rx,
        writer: ConnWriter {
            id,
            trunk: writer.clone(),
        },
        unread: Bytes::new(),
        sending: None,
    })
}

async fn read_trunk<R: AsyncRead>(
    rd: ReadHalf<R>,
    routes: Routes,
    closed: Arc<watch::Sender<Option<String>>>,
) {
    let reason = pump(rd, &routes).await;
    tracing::debug!(%reason, "NRI mux trunk closed");
    // Dropping the senders ends every VirtualConn::recv with None.
    routes.lock().expect("mux routes lock").clear();
    closed.send_replace(Some(reason));
}

async fn pump<R: AsyncRead>(mut rd: ReadHalf<R>, routes: &Routes) -> String {
    let mut decoder = FrameDecoder::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) => return "the runtime closed the socket".into(),
            Ok(n) => n,
            Err(e) => return format!("reading the NRI socket failed: {e}"),
        };
        decoder.push(&buf[..n]);
        loop {
            match decoder.next_frame() {
                Ok(Some((conn, payload))) => {
                    let route = routes.lock().expect("mux routes lock").get(&conn).cloned();
                    match route {
                        Some(tx) => {
                            // A receiver that went away just means nobody reads that conn now.
                            let _ = tx.send(payload);
                        }
                        None => tracing::warn!(
                            conn,
                            len = payload.len(),
                            "dropping NRI mux frame for unopened connection"
                        ),
                    }
                }
                Ok(None) => break,
                Err(e) => return e.to_string(),
            }
        }
    }
}

type BoxedWrite = Box<dyn AsyncWrite + Send + Unpin>;

#[derive(Clone)]
struct TrunkWriter {
    inner: Arc<tokio::sync::Mutex<BoxedWrite>>,
    closed: watch::Receiver<Option<String>>,
}

/// The sending side of one virtual connection; cheap to clone, frames never interleave.
#[derive(Clone)]
pub struct ConnWriter {
    id: ConnId,
    trunk: TrunkWriter,
}

impl ConnWriter {
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// Sends `payload` as one frame.
    pub async fn send(&self, payload: &[u8]) -> Result<(), MuxError> {
        if let Some(reason) = self.trunk.closed.borrow().clone() {
            return Err(MuxError::Closed(reason));
        }
        let frame = encode_frame(self.id, payload)?;
        let mut w = self.trunk.inner.lock().await;
        w.write_all(&frame).await.map_err(MuxError::Write)?;
        w.flush().await.map_err(MuxError::Write)
    }
}

/// One virtual connection: a byte stream in, frames out. As an `AsyncRead + AsyncWrite` stream it
/// is what the ttrpc client and server run on; each write goes out as one frame.
pub struct VirtualConn {
    rx: mpsc::UnboundedReceiver<Bytes>,
    writer: ConnWriter,
    /// What a read left of the last chunk.
    unread: Bytes,
    /// The frame being written, and how many bytes of the caller's buffer it carries.
    sending: Option<(SendFuture, usize)>,
}

type SendFuture = Pin<Box<dyn Future<Output = Result<(), MuxError>> + Send>>;

impl VirtualConn {
    pub fn id(&self) -> ConnId {
        self.writer.id
    }

    /// The next chunk of bytes the peer sent on this connection; `None` once the trunk closed.
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.rx.recv().await
    }

    pub fn writer(&self) -> ConnWriter {
        self.writer.clone()
    }

    /// For callers that take the chunks and send frames themselves; anything already read through
    /// `AsyncRead` is not handed back.
    pub fn into_split(self) -> (mpsc::UnboundedReceiver<Bytes>, ConnWriter) {
        (self.rx, self.writer)
    }
}

impl AsyncRead for VirtualConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        while self.unread.is_empty() {
            match ready!(self.rx.poll_recv(cx)) {
                Some(chunk) => self.unread = chunk,
                // The trunk closed: end of stream.
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = self.unread.len().min(buf.remaining());
        buf.put_slice(&self.unread.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for VirtualConn {
    // A write that returned Pending has committed to its frame: it completes on the next poll
    // whatever buffer comes with it, which is what `write_all` (passing the same bytes again)
    // expects.
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.sending.is_none() {
            let n = buf.len().min(MAX_FRAME_PAYLOAD);
            let (writer, frame) = (self.writer.clone(), buf[..n].to_vec());
            let send: SendFuture = Box::pin(async move { writer.send(&frame).await });
            self.sending = Some((send, n));
        }
        let (send, n) = self.sending.as_mut().expect("a frame being sent");
        let sent = ready!(send.as_mut().poll(cx)).map(|()| *n);
        self.sending = None;
        Poll::Ready(sent.map_err(std::io::Error::other))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // Every frame is flushed to the trunk as it is sent.
        let Some((send, _)) = self.sending.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let sent = ready!(send.as_mut().poll(cx));
        self.sending = None;
        Poll::Ready(sent.map_err(std::io::Error::other))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // NRI's mux has no closing one connection; the trunk closes with the Mux.
        self.poll_flush(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trip() {
        let frame = encode_frame(RUNTIME_SERVICE_CONN, b"hello").unwrap();
        assert_eq!(&frame[..8], &[0, 0, 0, 2, 0, 0, 0, 5]);
        let mut d = FrameDecoder::default();
        d.push(&frame);
        let (conn, payload) = d.next_frame().unwrap().unwrap();
        assert_eq!((conn, &payload[..]), (2, &b"hello"[..]));
        assert!(d.next_frame().unwrap().is_none());
    }

    #[test]
    fn partial_reads_reassemble_byte_by_byte() {
        let mut wire = encode_frame(1, b"first").unwrap();
        wire.extend(encode_frame(2, b"").unwrap());
        wire.extend(encode_frame(1, &[7u8; 1000]).unwrap());
        let mut d = FrameDecoder::default();
        let mut got = Vec::new();
        for b in &wire {
            d.push(std::slice::from_ref(b));
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got.len(), 3);
        assert_eq!(&got[0].1[..], b"first");
        assert_eq!((got[1].0, got[1].1.len()), (2, 0));
        assert_eq!(got[2].1.len(), 1000);
    }

    #[test]
    fn oversized_frames_are_refused_both_ways() {
        let big = vec![0u8; MAX_FRAME_PAYLOAD + 1];
        assert!(matches!(
            encode_frame(1, &big),
            Err(MuxError::Oversized { .. })
        ));
        let mut d = FrameDecoder::default();
        d.push(&1u32.to_be_bytes());
        d.push(&((MAX_FRAME_PAYLOAD + 1) as u32).to_be_bytes());
        assert!(matches!(d.next_frame(), Err(MuxError::Oversized { .. })));
    }

    #[test]
    fn conn_zero_is_reserved() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (a, _b) = tokio::io::duplex(1024);
            assert!(matches!(Mux::new(a, &[0]), Err(MuxError::ReservedConn(0))));
        });
    }

    #[tokio::test]
    async fn routes_frames_to_their_conns_and_drops_unknown_ids() {
        let (ours, mut peer) = tokio::io::duplex(64 * 1024);
        let (_mux, mut conns) =
            Mux::new(ours, &[PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN]).unwrap();
        let mut runtime = conns.pop().unwrap();
        let mut plugin = conns.pop().unwrap();

        let mut wire = encode_frame(7, b"nobody listens").unwrap();
        wire.extend(encode_frame(RUNTIME_SERVICE_CONN, b"to runtime conn").unwrap());
        wire.extend(encode_frame(PLUGIN_SERVICE_CONN, b"to plugin conn").unwrap());
        peer.write_all(&wire).await.unwrap();
        assert_eq!(&plugin.recv().await.unwrap()[..], b"to plugin conn");
        assert_eq!(&runtime.recv().await.unwrap()[..], b"to runtime conn");

        plugin.writer().send(b"reply").await.unwrap();
        let mut got = [0u8; 13];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(
            &got,
            &[0, 0, 0, 1, 0, 0, 0, 5, b'r', b'e', b'p', b'l', b'y']
        );
    }

    #[tokio::test]
    async fn a_conn_is_a_byte_stream_each_write_one_frame() {
        let (ours, mut peer) = tokio::io::duplex(64 * 1024);
        let (_mux, mut conns) = Mux::new(ours, &[PLUGIN_SERVICE_CONN]).unwrap();
        let mut conn = conns.pop().unwrap();

        conn.write_all(b"answer").await.unwrap();
        conn.flush().await.unwrap();
        let mut got = [0u8; 14];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[..8], &[0, 0, 0, 1, 0, 0, 0, 6]);
        assert_eq!(&got[8..], b"answer");

        // One message split over two frames reads back whole, and reads may stop mid-frame.
        let mut wire = encode_frame(PLUGIN_SERVICE_CONN, b"hel").unwrap();
        wire.extend(encode_frame(PLUGIN_SERVICE_CONN, b"lo, world").unwrap());
        peer.write_all(&wire).await.unwrap();
        let mut first = [0u8; 5];
        conn.read_exact(&mut first).await.unwrap();
        assert_eq!(&first, b"hello");
        let mut rest = [0u8; 7];
        conn.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b", world");

        drop(peer);
        let mut end = Vec::new();
        conn.read_to_end(&mut end).await.unwrap();
        assert!(end.is_empty(), "the trunk closing is end of stream");
        assert!(conn.write_all(b"x").await.is_err());
    }

    #[tokio::test]
    async fn closing_the_trunk_ends_every_conn() {
        let (ours, peer) = tokio::io::duplex(1024);
        let (mux, mut conns) = Mux::new(ours, &[PLUGIN_SERVICE_CONN]).unwrap();
        drop(peer);
        assert!(conns[0].recv().await.is_none());
        assert!(mux.closed().await.contains("closed"));
        assert!(matches!(
            conns[0].writer().send(b"x").await,
            Err(MuxError::Closed(_))
        ));
    }
}
