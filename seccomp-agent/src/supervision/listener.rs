//! The socket runc connects to (the OCI seccomp `listenerPath`): after installing a filter with
//! SCMP_ACT_NOTIFY actions, runc sends the container process state as JSON with the notify fd
//! attached (SCM_RIGHTS), then closes the connection. runc does this for the container's init and
//! again for every process exec'd into it (CRI ExecSync, `kubectl exec`).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{ContainerProcessState, SECCOMP_FD_NAME};
use tokio::io::Interest;
use tokio::net::{UnixListener, UnixStream};

use crate::sys::scm::recv_with_fds;

/// runc's state JSON carries the bundle path and all annotations; a few KiB in practice.
const MAX_STATE_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot create the listener socket {path}: {source}")]
    Bind { path: PathBuf, source: io::Error },
    #[error("accepting a connection on the listener socket failed: {0}")]
    Accept(io::Error),
    #[error(
        "refused a connection from uid {uid} pid {pid:?}: only root (runc) may hand over notify fds"
    )]
    NotRoot { uid: u32, pid: Option<i32> },
    #[error("reading the container state from runc failed: {0}")]
    Read(io::Error),
    #[error("runc's container state is larger than {MAX_STATE_BYTES} bytes")]
    TooLarge,
    #[error(
        "runc's container state is not valid JSON ({0}); is the runtime an OCI runtime that supports listenerPath?"
    )]
    State(serde_json::Error),
    #[error("runc's connection carried no seccomp notify fd (fds: {names:?})")]
    NoNotifyFd { names: Vec<String> },
}

/// What one connection from runc hands over.
#[derive(Debug)]
pub struct Handoff {
    pub state: ContainerProcessState,
    pub notify_fd: OwnedFd,
}

pub struct Listener {
    inner: UnixListener,
    path: PathBuf,
}

impl Listener {
    /// Binds `path` with mode 0600 (a stale socket from an earlier run is replaced).
    pub fn bind(path: &Path) -> Result<Self, ListenError> {
        let err = |source| ListenError::Bind {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(e)),
        }
        let inner = UnixListener::bind(path).map_err(err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
        Ok(Self {
            inner,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for the next connection from root. Errors concern that one connection; the caller
    /// logs them and keeps accepting. Read each connection's handoff on a task of its own
    /// ([`Incoming::handoff`]): one slow sender must not hold up other containers' starts.
    pub async fn accept(&self) -> Result<Incoming, ListenError> {
        let (stream, _) = self.inner.accept().await.map_err(ListenError::Accept)?;
        let cred = stream.peer_cred().map_err(ListenError::Accept)?;
        if cred.uid() != 0 {
            return Err(ListenError::NotRoot {
                uid: cred.uid(),
                pid: cred.pid(),
            });
        }
        Ok(Incoming { stream })
    }
}

/// An accepted connection from runc, before its handoff is read.
pub struct Incoming {
    stream: UnixStream,
}

impl Incoming {
    pub async fn handoff(self) -> Result<Handoff, ListenError> {
        read_handoff(&self.stream).await
    }
}

/// Reads until the state JSON is complete. runc keeps the connection open while its init goes on
/// (and init's next syscalls may already wait on this very fd), so waiting for EOF would
/// deadlock; the fds come with the first chunk.
async fn read_handoff(stream: &UnixStream) -> Result<Handoff, ListenError> {
    let mut data = Vec::with_capacity(4096);
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let state: ContainerProcessState = loop {
        let n = stream
            .async_io(Interest::READABLE, || {
                recv_with_fds(stream.as_fd(), &mut buf, &mut fds)
            })
            .await
            .map_err(ListenError::Read)?;
        data.extend_from_slice(&buf[..n]);
        if data.len() > MAX_STATE_BYTES {
            return Err(ListenError::TooLarge);
        }
        match serde_json::from_slice(&data) {
            Ok(state) => break state,
            // Not all of it yet: read on, unless the sender is gone.
            Err(e) if e.is_eof() && n > 0 => continue,
            Err(e) => return Err(ListenError::State(e)),
        }
    };
    let index = state.fds().iter().position(|n| n == SECCOMP_FD_NAME);
    let notify_fd = match index {
        Some(i) if i < fds.len() => fds.swap_remove(i),
        _ => {
            return Err(ListenError::NoNotifyFd {
                names: state.fds().clone(),
            });
        }
    };
    Ok(Handoff { state, notify_fd })
}
