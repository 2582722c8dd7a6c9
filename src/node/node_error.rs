//! [`NodeError`]: why a node could not start.

use super::address_book::BookError;
use super::chain_store::ChainError;

/// A node failed to start (running nodes log and carry on instead).
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Book(#[from] BookError),
}
