//! `cargo fuzz run wire_frames`: see [`peerchain::fuzzing::wire_frames`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| peerchain::fuzzing::wire_frames::wire_frames(data));
