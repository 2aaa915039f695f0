//! Which exec opens the seccomp check already allowed.
//!
//! The seccomp handler decides an execve on the path it reads from the task, then answers
//! CONTINUE: the kernel reads the path again, and another thread of the task may have rewritten
//! it in between (`execve("/usr/sbin/nginx")` checked, `/bin/sh` exec'd). So the handler records
//! what it allowed, this thread may exec this inode, and the guard checks the file the kernel
//! actually opens for exec against it:
//! - the approved inode, opened by that thread, is the exec itself: allowed;
//! - the opens that follow it within the same execve (a script's `#!` interpreter, an ELF's
//!   `PT_INTERP` loader) are part of it. The guard tells those by the opener's kernel stack
//!   (`interpreter`); only on a kernel that shows none does it fall back to this module's window
//!   after an allowed exec open, which an exec failing after its open (a bad argv) would let a
//!   second exec of the same thread slip into;
//! - anything else is not covered, and policy decides it on the file's real path.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an approval waits for its exec open (the CONTINUE and the kernel's lookup).
const APPROVAL_TTL: Duration = Duration::from_secs(10);
/// How long after an allowed exec open the kernel's own follow-on opens (interpreters) count as
/// part of it.
const FOLLOW_ON_WINDOW: Duration = Duration::from_secs(2);
/// binfmt nesting is at most 5 deep in the kernel (script → interpreter → loader ...).
const MAX_FOLLOW_ONS: u8 = 5;
/// Approvals kept before the stale ones are dropped. An approval whose exec open the kernel
/// never sends (an exec the guard remembers as allowed) stays until then.
const PRUNE_AT: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Approval {
    inode: (u64, u64),
    at: Instant,
    /// When the exec's own file was opened; later opens in the window are its interpreters.
    main_seen: Option<Instant>,
    follow_ons: u8,
}

/// What an exec open is, as far as the approvals know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Covered {
    /// The file the seccomp check allowed this thread to exec.
    Main,
    /// An interpreter the kernel opens within an allowed exec.
    FollowOn,
}

#[derive(Default)]
pub struct Approvals {
    map: Mutex<HashMap<u32, Approval>>,
}

impl Approvals {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Approval>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The seccomp check allowed thread `tid` to exec the file with this (dev, ino).
    pub fn approve(&self, tid: u32, inode: (u64, u64)) {
        self.insert(tid, inode, None);
    }

    /// The seccomp check refused an exec of `tid`: nothing of an earlier one carries over.
    pub fn revoke(&self, tid: u32) {
        self.map().remove(&tid);
    }

    /// Policy allowed an exec open the approvals did not cover: its interpreters follow, as for
    /// an approved one.
    pub fn allowed_main(&self, tid: u32, inode: (u64, u64)) {
        self.insert(tid, inode, Some(Instant::now()));
    }

    fn insert(&self, tid: u32, inode: (u64, u64), main_seen: Option<Instant>) {
        let mut map = self.map();
        if map.len() >= PRUNE_AT {
            let now = Instant::now();
            map.retain(|_, a| match a.main_seen {
                None => now - a.at < APPROVAL_TTL,
                Some(seen) => now - seen < FOLLOW_ON_WINDOW,
            });
        }
        map.insert(
            tid,
            Approval {
                inode,
                at: Instant::now(),
                main_seen,
                follow_ons: 0,
            },
        );
    }

    /// Whether an exec open of `inode` by `tid` is covered, and as what.
    pub fn check(&self, tid: u32, inode: Option<(u64, u64)>) -> Option<Covered> {
        let now = Instant::now();
        let mut map = self.map();
        let a = map.get_mut(&tid)?;
        match a.main_seen {
            None if Some(a.inode) == inode && now - a.at < APPROVAL_TTL => {
                a.main_seen = Some(now);
                Some(Covered::Main)
            }
            Some(seen) if now - seen < FOLLOW_ON_WINDOW && a.follow_ons < MAX_FOLLOW_ONS => {
                a.follow_ons += 1;
                Some(Covered::FollowOn)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_approved_inode_then_its_interpreters_and_nothing_else() {
        let a = Approvals::default();
        a.approve(7, (1, 100));
        // Another thread, or another file first: not covered.
        assert_eq!(a.check(8, Some((1, 100))), None);
        assert_eq!(a.check(7, Some((1, 999))), None);
        assert_eq!(a.check(7, Some((1, 100))), Some(Covered::Main));
        for _ in 0..MAX_FOLLOW_ONS {
            assert_eq!(a.check(7, Some((1, 5))), Some(Covered::FollowOn));
        }
        assert_eq!(
            a.check(7, Some((1, 5))),
            None,
            "binfmt nests 5 deep at most"
        );
        a.revoke(7);
        assert_eq!(a.check(7, Some((1, 100))), None);
    }

    #[test]
    fn a_refused_exec_leaves_nothing_behind() {
        let a = Approvals::default();
        a.allowed_main(3, (1, 1));
        a.revoke(3);
        assert_eq!(a.check(3, Some((1, 2))), None);
    }
}
