//! [`KernelAuditor`]: what rampartd does itself in the kernel for the containers in its registry:
//! the ingress guard (cgroup programs on each bound container's cgroup) and the process sensor
//! (forks, execs and exits of bound containers, for every alert's ancestry and for drift). The
//! daemon tells it of every plan, bind, announcement and unbind, and asks it for the ancestry of
//! the process each reported event names.

use rampart_protos::agent::{Mechanism, PlanResponse, ProcessRef, SensorCount, WorkloadFlows};

use crate::registry::ContainerEntry;

pub trait KernelAuditor: Send + Sync + 'static {
    /// rampart-nri planned the container (CreateContainer): what its seccomp filter decides. A
    /// container bound without a plan (it ran before rampart-nri) has no filter at all.
    fn planned(&self, container_id: &str, plan: &PlanResponse);

    /// The container runs in `entry`'s cgroup, from before its process starts (StartContainer)
    /// or since before rampartd knew it (Synchronize, an announcement). An error means a rule
    /// that scopes the container is not enforced: the binder refuses a required container.
    fn bound(&self, entry: &ContainerEntry) -> Result<(), String>;

    /// The container is gone.
    fn unbound(&self, entry: &ContainerEntry);

    /// rampart-nri announced the containers it knows (its Hello): the registry can name what
    /// the kernel saw before.
    fn announced(&self);

    /// What the sensors counted of a bound container: its TCP connections, and its events their
    /// rings could not hold. None if it is not watched.
    fn workload(&self, container_id: &str) -> Option<(Option<WorkloadFlows>, u64)>;

    /// The processes that started host pid `pid`, its parent first (bounded).
    fn ancestors(&self, pid: u32) -> Vec<ProcessRef>;

    /// Every mechanism it has, in use or not and why not.
    fn mechanisms(&self) -> Vec<Mechanism>;

    /// Its kernel sensors' written and dropped counts.
    fn sensors(&self) -> Vec<SensorCount>;
}
