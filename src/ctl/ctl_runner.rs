//! [`run`]: executes a ctl command and prints its result.

use std::io::Write;
use std::time::Duration;

use super::{ClusterAction, CtlArgs, CtlCommand};
use crate::client::{BootstrapClient, ClientError, ClientOptions, NodeStatusQuery};
use crate::raft::ClusterSecret;
use crate::record::NodeIdentity;
use crate::registry::PeerEntry;
use crate::wire::{ClusterInfo, EntryDetail, NodeStatus, Request};

/// Admin requests may wait for a learner to catch up.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(60);
/// A node answers a status query at once or not at all.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a ctl command failed.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Usage(String),
}

/// The key at `key` (or [`super::ctl_args::default_key_path`]), created if absent; a new key
/// is announced with its path, since removing the record later needs the same file.
fn load_key(
    key: Option<std::path::PathBuf>,
) -> Result<(NodeIdentity, std::path::PathBuf), CtlError> {
    let path = key
        .or_else(super::ctl_args::default_key_path)
        .ok_or_else(|| {
            CtlError::Usage("no --key given and neither XDG_DATA_HOME nor HOME is set".into())
        })?;
    let existed = path.exists();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let id = NodeIdentity::load_or_create(&path)?;
    if !existed {
        // On stderr, so that `--json` output stays one JSON value.
        eprintln!(
            "created signing key {} (keep it: renewing or removing the record needs it)",
            path.display()
        );
    }
    Ok((id, path))
}

/// Runs `args`, writing its output to `out`.
///
/// # Errors
/// Client, I/O and usage errors.
pub async fn run(args: CtlArgs, out: &mut dyn Write) -> Result<(), CtlError> {
    let mut options = ClientOptions {
        connect_timeout: Duration::from_secs_f64(args.connect_timeout.max(0.01)),
        ..ClientOptions::default()
    };
    let admin = matches!(&args.command, CtlCommand::Cluster { action: Some(a) } if !matches!(a, ClusterAction::Info));
    let operator = matches!(&args.command, CtlCommand::Peers { all: true, .. });
    if admin || operator {
        options.secret = Some(secret(&args)?);
    }
    if admin {
        options.request_timeout = ADMIN_TIMEOUT;
    }
    let mut client = BootstrapClient::new(args.bootstrap.clone(), options);
    match args.command {
        CtlCommand::Status { node } => {
            let status = NodeStatusQuery::fetch(&node, STATUS_TIMEOUT).await?;
            print_status(out, args.json, &status)
        }
        CtlCommand::Register { address, ttl, key } => {
            let (id, key) = load_key(key)?;
            let now = crate::unix_ms();
            let expires = ttl
                .checked_mul(1000)
                .and_then(|ms| now.checked_add(ms))
                .ok_or_else(|| CtlError::Usage(format!("--ttl {ttl} is too large")))?;
            let record = id.sign_record(&args.network_id, &address, now, expires);
            let (replaced, moved_from) = client.register_moving(record).await?;
            // This key's node held another address until now: say so, it is gone from the
            // registry (a node holds one record).
            let moved = moved_from
                .as_deref()
                .map_or(String::new(), |m| format!("; replaced {m}"));
            print(
                out,
                args.json,
                &serde_json::json!({"registered": address, "node_id": id.node_id().to_string(), "replaced": replaced, "moved_from": moved_from, "key": key.display().to_string()}),
                &format!(
                    "registered {address} as node {} (key {}){moved}",
                    id.node_id(),
                    key.display()
                ),
            )
        }
        CtlCommand::Remove { address, key } => {
            let (id, _) = load_key(key)?;
            client
                .deregister(id.sign_deregistration(&args.network_id, &address, crate::unix_ms()))
                .await?;
            print(
                out,
                args.json,
                &serde_json::json!({"removed": address}),
                &format!("removed {address}"),
            )
        }
        CtlCommand::Peers {
            limit,
            all,
            linearizable,
        } => {
            if all {
                let listed = client.list_all_detailed(limit.or(Some(1000))).await?;
                return print_listing(out, args.json, &listed);
            }
            let peers = client.get_peers(limit, Vec::new(), linearizable).await?;
            print_peers(out, args.json, &peers)
        }
        CtlCommand::Cluster { action } => match action.unwrap_or(ClusterAction::Info) {
            ClusterAction::Info => {
                let info = client.cluster_info().await?;
                print_cluster(out, args.json, &info)
            }
            ClusterAction::AddLearner { id, addr } => {
                client
                    .admin(Request::AddLearner {
                        member_id: id,
                        addr: addr.clone(),
                    })
                    .await?;
                print(
                    out,
                    args.json,
                    &serde_json::json!({"added_learner": id, "addr": addr}),
                    &format!("member {id} added as learner at {addr}"),
                )
            }
            ClusterAction::Promote { id } => {
                client.admin(Request::Promote { member_id: id }).await?;
                print(
                    out,
                    args.json,
                    &serde_json::json!({"promoted": id}),
                    &format!("member {id} is now a voter"),
                )
            }
            ClusterAction::Remove { id } => {
                client
                    .admin(Request::RemoveMember { member_id: id })
                    .await?;
                print(
                    out,
                    args.json,
                    &serde_json::json!({"removed_member": id}),
                    &format!("member {id} removed"),
                )
            }
            ClusterAction::Elect { id } => {
                client.admin(Request::Elect { member_id: id }).await?;
                print(
                    out,
                    args.json,
                    &serde_json::json!({"leader": id}),
                    &format!("member {id} now leads"),
                )
            }
        },
    }
}

/// A node's status as a short report.
fn print_status(out: &mut dyn Write, json: bool, s: &NodeStatus) -> Result<(), CtlError> {
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

/// The cluster secret from --cluster-secret-file or PEERCHAIN_CLUSTER_SECRET.
fn secret(args: &CtlArgs) -> Result<ClusterSecret, CtlError> {
    ClusterSecret::from_file_or_env(args.cluster_secret_file.as_deref()).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound && args.cluster_secret_file.is_none() {
            CtlError::Usage(format!("this command needs the cluster secret: {e}"))
        } else {
            CtlError::from(e)
        }
    })
}

fn print(
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

fn print_peers(out: &mut dyn Write, json: bool, peers: &[PeerEntry]) -> Result<(), CtlError> {
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
fn print_listing(
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

fn print_cluster(out: &mut dyn Write, json: bool, info: &ClusterInfo) -> Result<(), CtlError> {
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
