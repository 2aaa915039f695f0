//! What the agent and the fd holder say to each other: JSON messages on a SOCK_SEQPACKET unix
//! socket, one message per packet, a notify fd attached (SCM_RIGHTS) where the message says so.
//!
//! ```text
//! agent → holder                                   holder → agent
//! {"v":1,"op":"hold","label":…,"meta":…,            {"v":1,"reply":"held","id":7}
//!   "phase":"runtime-init"}        + notify fd
//! {"v":1,"op":"set-phase","id":7,"phase":"workload"} {"v":1,"reply":"ok"}
//! {"v":1,"op":"release","id":7}                      {"v":1,"reply":"ok"}
//! {"v":1,"op":"list"}                                {"v":1,"reply":"entry","id":7,…} + notify fd
//!                                                    … one per held fd, then
//!                                                    {"v":1,"reply":"end","count":N}
//! any                                                {"v":1,"reply":"error","message":…}
//! ```
//!
//! The holder never looks inside `meta` (the agent's description of the fd, opaque to it), so the
//! holder does not need to change, or restart, when the agent does.

use serde::{Deserialize, Serialize};

/// The protocol's version; a holder answers other versions with an error.
pub const VERSION: u32 = 1;

/// Larger messages are refused (the fd is then supervised, but does not survive a restart).
/// Kept well under the kernel's default socket send buffer, which bounds a packet.
pub const MAX_MESSAGE: usize = 128 * 1024;

/// The holder's default socket.
pub const DEFAULT_SOCKET: &str = "/run/rampart/seccomp-holder.sock";

/// Where the tasks of a held fd are (see `supervisor::Phase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeldPhase {
    RuntimeInit,
    Workload,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// Keep the attached notify fd until every task of its filter has exited.
    Hold {
        /// For the holder's logs (namespace/pod/container and id).
        label: String,
        /// The agent's description of the fd, given back by `List`.
        meta: String,
        phase: HeldPhase,
    },
    SetPhase {
        id: u64,
        phase: HeldPhase,
    },
    /// Close the holder's copy now (the agent gave the fd up on purpose, to fail closed).
    Release {
        id: u64,
    },
    /// Send a copy of every held fd.
    List,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "kebab-case")]
pub enum Reply {
    Held {
        id: u64,
    },
    Ok,
    Entry {
        id: u64,
        label: String,
        meta: String,
        phase: HeldPhase,
    },
    End {
        count: usize,
    },
    Error {
        message: String,
    },
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    v: u32,
    #[serde(flatten)]
    body: T,
}

#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("malformed holder message: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "holder protocol version {got}, this side speaks {VERSION}: run the agent and the holder from the same release"
    )]
    Version { got: u32 },
    #[error("holder message of {len} bytes exceeds the limit of {MAX_MESSAGE}")]
    TooLarge { len: usize },
}

pub fn encode<T: Serialize>(body: &T) -> Result<Vec<u8>, ProtocolError> {
    let bytes = serde_json::to_vec(&Envelope { v: VERSION, body })?;
    if bytes.len() > MAX_MESSAGE {
        return Err(ProtocolError::TooLarge { len: bytes.len() });
    }
    Ok(bytes)
}

pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, ProtocolError> {
    #[derive(Deserialize)]
    struct Version {
        v: u32,
    }
    let v: Version = serde_json::from_slice(bytes)?;
    if v.v != VERSION {
        return Err(ProtocolError::Version { got: v.v });
    }
    let env: Envelope<T> = serde_json::from_slice(bytes)?;
    Ok(env.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_round_trip() {
        let r = Request::Hold {
            label: "ns/pod/c".into(),
            meta: r#"{"x":1}"#.into(),
            phase: HeldPhase::RuntimeInit,
        };
        let bytes = encode(&r).unwrap();
        assert!(
            String::from_utf8_lossy(&bytes).contains(r#""op":"hold""#),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        assert_eq!(decode::<Request>(&bytes).unwrap(), r);
        let e = Reply::End { count: 3 };
        assert_eq!(decode::<Reply>(&encode(&e).unwrap()).unwrap(), e);
        assert_eq!(
            decode::<Request>(br#"{"v":1,"op":"set-phase","id":2,"phase":"workload"}"#).unwrap(),
            Request::SetPhase {
                id: 2,
                phase: HeldPhase::Workload
            }
        );
    }

    #[test]
    fn other_versions_and_oversized_messages_are_refused() {
        assert!(matches!(
            decode::<Request>(br#"{"v":2,"op":"list"}"#),
            Err(ProtocolError::Version { got: 2 })
        ));
        let big = Request::Hold {
            label: String::new(),
            meta: "x".repeat(MAX_MESSAGE),
            phase: HeldPhase::Workload,
        };
        assert!(matches!(encode(&big), Err(ProtocolError::TooLarge { .. })));
    }
}
