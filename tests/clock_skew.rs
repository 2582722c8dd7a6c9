//! Clock skew: a member whose wall clock is an hour off (a real process under `faketime`)
//! leads the cluster, and still no record dies early, no valid registration is refused, and
//! records expire on time per the honest majority's clocks.
//!
//! Needs `faketime` (libfaketime on the dynamically linked debug build):
//! `apt-get install -y faketime`. Without it these tests fail; they never skip.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use peerchain::record::{NodeIdentity, PeerRecord};
use peerchain::wire::ClusterInfo;
use support::clock::{faketime, libfaketime, plain};
use support::{addresses_on, eventually, holds_all, Cluster, NETWORK};

const HOUR_MS: u64 = 3_600_000;
/// Records registered with a one-hour TTL before the skewed member leads.
const LONG_LIVED: usize = 50;
/// How far a measured offset may be from the faked one (restart, sampling, RTT).
const OFFSET_TOLERANCE_MS: i64 = 5_000;
/// The members' expiry interval (the default): several of them pass while the skewed leader
/// leads.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(1);
/// How late after its expiry a record may still be listed by a member: the expiry sweep
/// (1 s), a Raft round and the poll (0.2 s), with room for a busy machine.
const MAX_EXPIRY_LATENESS: Duration = Duration::from_secs(5);

fn record(ttl_ms: u64, addr: &str) -> PeerRecord {
    let now = peerchain::unix_ms();
    NodeIdentity::generate().sign_record(NETWORK, addr, now, now + ttl_ms)
}

/// Registers `n` records of `ttl_ms` through member `via` at addresses `127.9.<tag>.<i>`.
async fn register(
    cluster: &Cluster,
    via: u64,
    tag: u8,
    n: usize,
    ttl_ms: u64,
) -> Result<BTreeSet<String>> {
    let mut client = cluster.client_of(via);
    let mut addrs = BTreeSet::new();
    for i in 0..n {
        let addr = format!("127.9.{tag}.{}:7000", i + 1);
        client
            .register(record(ttl_ms, &addr))
            .await
            .with_context(|| format!("registering {addr} through member {via}"))?;
        addrs.insert(addr);
    }
    Ok(addrs)
}

/// Waits until every member holds every address of `want`.
async fn all_hold(cluster: &Cluster, want: &BTreeSet<String>) -> Result<()> {
    for id in 1..=3 {
        eventually(Duration::from_secs(10), "replication", || {
            holds_all(cluster, id, want)
        })
        .await?;
    }
    Ok(())
}

/// `ctl cluster elect <id>`, then checks that member 1 sees `id` lead; returns the term.
async fn elect(cluster: &Cluster, id: u64) -> Result<u64> {
    cluster.elect(id)?;
    // The target leads when ctl returns; member 1 hears of it with the next heartbeat.
    eventually(
        Duration::from_secs(5),
        "member 1 sees the new leader",
        || async { Ok(cluster.info(1).await?.leader_id == Some(id)) },
    )
    .await?;
    Ok(cluster.info(1).await?.term)
}

/// Makes member `first` lead, restarts member 3 under faketime `offset` and makes it the
/// leader (again); returns the term it leads. With `first == 3` this is the issue's
/// scenario: member 3 resumes leading at once on restart, before it has read any clock.
async fn skewed_leader(
    cluster: &mut Cluster,
    first: u64,
    offset: &str,
    want: &BTreeSet<String>,
) -> Result<u64> {
    elect(cluster, first).await?;
    cluster.restart_wrapped(3, &faketime(offset))?;
    eventually(Duration::from_secs(20), "member 3 caught up", || {
        holds_all(cluster, 3, want)
    })
    .await?;
    elect(cluster, 3).await
}

/// Member `of`'s clock minus cluster time, as member `by` measures it.
fn skew_of(info: &ClusterInfo, of: u64) -> Result<i64> {
    info.members
        .iter()
        .find(|m| m.id == of)
        .and_then(|m| m.clock_skew_ms)
        .with_context(|| format!("member {} reports no skew for member {of}", info.member_id))
}

/// Checks that every member measures member 3 `expected_ms` off cluster time and members 1
/// and 2 on it; returns what member 1 measured.
async fn check_measured_skew(cluster: &Cluster, expected_ms: i64) -> Result<i64> {
    let mut by_1 = 0;
    for by in 1..=3 {
        let info = cluster.info(by).await?;
        let skew3 = skew_of(&info, 3)?;
        ensure!(
            (skew3 - expected_ms).abs() < OFFSET_TOLERANCE_MS,
            "member {by} measures member 3 at {skew3} ms, expected about {expected_ms}"
        );
        for honest in 1..=2 {
            let s = skew_of(&info, honest)?;
            ensure!(
                s.abs() < OFFSET_TOLERANCE_MS,
                "member {by} measures member {honest} at {s} ms"
            );
        }
        let cluster_time = info.cluster_time_ms.context("no cluster time")?;
        let off = peerchain::unix_ms().abs_diff(cluster_time);
        ensure!(
            off < 5_000,
            "member {by}'s cluster time is {off} ms off the test's clock"
        );
        if by == 1 {
            by_1 = skew3;
        }
    }
    Ok(by_1)
}

/// `ctl cluster` (text) shows member 3's skew, in seconds, within 5 s of `expected_s`.
fn check_ctl_shows_skew(cluster: &Cluster, expected_s: f64) -> Result<String> {
    let out = cluster.ctl(&["cluster"])?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    ensure!(out.status.success(), "ctl cluster failed: {text}");
    let row = text
        .lines()
        .find(|l| l.starts_with("3 "))
        .with_context(|| format!("no row for member 3 in:\n{text}"))?;
    // ID ADDRESS ROLE [LEADER] OFFSET_S SKEW_S RTT_MS: the skew is the second-to-last column.
    let cols: Vec<&str> = row.split_whitespace().collect();
    let skew: f64 = cols
        .get(cols.len().saturating_sub(2))
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("no skew in row {row:?}"))?;
    ensure!(
        (skew - expected_s).abs() < 5.0,
        "ctl cluster shows {skew} s: {row}"
    );
    Ok(row.to_string())
}

/// The WARN member 3 logged about its own clock.
fn skew_warning(cluster: &Cluster, direction: &str) -> Result<String> {
    let log = plain(&cluster.log(3));
    log.lines()
        .find(|l| {
            l.contains("WARN")
                && l.contains("clock of member 3 is")
                && l.contains(direction)
                && l.contains("this_member=true")
        })
        .map(str::to_string)
        .with_context(|| format!("member 3 logged no WARN about its clock being {direction}"))
}

/// Checks that every member still lists all of `gone` a second before `expires`, then waits
/// (bounded) until none lists any; returns how long after `expires` the last disappeared.
async fn wait_expired(
    cluster: &Cluster,
    gone: &BTreeSet<String>,
    expires: Instant,
) -> Result<Duration> {
    let before = expires - Duration::from_secs(1);
    tokio::time::sleep(before.saturating_duration_since(Instant::now())).await;
    ensure!(
        Instant::now() < expires,
        "registering took too long to check for early expiry"
    );
    for id in 1..=3 {
        holds_all(cluster, id, gone)
            .await
            .context("a record died early")?;
    }
    let deadline = expires + MAX_EXPIRY_LATENESS;
    loop {
        let mut left = 0;
        for id in 1..=3 {
            left += addresses_on(cluster, id).await?.intersection(gone).count();
        }
        if left == 0 {
            return Ok(Instant::now().saturating_duration_since(expires));
        }
        if Instant::now() > deadline {
            bail!("{left} short-lived records still listed {MAX_EXPIRY_LATENESS:?} after expiry");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The leader stayed member 3 in term `term` throughout.
async fn still_leads(cluster: &Cluster, term: u64) -> Result<()> {
    for by in 1..=3 {
        let info = cluster.info(by).await?;
        ensure!(
            info.leader_id == Some(3) && info.term == term,
            "member {by} sees leader {:?} in term {} (member 3 led term {term})",
            info.leader_id,
            info.term
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_an_hour_ahead_expires_nothing_early_and_refuses_no_valid_registration(
) -> Result<()> {
    let mut cluster = Cluster::start(3, &[]).await?;
    let long = register(&cluster, 1, 1, LONG_LIVED, HOUR_MS).await?;
    all_hold(&cluster, &long).await?;

    let term = skewed_leader(&mut cluster, 3, "+1h", &long).await?;
    // Its clock is past every record's expiry: a leader trusting it would empty the registry.
    tokio::time::sleep(EXPIRY_INTERVAL * 6).await;
    still_leads(&cluster, term).await?;
    for id in 1..=3 {
        let have = addresses_on(&cluster, id).await?;
        let kept = have.intersection(&long).count();
        ensure!(
            kept == LONG_LIVED,
            "member {id} holds {kept} of {LONG_LIVED} one-hour records"
        );
    }

    // A fresh one-hour registration through the skewed leader, checked and stamped there.
    let fresh = register(&cluster, 3, 2, 1, HOUR_MS).await?;
    all_hold(&cluster, &fresh).await?;

    let measured = check_measured_skew(&cluster, HOUR_MS as i64).await?;
    let row = check_ctl_shows_skew(&cluster, 3600.0)?;
    let warning = skew_warning(&cluster, "ahead of")?;
    still_leads(&cluster, term).await?;
    // Whether member 3 resumed leading on restart before its first clock readings (timing;
    // reported, not required): then it held expiry rather than trust its own clock.
    let held = plain(&cluster.log(3))
        .lines()
        .find(|l| l.contains("expiry held"))
        .map_or(
            "no (another member led while it restarted)".to_string(),
            str::to_string,
        );
    eprintln!(
        "leader +1h: {LONG_LIVED}/{LONG_LIVED} records kept on 3 members after {:?}; member 1 \
         measured member 3 at {measured} ms; ctl: {row}\nlog: {warning}\nheld at restart: {held}",
        EXPIRY_INTERVAL * 6
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_an_hour_behind_still_expires_records_on_time() -> Result<()> {
    let mut cluster = Cluster::start(3, &[]).await?;
    let long = register(&cluster, 1, 1, LONG_LIVED, HOUR_MS).await?;
    all_hold(&cluster, &long).await?;

    let term = skewed_leader(&mut cluster, 1, "-1h", &long).await?;
    // Short-lived records through the skewed leader: by its clock they have an hour to live.
    let ttl = Duration::from_secs(4);
    let registered = Instant::now();
    let short = register(&cluster, 3, 2, 10, ttl.as_millis() as u64).await?;
    let expires = registered + ttl;
    let late = wait_expired(&cluster, &short, expires).await?;
    still_leads(&cluster, term).await?;

    for id in 1..=3 {
        let kept = addresses_on(&cluster, id)
            .await?
            .intersection(&long)
            .count();
        ensure!(
            kept == LONG_LIVED,
            "member {id} holds {kept} of {LONG_LIVED} one-hour records"
        );
    }
    let fresh = register(&cluster, 3, 3, 1, HOUR_MS).await?;
    all_hold(&cluster, &fresh).await?;

    let measured = check_measured_skew(&cluster, -(HOUR_MS as i64)).await?;
    let row = check_ctl_shows_skew(&cluster, -3600.0)?;
    let warning = skew_warning(&cluster, "behind")?;
    eprintln!(
        "leader -1h: 10 records of {ttl:?} gone from every member {late:?} after expiry; \
         member 1 measured member 3 at {measured} ms; ctl: {row}\nlog: {warning}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_expire_on_time_when_clocks_agree() -> Result<()> {
    let cluster = Cluster::start(3, &[]).await?;
    eventually(
        Duration::from_secs(10),
        "cluster time on every member",
        || async {
            for id in 1..=3 {
                if cluster.info(id).await?.cluster_time_ms.is_none() {
                    return Ok(false);
                }
            }
            Ok(true)
        },
    )
    .await?;
    let ttl = Duration::from_secs(3);
    let registered = Instant::now();
    let short = register(&cluster, 1, 1, 10, ttl.as_millis() as u64).await?;
    let late = wait_expired(&cluster, &short, registered + ttl).await?;

    let mut worst = 0i64;
    for by in 1..=3 {
        let info = cluster.info(by).await?;
        for of in 1..=3 {
            worst = worst.max(skew_of(&info, of)?.abs());
        }
    }
    ensure!(worst < 1_000, "agreeing clocks measured {worst} ms apart");
    for id in 1..=3 {
        ensure!(
            !cluster.log(id).contains("cluster time (the median"),
            "member {id} warned about a clock although none is skewed"
        );
    }
    eprintln!(
        "clocks agree: 10 records of {ttl:?} gone {late:?} after expiry; worst skew {worst} ms"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_clock_jumps_an_hour_while_it_leads_expires_nothing() -> Result<()> {
    let mut cluster = Cluster::start(3, &[]).await?;
    let long = register(&cluster, 1, 1, LONG_LIVED, HOUR_MS).await?;
    all_hold(&cluster, &long).await?;
    // Member 3's clock offset is read from a file (re-read every second), so it can jump
    // while the member runs and leads with readings of the others already taken.
    let offset_file = cluster.dir.path().join("m3-clock-offset");
    std::fs::write(&offset_file, "+0\n")?;
    let preload = format!("LD_PRELOAD={}", libfaketime());
    let file_env = format!("FAKETIME_TIMESTAMP_FILE={}", offset_file.display());
    let wrapper = [
        "env",
        preload.as_str(),
        file_env.as_str(),
        "FAKETIME_CACHE_DURATION=1",
        "FAKETIME_DONT_FAKE_MONOTONIC=1",
    ];
    cluster.restart_wrapped(3, &wrapper)?;
    eventually(Duration::from_secs(20), "member 3 caught up", || {
        holds_all(&cluster, 3, &long)
    })
    .await?;
    let term = elect(&cluster, 3).await?;
    eventually(
        Duration::from_secs(10),
        "member 3 knows cluster time",
        || async { Ok(cluster.info(3).await?.cluster_time_ms.is_some()) },
    )
    .await?;

    std::fs::write(&offset_file, "+1h\n")?;
    tokio::time::sleep(EXPIRY_INTERVAL * 6).await;
    still_leads(&cluster, term).await?;
    for id in 1..=3 {
        let kept = addresses_on(&cluster, id)
            .await?
            .intersection(&long)
            .count();
        ensure!(
            kept == LONG_LIVED,
            "member {id} holds {kept} of {LONG_LIVED} one-hour records"
        );
    }
    let fresh = register(&cluster, 3, 2, 1, HOUR_MS).await?;
    all_hold(&cluster, &fresh).await?;
    let measured = check_measured_skew(&cluster, HOUR_MS as i64).await?;
    let warning = skew_warning(&cluster, "ahead of")?;
    eprintln!(
        "clock jumped +1h on the leader: {LONG_LIVED}/{LONG_LIVED} records kept after {:?}; \
         member 1 measured member 3 at {measured} ms\nlog: {warning}",
        EXPIRY_INTERVAL * 6
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_probes_and_elections_need_the_cluster_secret() -> Result<()> {
    use peerchain::client::{ClientError, FrameConnection};
    use peerchain::wire::{ErrorCode, Request};
    let cluster = Cluster::start(3, &[]).await?;
    let leader = cluster.wait_leader(Duration::from_secs(10)).await?;
    let term = cluster.info(leader).await?.term;
    let other = if leader == 1 { 2 } else { 1 };
    // A stranger can neither feed nor read a member's clock, nor move leadership.
    for request in [Request::ClockProbe, Request::Elect { member_id: other }] {
        let what = format!("{request:?}");
        let mut conn =
            FrameConnection::connect(&cluster.addr(other), Duration::from_secs(1)).await?;
        let refused = conn.call(request, Duration::from_secs(2)).await;
        let code = match refused {
            Err(ClientError::Server(reply)) => Some(reply.code),
            _ => None,
        };
        ensure!(code == Some(ErrorCode::Unauthenticated), "{what}: {code:?}");
    }
    let info = cluster.info(other).await?;
    ensure!(
        info.leader_id == Some(leader) && info.term == term,
        "an unauthenticated elect moved leadership"
    );
    // With the secret, an id outside the membership is refused by name.
    let mut admin = cluster.admin_client_of(other)?;
    let unknown = admin.admin(Request::Elect { member_id: 42 }).await;
    match unknown {
        Err(ClientError::Server(reply)) if reply.code == ErrorCode::BadRequest => {
            ensure!(reply.message.contains("no member 42"), "{}", reply.message);
        }
        other => bail!("elect 42 answered {other:?}"),
    }
    Ok(())
}
