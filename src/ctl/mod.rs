//! `peerchain ctl`: operator commands against the bootstrap cluster.
//!
//! Layout:
//! - [`ctl_args`] — the command line ([`CtlArgs`]).
//! - [`ctl_runner`] — runs a command with the shared [`crate::client::BootstrapClient`].
//! - `ctl_output` — prints its result as a table or JSON.

pub mod ctl_args;
mod ctl_output;
pub mod ctl_runner;

pub use ctl_args::{ClusterAction, CtlArgs, CtlCommand};
pub use ctl_runner::{run, CtlError};
