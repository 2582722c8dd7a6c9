//! [`SnapshotData`]: openraft's snapshot data, which is either a view of the registry that is
//! written out only when something reads it, or a file a snapshot is being received into.
//!
//! A member keeps no snapshot file. The registry database is itself the snapshot: it is
//! exactly the result of applying the log up to its `last_applied`, and a checkpoint makes
//! that durable (see [`super::checkpoint`]). So building a snapshot costs a checkpoint, not
//! a copy of the registry, and a copy is made only when a follower needs one, by the task
//! that sends it.
//!
//! Why the copy at all: openraft's chunked transfer asks for the length first
//! (`seek(End(0))`) and seeks to every chunk's offset, so the bytes must be fixed and
//! re-readable. They are written, from the read transaction taken when openraft asked for
//! the snapshot, into a file that is unlinked as soon as it is created: it takes disk space
//! only while it is being sent, and nothing is left behind by a crash. The read transaction
//! is dropped once the file is written, so it pins redb's old pages only for that long.
//!
//! The state machine worker, which asks for the snapshot, never waits for the copy: openraft
//! reads the data on the replication task it spawns for the transfer.

use std::future::Future;
use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use redb::ReadTransaction;
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};
use tokio::task::JoinHandle;

use super::snapshot_file::SnapshotWriter;
use crate::registry::{RegistryError, RegistryReader};

/// Suffix of the (unlinked at once) file a view is written into while it is sent.
pub(super) const SENDING_SUFFIX: &str = ".sending";

/// The bytes of one snapshot: a registry view to be written out on first use, or a file.
pub struct SnapshotData {
    state: State,
    /// A seek asked for before the file existed; started once it does.
    pending_seek: Option<SeekFrom>,
}

enum State {
    /// A consistent view of the registry; the snapshot file is written from it when first
    /// read or seeked.
    View {
        txn: Box<ReadTransaction>,
        dir: PathBuf,
        id: String,
    },
    /// The file being written from a view on a blocking thread.
    Writing(JoinHandle<io::Result<std::fs::File>>),
    /// A complete snapshot file (sending), or the file a received snapshot goes into.
    File {
        file: tokio::fs::File,
        path: Option<PathBuf>,
    },
    /// Writing the file failed; every later call reports why.
    Failed(String),
}

impl SnapshotData {
    /// The registry as `txn` sees it, to be written into a file in `dir` named after `id`
    /// when openraft first reads it.
    pub(super) fn view(txn: ReadTransaction, dir: &Path, id: &str) -> Self {
        Self {
            state: State::View {
                txn: Box::new(txn),
                dir: dir.to_path_buf(),
                id: id.to_string(),
            },
            pending_seek: None,
        }
    }

    /// A file at `path`, opened for reading and writing, that a snapshot is received into.
    pub(super) fn receiving(file: tokio::fs::File, path: PathBuf) -> Self {
        Self {
            state: State::File {
                file,
                path: Some(path),
            },
            pending_seek: None,
        }
    }

    /// The received file and its path, for installing; any other data back as it is (a
    /// view handed straight to `install_snapshot`, as openraft's storage test suite does).
    pub(super) fn into_received(self) -> Result<(tokio::fs::File, PathBuf), Self> {
        match self.state {
            State::File {
                file,
                path: Some(path),
            } => Ok((file, path)),
            state => Err(Self {
                state,
                pending_seek: self.pending_seek,
            }),
        }
    }

    /// The file, writing it out first if this is still a view.
    fn poll_file(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&mut tokio::fs::File>> {
        loop {
            match &mut self.state {
                State::File { .. } => break,
                State::Failed(e) => return Poll::Ready(Err(io::Error::other(e.clone()))),
                State::View { .. } => {
                    let State::View { txn, dir, id } =
                        std::mem::replace(&mut self.state, State::Failed(String::new()))
                    else {
                        unreachable!("matched a view just above")
                    };
                    self.state = State::Writing(tokio::task::spawn_blocking(move || {
                        write_view(&txn, &dir, &id)
                    }));
                }
                State::Writing(handle) => {
                    let written = ready!(Pin::new(handle).poll(cx));
                    self.state = match written {
                        Ok(Ok(file)) => State::File {
                            file: tokio::fs::File::from_std(file),
                            path: None,
                        },
                        Ok(Err(e)) => State::Failed(format!("writing the snapshot failed: {e}")),
                        Err(e) => State::Failed(format!("the snapshot writer stopped: {e}")),
                    };
                }
            }
        }
        let State::File { file, .. } = &mut self.state else {
            unreachable!("the loop above ends only on a file")
        };
        if let Some(pos) = self.pending_seek.take() {
            Pin::new(&mut *file).start_seek(pos)?;
        }
        Poll::Ready(Ok(file))
    }
}

/// Writes the registry as `txn` sees it into a new file in `dir`, unlinked at once, and
/// returns it rewound. Blocking.
fn write_view(txn: &ReadTransaction, dir: &Path, id: &str) -> io::Result<std::fs::File> {
    use std::io::Seek;
    let path = dir.join(format!("{id}{SENDING_SUFFIX}"));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    // Open descriptors keep the blocks; the name is not needed, and a crash leaves nothing.
    std::fs::remove_file(&path)?;
    let reader = RegistryReader::open(txn).map_err(io::Error::other)?;
    let mut out = SnapshotWriter::new(file)?;
    reader
        .for_each_snapshot_item(|bytes| {
            out.push(bytes).map_err(|e| RegistryError::Corrupt {
                key: String::new(),
                reason: e.to_string(),
            })
        })
        .map_err(io::Error::other)?;
    let (mut file, count) = out.finish()?;
    file.rewind()?;
    tracing::info!(snapshot = %id, items = count, "wrote a snapshot to send");
    Ok(file)
}

impl AsyncRead for SnapshotData {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let file = ready!(this.poll_file(cx))?;
        Pin::new(file).poll_read(cx, buf)
    }
}

impl AsyncSeek for SnapshotData {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        let this = self.get_mut();
        match &mut this.state {
            State::File { file, .. } => Pin::new(file).start_seek(position),
            State::Failed(e) => Err(io::Error::other(e.clone())),
            State::View { .. } | State::Writing(_) => {
                this.pending_seek = Some(position);
                Ok(())
            }
        }
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        let this = self.get_mut();
        let file = ready!(this.poll_file(cx))?;
        Pin::new(file).poll_complete(cx)
    }
}

impl AsyncWrite for SnapshotData {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().state {
            State::File { file, .. } => Pin::new(file).poll_write(cx, buf),
            _ => Poll::Ready(Err(read_only())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().state {
            State::File { file, .. } => Pin::new(file).poll_flush(cx),
            _ => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().state {
            State::File { file, .. } => Pin::new(file).poll_shutdown(cx),
            _ => Poll::Ready(Ok(())),
        }
    }
}

fn read_only() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "a snapshot view of the registry is read-only",
    )
}

#[cfg(test)]
mod tests {
    use redb::ReadableDatabase;
    use tokio::io::{AsyncReadExt, AsyncSeekExt};

    use super::*;
    use crate::raft::snapshot_file::SnapshotReader;
    use crate::registry::registry_db::create_with_tables;

    /// A view is written out on the first seek, reports its length, re-reads the same bytes
    /// from any offset, and leaves no file in its directory.
    #[tokio::test]
    async fn a_view_is_written_on_first_use_and_leaves_no_file() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = create_with_tables(&dir.path().join("state.redb"))?;
        let snaps = dir.path().join("snapshots");
        std::fs::create_dir_all(&snaps)?;
        let mut data = SnapshotData::view(db.begin_read()?, &snaps, "1-1-5-7");
        let end = data.seek(SeekFrom::End(0)).await?;
        anyhow::ensure!(
            end > 8,
            "the file has at least its magic and trailer: {end}"
        );
        data.seek(SeekFrom::Start(0)).await?;
        let mut all = Vec::new();
        data.read_to_end(&mut all).await?;
        anyhow::ensure!(all.len() as u64 == end);
        data.seek(SeekFrom::Start(4)).await?;
        let mut tail = Vec::new();
        data.read_to_end(&mut tail).await?;
        anyhow::ensure!(
            tail == all[4..],
            "a second read from an offset gives the same bytes"
        );
        let mut reader = SnapshotReader::new(std::io::Cursor::new(all))?;
        anyhow::ensure!(
            reader.next_entry()?.is_none(),
            "an empty registry has no items"
        );
        anyhow::ensure!(
            std::fs::read_dir(&snaps)?.next().is_none(),
            "the file is unlinked as soon as it is created"
        );
        Ok(())
    }

    /// Writing into a view is refused with an error, not a panic or lost bytes.
    #[tokio::test]
    async fn a_view_refuses_writes() -> anyhow::Result<()> {
        use tokio::io::AsyncWriteExt;
        let dir = tempfile::tempdir()?;
        let db = create_with_tables(&dir.path().join("state.redb"))?;
        let mut data = SnapshotData::view(db.begin_read()?, dir.path(), "1-1-5-8");
        let err = data.write_all(b"x").await.err();
        anyhow::ensure!(
            err.is_some_and(|e| e.kind() == io::ErrorKind::Unsupported),
            "a write to a view fails"
        );
        Ok(())
    }
}
