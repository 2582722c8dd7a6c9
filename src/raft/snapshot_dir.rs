//! The snapshot directory's bookkeeping: which `.snap` file is current (`current.json`,
//! replaced atomically), and the partial files an interrupted build, transfer or install
//! leaves behind.

use std::fs::{self, File};
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::state_machine_store::Meta;

const CURRENT_SNAPSHOT: &str = "current.json";

/// Which snapshot file is current, and what it covers.
#[derive(Serialize, Deserialize)]
pub(super) struct CurrentSnapshot {
    pub meta: Meta,
    pub file: String,
}

/// Removes files an interrupted snapshot build, transfer or install left behind.
pub(super) fn remove_leftovers(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let partial = [".building", ".installing", ".receiving", ".tmp"];
            if partial.iter().any(|s| name.ends_with(s)) {
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

pub(super) fn set_current(dir: &Path, current: &CurrentSnapshot) -> io::Result<()> {
    let tmp = dir.join("current.json.tmp");
    let bytes = serde_json::to_vec(current).map_err(io::Error::other)?;
    fs::write(&tmp, bytes)?;
    File::open(&tmp)?.sync_all()?;
    let target = dir.join(CURRENT_SNAPSHOT);
    fs::rename(&tmp, &target)?;
    sync_dir(&target)?;
    // Older snapshot files are no longer needed.
    for entry in fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.ends_with(".snap") && name != current.file {
            let _ = fs::remove_file(entry.path());
        }
    }
    Ok(())
}

pub(super) fn read_current(dir: &Path) -> io::Result<Option<CurrentSnapshot>> {
    match fs::read(dir.join(CURRENT_SNAPSHOT)) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(io::Error::other),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
