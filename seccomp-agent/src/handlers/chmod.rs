//! chmod, fchmod, fchmodat, fchmodat2: decided on the real file (symlinks followed unless
//! AT_SYMLINK_NOFOLLOW; fchmod's descriptor taken from the task's fd table once), then done by
//! the agent on that file through its own descriptor. A CONTINUE would let another thread swap
//! the path, or dup2 another file onto the descriptor, after the check.

use std::ffi::OsStr;
use std::os::fd::AsFd;

use nix::fcntl::AT_FDCWD;
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, fchmodat, fstat};
use rampart_policy::{Access, WorkloadView};

use crate::container::resolve::OpenRequest;
use crate::handlers::file_call::{FileCall, decide_and_do};
use crate::outcome::{Answer, Outcome};
use crate::syscall::{ChmodCall, Dir};
use crate::task::Task;
use crate::workload::Workload;

pub fn handle(w: &Workload, view: &WorkloadView, task: &Task, call: &ChmodCall) -> Outcome {
    let ChmodCall {
        syscall,
        dir,
        path,
        mode,
        flags,
    } = call;
    let known = (libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) as u64;
    if *flags & !known != 0 {
        return Outcome::errno(libc::EINVAL);
    }
    // fchmod(fd) and fchmodat2(fd, "", AT_EMPTY_PATH) name the task's descriptor itself.
    let own;
    let (dir, path, nofollow) = match path {
        Some(p) if !(p.is_empty() && *flags & libc::AT_EMPTY_PATH as u64 != 0) => (
            *dir,
            p.as_os_str(),
            *flags & libc::AT_SYMLINK_NOFOLLOW as u64 != 0,
        ),
        _ => {
            let Dir::Fd(n) = dir else {
                return Outcome::errno(libc::EBADF);
            };
            own = format!("/proc/self/fd/{n}");
            (Dir::Cwd, OsStr::new(own.as_str()), false)
        }
    };
    let call = FileCall {
        request: OpenRequest {
            dir,
            path,
            flags: if nofollow { libc::O_NOFOLLOW as u64 } else { 0 },
            resolve: 0,
        },
        access: Access::Chmod,
        syscall,
        deny: libc::EPERM,
    };
    decide_and_do(w, view, task, call, |file| {
        let symlink = fstat(file.fd.as_fd())
            .map(|st| st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFLNK.bits())
            .unwrap_or(false);
        if symlink {
            // Linux has no symlink modes: fchmodat2(AT_SYMLINK_NOFOLLOW) says so.
            return Answer::Errno(libc::EOPNOTSUPP);
        }
        let own = file.own_path();
        let mode = Mode::from_bits_truncate((*mode as u32 & 0o7777) as libc::mode_t);
        match fchmodat(AT_FDCWD, own.as_c_str(), mode, FchmodatFlags::FollowSymlink) {
            Ok(()) => Answer::Done(0),
            Err(errno) => Answer::Errno(errno as i32),
        }
    })
}
