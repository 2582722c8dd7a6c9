//! Where a member's disk goes: every table of `state.redb` and `raft-log.redb` with its rows,
//! stored bytes, B-tree metadata and fragmentation, beside the files' sizes and the snapshots.
//!
//!   cargo run --release --example disk_profile -- DATA_DIR
//!
//! Run it on a stopped member's data directory (redb locks an open file). docs/benchmarks.md
//! keeps its output for the 1,000,000-peer run.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTableMetadata, TableHandle};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: disk_profile DATA_DIR (a stopped member's --data-dir)")?;
    let dir = Path::new(&dir);
    for file in ["state.redb", "raft-log.redb"] {
        profile(&dir.join(file))?;
    }
    let snapshots = dir.join("snapshots");
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(&snapshots) {
        for e in entries.flatten() {
            let len = e.metadata().map(|m| m.len()).unwrap_or(0);
            total += len;
            println!(
                "  snapshot {:<60} {:>12}",
                e.file_name().to_string_lossy(),
                mib(len)
            );
        }
    }
    println!("snapshots: {}", mib(total));
    Ok(())
}

fn profile(path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let file_len = std::fs::metadata(path)?.len();
    let db = Database::open(path)?;
    let txn = db.begin_read()?;
    println!("{} ({} on disk)", path.display(), mib(file_len));
    println!(
        "  {:<24} {:>10} {:>12} {:>12} {:>12} {:>9}",
        "table", "rows", "stored", "metadata", "fragmented", "B/row"
    );
    let (mut stored, mut meta, mut frag) = (0, 0, 0);
    for handle in txn.list_tables()? {
        let name = handle.name().to_string();
        let table = txn.open_untyped_table(handle)?;
        let rows = table.len()?;
        let s = table.stats()?;
        let all = s.stored_bytes() + s.metadata_bytes() + s.fragmented_bytes();
        println!(
            "  {name:<24} {rows:>10} {:>12} {:>12} {:>12} {:>9}",
            mib(s.stored_bytes()),
            mib(s.metadata_bytes()),
            mib(s.fragmented_bytes()),
            all.checked_div(rows).unwrap_or(0)
        );
        stored += s.stored_bytes();
        meta += s.metadata_bytes();
        frag += s.fragmented_bytes();
    }
    println!(
        "  tables: stored {}, metadata {}, fragmented {}; free or unreclaimed in the file: {}",
        mib(stored),
        mib(meta),
        mib(frag),
        mib(file_len.saturating_sub(stored + meta + frag))
    );
    Ok(())
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
}
