//! rampart-audit: eBPF and fanotify sensors for file, process and network events.
//!
//! Built so far: [`ConnectGuard`], the in-kernel egress backstop (cgroup connect4/6 and
//! sendmsg4/6 programs) for the seccomp agent's connect/send decisions.

pub mod connect_guard;

pub use connect_guard::{ConnectGuard, GuardError};
