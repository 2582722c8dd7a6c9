//! [`MemberMetrics`]: everything a bootstrap member exports on `/metrics`.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::{encode_registry, latency_buckets, StorageMetrics};

/// Why a member refused a frame, a line or a connection (the `reason` label of
/// `peerchain_refused_frames_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameRefusal {
    /// A frame longer than `max_frame_length`.
    TooLarge,
    /// A frame, or a seed-protocol line, that does not decode.
    Malformed,
    /// A member-only request on a connection without the cluster secret.
    Unauthenticated,
    /// A failed member handshake.
    AuthFailed,
    /// A connection refused because `max_connections` are open.
    ConnectionLimit,
    /// A connection refused by its IP's or subnet's connection quota.
    ConnectionQuota,
    /// A request refused by its IP's or subnet's request rate.
    RateLimited,
    /// A legacy register refused by its IP's or subnet's legacy-records quota.
    LegacyQuota,
    /// A connection closed because incomplete requests hold the whole budget.
    OverBudget,
}

impl FrameRefusal {
    fn label(self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::Malformed => "malformed",
            Self::Unauthenticated => "unauthenticated",
            Self::AuthFailed => "auth_failed",
            Self::ConnectionLimit => "connection_limit",
            Self::ConnectionQuota => "connection_quota",
            Self::RateLimited => "rate_limited",
            Self::LegacyQuota => "legacy_quota",
            Self::OverBudget => "over_budget",
        }
    }
}

type Label = [(&'static str, &'static str); 1];

/// Gauges read from Raft and the registry at scrape time (see [`MemberMetrics::gauges`]).
#[derive(Default)]
pub struct RaftGauges {
    pub has_leader: Gauge,
    pub is_leader: Gauge,
    pub ready: Gauge,
    pub term: Gauge,
    pub commit_index: Gauge,
    pub applied_index: Gauge,
    pub last_log_index: Gauge,
    pub entries_since_snapshot: Gauge,
    pub snapshot_age_seconds: Gauge<f64, AtomicU64>,
    pub quorum_ack_age_seconds: Gauge<f64, AtomicU64>,
    pub voters: Gauge,
    pub registry_records: Family<Label, Gauge>,
}

/// The handle a member's code paths push into; clones share the values. Built once per
/// member, before its storage is opened.
#[derive(Clone)]
pub struct MemberMetrics {
    registry: Arc<Registry>,
    /// Handed to the log store and the state machine.
    pub storage: StorageMetrics,
    gauges: Arc<RaftGauges>,
    leader_changes: Counter,
    proposals_committed: Counter,
    proposals_failed: Counter,
    proposals_pending: Gauge,
    entry_commands: Histogram,
    get_peers: Counter,
    get_peers_from_reservoir: Counter,
    get_peers_seconds: Histogram,
    open_connections: Gauge,
    refused: Family<Label, Counter>,
    /// When this process last saw the snapshot index change (and which index it was).
    snapshot_seen: Arc<Mutex<Option<(u64, Instant)>>>,
}

impl Default for MemberMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl MemberMetrics {
    /// Every member metric, registered under the `peerchain_` prefix.
    pub fn new() -> Self {
        let storage = StorageMetrics::default();
        let gauges = Arc::new(RaftGauges::default());
        let mut m = Self {
            registry: Arc::new(Registry::default()),
            storage,
            gauges,
            leader_changes: Counter::default(),
            proposals_committed: Counter::default(),
            proposals_failed: Counter::default(),
            proposals_pending: Gauge::default(),
            entry_commands: Histogram::new(exponential_buckets(1.0, 2.0, 9)),
            get_peers: Counter::default(),
            get_peers_from_reservoir: Counter::default(),
            get_peers_seconds: Histogram::new(latency_buckets()),
            open_connections: Gauge::default(),
            refused: Family::default(),
            snapshot_seen: Arc::new(Mutex::new(None)),
        };
        let mut r = Registry::with_prefix("peerchain");
        m.register_raft(&mut r);
        m.register_traffic(&mut r);
        m.registry = Arc::new(r);
        m
    }

    fn register_raft(&self, r: &mut Registry) {
        let g = &self.gauges;
        register!(r;
            "raft_has_leader", "1 if this member knows a leader whose quorum is current" => g.has_leader,
            "raft_is_leader", "1 if this member is the leader" => g.is_leader,
            "member_ready", "1 if /ready answers 200 (leader known, caught up, quorum heard)" => g.ready,
            "raft_leader_changes", "Times the leader this member knows changed (to another or to none)" => self.leader_changes,
            "raft_term", "Current Raft term" => g.term,
            "raft_commit_index", "Last log index known committed on this member" => g.commit_index,
            "raft_applied_index", "Last log index applied to this member's registry" => g.applied_index,
            "raft_last_log_index", "Last log index in this member's log" => g.last_log_index,
            "raft_log_entries_since_snapshot", "Log entries after the last snapshot" => g.entries_since_snapshot,
            "raft_voters", "Voting members in the membership this member knows" => g.voters,
            "registry_records", "Records in the registry, by kind (signed, legacy)" => g.registry_records,
            "proposals_committed", "Raft entries this member proposed that committed" => self.proposals_committed,
            "proposals_failed", "Raft entries this member proposed that failed or timed out" => self.proposals_failed,
            "proposals_pending", "Commands queued or in flight in the group-commit proposer" => self.proposals_pending,
            "proposal_commands", "Commands (registrations, removals) carried per proposed entry" => self.entry_commands,
            "registry_expired", "Records and tombstones removed by applied Expire commands" => self.storage.expired,
            "log_appended_bytes", "Bytes of entries appended to this member's Raft log" => self.storage.log_appended_bytes,
        );
        register!(r; seconds
            "raft_snapshot_age", "Time since the current snapshot was taken or installed (0 if none)" => g.snapshot_age_seconds,
            "raft_quorum_ack_age", "Leader only: time since a quorum last acknowledged it (0 on followers)" => g.quorum_ack_age_seconds,
            "log_fsync_duration", "Durable log appends (redb commit, fsync)" => self.storage.log_fsync,
            "apply_duration", "State-machine applies (one redb transaction per run of entries, not fsynced)" => self.storage.apply,
            "checkpoint_duration", "Checkpoints that make the state machine's applies durable (fsync)" => self.storage.checkpoint,
        );
    }

    fn register_traffic(&self, r: &mut Registry) {
        register!(r;
            "get_peers_served", "Peer samples answered (native GetPeers and the seed's GET_PEERS)" => self.get_peers,
            "get_peers_from_reservoir", "Peer samples taken from the reservoir drawn ahead (a large registry)" => self.get_peers_from_reservoir,
            "open_connections", "Client and member connections open on the bootstrap port" => self.open_connections,
            "refused_frames", "Frames, lines and connections refused, by reason" => self.refused,
        );
        register!(r; seconds
            "get_peers_duration", "Time to answer one peer sample" => self.get_peers_seconds,
        );
    }

    /// The scrape-time gauges, to be set just before [`Self::encode`].
    pub fn gauges(&self) -> &RaftGauges {
        &self.gauges
    }

    /// Every metric in the text format.
    pub fn encode(&self) -> String {
        encode_registry(&self.registry)
    }

    /// The leader this member knows changed.
    pub fn leader_changed(&self) {
        self.leader_changes.inc();
    }

    /// How many times the leader changed since start.
    pub fn leader_changes(&self) -> u64 {
        self.leader_changes.get()
    }

    /// A command joined the proposer's queue.
    pub fn proposal_queued(&self) {
        self.proposals_pending.inc();
    }

    /// A command left the queue without being proposed (the member is shutting down).
    pub fn proposal_unqueued(&self) {
        self.proposals_pending.dec();
    }

    /// An entry of `commands` commands was proposed and finished (`ok` if committed).
    pub fn proposal_done(&self, commands: usize, ok: bool) {
        self.proposals_pending.dec_by(commands as i64);
        self.entry_commands.observe(commands as f64);
        if ok {
            self.proposals_committed.inc();
        } else {
            self.proposals_failed.inc();
        }
    }

    /// One peer sample was answered after `took`.
    /// A sample was taken from the reservoir rather than drawn for the request.
    pub fn sample_from_reservoir(&self) {
        self.get_peers_from_reservoir.inc();
    }

    pub fn get_peers_served(&self, took: Duration) {
        self.get_peers.inc();
        self.get_peers_seconds.observe(took.as_secs_f64());
    }

    /// A connection opened; the guard counts it closed when dropped.
    pub fn connection_opened(&self) -> OpenConnection {
        self.open_connections.inc();
        OpenConnection(self.open_connections.clone())
    }

    /// Something was refused for `reason`.
    pub fn refused(&self, reason: FrameRefusal) {
        self.refused
            .get_or_create(&[("reason", reason.label())])
            .inc();
    }

    /// Seconds since the snapshot at `index` appeared, remembering when it first did. A
    /// snapshot found at start is the registry as this process opened it (members keep no
    /// snapshot file), so its age starts then.
    pub fn snapshot_age(&self, index: Option<u64>) -> f64 {
        let Some(index) = index else { return 0.0 };
        let Ok(mut seen) = self.snapshot_seen.lock() else {
            return 0.0;
        };
        match *seen {
            Some((i, at)) if i == index => at.elapsed().as_secs_f64(),
            _ => {
                *seen = Some((index, Instant::now()));
                0.0
            }
        }
    }
}

/// One open connection in `peerchain_open_connections`, until dropped.
pub struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}
