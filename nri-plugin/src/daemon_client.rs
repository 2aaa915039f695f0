//! rampartd over its agent API: the [`Daemon`] that rampart-nri uses in production.

use std::path::PathBuf;
use std::time::Duration;

use rampart_protos::agent::{BindRequest, PlanResponse, Workload};
use rampart_protos::client::{ClientError, DaemonClient};

use crate::daemon::{Daemon, DaemonError};

pub struct RampartdClient {
    client: DaemonClient,
    timeout: Duration,
}

impl RampartdClient {
    /// Connects lazily: the first call (and every call after a broken connection) dials.
    pub fn new(socket: impl Into<PathBuf>, timeout: Duration) -> Self {
        Self {
            client: DaemonClient::lazy(socket.into()),
            timeout,
        }
    }

    pub fn client(&self) -> &DaemonClient {
        &self.client
    }

    fn error(&self, call: &'static str, e: ClientError) -> DaemonError {
        match e {
            ClientError::Unreachable { .. } => DaemonError::Unreachable {
                socket: self.client.path().to_owned(),
                reason: e.to_string(),
            },
            // gRPC DEADLINE_EXCEEDED, as ttrpc reports a timed-out call.
            e if e.status_code() == Some(4) => DaemonError::Timeout {
                call,
                timeout: self.timeout,
            },
            e => DaemonError::Refused {
                call,
                message: e.to_string(),
            },
        }
    }
}

impl Daemon for RampartdClient {
    async fn plan(&self, workload: &Workload) -> Result<PlanResponse, DaemonError> {
        self.client
            .plan_container(workload.clone(), self.timeout)
            .await
            .map_err(|e| self.error("PlanContainer", e))
    }

    async fn bind(&self, req: BindRequest) -> Result<(), DaemonError> {
        self.client
            .bind_container(req, self.timeout)
            .await
            .map_err(|e| self.error("BindContainer", e))
    }

    async fn unbind(&self, container_id: &str) -> Result<(), DaemonError> {
        self.client
            .unbind_container(container_id, self.timeout)
            .await
            .map_err(|e| self.error("UnbindContainer", e))
    }
}
