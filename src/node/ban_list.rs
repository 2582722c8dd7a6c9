//! [`BanList`]: addresses and node ids banned for misbehaviour, each until a time. Saved
//! with the address book so that a restart does not forgive a peer.

use std::collections::HashMap;

use crate::record::NodeId;

/// Ban keys (`addr:<host:port>` or `id:<node id>`) → banned until (Unix ms).
#[derive(Debug, Default, Clone)]
pub struct BanList {
    until: HashMap<String, u64>,
}

impl BanList {
    /// The bans read back from disk.
    pub fn from_stored(until: HashMap<String, u64>) -> Self {
        Self { until }
    }

    /// Bans `addr` and `node_id` until `until_ms`.
    pub fn ban(&mut self, addr: Option<&str>, node_id: Option<NodeId>, until_ms: u64) {
        if let Some(a) = addr {
            self.until.insert(format!("addr:{a}"), until_ms);
        }
        if let Some(id) = node_id {
            self.until.insert(format!("id:{id}"), until_ms);
        }
    }

    pub fn is_banned_addr(&self, addr: &str, now_ms: u64) -> bool {
        self.until
            .get(&format!("addr:{addr}"))
            .is_some_and(|until| *until > now_ms)
    }

    pub fn is_banned_id(&self, id: &NodeId, now_ms: u64) -> bool {
        self.until
            .get(&format!("id:{id}"))
            .is_some_and(|until| *until > now_ms)
    }

    /// Current bans as key strings, sorted.
    pub fn active(&self, now_ms: u64) -> Vec<String> {
        let mut out: Vec<String> = self
            .until
            .iter()
            .filter(|(_, until)| **until > now_ms)
            .map(|(k, _)| k.clone())
            .collect();
        out.sort();
        out
    }

    /// Drops expired bans.
    pub fn prune(&mut self, now_ms: u64) {
        self.until.retain(|_, until| *until > now_ms);
    }

    /// Every ban, for saving.
    pub fn as_map(&self) -> &HashMap<String, u64> {
        &self.until
    }
}
