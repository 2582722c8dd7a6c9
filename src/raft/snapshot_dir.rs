//! The snapshot directory holds only files in transit: a snapshot being received, installed
//! or sent. Whatever an interrupted transfer or install left there, and the kept `.snap`
//! files and `current.json` of older builds (a member now keeps no snapshot file: its
//! registry database is the snapshot), is removed at start; after each install, the files
//! of transfers that were abandoned are removed too.

use std::fs::{self, File};
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Name ending of a snapshot being received from the leader.
pub(super) const RECEIVING_SUFFIX: &str = ".receiving";

/// A received file not written for this long belongs to a transfer that was abandoned (the
/// leader moved on, or lost leadership): a transfer in progress writes a chunk at least every
/// few seconds, and openraft gives up on a stalled one long before this.
const ABANDONED_AFTER: Duration = Duration::from_secs(60);

/// Removes received files, other than `except`, not written for [`ABANDONED_AFTER`]. Run
/// after an install, so that a member that never restarts does not keep an abandoned
/// transfer's file (up to the size of the registry) until it does.
pub(super) fn remove_abandoned_transfers(dir: &Path, except: &Path, now: SystemTime) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path == except
            || !entry
                .file_name()
                .to_string_lossy()
                .ends_with(RECEIVING_SUFFIX)
        {
            continue;
        }
        let idle = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok());
        if idle.is_some_and(|idle| idle >= ABANDONED_AFTER) {
            match fs::remove_file(&path) {
                Ok(()) => {
                    tracing::info!(file = %path.display(), "removed an abandoned snapshot transfer")
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "could not remove an abandoned snapshot transfer")
                }
            }
        }
    }
}

/// Removes every file that is not needed once the member has restarted.
pub(super) fn remove_leftovers(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let partial = [
                ".building",
                ".installing",
                RECEIVING_SUFFIX,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_idle_received_files_other_than_the_installed_one_are_removed() {
        let dir = tempfile::tempdir().expect("dir");
        let file = |name: &str, age: Duration| {
            let path = dir.path().join(name);
            let f = File::create(&path).expect("create");
            f.set_modified(SystemTime::now() - age).expect("mtime");
            path
        };
        let old = file("incoming-1.receiving", Duration::from_secs(3600));
        let installed = file("incoming-2.receiving", Duration::from_secs(3600));
        let in_progress = file("incoming-3.receiving", Duration::from_secs(1));
        let other = file("state.redb", Duration::from_secs(3600));
        remove_abandoned_transfers(dir.path(), &installed, SystemTime::now());
        assert!(!old.exists(), "an abandoned transfer's file is removed");
        assert!(
            installed.exists(),
            "the installed file is left to its caller"
        );
        assert!(
            in_progress.exists(),
            "a transfer still being written is kept"
        );
        assert!(other.exists(), "only received files are looked at");
    }
}
