//! `cargo fuzz run blocks`: see [`peerchain::fuzzing::blocks`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| peerchain::fuzzing::blocks::blocks(data));
