//! The only place in this crate with `unsafe`: thin wrappers over the syscalls nix does not wrap
//! (the seccomp notify ioctls, credentials, pidfds, statx, SCM_RIGHTS, seqpacket sockets, socket
//! options, fanotify groups handed over by the holder, a sysctl written from inside a pid
//! namespace), each returning `io::Result` so the rest of the agent is safe code.

pub mod creds;
pub mod fanotify;
pub mod notify;
pub mod pid_ns_sysctl;
pub mod pidfd;
pub mod scm;
pub mod seqpacket;
pub mod sockopt;
pub mod statx;
#[cfg(test)]
pub(crate) mod testing;
