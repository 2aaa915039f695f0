//! The fd holder: a separate process keeping a copy of every supervised notify fd so containers
//! outlive an agent restart (`server`), the agent's side of it (`client`), and their wire format
//! (`protocol`).

pub mod client;
pub mod protocol;
pub mod server;
