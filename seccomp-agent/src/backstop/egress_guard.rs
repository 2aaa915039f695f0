//! The backstop for allowed connects and sends, on the agent's side.
//!
//! The agent decides connect, sendto, sendmsg and sendmmsg on the destination it reads from the
//! task, then answers CONTINUE: the kernel reads the sockaddr again, and another thread may have
//! rewritten it in between. rampart-audit's `ConnectGuard` holds the other end: cgroup
//! connect4/6 and sendmsg4/6 programs, attached to each protected container's cgroup, that let a
//! thread reach only a destination the agent approved for it. Here the agent attaches them to a
//! container's cgroup at its first decided connect or send, and approves each allowed
//! destination for the calling thread before answering.

use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use rampart_audit::ConnectGuard;
use tracing::{info, warn};

use crate::container::cgroup;
use crate::workload::Workload;

/// How long an approval waits for its connect: the CONTINUE and the kernel's way to the hook.
const APPROVAL_TTL: Duration = Duration::from_secs(2);

/// Containers remembered as guarded before the set starts over.
const MAX_REMEMBERED: usize = 65_536;

pub struct EgressGuard {
    guard: ConnectGuard,
    /// Where cgroup v2 is mounted.
    cgroup_root: PathBuf,
    /// Containers whose cgroups have the programs attached.
    protected: Mutex<HashSet<String>>,
}

impl EgressGuard {
    /// Loads rampart-audit's programs. Needs root and cgroup v2.
    pub fn start() -> io::Result<EgressGuard> {
        let cgroup_root = cgroup::v2_mount()?;
        let guard = ConnectGuard::load().map_err(io::Error::other)?;
        info!(cgroup = %cgroup_root.display(), "egress backstop on: cgroup connect/sendmsg programs on protected containers");
        Ok(EgressGuard {
            guard,
            cgroup_root,
            protected: Mutex::new(HashSet::new()),
        })
    }

    /// Lets thread `tid` of `w` reach `addrs` (the destinations the agent just allowed), after
    /// making sure the container's cgroup is guarded. An error means the kernel may refuse the
    /// call (EPERM): the caller logs it; it never lets anything else through.
    pub fn allow(&self, w: &Workload, tid: u32, addrs: &[SocketAddr]) -> io::Result<()> {
        let known = self
            .protected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&w.container_id);
        if !known {
            let dir = self.cgroup_dir(tid)?;
            self.guard.protect(&dir).map_err(io::Error::other)?;
            let mut protected = self.protected.lock().unwrap_or_else(|e| e.into_inner());
            if protected.len() >= MAX_REMEMBERED {
                // Protecting again is idempotent: a forgotten container is re-checked once.
                protected.clear();
            }
            protected.insert(w.container_id.clone());
        }
        for addr in addrs {
            self.guard
                .approve(tid, *addr, APPROVAL_TTL)
                .map_err(io::Error::other)?;
        }
        Ok(())
    }

    /// How many connects and sends the kernel programs refused.
    pub fn denied(&self) -> u64 {
        self.guard.denied()
    }

    fn cgroup_dir(&self, tid: u32) -> io::Result<PathBuf> {
        cgroup::of_task(&self.cgroup_root, tid)
    }
}

/// For callers that only warn.
pub fn warn_unguarded(e: &io::Error, w: &Workload) {
    warn!(container = %w.container_name, pod = %w.pod_name, error = %e,
        "egress backstop: cannot guard this call; the kernel may refuse it");
}
