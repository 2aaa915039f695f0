//! rampartd's active response to a policy violation: kill the offending pod.
//! (Alert is the sinks' job; block is answered by the enforcer itself, and so is kill-process:
//! the seccomp agent kills the calling process while its notification is still pending, see
//! `rampart_seccomp::backstop::kill_process`.)
//!
//! - [`kill_pod`]: SIGKILL every container of a pod through containerd's CRI; the kubelet decides
//!   what happens next.
//!
//! See docs/responses.md for guarantees and limits.

pub mod cri;
pub mod kill_pod;

pub use kill_pod::{KillPodError, KilledPod, PodContainer, PodKiller, PodRef};
