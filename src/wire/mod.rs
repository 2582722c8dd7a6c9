//! The one wire format every peerchain process speaks: MessagePack bodies in length-prefixed
//! frames over TCP.
//!
//! ```text
//!  0               4                                   4 + len
//!  +---------------+-----------------------------------+
//!  | len: u32 (BE) | MessagePack body (named fields)   |
//!  +---------------+-----------------------------------+
//!                    len <= max_frame_length (default 1 MiB), enforced on read and on write
//! ```
//!
//! A body is an [`Envelope`]: a request id chosen by the caller plus one message, so that a
//! connection can pipeline requests and match replies that come back in any order.
//!
//! Layout:
//! - [`frame_codec`] — bytes ⇄ frames ⇄ typed values ([`FrameCodec`]).
//! - [`message`] — the bootstrap protocol's requests and responses.
//! - [`peer_message`] — the node-to-node protocol (handshake, addresses, blocks, status).
//! - [`wire_error`] — typed error codes carried in replies, and decode errors.

pub mod frame_codec;
pub mod message;
pub mod peer_message;
pub mod wire_error;

pub use frame_codec::{
    decode_body, FrameCodec, DEFAULT_MAX_FRAME_LENGTH, MAX_NESTING_DEPTH, MIN_MAX_FRAME_LENGTH,
};
pub use message::{
    ClusterInfo, EntryDetail, Envelope, MemberInfo, PeerPage, Request, Response,
    MAX_ENCODED_ENTRY_DETAIL, WIRE_VERSION,
};
pub use peer_message::{
    BookDrops, Hello, NodeStatus, PeerMessage, PeerStatus, RecentBlock, Tip, MAX_ADDRS_PER_MESSAGE,
    MAX_BLOCKS_PER_MESSAGE, MAX_LOCATOR_HASHES, PEER_PROTOCOL_VERSION,
};
pub use wire_error::{DecodeError, ErrorCode, ErrorReply};
