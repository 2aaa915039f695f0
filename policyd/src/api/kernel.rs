//! [`KernelEnforcer`]: enforcement rampartd does itself, in the kernel, for the containers in
//! its registry (today ingress: cgroup programs on each bound container's cgroup). The daemon
//! tells it of every bind, announcement and unbind; it says what it runs for `rampartctl status`.

use rampart_protos::agent::{Mechanism, SensorCount};

use crate::registry::ContainerEntry;

pub trait KernelEnforcer: Send + Sync + 'static {
    /// The container runs in `entry`'s cgroup, from before its process starts (StartContainer)
    /// or since before rampartd knew it (Synchronize, an announcement). An error means a rule
    /// that scopes the container is not enforced: the binder refuses a required container.
    fn bound(&self, entry: &ContainerEntry) -> Result<(), String>;

    /// The container is gone.
    fn unbound(&self, entry: &ContainerEntry);

    /// Every mechanism it has, in use or not and why not.
    fn mechanisms(&self) -> Vec<Mechanism>;

    /// Its kernel sensors' written and dropped counts.
    fn sensors(&self) -> Vec<SensorCount>;
}
