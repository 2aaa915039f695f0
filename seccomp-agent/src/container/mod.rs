//! Seeing what the notifying task sees: its memory, its credentials and pids, and paths resolved
//! and files opened inside its container, as the task itself would.

pub mod cgroup;
pub mod dir;
pub mod emulate_open;
pub mod entry;
pub mod fifo_open;
pub mod layers;
pub mod memory;
pub mod origin;
pub mod procfs;
pub mod procfs_self;
pub mod resolve;
pub mod self_links;
pub mod users;
