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
#[derive(Clone)]
pub struct ClusterSecret(Vec<u8>);

impl fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterSecret(<redacted>)")
    }
}

impl ClusterSecret {
    /// A secret from raw bytes (surrounding whitespace trimmed).
    ///
    /// # Errors
    /// `InvalidInput` if shorter than [`MIN_SECRET_LEN`] bytes.
    pub fn new(bytes: &[u8]) -> io::Result<Self> {
        let trimmed = bytes.trim_ascii().to_vec();
        if trimmed.len() < MIN_SECRET_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cluster secret must be at least {MIN_SECRET_LEN} bytes"),
            ));
        }
        Ok(Self(trimmed))
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

    fn mac(&self, role: &[u8], client_nonce: &[u8], server_nonce: &[u8]) -> Hmac<Sha256> {
        // HMAC takes keys of any length; new_from_slice cannot fail for it.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.0) {
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

    /// The client's proof for a nonce pair.
    pub fn client_proof(&self, client_nonce: &[u8], server_nonce: &[u8]) -> Vec<u8> {
        self.mac(b"client", client_nonce, server_nonce)
            .finalize()
            .into_bytes()
            .to_vec()
    }

    /// Checks a server proof in constant time.
    pub fn verify_server(&self, client_nonce: &[u8], server_nonce: &[u8], proof: &[u8]) -> bool {
        self.mac(b"server", client_nonce, server_nonce)
            .verify_slice(proof)
            .is_ok()
    }

    /// Checks a client proof in constant time.
    pub fn verify_client(&self, client_nonce: &[u8], server_nonce: &[u8], proof: &[u8]) -> bool {
        self.mac(b"client", client_nonce, server_nonce)
            .verify_slice(proof)
            .is_ok()
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
        assert_eq!(format!("{a:?}"), "ClusterSecret(<redacted>)");
    }
}
