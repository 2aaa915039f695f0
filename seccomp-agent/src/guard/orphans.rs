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

/// Descriptor numbers tried: the dead agent's were below its open file limit, which is this
/// agent's too (same binary, same unit), capped to bound the sweep (~1 µs a number).
fn highest_fd() -> i32 {
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024);
    i32::try_from(soft.min(65_536)).unwrap_or(65_536)
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
