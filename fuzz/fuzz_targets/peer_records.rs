//! `cargo fuzz run peer_records`: see [`peerchain::fuzzing::peer_records`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| peerchain::fuzzing::peer_records::peer_records(data));
