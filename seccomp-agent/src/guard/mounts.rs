//! A container's mounts, as its tasks see them: what the file guard marks.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::fanotify::{Fanotify, MarkFlags, MaskFlags};
use tracing::debug;

use crate::sys::statx;

/// The task's root directory, as an O_PATH descriptor.
pub fn task_root(tid: u32) -> io::Result<OwnedFd> {
    nix::fcntl::open(
        format!("/proc/{tid}/root").as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(io::Error::from)
}

/// The never-reused id of the task's root mount, where the kernel has one (Linux 6.8); without
/// it, the mounts are marked again on every exec (idempotent, only slower).
pub fn unique_root_mount(tid: u32) -> io::Result<u64> {
    statx::unique_mount_id(task_root(tid)?.as_fd())
}

/// The inode of `/proc/<tid>/ns/<kind>`: the namespace's identity.
pub fn ns_inode(tid: u32, kind: &str) -> io::Result<u64> {
    std::fs::metadata(format!("/proc/{tid}/ns/{kind}")).map(|m| m.ino())
}

/// Marks `mask` on every mount listed in the task's mountinfo, each resolved inside the task's
/// root. Returns how many were marked; failing to mark the root is an error.
pub fn mark_all(fan: &Fanotify, tid: u32, mask: MaskFlags) -> io::Result<usize> {
    let root = task_root(tid)?;
    let info = std::fs::read_to_string(format!("/proc/{tid}/mountinfo"))?;
    let mut marked = 0;
    for point in mount_points(&info) {
        let rel = point.trim_start_matches('/');
        let target = if rel.is_empty() { "." } else { rel };
        let Ok(c) = std::ffi::CString::new(target) else {
            continue;
        };
        // Mount points in mountinfo have no symlinks; refusing them keeps a path inside the
        // container from steering the mark to a host mount.
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(
                ResolveFlag::RESOLVE_IN_ROOT
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS,
            );
        let fd = match openat2(root.as_fd(), c.as_c_str(), how) {
            Ok(fd) => fd,
            Err(e) => {
                debug!(tid, mount = point, error = %e, "file guard: mount not reachable; skipped");
                continue;
            }
        };
        // fanotify_mark won't take an O_PATH descriptor itself; its magic link names the same
        // mount.
        let own = format!("/proc/self/fd/{}", fd.as_raw_fd());
        match fan.mark(
            MarkFlags::FAN_MARK_ADD | MarkFlags::FAN_MARK_MOUNT,
            mask,
            nix::fcntl::AT_FDCWD,
            Some(own.as_str()),
        ) {
            Ok(()) => marked += 1,
            Err(e) if point == "/" => return Err(io::Error::from(e)),
            // Pseudo filesystems the kernel won't mark (nothing on them is a file to guard).
            Err(e) => debug!(tid, mount = point, error = %e, "file guard: cannot mark"),
        }
    }
    Ok(marked)
}

/// The mount points of a mountinfo text (field 5), with its octal escapes undone.
pub fn mount_points(info: &str) -> Vec<String> {
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
pub(crate) fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_field_five_unescaped() {
        let info = "22 1 0:21 / / rw,relatime - overlay overlay rw\n\
                    23 22 0:22 / /proc rw - proc proc rw\n\
                    24 22 8:1 /x /mnt/with\\040space rw - ext4 /dev/sda1 rw\n";
        assert_eq!(mount_points(info), ["/", "/proc", "/mnt/with space"]);
    }
}
