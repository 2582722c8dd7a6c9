//! The devnet's overview page as a person sees it: headless Chromium loads it from a running
//! `peerchain devnet`, runs its JavaScript, and the rendered page must name the leader the
//! cluster reports, every node, and heights between what the nodes reported before and after
//! the page was drawn; after the leader is killed, the page must show it down.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use peerchain::client::{BootstrapClient, NodeStatusQuery};
use peerchain::devnet::network_overview::POLL_INTERVAL;
use peerchain::http::HttpProbe;
use support::{binary, free_range, quick_options, signal};

const NODES: u64 = 4;

/// The Chromium binary Debian installs (`apt-get install -y chromium`); `scripts/test`
/// installs it up front, so a missing one is an error here, never a skip.
fn chromium() -> Result<String> {
    for name in ["chromium", "chromium-browser"] {
        if Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Ok(name.to_string());
        }
    }
    bail!("chromium is not installed: apt-get install -y chromium (scripts/test does this)")
}

/// The page's DOM after its scripts ran (`--virtual-time-budget` lets its timers and fetches
/// complete), cut before the `<script>` element so that only rendered markup is searched.
fn rendered_dom(chromium: &str, url: &str) -> Result<String> {
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=4000",
            "--dump-dom",
            url,
        ])
        .stderr(Stdio::null())
        .output()
        .context("running chromium")?;
    ensure!(out.status.success(), "chromium failed: {:?}", out.status);
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    Ok(dom.split("<script").next().unwrap_or_default().to_string())
}

/// The text after `marker` up to the next `"` or `<`.
fn after<'a>(dom: &'a str, marker: &str) -> Option<&'a str> {
    let rest = &dom[dom.find(marker)? + marker.len()..];
    Some(&rest[..rest.find(['"', '<'])?])
}

struct Devnet(Child);

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = signal(self.0.id(), "INT");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Pid of the devnet's member listening on `addr` (from /proc: the devnet's own child).
fn member_pid(addr: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
        let listens = args
            .windows(2)
            .any(|w| w[0] == b"--listen" && w[1] == addr.as_bytes());
        (args.iter().any(|a| *a == b"bootstrap") && listens).then_some(pid)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_page_shows_the_leader_every_node_and_heights_in_chromium() -> Result<()> {
    let chromium = chromium()?;
    let dir = tempfile::tempdir()?;
    let (base, node_base, http_base) = (free_range(3), free_range(NODES as u16), free_range(16));
    let child = Command::new(binary())
        .args(["devnet", "--data-dir"])
        .arg(dir.path().join("devnet"))
        .args([
            "--base-port",
            &base.to_string(),
            "--node-base-port",
            &node_base.to_string(),
        ])
        .args(["--http-base-port", &http_base.to_string()])
        .args(["--difficulty", "10", "--block-interval", "0.5"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let _devnet = Devnet(child);
    let overview = format!("127.0.0.1:{http_base}");
    let url = format!("http://{overview}/");
    let members: Vec<String> = (0..3).map(|i| format!("127.0.0.1:{}", base + i)).collect();
    let nodes: Vec<String> = (0..NODES as u16)
        .map(|i| format!("127.0.0.1:{}", node_base + i))
        .collect();

    // Wait until the overview's own poll sees a leader and every node at height >= 2.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = HttpProbe::get(&overview, "/api/network", Duration::from_secs(2)).await {
            let s = &r.json()["snapshot"];
            let nodes_up = s["nodes"].as_array().is_some_and(|n| {
                n.len() == NODES as usize
                    && n.iter()
                        .all(|x| x["up"] == true && x["height"].as_u64() >= Some(2))
            });
            if s["leader"].is_u64() && nodes_up {
                break;
            }
        }
        ensure!(
            Instant::now() < deadline,
            "the devnet never had a leader and {NODES} nodes at height 2"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let mut client = BootstrapClient::new(members.clone(), quick_options());
    let leader_before = client.cluster_info().await?.leader_id.context("a leader")?;
    let mut low = Vec::new();
    for n in &nodes {
        low.push(
            NodeStatusQuery::fetch(n, Duration::from_secs(2))
                .await?
                .tip
                .height,
        );
    }
    // The page shows what the devnet's last poll of the nodes saw (one every POLL_INTERVAL).
    // Two intervals on, a whole poll has begun after `low` was read, so what it shows is
    // at least `low` even if node 1 mined meanwhile (it did: a poll from before `low`
    // showed a height below it).
    tokio::time::sleep(2 * POLL_INTERVAL + Duration::from_millis(200)).await;
    let started = Instant::now();
    let dom = rendered_dom(&chromium, &url)?;
    let render = started.elapsed();
    let leader_after = client.cluster_info().await?.leader_id.context("a leader")?;
    let mut high = Vec::new();
    for n in &nodes {
        high.push(
            NodeStatusQuery::fetch(n, Duration::from_secs(2))
                .await?
                .tip
                .height,
        );
    }
    ensure!(
        leader_before == leader_after,
        "the leader changed during the test; rerun"
    );
    let shown = after(&dom, "id=\"leader\">").context("no leader on the page")?;
    ensure!(
        shown == leader_before.to_string(),
        "page shows leader {shown}, cluster says {leader_before}"
    );
    let mut heights = Vec::new();
    for i in 1..=NODES {
        let row = format!("data-node=\"node-{i}\" data-height=\"");
        let h: u64 = after(&dom, &row)
            .with_context(|| format!("node-{i} not on the page"))?
            .parse()?;
        let k = (i - 1) as usize;
        ensure!(
            (low[k]..=high[k]).contains(&h),
            "node-{i} shown at {h}, reported {}..{}",
            low[k],
            high[k]
        );
        heights.push(h);
    }

    // Kill the leader: the page shows it down, and the event, at its next redraw.
    let victim = &members[(leader_before - 1) as usize];
    let pid = member_pid(victim).context("the leader's process")?;
    signal(pid, "KILL")?;
    let killed = Instant::now();
    let down = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let dom = rendered_dom(&chromium, &url)?;
        let role = after(
            &dom,
            &format!("data-member=\"{leader_before}\" data-role=\""),
        )
        .unwrap_or("");
        if role == "down" && dom.contains(&format!("member {leader_before} is DOWN")) {
            break killed.elapsed();
        }
        ensure!(
            killed.elapsed() < Duration::from_secs(15),
            "page never showed member {leader_before} down"
        );
    };
    println!(
        "chromium rendered leader {leader_before} and heights {heights:?} (nodes reported {low:?}..{high:?}) in \
         {:.1} s; the killed leader showed as DOWN {:.1} s after SIGKILL",
        render.as_secs_f64(),
        down.as_secs_f64()
    );
    Ok(())
}
