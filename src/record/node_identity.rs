//! [`NodeIdentity`]: a node's ed25519 key pair, kept in its data directory.

use std::io;
use std::path::Path;

use ed25519_dalek::{Signer, SigningKey};

use super::{node_id_of, Deregistration, NodeId, PeerRecord};

/// A node's signing key and the id derived from it.
#[derive(Clone)]
pub struct NodeIdentity {
    key: SigningKey,
    node_id: NodeId,
}

impl std::fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeIdentity")
            .field("node_id", &self.node_id)
            .finish()
    }
}

impl NodeIdentity {
    /// A fresh random identity.
    pub fn generate() -> Self {
        Self::from_key(SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// The identity whose secret key is `secret` (deterministic identities for tests and
    /// fuzzing; nodes use [`NodeIdentity::load_or_create`]).
    pub fn from_secret(secret: [u8; 32]) -> Self {
        Self::from_key(SigningKey::from_bytes(&secret))
    }

    fn from_key(key: SigningKey) -> Self {
        let node_id = node_id_of(key.verifying_key().as_bytes());
        Self { key, node_id }
    }

    /// Loads the 32-byte secret key at `path`, or creates one there (mode 0600) if absent.
    ///
    /// # Errors
    /// I/O errors, or `InvalidData` if the file is not a 32-byte key.
    pub fn load_or_create(path: &Path) -> io::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let secret: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        "node key file must hold 32 bytes",
                    )
                })?;
                Ok(Self::from_key(SigningKey::from_bytes(&secret)))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let id = Self::generate();
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let tmp = path.with_extension("tmp");
                write_private(&tmp, &id.key.to_bytes())?;
                std::fs::rename(&tmp, path)?;
                Ok(id)
            }
            Err(e) => Err(e),
        }
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Signs `msg` (used by handshakes that prove possession of the key).
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.key.sign(msg).to_bytes()
    }

    /// A signed record for `address` in `network_id`.
    pub fn sign_record(
        &self,
        network_id: &str,
        address: &str,
        seq: u64,
        expires_at_ms: u64,
    ) -> PeerRecord {
        let msg = PeerRecord::signing_bytes(network_id, address, seq, expires_at_ms);
        PeerRecord {
            node_id: self.node_id,
            public_key: self.public_key().to_vec(),
            address: address.to_string(),
            seq,
            expires_at_ms,
            signature: self.sign(&msg).to_vec(),
        }
    }

    /// A signed deregistration of this node's record at `address`.
    pub fn sign_deregistration(&self, network_id: &str, address: &str, seq: u64) -> Deregistration {
        let msg = Deregistration::signing_bytes(network_id, address, seq);
        Deregistration {
            node_id: self.node_id,
            public_key: self.public_key().to_vec(),
            address: address.to_string(),
            seq,
            signature: self.sign(&msg).to_vec(),
        }
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_survives_reload() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("node.key");
        let a = NodeIdentity::load_or_create(&path).expect("create");
        let b = NodeIdentity::load_or_create(&path).expect("load");
        assert_eq!(a.node_id(), b.node_id());
        std::fs::write(&path, b"short").expect("write");
        assert!(NodeIdentity::load_or_create(&path).is_err());
    }

    #[test]
    fn deregistration_verifies_only_for_owner() {
        let owner = NodeIdentity::generate();
        let d = owner.sign_deregistration("net", "h:1", 3);
        assert!(d.verify("net").is_ok());
        let mut forged = NodeIdentity::generate().sign_deregistration("net", "h:1", 3);
        forged.node_id = owner.node_id();
        assert!(forged.verify("net").is_err());
    }
}
