//! rampartd's agent API (`rampart.agent.v1.Daemon`) over ttrpc on a unix socket.
//!
//! - [`server`]: the socket, peer checks, connections and requests (ttrpc framing from
//!   `rampart_protos::ttrpc`, shared with rampart-nri);
//! - [`socket`]: preparing the socket path (directory, stale socket, permissions);
//! - [`service`]: the [`DaemonService`] trait and the dispatch of the seven methods to it;
//! - [`status`]: the Status RPC's [`StatusSource`], what the daemon's main loop adds to it;
//! - [`kernel`]: the [`KernelAuditor`] the daemon tells of plans, binds and unbinds;
//! - [`daemon`]: [`Daemon`], the implementation for everything but policy planning, which it
//!   asks a [`Planner`] for.
//!
//! The agents' side is `rampart_protos::client::DaemonClient`.

use std::time::SystemTime;

use rampart_protos::ttrpc::code;

pub mod daemon;
pub mod kernel;
pub mod server;
pub mod service;
pub mod socket;
pub mod status;

pub use daemon::{
    AgentInfo, Daemon, DaemonInfo, EventStats, Mechanisms, Planner, ReportedEvent, Snapshot,
};
pub use kernel::KernelAuditor;
pub use server::{Server, ServerConfig, ServerError};
pub use service::DaemonService;
pub use status::{AlertCounters, StatusSource};

/// Who is calling: the credentials of the connection, read with SO_PEERCRED when it was
/// accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Unique per connection for the daemon's lifetime, so state kept per agent can be dropped
    /// when its connection goes.
    pub conn_id: u64,
    pub uid: u32,
    pub gid: u32,
    /// None if the kernel could not tell (the peer is in another pid namespace).
    pub pid: Option<i32>,
    pub connected_at: SystemTime,
}

/// One call: its peer and when the server gives up on it.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub peer: Peer,
    pub method: String,
    /// The earlier of the client's timeout and the server's limit; a handler that waits (the
    /// GetSnapshot long poll) answers before it.
    pub deadline: tokio::time::Instant,
}

/// Why a call failed, sent to the agent as a ttrpc status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid request: {0}")]
    InvalidArgument(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// The daemon cannot do it now (a part of it is stopped); the agent may retry.
    #[error("rampartd is unavailable: {0}")]
    Unavailable(String),
    #[error("rampartd does not serve {0}")]
    Unimplemented(String),
    #[error("rampartd failed: {0}")]
    Internal(String),
}

impl ApiError {
    /// The gRPC status code the agent receives.
    pub fn code(&self) -> i32 {
        match self {
            ApiError::InvalidArgument(_) => code::INVALID_ARGUMENT,
            ApiError::NotFound(_) => code::NOT_FOUND,
            ApiError::Unavailable(_) => code::UNAVAILABLE,
            ApiError::Unimplemented(_) => code::UNIMPLEMENTED,
            ApiError::Internal(_) => code::INTERNAL,
        }
    }
}
