//! The container runtime's own processes inside a container: `runc exec` joins the container's
//! namespaces, installs the seccomp filter, and only then, still running runc, reads the
//! container's /etc/passwd and /etc/group to set the user up before it execs the process. Those
//! reads are the runtime's, not the workload's (the seccomp path trusts them as runc's init
//! phase).
//!
//! Told apart by the executable: runc runs its init from its own binary (bind-mounted read-only
//! from the host, the same inode), which nothing in a container can be. A runtime that runs a
//! copy of itself instead (a memfd, as some runc versions do) is not recognised: its setup reads
//! are decided by policy like the workload's.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Where runtimes are looked for when no path is given.
pub const DEFAULT_RUNTIMES: &[&str] = &[
    "/usr/sbin/runc",
    "/usr/bin/runc",
    "/usr/local/sbin/runc",
    "/usr/local/bin/runc",
];

/// The runtime binaries, by inode.
#[derive(Debug, Clone, Default)]
pub struct Runtimes {
    inodes: HashSet<(u64, u64)>,
}

impl Runtimes {
    /// The binaries at `paths` that exist (symlinks followed).
    pub fn find<P: AsRef<Path>>(paths: &[P]) -> Runtimes {
        Runtimes {
            inodes: paths
                .iter()
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| (m.dev(), m.ino()))
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.inodes.is_empty()
    }

    /// Whether task `tid` runs a runtime binary.
    pub fn runs(&self, tid: u32) -> bool {
        std::fs::metadata(format!("/proc/{tid}/exe"))
            .is_ok_and(|m| self.inodes.contains(&(m.dev(), m.ino())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_is_recognised_by_its_binary() {
        let me = std::env::current_exe().unwrap();
        let tid = std::process::id();
        assert!(Runtimes::find(&[&me]).runs(tid));
        assert!(!Runtimes::find(&["/bin/sh"]).runs(tid));
        assert!(Runtimes::find(&["/nonexistent/runc"]).is_empty());
    }
}
