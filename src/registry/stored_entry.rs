//! [`StoredEntry`]: what the registry keeps under one address — the entry that is served,
//! plus what only the registry needs: the host's subnet group and whether a member has
//! checked that the signed record's node answers at its address.
//!
//! A row is positional MessagePack holding only what cannot be derived: the address is the
//! row's key, the node id is the sha256 of the public key, and the subnet group of an IP
//! literal is the literal itself (only a resolved name keeps the IP it resolved to). At a
//! million peers every byte of a row is a megabyte in the registry and another in each
//! snapshot; named fields and derivable values made a signed row 272 bytes, this one 125.
//!
//! A row in a sampling pool also holds its slot among its fine group's entries (see
//! [`super::group_index`]): kept here, a slot costs one byte or a few instead of a
//! `(scope, address) → slot` row in a table of its own.

use std::borrow::Cow;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{HostGroup, LegacyRecord, PeerEntry, Pool, RegistryError};
use crate::record::{node_id_of, PeerRecord};

/// One row of the `peers` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub entry: PeerEntry,
    /// The subnet group the entry counts in (its host's IP when it was registered).
    pub group: HostGroup,
    /// For a signed record: a member connected to its address and the node there proved the
    /// record's key (dial-back), or the proposing member ran with dial-back off. Only then is
    /// it in the node pool. Always `false` for legacy records, which never enter that pool.
    pub verified: bool,
}

/// The row's bytes: a [`StoredEntry`] without its address, node id or derivable group.
#[derive(Serialize, Deserialize)]
enum Row<'a> {
    // One-letter variant names: rmp-serde writes the name in every row.
    #[serde(rename = "s")]
    Signed {
        #[serde(borrow, with = "serde_bytes")]
        public_key: Cow<'a, [u8]>,
        seq: u64,
        expires_at_ms: u64,
        #[serde(borrow, with = "serde_bytes")]
        signature: Cow<'a, [u8]>,
        resolved: Option<IpAddr>,
        verified: bool,
        slot: Option<u64>,
    },
    #[serde(rename = "l")]
    Legacy {
        #[serde(borrow)]
        registered_from: Cow<'a, str>,
        expires_at_ms: u64,
        resolved: Option<IpAddr>,
        slot: Option<u64>,
    },
}

impl StoredEntry {
    /// The sampling pool the entry is drawn from, if any: unverified signed records are in
    /// none (stored and listed, never sampled).
    pub fn pool(&self) -> Option<Pool> {
        match &self.entry {
            PeerEntry::Legacy(_) => Some(Pool::Legacy),
            PeerEntry::Signed(_) if self.verified => Some(Pool::Node),
            PeerEntry::Signed(_) => None,
        }
    }

    /// Whether a dial-back is still owed: a signed record nobody has verified yet.
    pub fn awaits_dial_back(&self) -> bool {
        matches!(self.entry, PeerEntry::Signed(_)) && !self.verified
    }

    /// The row's bytes (stored under the entry's address, which they leave out), with the
    /// entry's `slot` in its fine group if it is in a pool.
    ///
    /// # Errors
    /// [`RegistryError::Corrupt`] if it cannot be encoded.
    pub fn encode(&self, slot: Option<u64>) -> Result<Vec<u8>, RegistryError> {
        let address = self.entry.address();
        // Only what `HostGroup::of(address, None)` would not give back is kept.
        let resolved = match self.group {
            HostGroup::Ip(ip) if HostGroup::of(address, None) != self.group => Some(ip),
            _ => None,
        };
        let row = match &self.entry {
            PeerEntry::Signed(r) => Row::Signed {
                public_key: Cow::Borrowed(&r.public_key),
                seq: r.seq,
                expires_at_ms: r.expires_at_ms,
                signature: Cow::Borrowed(&r.signature),
                resolved,
                verified: self.verified,
                slot,
            },
            PeerEntry::Legacy(l) => Row::Legacy {
                registered_from: Cow::Borrowed(&l.registered_from),
                expires_at_ms: l.expires_at_ms,
                resolved,
                slot,
            },
        };
        rmp_serde::to_vec(&row).map_err(|e| RegistryError::Corrupt {
            key: address.to_string(),
            reason: e.to_string(),
        })
    }

    /// Decodes the row stored under `address`.
    ///
    /// # Errors
    /// [`RegistryError::Corrupt`].
    pub fn decode(address: &str, bytes: &[u8]) -> Result<Self, RegistryError> {
        Self::decode_with_slot(address, bytes).map(|(entry, _)| entry)
    }

    /// Decodes the row stored under `address`, and the slot it holds in its fine group.
    ///
    /// # Errors
    /// [`RegistryError::Corrupt`].
    pub fn decode_with_slot(
        address: &str,
        bytes: &[u8],
    ) -> Result<(Self, Option<u64>), RegistryError> {
        let corrupt = |reason: String| RegistryError::Corrupt {
            key: address.to_string(),
            reason,
        };
        let row: Row<'_> = rmp_serde::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        Ok(match row {
            Row::Signed {
                public_key,
                seq,
                expires_at_ms,
                signature,
                resolved,
                verified,
                slot,
            } => (
                Self {
                    entry: PeerEntry::Signed(PeerRecord {
                        node_id: node_id_of(&public_key),
                        public_key: public_key.into_owned(),
                        address: address.to_string(),
                        seq,
                        expires_at_ms,
                        signature: signature.into_owned(),
                    }),
                    group: HostGroup::of(address, resolved),
                    verified,
                },
                slot,
            ),
            Row::Legacy {
                registered_from,
                expires_at_ms,
                resolved,
                slot,
            } => (
                Self {
                    entry: PeerEntry::Legacy(LegacyRecord {
                        address: address.to_string(),
                        registered_from: registered_from.into_owned(),
                        expires_at_ms,
                    }),
                    group: HostGroup::of(address, resolved),
                    verified: false,
                },
                slot,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::NodeIdentity;

    fn roundtrip(stored: &StoredEntry) -> usize {
        let bytes = stored.encode(Some(300)).expect("encode");
        let back = StoredEntry::decode_with_slot(stored.entry.address(), &bytes).expect("decode");
        assert_eq!(back, (stored.clone(), Some(300)));
        let bytes = stored.encode(None).expect("encode");
        let back = StoredEntry::decode_with_slot(stored.entry.address(), &bytes).expect("decode");
        assert_eq!(back, (stored.clone(), None));
        bytes.len()
    }

    #[test]
    fn rows_keep_everything_but_what_their_key_and_key_material_give_back() {
        let id = NodeIdentity::generate();
        let address = "127.3.14.159:40000";
        let rec = id.sign_record(
            "peerchain-devnet",
            address,
            1_764_000_000_000,
            1_764_000_600_000,
        );
        let signed = StoredEntry {
            entry: PeerEntry::Signed(rec.clone()),
            group: HostGroup::of(address, None),
            verified: true,
        };
        let len = roundtrip(&signed);
        // 32-byte key, 64-byte signature, two u64s and a few bytes of framing.
        assert!(len <= 125, "{len} bytes");

        let name = "node.example:7000";
        let resolved: IpAddr = "10.1.2.3".parse().expect("ip");
        let named = StoredEntry {
            entry: PeerEntry::Signed(id.sign_record("net", name, 2, 3)),
            group: HostGroup::of(name, Some(resolved)),
            verified: false,
        };
        roundtrip(&named);
        let unresolved = StoredEntry {
            group: HostGroup::of(name, None),
            ..named
        };
        roundtrip(&unresolved);

        let legacy = StoredEntry {
            entry: PeerEntry::Legacy(LegacyRecord {
                address: "[2001:db8::1]:9".into(),
                registered_from: "2001:db8::7".into(),
                expires_at_ms: 5,
            }),
            group: HostGroup::of("[2001:db8::1]:9", None),
            verified: false,
        };
        roundtrip(&legacy);
    }

    #[test]
    fn a_row_that_is_not_one_is_refused_with_its_address() {
        let err = StoredEntry::decode("127.0.0.1:1", b"\x92\x01").expect_err("garbage");
        assert!(matches!(err, RegistryError::Corrupt { ref key, .. } if key == "127.0.0.1:1"));
    }
}
