//! Doing the task's open for it, on the object `resolve` found, so that what policy checked is
//! exactly what the task gets: no window between check and use (a CONTINUE would let the kernel
//! re-read a path the task may have rewritten in the meantime). The result is injected into the
//! task with SECCOMP_IOCTL_NOTIF_ADDFD. The caller has assumed the task's credentials, so
//! permission checks are the task's.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, OpenHow, ResolveFlag, fcntl, openat2};
use nix::sys::stat::{Mode, SFlag, fstat};

use crate::container::resolve::{Object, fd_name, self_fd_dir};

/// What an open does to the file, for policy: several may hold at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Access {
    pub read: bool,
    pub write: bool,
    pub create: bool,
}

/// The accesses an open with `flags` makes on `object`. O_PATH counts as a read: the descriptor
/// can't read by itself, but it names the file for later use and policy should see it.
pub fn access_of(flags: u64, object: &Object) -> Access {
    let flags = flags as i32;
    let mode = flags & libc::O_ACCMODE;
    Access {
        read: mode == libc::O_RDONLY || mode == libc::O_RDWR || flags & libc::O_PATH != 0,
        write: mode == libc::O_WRONLY
            || mode == libc::O_RDWR
            || flags & libc::O_TRUNC != 0
            || matches!(object, Object::ToCreate { .. }),
        create: matches!(object, Object::ToCreate { .. }),
    }
}

/// Flags that only steer the lookup, which `resolve` already did.
const LOOKUP_ONLY: i32 = libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;

/// Opens `object` as the task asked; returns the descriptor to inject, or the errno the kernel
/// would have returned.
pub fn open(object: Object, flags: u64, mode: u64, umask: u32) -> Result<OwnedFd, Errno> {
    let flags = flags as i32;
    match object {
        Object::Existing { fd, .. } => {
            if flags & libc::O_CREAT != 0 && flags & libc::O_EXCL != 0 {
                return Err(Errno::EEXIST);
            }
            let st = fstat(fd.as_fd())?;
            let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
            if flags & libc::O_PATH != 0 {
                // resolve opened it with O_PATH and the task's O_NOFOLLOW/O_DIRECTORY: the same
                // open the task asked for.
                return Ok(fd);
            }
            if kind == SFlag::S_IFLNK {
                // Only reachable with O_NOFOLLOW on a symlink: open(2) says ELOOP.
                return Err(Errno::ELOOP);
            }
            reopen(&fd, flags & !LOOKUP_ONLY, kind == SFlag::S_IFIFO)
        }
        Object::ToCreate { parent, name, .. } => {
            let name = CString::new(name.as_bytes()).map_err(|_| Errno::EINVAL)?;
            let mode = (mode as u32) & 0o7777 & !umask;
            // No symlinks at all: the name didn't exist when checked; if a symlink appeared there
            // since, following it would open something policy never saw.
            let how = OpenHow::new()
                .flags(OFlag::from_bits_retain(flags | libc::O_CLOEXEC))
                .mode(Mode::from_bits_retain(mode))
                .resolve(
                    ResolveFlag::RESOLVE_BENEATH
                        | ResolveFlag::RESOLVE_NO_SYMLINKS
                        | ResolveFlag::RESOLVE_NO_MAGICLINKS,
                );
            openat2(parent.as_fd(), name.as_c_str(), how)
        }
    }
}

/// Reopens an O_PATH descriptor with real access through /proc/self/fd: the kernel checks
/// permission again, on the same inode.
fn reopen(fd: &OwnedFd, flags: i32, fifo: bool) -> Result<OwnedFd, Errno> {
    let dir =
        self_fd_dir().map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EACCES)))?;
    // Opening a FIFO blocks until the other end opens; the supervisor thread must not. Open it
    // non-blocking and give the task the blocking mode it asked for afterwards. (A writer with no
    // reader then gets ENXIO instead of waiting: documented in docs/enforcement.md.)
    let wants_nonblock = flags & libc::O_NONBLOCK != 0;
    let open_flags = if fifo {
        flags | libc::O_NONBLOCK
    } else {
        flags
    };
    let new = nix::fcntl::openat(
        dir,
        fd_name(fd).as_c_str(),
        OFlag::from_bits_truncate(open_flags | libc::O_CLOEXEC),
        Mode::empty(),
    )?;
    if fifo && !wants_nonblock {
        let fl = fcntl(new.as_fd(), FcntlArg::F_GETFL)?;
        let fl = OFlag::from_bits_truncate(fl) & !OFlag::O_NONBLOCK;
        fcntl(new.as_fd(), FcntlArg::F_SETFL(fl))?;
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::dir::Dir;
    use crate::container::procfs::TaskInfo;
    use crate::container::resolve::{OpenRequest, resolve};
    use std::ffi::OsStr;
    use std::io::{Read, Write};

    fn run(path: &str, flags: i32, mode: u32) -> Result<OwnedFd, i32> {
        let tid = nix::unistd::gettid().as_raw() as u32;
        let task = TaskInfo::read(tid).unwrap();
        let req = OpenRequest {
            dir: Dir::Cwd,
            path: OsStr::new(path),
            flags: flags as u64,
            resolve: 0,
        };
        let (obj, _creds) = resolve(tid, &task, &req).map_err(|e| e.errno())?;
        open(obj, flags as u64, u64::from(mode), 0o022).map_err(|e| e as i32)
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("rampart-emulate-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn reads_what_a_plain_open_reads() {
        let fd = run("/etc/hostname", libc::O_RDONLY, 0).unwrap();
        let mut got = String::new();
        std::fs::File::from(fd).read_to_string(&mut got).unwrap();
        assert_eq!(got, std::fs::read_to_string("/etc/hostname").unwrap());
    }

    #[test]
    fn creates_with_the_tasks_umask_and_honours_o_excl() {
        let d = scratch("create");
        let p = d.join("f");
        let fd = run(p.to_str().unwrap(), libc::O_CREAT | libc::O_WRONLY, 0o666).unwrap();
        std::fs::File::from(fd).write_all(b"x").unwrap();
        let meta = std::fs::metadata(&p).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
            0o644
        );
        assert_eq!(
            run(
                p.to_str().unwrap(),
                libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY,
                0o666
            )
            .unwrap_err(),
            libc::EEXIST
        );
        // O_TRUNC on reopen truncates.
        run(p.to_str().unwrap(), libc::O_WRONLY | libc::O_TRUNC, 0).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 0);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn o_nofollow_on_a_symlink_is_eloop() {
        let d = scratch("nofollow");
        std::os::unix::fs::symlink("/etc/hostname", d.join("l")).unwrap();
        let p = d.join("l");
        assert_eq!(
            run(p.to_str().unwrap(), libc::O_RDONLY | libc::O_NOFOLLOW, 0).unwrap_err(),
            libc::ELOOP
        );
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_fifo_without_a_peer_does_not_block_the_agent() {
        let d = scratch("fifo");
        let p = d.join("fifo");
        nix::unistd::mkfifo(&p, Mode::from_bits_truncate(0o600)).unwrap();
        let fd = run(p.to_str().unwrap(), libc::O_RDONLY, 0).unwrap();
        let fl = fcntl(fd.as_fd(), FcntlArg::F_GETFL).unwrap();
        assert_eq!(fl & libc::O_NONBLOCK, 0, "the task asked for a blocking fd");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn permission_checks_are_the_tasks_not_the_agents() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root to start a task as another user");
            return;
        }
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .uid(65534)
            .gid(65534)
            .spawn()
            .unwrap();
        let tid = child.id();
        let task = TaskInfo::read(tid).unwrap();
        assert_eq!(task.creds.fsuid, 65534);
        let req = OpenRequest {
            dir: Dir::Cwd,
            path: OsStr::new("/etc/shadow"),
            flags: libc::O_RDONLY as u64,
            resolve: 0,
        };
        // Finding the file needs no permission on it (O_PATH); reading it does.
        let (obj, creds) = resolve(tid, &task, &req).unwrap();
        assert_eq!(
            open(obj, libc::O_RDONLY as u64, 0, 0o022).unwrap_err() as i32,
            libc::EACCES
        );
        drop(creds);
        // Back to the agent's own credentials: it can read it again.
        assert!(std::fs::File::open("/etc/shadow").is_ok());
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn access_classification() {
        let d = scratch("access");
        let tid = nix::unistd::gettid().as_raw() as u32;
        let task = TaskInfo::read(tid).unwrap();
        let req = |p: &'static str, f: i32| OpenRequest {
            dir: Dir::Cwd,
            path: OsStr::new(p),
            flags: f as u64,
            resolve: 0,
        };
        let (o, _creds) = resolve(tid, &task, &req("/etc/hostname", libc::O_RDONLY)).unwrap();
        assert_eq!(
            access_of(libc::O_RDONLY as u64, &o),
            Access {
                read: true,
                ..Default::default()
            }
        );
        assert!(access_of((libc::O_RDWR | libc::O_TRUNC) as u64, &o).write);
        std::fs::remove_dir_all(d).unwrap();
    }
}
