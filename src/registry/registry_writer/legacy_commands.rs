//! The seed protocol's commands in a [`RegistryWriter`]: an unsigned record is kept alive only
//! by the IP that registered it, never overwrites a live signed record, counts against its
//! source's quota when it is new, and is removed only by that IP.

use std::net::IpAddr;

use super::{refused, RegistryWriter};
use crate::registry::legacy_quota::LegacyLimits;
use crate::registry::{
    CommandOutcome, HostGroup, LegacyRecord, PeerEntry, RegistryError, StoredEntry,
};
use crate::wire::ErrorCode;

impl RegistryWriter<'_> {
    pub(super) fn register_legacy(
        &mut self,
        now_ms: u64,
        address: &str,
        source_ip: &str,
        expires_at_ms: u64,
        (resolved, limits): (Option<IpAddr>, LegacyLimits),
    ) -> Result<CommandOutcome, RegistryError> {
        let existing = self.entries.get(address)?;
        match existing.as_ref().map(|s| &s.entry) {
            Some(PeerEntry::Legacy(old)) => {
                // Only the IP that registered it keeps it alive (and only it may remove it).
                if old.registered_from == source_ip {
                    if let Some(mut stored) = existing.clone() {
                        if let PeerEntry::Legacy(l) = &mut stored.entry {
                            l.expires_at_ms = l.expires_at_ms.max(expires_at_ms);
                        }
                        self.entries.put(&stored)?;
                    }
                }
                Ok(CommandOutcome::AlreadyRegistered)
            }
            Some(PeerEntry::Signed(old)) if old.expires_at_ms > now_ms => {
                Ok(CommandOutcome::AlreadyRegistered)
            }
            _ => {
                // Only a new record counts against the quota; a refresh above does not.
                if let Some(reply) = self.entries.legacy_refusal(source_ip, limits)? {
                    return Ok(CommandOutcome::Refused(reply));
                }
                self.entries.put(&StoredEntry {
                    entry: PeerEntry::Legacy(LegacyRecord {
                        address: address.to_string(),
                        registered_from: source_ip.to_string(),
                        expires_at_ms,
                    }),
                    group: HostGroup::of(address, resolved),
                    verified: false,
                })?;
                Ok(CommandOutcome::Registered {
                    replaced: existing.is_some(),
                    moved_from: None,
                })
            }
        }
    }

    pub(super) fn remove_legacy(
        &mut self,
        address: &str,
        source_ip: &str,
    ) -> Result<CommandOutcome, RegistryError> {
        match self.get(address)? {
            None => Ok(refused(ErrorCode::NotFound, "Peer not found")),
            Some(PeerEntry::Legacy(old)) if old.registered_from == source_ip => {
                self.entries.remove(address)?;
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
}
