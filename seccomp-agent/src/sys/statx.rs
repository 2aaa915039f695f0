//! statx(2) for what `fstat` does not tell (nix has no statx).

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd};

/// The never-reused id of the mount `fd` is on, where the kernel has one (STATX_MNT_ID_UNIQUE,
/// Linux 6.8); `Unsupported` without it.
pub fn unique_mount_id(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let mut st = MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: the path is an empty NUL-terminated string (AT_EMPTY_PATH: `fd` itself), and `st`
    // is a statx buffer the kernel writes, living across the call.
    let rc = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_MNT_ID_UNIQUE,
            st.as_mut_ptr(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: zeroed is a valid statx, and statx succeeded in filling it.
    let st = unsafe { st.assume_init() };
    if st.stx_mask & libc::STATX_MNT_ID_UNIQUE == 0 {
        return Err(io::Error::from(io::ErrorKind::Unsupported));
    }
    Ok(st.stx_mnt_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_mount_has_a_unique_id_or_the_kernel_says_unsupported() {
        let root = std::fs::File::open("/").unwrap();
        match unique_mount_id(std::os::fd::AsFd::as_fd(&root)) {
            Ok(id) => assert_ne!(id, 0),
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::Unsupported, "{e}"),
        }
    }
}
