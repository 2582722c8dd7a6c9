//! [`ExcludeSet`]: the addresses a `GetPeers` caller wants left out of its sample, capped so
//! that an unauthenticated request cannot make a member do unbounded work.

use std::collections::HashSet;

use crate::wire::{ErrorCode, ErrorReply};

/// Most addresses one `GetPeers` may exclude. A caller needs its own address or two; 64
/// leaves room for a node's current connections without letting a request grow the work
/// of a sample.
pub const MAX_EXCLUDE: usize = 64;

/// Why an exclude list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExcludeError {
    #[error("exclude lists {given} addresses; at most {max} are allowed")]
    TooMany { given: usize, max: usize },
}

impl From<ExcludeError> for ErrorReply {
    fn from(e: ExcludeError) -> Self {
        ErrorReply::new(ErrorCode::BadRequest, e.to_string())
    }
}

/// Addresses to leave out of a sample; each lookup is a hash probe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExcludeSet(HashSet<String>);

impl ExcludeSet {
    /// Checks the caller's list against [`MAX_EXCLUDE`] (duplicates count).
    ///
    /// # Errors
    /// [`ExcludeError::TooMany`].
    pub fn new(addresses: &[String]) -> Result<Self, ExcludeError> {
        if addresses.len() > MAX_EXCLUDE {
            return Err(ExcludeError::TooMany {
                given: addresses.len(),
                max: MAX_EXCLUDE,
            });
        }
        Ok(Self(addresses.iter().cloned().collect()))
    }

    /// Whether `address` is to be left out.
    pub fn contains(&self, address: &str) -> bool {
        self.0.contains(address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_up_to_the_cap_are_accepted_and_longer_ones_refused_as_bad_request() {
        let list = |n: usize| (0..n).map(|i| format!("10.0.0.{i}:1")).collect::<Vec<_>>();
        let set = ExcludeSet::new(&list(MAX_EXCLUDE)).expect("at the cap");
        assert!(set.contains("10.0.0.63:1"));
        assert!(!set.contains("10.0.0.64:1"));
        let err = ExcludeSet::new(&list(MAX_EXCLUDE + 1)).expect_err("over the cap");
        assert_eq!(
            err,
            ExcludeError::TooMany {
                given: 65,
                max: MAX_EXCLUDE
            }
        );
        let reply = ErrorReply::from(err);
        assert_eq!(reply.code, ErrorCode::BadRequest);
        assert!(reply.message.contains("at most 64"), "{}", reply.message);
    }
}
