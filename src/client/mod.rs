//! The one client of the bootstrap protocol, shared by `ctl`, nodes and members.
//!
//! Layout:
//! - [`frame_connection`] — one TCP connection speaking [`crate::wire`], with timeouts and
//!   member authentication.
//! - [`bootstrap_client`] — falls back through a list of members, learns the live member
//!   list, retries transient errors.
//! - [`node_status_query`] — asks a node (not a bootstrap member) for its status.
//! - [`client_error`] — what went wrong, split into "try another member" and "final".

pub mod bootstrap_client;
pub mod client_error;
pub mod frame_connection;
pub mod node_status_query;

pub use bootstrap_client::{BootstrapClient, ClientOptions};
pub use client_error::ClientError;
pub use frame_connection::FrameConnection;
pub use node_status_query::NodeStatusQuery;
