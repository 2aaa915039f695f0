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

    /// Waits for the next connection and reads its handoff. Errors concern that one connection;
    /// the caller logs them and keeps accepting.
    pub async fn accept(&self) -> Result<Handoff, ListenError> {
        let (stream, _) = self.inner.accept().await.map_err(ListenError::Accept)?;
        let cred = stream.peer_cred().map_err(ListenError::Accept)?;
        if cred.uid() != 0 {
            return Err(ListenError::NotRoot {
                uid: cred.uid(),
                pid: cred.pid(),
            });
        }
        read_handoff(&stream).await
    }
}

/// Reads until runc closes the connection: the JSON may span several reads, the fds come with
/// the first.
async fn read_handoff(stream: &UnixStream) -> Result<Handoff, ListenError> {
    let mut data = Vec::with_capacity(4096);
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stream
            .async_io(Interest::READABLE, || {
                recv_with_fds(stream.as_fd(), &mut buf, &mut fds)
            })
            .await
            .map_err(ListenError::Read)?;
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
        if data.len() > MAX_STATE_BYTES {
            return Err(ListenError::TooLarge);
        }
    }
    let state: ContainerProcessState = serde_json::from_slice(&data).map_err(ListenError::State)?;
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
