//! The notify plumbing: taking notify fds from runc (and back from the holder), a thread per fd
//! answering its notifications, stopping them, the link to rampartd, and the list of supervised
//! containers the agent announces to it.

pub mod daemon_link;
pub mod listener;
pub mod shutdown;
pub mod supervised;
pub mod supervisor;
pub mod takeover;
