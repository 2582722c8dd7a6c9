//! [`BookLimits`]: how many addresses the address book keeps in all, per subnet and per
//! gossip source, and [`BookRefusal`], why an address was not kept.
//!
//! The caps make an eclipse attack expensive: whoever controls one /24 (or one /16) can
//! hold only a small share of the book however many addresses it announces, and one peer's
//! (or one subnet's) ADDR gossip can fill at most a fixed share of it. Addresses the
//! operator configured (`--peers`) are never refused; they still count toward the caps.

/// The address book's caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookLimits {
    /// Most addresses kept in all.
    pub max_entries: usize,
    /// Most addresses kept from one /24 (IPv6 /48); all host names share one group.
    pub per_net_group: usize,
    /// Most addresses kept from one /16 (IPv6 /32).
    pub per_wide_group: usize,
    /// Most addresses kept that were learned by ADDR gossip from peers in one /16
    /// (IPv6 /32) — a tenth of the book.
    pub per_gossip_source: usize,
}

/// Most addresses kept in all.
pub const MAX_BOOK_ENTRIES: usize = 10_000;
/// Most addresses kept per /24 (IPv6 /48): a /24 has 254 hosts, so this still leaves room
/// for a few nodes per host of a busy subnet while keeping one operator's share small.
pub const MAX_PER_NET_GROUP: usize = 64;
/// Most addresses kept per /16 (IPv6 /32): four full /24s.
pub const MAX_PER_WIDE_GROUP: usize = 256;
/// Most addresses one gossip source /16 (IPv6 /32) may have added: a tenth of the book.
pub const MAX_PER_GOSSIP_SOURCE: usize = MAX_BOOK_ENTRIES / 10;

impl Default for BookLimits {
    fn default() -> Self {
        Self {
            max_entries: MAX_BOOK_ENTRIES,
            per_net_group: MAX_PER_NET_GROUP,
            per_wide_group: MAX_PER_WIDE_GROUP,
            per_gossip_source: MAX_PER_GOSSIP_SOURCE,
        }
    }
}

/// Why a valid, new address was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BookRefusal {
    #[error("its /24 (/48) already holds the most addresses allowed")]
    NetGroupFull,
    #[error("its /16 (/32) already holds the most addresses allowed")]
    WideGroupFull,
    #[error("the gossip source's subnet already added its share of the book")]
    SourceShareFull,
    #[error("the book is full of addresses that are not worse")]
    BookFull,
}
