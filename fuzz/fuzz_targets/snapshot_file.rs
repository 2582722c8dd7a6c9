//! `cargo fuzz run snapshot_file`: see [`peerchain::fuzzing::snapshot_file`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| peerchain::fuzzing::snapshot_file::snapshot_file(data));
