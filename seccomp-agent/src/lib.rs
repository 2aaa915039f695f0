//! rampart-seccomp: the agent that supervises seccomp user-notify filters.
//!
//! runc connects to the agent's listener socket and hands over a notify fd for every process it
//! starts in a protected container; the agent answers every notification on it. Deny with an errno
//! is always safe; an allow decided from pointer arguments is not (the kernel re-reads user memory
//! after CONTINUE), so allowed opens are emulated and execve/connect are backed by in-kernel checks
//! (issue 5).

pub mod daemon_link;
pub mod egress_guard;
pub mod emulate_open;
pub mod entry;
pub mod exec_guard;
pub mod fifo_open;
pub mod file_call;
pub mod handle_chmod;
pub mod handle_connect;
pub mod handle_exec;
pub mod handle_hardening;
pub mod handle_new_name;
pub mod handle_open;
pub mod handle_remove;
pub mod handle_truncate;
pub mod holder;
pub mod holder_client;
pub mod holder_protocol;
pub mod kill_process;
pub mod listener;
pub mod memory;
pub mod policy_handler;
pub mod procfs_self;
pub mod resolve;
pub mod shutdown;
pub mod stage_times;
pub mod supervised;
pub mod supervisor;
#[allow(unsafe_code)]
pub mod sys;
pub mod syscall;
pub mod takeover;
pub mod task;
pub mod workload;
