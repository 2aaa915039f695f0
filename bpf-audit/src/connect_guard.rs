//! Egress backstop for the seccomp agent: cgroup sock_addr BPF programs (connect4/6, sendmsg4/6)
//! that let a protected container's thread connect/send only to a destination that the agent
//! approved for that thread.
//!
//! The agent decides connect/sendto/sendmsg/sendmmsg on the sockaddr it reads from the task and
//! answers CONTINUE; the kernel then re-reads the sockaddr, so a second thread could rewrite it in
//! between. The programs check the address the kernel actually uses against the approvals that
//! [`ConnectGuard::approve`] stored, keyed by the calling thread's id.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, Object, ObjectBuilder};

use crate::cgroup_dir::{self, CgroupDirError};
use crate::object_maps;
use nix::time::{ClockId, clock_gettime};

/// The compiled BPF object (build.rs, libbpf-cargo).
static BPF_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/connect_guard.bpf.o"));

/// The four programs, attached to every protected cgroup.
const PROGRAMS: [&str; 4] = [
    "rampart_connect4",
    "rampart_connect6",
    "rampart_sendmsg4",
    "rampart_sendmsg6",
];

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// What went wrong, and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error(
        "loading the connect-guard BPF programs failed while {stage}: {source} \
         (run as root, or with CAP_BPF + CAP_NET_ADMIN + CAP_PERFMON, on a kernel with cgroup BPF)"
    )]
    Load {
        stage: &'static str,
        #[source]
        source: libbpf_rs::Error,
    },
    #[error(transparent)]
    Cgroup(#[from] CgroupDirError),
    #[error(
        "attaching BPF program {program} to cgroup {path} failed: {source} \
         (needs root; check that the cgroup still exists)"
    )]
    Attach {
        program: &'static str,
        path: PathBuf,
        #[source]
        source: libbpf_rs::Error,
    },
    #[error("storing the approval of {addr} for thread {tid} failed: {source}")]
    Approve {
        tid: u32,
        addr: SocketAddr,
        #[source]
        source: libbpf_rs::Error,
    },
    #[error("reading CLOCK_MONOTONIC failed: {0}")]
    Clock(#[source] nix::Error),
}

/// The loaded programs and maps, and the links per protected cgroup (keyed by cgroup id).
///
/// Dropping it detaches the programs from every cgroup it protected.
pub struct ConnectGuard {
    // Field order is drop order: links first, then the map handles, then the object.
    links: Mutex<HashMap<u64, Vec<Link>>>,
    approvals: MapHandle,
    denials: MapHandle,
    object: Object,
}

impl std::fmt::Debug for ConnectGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cgroups: Vec<u64> = self.lock_links().keys().copied().collect();
        f.debug_struct("ConnectGuard")
            .field("protected_cgroups", &cgroups)
            .finish_non_exhaustive()
    }
}

impl ConnectGuard {
    /// Loads the programs (cgroup/connect4, connect6, sendmsg4, sendmsg6) and the approvals map.
    /// Needs root.
    pub fn load() -> Result<ConnectGuard, GuardError> {
        let load = |stage| move |source| GuardError::Load { stage, source };
        let open = ObjectBuilder::default()
            .open_memory(BPF_OBJECT)
            .map_err(load("opening the object"))?;
        let object = open.load().map_err(load("loading it into the kernel"))?;
        let map = |name: &str| object_maps::handle(&object, name).map_err(load("finding its maps"));
        let approvals = map("approvals")?;
        let denials = map("denials")?;
        Ok(ConnectGuard {
            links: Mutex::new(HashMap::new()),
            approvals,
            denials,
            object,
        })
    }

    /// Attaches the four programs to the cgroup v2 directory `cgroup_dir` (a container's cgroup);
    /// idempotent per directory (the links are kept, keyed by the cgroup's inode = cgroup id).
    ///
    /// From then on a connect() or an unconnected UDP send from a socket in that cgroup (or a
    /// cgroup below it) passes only if the calling thread holds an unexpired approval for exactly
    /// that destination; otherwise it fails with EPERM and [`denied`](Self::denied) increments.
    pub fn protect(&self, cgroup_dir: &Path) -> Result<(), GuardError> {
        let (dir, cgroup_id) = cgroup_dir::open(cgroup_dir)?;

        let mut links = self.lock_links();
        if links.contains_key(&cgroup_id) {
            return Ok(());
        }
        let mut attached = Vec::with_capacity(PROGRAMS.len());
        for name in PROGRAMS {
            let prog = self
                .object
                .progs_mut()
                .find(|p| p.name() == name)
                .ok_or_else(|| GuardError::Attach {
                    program: name,
                    path: cgroup_dir.to_path_buf(),
                    source: libbpf_rs::Error::from(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "program missing from the BPF object",
                    )),
                })?;
            // On error the links attached so far are dropped, which detaches them again.
            let link =
                prog.attach_cgroup(dir.as_raw_fd())
                    .map_err(|source| GuardError::Attach {
                        program: name,
                        path: cgroup_dir.to_path_buf(),
                        source,
                    })?;
            attached.push(link);
        }
        links.insert(cgroup_id, attached);
        Ok(())
    }

    /// Thread `tid` may connect/send to `addr` until `ttl` from now (an absolute CLOCK_MONOTONIC
    /// expiry, the clock bpf_ktime_get_ns() reads). Several approvals per tid may coexist.
    ///
    /// An IPv4-mapped IPv6 address (`[::ffff:a.b.c.d]:p`) is stored as the IPv4 address, which is
    /// how the programs look such destinations up.
    pub fn approve(&self, tid: u32, addr: SocketAddr, ttl: Duration) -> Result<(), GuardError> {
        let now = clock_gettime(ClockId::CLOCK_MONOTONIC).map_err(GuardError::Clock)?;
        let now = Duration::from(now);
        let expiry = u64::try_from(now.saturating_add(ttl).as_nanos()).unwrap_or(u64::MAX);
        let key = approval_key(tid, addr);
        self.approvals
            .update(&key, &expiry.to_ne_bytes(), MapFlags::ANY)
            .map_err(|source| GuardError::Approve { tid, addr, source })
    }

    /// How many connects/sends the programs refused since load.
    pub fn denied(&self) -> u64 {
        match self.denials.lookup(&0u32.to_ne_bytes(), MapFlags::ANY) {
            Ok(Some(v)) => v
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_ne_bytes)
                .unwrap_or(0),
            _ => 0,
        }
    }

    fn lock_links(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Vec<Link>>> {
        // A panic while holding the lock leaves the map consistent (insert is the last step).
        self.links.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `struct approval_key` of connect_guard.bpf.c: tid (u32, native), family (u16, native),
/// port (u16, network order), address (16 bytes, network order; IPv4 in the first 4).
fn approval_key(tid: u32, addr: SocketAddr) -> [u8; 24] {
    let mut key = [0u8; 24];
    key[0..4].copy_from_slice(&tid.to_ne_bytes());
    key[6..8].copy_from_slice(&addr.port().to_be_bytes());
    let ip = match addr.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            key[4..6].copy_from_slice(&AF_INET.to_ne_bytes());
            key[8..12].copy_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            key[4..6].copy_from_slice(&AF_INET6.to_ne_bytes());
            key[8..24].copy_from_slice(&v6.octets());
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_layout_v4() {
        let k = approval_key(0x01020304, "10.1.2.3:443".parse().unwrap());
        assert_eq!(&k[0..4], &0x01020304u32.to_ne_bytes());
        assert_eq!(&k[4..6], &AF_INET.to_ne_bytes());
        assert_eq!(&k[6..8], &[0x01, 0xbb]);
        assert_eq!(&k[8..12], &[10, 1, 2, 3]);
        assert!(k[12..].iter().all(|&b| b == 0));
    }

    #[test]
    fn mapped_v6_is_stored_as_v4() {
        let mapped = approval_key(7, "[::ffff:10.1.2.3]:80".parse().unwrap());
        let v4 = approval_key(7, "10.1.2.3:80".parse().unwrap());
        assert_eq!(mapped, v4);
    }

    #[test]
    fn key_layout_v6() {
        let k = approval_key(7, "[2001:db8::1]:53".parse().unwrap());
        assert_eq!(&k[4..6], &AF_INET6.to_ne_bytes());
        assert_eq!(&k[6..8], &[0, 53]);
        assert_eq!(k[8], 0x20);
        assert_eq!(k[23], 1);
    }
}
