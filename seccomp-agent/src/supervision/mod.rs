//! The notify plumbing: taking notify fds from runc (and back from the holder), a thread per fd
//! answering its notifications, stopping them, and the link to rampartd.

pub mod daemon_link;
pub mod listener;
pub mod shutdown;
pub mod supervisor;
pub mod takeover;
