//! [`run`]: executes a ctl command and prints its result.

use std::io::Write;
use std::time::Duration;

use super::ctl_output::{print, print_cluster, print_listing, print_peers, print_status};
use super::{ClusterAction, CtlArgs, CtlCommand};
use crate::client::{BootstrapClient, ClientError, ClientOptions, NodeStatusQuery};
use crate::raft::ClusterSecret;
use crate::record::NodeIdentity;
use crate::wire::Request;

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
