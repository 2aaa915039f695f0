//! rampartd: the shared policy daemon.
//!
//! Today this crate holds the journald sink, the one piece the node tests need; the daemon itself
//! (policy loading, workload registry, agent API, responses) is issue 3.

pub mod alerting;
pub mod api;
pub mod registry;
pub mod response;
pub mod sink;
