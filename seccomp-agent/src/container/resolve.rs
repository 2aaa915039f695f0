//! Finding the object an open names, inside the container, as the task would.
//!
//! The agent never decides on the path the task passed: `..`, `//`, symlinks, `/proc/self/root`,
//! and relative paths from a dirfd or the cwd all change what it means. It resolves the path itself
//! (with the task's credentials assumed by the caller) to an O_PATH descriptor of the real object,
//! then asks the kernel for that object's path in the container (readlink of the descriptor).
//! Policy decides on that path, and the emulated open reuses the same descriptor, so what was
//! checked is exactly what is opened.
//!
//! Resolution runs inside the container's root with RESOLVE_IN_ROOT (absolute symlinks and `..`
//! stay inside it: a container can't make the agent open a host file) and RESOLVE_NO_MAGICLINKS
//! (no jumping through /proc/<pid>/fd/N to another root). The task's own magic links are reopened
//! through the host's procfs instead (see `procfs_self`).

use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

use crate::container::dir::Dir;
use crate::container::procfs::{TaskInfo, open_in_proc, read_link_at, read_link_in_proc};
use crate::container::procfs_self::{own_magic_link, rewrite};
use crate::container::self_links;
use crate::stage_times::{self, Stage};
use crate::sys::creds::{self, Assumed};

/// The object an open names.
#[derive(Debug)]
pub enum Object {
    /// It exists: an O_PATH descriptor of it, and its path in the container.
    Existing { fd: OwnedFd, path: PathBuf },
    /// O_CREAT of a name that doesn't exist yet: the parent directory, the name, and the path the
    /// new file will have.
    ToCreate {
        parent: OwnedFd,
        name: OsString,
        path: PathBuf,
    },
}

impl Object {
    pub fn path(&self) -> &std::path::Path {
        match self {
            Object::Existing { path, .. } | Object::ToCreate { path, .. } => path,
        }
    }
}

/// What the task asked to open.
#[derive(Debug, Clone, Copy)]
pub struct OpenRequest<'a> {
    pub dir: Dir,
    pub path: &'a OsStr,
    pub flags: u64,
    /// openat2's RESOLVE_* flags (0 for open/openat).
    pub resolve: u64,
}

/// Why the object a task names was not found for it. Each case knows the errno the task is
/// answered with: the one its own call would have failed with, or the one the agent's step hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("the task's status could not be read")]
    TaskUnreadable,
    #[error("empty path")]
    EmptyPath,
    #[error("no such file")]
    NotFound,
    #[error("not an open descriptor of the task")]
    BadFd,
    #[error("a relative path's start is not a directory in the container")]
    NotDir,
    #[error("a directory's name where a file would be created")]
    IsDir,
    #[error("a name the kernel refuses here (a NUL, \".\" or \"..\")")]
    InvalidName,
    #[error("\"/\" is nobody's entry")]
    Root,
    #[error("{step}: {errno}")]
    Os { step: &'static str, errno: Errno },
}

impl ResolveError {
    /// The errno the task is answered with.
    pub fn errno(&self) -> i32 {
        match self {
            // Unreadable status is never allowed, and never mistaken for the file's absence.
            ResolveError::TaskUnreadable => libc::EPERM,
            ResolveError::EmptyPath | ResolveError::NotFound => libc::ENOENT,
            ResolveError::BadFd => libc::EBADF,
            ResolveError::NotDir => libc::ENOTDIR,
            ResolveError::IsDir => libc::EISDIR,
            ResolveError::InvalidName => libc::EINVAL,
            ResolveError::Root => libc::EBUSY,
            ResolveError::Os { errno, .. } => *errno as i32,
        }
    }

    /// The failure of `step`, with the errno it hit.
    pub fn os(step: &'static str) -> impl Fn(io::Error) -> ResolveError {
        move |e| ResolveError::Os {
            step,
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EACCES)),
        }
    }
}

fn cstr(p: &OsStr) -> Result<CString, ResolveError> {
    CString::new(p.as_bytes()).map_err(|_| ResolveError::InvalidName)
}

fn open_host(path: &str, flags: OFlag) -> Result<OwnedFd, ResolveError> {
    let c = CString::new(path).map_err(|_| ResolveError::InvalidName)?;
    nix::fcntl::open(c.as_c_str(), flags | OFlag::O_CLOEXEC, Mode::empty()).map_err(|errno| {
        ResolveError::Os {
            step: "opening the task's own link in the host's procfs",
            errno,
        }
    })
}

/// The agent's own /proc/self/fd, opened once (O_PATH): reading or reopening one of its entries
/// from it is one path component instead of four (about 0.5 µs each time). The agent's threads
/// share one descriptor table, so one directory serves them all.
pub(crate) fn self_fd_dir() -> io::Result<BorrowedFd<'static>> {
    static DIR: OnceLock<OwnedFd> = OnceLock::new();
    if let Some(d) = DIR.get() {
        return Ok(d.as_fd());
    }
    let d = nix::fcntl::open(
        c"/proc/self/fd",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    Ok(DIR.get_or_init(|| d).as_fd())
}

/// The name of descriptor `fd` in /proc/self/fd.
pub(crate) fn fd_name(fd: &impl AsRawFd) -> CString {
    CString::new(fd.as_raw_fd().to_string()).expect("a number has no NUL")
}

/// The path the kernel gives an open descriptor, relative to the container's root.
pub fn fd_path(fd: &OwnedFd) -> Result<PathBuf, ResolveError> {
    let dir = self_fd_dir().map_err(ResolveError::os("opening the agent's /proc/self/fd"))?;
    read_link_at(dir, &fd_name(fd))
        .map(PathBuf::from)
        .map_err(ResolveError::os("reading the path of the object found"))
}

const O_PATH_FLAGS: u64 = (libc::O_PATH | libc::O_CLOEXEC) as u64;
/// The task's own resolve restrictions that we keep (they only narrow).
const KEPT_RESOLVE: u64 = libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_XDEV;

/// Where the walk starts and how it is confined. Found with the agent's own credentials: the
/// task's /proc entries (root, cwd, fds) belong to the task, and a task that changed its uid is not
/// dumpable, so with its credentials the agent could not open them even though the task itself
/// can use its own links.
enum Anchor {
    /// openat2 from the task's dirfd, confined there by the task's own RESOLVE_IN_ROOT/BENEATH.
    Dir {
        base: OwnedFd,
        path: OsString,
        resolve: u64,
    },
    /// One of the task's own magic links, opened in the host's procfs.
    OwnLink {
        base: OwnedFd,
        rest: OsString,
        resolve: u64,
    },
    /// An absolute path inside the container's root.
    Root {
        root: OwnedFd,
        path: OsString,
        resolve: u64,
    },
}

/// Resolves the request for task `tid`. Returns the object and the task's credentials, still
/// assumed by this thread: the caller opens the object under them, then drops the guard.
pub fn resolve(
    tid: u32,
    task: &TaskInfo,
    req: &OpenRequest<'_>,
) -> Result<(Object, Assumed), ResolveError> {
    let anchor = anchor(tid, task, req)?;
    stage_times::mark(Stage::Anchor);
    // From here on, permission checks are the task's.
    let guard =
        creds::assume(&task.creds).map_err(ResolveError::os("assuming the task's credentials"))?;
    stage_times::mark(Stage::Assume);
    let lookup_flags = O_PATH_FLAGS | (req.flags & (libc::O_NOFOLLOW | libc::O_DIRECTORY) as u64);
    let object = match anchor {
        // The link itself names the object (/proc/self/fd/5, /dev/stderr): it may be a pipe or
        // a socket, which has no directory to look anything up in.
        Anchor::OwnLink { base, rest, .. } if rest.is_empty() => {
            let path = fd_path(&base)?;
            Ok(Object::Existing { fd: base, path })
        }
        Anchor::Dir {
            base,
            path,
            resolve,
        }
        | Anchor::OwnLink {
            base,
            rest: path,
            resolve,
        } => lookup(base.as_fd(), &path, req.flags, lookup_flags, resolve),
        Anchor::Root {
            root,
            path,
            resolve,
        } => match lookup(root.as_fd(), &path, req.flags, lookup_flags, resolve) {
            // The walk may have met procfs's `self`, which the agent can't follow as the task.
            Err(e) if e.errno() == libc::ENOENT => {
                let follow = req.flags & libc::O_NOFOLLOW as u64 == 0;
                match self_links::walk(root.as_fd(), &path, task, follow) {
                    Ok(walked) if walked != path => {
                        lookup(root.as_fd(), &walked, req.flags, lookup_flags, resolve)
                    }
                    _ => Err(e),
                }
            }
            found => found,
        },
    }?;
    stage_times::mark(Stage::Lookup);
    Ok((object, guard))
}

fn anchor(tid: u32, task: &TaskInfo, req: &OpenRequest<'_>) -> Result<Anchor, ResolveError> {
    if req.path.is_empty() {
        return Err(ResolveError::EmptyPath);
    }
    let path = rewrite(req.path, task);

    // openat2 with RESOLVE_IN_ROOT/RESOLVE_BENEATH confines the walk to the dirfd itself, so it
    // can be done from the task's directory as given: nothing can climb out of it.
    if req.resolve & (libc::RESOLVE_IN_ROOT | libc::RESOLVE_BENEATH) != 0 {
        return Ok(Anchor::Dir {
            base: start_dir(tid, req.dir)?,
            path,
            resolve: (req.resolve & (libc::RESOLVE_IN_ROOT | libc::RESOLVE_BENEATH | KEPT_RESOLVE))
                | libc::RESOLVE_NO_MAGICLINKS,
        });
    }

    let absolute = if path.as_bytes().starts_with(b"/") {
        path
    } else {
        let base = match req.dir {
            Dir::Cwd => c"cwd".to_owned(),
            Dir::Fd(n) if n >= 0 => CString::new(format!("fd/{n}")).expect("no NUL"),
            Dir::Fd(_) => return Err(ResolveError::BadFd),
        };
        let base = read_link_in_proc(tid, &base).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) if matches!(req.dir, Dir::Fd(_)) => ResolveError::BadFd,
            _ => ResolveError::os("reading the task's cwd or dirfd")(e),
        })?;
        // A dirfd that is not a directory in the container's tree ("pipe:[..]", a deleted
        // directory): the kernel would fail too (ENOTDIR / ENOENT).
        if !base.as_bytes().starts_with(b"/") {
            return Err(ResolveError::NotDir);
        }
        let mut joined = base.into_vec();
        joined.push(b'/');
        joined.extend_from_slice(path.as_bytes());
        rewrite(&OsString::from_vec(joined), task)
    };

    if let Some(link) = own_magic_link(&absolute, task, tid) {
        // The task's own fd/cwd/root/exe: followed in the host's procfs.
        let host_path = link.host_path.to_str().ok_or(ResolveError::InvalidName)?;
        let base = open_host(host_path, OFlag::O_PATH)?;
        return Ok(Anchor::OwnLink {
            base,
            rest: link.rest,
            resolve: libc::RESOLVE_BENEATH
                | libc::RESOLVE_NO_MAGICLINKS
                | (req.resolve & KEPT_RESOLVE),
        });
    }

    // The task's root, looked up again for every notification rather than cached per container:
    // CAP_SYS_CHROOT is in the default set, and a chroot'ed task's "/" is its own. Through the
    // task's cached /proc/<tid> this costs about 1 µs; checking a cached root against the task's
    // (statx of its mount id and inode) would save only a quarter of that.
    Ok(Anchor::Root {
        root: open_in_proc(tid, c"root", OFlag::O_PATH | OFlag::O_DIRECTORY)
            .map_err(ResolveError::os("opening the task's root"))?,
        path: absolute,
        resolve: libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS | (req.resolve & KEPT_RESOLVE),
    })
}

fn start_dir(tid: u32, dir: Dir) -> Result<OwnedFd, ResolveError> {
    match dir {
        Dir::Cwd => open_in_proc(tid, c"cwd", OFlag::O_PATH | OFlag::O_DIRECTORY)
            .map_err(ResolveError::os("opening the task's cwd")),
        Dir::Fd(n) if n >= 0 => {
            let name = CString::new(format!("fd/{n}")).expect("no NUL");
            open_in_proc(tid, &name, OFlag::O_PATH).map_err(|e| match e.raw_os_error() {
                Some(libc::ENOENT) => ResolveError::BadFd,
                _ => ResolveError::os("opening the task's dirfd")(e),
            })
        }
        Dir::Fd(_) => Err(ResolveError::BadFd),
    }
}

/// openat2(2) of an O_PATH lookup from `base`, confined by `resolve`.
fn open_beneath(
    base: BorrowedFd<'_>,
    path: &CStr,
    flags: u64,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(OFlag::from_bits_retain(flags as i32))
        .mode(Mode::empty())
        .resolve(ResolveFlag::from_bits_retain(resolve));
    Ok(nix::fcntl::openat2(base, path, how)?)
}

fn lookup(
    base: std::os::fd::BorrowedFd<'_>,
    path: &OsStr,
    task_flags: u64,
    lookup_flags: u64,
    resolve: u64,
) -> Result<Object, ResolveError> {
    match open_beneath(base, &cstr(path)?, lookup_flags, resolve) {
        Ok(fd) => {
            let path = fd_path(&fd)?;
            Ok(Object::Existing { fd, path })
        }
        Err(e)
            if e.raw_os_error() == Some(libc::ENOENT) && task_flags & libc::O_CREAT as u64 != 0 =>
        {
            let (parent, name) = split_last(path)?;
            let parent = open_beneath(
                base,
                &cstr(&parent)?,
                O_PATH_FLAGS | libc::O_DIRECTORY as u64,
                resolve,
            )
            .map_err(ResolveError::os("looking up the new name's parent"))?;
            let mut p = fd_path(&parent)?.into_os_string().into_vec();
            if p.last() != Some(&b'/') {
                p.push(b'/');
            }
            p.extend_from_slice(name.as_bytes());
            Ok(Object::ToCreate {
                parent,
                name,
                path: PathBuf::from(OsString::from_vec(p)),
            })
        }
        Err(e) => Err(ResolveError::os("looking up the path")(e)),
    }
}

/// Splits `a/b/c` into (`a/b`, `c`); the last component must be a plain name.
fn split_last(path: &OsStr) -> Result<(OsString, OsString), ResolveError> {
    let b = path.as_bytes();
    let trimmed = b.strip_suffix(b"/").unwrap_or(b);
    if trimmed.len() != b.len() {
        // "dir/" with O_CREAT: the kernel answers EISDIR.
        return Err(ResolveError::IsDir);
    }
    let (parent, name) = match trimmed.iter().rposition(|&c| c == b'/') {
        Some(0) => (&b"/"[..], &trimmed[1..]),
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => (&b"."[..], trimmed),
    };
    if name.is_empty() || name == b"." || name == b".." {
        return Err(ResolveError::IsDir);
    }
    Ok((
        OsString::from_vec(parent.to_vec()),
        OsString::from_vec(name.to_vec()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> (u32, TaskInfo) {
        let tid = nix::unistd::gettid().as_raw() as u32;
        (tid, TaskInfo::read(tid).unwrap())
    }

    fn req(path: &str) -> OpenRequest<'_> {
        OpenRequest {
            dir: Dir::Cwd,
            path: OsStr::new(path),
            flags: libc::O_RDONLY as u64,
            resolve: 0,
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rampart-resolve-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn dot_dot_and_double_slashes_resolve_to_the_real_path() {
        let (tid, t) = me();
        for p in [
            "/etc/../etc/hostname",
            "//etc///hostname",
            "/etc/./hostname",
        ] {
            let (o, _creds) = resolve(tid, &t, &req(p)).unwrap();
            assert_eq!(o.path(), std::path::Path::new("/etc/hostname"), "{p}");
        }
    }

    #[test]
    fn a_symlink_resolves_to_its_target() {
        let (tid, t) = me();
        let d = scratch("symlink");
        std::os::unix::fs::symlink("/etc/hostname", d.join("link")).unwrap();
        let (o, _creds) = resolve(tid, &t, &req(d.join("link").to_str().unwrap())).unwrap();
        assert_eq!(o.path(), std::path::Path::new("/etc/hostname"));
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_dirfd_relative_path_resolves_from_that_directory() {
        let (tid, t) = me();
        let etc = std::fs::File::open("/etc").unwrap();
        let r = OpenRequest {
            dir: Dir::Fd(etc.as_raw_fd()),
            path: OsStr::new("hostname"),
            flags: 0,
            resolve: 0,
        };
        assert_eq!(
            resolve(tid, &t, &r).unwrap().0.path(),
            std::path::Path::new("/etc/hostname")
        );
        let bad = OpenRequest {
            dir: Dir::Fd(987_654),
            ..r
        };
        assert_eq!(resolve(tid, &t, &bad).unwrap_err().errno(), libc::EBADF);
    }

    #[test]
    fn proc_self_names_the_task_not_the_agent() {
        let (tid, t) = me();
        let (o, _creds) = resolve(tid, &t, &req("/proc/self/root/etc/hostname")).unwrap();
        assert_eq!(o.path(), std::path::Path::new("/etc/hostname"));
        let (o, _creds) = resolve(tid, &t, &req("/proc/self/status")).unwrap();
        assert_eq!(
            o.path(),
            PathBuf::from(format!("/proc/{}/status", t.ns_tgid))
        );
    }

    #[test]
    fn another_pids_magic_link_is_refused() {
        let (tid, t) = me();
        // Another process's root is a magic link we must not follow from inside the root.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let p = format!("/proc/{}/root/etc/hostname", child.id());
        let err = resolve(tid, &t, &req(&p)).unwrap_err().errno();
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(matches!(err, libc::ELOOP | libc::EXDEV), "errno {err}");
    }

    #[test]
    fn o_creat_of_a_new_name_resolves_its_parent() {
        let (tid, t) = me();
        let d = scratch("creat");
        let p = d.join("new-file");
        let r = OpenRequest {
            flags: (libc::O_CREAT | libc::O_WRONLY) as u64,
            ..req(p.to_str().unwrap())
        };
        match resolve(tid, &t, &r).unwrap().0 {
            Object::ToCreate { name, path, .. } => {
                assert_eq!(name, "new-file");
                assert_eq!(path, p);
            }
            other => panic!("expected ToCreate, got {other:?}"),
        }
        let no_creat = req(p.to_str().unwrap());
        assert_eq!(
            resolve(tid, &t, &no_creat).unwrap_err().errno(),
            libc::ENOENT
        );
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn split_last_refuses_directories() {
        assert_eq!(
            split_last(OsStr::new("a/b")).unwrap(),
            ("a".into(), "b".into())
        );
        assert_eq!(
            split_last(OsStr::new("/b")).unwrap(),
            ("/".into(), "b".into())
        );
        assert_eq!(
            split_last(OsStr::new("b")).unwrap(),
            (".".into(), "b".into())
        );
        assert_eq!(
            split_last(OsStr::new("a/")).unwrap_err().errno(),
            libc::EISDIR
        );
        assert_eq!(
            split_last(OsStr::new("a/..")).unwrap_err().errno(),
            libc::EISDIR
        );
    }
}
