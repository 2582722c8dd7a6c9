//! The snapshot directory holds only files in transit: a snapshot being received, installed
//! or sent. Whatever an interrupted transfer or install left there, and the kept `.snap`
//! files and `current.json` of older builds (a member now keeps no snapshot file: its
//! registry database is the snapshot), is removed at start.

use std::fs::{self, File};
use std::io;
use std::path::Path;

/// Removes every file that is not needed once the member has restarted.
pub(super) fn remove_leftovers(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let partial = [
                ".building",
                ".installing",
                ".receiving",
                super::snapshot_data::SENDING_SUFFIX,
                ".tmp",
                ".snap",
            ];
            if name == "current.json" || partial.iter().any(|s| name.ends_with(s)) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

pub(super) fn sync_dir(file: &Path) -> io::Result<()> {
    match file.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}
