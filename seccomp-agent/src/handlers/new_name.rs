//! rename, renameat, renameat2, link, linkat: a new name for existing content. Decided on the
//! real paths of both ends (parents resolved inside the container) as a delete of the old name,
//! a create of the new one, a delete of whatever the new name replaces, and what the move takes
//! out of the rules' reach (`WorkloadView::decide_move`: `ln /etc/passwd /tmp/p` is refused when
//! a rule guards /etc/passwd). Then done by the agent on the same descriptors and names.

use std::os::fd::AsFd;

use nix::fcntl::{AT_FDCWD, AtFlags, RenameFlags, renameat2};
use nix::unistd::linkat;
use rampart_policy::{Access, Decision, Operation, WorkloadView};

use crate::container::entry::{Entry, File, is_dir};
use crate::container::resolve::{OpenRequest, ResolveError};
use crate::outcome::{Answer, Outcome, Subject, outcome};
use crate::syscall::{Dir, NewNameCall};
use crate::task::Task;
use crate::workload::Workload;

const DENY: i32 = libc::EACCES;

/// What a link's source is: an entry taken as it is, or (AT_SYMLINK_FOLLOW, AT_EMPTY_PATH) a
/// file found by following symlinks and magic links, such as /proc/self/fd/N of an O_PATH
/// descriptor: the way to give any open file a name.
enum Source {
    Entry(Entry),
    Followed(File),
}

pub fn handle(w: &Workload, view: &WorkloadView, task: &Task, call: &NewNameCall) -> Outcome {
    let NewNameCall {
        syscall,
        hard_link,
        old_dir,
        old,
        new_dir,
        new,
        flags,
    } = call;

    // The source, with the task's credentials; they are given back before the target is found
    // (the credential guard does not nest).
    let (source, source_path, source_is_dir) = if *hard_link {
        let allowed = (libc::AT_SYMLINK_FOLLOW | libc::AT_EMPTY_PATH) as u64;
        if *flags & !allowed != 0 {
            return Outcome::errno(libc::EINVAL);
        }
        match link_source(task, *old_dir, old, *flags) {
            Ok(s) => s,
            Err(e) => return Outcome::errno(e.errno()),
        }
    } else {
        let found = task.find(*old_dir, old).and_then(|(e, creds)| {
            let st = e.stat();
            drop(creds);
            let dir = is_dir(&st?);
            let path = e.path.clone();
            Ok((Source::Entry(e), path, dir))
        });
        match found {
            Ok(s) => s,
            Err(e) => return Outcome::errno(e.errno()),
        }
    };
    if *hard_link && source_is_dir {
        // link(2): directories can't be hard linked.
        return Outcome::errno(libc::EPERM);
    }
    let (target, creds) = match task.find(*new_dir, new) {
        Ok(r) => r,
        Err(e) => return Outcome::errno(e.errno()),
    };
    let process = task.identity();
    let target_st = target.stat().ok();
    let exchange = !*hard_link && *flags & libc::RENAME_EXCHANGE as u64 != 0;

    let mut ops: Vec<Operation<'_>> = vec![Operation::FileAccess {
        path: &target.path,
        access: Access::Create,
        process,
    }];
    if !*hard_link {
        ops.push(Operation::FileAccess {
            path: &source_path,
            access: Access::Delete,
            process,
        });
    }
    if target_st.is_some() {
        // What the new name replaces (or, for an exchange, moves away) is deleted from there.
        ops.push(Operation::FileAccess {
            path: &target.path,
            access: Access::Delete,
            process,
        });
    }
    if exchange {
        ops.push(Operation::FileAccess {
            path: &source_path,
            access: Access::Create,
            process,
        });
    }
    let mut decided: Vec<(Decision<'_>, usize)> = ops
        .iter()
        .enumerate()
        .map(|(i, op)| (view.decide_as(op, task.user().as_ref()), i))
        .collect();
    // What the move takes out of reach of the rules guarding the old name (and, swapped, the new).
    let moved = view.decide_move(&source_path, &target.path, source_is_dir);
    let source_op = Operation::FileAccess {
        path: &source_path,
        access: Access::Read,
        process,
    };
    ops.push(source_op);
    decided.push((moved, ops.len() - 1));
    if exchange {
        let back = view.decide_move(
            &target.path,
            &source_path,
            target_st.as_ref().is_some_and(is_dir),
        );
        ops.push(Operation::FileAccess {
            path: &target.path,
            access: Access::Read,
            process,
        });
        decided.push((back, ops.len() - 1));
    }
    // The strictest part decides; on a tie the first listed (the create) names it.
    let (decision, at) = decided
        .iter()
        .copied()
        .rev()
        .max_by_key(|(d, _)| d.verdict)
        .unwrap_or((moved, 0));
    let op = &ops[at];
    let subject = Subject::new(syscall, task.exe());
    let result = outcome(decision, w, op, subject, DENY, || {
        let done = match &source {
            Source::Entry(e) if *hard_link => linkat(
                &e.parent,
                e.name.as_c_str(),
                &target.parent,
                target.name.as_c_str(),
                AtFlags::empty(),
            ),
            Source::Entry(e) => match RenameFlags::from_bits(*flags as u32) {
                Some(f) => renameat2(
                    &e.parent,
                    e.name.as_c_str(),
                    &target.parent,
                    target.name.as_c_str(),
                    f,
                ),
                None => Err(nix::errno::Errno::EINVAL),
            },
            Source::Followed(object) => link_followed(object, &target),
        };
        match done {
            Ok(()) => Answer::Done(0),
            Err(errno) => Answer::Errno(errno as i32),
        }
    });
    drop(creds);
    result
}

/// The source of link/linkat, its path and whether it is a directory.
fn link_source(
    task: &Task,
    dir: Dir,
    path: &std::ffi::OsStr,
    flags: u64,
) -> Result<(Source, String, bool), ResolveError> {
    let follow = flags & libc::AT_SYMLINK_FOLLOW as u64 != 0;
    let empty = flags & libc::AT_EMPTY_PATH as u64 != 0 && path.is_empty();
    if !follow && !empty {
        let (e, creds) = task.find(dir, path)?;
        let st = e.stat();
        drop(creds);
        let dir = is_dir(&st?);
        let p = e.path.clone();
        return Ok((Source::Entry(e), p, dir));
    }
    // linkat(fd, "", ..., AT_EMPTY_PATH) names the descriptor itself: the task's own magic link.
    let own;
    let (dir, path) = if empty {
        let Dir::Fd(n) = dir else {
            return Err(ResolveError::NotFound);
        };
        own = format!("/proc/self/fd/{n}");
        (Dir::Cwd, std::ffi::OsStr::new(own.as_str()))
    } else {
        (dir, path)
    };
    let req = OpenRequest {
        dir,
        path,
        flags: 0,
        resolve: 0,
    };
    let (file, creds) = task.find_file(&req)?;
    drop(creds);
    let dir = nix::sys::stat::fstat(file.fd.as_fd())
        .map(|st| is_dir(&st))
        .map_err(|errno| ResolveError::Os {
            step: "stat of the link's source",
            errno,
        })?;
    let path = file.path.clone();
    Ok((Source::Followed(file), path, dir))
}

/// Links the file found by following: through our own descriptor's magic link, which needs no
/// CAP_DAC_READ_SEARCH (AT_EMPTY_PATH would).
fn link_followed(file: &File, target: &Entry) -> nix::Result<()> {
    let own = file.own_path();
    linkat(
        AT_FDCWD,
        own.as_c_str(),
        &target.parent,
        target.name.as_c_str(),
        AtFlags::AT_SYMLINK_FOLLOW,
    )
}
