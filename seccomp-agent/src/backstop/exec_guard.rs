//! The in-kernel backstop for allowed execs.
//!
//! The agent decides an execve on the path it reads from the task, then answers CONTINUE: the
//! kernel reads the path again, and another thread of the task may have rewritten it in between
//! (`execve("/usr/sbin/nginx")` checked, `/bin/sh` exec'd). Exec can't be emulated, so the check
//! is repeated on the real file: a fanotify group with FAN_OPEN_EXEC_PERM marks on every mount of
//! each protected container's mount namespace holds each exec's open of its file until the agent
//! answers.
//!
//! - The seccomp handler records what it allowed: this thread may exec this inode
//!   ([`ExecGuard::approve`]). An exec open of that inode by that thread is allowed at once.
//! - Any other exec open by a task of a protected container (a rewritten path, or an exec that
//!   no notification announced) is decided by policy on the file's real path, and refused (EPERM
//!   from execve) when policy blocks it.
//! - The opens the kernel itself makes within an allowed exec (a script's `#!` interpreter, an
//!   ELF's `PT_INTERP` loader) follow the allowed one within the same execve; they are allowed as
//!   part of it, as the seccomp check allows them today.
//! - Tasks outside protected containers are always allowed.
//!
//! If the agent dies, the kernel allows the pending and later exec opens (the group is gone):
//! the seccomp check still runs when the agent is back, without the backstop until it is.

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::fanotify::{
    EventFFlags, Fanotify, FanotifyResponse, InitFlags, MarkFlags, MaskFlags, Response,
};
use nix::sys::stat::fstat;
use tracing::{debug, info, warn};

use crate::sys::statx;
use crate::workload::Workload;

/// How long an approval waits for its exec open (the CONTINUE and the kernel's lookup).
const APPROVAL_TTL: Duration = Duration::from_secs(10);
/// How long after an allowed exec open the kernel's own follow-on opens (interpreters) count as
/// part of it.
const FOLLOW_ON_WINDOW: Duration = Duration::from_secs(2);
/// Root mounts remembered as marked, and containers remembered, before each set starts over
/// (one entry per container started).
const MAX_REMEMBERED: usize = 65_536;
/// binfmt nesting is at most 5 deep in the kernel (script → interpreter → loader ...).
const MAX_FOLLOW_ONS: u8 = 5;

/// Decides an exec the guard caught without an approval: true to allow. Implemented by the
/// policy handler; it reports what it refuses.
pub trait ExecJudge: Send + Sync + 'static {
    fn judge_exec(&self, workload: &Workload, tid: u32, path: &str) -> bool;
}

#[derive(Debug, Clone, Copy)]
struct Approval {
    dev: u64,
    ino: u64,
    at: Instant,
    /// When the exec's own file was opened; later opens in the window are its interpreters.
    main_seen: Option<Instant>,
    follow_ons: u8,
}

#[derive(Default)]
struct State {
    approvals: HashMap<u32, Approval>,
    /// Containers' root mounts (by unique mount id, never reused) whose namespaces' mounts are
    /// marked.
    marked: HashSet<u64>,
    /// Protected containers by pid namespace inode: whose tasks the guard decides for.
    containers: HashMap<u64, Arc<Workload>>,
}

pub struct ExecGuard {
    fan: Fanotify,
    state: Mutex<State>,
}

impl ExecGuard {
    /// Creates the fanotify group and starts the thread that answers it. Needs CAP_SYS_ADMIN.
    pub fn start(judge: Weak<dyn ExecJudge>) -> io::Result<Arc<ExecGuard>> {
        let fan = Fanotify::init(
            InitFlags::FAN_CLASS_CONTENT | InitFlags::FAN_CLOEXEC | InitFlags::FAN_REPORT_TID,
            EventFFlags::O_RDONLY | EventFFlags::O_CLOEXEC | EventFFlags::O_LARGEFILE,
        )
        .map_err(io::Error::from)?;
        let guard = Arc::new(ExecGuard {
            fan,
            state: Mutex::new(State::default()),
        });
        let g = guard.clone();
        std::thread::Builder::new()
            .name("exec-guard".into())
            .spawn(move || g.run(judge))?;
        info!("exec backstop on: fanotify FAN_OPEN_EXEC_PERM on protected containers' mounts");
        Ok(guard)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes sure the exec opens of task `tid`'s container reach the guard: marks every mount of
    /// its mount namespace (once per namespace) and remembers its pid namespace as protected.
    /// Called before the task's exec is answered.
    pub fn watch(&self, tid: u32, workload: &Workload) -> io::Result<()> {
        let pid_ns = ns_inode(tid, "pid")?;
        let root_mount = unique_root_mount(tid);
        let mut st = self.state();
        // Namespace inodes are reused once freed: the newest container in a namespace wins.
        if st
            .containers
            .get(&pid_ns)
            .is_none_or(|w| w.container_id != workload.container_id)
        {
            if st.containers.len() >= MAX_REMEMBERED {
                // Every allowed exec registers its container again before it is answered.
                st.containers.clear();
            }
            st.containers.insert(pid_ns, Arc::new(workload.clone()));
        }
        if let Ok(id) = root_mount
            && st.marked.contains(&id)
        {
            return Ok(());
        }
        // Marking reads the container's mount table and marks each mount: not under the lock,
        // which the guard thread takes for every exec open on the node. Two threads marking the
        // same namespace at once is harmless (FAN_MARK_ADD of a mark that exists).
        drop(st);
        let marked = self.mark_mounts(tid)?;
        debug!(
            tid,
            mounts = marked,
            "exec backstop: marked the container's mounts"
        );
        let mut st = self.state();
        if let Ok(id) = root_mount {
            if st.marked.len() >= MAX_REMEMBERED {
                // Marking again is harmless (FAN_MARK_ADD of a mark that exists).
                st.marked.clear();
            }
            st.marked.insert(id);
        }
        Ok(())
    }

    /// The seccomp check allowed thread `tid` to exec the file `file` (open, any kind).
    pub fn approve(&self, tid: u32, file: BorrowedFd<'_>) {
        let Ok(st) = fstat(file) else {
            // Without the inode the exec open is decided by policy on its path instead.
            self.revoke(tid);
            return;
        };
        self.state().approvals.insert(
            tid,
            Approval {
                dev: st.st_dev,
                ino: st.st_ino,
                at: Instant::now(),
                main_seen: None,
                follow_ons: 0,
            },
        );
    }

    /// The seccomp check refused an exec of `tid`: nothing of an earlier one carries over.
    pub fn revoke(&self, tid: u32) {
        self.state().approvals.remove(&tid);
    }

    /// Marks the mounts listed in the task's mountinfo, each resolved inside the task's root.
    fn mark_mounts(&self, tid: u32) -> io::Result<usize> {
        let root = nix::fcntl::open(
            format!("/proc/{tid}/root").as_str(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(io::Error::from)?;
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
                    debug!(tid, mount = point, error = %e, "exec backstop: mount not reachable; skipped");
                    continue;
                }
            };
            // fanotify_mark won't take an O_PATH descriptor itself; its magic link names the
            // same mount.
            let own = format!("/proc/self/fd/{}", fd.as_raw_fd());
            match self.fan.mark(
                MarkFlags::FAN_MARK_ADD | MarkFlags::FAN_MARK_MOUNT,
                MaskFlags::FAN_OPEN_EXEC_PERM,
                nix::fcntl::AT_FDCWD,
                Some(own.as_str()),
            ) {
                Ok(()) => marked += 1,
                Err(e) if point == "/" => return Err(io::Error::from(e)),
                Err(e) => debug!(tid, mount = point, error = %e, "exec backstop: cannot mark"),
            }
        }
        Ok(marked)
    }

    fn run(&self, judge: Weak<dyn ExecJudge>) {
        loop {
            let events = match self.fan.read_events() {
                Ok(e) => e,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    // The kernel allows pending and later opens once nobody reads the group;
                    // the seccomp check keeps working without its backstop.
                    warn!(error = %e, "exec backstop: reading fanotify events failed; backstop off");
                    return;
                }
            };
            for ev in events {
                let Some(fd) = ev.fd() else { continue };
                if !ev.mask().contains(MaskFlags::FAN_OPEN_EXEC_PERM) {
                    continue;
                }
                let tid = u32::try_from(ev.pid()).unwrap_or(0);
                let allow = self.decide(tid, fd, &judge);
                let response = if allow {
                    Response::FAN_ALLOW
                } else {
                    Response::FAN_DENY
                };
                if let Err(e) = self.fan.write_response(FanotifyResponse::new(fd, response)) {
                    warn!(tid, error = %e, "exec backstop: answering fanotify failed");
                }
            }
        }
    }

    fn decide(&self, tid: u32, file: BorrowedFd<'_>, judge: &Weak<dyn ExecJudge>) -> bool {
        let now = Instant::now();
        let inode = fstat(file).ok().map(|st| (st.st_dev, st.st_ino));
        {
            let mut st = self.state();
            if let Some(a) = st.approvals.get_mut(&tid) {
                match a.main_seen {
                    None if Some((a.dev, a.ino)) == inode && now - a.at < APPROVAL_TTL => {
                        a.main_seen = Some(now);
                        return true;
                    }
                    Some(seen)
                        if now - seen < FOLLOW_ON_WINDOW && a.follow_ons < MAX_FOLLOW_ONS =>
                    {
                        a.follow_ons += 1;
                        return true;
                    }
                    _ => {}
                }
            }
        }
        // Not what the seccomp check allowed: whose task is it?
        let Ok(pid_ns) = ns_inode(tid, "pid") else {
            // The task is gone (or isn't one): nothing to protect.
            return true;
        };
        let Some(workload) = self.state().containers.get(&pid_ns).cloned() else {
            return true;
        };
        let path = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let allowed = match judge.upgrade() {
            Some(j) => j.judge_exec(&workload, tid, &path),
            // The agent is shutting down.
            None => true,
        };
        if allowed {
            // Its interpreters follow, as for an approved exec.
            if let Some((dev, ino)) = inode {
                self.state().approvals.insert(
                    tid,
                    Approval {
                        dev,
                        ino,
                        at: now,
                        main_seen: Some(now),
                        follow_ons: 0,
                    },
                );
            }
        } else {
            self.revoke(tid);
        }
        allowed
    }
}

/// The never-reused id of the task's root mount, where the kernel has one (Linux 6.8); without
/// it, the mounts are marked on every exec (idempotent, only slower).
fn unique_root_mount(tid: u32) -> io::Result<u64> {
    let root = nix::fcntl::open(
        format!("/proc/{tid}/root").as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(io::Error::from)?;
    statx::unique_mount_id(root.as_fd())
}

/// The inode of `/proc/<tid>/ns/<kind>`: the namespace's identity.
fn ns_inode(tid: u32, kind: &str) -> io::Result<u64> {
    std::fs::metadata(format!("/proc/{tid}/ns/{kind}")).map(|m| m.ino())
}

/// The mount points of a mountinfo text (field 5), with its octal escapes undone.
fn mount_points(info: &str) -> Vec<String> {
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .collect()
}

fn unescape(s: &str) -> String {
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
