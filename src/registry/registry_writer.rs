//! [`RegistryWriter`]: applies [`RegistryCommand`]s inside one redb write transaction.
//!
//! Everything here is a pure function of the current tables and the command (no clock, no
//! randomness), so every replica that applies the same log ends in the same state.

use redb::{ReadableTable, Table, WriteTransaction};

use super::registry_tables::{
    sample_key, BY_EXPIRY, BY_NODE, BY_SAMPLE, COUNTERS, PEERS, PEER_COUNT,
};
use super::{CommandOutcome, LegacyRecord, PeerEntry, RegistryCommand, RegistryError};
use crate::record::{Deregistration, PeerRecord};
use crate::wire::{ErrorCode, ErrorReply};

/// The registry's tables opened for writing.
pub struct RegistryWriter<'t> {
    peers: Table<'t, &'static str, &'static [u8]>,
    by_expiry: Table<'t, (u64, &'static str), ()>,
    by_sample: Table<'t, (u64, &'static str), ()>,
    by_node: Table<'t, &'static [u8], &'static str>,
    counters: Table<'t, &'static str, u64>,
}

impl<'t> RegistryWriter<'t> {
    /// Opens (creating if needed) every registry table in `txn`.
    ///
    /// # Errors
    /// Storage errors from redb.
    pub fn open(txn: &'t WriteTransaction) -> Result<Self, RegistryError> {
        Ok(Self {
            peers: txn.open_table(PEERS).map_err(RegistryError::db)?,
            by_expiry: txn.open_table(BY_EXPIRY).map_err(RegistryError::db)?,
            by_sample: txn.open_table(BY_SAMPLE).map_err(RegistryError::db)?,
            by_node: txn.open_table(BY_NODE).map_err(RegistryError::db)?,
            counters: txn.open_table(COUNTERS).map_err(RegistryError::db)?,
        })
    }

    /// Applies one command as of `now_ms` (the batch's proposer time).
    ///
    /// # Errors
    /// Storage errors only; a refused command is an `Ok(CommandOutcome::Refused(..))`.
    pub fn apply(
        &mut self,
        now_ms: u64,
        cmd: &RegistryCommand,
    ) -> Result<CommandOutcome, RegistryError> {
        match cmd {
            RegistryCommand::Register(rec) => self.register(now_ms, rec),
            RegistryCommand::RegisterLegacy {
                address,
                source_ip,
                expires_at_ms,
            } => self.register_legacy(now_ms, address, source_ip, *expires_at_ms),
            RegistryCommand::Deregister(d) => self.deregister(d),
            RegistryCommand::RemoveLegacy { address, source_ip } => {
                self.remove_legacy(address, source_ip)
            }
            RegistryCommand::Expire { limit } => self.expire(now_ms, *limit),
        }
    }

    fn register(&mut self, now_ms: u64, rec: &PeerRecord) -> Result<CommandOutcome, RegistryError> {
        let replaced = match self.get(&rec.address)? {
            None => false,
            Some(PeerEntry::Legacy(_)) => true,
            Some(PeerEntry::Signed(old)) if old.node_id == rec.node_id => {
                if rec.seq <= old.seq {
                    return Ok(refused(
                        ErrorCode::StaleSeq,
                        format!("seq {} is not newer than stored seq {}", rec.seq, old.seq),
                    ));
                }
                true
            }
            Some(PeerEntry::Signed(old)) if old.expires_at_ms > now_ms => {
                return Ok(refused(
                    ErrorCode::NotOwner,
                    format!(
                        "{} is held by node {} until it expires",
                        rec.address, old.node_id
                    ),
                ));
            }
            Some(PeerEntry::Signed(_)) => true,
        };
        // A node holds one record: registering at a new address drops its older one.
        let moved_from = self
            .by_node
            .get(rec.node_id.0.as_slice())
            .map_err(RegistryError::db)?
            .map(|a| a.value().to_string());
        if let Some(old_addr) = moved_from.filter(|a| *a != rec.address) {
            match self.get(&old_addr)? {
                Some(PeerEntry::Signed(old))
                    if old.node_id == rec.node_id && old.seq >= rec.seq =>
                {
                    return Ok(refused(
                        ErrorCode::StaleSeq,
                        format!("seq {} is not newer than stored seq {}", rec.seq, old.seq),
                    ));
                }
                Some(PeerEntry::Signed(old)) if old.node_id == rec.node_id => {
                    self.remove_entry(&old_addr)?
                }
                _ => {}
            }
        }
        self.put(&PeerEntry::Signed(rec.clone()))?;
        Ok(CommandOutcome::Registered { replaced })
    }

    fn register_legacy(
        &mut self,
        now_ms: u64,
        address: &str,
        source_ip: &str,
        expires_at_ms: u64,
    ) -> Result<CommandOutcome, RegistryError> {
        match self.get(address)? {
            Some(PeerEntry::Legacy(mut old)) => {
                // Only the IP that registered it keeps it alive (and only it may remove it).
                if old.registered_from == source_ip {
                    old.expires_at_ms = old.expires_at_ms.max(expires_at_ms);
                    self.put(&PeerEntry::Legacy(old))?;
                }
                Ok(CommandOutcome::AlreadyRegistered)
            }
            Some(PeerEntry::Signed(old)) if old.expires_at_ms > now_ms => {
                Ok(CommandOutcome::AlreadyRegistered)
            }
            existing => {
                self.put(&PeerEntry::Legacy(LegacyRecord {
                    address: address.to_string(),
                    registered_from: source_ip.to_string(),
                    expires_at_ms,
                }))?;
                Ok(CommandOutcome::Registered {
                    replaced: existing.is_some(),
                })
            }
        }
    }

    fn deregister(&mut self, d: &Deregistration) -> Result<CommandOutcome, RegistryError> {
        match self.get(&d.address)? {
            None => Ok(refused(
                ErrorCode::NotFound,
                format!("{} is not registered", d.address),
            )),
            Some(PeerEntry::Signed(old)) if old.node_id == d.node_id => {
                if d.seq < old.seq {
                    return Ok(refused(
                        ErrorCode::StaleSeq,
                        format!(
                            "deregistration seq {} is older than record seq {}",
                            d.seq, old.seq
                        ),
                    ));
                }
                self.remove_entry(&d.address)?;
                Ok(CommandOutcome::Removed)
            }
            Some(_) => Ok(refused(
                ErrorCode::NotOwner,
                format!("{} is not registered by node {}", d.address, d.node_id),
            )),
        }
    }

    fn remove_legacy(
        &mut self,
        address: &str,
        source_ip: &str,
    ) -> Result<CommandOutcome, RegistryError> {
        match self.get(address)? {
            None => Ok(refused(ErrorCode::NotFound, "Peer not found")),
            Some(PeerEntry::Legacy(old)) if old.registered_from == source_ip => {
                self.remove_entry(address)?;
                Ok(CommandOutcome::Removed)
            }
            Some(PeerEntry::Legacy(_)) => Ok(refused(
                ErrorCode::NotOwner,
                "Peer not removed: it was registered from another IP",
            )),
            Some(PeerEntry::Signed(_)) => Ok(refused(
                ErrorCode::NotOwner,
                "Peer not removed: it is a signed record; only its owner can remove it",
            )),
        }
    }

    fn expire(&mut self, now_ms: u64, limit: u32) -> Result<CommandOutcome, RegistryError> {
        let due: Vec<(u64, String)> = self
            .by_expiry
            .range((0u64, "")..=(now_ms, "\u{10FFFF}"))
            .map_err(RegistryError::db)?
            .take(limit as usize + 1)
            .map(|item| item.map(|(k, _)| (k.value().0, k.value().1.to_string())))
            .collect::<Result<_, _>>()
            .map_err(RegistryError::db)?;
        let more = due.len() > limit as usize;
        let mut removed = 0;
        for (_, address) in due.into_iter().take(limit as usize) {
            self.remove_entry(&address)?;
            removed += 1;
        }
        Ok(CommandOutcome::Expired { removed, more })
    }

    /// The entry stored at `address`.
    ///
    /// # Errors
    /// Storage errors, or [`RegistryError::Corrupt`] if the stored bytes do not decode.
    pub fn get(&self, address: &str) -> Result<Option<PeerEntry>, RegistryError> {
        match self.peers.get(address).map_err(RegistryError::db)? {
            None => Ok(None),
            Some(bytes) => decode_entry(address, bytes.value()).map(Some),
        }
    }

    /// Stores `entry`, replacing whatever was at its address, and keeps every index in step.
    ///
    /// # Errors
    /// Storage errors.
    pub fn put(&mut self, entry: &PeerEntry) -> Result<(), RegistryError> {
        let address = entry.address();
        let existed = self.unindex(address)?;
        let bytes = rmp_serde::to_vec_named(entry).map_err(|e| RegistryError::Corrupt {
            key: address.to_string(),
            reason: e.to_string(),
        })?;
        self.peers
            .insert(address, bytes.as_slice())
            .map_err(RegistryError::db)?;
        self.by_expiry
            .insert((entry.expires_at_ms(), address), ())
            .map_err(RegistryError::db)?;
        self.by_sample
            .insert((sample_key(address), address), ())
            .map_err(RegistryError::db)?;
        if let PeerEntry::Signed(rec) = entry {
            self.by_node
                .insert(rec.node_id.0.as_slice(), address)
                .map_err(RegistryError::db)?;
        }
        if !existed {
            self.bump_count(1)?;
        }
        Ok(())
    }

    fn remove_entry(&mut self, address: &str) -> Result<(), RegistryError> {
        if self.unindex(address)? {
            self.peers.remove(address).map_err(RegistryError::db)?;
            self.bump_count(-1)?;
        }
        Ok(())
    }

    /// Removes the index rows of the entry at `address`; returns whether there was one.
    fn unindex(&mut self, address: &str) -> Result<bool, RegistryError> {
        let Some(old) = self.get(address)? else {
            return Ok(false);
        };
        self.by_expiry
            .remove((old.expires_at_ms(), address))
            .map_err(RegistryError::db)?;
        self.by_sample
            .remove((sample_key(address), address))
            .map_err(RegistryError::db)?;
        if let PeerEntry::Signed(rec) = &old {
            let owns = self
                .by_node
                .get(rec.node_id.0.as_slice())
                .map_err(RegistryError::db)?
                .is_some_and(|a| a.value() == address);
            if owns {
                self.by_node
                    .remove(rec.node_id.0.as_slice())
                    .map_err(RegistryError::db)?;
            }
        }
        Ok(true)
    }

    fn bump_count(&mut self, delta: i64) -> Result<(), RegistryError> {
        let current = self
            .counters
            .get(PEER_COUNT)
            .map_err(RegistryError::db)?
            .map_or(0, |v| v.value());
        let next = current.saturating_add_signed(delta);
        self.counters
            .insert(PEER_COUNT, next)
            .map_err(RegistryError::db)?;
        Ok(())
    }
}

/// Decodes a stored entry.
///
/// # Errors
/// [`RegistryError::Corrupt`].
pub fn decode_entry(address: &str, bytes: &[u8]) -> Result<PeerEntry, RegistryError> {
    rmp_serde::from_slice(bytes).map_err(|e| RegistryError::Corrupt {
        key: address.to_string(),
        reason: e.to_string(),
    })
}

fn refused(code: ErrorCode, message: impl Into<String>) -> CommandOutcome {
    CommandOutcome::Refused(ErrorReply::new(code, message))
}

#[cfg(test)]
mod tests {
    use redb::{Database, ReadableDatabase};

    use super::*;
    use crate::record::NodeIdentity;
    use crate::registry::registry_db::create_with_tables;
    use crate::registry::RegistryReader;

    const NET: &str = "net";

    struct Fixture {
        _dir: tempfile::TempDir,
        db: Database,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("tempdir");
            let db = create_with_tables(&dir.path().join("s.redb")).expect("db");
            Self { _dir: dir, db }
        }

        fn apply(&self, now: u64, cmd: RegistryCommand) -> CommandOutcome {
            let txn = self.db.begin_write().expect("txn");
            let out = RegistryWriter::open(&txn)
                .expect("open")
                .apply(now, &cmd)
                .expect("apply");
            txn.commit().expect("commit");
            out
        }

        fn read<T>(&self, f: impl FnOnce(&RegistryReader) -> T) -> T {
            let txn = self.db.begin_read().expect("read");
            f(&RegistryReader::open(&txn).expect("reader"))
        }
    }

    fn code(o: &CommandOutcome) -> Option<ErrorCode> {
        match o {
            CommandOutcome::Refused(e) => Some(e.code),
            _ => None,
        }
    }

    #[test]
    fn newer_seq_replaces_older_and_stale_is_refused() {
        let f = Fixture::new();
        let id = NodeIdentity::generate();
        let reg = |seq| RegistryCommand::Register(id.sign_record(NET, "h:1", seq, 1_000));
        assert_eq!(
            f.apply(0, reg(5)),
            CommandOutcome::Registered { replaced: false }
        );
        assert_eq!(code(&f.apply(0, reg(5))), Some(ErrorCode::StaleSeq));
        assert_eq!(code(&f.apply(0, reg(4))), Some(ErrorCode::StaleSeq));
        assert_eq!(
            f.apply(0, reg(6)),
            CommandOutcome::Registered { replaced: true }
        );
        assert_eq!(f.read(|r| r.count().expect("count")), 1);
    }

    #[test]
    fn a_node_holds_one_record_and_moving_drops_the_old_one() {
        let f = Fixture::new();
        let id = NodeIdentity::generate();
        f.apply(
            0,
            RegistryCommand::Register(id.sign_record(NET, "a:1", 1, 1_000)),
        );
        f.apply(
            0,
            RegistryCommand::Register(id.sign_record(NET, "b:1", 2, 1_000)),
        );
        assert!(f.read(|r| r.get("a:1").expect("get")).is_none());
        assert!(f.read(|r| r.get("b:1").expect("get")).is_some());
        assert_eq!(f.read(|r| r.count().expect("count")), 1);
    }

    #[test]
    fn live_signed_records_belong_to_their_owner_until_expiry() {
        let f = Fixture::new();
        let (a, b) = (NodeIdentity::generate(), NodeIdentity::generate());
        f.apply(
            0,
            RegistryCommand::Register(a.sign_record(NET, "h:1", 1, 1_000)),
        );
        let steal = RegistryCommand::Register(b.sign_record(NET, "h:1", 9, 5_000));
        assert_eq!(
            code(&f.apply(500, steal.clone())),
            Some(ErrorCode::NotOwner)
        );
        assert_eq!(
            f.apply(1_000, steal),
            CommandOutcome::Registered { replaced: true }
        );
        let dereg = RegistryCommand::Deregister(a.sign_deregistration(NET, "h:1", 10));
        assert_eq!(code(&f.apply(1_000, dereg)), Some(ErrorCode::NotOwner));
    }

    #[test]
    fn legacy_records_never_touch_signed_ones_and_only_their_ip_removes_them() {
        let f = Fixture::new();
        let id = NodeIdentity::generate();
        f.apply(
            0,
            RegistryCommand::Register(id.sign_record(NET, "s:1", 1, 1_000)),
        );
        let legacy = |addr: &str, ip: &str| RegistryCommand::RegisterLegacy {
            address: addr.into(),
            source_ip: ip.into(),
            expires_at_ms: 2_000,
        };
        let remove = |addr: &str, ip: &str| RegistryCommand::RemoveLegacy {
            address: addr.into(),
            source_ip: ip.into(),
        };
        assert_eq!(
            f.apply(0, legacy("s:1", "1.1.1.1")),
            CommandOutcome::AlreadyRegistered
        );
        assert!(matches!(
            f.read(|r| r.get("s:1").expect("get")),
            Some(PeerEntry::Signed(_))
        ));
        assert_eq!(
            code(&f.apply(0, remove("s:1", "1.1.1.1"))),
            Some(ErrorCode::NotOwner)
        );
        assert_eq!(
            f.apply(0, legacy("l:1", "1.1.1.1")),
            CommandOutcome::Registered { replaced: false }
        );
        assert_eq!(
            f.apply(0, legacy("l:1", "2.2.2.2")),
            CommandOutcome::AlreadyRegistered
        );
        assert_eq!(
            code(&f.apply(0, remove("l:1", "2.2.2.2"))),
            Some(ErrorCode::NotOwner)
        );
        assert_eq!(
            f.apply(0, remove("l:1", "1.1.1.1")),
            CommandOutcome::Removed
        );
        assert_eq!(
            code(&f.apply(0, remove("l:1", "1.1.1.1"))),
            Some(ErrorCode::NotFound)
        );
        // A signed record takes over a legacy address.
        f.apply(0, legacy("l:2", "1.1.1.1"));
        let take = RegistryCommand::Register(id.sign_record(NET, "l:2", 2, 1_000));
        assert_eq!(
            f.apply(0, take),
            CommandOutcome::Registered { replaced: true }
        );
    }

    #[test]
    fn expire_removes_due_records_in_bounded_batches() {
        let f = Fixture::new();
        for k in 0..5u64 {
            let id = NodeIdentity::generate();
            f.apply(
                0,
                RegistryCommand::Register(id.sign_record(NET, &format!("h:{}", k + 1), 1, 100 + k)),
            );
        }
        assert_eq!(f.read(|r| r.next_expiry().expect("next")), Some(100));
        let out = f.apply(102, RegistryCommand::Expire { limit: 2 });
        assert_eq!(
            out,
            CommandOutcome::Expired {
                removed: 2,
                more: true
            }
        );
        let out = f.apply(102, RegistryCommand::Expire { limit: 2 });
        assert_eq!(
            out,
            CommandOutcome::Expired {
                removed: 1,
                more: false
            }
        );
        assert_eq!(f.read(|r| r.count().expect("count")), 2);
        assert_eq!(f.read(|r| r.table_len().expect("len")), 2);
    }

    #[test]
    fn samples_prefer_distinct_subnets_and_skip_expired_and_excluded() {
        let f = Fixture::new();
        for net in 0..4 {
            for host in 0..10 {
                let id = NodeIdentity::generate();
                let addr = format!("10.{net}.0.{host}:1");
                f.apply(
                    0,
                    RegistryCommand::Register(id.sign_record(NET, &addr, 1, 1_000)),
                );
            }
        }
        let sample = f.read(|r| r.sample(4, &[], 0, 12345).expect("sample"));
        let groups: std::collections::BTreeSet<_> = sample
            .iter()
            .map(|e| e.address().split('.').nth(1).map(str::to_string))
            .collect();
        assert_eq!(groups.len(), 4, "one per /16: {sample:?}");
        let all = f.read(|r| r.sample(100, &["10.0.0.0:1".into()], 0, 7).expect("sample"));
        assert_eq!(all.len(), 39);
        assert!(f
            .read(|r| r.sample(10, &[], 1_000, 7).expect("sample"))
            .is_empty());
    }
}
