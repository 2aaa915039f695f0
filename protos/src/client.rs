//! The agents' client for rampartd's API (`rampart.agent.v1.Daemon`).
//!
//! One connection, shared by concurrent calls. When it breaks (rampartd restarted), the next
//! call connects again and first repeats the agent's Hello, so the daemon knows who is talking
//! without every agent writing that logic. An agent that announces with [`DaemonClient::announce`]
//! has its Hello built afresh for every reconnect, with the containers it knows as they are then:
//! that is how a restarted rampartd gets its registry back.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixStream;

use crate::agent::{
    BindRequest, DAEMON_SERVICE, Event, HelloRequest, HelloResponse, PlanRequest, PlanResponse,
    ReportRequest, ReportResponse, SensorCount, SnapshotRequest, SnapshotResponse, StatusRequest,
    StatusResponse, UnbindRequest, UnbindResponse, Workload,
};
use crate::ttrpc::{Client, TtrpcError, code};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot reach rampartd at {path}: {source}: is it running? (and is this agent running \
         as root? the socket serves uid 0 only)"
    )]
    Unreachable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Rpc(#[from] TtrpcError),
}

impl ClientError {
    /// The gRPC status code rampartd answered with, if it answered.
    pub fn status_code(&self) -> Option<i32> {
        match self {
            ClientError::Rpc(TtrpcError::Status { code, .. }) => Some(*code),
            _ => None,
        }
    }

    /// The daemon refused this peer (not uid 0).
    pub fn is_permission_denied(&self) -> bool {
        self.status_code() == Some(code::PERMISSION_DENIED)
    }
}

/// A connection to rampartd that reconnects on the next call after it breaks. Share it with an
/// `Arc`; calls may run concurrently.
pub struct DaemonClient {
    path: PathBuf,
    conn: tokio::sync::Mutex<Option<Client>>,
    /// Builds the Hello sent on every reconnect.
    hello: std::sync::Mutex<Option<Announcement>>,
}

/// What an agent says in its Hello, asked again at every reconnect.
pub type Announcement = Arc<dyn Fn() -> HelloRequest + Send + Sync>;

impl DaemonClient {
    /// Connects now, so that a missing daemon is reported at startup.
    pub async fn connect(path: impl AsRef<Path>) -> Result<Self, ClientError> {
        let client = Self::lazy(path);
        let conn = client.open().await?;
        *client.conn.lock().await = Some(conn);
        Ok(client)
    }

    /// Connects on the first call: for agents that start before rampartd.
    pub fn lazy(path: impl AsRef<Path>) -> Self {
        DaemonClient {
            path: path.as_ref().to_owned(),
            conn: tokio::sync::Mutex::new(None),
            hello: std::sync::Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Announces the agent; repeated by the client after every reconnect.
    pub async fn hello(
        &self,
        req: HelloRequest,
        timeout: Duration,
    ) -> Result<HelloResponse, ClientError> {
        self.announce(Arc::new(move || req.clone()), timeout).await
    }

    /// Announces the agent with what `hello` says now, and again with what it says then after
    /// every reconnect.
    pub async fn announce(
        &self,
        hello: Announcement,
        timeout: Duration,
    ) -> Result<HelloResponse, ClientError> {
        let req = hello();
        *self.hello.lock().unwrap_or_else(|p| p.into_inner()) = Some(hello);
        let conn = self.conn(timeout, false).await?;
        Ok(conn.call(DAEMON_SERVICE, "Hello", &req, timeout).await?)
    }

    /// Reconnects (and announces again) within about `period` of rampartd coming back, for an
    /// agent that may go long without a call of its own. Runs until dropped.
    pub async fn keep_connected(&self, period: Duration) {
        loop {
            tokio::time::sleep(period).await;
            let connected = self
                .conn
                .lock()
                .await
                .as_ref()
                .is_some_and(|c| !c.is_closed());
            if !connected && let Err(e) = self.conn(period.max(Duration::from_secs(1)), true).await
            {
                tracing::debug!(error = %e, "rampartd still unreachable");
            }
        }
    }

    pub async fn plan_container(
        &self,
        workload: Workload,
        timeout: Duration,
    ) -> Result<PlanResponse, ClientError> {
        let req = PlanRequest {
            workload: Some(workload),
        };
        self.call("PlanContainer", &req, timeout).await
    }

    pub async fn bind_container(
        &self,
        req: BindRequest,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        let _: crate::agent::BindResponse = self.call("BindContainer", &req, timeout).await?;
        Ok(())
    }

    pub async fn unbind_container(
        &self,
        container_id: &str,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        let req = UnbindRequest {
            container_id: container_id.into(),
        };
        let _: UnbindResponse = self.call("UnbindContainer", &req, timeout).await?;
        Ok(())
    }

    /// The policy set if its version differs from `have_version`, waiting up to `wait` for a
    /// change first (long poll; `unchanged` is set if none came). The call as a whole may take
    /// `wait + timeout`.
    pub async fn get_snapshot(
        &self,
        have_version: u64,
        wait: Duration,
        timeout: Duration,
    ) -> Result<SnapshotResponse, ClientError> {
        let req = SnapshotRequest {
            have_version,
            wait_ms: u32::try_from(wait.as_millis()).unwrap_or(u32::MAX),
        };
        self.call("GetSnapshot", &req, wait.saturating_add(timeout))
            .await
    }

    /// Reports events, and how many the agent had to drop since its last report.
    pub async fn report_events(
        &self,
        events: Vec<Event>,
        dropped: u64,
        sensors: Vec<SensorCount>,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        let req = ReportRequest {
            events,
            dropped,
            sensors,
        };
        let _: ReportResponse = self.call("ReportEvents", &req, timeout).await?;
        Ok(())
    }

    /// What the daemon holds, for `rampartctl status`. Needs no Hello: an operator's tool is not
    /// an agent, and must not show up in the agent list.
    pub async fn status(&self, timeout: Duration) -> Result<StatusResponse, ClientError> {
        self.call("Status", &StatusRequest {}, timeout).await
    }

    async fn call<Req: prost::Message, Rsp: prost::Message + Default>(
        &self,
        method: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Rsp, ClientError> {
        let conn = self.conn(timeout, true).await?;
        Ok(conn.call(DAEMON_SERVICE, method, req, timeout).await?)
    }

    /// The live connection, or a new one (with the Hello repeated when `replay_hello`).
    async fn conn(&self, timeout: Duration, replay_hello: bool) -> Result<Client, ClientError> {
        // Held across the reconnect so that concurrent callers share one new connection.
        let mut slot = self.conn.lock().await;
        if let Some(conn) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(conn.clone());
        }
        let had_conn = slot.take().is_some();
        let conn = self.open().await?;
        if had_conn {
            tracing::info!(socket = %self.path.display(), "reconnected to rampartd");
        }
        let hello = self.hello.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let (true, Some(hello)) = (replay_hello, hello) {
            let _: HelloResponse = conn
                .call(DAEMON_SERVICE, "Hello", &hello(), timeout)
                .await?;
        }
        *slot = Some(conn.clone());
        Ok(conn)
    }

    async fn open(&self) -> Result<Client, ClientError> {
        let stream =
            UnixStream::connect(&self.path)
                .await
                .map_err(|source| ClientError::Unreachable {
                    path: self.path.clone(),
                    source,
                })?;
        let (rd, wr) = stream.into_split();
        Ok(Client::from_halves(rd, wr))
    }
}
