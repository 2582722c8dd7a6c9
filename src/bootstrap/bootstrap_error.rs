//! [`BootstrapError`]: why a bootstrap member could not start or stopped.

/// Why a member failed.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot open storage in {dir}: {reason}")]
    Storage { dir: String, reason: String },
    #[error("raft: {0}")]
    Raft(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}
