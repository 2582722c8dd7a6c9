//! `peerchain health`: a bounded liveness probe for container healthchecks (the image has no
//! shell, so the check is a subcommand of the binary itself).
//!
//! Layout:
//! - [`health_args`] — the command line ([`HealthArgs`]).
//! - [`health_check`] — asks a bootstrap member for `ClusterInfo` and judges the answer
//!   ([`check_bootstrap`], [`HealthError`]), or probes an HTTP side port's `/ready` or
//!   `/health` ([`check_http`]).

pub mod health_args;
pub mod health_check;

pub use health_args::HealthArgs;
pub use health_check::{check_bootstrap, check_http, run, BootstrapHealth, HealthError};
