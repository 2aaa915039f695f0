//! The permission events a killed agent read and never answered.
//!
//! The kernel keeps them pending in the group (the holder keeps the group open), each waiting
//! for a response that names the descriptor number the dead agent was given for it. Nothing else
//! can ever answer them: their tasks would wait until killed. The next agent refuses them, by
//! number, before it reads anything itself (a number it reads could match an orphan's, and a
//! response goes to the oldest match). Refusing is the answer that can't be wrong: the dead agent
//! may have been about to refuse. An open refused this way fails with EPERM once.

use nix::sys::fanotify::Fanotify;
use tracing::warn;

use crate::sys::fanotify::respond_raw;

/// Descriptor numbers tried. The dead agent's were below its open file limit, which is this
/// agent's too (same binary, same unit). The kernel hands out the lowest free number, so they
/// sat just above the descriptors it held, about as many as this agent holds now, having taken
/// the same fds from the holder: four times this agent's highest number (at least 1024), within
/// the limit, leaves room for the event descriptors of the batches it was answering and bounds
/// the sweep (~1 µs a number, per group).
fn highest_fd() -> i32 {
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024);
    let own = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0);
    let bound = (own.saturating_mul(4)).max(1024).min(soft);
    i32::try_from(bound).unwrap_or(i32::MAX)
}

/// Refuses every pending event that was read and never answered. Returns how many.
pub fn refuse(group: &Fanotify) -> usize {
    let mut refused = 0;
    for fd in 0..highest_fd() {
        if respond_raw(group, fd, false).is_ok() {
            refused += 1;
        }
    }
    if refused > 0 {
        warn!(
            refused,
            "file guard: refused the opens and execs the previous agent read and never answered (they fail with EPERM)"
        );
    }
    refused
}
