//! Target `wire_frames`: arbitrary bytes as a stream of frames through [`FrameCodec`], read
//! as bootstrap requests, bootstrap responses and node messages, and as one bare body of
//! each; every value decoded must encode and decode again to the same bytes.

use bytes::BytesMut;
use serde::{de::DeserializeOwned, Serialize};
use tokio_util::codec::{Decoder, Encoder};

use crate::wire::{Envelope, FrameCodec, PeerMessage, Request, Response};

/// Frame limit while fuzzing: small, so that inputs hold several whole frames.
const FUZZ_MAX_FRAME: usize = 64 * 1024;
/// Re-encoding may grow a value (a hash read as binary is written as hex): room for that.
const REENCODE_MAX_FRAME: usize = 16 * FUZZ_MAX_FRAME;
/// Most frames read from one input.
const MAX_FRAMES: usize = 64;

/// The target body.
pub fn wire_frames(data: &[u8]) {
    frames::<Envelope<Request>>(data);
    frames::<Envelope<Response>>(data);
    frames::<PeerMessage>(data);
    body::<Envelope<Request>>(data);
    body::<Envelope<Response>>(data);
    body::<PeerMessage>(data);
}

fn frames<T: Serialize + DeserializeOwned>(data: &[u8]) {
    let mut codec = FrameCodec::<T, T>::new(FUZZ_MAX_FRAME);
    let mut buf = BytesMut::from(data);
    for _ in 0..MAX_FRAMES {
        match codec.decode(&mut buf) {
            Ok(Some(value)) => round_trip(&value),
            Ok(None) => {
                if let Ok(Some(value)) = codec.decode_eof(&mut buf) {
                    round_trip(&value);
                }
                return;
            }
            Err(_) => return,
        }
    }
}

fn body<T: Serialize + DeserializeOwned>(data: &[u8]) {
    if let Ok(value) = crate::wire::decode_body::<T>(data) {
        round_trip(&value);
    }
}

/// Encodes `value` into a frame, decodes it, encodes that again: both frames must be equal.
fn round_trip<T: Serialize + DeserializeOwned>(value: &T) {
    let mut codec = FrameCodec::<T, &T>::new(REENCODE_MAX_FRAME);
    let mut once = BytesMut::new();
    codec
        .encode(value, &mut once)
        .expect("a decoded value encodes");
    let mut reader = FrameCodec::<T, T>::new(REENCODE_MAX_FRAME);
    let again = reader
        .decode(&mut once.clone())
        .expect("an encoded value decodes")
        .expect("a whole frame");
    let mut twice = BytesMut::new();
    codec
        .encode(&again, &mut twice)
        .expect("a decoded value encodes");
    assert_eq!(once, twice, "decode -> encode -> decode changed the value");
}
