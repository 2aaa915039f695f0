//! The boundary to rampartd: what rampart-nri asks of the policy daemon. The real client speaks
//! `rampart.agent.v1.Daemon` over ttrpc (`daemon_client`); the tests' in-process stand-in is in
//! `tests/common/stand_in.rs`.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use rampart_protos::agent::{BindRequest, PlanResponse, Workload};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(
        "rampartd is not reachable at {socket}: {reason}; is rampartd running (systemctl status \
         rampartd)?"
    )]
    Unreachable { socket: PathBuf, reason: String },
    #[error("rampartd did not answer {call} within {0:?}; it may be overloaded or stuck", .timeout)]
    Timeout {
        call: &'static str,
        timeout: Duration,
    },
    #[error("rampartd refused {call}: {message}")]
    Refused { call: &'static str, message: String },
}

/// What rampart-nri needs from rampartd. Implementations are shared by concurrent NRI requests.
pub trait Daemon: Send + Sync + 'static {
    /// What a container being created needs injected (PlanContainer).
    fn plan(
        &self,
        workload: &Workload,
    ) -> impl Future<Output = Result<PlanResponse, DaemonError>> + Send;

    /// The container runs in this cgroup (BindContainer).
    fn bind(&self, req: BindRequest) -> impl Future<Output = Result<(), DaemonError>> + Send;

    /// The container is gone (UnbindContainer). Must be idempotent: rampart-nri unbinds at both
    /// StopContainer and RemoveContainer.
    fn unbind(&self, container_id: &str) -> impl Future<Output = Result<(), DaemonError>> + Send;
}
