//! The kernel-side checks behind an allowed CONTINUE (the kernel re-reads user memory after it),
//! and the kill-process response.

pub mod egress_guard;
pub mod kill_process;
