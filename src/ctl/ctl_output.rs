//! How ctl prints what the cluster or a node answered: a table for people, one JSON value
//! per line with `--json`.

use std::io::Write;

use super::CtlError;
use crate::registry::PeerEntry;
use crate::wire::{ClusterInfo, EntryDetail, NodeStatus};

/// A node's status as a short report.
pub(super) fn print_status(
    out: &mut dyn Write,
    json: bool,
    s: &NodeStatus,
) -> Result<(), CtlError> {
    if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(s).map_err(std::io::Error::other)?
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "node      {} at {} ({})",
        s.node_id, s.listen_addr, s.network_id
    )?;
    writeln!(
        out,
        "tip       height {} hash {} work {}",
        s.tip.height,
        hex::encode(&s.tip.hash[..8]),
        s.tip.total_work
    )?;
    match s.syncing {
        Some((have, target)) => writeln!(out, "sync      syncing {have} / {target}")?,
        None => writeln!(out, "sync      in sync with its peers")?,
    }
    if s.mining {
        writeln!(out, "mining    yes, {} blocks mined", s.blocks_mined)?;
    }
    writeln!(
        out,
        "bootstrap {} ({}), members {}",
        s.bootstrap.as_deref().unwrap_or("none reachable"),
        if s.registered {
            "registered"
        } else {
            "not registered"
        },
        s.bootstrap_members.join(",")
    )?;
    writeln!(
        out,
        "known     {} addresses, {} banned",
        s.known_addresses.len(),
        s.banned.len()
    )?;
    let d = s.book_drops;
    let refused = d.net_group_full + d.wide_group_full + d.source_share_full + d.book_full;
    if refused > 0 {
        writeln!(
            out,
            "refused   {refused} addresses: /24 full {}, /16 full {}, source share full {}, book full {}",
            d.net_group_full, d.wide_group_full, d.source_share_full, d.book_full
        )?;
    }
    writeln!(out, "peers     {}", s.peers.len())?;
    for p in &s.peers {
        writeln!(
            out,
            "  {:<24} {} height {:<8} score {}",
            p.addr,
            if p.outbound { "out" } else { "in " },
            p.tip_height,
            p.ban_score
        )?;
    }
    Ok(())
}

pub(super) fn print(
    out: &mut dyn Write,
    json: bool,
    value: &serde_json::Value,
    text: &str,
) -> Result<(), CtlError> {
    if json {
        writeln!(out, "{value}")?;
    } else {
        writeln!(out, "{text}")?;
    }
    Ok(())
}

pub(super) fn print_peers(
    out: &mut dyn Write,
    json: bool,
    peers: &[PeerEntry],
) -> Result<(), CtlError> {
    if json {
        let v = serde_json::to_value(peers).map_err(std::io::Error::other)?;
        writeln!(out, "{v}")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<28} {:<8} {:<18} {:>15}",
        "ADDRESS", "KIND", "NODE", "EXPIRES_IN_S"
    )?;
    let now = crate::unix_ms();
    for p in peers {
        let (kind, node) = match p {
            PeerEntry::Signed(r) => ("signed", r.node_id.to_string()[..16].to_string()),
            PeerEntry::Legacy(_) => ("legacy", "-".to_string()),
        };
        let ttl = p.expires_at_ms().saturating_sub(now) / 1000;
        writeln!(
            out,
            "{:<28} {:<8} {:<18} {:>15}",
            p.address(),
            kind,
            node,
            ttl
        )?;
    }
    writeln!(out, "{} peers", peers.len())?;
    Ok(())
}

/// The operator listing: each entry with whether it is served (a verified signed record,
/// or a legacy one, which the seed protocol serves) and its subnet group.
pub(super) fn print_listing(
    out: &mut dyn Write,
    json: bool,
    listed: &[(PeerEntry, Option<EntryDetail>)],
) -> Result<(), CtlError> {
    if json {
        let rows: Vec<serde_json::Value> = listed
            .iter()
            .map(|(p, d)| serde_json::json!({ "entry": p, "detail": d }))
            .collect();
        writeln!(out, "{}", serde_json::Value::Array(rows))?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<28} {:<8} {:<18} {:>15} {:<9} GROUP",
        "ADDRESS", "KIND", "NODE", "EXPIRES_IN_S", "VERIFIED"
    )?;
    let now = crate::unix_ms();
    for (p, d) in listed {
        let (kind, node) = match p {
            PeerEntry::Signed(r) => ("signed", r.node_id.to_string()[..16].to_string()),
            PeerEntry::Legacy(_) => ("legacy", "-".to_string()),
        };
        let verified = match (p, d) {
            (PeerEntry::Legacy(_), _) => "-",
            (_, Some(d)) if d.verified => "yes",
            (_, Some(_)) => "no",
            (_, None) => "?",
        };
        let ttl = p.expires_at_ms().saturating_sub(now) / 1000;
        let group = d.as_ref().map_or("?", |d| d.group.as_str());
        writeln!(
            out,
            "{:<28} {:<8} {:<18} {:>15} {:<9} {group}",
            p.address(),
            kind,
            node,
            ttl,
            verified
        )?;
    }
    writeln!(out, "{} peers", listed.len())?;
    Ok(())
}

pub(super) fn print_cluster(
    out: &mut dyn Write,
    json: bool,
    info: &ClusterInfo,
) -> Result<(), CtlError> {
    if json {
        let v = serde_json::to_value(info).map_err(std::io::Error::other)?;
        writeln!(out, "{v}")?;
        return Ok(());
    }
    writeln!(
        out,
        "network {}  term {}  leader {}  peers {}  (answered by member {})",
        info.network_id,
        info.term,
        info.leader_id.map_or("none".to_string(), |l| l.to_string()),
        info.peer_count,
        info.member_id
    )?;
    if info.cluster_time_ms.is_none() {
        writeln!(
            out,
            "cluster time unknown: member {} has fresh clock readings from fewer than a \
             majority of the voters (expiry is held while it leads)",
            info.member_id
        )?;
    }
    print_readiness(out, info)?;
    writeln!(
        out,
        "{:<4} {:<24} {:<8} {:<7} {:>12} {:>12} {:>7}",
        "ID", "ADDRESS", "ROLE", "LEADER", "OFFSET_S", "SKEW_S", "RTT_MS"
    )?;
    for m in &info.members {
        let role = if m.voter { "voter" } else { "learner" };
        let lead = if Some(m.id) == info.leader_id {
            "leader"
        } else {
            ""
        };
        writeln!(
            out,
            "{:<4} {:<24} {:<8} {:<7} {:>12} {:>12} {:>7}",
            m.id,
            m.addr,
            role,
            lead,
            seconds(m.clock_offset_ms),
            seconds(m.clock_skew_ms),
            m.clock_rtt_ms.map_or("-".to_string(), |r| r.to_string())
        )?;
    }
    Ok(())
}

/// Milliseconds as signed seconds with one decimal, `-` when unknown.
fn seconds(ms: Option<i64>) -> String {
    ms.map_or("-".to_string(), |ms| format!("{:+.1}", ms as f64 / 1000.0))
}

/// Whether the answering member is ready, and for a leader how long ago a quorum last
/// acknowledged it: a leader cut off from its quorum still calls itself leader in openraft,
/// and this line is where an operator sees that it no longer is one.
fn print_readiness(out: &mut dyn Write, info: &ClusterInfo) -> Result<(), CtlError> {
    if let Some(ms) = info.millis_since_quorum_ack {
        writeln!(
            out,
            "member {} leads; a quorum last acknowledged it {:.1} s ago",
            info.member_id,
            ms as f64 / 1000.0
        )?;
    }
    match info.ready {
        Some(true) => writeln!(out, "member {} is ready", info.member_id)?,
        Some(false) => writeln!(
            out,
            "member {} is NOT ready: {}",
            info.member_id,
            info.not_ready_reasons.join("; ")
        )?,
        None => {}
    }
    Ok(())
}
