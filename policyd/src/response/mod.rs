//! The active responses to a policy violation: kill the offending process, or kill its pod.
//! (Alert is the sinks' job; block is answered by the enforcer itself.)
//!
//! - [`kill_process`]: SIGKILL through a pidfd, after checking that the pid still names the
//!   process the decision was about (pid reuse never kills an innocent process);
//! - [`kill_pod`]: SIGKILL every container of a pod through containerd's CRI; the kubelet decides
//!   what happens next.
//!
//! See docs/responses.md for guarantees and limits.

pub mod cri;
pub mod kill_pod;
pub mod kill_process;
pub mod proc_stat;
mod sys;

pub use kill_pod::{KillPodError, KilledPod, PodContainer, PodKiller, PodRef};
pub use kill_process::{
    KillOutcome, KillProcess, KillProcessError, ProcessIdentity, Refusal, kill_process, open_pidfd,
};
pub use proc_stat::start_time;
