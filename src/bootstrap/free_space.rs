//! [`FreeSpace`]: the free bytes on a member's data disk, measured on a timer.
//!
//! Writes are refused while the disk is below `min_free_disk`. Asking the kernel
//! (`statvfs`) on every write cost a syscall per registration; a disk does not fill in a
//! second at the rates a member writes (a million registrations take under 300 MiB), so one
//! reading per [`REFRESH`] decides for every write in between.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often the free space is measured.
pub const REFRESH: Duration = Duration::from_secs(1);
/// What [`FreeSpace::bytes`] holds before the first reading, or after a failed one.
const UNKNOWN: u64 = u64::MAX;

/// The last free-space reading of one directory's file system.
#[derive(Debug)]
pub struct FreeSpace {
    dir: PathBuf,
    bytes: AtomicU64,
}

impl FreeSpace {
    /// Takes a first reading of `dir` now (blocking, one syscall).
    pub fn new(dir: &Path) -> Self {
        let this = Self {
            dir: dir.to_path_buf(),
            bytes: AtomicU64::new(UNKNOWN),
        };
        this.refresh();
        this
    }

    /// Free bytes at the last reading; `None` if it could not be read (writes then go on:
    /// a full disk still fails them, and Raft stops on the failure).
    pub fn bytes(&self) -> Option<u64> {
        match self.bytes.load(Ordering::Relaxed) {
            UNKNOWN => None,
            b => Some(b),
        }
    }

    /// Measures again.
    pub fn refresh(&self) {
        let bytes = fs4::available_space(&self.dir).unwrap_or(UNKNOWN);
        self.bytes.store(bytes, Ordering::Relaxed);
    }

    /// Measures every [`REFRESH`] until `cancel` fires.
    pub async fn run(self: std::sync::Arc<Self>, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(REFRESH);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let this = self.clone();
            if tokio::task::spawn_blocking(move || this.refresh())
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_directory_has_a_reading_and_a_missing_one_has_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let free = FreeSpace::new(dir.path());
        assert!(free.bytes().is_some_and(|b| b > 0));
        let gone = FreeSpace::new(&dir.path().join("does/not/exist"));
        assert_eq!(gone.bytes(), None);
    }
}
