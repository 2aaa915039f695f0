//! The socket file: its directory, a stale socket left by a daemon that died, its permissions.

use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("cannot create the socket directory {dir}: {source}")]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is in use: another rampartd answers on it; stop it first, or give this one \
         another socket"
    )]
    InUse { path: PathBuf },
    #[error("{path} exists and is not a socket; refusing to replace it: remove it by hand")]
    NotASocket { path: PathBuf },
    #[error("cannot remove the stale socket {path}: {source}")]
    RemoveStale {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {path}: {source}")]
    Bind {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot restrict {path} to mode 0600: {source}")]
    Chmod {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Listens on `path`: creates its directory (0700) if missing, replaces a stale socket, and makes
/// the socket 0600. Must run inside a tokio runtime.
pub fn listen(path: &Path) -> Result<UnixListener, SocketError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // An existing directory is left as it is: it may be shared (the seccomp agent's socket
        // lives beside ours) and its owner chose its mode.
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| SocketError::CreateDir {
                    dir: dir.to_owned(),
                    source,
                })?;
        }
    }
    remove_stale(path)?;
    let listener = UnixListener::bind(path).map_err(|source| SocketError::Bind {
        path: path.to_owned(),
        source,
    })?;
    // Between bind and chmod the socket has the umask's mode; the SO_PEERCRED check on every
    // connection is what keeps non-root peers out in that window.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|source| {
        SocketError::Chmod {
            path: path.to_owned(),
            source,
        }
    })?;
    Ok(listener)
}

fn remove_stale(path: &Path) -> Result<(), SocketError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(SocketError::RemoveStale {
                path: path.to_owned(),
                source,
            });
        }
    };
    if !meta.file_type().is_socket() {
        return Err(SocketError::NotASocket {
            path: path.to_owned(),
        });
    }
    // A socket that still accepts belongs to a live daemon; taking it over would leave that one
    // serving nobody.
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(SocketError::InUse {
            path: path.to_owned(),
        });
    }
    tracing::info!(socket = %path.display(), "replacing a stale socket");
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(source) => Err(SocketError::RemoveStale {
            path: path.to_owned(),
            source,
        }),
    }
}
