//! rampart-nri: the containerd NRI plugin that injects seccomp notify filters and binds cgroups.
//!
//! This crate is the protocol layer and the plugin's skeleton:
//! - [`mux`]: NRI's connection multiplexer over the one unix stream to the runtime;
//! - [`ttrpc`]: ttrpc message framing and envelopes over a virtual connection;
//! - [`client`]: calls to the runtime (RegisterPlugin, UpdateContainers);
//! - [`stub`]: one registered connection, serving the Plugin service to a [`Handler`];
//! - [`plugin`]: reconnecting with backoff around it;
//! - [`handler`]: the hook point the policy logic implements; [`log_handler`] just logs;
//! - [`inject`]: rampart's handler: plan from rampartd ([`daemon`]), inject ([`adjust`], in the
//!   [`mode`] the runtime supports), bind cgroups ([`bind`], [`cgroup`]), fail per policy
//!   ([`required`]); [`workload`] says who a container is;
//! - [`seccomp_merge`]: rampart's rules added to a container's own seccomp profile;
//!   [`seccomp_policy`] carries the result as NRI's seccomp adjustment (NRI >= 0.10);
//! - [`runc_args`], [`runc_wrapper`]: `rampart-runc`, which applies them on runtimes whose NRI
//!   cannot adjust seccomp (NRI < 0.10).
//!
//! - [`preconnected`]: the socket a runtime hands a plugin it starts from its plugin_path.
//!
//! `unsafe` only in `sys` (owning the inherited fd for [`preconnected`]); tokio's unix stream is
//! all the other system access it needs. The workspace denies `unsafe_code` everywhere else.

pub mod adjust;
pub mod bind;
pub mod cgroup;
pub mod client;
pub mod daemon;
pub mod daemon_client;
pub mod handler;
pub mod inject;
pub mod log_handler;
pub mod mode;
pub mod mux;
pub mod plugin;
pub mod preconnected;
pub mod required;
pub mod runc_args;
pub mod runc_wrapper;
pub mod seccomp_merge;
pub mod seccomp_policy;
pub mod stub;
#[allow(unsafe_code)]
mod sys;
pub mod workload;
/// ttrpc framing, shared with rampartd's agent API: one copy in `rampart-protos`.
pub use rampart_protos::ttrpc;

pub use handler::{CreateReply, EventMask, Handler, HandlerError, HandlerResult};
pub use plugin::{Plugin, PluginConfig};
pub use rampart_protos::nri;
