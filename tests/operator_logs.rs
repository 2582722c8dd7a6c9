//! What an operator reads in a member's log: exactly one INFO line per leader change and per
//! membership change, naming what changed; no colour codes in a log file; `--log-format json`
//! gives one JSON object a line. Real processes, their stderr going to files as in the devnet.

mod support;

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use support::{eventually, Cluster};

/// The log lines of member `id` that contain `needle`.
fn lines_with(cluster: &Cluster, id: u64, needle: &str) -> Vec<String> {
    cluster
        .log(id)
        .lines()
        .filter(|l| l.contains(needle))
        .map(String::from)
        .collect()
}

/// `(leader, term)` of each "leader changed" line of member `id`, in order.
fn leader_changes(cluster: &Cluster, id: u64) -> Result<Vec<(u64, u64)>> {
    let field = |line: &str, name: &str| -> Result<u64> {
        let start = line
            .find(&format!(" {name}="))
            .with_context(|| format!("no {name}= in {line}"))?
            + name.len()
            + 2;
        let digits: String = line[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        Ok(digits.parse()?)
    };
    lines_with(cluster, id, "leader changed")
        .iter()
        .map(|l| Ok((field(l, "leader")?, field(l, "term")?)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_and_membership_changes_are_logged_once_each() -> Result<()> {
    let mut cluster = Cluster::start(3, &[]).await?;
    let first = cluster.wait_leader(Duration::from_secs(20)).await?;
    let survivors: Vec<u64> = (1..=3).filter(|&id| id != first).collect();
    // Every member logs the first leader it learns, once.
    for id in 1..=3 {
        eventually(
            Duration::from_secs(10),
            &format!("member {id} logging the first leader"),
            || async { Ok(!lines_with(&cluster, id, "leader changed").is_empty()) },
        )
        .await?;
    }
    cluster.kill(first);
    let second = cluster.wait_leader(Duration::from_secs(20)).await?;
    ensure!(
        second != first,
        "the killed member {first} is still named leader"
    );
    for &id in &survivors {
        eventually(
            Duration::from_secs(10),
            &format!("member {id} logging the new leader {second}"),
            || async {
                Ok(lines_with(&cluster, id, "leader changed")
                    .iter()
                    .any(|l| l.contains(&format!("leader={second}"))))
            },
        )
        .await?;
    }
    // Give a duplicate line time to appear, then check: one line per change, none repeated.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for &id in &survivors {
        let changes = leader_changes(&cluster, id)?;
        let last = changes.last().context("no leader change logged")?;
        ensure!(
            last.0 == second,
            "member {id}'s last leader line is not leader {second}: {changes:?}"
        );
        // openraft's default leader ids are (term, member): two leaders may share a term,
        // but each (term, leader) is newer than the last, so the pairs rise line by line.
        ensure!(
            changes
                .windows(2)
                .all(|w| (w[0].1, w[0].0) < (w[1].1, w[1].0)),
            "member {id} logged a leader change twice ((term, leader) must rise line by line): \
             {changes:?}"
        );
        ensure!(
            changes.iter().any(|c| c.0 == first),
            "member {id} never logged the first leader {first}: {changes:?}"
        );
    }

    // A membership change: a learner joins; every running member logs it once.
    cluster.spawn_joining(4)?;
    let addr = cluster.addr(4);
    let secret = support::path_str(&cluster.secret_file);
    let out = cluster.ctl(&[
        "--cluster-secret-file",
        &secret,
        "cluster",
        "add-learner",
        "4",
        &addr,
    ])?;
    ensure!(
        out.status.success(),
        "add-learner failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for &id in &survivors {
        eventually(
            Duration::from_secs(10),
            &format!("member {id} logging the new learner"),
            || async {
                Ok(lines_with(&cluster, id, "membership changed")
                    .iter()
                    .any(|l| l.contains("learners={4}")))
            },
        )
        .await?;
        let n = lines_with(&cluster, id, "membership changed")
            .iter()
            .filter(|l| l.contains("learners={4}"))
            .count();
        ensure!(n == 1, "member {id} logged the new learner {n} times");
    }

    for id in 1..=4 {
        let log = cluster.log(id);
        ensure!(
            !log.contains('\x1b'),
            "member {id}'s log file holds ANSI escape codes"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_format_gives_one_object_a_line() -> Result<()> {
    let cluster = Cluster::start(1, &["--log-format", "json"]).await?;
    eventually(Duration::from_secs(10), "a leader line", || async {
        Ok(!lines_with(&cluster, 1, "leader changed").is_empty())
    })
    .await?;
    let log = cluster.log(1);
    let mut count = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("not JSON: {line}"))?;
        ensure!(
            v.get("level").is_some() && v.get("fields").is_some(),
            "no level or fields: {line}"
        );
        count += 1;
    }
    ensure!(count >= 2, "only {count} log lines");
    Ok(())
}

/// A member whose port is taken exits with one line naming the address and the cause, and
/// no stack trace even where `RUST_BACKTRACE` is set (as on many CI machines).
#[test]
fn a_member_that_cannot_start_says_why_in_one_line() -> Result<()> {
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = taken.local_addr()?.to_string();
    let dir = tempfile::tempdir()?;
    let secret = dir.path().join("secret");
    std::fs::write(&secret, support::SECRET)?;
    let out = std::process::Command::new(support::binary())
        .args(["bootstrap", "--id", "1", "--listen", &addr])
        .args(["--initial-cluster", &format!("1={addr}")])
        .arg("--data-dir")
        .arg(dir.path().join("m1"))
        .arg("--cluster-secret-file")
        .arg(&secret)
        .env("RUST_BACKTRACE", "1")
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success(),
        "it started on a taken port: {stderr}"
    );
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("Error: "))
        .collect();
    ensure!(errors.len() == 1, "{stderr}");
    ensure!(
        errors[0].contains(&addr) && errors[0].to_lowercase().contains("in use"),
        "{stderr}"
    );
    ensure!(
        !stderr.contains("backtrace") && !stderr.contains("Caused by"),
        "{stderr}"
    );
    Ok(())
}
