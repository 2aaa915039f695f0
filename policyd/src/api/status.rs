//! The Status RPC: what [`Daemon`](super::Daemon) knows itself (identity, snapshot version,
//! registry, agents, event counters) plus what only the daemon's main loop knows (the loaded
//! policies, files that failed to load, the alert pipeline's counters), which it supplies through
//! a [`StatusSource`].

use std::time::{SystemTime, UNIX_EPOCH};

use rampart_protos::agent::{PolicyLoadError, PolicyStatus, Workload};

/// The alert pipeline's side of the counters in `rampartctl status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlertCounters {
    /// Alerts handed to the sinks.
    pub written: u64,
    /// Repeats folded into a dedup window's summary instead of written one by one.
    pub deduplicated: u64,
    /// Alerts suppressed by the per-workload rate limit.
    pub rate_limited: u64,
    /// Journal entries waiting for journald (it is down or slow).
    pub journald_queued: u64,
    /// Journal entries lost because that queue was full.
    pub journald_dropped: u64,
}

/// What rampartd's main loop adds to the status. Called on the Status RPC's task, once per call:
/// implementations should answer from state they already hold and not block.
pub trait StatusSource: Send + Sync + 'static {
    /// Every loaded policy, in a stable order (by name).
    fn policies(&self) -> Vec<PolicyStatus>;

    /// Files whose last load failed, with the policy crate's `file:line:column` diagnostics.
    fn load_errors(&self) -> Vec<PolicyLoadError>;

    /// Names of the policies whose selector matches `workload` (learn-mode ones included).
    fn policies_in_scope(&self, workload: &Workload) -> Vec<String>;

    fn alert_counters(&self) -> AlertCounters;
}

/// Milliseconds since the Unix epoch; 0 for times before it (the wire's "unknown").
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
