//! The notify plumbing: taking notify fds from runc (and back from the holder), a thread per fd
//! answering its notifications, stopping them, and the list of supervised containers the agent announces to
//! rampartd.

pub mod listener;
pub mod shutdown;
pub mod supervised;
pub mod supervisor;
pub mod takeover;
