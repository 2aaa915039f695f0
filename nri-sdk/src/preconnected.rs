//! Pre-registered plugin mode: containerd starts every executable in its NRI `plugin_path` named
//! `<index>-<name>`, with one end of a connected socketpair as fd 3 and only three variables in
//! its environment (NRI's `pkg/api/plugin.go`): `NRI_PLUGIN_SOCKET` (the fd number),
//! `NRI_PLUGIN_NAME` and `NRI_PLUGIN_IDX`. The plugin registers over that socket as it would over
//! the NRI socket, and cannot reconnect: when the runtime goes away it exits, and the runtime
//! starts it again when it starts.
//!
//! Taking ownership of the inherited fd is [`crate::sys::take_inherited_socket`]'s job (the
//! crate's only `unsafe`).

use std::os::fd::RawFd;

use crate::sys::{self, NotTaken};

pub const SOCKET_ENV: &str = "NRI_PLUGIN_SOCKET";
pub const NAME_ENV: &str = "NRI_PLUGIN_NAME";
pub const INDEX_ENV: &str = "NRI_PLUGIN_IDX";

#[derive(Debug, thiserror::Error)]
pub enum PreconnectedError {
    #[error("{SOCKET_ENV}={0:?} is not a file descriptor number")]
    NotAnFd(String),
    #[error(
        "{SOCKET_ENV}={fd}: fd {fd} is not an inherited socket ({what}); rampart-nri was not \
         started by the runtime from its plugin_path, unset {SOCKET_ENV} to run it as an \
         external plugin"
    )]
    NotASocket { fd: RawFd, what: String },
    #[error("{SOCKET_ENV} was already taken: the pre-connected socket can be used once")]
    Taken,
    #[error("cannot use the pre-connected socket: {0}")]
    Io(#[from] std::io::Error),
}

/// What the runtime handed a plugin it started.
#[derive(Debug)]
pub struct Preconnected {
    pub socket: std::os::unix::net::UnixStream,
    /// `NRI_PLUGIN_NAME` / `NRI_PLUGIN_IDX`, when set: the name the runtime knows the plugin by.
    pub name: Option<String>,
    pub index: Option<String>,
}

/// The runtime's pre-connected socket, if this process was started as a pre-registered plugin.
pub fn from_env() -> Result<Option<Preconnected>, PreconnectedError> {
    let var = |k: &str| {
        std::env::var_os(k)
            .map(|v| v.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty())
    };
    from_vars(var(SOCKET_ENV), var(NAME_ENV), var(INDEX_ENV))
}

fn from_vars(
    socket: Option<String>,
    name: Option<String>,
    index: Option<String>,
) -> Result<Option<Preconnected>, PreconnectedError> {
    let Some(v) = socket else {
        return Ok(None);
    };
    let fd: RawFd = v
        .trim()
        .parse()
        .ok()
        .filter(|fd| *fd >= 0)
        .ok_or_else(|| PreconnectedError::NotAnFd(v.clone()))?;
    let owned = sys::take_inherited_socket(fd).map_err(|e| match e {
        NotTaken::NotASocket(what) => PreconnectedError::NotASocket { fd, what },
        NotTaken::Taken => PreconnectedError::Taken,
    })?;
    let inherited = std::os::unix::net::UnixStream::from(owned);
    // The runtime passed it without CLOEXEC; a process this plugin starts must not hold the
    // runtime's connection open. try_clone dups with F_DUPFD_CLOEXEC; the original is closed.
    let socket = inherited.try_clone()?;
    drop(inherited);
    Ok(Some(Preconnected {
        socket,
        name,
        index,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::{AsRawFd, IntoRawFd};

    // One test: taking is once per process, so the cases run in order.
    #[test]
    fn takes_an_inherited_socket_once_and_refuses_anything_else() {
        assert!(from_vars(None, None, None).unwrap().is_none());
        assert!(matches!(
            from_vars(Some("three".into()), None, None),
            Err(PreconnectedError::NotAnFd(_))
        ));
        let file = std::fs::File::open("/proc/self/status").unwrap();
        let err = from_vars(Some(file.as_raw_fd().to_string()), None, None).unwrap_err();
        assert!(matches!(err, PreconnectedError::NotASocket { .. }), "{err}");

        let (mut ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let fd = theirs.into_raw_fd();
        let got = from_vars(
            Some(fd.to_string()),
            Some("rampart".into()),
            Some("10".into()),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (got.name.as_deref(), got.index.as_deref()),
            (Some("rampart"), Some("10"))
        );
        ours.write_all(b"hi").unwrap();
        let mut buf = [0u8; 2];
        (&got.socket).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");

        let (_a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let err = from_vars(Some(b.as_raw_fd().to_string()), None, None).unwrap_err();
        assert!(matches!(err, PreconnectedError::Taken), "{err}");
    }
}
