//! The agent's side of the fd holder: hand it a copy of each notify fd, keep its record of the fd's
//! phase current, release fds the agent gives up, and take everything back on start.
//!
//! One connection per request: requests are rare (a container start, a workload's first execve,
//! an agent start) and a fresh connection needs no reconnect logic. Every call is bounded by a
//! timeout; none is on a notification's path except the one phase change per fd.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use oci_spec::runtime::ContainerProcessState;
use tracing::{error, info, warn};

use crate::guard::group::GroupMeta;
use crate::holder::protocol::{self as proto, HeldPhase, ProtocolError, Reply, Request};
use crate::phase::Phase;
use crate::sys::seqpacket;
use crate::workload::{Workload, annotations};

const TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum HolderClientError {
    #[error(
        "cannot reach the fd holder at {path}: {source} (is rampart-holder running? `scripts/rampart up` or the rampart-holder unit starts it)"
    )]
    Connect { path: PathBuf, source: io::Error },
    #[error("the fd holder at {path} is not run by root (uid {uid}); refusing to use it")]
    NotRoot { path: PathBuf, uid: u32 },
    #[error("talking to the fd holder failed: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("the fd holder refused: {0}")]
    Refused(String),
    #[error("unexpected reply from the fd holder: {0:?}")]
    Unexpected(Box<Reply>),
    #[error("the fd holder's entry {id} carried no notify fd")]
    NoFd { id: u64 },
    #[error("the fd holder's entry {id} has a description this agent can't read: {source}")]
    Meta { id: u64, source: serde_json::Error },
}

/// A file guard group the holder gave back (`guard::group`).
#[derive(Debug)]
pub struct TakenGroup {
    pub id: u64,
    pub meta: GroupMeta,
    pub fd: OwnedFd,
}

/// How a group is described to the holder (a notify fd's description is its OCI state).
#[derive(serde::Serialize, serde::Deserialize)]
struct GroupEntry {
    guard: GroupMeta,
}

/// A notify fd the holder gave back.
#[derive(Debug)]
pub struct Taken {
    pub id: u64,
    pub state: ContainerProcessState,
    pub phase: Phase,
    pub fd: OwnedFd,
}

/// Talks to the holder at one socket path, and says once, clearly, when it can't.
#[derive(Debug)]
pub struct HolderClient {
    path: PathBuf,
    /// Whether the last attempt failed to reach the holder (the warning is logged on the change).
    unreachable: AtomicBool,
}

impl HolderClient {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            unreachable: AtomicBool::new(false),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Hands the holder a copy of `fd`, supervised for the container in `state`. Returns the id
    /// the holder knows it by.
    pub fn hold(
        &self,
        state: &ContainerProcessState,
        phase: Phase,
        fd: BorrowedFd<'_>,
    ) -> Result<u64, HolderClientError> {
        let w = Workload::from_state(state);
        let req = Request::Hold {
            label: format!(
                "{}/{}/{} {}",
                w.namespace,
                w.pod_name,
                w.container_name,
                w.container_id.get(..12).unwrap_or(&w.container_id)
            ),
            meta: serde_json::to_string(&trimmed(state))
                .map_err(|e| HolderClientError::Protocol(e.into()))?,
            phase: phase.into(),
        };
        match self.call(&req, Some(fd))? {
            Reply::Held { id } => Ok(id),
            other => Err(unexpected(other)),
        }
    }

    /// Hands the holder a copy of a container's file guard group. It keeps it until released:
    /// a group has no tasks of its own to hang up when they exit.
    pub fn hold_group(
        &self,
        meta: &GroupMeta,
        fd: BorrowedFd<'_>,
    ) -> Result<u64, HolderClientError> {
        let req = Request::Hold {
            label: format!(
                "file guard {}/{}/{} {}",
                meta.workload.namespace,
                meta.workload.pod_name,
                meta.workload.container_name,
                meta.workload
                    .container_id
                    .get(..12)
                    .unwrap_or(&meta.workload.container_id)
            ),
            meta: serde_json::to_string(&GroupEntry {
                guard: meta.clone(),
            })
            .map_err(|e| HolderClientError::Protocol(e.into()))?,
            phase: HeldPhase::Workload,
        };
        match self.call(&req, Some(fd))? {
            Reply::Held { id } => Ok(id),
            other => Err(unexpected(other)),
        }
    }

    pub fn set_phase(&self, id: u64, phase: Phase) -> Result<(), HolderClientError> {
        let req = Request::SetPhase {
            id,
            phase: phase.into(),
        };
        match self.call(&req, None)? {
            Reply::Ok => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    pub fn release(&self, id: u64) -> Result<(), HolderClientError> {
        match self.call(&Request::Release { id }, None)? {
            Reply::Ok => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Copies of every notify fd the holder holds, with their descriptions.
    pub fn list(&self) -> Result<Vec<Taken>, HolderClientError> {
        Ok(self.list_all()?.0)
    }

    /// Copies of every fd the holder holds: notify fds and file guard groups. An entry this
    /// agent can't read is released (its container's notified syscalls then fail rather than
    /// wait forever).
    pub fn list_all(&self) -> Result<(Vec<Taken>, Vec<TakenGroup>), HolderClientError> {
        let sock = self.connect()?;
        seqpacket::send(sock.as_fd(), &proto::encode(&Request::List)?, &[])?;
        let mut taken = Vec::new();
        let mut groups = Vec::new();
        let mut unreadable = Vec::new();
        loop {
            let (reply, mut fds) = receive(sock.as_fd())?;
            match reply {
                Reply::Entry {
                    id,
                    label,
                    meta,
                    phase,
                } => {
                    let Some(fd) = fds.pop() else {
                        unreadable.push((id, label, HolderClientError::NoFd { id }));
                        continue;
                    };
                    if let Ok(GroupEntry { guard }) = serde_json::from_str(&meta) {
                        groups.push(TakenGroup {
                            id,
                            meta: guard,
                            fd,
                        });
                        continue;
                    }
                    match serde_json::from_str(&meta) {
                        Ok(state) => taken.push(Taken {
                            id,
                            state,
                            phase: phase.into(),
                            fd,
                        }),
                        Err(source) => {
                            unreadable.push((id, label, HolderClientError::Meta { id, source }))
                        }
                    }
                }
                Reply::End { .. } => break,
                other => return Err(unexpected(other)),
            }
        }
        drop(sock);
        for (id, label, e) in unreadable {
            error!(held = id, fd = %label, error = %e, "cannot take over a notify fd the holder holds; releasing it, so its container's notified syscalls fail (ENOSYS)");
            if let Err(e) = self.release(id) {
                error!(held = id, error = %e, "releasing it failed too");
            }
        }
        Ok((taken, groups))
    }

    fn call(&self, req: &Request, fd: Option<BorrowedFd<'_>>) -> Result<Reply, HolderClientError> {
        let sock = self.connect()?;
        let fds: Vec<BorrowedFd<'_>> = fd.into_iter().collect();
        seqpacket::send(sock.as_fd(), &proto::encode(req)?, &fds)?;
        let (reply, _) = receive(sock.as_fd())?;
        match reply {
            Reply::Error { message } => Err(HolderClientError::Refused(message)),
            r => Ok(r),
        }
    }

    fn connect(&self) -> Result<OwnedFd, HolderClientError> {
        let result = seqpacket::connect(&self.path, TIMEOUT)
            .map_err(|source| HolderClientError::Connect {
                path: self.path.clone(),
                source,
            })
            .and_then(|sock| match seqpacket::peer_uid(sock.as_fd())? {
                0 => Ok(sock),
                uid if uid == nix::unistd::geteuid().as_raw() => Ok(sock),
                uid => Err(HolderClientError::NotRoot {
                    path: self.path.clone(),
                    uid,
                }),
            });
        match &result {
            Ok(_) => {
                if self.unreachable.swap(false, Ordering::Relaxed) {
                    info!(holder = %self.path.display(), "fd holder reachable again: new notify fds survive agent restarts");
                }
            }
            Err(e) => {
                if !self.unreachable.swap(true, Ordering::Relaxed) {
                    warn!(holder = %self.path.display(), error = %e,
                        "restart survival off: notify fds are supervised, but an agent restart will fail their containers' notified syscalls (ENOSYS)");
                }
            }
        }
        result
    }
}

fn receive(sock: BorrowedFd<'_>) -> Result<(Reply, Vec<OwnedFd>), HolderClientError> {
    let mut buf = vec![0u8; proto::MAX_MESSAGE];
    let mut fds = Vec::new();
    let n = seqpacket::recv(sock, &mut buf, &mut fds, false)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the fd holder closed the connection",
        )
        .into());
    }
    Ok((proto::decode(&buf[..n])?, fds))
}

fn unexpected(reply: Reply) -> HolderClientError {
    HolderClientError::Unexpected(Box::new(reply))
}

/// The state without the annotations the agent does not read (rampart's own seccomp annotation is
/// kilobytes of JSON), so the description stays small.
fn trimmed(state: &ContainerProcessState) -> ContainerProcessState {
    const KEEP: &[&str] = &[
        annotations::SANDBOX_NAME,
        annotations::SANDBOX_NAMESPACE,
        annotations::SANDBOX_UID,
        annotations::CONTAINER_NAME,
        annotations::CONTAINER_TYPE,
        annotations::IMAGE_NAME,
        annotations::POD_LABELS,
    ];
    let mut state = state.clone();
    let mut inner = state.state().clone();
    if let Some(ann) = inner.annotations().clone() {
        inner.set_annotations(Some(
            ann.into_iter()
                .filter(|(k, _)| KEEP.contains(&k.as_str()))
                .collect(),
        ));
    }
    state.set_state(inner);
    state
}

impl From<Phase> for HeldPhase {
    fn from(p: Phase) -> Self {
        match p {
            Phase::RuntimeInit => HeldPhase::RuntimeInit,
            Phase::Workload => HeldPhase::Workload,
        }
    }
}

impl From<HeldPhase> for Phase {
    fn from(p: HeldPhase) -> Self {
        match p {
            HeldPhase::RuntimeInit => Phase::RuntimeInit,
            HeldPhase::Workload => Phase::Workload,
        }
    }
}
