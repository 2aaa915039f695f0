//! rampart-seccomp: the agent that supervises seccomp user-notify filters.
//!
//! runc connects to the agent's listener socket and hands over a notify fd for every process it
//! starts in a protected container; the agent answers every notification on it. Deny with an errno
//! is always safe; an allow decided from pointer arguments is not (the kernel re-reads user memory
//! after CONTINUE), so allowed opens are emulated and execve/connect are backed by in-kernel checks
//! (issue 5).

#![deny(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod backstop;
pub mod container;
pub mod daemon_link;
pub mod dispatcher;
pub mod guard;
pub mod handlers;
pub mod holder;
pub mod mechanisms;
pub mod outcome;
pub mod phase;
pub mod reporter;
pub mod stage_times;
pub mod supervision;
#[allow(unsafe_code)]
pub mod sys;
pub mod syscall;
pub mod task;
pub mod workload;
