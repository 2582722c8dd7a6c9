//! [`ClusterSecret`]: mutual proof, when a member connection opens, that both ends know the
//! cluster secret — without ever sending it.
//!
//! ```text
//! client                                    server
//!   AuthHello { client_nonce }          ->
//!                                       <-  AuthChallenge { server_nonce,
//!                                             server_proof = HMAC(secret,
//!                                               "peerchain/member-auth/v1/server" | cn | sn) }
//!   (checks server_proof)
//!   AuthProof { HMAC(secret, "peerchain/member-auth/v1/client" | cn | sn) } ->
//!                                       <-  AuthOk            (or Unauthenticated, then close)
//! ```

use std::fmt;
use std::io;
use std::path::Path;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Length of each side's nonce.
pub const NONCE_LEN: usize = 32;
/// The environment variable that may hold the cluster secret.
pub const CLUSTER_SECRET_ENV: &str = "PEERCHAIN_CLUSTER_SECRET";
/// Shortest secret accepted.
pub const MIN_SECRET_LEN: usize = 16;

/// The shared secret of a bootstrap cluster. Its `Debug` never shows the bytes.
///
/// It may hold several secrets, one per line of the file: the first is the one this member
/// proves itself with, the others are also accepted from the other end. That is how a
/// cluster rotates its secret without downtime (see operations.md, "Rotating the cluster
/// secret"): every member first learns the new secret as a second line, then makes it the
/// first, then drops the old one, restarting one member at a time.
#[derive(Clone)]
pub struct ClusterSecret(Vec<Vec<u8>>);

impl fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterSecret(<redacted>)")
    }
}

impl ClusterSecret {
    /// Secrets from raw bytes: one per non-empty line (surrounding whitespace trimmed), the
    /// first one this member's own.
    ///
    /// # Errors
    /// `InvalidInput` if there is none, or one is shorter than [`MIN_SECRET_LEN`] bytes.
    pub fn new(bytes: &[u8]) -> io::Result<Self> {
        let keys: Vec<Vec<u8>> = bytes
            .split(|b| *b == b'\n')
            .map(|l| l.trim_ascii().to_vec())
            .filter(|l| !l.is_empty())
            .collect();
        if keys.is_empty() || keys.iter().any(|k| k.len() < MIN_SECRET_LEN) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cluster secret must be at least {MIN_SECRET_LEN} bytes (each line)"),
            ));
        }
        Ok(Self(keys))
    }

    /// Reads the secret from a file.
    ///
    /// # Errors
    /// I/O errors, or a secret that is too short.
    pub fn from_file(path: &Path) -> io::Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cluster secret file {}: {e}", path.display()),
            )
        })?;
        Self::new(&bytes)
    }

    /// The secret from `file` if given, else from the [`CLUSTER_SECRET_ENV`] environment
    /// variable. Never from a command-line argument, where `ps` would show it.
    ///
    /// # Errors
    /// `NotFound` if neither is set, plus [`Self::from_file`]'s errors.
    pub fn from_file_or_env(file: Option<&Path>) -> io::Result<Self> {
        if let Some(path) = file {
            return Self::from_file(path);
        }
        match std::env::var(CLUSTER_SECRET_ENV) {
            Ok(s) => Self::new(s.as_bytes()),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no cluster secret: pass --cluster-secret-file FILE or set {CLUSTER_SECRET_ENV}"),
            )),
        }
    }

    /// A fresh random nonce.
    pub fn nonce() -> Vec<u8> {
        let mut n = vec![0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut n);
        n
    }

    /// How many secrets this holds (2 while a rotation is under way).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true: a secret holds at least one key.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn mac(&self, role: &[u8], client_nonce: &[u8], server_nonce: &[u8]) -> Hmac<Sha256> {
        self.mac_with(0, role, client_nonce, server_nonce)
    }

    fn mac_with(
        &self,
        key: usize,
        role: &[u8],
        client_nonce: &[u8],
        server_nonce: &[u8],
    ) -> Hmac<Sha256> {
        let key = self.0.get(key).unwrap_or(&self.0[0]);
        // HMAC takes keys of any length; new_from_slice cannot fail for it.
        let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
            Ok(m) => m,
            Err(_) => unreachable_hmac(),
        };
        mac.update(b"peerchain/member-auth/v1/");
        mac.update(role);
        mac.update(client_nonce);
        mac.update(server_nonce);
        mac
    }

    /// The server's proof for a nonce pair.
    pub fn server_proof(&self, client_nonce: &[u8], server_nonce: &[u8]) -> Vec<u8> {
        self.mac(b"server", client_nonce, server_nonce)
            .finalize()
            .into_bytes()
            .to_vec()
    }

    /// The client's proof for a nonce pair, with this member's own secret.
    pub fn client_proof(&self, client_nonce: &[u8], server_nonce: &[u8]) -> Vec<u8> {
        self.client_proof_with(0, client_nonce, server_nonce)
    }

    /// The client's proof with secret `key` (the one [`Self::server_key`] found the server
    /// to know).
    pub fn client_proof_with(
        &self,
        key: usize,
        client_nonce: &[u8],
        server_nonce: &[u8],
    ) -> Vec<u8> {
        self.mac_with(key, b"client", client_nonce, server_nonce)
            .finalize()
            .into_bytes()
            .to_vec()
    }

    /// Which of our secrets the server proved, checked in constant time per secret.
    pub fn server_key(
        &self,
        client_nonce: &[u8],
        server_nonce: &[u8],
        proof: &[u8],
    ) -> Option<usize> {
        (0..self.0.len()).find(|&k| {
            self.mac_with(k, b"server", client_nonce, server_nonce)
                .verify_slice(proof)
                .is_ok()
        })
    }

    /// Checks a server proof against every secret we hold.
    pub fn verify_server(&self, client_nonce: &[u8], server_nonce: &[u8], proof: &[u8]) -> bool {
        self.server_key(client_nonce, server_nonce, proof).is_some()
    }

    /// Checks a client proof against every secret we hold, each in constant time.
    pub fn verify_client(&self, client_nonce: &[u8], server_nonce: &[u8], proof: &[u8]) -> bool {
        (0..self.0.len()).any(|k| {
            self.mac_with(k, b"client", client_nonce, server_nonce)
                .verify_slice(proof)
                .is_ok()
        })
    }
}

#[cold]
fn unreachable_hmac() -> ! {
    panic!("HMAC-SHA256 accepts keys of every length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_check_out_only_with_the_same_secret() {
        let a = ClusterSecret::new(b"0123456789abcdef-secret").expect("secret");
        let b = ClusterSecret::new(b"another-secret-of-16+").expect("secret");
        let (cn, sn) = (ClusterSecret::nonce(), ClusterSecret::nonce());
        assert!(a.verify_client(&cn, &sn, &a.client_proof(&cn, &sn)));
        assert!(!a.verify_client(&cn, &sn, &b.client_proof(&cn, &sn)));
        assert!(!a.verify_client(&cn, &sn, &a.server_proof(&cn, &sn)));
        assert!(a.verify_server(&cn, &sn, &a.server_proof(&cn, &sn)));
        assert!(ClusterSecret::new(b"short").is_err());
        assert!(ClusterSecret::new(b"0123456789abcdef\nshort").is_err());
        assert!(ClusterSecret::new(b"\n \n").is_err());
        assert_eq!(format!("{a:?}"), "ClusterSecret(<redacted>)");
    }
}

#[cfg(test)]
mod rotation_tests {
    use super::*;

    /// Every pair of neighbouring rotation steps authenticates both ways.
    #[test]
    fn each_step_of_a_rotation_talks_to_the_next() {
        let old = b"old-secret-0123456789".as_slice();
        let new = b"new-secret-0123456789".as_slice();
        let steps = [
            ClusterSecret::new(old).expect("old"),
            ClusterSecret::new(&[old, b"\n", new].concat()).expect("old+new"),
            ClusterSecret::new(&[new, b"\n", old].concat()).expect("new+old"),
            ClusterSecret::new(new).expect("new"),
        ];
        let handshake = |client: &ClusterSecret, server: &ClusterSecret| {
            let (cn, sn) = (ClusterSecret::nonce(), ClusterSecret::nonce());
            let key = client.server_key(&cn, &sn, &server.server_proof(&cn, &sn))?;
            server
                .verify_client(&cn, &sn, &client.client_proof_with(key, &cn, &sn))
                .then_some(())
        };
        for w in steps.windows(2) {
            assert!(handshake(&w[0], &w[1]).is_some());
            assert!(handshake(&w[1], &w[0]).is_some());
        }
        assert!(handshake(&steps[0], &steps[3]).is_none());
        assert!(handshake(&steps[3], &steps[0]).is_none());
        assert!(
            handshake(&steps[0], &steps[2]).is_none(),
            "old-only cannot check a new proof"
        );
    }
}
