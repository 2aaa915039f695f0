//! Where an executable comes from: the container's image, or not (drift). Decided on the file the
//! kernel opened, never on its name: a binary dropped at /usr/sbin/nginx, an image binary written
//! over, a memfd called "nginx" are all not the image's nginx.
//!
//! A container's root is an overlayfs: the image's layers below (read-only), the container's own
//! writes in the upper layer. With all layers on one filesystem (how containerd's overlayfs
//! snapshotter lays them out) overlayfs reports each file's real inode number, so a file is the
//! image's when no upper entry shadows its path and the topmost lower layer that has the path has
//! that very inode. A file copied up (written, or its metadata changed) is in the upper layer: it
//! is not the image's any more. A rename of a dropped file away from the checked path meanwhile
//! leaves a lower file with another inode, or none: still not the image's.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd};

use nix::fcntl::OFlag;
use nix::sys::stat::fstat;

use crate::container::layers::{Lookup, lookup, root_layers};
use crate::guard::mounts::task_root;

/// What an executable is, as far as drift is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A file of the image's lower layers, unmodified.
    Image,
    /// In the root's upper layer: written after the container started, or an image file
    /// modified (copied up).
    Written,
    /// On another filesystem than the root: a volume, a tmpfs, /dev/shm.
    OtherFilesystem,
    /// A memfd, or a file deleted since it was opened.
    Unlinked,
    /// The root is not an overlayfs (another snapshotter): rampart can't tell, and takes the
    /// file for the image's rather than fail the workload.
    Unknown,
    /// Not looked up: no rule that applies could decide differently for a file not the image's.
    Unchecked,
}

impl Origin {
    pub fn in_image(self) -> bool {
        matches!(self, Origin::Image | Origin::Unknown | Origin::Unchecked)
    }
}

/// Whether task `tid`'s executable, which the container names `exe`, is the image's own file:
/// an allowance for /usr/sbin/nginx is for the image's nginx, not for what a process put at
/// that path (written after the container started, a memfd, a file on a volume).
pub fn is_image_exe(tid: u32, exe: &str) -> bool {
    let Ok(file) = nix::fcntl::open(
        format!("/proc/{tid}/exe").as_str(),
        OFlag::O_PATH | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) else {
        return false;
    };
    Origin::of(tid, file.as_fd(), exe).in_image()
}

impl Origin {
    /// Where `file` (open, O_PATH is enough), which task `tid` named `path` (the container's
    /// path of the file, as its descriptor reads), comes from.
    pub fn of(tid: u32, file: BorrowedFd<'_>, path: &str) -> Origin {
        let (Ok(st), Ok(root)) = (fstat(file), task_root(tid)) else {
            // The task is gone or the file unreadable: nothing runs from it anyway.
            return Origin::Unlinked;
        };
        let Ok(root_st) = fstat(root.as_fd()) else {
            return Origin::Unlinked;
        };
        if st.st_nlink == 0 {
            return Origin::Unlinked;
        }
        if st.st_dev != root_st.st_dev {
            return Origin::OtherFilesystem;
        }
        let Some(layers) = root_layers().of(tid, root.as_fd()) else {
            return Origin::Unknown;
        };
        let Some(rel) = path.strip_prefix('/').and_then(|r| CString::new(r).ok()) else {
            return Origin::Written;
        };
        match lookup(&layers.upper, &rel) {
            Lookup::Found(_) | Lookup::Unsure => return Origin::Written,
            Lookup::Absent => {}
        }
        for lower in &layers.lowers {
            match lookup(lower, &rel) {
                Lookup::Found(ino) if ino == st.st_ino => return Origin::Image,
                Lookup::Found(_) | Lookup::Unsure => return Origin::Written,
                Lookup::Absent => {}
            }
        }
        Origin::Written
    }
}
