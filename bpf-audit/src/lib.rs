//! rampart-audit: eBPF and fanotify sensors for file, process and network events.
//!
//! Built so far: [`ConnectGuard`], the in-kernel egress backstop (cgroup connect4/6 and
//! sendmsg4/6 programs) for the seccomp agent's connect/send decisions, and the probe that tells
//! whether BPF LSM programs can decide on this kernel ([`lsm_probe`]).

pub mod connect_guard;
pub mod lsm_probe;

pub use connect_guard::{ConnectGuard, GuardError};
pub use lsm_probe::LsmSupport;
