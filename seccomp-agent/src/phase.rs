//! Where the tasks of one notify fd are in their life: shared by the supervisor, which moves an
//! fd from one phase to the next, and the fd holder, which must remember it across restarts.

/// Where the tasks of one notify fd are in their life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// runc's init, between installing the filter and exec'ing the container's process: runc
    /// itself (trusted) reads /etc/passwd and /etc/group to set up the user and opens its exec
    /// FIFO. Nothing the workload controls runs yet. Ends at the first execve.
    RuntimeInit,
    /// The workload's own code: every notification is decided by policy.
    Workload,
}
