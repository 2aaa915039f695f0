//! procfs's `self` and `thread-self` links resolve by the *caller's* pid namespace: followed by
//! the agent (host pid namespace) inside a container's /proc they fail with ENOENT, so `cat
//! /proc/net/dev` (`net` → `self/net`) would fail in a protected pod. `procfs_self::rewrite`
//! catches the spellings that start with such a link; a path that reaches one another way
//! (`/etc/mtab` → `../proc/self/mounts`, `/proc/./net/dev`, a symlink of the workload's own) is
//! walked here, one component at a time, after the kernel's walk failed with ENOENT, with those
//! two links read as the task's.
//!
//! Each step is an openat2 confined to the container's root (RESOLVE_IN_ROOT, no magic links), and
//! the caller decides on the object it then opens (its path read back from the descriptor), so a
//! walk that races a rename finds some other object in the root, never one outside it.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{Mode, SFlag};

use crate::container::procfs::TaskInfo;

/// As many symlinks as the kernel follows in one walk.
const MAX_LINKS: usize = 40;

/// The path `path` (absolute, inside `root`) names, with every symlink followed (the last one
/// only if `follow_last`) and procfs's self links read as the task's: a path with no symlinks
/// left in it, for the caller to look up again.
pub fn walk(
    root: BorrowedFd<'_>,
    path: &OsStr,
    task: &TaskInfo,
    follow_last: bool,
) -> io::Result<OsString> {
    let mut resolved: Vec<Vec<u8>> = Vec::new();
    let mut pending: Vec<Vec<u8>> = components(path.as_bytes());
    // `pending` is a stack: its last element is the next component.
    pending.reverse();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        match c.as_slice() {
            b"." => continue,
            b".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let candidate = joined(&resolved, &c);
        let fd = open_in_root(root, &candidate)?;
        let is_link = SFlag::from_bits_truncate(nix::sys::stat::fstat(fd.as_fd())?.st_mode)
            .contains(SFlag::S_IFLNK);
        if !is_link || (pending.is_empty() && !follow_last) {
            resolved.push(c);
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return Err(io::Error::from_raw_os_error(libc::ELOOP));
        }
        let target = match nix::fcntl::readlinkat(fd.as_fd(), "") {
            Ok(t) => t.into_vec(),
            Err(nix::errno::Errno::ENOENT) if is_proc(fd.as_fd()) => match c.as_slice() {
                b"self" => task.ns_tgid.to_string().into_bytes(),
                b"thread-self" => format!("{}/task/{}", task.ns_tgid, task.ns_tid).into_bytes(),
                _ => return Err(io::Error::from_raw_os_error(libc::ENOENT)),
            },
            Err(e) => return Err(e.into()),
        };
        if target.starts_with(b"/") {
            resolved.clear();
        }
        pending.extend(components(&target).into_iter().rev());
    }
    Ok(OsString::from_vec(joined(&resolved, b"")))
}

fn components(path: &[u8]) -> Vec<Vec<u8>> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// `/a/b` + `c` → `/a/b/c` (`/a/b` for an empty `last`).
fn joined(resolved: &[Vec<u8>], last: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    for c in resolved.iter().map(Vec::as_slice).chain([last]) {
        if !c.is_empty() {
            p.push(b'/');
            p.extend_from_slice(c);
        }
    }
    if p.is_empty() {
        p.push(b'/');
    }
    p
}

fn open_in_root(root: BorrowedFd<'_>, path: &[u8]) -> io::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .mode(Mode::empty())
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    Ok(nix::fcntl::openat2(root, OsStr::from_bytes(path), how)?)
}

fn is_proc(fd: BorrowedFd<'_>) -> bool {
    nix::sys::statfs::fstatfs(fd)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> TaskInfo {
        TaskInfo::read(nix::unistd::gettid().as_raw() as u32).unwrap()
    }

    fn root() -> OwnedFd {
        nix::fcntl::open("/", OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap()
    }

    #[test]
    fn symlinks_dots_and_absolute_targets_are_followed_inside_the_root() {
        let d = std::env::temp_dir().join(format!("rampart-self-links-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("a/b")).unwrap();
        std::fs::write(d.join("a/b/f"), "x").unwrap();
        std::os::unix::fs::symlink("a/b", d.join("rel")).unwrap();
        std::os::unix::fs::symlink(d.join("a"), d.join("abs")).unwrap();
        std::os::unix::fs::symlink("loop", d.join("loop")).unwrap();
        let r = root();
        let w = |p: &str, follow| walk(r.as_fd(), OsStr::new(p), &me(), follow);
        let base = d.display().to_string();
        let f = format!("{base}/a/b/f");
        assert_eq!(w(&format!("{base}/rel/f"), true).unwrap(), OsStr::new(&f));
        assert_eq!(
            w(&format!("{base}/abs/./b/../b/f"), true).unwrap(),
            OsStr::new(&f)
        );
        // The last component is left alone without `follow_last` (O_NOFOLLOW).
        let rel = format!("{base}/rel");
        assert_eq!(w(&rel, false).unwrap(), OsStr::new(&rel));
        assert_eq!(
            w(&format!("{base}/loop"), true).unwrap_err().raw_os_error(),
            Some(libc::ELOOP)
        );
        assert_eq!(
            w(&format!("{base}/missing/f"), true)
                .unwrap_err()
                .raw_os_error(),
            Some(libc::ENOENT)
        );
        // `..` never climbs above the root.
        assert_eq!(w("/../../..", true).unwrap(), OsStr::new("/"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn procfs_self_links_are_read_as_the_task() {
        let t = me();
        // This process is in the procfs's pid namespace, so the kernel resolves `self` here; the
        // walk must give the same place.
        let got = walk(root().as_fd(), OsStr::new("/proc/net/dev"), &t, true).unwrap();
        assert_eq!(got, OsString::from(format!("/proc/{}/net/dev", t.ns_tgid)));
    }
}
