//! The crate's only `unsafe`: taking ownership of the socket the runtime left open for a
//! pre-registered plugin ([`crate::preconnected`]). Everything else is tokio's unix stream.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// Why [`take_inherited_socket`] did not take the fd.
#[derive(Debug)]
pub(crate) enum NotTaken {
    /// `fd` is not an open socket; what `/proc/self/fd/<fd>` says it is instead.
    NotASocket(String),
    /// The socket was taken before: it can be owned once.
    Taken,
}

static TAKEN: AtomicBool = AtomicBool::new(false);

/// Takes ownership of `fd`, a socket this process inherited, once per process.
pub(crate) fn take_inherited_socket(fd: RawFd) -> Result<OwnedFd, NotTaken> {
    // Checked before claiming it: a stray variable must not make us close or read someone's fd.
    let what = std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|e| format!("not open: {e}"));
    if !what.starts_with("socket:") {
        return Err(NotTaken::NotASocket(what));
    }
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Err(NotTaken::Taken);
    }
    // SAFETY: fd is open and a socket (checked above through /proc); this process inherited it
    // from the runtime and nothing else in it owns the fd: the swap above makes this the only
    // place that ever wraps it, so the OwnedFd is its single owner and closes it exactly once.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
