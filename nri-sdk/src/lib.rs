//! The NRI plugin machinery, apart from what any one plugin does with the events:
//! - [`mux`]: NRI's connection multiplexer over the one unix stream to the runtime;
//! - [`ttrpc`]: ttrpc (framing, client, server loop) from `rampart-protos`, run on a virtual
//!   connection;
//! - [`client`]: calls to the runtime (RegisterPlugin, UpdateContainers);
//! - [`stub`]: one registered connection, serving the Plugin service to a [`Handler`];
//! - [`plugin`]: reconnecting with backoff around it;
//! - [`preconnected`]: the socket a runtime hands a plugin it starts from its plugin_path;
//! - [`handler`]: the hook point a plugin implements.
//!
//! rampart-nri is this plus rampart's handler. `unsafe` only in `sys` (owning the inherited fd
//! for [`preconnected`]); tokio's unix stream is all the other system access it needs.

pub mod client;
pub mod handler;
pub mod mux;
pub mod plugin;
pub mod preconnected;
pub mod stub;
#[allow(unsafe_code)]
mod sys;
/// ttrpc, shared with rampartd's agent API: one copy in `rampart-protos`.
pub use rampart_protos::ttrpc;

pub use handler::{CreateReply, EventMask, Handler, HandlerError, HandlerResult};
pub use plugin::{Plugin, PluginConfig};
pub use rampart_protos::nri;
