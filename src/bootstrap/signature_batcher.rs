//! [`SignatureBatcher`]: the signatures of requests that arrive together are verified in one
//! batch, off the async workers.
//!
//! Checking a record's signature is the largest single cost of a registration (about 40 µs
//! of a core, alone). ed25519-dalek's batch verification does a batch of 64 in about half
//! that a signature (see `record::signature_check` for how its verdicts relate to
//! `verify_strict`'s). Like the proposer's group commit, this takes no timer: whatever has
//! queued while the previous batch was being verified forms the next one, so a lone request
//! is verified at once and a burst shares the cost.

use tokio::sync::{mpsc, oneshot};

use crate::record::{verify_all, RecordError, SignatureCheck};

/// Most signatures verified in one batch.
pub const MAX_BATCH: usize = 64;
/// Signatures waiting for a batch; senders wait beyond it (each is a request already
/// admitted and bounded by the connection limits).
const QUEUE: usize = 4096;

struct Job {
    check: SignatureCheck,
    reply: oneshot::Sender<Result<(), RecordError>>,
}

/// Handle to one member's batch verifier. The verifier stops when every handle is gone.
#[derive(Clone)]
pub struct SignatureBatcher {
    tx: mpsc::Sender<Job>,
}

impl SignatureBatcher {
    /// Starts the verifier on the current runtime.
    pub fn spawn() -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(rx));
        Self { tx }
    }

    /// Verifies `check`'s signature, in a batch with whatever else is waiting.
    ///
    /// # Errors
    /// [`RecordError::BadSignature`].
    pub async fn verify(&self, check: SignatureCheck) -> Result<(), RecordError> {
        let (reply, verdict) = oneshot::channel();
        let job = Job {
            check: check.clone(),
            reply,
        };
        if self.tx.send(job).await.is_err() {
            return check.verify();
        }
        match verdict.await {
            Ok(v) => v,
            // The verifier failed (a panic in its blocking task): check this one alone.
            Err(_) => check.verify(),
        }
    }
}

async fn run(mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let (checks, replies): (Vec<_>, Vec<_>) =
            jobs.drain(..).map(|j| (j.check, j.reply)).unzip();
        match tokio::task::spawn_blocking(move || verify_all(&checks)).await {
            Ok(verdicts) => {
                for (reply, verdict) in replies.into_iter().zip(verdicts) {
                    // A request whose client went away no longer waits.
                    let _ = reply.send(verdict);
                }
            }
            // Dropping the replies makes each waiter check its own signature.
            Err(e) => tracing::error!(error = %e, "signature batch failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::NodeIdentity;

    /// Many requests at once, one of them forged: each gets its own verdict.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_get_their_own_verdicts() {
        let batcher = SignatureBatcher::spawn();
        let mut tasks = Vec::new();
        for i in 0..200u32 {
            let b = batcher.clone();
            tasks.push(tokio::spawn(async move {
                let id = NodeIdentity::generate();
                let mut rec = id.sign_record(
                    "net",
                    &format!("127.0.{}.{}:7000", i / 200, i % 200 + 1),
                    1,
                    10,
                );
                if i == 77 {
                    rec.seq = 2; // no longer what was signed
                }
                let check = rec.signature_check("net").expect("well-formed");
                (i, b.verify(check).await)
            }));
        }
        for t in tasks {
            let (i, verdict) = t.await.expect("task");
            assert_eq!(verdict.is_ok(), i != 77, "request {i}: {verdict:?}");
        }
    }
}
