//! `cargo fuzz run legacy_line`: see [`peerchain::fuzzing::legacy_line`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| peerchain::fuzzing::legacy_line::legacy_line(data));
