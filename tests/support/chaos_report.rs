//! [`ChaosReport`]: what a chaos run did and what the checks found, printed as a table.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use peerchain::client::BootstrapClient;
use peerchain::raft::ClusterSecret;
use peerchain::registry::PeerEntry;

use super::faults::Faults;
use super::history::{Op, OpKind, Outcome};
use super::linearizability::{check_key, partition};
use super::SECRET;

/// How long members get to converge on the same registry after healing.
const CONVERGE_WAIT: Duration = Duration::from_secs(30);

/// One injected fault: when the injection command had returned, and when the harness had
/// healed it (and the members agreed on a leader again).
#[derive(Debug, Clone)]
pub struct FaultEvent {
    pub kind: &'static str,
    pub target: String,
    pub injected_us: u64,
    pub healed_us: u64,
}

/// address → seq of the stored signed record (`None` for a legacy record).
pub type Listing = BTreeMap<String, Option<u64>>;

async fn listing(addr: String) -> Result<Listing> {
    let mut options = super::quick_options();
    options.secret = Some(ClusterSecret::new(SECRET.as_bytes())?);
    let mut client = BootstrapClient::new(vec![addr], options);
    let entries = client.list_all(Some(1000)).await?;
    Ok(entries
        .iter()
        .map(|p| {
            let seq = match p {
                PeerEntry::Signed(r) => Some(r.seq),
                PeerEntry::Legacy(_) => None,
            };
            (p.address().to_string(), seq)
        })
        .collect())
}

/// Every member's full local listing, once they all agree (or the last ones read after
/// [`CONVERGE_WAIT`], which the report then shows as not converged).
pub async fn converged_listings<F: Faults>(faults: &F) -> Result<Vec<(u64, Listing)>> {
    let deadline = Instant::now() + CONVERGE_WAIT;
    loop {
        let mut all = Vec::new();
        for id in faults.ids() {
            all.push((id, listing(faults.client_addr(id)).await));
        }
        let done: Vec<(u64, Listing)> = all
            .into_iter()
            .filter_map(|(id, l)| l.ok().map(|l| (id, l)))
            .collect();
        let same = done.len() == faults.ids().len() && done.windows(2).all(|w| w[0].1 == w[1].1);
        if same || Instant::now() > deadline {
            return Ok(done);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Per fault kind: how many, and the worst unavailability and recovery seen.
#[derive(Debug, Default, Clone)]
pub struct FaultRow {
    pub count: usize,
    pub max_unavailable_s: f64,
    pub max_recover_s: f64,
    pub sum_recover_s: f64,
    pub unrecovered: usize,
}

/// What happened to the nodes of a run.
#[derive(Debug, Default, Clone)]
pub struct NodeSummary {
    /// Every node started (the deployment's and those started during faults).
    pub started: usize,
    /// Nodes that, after healing, were registered and connected to at least one peer.
    pub joined: usize,
    /// (fault, seconds until connected to a peer) of each node started during a fault.
    pub joins_during_faults: Vec<(String, f64)>,
    /// Whether every node ended on the same tip, and its height.
    pub chain_converged: bool,
    pub chain_height: u64,
    pub problems: Vec<String>,
}

/// The outcome of one chaos run.
#[derive(Debug)]
pub struct ChaosReport {
    pub nodes: NodeSummary,
    pub harness: String,
    pub profile: String,
    pub duration: Duration,
    pub rows: BTreeMap<&'static str, FaultRow>,
    pub operations: usize,
    pub writes: usize,
    pub reads: usize,
    pub acknowledged: usize,
    pub failed: usize,
    pub unknown: usize,
    pub lost: Vec<String>,
    pub phantoms: Vec<String>,
    pub non_linearizable: Vec<String>,
    pub keys: usize,
    pub members: usize,
    pub converged: bool,
    pub longest_unavailable_s: f64,
    pub notes: Vec<String>,
}

fn secs(us: u64) -> f64 {
    us as f64 / 1e6
}

impl ChaosReport {
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        harness: &str,
        profile: &str,
        ops: Vec<Op>,
        keys: &[String],
        events: Vec<FaultEvent>,
        notes: Vec<String>,
        listings: Vec<(u64, Listing)>,
        duration: Duration,
    ) -> Self {
        let writes: Vec<&Op> = ops.iter().filter(|o| o.is_write()).collect();
        let mut acks: Vec<u64> = writes
            .iter()
            .filter(|o| o.outcome.is_ok())
            .map(|o| o.complete_us)
            .collect();
        acks.sort_unstable();
        let gaps: Vec<(u64, u64)> = acks.windows(2).map(|w| (w[0], w[1])).collect();
        let end = ops.iter().map(|o| o.complete_us).max().unwrap_or(0);
        let mut rows: BTreeMap<&'static str, FaultRow> = BTreeMap::new();
        for (i, e) in events.iter().enumerate() {
            let window_end = events.get(i + 1).map_or(end, |n| n.injected_us);
            let unavailable = gaps
                .iter()
                .filter(|(a, b)| *b > e.injected_us && *a < window_end)
                .map(|(a, b)| b - a)
                .max()
                .unwrap_or(0);
            let recover = writes
                .iter()
                .filter(|o| o.outcome.is_ok() && o.invoke_us >= e.injected_us)
                .map(|o| o.complete_us - e.injected_us)
                .min();
            let row = rows.entry(e.kind).or_default();
            row.count += 1;
            row.max_unavailable_s = row.max_unavailable_s.max(secs(unavailable));
            match recover {
                Some(r) => {
                    row.max_recover_s = row.max_recover_s.max(secs(r));
                    row.sum_recover_s += secs(r);
                }
                None => row.unrecovered += 1,
            }
        }
        let (lost, phantoms) = durability(&ops, keys, &listings);
        let non_linearizable = partition(&ops, keys)
            .iter()
            .filter(|(_, h)| !check_key(h))
            .map(|(k, _)| k.clone())
            .collect();
        let converged = listings.windows(2).all(|w| w[0].1 == w[1].1);
        Self {
            nodes: NodeSummary::default(),
            harness: harness.into(),
            profile: profile.into(),
            duration,
            rows,
            operations: ops.len(),
            writes: writes.len(),
            reads: ops.len() - writes.len(),
            acknowledged: writes.iter().filter(|o| o.outcome.is_ok()).count(),
            failed: writes
                .iter()
                .filter(|o| matches!(o.outcome, Outcome::Failed(_)))
                .count(),
            unknown: writes
                .iter()
                .filter(|o| matches!(o.outcome, Outcome::Unknown(_)))
                .count(),
            lost,
            phantoms,
            non_linearizable,
            keys: keys.len(),
            members: listings.len(),
            converged,
            longest_unavailable_s: secs(gaps.iter().map(|(a, b)| b - a).max().unwrap_or(0)),
            notes,
        }
    }

    /// Fails unless nothing was lost, nothing appeared from nowhere, every key's history is
    /// linearizable, the members converged and writes recovered after every fault.
    pub fn assert_ok(&self) -> Result<()> {
        ensure!(
            self.lost.is_empty(),
            "lost acknowledged writes: {:?}",
            self.lost
        );
        ensure!(
            self.phantoms.is_empty(),
            "phantom records: {:?}",
            self.phantoms
        );
        ensure!(
            self.non_linearizable.is_empty(),
            "non-linearizable keys: {:?}",
            self.non_linearizable
        );
        ensure!(self.converged, "members did not converge on one registry");
        ensure!(
            self.nodes.joined == self.nodes.started && self.nodes.started > 0,
            "{} of {} nodes joined: {:?}",
            self.nodes.joined,
            self.nodes.started,
            self.nodes.problems
        );
        ensure!(
            self.nodes.chain_converged,
            "the nodes did not converge on one chain: {:?}",
            self.nodes.problems
        );
        ensure!(self.acknowledged > 0, "no write was acknowledged at all");
        for (kind, row) in &self.rows {
            ensure!(
                row.unrecovered == 0,
                "{} of {} '{kind}' faults saw no acknowledged write afterwards",
                row.unrecovered,
                row.count
            );
        }
        Ok(())
    }
}

/// Lost acknowledged writes and phantom records, judged from every member's listing.
fn durability(
    ops: &[Op],
    keys: &[String],
    listings: &[(u64, Listing)],
) -> (Vec<String>, Vec<String>) {
    let mut lost = Vec::new();
    let mut phantoms = Vec::new();
    let key_set: BTreeSet<&String> = keys.iter().collect();
    for key in keys {
        let writes: Vec<&Op> = ops
            .iter()
            .filter(|o| o.key() == Some(key.as_str()))
            .collect();
        let attempted: BTreeSet<u64> = writes
            .iter()
            .filter_map(|o| match o.kind {
                OpKind::Register { seq, .. } => Some(seq),
                _ => None,
            })
            .collect();
        let last_ok = writes.iter().rposition(|o| o.outcome.is_ok());
        for (id, l) in listings {
            let stored = l.get(key).copied();
            if let Some(seq) = stored {
                if !seq.is_some_and(|s| attempted.contains(&s)) {
                    phantoms.push(format!("member {id}: {key} seq {seq:?} never attempted"));
                }
            }
            let Some(i) = last_ok else { continue };
            let later = &writes[i + 1..];
            match writes[i].kind {
                OpKind::Register { seq, .. } => {
                    let may_be_gone = later
                        .iter()
                        .any(|o| matches!(o.kind, OpKind::Deregister { .. }));
                    let ok = matches!(stored, Some(Some(s)) if s >= seq);
                    if !ok && !may_be_gone {
                        lost.push(format!(
                            "member {id}: {key} (acked seq {seq}) has {stored:?}"
                        ));
                    }
                }
                OpKind::Deregister { .. } => {
                    let may_be_back = later
                        .iter()
                        .any(|o| matches!(o.kind, OpKind::Register { .. }));
                    if stored.is_some() && !may_be_back {
                        phantoms.push(format!("member {id}: {key} back after an acked removal"));
                    }
                }
                OpKind::Read => {}
            }
        }
    }
    for (id, l) in listings {
        for addr in l.keys().filter(|a| !key_set.contains(a)) {
            phantoms.push(format!("member {id}: {addr} was never written"));
        }
    }
    (lost, phantoms)
}

impl fmt::Display for ChaosReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "\n== chaos summary: {} harness, profile {}, {:.1} s",
            self.harness,
            self.profile,
            self.duration.as_secs_f64()
        )?;
        writeln!(
            f,
            "{:<18} {:>6} {:>22} {:>18} {:>18}",
            "fault", "count", "max write unavail (s)", "mean recover (s)", "max recover (s)"
        )?;
        for (kind, r) in &self.rows {
            let recovered = r.count - r.unrecovered;
            let mean = if recovered > 0 {
                format!("{:.2}", r.sum_recover_s / recovered as f64)
            } else {
                "-".into()
            };
            let max = if r.unrecovered > 0 {
                format!("{} never", r.unrecovered)
            } else {
                format!("{:.2}", r.max_recover_s)
            };
            writeln!(
                f,
                "{:<18} {:>6} {:>22.2} {:>18} {:>18}",
                kind, r.count, r.max_unavailable_s, mean, max
            )?;
        }
        let faults: usize = self.rows.values().map(|r| r.count).sum();
        writeln!(
            f,
            "faults injected {faults}; operations {} (writes {}, reads {}); acknowledged {}, failed {}, unknown {}",
            self.operations, self.writes, self.reads, self.acknowledged, self.failed, self.unknown
        )?;
        writeln!(
            f,
            "lost {}; phantom {}; non-linearizable keys {}/{}; members converged {} ({} listed); longest write unavailability {:.2} s",
            self.lost.len(),
            self.phantoms.len(),
            self.non_linearizable.len(),
            self.keys,
            if self.converged { "yes" } else { "NO" },
            self.members,
            self.longest_unavailable_s
        )?;
        let joins: Vec<f64> = self.nodes.joins_during_faults.iter().map(|j| j.1).collect();
        let mean = if joins.is_empty() {
            0.0
        } else {
            joins.iter().sum::<f64>() / joins.len() as f64
        };
        writeln!(
            f,
            "nodes started {}, joined {}; {} joined during faults (seed lists starting with dead members): mean {:.2} s, max {:.2} s to a first peer; chain converged {} at height {}",
            self.nodes.started,
            self.nodes.joined,
            joins.len(),
            mean,
            joins.iter().copied().fold(0.0, f64::max),
            if self.nodes.chain_converged { "yes" } else { "NO" },
            self.nodes.chain_height
        )?;
        for (fault, secs) in &self.nodes.joins_during_faults {
            writeln!(f, "  node joined during '{fault}' in {secs:.2} s")?;
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        Ok(())
    }
}
