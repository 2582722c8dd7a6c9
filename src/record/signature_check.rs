//! [`SignatureCheck`]: one ed25519 signature with its key and message, checked alone or with
//! others in one batch.
//!
//! Alone it is `verify_strict`. In a batch ([`verify_all`]) it is ed25519-dalek's
//! `verify_batch`, about twice as fast a signature, with what `verify_strict` adds to the
//! plain equation checked first, per signature: a key or an `R` of small order is refused
//! before the batch. If the batch fails, every signature in it is checked alone, so one bad
//! signature costs its batch a second pass but refuses only itself.
//!
//! The two agree on every signature except one kind: a signature whose equation is off by a
//! point of small order. Only the holder of the private key can make one (it needs `r` and
//! the key's scalar), so accepting it lets nobody speak for a key they do not hold; `verify_strict`
//! refuses it, a batch may accept it. Every member checks a record once, where it arrives,
//! and replicas apply the log's verdict, so the difference cannot split them.

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::{Signature, VerifyingKey};

use super::{NodeId, RecordError};

/// A signature ready to verify: lengths, node id, key and `R` already checked.
#[derive(Debug, Clone)]
pub struct SignatureCheck {
    key: VerifyingKey,
    signature: Signature,
    msg: Vec<u8>,
}

impl SignatureCheck {
    /// Checks everything but the signature equation: lengths, that `node_id` is the sha256
    /// of `public_key`, that the key decodes and neither it nor the signature's `R` has small
    /// order.
    ///
    /// # Errors
    /// The first [`RecordError`] found, the same one `verify` would give.
    pub fn new(
        node_id: &NodeId,
        public_key: &[u8],
        signature: &[u8],
        msg: Vec<u8>,
    ) -> Result<Self, RecordError> {
        let pk: [u8; 32] = public_key
            .try_into()
            .map_err(|_| RecordError::BadKeyOrSignatureLength)?;
        let sig: [u8; 64] = signature
            .try_into()
            .map_err(|_| RecordError::BadKeyOrSignatureLength)?;
        if super::node_id_of(&pk) != *node_id {
            return Err(RecordError::NodeIdMismatch);
        }
        let key = VerifyingKey::from_bytes(&pk).map_err(|_| RecordError::BadPublicKey)?;
        let signature = Signature::from_bytes(&sig);
        // What verify_strict refuses besides a wrong equation (it gives BadSignature too).
        let r_small = CompressedEdwardsY(*signature.r_bytes())
            .decompress()
            .is_none_or(|r| r.is_small_order());
        if key.is_weak() || r_small {
            return Err(RecordError::BadSignature);
        }
        Ok(Self {
            key,
            signature,
            msg,
        })
    }

    /// `verify_strict` of this one signature.
    ///
    /// # Errors
    /// [`RecordError::BadSignature`].
    pub fn verify(&self) -> Result<(), RecordError> {
        self.key
            .verify_strict(&self.msg, &self.signature)
            .map_err(|_| RecordError::BadSignature)
    }
}

/// Verifies `checks` in one batch, or each alone if the batch fails; one result each, in
/// order. Blocking (about 20 µs a signature in a batch, 40 µs alone).
pub fn verify_all(checks: &[SignatureCheck]) -> Vec<Result<(), RecordError>> {
    if checks.len() > 1 {
        let msgs: Vec<&[u8]> = checks.iter().map(|c| c.msg.as_slice()).collect();
        let sigs: Vec<Signature> = checks.iter().map(|c| c.signature).collect();
        let keys: Vec<VerifyingKey> = checks.iter().map(|c| c.key).collect();
        if ed25519_dalek::verify_batch(&msgs, &sigs, &keys).is_ok() {
            return vec![Ok(()); checks.len()];
        }
    }
    checks.iter().map(SignatureCheck::verify).collect()
}

#[cfg(test)]
mod tests {
    use super::super::{NodeIdentity, PeerRecord};
    use super::*;

    fn checks(n: usize) -> Vec<(PeerRecord, SignatureCheck)> {
        (0..n)
            .map(|i| {
                let id = NodeIdentity::generate();
                let rec = id.sign_record("net", &format!("127.0.0.{}:7000", i + 1), 1, 10);
                let check = rec.signature_check("net").expect("well-formed");
                (rec, check)
            })
            .collect()
    }

    #[test]
    fn a_batch_of_good_signatures_passes() {
        let c: Vec<_> = checks(16).into_iter().map(|(_, c)| c).collect();
        assert!(verify_all(&c).iter().all(Result::is_ok));
    }

    #[test]
    fn a_bad_signature_fails_alone_and_its_batch_mates_pass() {
        let mut c: Vec<_> = checks(8).into_iter().map(|(_, c)| c).collect();
        // Another message under the same signature: the equation fails for that one only.
        c[3].msg.push(0);
        let results = verify_all(&c);
        for (i, r) in results.iter().enumerate() {
            assert_eq!(r.is_ok(), i != 3, "signature {i}: {r:?}");
        }
    }

    #[test]
    fn a_small_order_key_or_r_is_refused_before_any_batch() {
        let (rec, _) = checks(1).remove(0);
        // The identity point (small order) as R: verify_strict refuses it, and so does new().
        let mut sig = rec.signature.clone();
        // The identity's encoding: y = 1, x positive.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        sig[..32].copy_from_slice(&identity);
        let msg = PeerRecord::signing_bytes("net", &rec.address, rec.seq, rec.expires_at_ms);
        assert_eq!(
            SignatureCheck::new(&rec.node_id, &rec.public_key, &sig, msg).err(),
            Some(RecordError::BadSignature)
        );
    }
}
