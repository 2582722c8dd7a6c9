//! `peerchain devnet`, the README's main command: 3 bootstraps and 4 nodes on loopback, a live
//! status table, and a clean stop on Ctrl-C (SIGINT).

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use support::{binary, free_range, signal};

/// Node rows of one printed table: (name, height, peers, sync).
fn node_rows(table: &[String]) -> Vec<(String, u64, usize, String)> {
    table
        .iter()
        .filter(|l| l.starts_with("node-"))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 7 || f[3] == "DOWN" {
                return None;
            }
            Some((
                f[0].to_string(),
                f[3].parse().ok()?,
                f[5].parse().ok()?,
                f[6].to_string(),
            ))
        })
        .collect()
}

/// Member rows of one printed table: (name, pid, role).
fn member_rows(table: &[String]) -> Vec<(String, String, String)> {
    table
        .iter()
        .filter(|l| l.starts_with("bootstrap-"))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4).then(|| (f[0].to_string(), f[2].to_string(), f[3].to_string()))
        })
        .collect()
}

/// Reads printed tables until one satisfies `want` (returned) or `within` passes.
fn table_where(
    rx: &mpsc::Receiver<String>,
    within: Duration,
    want: impl Fn(&[String]) -> bool,
) -> Option<Vec<String>> {
    let deadline = Instant::now() + within;
    let mut table: Vec<String> = Vec::new();
    while Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) else {
            continue;
        };
        if line.starts_with("peerchain devnet") {
            if want(&table) {
                return Some(table);
            }
            table.clear();
        }
        table.push(line);
    }
    None
}

#[test]
fn devnet_runs_three_bootstraps_and_four_nodes_then_stops_cleanly() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // Three consecutive ports for the members, four for the nodes.
    let base = free_range(3);
    let node_base = free_range(4);
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
    let good = table_where(&rx, Duration::from_secs(60), |table| {
        let rows = node_rows(table);
        let leader = member_rows(table).iter().any(|m| m.2 == "leader");
        leader && rows.len() == 4 && rows.iter().all(|r| r.2 >= 1 && r.1 >= 3 && r.3 == "synced")
    });
    let Some(good) = good else {
        let _ = child.kill();
        bail!("the devnet never showed a leader and 4 synced nodes");
    };
    println!("{}", good.join("\n"));

    // Kill the leader by the PID the table shows, see it DOWN, bring it back by name.
    let (name, pid, _) = member_rows(&good)
        .into_iter()
        .find(|m| m.2 == "leader")
        .context("leader row")?;
    signal(pid.parse()?, "KILL")?;
    let down = table_where(&rx, Duration::from_secs(30), |t| {
        let rows = member_rows(t);
        rows.iter()
            .any(|m| m.0 == name && m.1 == "-" && m.2 == "DOWN")
            && rows.iter().any(|m| m.2 == "leader")
    });
    ensure!(
        down.is_some(),
        "the table never showed {name} down and a new leader"
    );
    let number = name.trim_start_matches("bootstrap-").to_string();
    let out = Command::new(binary())
        .args(["devnet", "--data-dir"])
        .arg(dir.path().join("devnet"))
        .args(["--restart", &number])
        .output()?;
    let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
    ensure!(
        out.status.success() && answer.starts_with(&format!("restarted {name} (pid ")),
        "devnet --restart {number}: {answer} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new_pid = answer
        .rsplit("pid ")
        .next()
        .map(|p| p.trim_end_matches(')').to_string())
        .context("pid in the answer")?;
    ensure!(new_pid != pid, "the restarted member kept pid {pid}");
    let back = table_where(&rx, Duration::from_secs(30), |t| {
        member_rows(t)
            .iter()
            .any(|m| m.0 == name && m.1 == new_pid && m.2 == "follower")
    });
    let Some(back) = back else {
        let _ = child.kill();
        bail!("the table never showed {name} back as a follower with pid {new_pid}");
    };
    println!("{}", back.join("\n"));

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
    Ok(())
}
