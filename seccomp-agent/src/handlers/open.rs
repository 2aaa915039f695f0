//! open, openat, openat2, creat: resolved inside the container, decided on the real object, and
//! emulated (the agent opens it and injects the descriptor), so the check and the use can't part.
//! What reaches it: opens that write, create or truncate, every openat2, and every open of a pod
//! labelled `rampart.dev/read-opens=seccomp`. Other read-only opens never leave the kernel's
//! filter; the file guard (`guard`) decides them.

use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::stat::{SFlag, fstat};
use rampart_policy::{Access, Operation, WorkloadView};
use tracing::warn;

use crate::container::emulate_open::{self, access_of};
use crate::container::resolve::{Object, OpenRequest};
use crate::container::{fifo_open, procfs};
use crate::outcome::{Answer, Outcome, Subject, outcome};
use crate::stage_times::{self, Stage};
use crate::syscall::OpenCall;
use crate::task::Task;
use crate::workload::Workload;

/// Files are refused the way a permission problem would be: "Permission denied".
const DENY: i32 = libc::EACCES;

pub fn handle(
    w: &Workload,
    view: &WorkloadView,
    task: &Task,
    notify_fd: BorrowedFd<'_>,
    id: u64,
    call: &OpenCall,
) -> Outcome {
    let OpenCall {
        syscall,
        dir,
        path,
        flags,
        mode,
        resolve,
    } = call;
    let req = OpenRequest {
        dir: *dir,
        path,
        flags: *flags,
        resolve: *resolve,
    };
    let (object, creds) = match task.resolve(&req) {
        Ok(r) => r,
        Err(e) => return Outcome::errno(e.errno()),
    };
    if let Object::Existing { fd, path } = &object
        && procfs::depends_on_opener(fd.as_fd(), path)
    {
        // Opened by the agent it would be the agent's map or attribute, not the task's: the
        // kernel checks who opened it. Refused rather than done wrong (docs/enforcement.md).
        warn!(
            tid = task.tid(),
            path = %path.display(),
            "refused an open whose meaning depends on its opener (a user namespace's id map,              setgroups, an LSM attribute): rampart can't make it for the task"
        );
        return Outcome::errno(libc::EPERM);
    }
    // The status resolving read, not another read of it.
    let Ok(info) = task.info() else {
        return Outcome::errno(libc::EPERM);
    };
    let process = task.identity();
    let file = object.path().to_string_lossy().into_owned();
    let access = access_of(*flags, &object);
    let wanted = [
        (access.read, Access::Read),
        (access.write, Access::Write),
        (access.create, Access::Create),
    ];
    // An open that reads and writes is decided by its strictest part.
    let (decision, op) = wanted
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, a)| {
            let op = Operation::FileAccess {
                path: &file,
                access: *a,
                process,
            };
            (view.decide_as(&op, task.user().as_ref()), op)
        })
        .max_by_key(|(d, _)| d.verdict)
        .unwrap_or_else(|| {
            let op = Operation::FileAccess {
                path: &file,
                access: Access::Read,
                process,
            };
            (view.decide_as(&op, task.user().as_ref()), op)
        });
    let subject = Subject::new(syscall, task.exe());
    let cloexec = *flags & libc::O_CLOEXEC as u64 != 0;
    stage_times::mark(Stage::Decide);
    let result = outcome(decision, w, &op, subject, DENY, || {
        // The kernel cannot inject an O_PATH descriptor (ADDFD's fget() refuses them), so an
        // allowed O_PATH open runs in the kernel. A path swapped after this check gains nothing:
        // an O_PATH descriptor reads no content, and both ways of using one for that (reopening it
        // through /proc/self/fd, fexecve) are themselves notified and decided on the real file.
        if *flags & libc::O_PATH as u64 != 0 {
            return Answer::Continue;
        }
        if let Object::Existing { fd, .. } = &object {
            let fifo = fstat(fd.as_fd())
                .map(|st| st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFIFO.bits())
                .unwrap_or(false);
            if fifo && fifo_open::would_block(*flags) {
                let Object::Existing { fd, .. } = object else {
                    unreachable!("matched above")
                };
                let spawned = notify_fd
                    .try_clone_to_owned()
                    .and_then(|nfd| fifo_open::spawn(nfd, id, fd, *flags, info.creds.clone()));
                return match spawned {
                    Ok(()) => Answer::Deferred,
                    Err(e) => Answer::Errno(e.raw_os_error().unwrap_or(libc::EAGAIN)),
                };
            }
        }
        let answer = match emulate_open::open(object, *flags, *mode, info.umask) {
            Ok(fd) => Answer::Inject { fd, cloexec },
            Err(errno) => Answer::Errno(errno as i32),
        };
        stage_times::mark(Stage::Open);
        answer
    });
    stage_times::mark(Stage::Decide);
    drop(creds);
    stage_times::mark(Stage::Restore);
    result
}
