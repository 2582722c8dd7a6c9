//! [`History`]: every client operation of a chaos run, with invoke and completion times and
//! its result, as Jepsen and etcd's robustness tests record them.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use peerchain::client::ClientError;
use peerchain::wire::ErrorCode;

/// What a client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    /// Register (or renew) `key` with record sequence number `seq`.
    Register { key: String, seq: u64 },
    /// Deregister `key`, signed with sequence number `seq`.
    Deregister { key: String, seq: u64 },
    /// A linearizable read of the whole registry; `Outcome::Ok` carries what it returned.
    Read,
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledged. For reads: the set of addresses returned.
    Ok(Option<BTreeSet<String>>),
    /// An error reply or no member reachable. Recorded apart from `Unknown` for the summary,
    /// but the checker still treats a failed write as "may have taken effect": a retried or
    /// forwarded request can commit even though the caller saw an error.
    Failed(String),
    /// No reply in time (timeout, connection closed, leader unreachable): may or may not
    /// have taken effect.
    Unknown(String),
}

impl Outcome {
    /// Sorts a client error into failed or unknown.
    pub fn from_error(e: &ClientError) -> Self {
        match e {
            ClientError::Server(r) if r.code == ErrorCode::Unavailable => {
                Self::Unknown(e.to_string())
            }
            ClientError::Server(_) | ClientError::AllUnreachable { .. } => {
                Self::Failed(e.to_string())
            }
            _ => Self::Unknown(e.to_string()),
        }
    }

    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Ok(_))
    }
}

/// One operation: who, what, when (microseconds since the run started) and how it ended.
#[derive(Debug, Clone)]
pub struct Op {
    pub client: usize,
    pub kind: OpKind,
    pub invoke_us: u64,
    pub complete_us: u64,
    pub outcome: Outcome,
}

impl Op {
    pub fn is_write(&self) -> bool {
        !matches!(self.kind, OpKind::Read)
    }

    pub fn key(&self) -> Option<&str> {
        match &self.kind {
            OpKind::Register { key, .. } | OpKind::Deregister { key, .. } => Some(key),
            OpKind::Read => None,
        }
    }
}

/// A shared, append-only log of operations.
#[derive(Clone)]
pub struct History {
    start: Instant,
    ops: Arc<Mutex<Vec<Op>>>,
}

impl Default for History {
    fn default() -> Self {
        Self::new()
    }
}

impl History {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            ops: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Microseconds since the run started.
    pub fn now_us(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    pub fn push(&self, op: Op) {
        self.ops.lock().expect("history lock").push(op);
    }

    pub fn ops(&self) -> Vec<Op> {
        self.ops.lock().expect("history lock").clone()
    }
}
