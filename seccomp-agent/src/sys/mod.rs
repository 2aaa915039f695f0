//! The only place in this crate with `unsafe`: thin wrappers over the seccomp notify ioctls and
//! openat2, each returning `io::Result` so the rest of the agent is safe code.

pub mod creds;
pub mod notify;
pub mod openat2;
pub mod scm;
pub mod seqpacket;
#[cfg(test)]
pub(crate) mod testing;
