//! Naming a directory entry the way unlink, rename, link and chmod's callers mean it: every
//! component but the last resolved inside the container (symlinks followed, as the kernel does),
//! the last kept as a name and not followed. Policy decides on the parent's real path plus that
//! name, and the emulated call works on the same parent descriptor and the same name, so the
//! checked entry is the one changed.

use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::fcntl::AtFlags;
use nix::sys::stat::{FileStat, SFlag, fstatat};

use crate::container::dir::Dir;
use crate::container::procfs::TaskInfo;
use crate::container::resolve::{self, Object, OpenRequest, ResolveError};
use crate::sys::creds::Assumed;

/// One directory entry, found inside the container.
#[derive(Debug)]
pub struct Entry {
    /// The directory that holds it (an O_PATH descriptor).
    pub parent: OwnedFd,
    /// The last component as the task wrote it, trailing slashes kept: the kernel applies its
    /// own rules for them ("must be a directory") when the call is emulated.
    pub name: CString,
    /// Its path in the container, for policy.
    pub path: String,
}

impl Entry {
    /// The entry's own metadata (a symlink's, not its target's); ENOENT if it doesn't exist.
    pub fn stat(&self) -> Result<FileStat, ResolveError> {
        fstatat(
            self.parent.as_fd(),
            self.name.as_c_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|errno| ResolveError::Os {
            step: "stat of the entry",
            errno,
        })
    }
}

/// A file found by following the whole path (chmod, truncate, exec, a followed link source).
#[derive(Debug)]
pub struct File {
    /// An O_PATH descriptor of it.
    pub fd: OwnedFd,
    /// Its path in the container, for policy.
    pub path: String,
}

impl File {
    /// Our own magic link to it (`/proc/self/fd/N`): how the agent reaches the very inode it
    /// checked, for calls that take a path (chmod, linkat, a reopen).
    pub fn own_path(&self) -> CString {
        CString::new(format!("/proc/self/fd/{}", self.fd.as_raw_fd())).expect("a number has no NUL")
    }
}

/// Finds the existing file `req` names for task `tid`, with the task's credentials assumed as
/// `resolve::resolve` leaves them.
pub fn find_file(
    tid: u32,
    task: &TaskInfo,
    req: &OpenRequest<'_>,
) -> Result<(File, Assumed), ResolveError> {
    match resolve::resolve(tid, task, req)? {
        (Object::Existing { fd, path }, creds) => Ok((
            File {
                fd,
                path: path.to_string_lossy().into_owned(),
            },
            creds,
        )),
        // Only an O_CREAT request yields a name to create.
        (Object::ToCreate { .. }, _) => Err(ResolveError::NotFound),
    }
}

/// Whether `st` is a directory.
pub fn is_dir(st: &FileStat) -> bool {
    st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits()
}

/// Finds the entry `path` names (relative to `dir`) for task `tid`. Returns it with the task's
/// credentials assumed by this thread, as `resolve::resolve` does.
pub fn find(
    tid: u32,
    task: &TaskInfo,
    dir: Dir,
    path: &OsStr,
) -> Result<(Entry, Assumed), ResolveError> {
    let (parent, name) = split(path.as_bytes())?;
    let req = OpenRequest {
        dir,
        path: OsStr::from_bytes(parent),
        flags: libc::O_DIRECTORY as u64,
        resolve: 0,
    };
    let (object, creds) = resolve::resolve(tid, task, &req)?;
    let Object::Existing { fd, path } = object else {
        // Only an O_CREAT request yields a name to create.
        return Err(ResolveError::NotFound);
    };
    let bare = trim_slashes(name);
    let mut full = path.as_os_str().as_bytes().to_vec();
    if full.last() != Some(&b'/') {
        full.push(b'/');
    }
    full.extend_from_slice(bare);
    let entry = Entry {
        parent: fd,
        name: CString::new(name).map_err(|_| ResolveError::InvalidName)?,
        path: String::from_utf8_lossy(&full).into_owned(),
    };
    Ok((entry, creds))
}

/// Splits a path into the part to resolve and the last component (with its trailing slashes).
fn split(path: &[u8]) -> Result<(&[u8], &[u8]), ResolveError> {
    if path.is_empty() {
        return Err(ResolveError::EmptyPath);
    }
    let bare = trim_slashes(path);
    if bare.is_empty() {
        // "/" itself: it is nobody's entry to remove or rename.
        return Err(ResolveError::Root);
    }
    let (parent, name) = match bare.iter().rposition(|b| *b == b'/') {
        Some(i) => (if i == 0 { &b"/"[..] } else { &path[..i] }, &path[i + 1..]),
        None => (&b"."[..], path),
    };
    match trim_slashes(name) {
        // unlink/rename/link of "." or ".." are refused by the kernel too.
        b"." | b".." => Err(ResolveError::InvalidName),
        _ => Ok((parent, name)),
    }
}

fn trim_slashes(p: &[u8]) -> &[u8] {
    let end = p.iter().rposition(|b| *b != b'/').map_or(0, |i| i + 1);
    &p[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_the_kernel() {
        let s = |p: &str| {
            split(p.as_bytes())
                .map(|(a, b)| {
                    (
                        String::from_utf8(a.to_vec()).unwrap(),
                        String::from_utf8(b.to_vec()).unwrap(),
                    )
                })
                .map_err(|e| e.errno())
        };
        assert_eq!(s("/etc/passwd"), Ok(("/etc".into(), "passwd".into())));
        assert_eq!(s("/passwd"), Ok(("/".into(), "passwd".into())));
        assert_eq!(s("passwd"), Ok((".".into(), "passwd".into())));
        assert_eq!(s("a//b/"), Ok(("a/".into(), "b/".into())));
        assert_eq!(s("../x"), Ok(("..".into(), "x".into())));
        assert_eq!(s("/"), Err(libc::EBUSY));
        assert_eq!(s(""), Err(libc::ENOENT));
        assert_eq!(s("a/.."), Err(libc::EINVAL));
    }

    #[test]
    fn finds_the_entry_not_what_a_symlink_points_to() {
        let dir = std::env::temp_dir().join(format!("rampart-entry-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("target"), b"x").unwrap();
        let _ = std::fs::remove_file(dir.join("link"));
        std::os::unix::fs::symlink(dir.join("target"), dir.join("link")).unwrap();
        let tid = nix::unistd::gettid().as_raw() as u32;
        let task = TaskInfo::read(tid).unwrap();
        let link = dir.join("link");
        let (e, creds) = find(tid, &task, Dir::Cwd, link.as_os_str()).unwrap();
        drop(creds);
        assert_eq!(e.path, link.to_str().unwrap());
        let st = e.stat().unwrap();
        assert_eq!(st.st_mode & SFlag::S_IFMT.bits(), SFlag::S_IFLNK.bits());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
