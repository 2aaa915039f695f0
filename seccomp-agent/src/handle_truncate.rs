//! truncate(path, length): a write without an open. Decided on the real file, then done by the
//! agent through its own write descriptor to that file, opened with the task's credentials.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd};

use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag, fstat};
use nix::unistd::ftruncate;
use rampart_policy::{Access, Operation, WorkloadView};

use crate::entry;
use crate::policy_handler::{Outcome, Subject, outcome, process_path};
use crate::resolve::OpenRequest;
use crate::supervisor::Answer;
use crate::syscall::{Call, Dir};
use crate::task::TaskInfo;
use crate::workload::Workload;

const DENY: i32 = libc::EACCES;

pub fn handle<'v>(w: &Workload, view: &'v WorkloadView, pid: u32, call: &Call) -> Outcome<'v> {
    let Call::Truncate { path, length } = call else {
        return Outcome::errno(libc::EPERM);
    };
    let Ok(length) = libc::off_t::try_from(*length) else {
        return Outcome::errno(libc::EINVAL);
    };
    let Ok(task) = TaskInfo::read(pid) else {
        return Outcome::errno(libc::EPERM);
    };
    let process = process_path(pid);
    let req = OpenRequest {
        dir: Dir::Cwd,
        path,
        flags: 0,
        resolve: 0,
    };
    let (file, creds) = match entry::find_file(pid, &task, &req) {
        Ok(r) => r,
        Err(errno) => return Outcome::errno(errno),
    };
    let fd = &file.fd;
    let op = Operation::FileAccess {
        path: &file.path,
        access: Access::Write,
        process: &process,
    };
    let subject = Subject::file("truncate", &process, &file.path);
    let result = outcome(view.decide(&op), w, &op, subject, DENY, || {
        let kind = match fstat(fd.as_fd()) {
            Ok(st) => st.st_mode & SFlag::S_IFMT.bits(),
            Err(errno) => return Answer::Errno(errno as i32),
        };
        if kind == SFlag::S_IFDIR.bits() {
            return Answer::Errno(libc::EISDIR);
        }
        if kind != SFlag::S_IFREG.bits() {
            // truncate(2) on a FIFO, socket or device; opening one could also block.
            return Answer::Errno(libc::EINVAL);
        }
        let Ok(own) = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())) else {
            return Answer::Errno(libc::EINVAL);
        };
        let opened = nix::fcntl::open(
            own.as_c_str(),
            OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
            Mode::empty(),
        );
        match opened.and_then(|wfd| ftruncate(&wfd, length)) {
            Ok(()) => Answer::Done(0),
            Err(errno) => Answer::Errno(errno as i32),
        }
    });
    drop(creds);
    result
}
