//! rampart-audit: eBPF and fanotify sensors for file, process and network events.
//!
//! - [`ConnectGuard`]: the in-kernel egress backstop (cgroup connect4/6 and sendmsg4/6 programs)
//!   for the seccomp agent's connect/send decisions;
//! - [`IngressGuard`]: ingress rules enforced by a cgroup_skb/ingress program per scoped
//!   container, on a table compiled from the policy;
//! - [`ProcessSensor`]: forks, execs and exits of watched containers, for the ancestry of every
//!   alert, and where each executed file is (drift);
//! - [`FlowSensor`]: their TCP connections as they open, fail and close;
//! - [`WriteSensor`]: files written in their root filesystems (fanotify, on close);
//! - [`lsm_probe`]: whether BPF LSM programs can decide on this kernel.

pub mod bpffs;
mod cgroup_dir;
pub mod connect_guard;
pub mod flow_sensor;
pub mod ingress_guard;
pub mod lsm_probe;
mod object_maps;
mod percpu_counts;
pub mod process_sensor;
pub mod process_table;
mod ring;
pub mod write_sensor;

pub use cgroup_dir::CgroupDirError;
pub use connect_guard::{ConnectGuard, GuardError};
pub use flow_sensor::{Flow, FlowHandler, FlowKind, FlowSensor};
pub use ingress_guard::{IngressCounts, IngressError, IngressEvent, IngressGuard};
pub use lsm_probe::LsmSupport;
pub use process_sensor::{Exec, ExecHandler, ExecOrigin, ProcessSensor, SensorCounts, SensorError};
pub use process_table::Ancestor;
pub use write_sensor::{Write, WriteHandler, WriteSensor, WriteSensorError};
