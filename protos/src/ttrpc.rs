//! ttrpc (containerd/ttrpc): its message framing and Request/Response envelopes here, a unary
//! [`client`] and a [`server`] loop beside them, written here rather than taken from the `ttrpc`
//! crate. rampart-nri speaks it over NRI's multiplexed connection, rampartd and its agents over a
//! plain unix socket; this is the one copy for both.
//!
//! Why not the crate: the transports are no longer the reason. ttrpc-rust 0.10's async client and
//! server take any `AsyncRead + AsyncWrite` stream (so a mux virtual connection would do), and its
//! server has an accept hook (feature `security_extension`) that could check SO_PEERCRED on the
//! sockets of listeners it binds. What keeps it out is protobuf: its generated code and envelopes
//! are rust-protobuf by default, and its `prost` backend is built on prost 0.13 while this
//! workspace uses prost 0.14, so neither codec applies to our message types. rampart needs only
//! unary calls; what is left is a 10-byte header and two small protobuf messages, which are easier
//! to test byte for byte than to adapt.
//!
//! A message is `[length: u32 BE][stream id: u32 BE][type: u8][flags: u8][payload]`. Clients use
//! odd stream ids. The payload of a request is a [`Request`] naming the service and method; a
//! response carries a [`Response`] with a gRPC-style [`Status`].

use bytes::{Buf, Bytes, BytesMut};

pub mod client;
pub mod server;

pub use client::Client;

/// Bytes in a message header.
pub const HEADER_LEN: usize = 10;
/// ttrpc's limit on one message's payload (Go: `messageLengthMax`).
pub const MAX_MESSAGE_LEN: usize = 4 << 20;

pub const TYPE_REQUEST: u8 = 0x1;
pub const TYPE_RESPONSE: u8 = 0x2;
/// Streaming data; neither NRI nor rampart streams.
pub const TYPE_DATA: u8 = 0x3;

/// gRPC status codes that this crate sends or acts on.
pub mod code {
    pub const OK: i32 = 0;
    pub const UNKNOWN: i32 = 2;
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const DEADLINE_EXCEEDED: i32 = 4;
    pub const NOT_FOUND: i32 = 5;
    pub const PERMISSION_DENIED: i32 = 7;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    /// NRI >= 0.10 falls back from a per-event RPC to StateChange on this code.
    pub const UNIMPLEMENTED: i32 = 12;
    pub const INTERNAL: i32 = 13;
    pub const UNAVAILABLE: i32 = 14;
}

#[derive(Debug, thiserror::Error)]
pub enum TtrpcError {
    #[error("ttrpc message of {len} bytes exceeds the {MAX_MESSAGE_LEN}-byte limit")]
    Oversized { len: usize },
    #[error("decoding ttrpc {what} failed: {source}")]
    Decode {
        what: &'static str,
        #[source]
        source: prost::DecodeError,
    },
    #[error("{service}.{method} failed with status {code}: {message}")]
    Status {
        service: String,
        method: String,
        code: i32,
        message: String,
    },
    #[error("ttrpc call {service}.{method} timed out after {after:?}; the peer did not answer")]
    Timeout {
        service: String,
        method: String,
        after: std::time::Duration,
    },
    /// The stream under the messages ended or failed (a socket, NRI's multiplexer).
    #[error("the connection closed before {0} was answered")]
    Closed(String),
}

/// ttrpc's request envelope (containerd/ttrpc `request.proto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Request {
    #[prost(string, tag = "1")]
    pub service: String,
    #[prost(string, tag = "2")]
    pub method: String,
    #[prost(bytes = "vec", tag = "3")]
    pub payload: Vec<u8>,
    #[prost(int64, tag = "4")]
    pub timeout_nano: i64,
    #[prost(message, repeated, tag = "5")]
    pub metadata: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// ttrpc's response envelope.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Response {
    #[prost(message, optional, tag = "1")]
    pub status: Option<Status>,
    #[prost(bytes = "vec", tag = "2")]
    pub payload: Vec<u8>,
}

/// `google.rpc.Status` without details, which NRI never sets.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

impl Status {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Status {
            code,
            message: message.into(),
        }
    }
}

impl Response {
    pub fn ok(payload: Vec<u8>) -> Self {
        Response {
            status: Some(Status {
                code: code::OK,
                message: String::new(),
            }),
            payload,
        }
    }

    pub fn error(code: i32, message: impl Into<String>) -> Self {
        Response {
            status: Some(Status {
                code,
                message: message.into(),
            }),
            payload: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub length: u32,
    pub stream_id: u32,
    pub msg_type: u8,
    pub flags: u8,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..4].copy_from_slice(&self.length.to_be_bytes());
        h[4..8].copy_from_slice(&self.stream_id.to_be_bytes());
        h[8] = self.msg_type;
        h[9] = self.flags;
        h
    }

    pub fn decode(b: &[u8; HEADER_LEN]) -> Self {
        Header {
            length: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            stream_id: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            msg_type: b[8],
            flags: b[9],
        }
    }
}

/// One framed message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub stream_id: u32,
    pub msg_type: u8,
    pub flags: u8,
    pub payload: Bytes,
}

/// Header + payload, ready to write.
pub fn encode_message(stream_id: u32, msg_type: u8, payload: &[u8]) -> Result<Vec<u8>, TtrpcError> {
    if payload.len() > MAX_MESSAGE_LEN {
        return Err(TtrpcError::Oversized { len: payload.len() });
    }
    let header = Header {
        length: payload.len() as u32,
        stream_id,
        msg_type,
        flags: 0,
    };
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(payload);
    Ok(out)
}

/// What the decoder yields.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    Message(Message),
    /// A message over [`MAX_MESSAGE_LEN`] whose payload was skipped: like Go's ttrpc, answer it
    /// with RESOURCE_EXHAUSTED rather than tearing the connection down.
    Oversized {
        stream_id: u32,
        msg_type: u8,
        len: usize,
    },
}

/// Reassembles messages from a virtual connection's byte stream.
#[derive(Default)]
pub struct Decoder {
    buf: BytesMut,
    /// Bytes still to skip of an oversized message's payload.
    skipping: usize,
}

impl Decoder {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete message, `None` while one is still partial.
    pub fn next_message(&mut self) -> Option<Decoded> {
        if self.skipping > 0 {
            let n = self.skipping.min(self.buf.len());
            self.buf.advance(n);
            self.skipping -= n;
            if self.skipping > 0 {
                return None;
            }
        }
        if self.buf.len() < HEADER_LEN {
            return None;
        }
        let header = Header::decode(self.buf[..HEADER_LEN].try_into().expect("header length"));
        let len = header.length as usize;
        if len > MAX_MESSAGE_LEN {
            self.buf.advance(HEADER_LEN);
            self.skipping = len;
            let (stream_id, msg_type) = (header.stream_id, header.msg_type);
            // Drop what is already buffered of it now, so the caller can answer at once.
            let n = self.skipping.min(self.buf.len());
            self.buf.advance(n);
            self.skipping -= n;
            return Some(Decoded::Oversized {
                stream_id,
                msg_type,
                len,
            });
        }
        if self.buf.len() < HEADER_LEN + len {
            return None;
        }
        self.buf.advance(HEADER_LEN);
        let payload = self.buf.split_to(len).freeze();
        Some(Decoded::Message(Message {
            stream_id: header.stream_id,
            msg_type: header.msg_type,
            flags: header.flags,
            payload,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn header_is_ttrpc_layout() {
        let h = Header {
            length: 0x0102_0304,
            stream_id: 5,
            msg_type: TYPE_RESPONSE,
            flags: 0,
        };
        assert_eq!(h.encode(), [1, 2, 3, 4, 0, 0, 0, 5, 2, 0]);
        assert_eq!(Header::decode(&h.encode()), h);
    }

    #[test]
    fn request_round_trip_through_framing() {
        let req = Request {
            service: "nri.pkg.api.v1alpha1.Runtime".into(),
            method: "RegisterPlugin".into(),
            payload: vec![0x0a, 0x01, b'x'],
            timeout_nano: 2_000_000_000,
            metadata: vec![],
        };
        let wire = encode_message(1, TYPE_REQUEST, &req.encode_to_vec()).unwrap();
        let mut d = Decoder::default();
        d.push(&wire);
        let Some(Decoded::Message(m)) = d.next_message() else {
            panic!("no message")
        };
        assert_eq!((m.stream_id, m.msg_type), (1, TYPE_REQUEST));
        assert_eq!(Request::decode(m.payload).unwrap(), req);
        assert_eq!(d.next_message(), None);
    }

    #[test]
    fn envelope_field_numbers_match_ttrpc() {
        // Response{status{code=12, message="m"}, payload="p"}
        let r = Response {
            status: Some(Status {
                code: 12,
                message: "m".into(),
            }),
            payload: b"p".to_vec(),
        };
        assert_eq!(
            r.encode_to_vec(),
            [0x0a, 0x05, 0x08, 0x0c, 0x12, 0x01, b'm', 0x12, 0x01, b'p']
        );
        let q = Request {
            service: "s".into(),
            method: "m".into(),
            payload: vec![],
            timeout_nano: 1,
            metadata: vec![],
        };
        assert_eq!(
            q.encode_to_vec(),
            [0x0a, 0x01, b's', 0x12, 0x01, b'm', 0x20, 0x01]
        );
    }

    #[test]
    fn partial_reads_across_chunks() {
        let mut wire = encode_message(3, TYPE_RESPONSE, b"abc").unwrap();
        wire.extend(encode_message(5, TYPE_RESPONSE, &[9u8; 300]).unwrap());
        let mut d = Decoder::default();
        let mut got = Vec::new();
        for chunk in wire.chunks(7) {
            d.push(chunk);
            while let Some(Decoded::Message(m)) = d.next_message() {
                got.push(m);
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].stream_id, &got[0].payload[..]), (3, &b"abc"[..]));
        assert_eq!((got[1].stream_id, got[1].payload.len()), (5, 300));
    }

    #[test]
    fn oversized_message_is_skipped_and_reported() {
        let len = MAX_MESSAGE_LEN + 5;
        let header = Header {
            length: len as u32,
            stream_id: 7,
            msg_type: TYPE_REQUEST,
            flags: 0,
        };
        let mut d = Decoder::default();
        d.push(&header.encode());
        d.push(&vec![0u8; 1000]);
        assert_eq!(
            d.next_message(),
            Some(Decoded::Oversized {
                stream_id: 7,
                msg_type: TYPE_REQUEST,
                len
            })
        );
        // The rest of its payload arrives later and is skipped; the next message still decodes.
        d.push(&vec![0u8; len - 1000]);
        d.push(&encode_message(9, TYPE_REQUEST, b"ok").unwrap());
        let Some(Decoded::Message(m)) = d.next_message() else {
            panic!("next message lost")
        };
        assert_eq!((m.stream_id, &m.payload[..]), (9, &b"ok"[..]));
        assert!(encode_message(1, TYPE_REQUEST, &vec![0u8; MAX_MESSAGE_LEN + 1]).is_err());
    }
}
