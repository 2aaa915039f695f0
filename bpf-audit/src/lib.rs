//! rampart-audit: eBPF and fanotify sensors for file, process and network events.
//!
//! Built so far: [`ConnectGuard`], the in-kernel egress backstop (cgroup connect4/6 and
//! sendmsg4/6 programs) for the seccomp agent's connect/send decisions, and the probe that tells
//! whether BPF LSM programs can decide on this kernel ([`lsm_probe`]), and the process sensor
//! ([`ProcessSensor`]): forks, execs and exits of watched containers, for the ancestry of
//! every alert.

pub mod connect_guard;
pub mod lsm_probe;
mod object_maps;
pub mod process_sensor;
pub mod process_table;

pub use connect_guard::{ConnectGuard, GuardError};
pub use lsm_probe::LsmSupport;
pub use process_sensor::{ProcessSensor, SensorCounts, SensorError};
pub use process_table::Ancestor;
