//! [`FrameBudget`]: the bytes all unauthenticated connections together may hold in
//! incomplete requests (frames, or the seed protocol's lines), and [`BudgetCharge`], one
//! connection's share of it ([`BudgetedDecoder`] charges a framed connection's partial frame).
//!
//! A connection that sends most of a frame and goes quiet holds that much memory until it is
//! reaped. Before authentication a frame is at most [`PREAUTH_MAX_FRAME`] bytes, which bounds
//! each connection; this budget bounds them all together, however many sources there are.
//! A connection may always hold [`FREE_PARTIAL_BYTES`] without asking, so that an ordinary
//! request split across two TCP segments is never refused, even while the budget is spent.
//! Authenticated connections (members, operators) are not charged: their frames may be as
//! large as `max_frame_length` and must never be refused because of strangers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use tokio_util::codec::Decoder;

use crate::wire::DecodeError;

/// The largest frame an unauthenticated connection may send. The largest legitimate client
/// request is a `GetPeers` with 64 excluded addresses of 259 bytes (about 17 KiB); a
/// `Register` is under 1 KiB.
pub const PREAUTH_MAX_FRAME: usize = 64 * 1024;
/// Bytes of an incomplete frame a connection may hold without being charged to the budget.
pub const FREE_PARTIAL_BYTES: usize = 4 * 1024;

/// Bytes of incomplete frames held now, and the most allowed.
#[derive(Debug)]
pub struct FrameBudget {
    held: AtomicU64,
    limit: u64,
}

impl FrameBudget {
    /// `limit` 0 means no limit.
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(Self {
            held: AtomicU64::new(0),
            limit,
        })
    }

    /// Bytes held now by every charged connection.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    /// Moves one connection's charge from `old` to `new` bytes; `false` if `new` is above
    /// the free allowance and the sum is now over the limit (the charge stands either way,
    /// and is released when the connection calls again or is dropped).
    fn recharge(&self, old: u64, new: u64) -> bool {
        let total = if new >= old {
            self.held.fetch_add(new - old, Ordering::Relaxed) + (new - old)
        } else {
            self.held.fetch_sub(old - new, Ordering::Relaxed) - (old - new)
        };
        self.limit == 0 || new <= FREE_PARTIAL_BYTES as u64 || total <= self.limit
    }
}

/// One connection's share of a [`FrameBudget`]: the bytes of its request not yet complete.
/// Dropping it gives them back.
#[derive(Debug)]
pub struct BudgetCharge {
    budget: Arc<FrameBudget>,
    charged: u64,
    exempt: bool,
}

impl BudgetCharge {
    pub fn new(budget: Arc<FrameBudget>) -> Self {
        Self {
            budget,
            charged: 0,
            exempt: false,
        }
    }

    /// Charges `buffered` bytes of an incomplete request (replacing the previous charge).
    ///
    /// # Errors
    /// [`DecodeError::OverBudget`] if they are beyond the free allowance and the budget is
    /// spent; the connection should be closed.
    pub fn set(&mut self, buffered: usize) -> Result<(), DecodeError> {
        if self.exempt {
            return Ok(());
        }
        let new = buffered as u64;
        let ok = self.budget.recharge(self.charged, new);
        self.charged = new;
        if ok {
            Ok(())
        } else {
            Err(DecodeError::OverBudget {
                budget: self.budget.limit,
            })
        }
    }

    /// Stops charging this connection (it has authenticated).
    pub fn exempt(&mut self) {
        self.budget.recharge(self.charged, 0);
        self.charged = 0;
        self.exempt = true;
    }
}

impl Drop for BudgetCharge {
    fn drop(&mut self) {
        self.budget.recharge(self.charged, 0);
    }
}

/// A decoder whose buffered partial frame is charged to a [`FrameBudget`] until the
/// connection authenticates.
pub struct BudgetedDecoder<D> {
    inner: D,
    charge: BudgetCharge,
}

impl<D> BudgetedDecoder<D> {
    pub fn new(inner: D, budget: Arc<FrameBudget>) -> Self {
        Self {
            inner,
            charge: BudgetCharge::new(budget),
        }
    }

    /// The wrapped decoder (to raise its frame limit).
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    /// Stops charging this connection (it has authenticated).
    pub fn exempt(&mut self) {
        self.charge.exempt();
    }
}

impl<D: Decoder<Error = DecodeError>> Decoder for BudgetedDecoder<D> {
    type Item = D::Item;
    type Error = DecodeError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<D::Item>, DecodeError> {
        let item = self.inner.decode(src)?;
        // Whatever is left in the buffer is (the start of) a frame not yet complete.
        self.charge.set(src.len())?;
        Ok(item)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<D::Item>, DecodeError> {
        let item = self.inner.decode_eof(src)?;
        self.charge.set(src.len())?;
        Ok(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::FrameCodec;

    type Codec = FrameCodec<Vec<u8>, Vec<u8>>;

    fn partial(len: u32, have: usize) -> BytesMut {
        let mut b = BytesMut::from(&len.to_be_bytes()[..]);
        b.extend_from_slice(&vec![0u8; have]);
        b
    }

    #[test]
    fn partial_frames_are_charged_until_the_budget_is_spent() {
        let budget = FrameBudget::new(20_000);
        let mut a = BudgetedDecoder::new(Codec::new(PREAUTH_MAX_FRAME), budget.clone());
        let mut b = BudgetedDecoder::new(Codec::new(PREAUTH_MAX_FRAME), budget.clone());
        assert!(a.decode(&mut partial(60_000, 15_000)).expect("a").is_none());
        assert_eq!(budget.held(), 15_000);
        // A small partial frame is always allowed.
        assert!(b.decode(&mut partial(60_000, 3_000)).is_ok());
        assert!(matches!(
            b.decode(&mut partial(60_000, 10_000)),
            Err(DecodeError::OverBudget { budget: 20_000 })
        ));
        drop(b);
        assert_eq!(budget.held(), 15_000);
        a.exempt();
        assert_eq!(budget.held(), 0);
        assert!(a.decode(&mut partial(60_000, 50_000)).is_ok());
        assert_eq!(budget.held(), 0);
    }
}
