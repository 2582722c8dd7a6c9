//! `peerchain ctl`: operator commands against the bootstrap cluster.
//!
//! Layout:
//! - [`ctl_args`] — the command line ([`CtlArgs`]).
//! - [`ctl_runner`] — runs a command with the shared [`crate::client::BootstrapClient`] and
//!   prints a table or JSON.

pub mod ctl_args;
pub mod ctl_runner;

pub use ctl_args::{ClusterAction, CtlArgs, CtlCommand};
pub use ctl_runner::{run, CtlError};
