//! Fuzz target bodies: one public function per target of `fuzz/` (`cargo fuzz`), each taking
//! arbitrary bytes and panicking only on a bug. The fuzz targets are one-line wrappers and
//! `tests/fuzz_corpus.rs` replays the committed corpus and every crash found through the same
//! functions, so a regression fails the ordinary test run.
//!
//! Each body feeds the input to a decoder exactly as the network or the disk would, and
//! checks round-trip properties where they exist (decode → encode → decode gives the same
//! bytes again), plus the properties of the pure checks behind them (a block is valid
//! exactly when every rule holds; an untouched signed record verifies, a touched one not).
//!
//! Layout:
//! - [`wire_frames`] — frame codec: bootstrap requests, responses and node messages.
//! - [`legacy_line`] — the seed chapter's JSON-lines parser.
//! - [`peer_records`] — signed peer records and deregistrations.
//! - [`blocks`] — block decoding and validation.
//! - [`snapshot_file`] — the Raft snapshot file reader and writer.

pub mod blocks;
pub mod legacy_line;
pub mod peer_records;
pub mod snapshot_file;
pub mod wire_frames;

/// The network id the targets use.
pub const FUZZ_NETWORK: &str = "peerchain-fuzz";

/// A target body: any bytes in, a panic only on a bug.
pub type TargetFn = fn(&[u8]);

/// Every target, by the name of its `fuzz/fuzz_targets/<name>.rs` and corpus directory.
pub const TARGETS: &[(&str, TargetFn)] = &[
    ("wire_frames", wire_frames::wire_frames),
    ("legacy_line", legacy_line::legacy_line),
    ("peer_records", peer_records::peer_records),
    ("blocks", blocks::blocks),
    ("snapshot_file", snapshot_file::snapshot_file),
];
