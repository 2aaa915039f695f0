//! The ttrpc [`Client`] on a unix stream, as the agents reach rampartd.
//! [`crate::client::DaemonClient`] reconnects around it.

use std::path::Path;
use std::time::Duration;

use prost::Message;
use tokio::net::UnixStream;

use crate::ttrpc::{Client, TtrpcError};

/// One connection. Dropping it closes the stream and fails its pending calls.
pub struct UnixConn {
    client: Client,
}

impl UnixConn {
    pub async fn connect(path: &Path) -> std::io::Result<Self> {
        Ok(Self::new(UnixStream::connect(path).await?))
    }

    /// Must be called inside a tokio runtime: it spawns the stream's reader and writer.
    pub fn new(stream: UnixStream) -> Self {
        let (rd, wr) = stream.into_split();
        UnixConn {
            client: Client::from_halves(rd, wr),
        }
    }

    /// The stream broke; calls on it fail at once and a new connection is needed.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
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
        self.client.call(service, method, req, timeout).await
    }
}
