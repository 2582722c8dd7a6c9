//! `peerchain devnet`, the README's main command: 3 bootstraps and 4 nodes on loopback, a live
//! status table, and a clean stop on Ctrl-C (SIGINT).

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use support::{binary, free_port, free_range, signal};

/// Node rows of one printed table: (name, height, peers, sync).
fn node_rows(table: &[String]) -> Vec<(String, u64, usize, String)> {
    table
        .iter()
        .filter(|l| l.starts_with("node-"))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 6 || f[2] == "DOWN" {
                return None;
            }
            Some((
                f[0].to_string(),
                f[2].parse().ok()?,
                f[4].parse().ok()?,
                f[5].to_string(),
            ))
        })
        .collect()
}

#[test]
fn devnet_runs_three_bootstraps_and_four_nodes_then_stops_cleanly() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // Three consecutive ports for the members, four for the nodes.
    let base = free_port().min(60_000);
    let node_base = free_port().min(60_000);
    ensure!(base.abs_diff(node_base) > 8, "port ranges overlap; rerun");
    let mut child = Command::new(binary())
        .args(["devnet", "--data-dir"])
        .arg(dir.path().join("devnet"))
        .args(["--base-port", &base.to_string()])
        .args(["--node-base-port", &node_base.to_string()])
        .args(["--difficulty", "10", "--block-interval", "0.3"])
        .args(["--http-base-port", &free_range(16).to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut table: Vec<String> = Vec::new();
    let mut last_good = None;
    while Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) else {
            continue;
        };
        if line.starts_with("peerchain devnet") {
            let rows = node_rows(&table);
            let leader = table.iter().any(|l| l.contains(" leader "));
            let ready =
                rows.len() == 4 && rows.iter().all(|r| r.2 >= 1 && r.1 >= 3 && r.3 == "synced");
            if leader && ready {
                last_good = Some(table.clone());
                break;
            }
            table.clear();
        }
        table.push(line);
    }
    let Some(good) = last_good else {
        let _ = child.kill();
        bail!(
            "the devnet never showed a leader and 4 synced nodes:\n{}",
            table.join("\n")
        );
    };
    signal(child.id(), "INT")?;
    let stop_deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() > stop_deadline {
            let _ = child.kill();
            bail!("devnet did not stop after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let rest: Vec<String> = rx.try_iter().collect();
    ensure!(status.success(), "devnet exited with {status}");
    ensure!(
        rest.iter().any(|l| l.contains("devnet stopped")),
        "{}",
        rest.join("\n")
    );
    // Nodes were stopped before the cluster, so they could deregister.
    let log = std::fs::read_to_string(dir.path().join("devnet/node-2.log"))?;
    ensure!(
        log.contains("deregistered from the bootstrap cluster"),
        "{log}"
    );
    println!("{}", good.join("\n"));
    Ok(())
}
