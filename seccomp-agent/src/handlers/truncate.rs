//! truncate(path, length): a write without an open. Decided on the real file, then done by the
//! agent through its own write descriptor to that file, opened with the task's credentials.

use std::os::fd::AsFd;

use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag, fstat};
use nix::unistd::ftruncate;
use rampart_policy::{Access, WorkloadView};

use crate::container::resolve::OpenRequest;
use crate::handlers::file_call::{FileCall, decide_and_do};
use crate::outcome::{Answer, Outcome};
use crate::syscall::{Dir, TruncateCall};
use crate::task::Task;
use crate::workload::Workload;

pub fn handle(w: &Workload, view: &WorkloadView, task: &Task, call: &TruncateCall) -> Outcome {
    let TruncateCall {
        syscall,
        path,
        length,
    } = call;
    let Ok(length) = libc::off_t::try_from(*length) else {
        return Outcome::errno(libc::EINVAL);
    };
    let call = FileCall {
        request: OpenRequest {
            dir: Dir::Cwd,
            path,
            flags: 0,
            resolve: 0,
        },
        access: Access::Write,
        syscall,
        deny: libc::EACCES,
    };
    decide_and_do(w, view, task, call, |file| {
        let kind = match fstat(file.fd.as_fd()) {
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
        let own = file.own_path();
        let opened = nix::fcntl::open(
            own.as_c_str(),
            OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
            Mode::empty(),
        );
        match opened.and_then(|wfd| ftruncate(&wfd, length)) {
            Ok(()) => Answer::Done(0),
            Err(errno) => Answer::Errno(errno as i32),
        }
    })
}
