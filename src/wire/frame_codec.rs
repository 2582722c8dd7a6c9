//! [`FrameCodec`]: a [`LengthDelimitedCodec`] with an explicit maximum frame length, plus
//! MessagePack encoding of typed values into and out of frames.

use std::marker::PhantomData;

use bytes::{Bytes, BytesMut};
use serde::{de::DeserializeOwned, Serialize};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

use super::wire_error::DecodeError;

/// The largest frame of the bootstrap protocol, read or written, unless a member is
/// configured otherwise (1 MiB). Clients, members and Raft RPCs all use this one limit.
pub const DEFAULT_MAX_FRAME_LENGTH: usize = 1024 * 1024;
/// The smallest limit a member may be configured with: one Raft entry (a batch of up to
/// 256 registrations) and a useful snapshot chunk must fit in a frame.
pub const MIN_MAX_FRAME_LENGTH: usize = 256 * 1024;

/// Deepest nesting of MessagePack arrays and maps accepted in a body. Real messages nest
/// less than 16 deep; rmp_serde's own limit (1024) let a 2 KiB body recurse deep enough to
/// overflow a 2 MiB thread stack in a debug build (found by the `wire_frames` fuzz target).
pub const MAX_NESTING_DEPTH: usize = 64;

/// Decodes one MessagePack body with the nesting limit of [`MAX_NESTING_DEPTH`].
///
/// # Errors
/// [`DecodeError::Malformed`] for anything that is not a valid `T`, or nests too deep.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
    let mut de = rmp_serde::Deserializer::from_read_ref(body);
    de.set_max_depth(MAX_NESTING_DEPTH);
    T::deserialize(&mut de).map_err(|e| DecodeError::Malformed(e.to_string()))
}

/// Encodes `Out` values and decodes `In` values as MessagePack inside u32 length-prefixed frames.
///
/// A clean EOF between frames yields `Ok(None)` from the stream; EOF inside a frame, an
/// oversized frame or a body that is not a valid `In` is a [`DecodeError`].
pub struct FrameCodec<In, Out> {
    inner: LengthDelimitedCodec,
    max_frame_length: usize,
    _types: PhantomData<fn(Out) -> In>,
}

impl<In, Out> FrameCodec<In, Out> {
    /// A codec that refuses frames longer than `max_frame_length` bytes in both directions.
    pub fn new(max_frame_length: usize) -> Self {
        let inner = LengthDelimitedCodec::builder()
            .length_field_length(4)
            .max_frame_length(max_frame_length)
            .new_codec();
        Self {
            inner,
            max_frame_length,
            _types: PhantomData,
        }
    }
}

impl<In, Out> FrameCodec<In, Out> {
    /// Changes the limit from the next frame on (a member raises it once a connection has
    /// authenticated).
    pub fn set_max_frame_length(&mut self, max_frame_length: usize) {
        self.inner.set_max_frame_length(max_frame_length);
        self.max_frame_length = max_frame_length;
    }
}

impl<In, Out> Default for FrameCodec<In, Out> {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_LENGTH)
    }
}

impl<In: DeserializeOwned, Out> Decoder for FrameCodec<In, Out> {
    type Item = In;
    type Error = DecodeError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<In>, DecodeError> {
        let frame = match self.inner.decode(src) {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(None),
            Err(e) => return Err(classify_io(e, self.max_frame_length)),
        };
        decode_body(&frame).map(Some)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<In>, DecodeError> {
        match self.decode(src)? {
            Some(item) => Ok(Some(item)),
            None if src.is_empty() => Ok(None),
            None => Err(DecodeError::TruncatedFrame),
        }
    }
}

impl<In, Out: Serialize> Encoder<Out> for FrameCodec<In, Out> {
    type Error = DecodeError;

    fn encode(&mut self, item: Out, dst: &mut BytesMut) -> Result<(), DecodeError> {
        let body =
            rmp_serde::to_vec_named(&item).map_err(|e| DecodeError::Encode(e.to_string()))?;
        if body.len() > self.max_frame_length {
            return Err(DecodeError::FrameTooLarge {
                max: self.max_frame_length,
            });
        }
        self.inner
            .encode(Bytes::from(body), dst)
            .map_err(|e| classify_io(e, self.max_frame_length))
    }
}

fn classify_io(e: std::io::Error, max: usize) -> DecodeError {
    if e.kind() == std::io::ErrorKind::InvalidData {
        DecodeError::FrameTooLarge { max }
    } else {
        DecodeError::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Codec = FrameCodec<Vec<String>, Vec<String>>;

    #[test]
    fn round_trip() {
        let mut codec = Codec::new(1024);
        let mut buf = BytesMut::new();
        let value = vec!["a".to_string(), "bc".to_string()];
        codec.encode(value.clone(), &mut buf).expect("encode");
        assert_eq!(codec.decode(&mut buf).expect("decode"), Some(value));
        assert!(buf.is_empty());
    }

    #[test]
    fn partial_frame_waits_then_eof_is_an_error() {
        let mut codec = Codec::new(1024);
        let mut buf = BytesMut::new();
        codec
            .encode(vec!["hello".into()], &mut buf)
            .expect("encode");
        let mut half = buf.split_to(buf.len() - 2);
        assert_eq!(codec.decode(&mut half).expect("wait"), None);
        assert!(matches!(
            codec.decode_eof(&mut half),
            Err(DecodeError::TruncatedFrame)
        ));
        assert_eq!(codec.decode_eof(&mut BytesMut::new()).expect("clean"), None);
    }

    #[test]
    fn oversized_frames_are_refused_both_ways() {
        let mut codec = Codec::new(16);
        let mut buf = BytesMut::new();
        let big = vec!["x".repeat(64)];
        assert!(matches!(
            codec.encode(big, &mut buf),
            Err(DecodeError::FrameTooLarge { max: 16 })
        ));
        let mut incoming = BytesMut::from(&[0u8, 0, 1, 0][..]);
        assert!(matches!(
            codec.decode(&mut incoming),
            Err(DecodeError::FrameTooLarge { max: 16 })
        ));
    }

    #[test]
    fn deeply_nested_bodies_are_refused_not_recursed_into() {
        let mut codec = Codec::new(1 << 20);
        let body = vec![0x91u8; 100_000];
        let mut buf = BytesMut::from(&(body.len() as u32).to_be_bytes()[..]);
        buf.extend_from_slice(&body);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn garbage_body_is_malformed() {
        let mut codec = Codec::new(1024);
        let mut buf = BytesMut::from(&[0u8, 0, 0, 2, 0xc1, 0xc1][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(DecodeError::Malformed(_))
        ));
    }
}
