//! rampart-nri: the containerd NRI plugin that injects seccomp notify filters and binds cgroups.
//!
//! The NRI plugin machinery is `rampart-nri-sdk`, re-exported here under its own module names
//! ([`mux`], [`ttrpc`], [`client`], [`stub`], [`plugin`], [`preconnected`], [`handler`]). This
//! crate is what rampart does with it:
//! - [`inject`]: rampart's handler: plan from rampartd ([`daemon`]), inject ([`adjust`], in the
//!   [`mode`] the runtime supports), bind cgroups ([`bind`], [`cgroup`]), fail per policy
//!   ([`required`]); [`workload`] says who a container is; [`log_handler`] just logs;
//! - [`seccomp_merge`]: rampart's rules added to a container's own seccomp profile;
//!   [`seccomp_policy`] carries the result as NRI's seccomp adjustment (NRI >= 0.10);
//! - [`runc_args`], [`runc_wrapper`]: `rampart-runc`, which applies them on runtimes whose NRI
//!   cannot adjust seccomp (NRI < 0.10).
//!
//! No `unsafe`: the one the plugin needs (owning an inherited fd) is the SDK's, and tokio's unix
//! stream is all the other system access it needs.

#![forbid(unsafe_code)]

pub mod adjust;
pub mod bind;
pub mod cgroup;
pub mod daemon;
pub mod daemon_client;
pub mod guard_ready;
pub mod inject;
pub mod log_handler;
pub mod mode;
pub mod required;
pub mod runc_args;
pub mod runc_wrapper;
pub mod seccomp_merge;
pub mod seccomp_policy;
pub mod workload;

pub use rampart_nri_sdk::{
    CreateReply, EventMask, Handler, HandlerError, HandlerResult, Plugin, PluginConfig, client,
    handler, mux, nri, plugin, preconnected, stub, ttrpc,
};
