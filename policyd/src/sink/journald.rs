//! Writes structured entries to journald over its native protocol, so each field of an alert is a
//! journal field of its own (`journalctl RAMPART_ACTION=Blocked` finds it) instead of text inside
//! MESSAGE that a reader would have to parse.
//!
//! The protocol (systemd's "Native Journal Protocol"): one datagram per entry on
//! /run/systemd/journal/socket; `NAME=value\n` for values without a newline, and
//! `NAME\n<u64 LE length><value>\n` for values with one. An entry larger than a datagram may carry
//! is written to a sealed memfd whose descriptor is passed instead.

use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::socket::{ControlMessage, MsgFlags, UnixAddr, sendmsg};

/// journald's socket on every systemd machine.
pub const DEFAULT_SOCKET: &str = "/run/systemd/journal/socket";

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(
        "journal field name {0:?} is invalid: use 1-64 characters of A-Z, 0-9 and _, not starting with _ or a digit"
    )]
    FieldName(String),
    #[error("cannot reach journald at {path}: {source}; is systemd-journald running?")]
    Connect { path: PathBuf, source: io::Error },
    #[error("journald at {path} refused the entry: {source}")]
    Send { path: PathBuf, source: io::Error },
    #[error("cannot build a memfd for a large journal entry: {0}")]
    Memfd(io::Error),
}

/// Appends one field in the native protocol's encoding.
fn encode_field(buf: &mut Vec<u8>, name: &str, value: &[u8]) -> Result<(), JournalError> {
    if !valid_field_name(name) {
        return Err(JournalError::FieldName(name.to_owned()));
    }
    buf.extend_from_slice(name.as_bytes());
    if value.contains(&b'\n') {
        buf.push(b'\n');
        buf.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        buf.push(b'=');
    }
    buf.extend_from_slice(value);
    buf.push(b'\n');
    Ok(())
}

/// Names journald accepts from a client: fields starting with `_` are the trusted ones that
/// journald itself adds, so a client may not send them.
pub fn valid_field_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && !b[0].is_ascii_digit()
        && b[0] != b'_'
        && b.iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_')
}

/// Encodes a whole entry; exposed for tests and for queueing entries while journald is down.
pub fn encode_entry<'a>(
    fields: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<Vec<u8>, JournalError> {
    let mut buf = Vec::with_capacity(512);
    for (name, value) in fields {
        encode_field(&mut buf, name, value)?;
    }
    Ok(buf)
}

/// A connection-less writer to journald.
#[derive(Debug)]
pub struct Journal {
    socket: UnixDatagram,
    path: PathBuf,
}

impl Journal {
    pub fn connect_default() -> Result<Self, JournalError> {
        Self::connect(Path::new(DEFAULT_SOCKET))
    }

    pub fn connect(path: &Path) -> Result<Self, JournalError> {
        let connect_err = |source| JournalError::Connect {
            path: path.to_owned(),
            source,
        };
        let socket = UnixDatagram::unbound().map_err(connect_err)?;
        socket.connect(path).map_err(connect_err)?;
        Ok(Self {
            socket,
            path: path.to_owned(),
        })
    }

    /// Sends one entry. Field names must be valid journal names (see [`valid_field_name`]).
    pub fn send<'a>(
        &self,
        fields: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<(), JournalError> {
        let entry = encode_entry(fields)?;
        self.send_encoded(&entry)
    }

    pub fn send_encoded(&self, entry: &[u8]) -> Result<(), JournalError> {
        match self.socket.send(entry) {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc_emsgsize()) => self.send_via_memfd(entry),
            Err(source) => Err(JournalError::Send {
                path: self.path.clone(),
                source,
            }),
        }
    }

    fn send_via_memfd(&self, entry: &[u8]) -> Result<(), JournalError> {
        let fd = memfd_create(c"rampart-journal", MFdFlags::MFD_CLOEXEC)
            .map_err(|e| JournalError::Memfd(e.into()))?;
        let mut file = std::fs::File::from(fd);
        file.write_all(entry).map_err(JournalError::Memfd)?;
        let fds = [file.as_raw_fd()];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let addr = UnixAddr::new(&self.path).map_err(|e| JournalError::Send {
            path: self.path.clone(),
            source: e.into(),
        })?;
        sendmsg(
            self.socket.as_raw_fd(),
            &[],
            &cmsg,
            MsgFlags::empty(),
            Some(&addr),
        )
        .map_err(|e| JournalError::Send {
            path: self.path.clone(),
            source: e.into(),
        })?;
        Ok(())
    }
}

const fn libc_emsgsize() -> i32 {
    nix::errno::Errno::EMSGSIZE as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_use_equals() {
        let e = encode_entry([("MESSAGE", &b"hello"[..]), ("RAMPART_ACTION", b"Blocked")]).unwrap();
        assert_eq!(e, b"MESSAGE=hello\nRAMPART_ACTION=Blocked\n");
    }

    #[test]
    fn values_with_newlines_are_length_prefixed() {
        let e = encode_entry([("MESSAGE", &b"a\nb"[..])]).unwrap();
        let mut want = b"MESSAGE\n".to_vec();
        want.extend_from_slice(&3u64.to_le_bytes());
        want.extend_from_slice(b"a\nb\n");
        assert_eq!(e, want);
    }

    #[test]
    fn invalid_names_are_refused() {
        for bad in ["", "_PID", "lower", "1ABC", "A-B", &"X".repeat(65)] {
            assert!(
                matches!(
                    encode_entry([(bad, &b"v"[..])]),
                    Err(JournalError::FieldName(_))
                ),
                "{bad:?} should be refused"
            );
        }
        assert!(valid_field_name("RAMPART_POLICY"));
    }

    #[test]
    fn missing_socket_says_what_to_do() {
        let err = Journal::connect(Path::new("/nonexistent/journal.sock")).unwrap_err();
        assert!(
            err.to_string().contains("systemd-journald running"),
            "{err}"
        );
    }
}
