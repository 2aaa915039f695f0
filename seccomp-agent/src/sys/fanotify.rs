//! What nix's fanotify wrapper can't do: adopt a group fd handed over by the fd holder, and
//! answer a permission event by the number of a descriptor this process does not have (the
//! events a killed agent read and never answered).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::fanotify::Fanotify;

/// Wraps `fd` as a fanotify group. The caller knows it is one: the holder only gives back what
/// the agent gave it, and the description says what it is.
pub fn adopt(fd: OwnedFd) -> Fanotify {
    // SAFETY: `from_owned_fd` only asks that the fd be a fanotify group; every other use would
    // fail with an errno (EINVAL/EBADF), never touch memory.
    unsafe { Fanotify::from_owned_fd(fd) }
}

/// Writes a response for the event whose descriptor had number `event_fd` in the reader that
/// read it. ENOENT: no such pending event.
pub fn respond_raw(group: &Fanotify, event_fd: i32, allow: bool) -> io::Result<()> {
    let response = libc::fanotify_response {
        fd: event_fd,
        response: if allow {
            libc::FAN_ALLOW
        } else {
            libc::FAN_DENY
        },
    };
    // SAFETY: the buffer is a fanotify_response that lives across the call, and its exact size
    // is passed.
    let n = unsafe {
        libc::write(
            group.as_raw_fd(),
            (&response as *const libc::fanotify_response).cast(),
            std::mem::size_of::<libc::fanotify_response>(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
