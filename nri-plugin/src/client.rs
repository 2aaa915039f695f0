//! The plugin's ttrpc client for the runtime's service (mux connection 2): RegisterPlugin and
//! UpdateContainers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message;
use rampart_protos::nri::{
    self, ContainerEviction, ContainerUpdate, RegisterPluginRequest, UpdateContainersRequest,
};
use tokio::sync::oneshot;

use crate::mux::{ConnWriter, VirtualConn};
use crate::ttrpc::{self, Decoder, TtrpcError};

type Pending = ttrpc::PendingCalls;

/// A unary ttrpc client on one virtual connection. Cheap to clone.
#[derive(Clone)]
pub struct RuntimeClient {
    writer: ConnWriter,
    pending: Pending,
    next_stream: Arc<Mutex<u32>>,
    reader: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for RuntimeClient {
    fn drop(&mut self) {
        if Arc::strong_count(&self.reader) == 1 {
            self.reader.abort();
        }
    }
}

impl RuntimeClient {
    pub fn new(conn: VirtualConn) -> Self {
        let (rx, writer) = conn.into_split();
        let pending: Pending = Arc::default();
        let reader = tokio::spawn(read_responses(rx, pending.clone()));
        RuntimeClient {
            writer,
            pending,
            next_stream: Arc::new(Mutex::new(1)),
            reader: Arc::new(reader),
        }
    }

    /// Registers the plugin; the runtime then calls Configure and Synchronize on connection 1.
    pub async fn register_plugin(
        &self,
        name: &str,
        index: &str,
        timeout: Duration,
    ) -> Result<(), TtrpcError> {
        let req = RegisterPluginRequest {
            plugin_name: name.into(),
            plugin_idx: index.into(),
        };
        let _: nri::Empty = self.call("RegisterPlugin", &req, timeout).await?;
        Ok(())
    }

    /// Asks the runtime to update or evict containers outside any event; returns the updates
    /// it failed to apply.
    pub async fn update_containers(
        &self,
        update: Vec<ContainerUpdate>,
        evict: Vec<ContainerEviction>,
        timeout: Duration,
    ) -> Result<Vec<ContainerUpdate>, TtrpcError> {
        let req = UpdateContainersRequest { update, evict };
        let rsp: nri::UpdateContainersResponse =
            self.call("UpdateContainers", &req, timeout).await?;
        Ok(rsp.failed)
    }

    async fn call<Req: Message, Rsp: Message + Default>(
        &self,
        method: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Rsp, TtrpcError> {
        let service = nri::RUNTIME_SERVICE;
        let stream_id = {
            let mut next = self.next_stream.lock().expect("stream id lock");
            let id = *next;
            // Client streams are odd; wrapping past u32::MAX would take billions of calls.
            *next = next.wrapping_add(2);
            id
        };
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
        if let Err(e) = self.writer.send(&wire).await {
            forget();
            return Err(e.into());
        }
        let rsp = ttrpc::await_response(rx, timeout, service, method).await;
        if matches!(rsp, Err(TtrpcError::Timeout { .. })) {
            forget();
        }
        rsp
    }
}

async fn read_responses(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<bytes::Bytes>,
    pending: Pending,
) {
    let mut decoder = Decoder::default();
    while let Some(chunk) = rx.recv().await {
        decoder.push(&chunk);
        ttrpc::dispatch_responses(&mut decoder, &pending);
    }
    // Trunk gone: dropping the senders fails every pending call with Closed.
    pending.lock().expect("pending lock").clear();
}
