//! Test harness: real `peerchain` processes on loopback, each in its own data directory.
#![allow(dead_code)]

pub mod abuse;
pub mod chaos;
pub mod chaos_report;
pub mod chapter_client;
pub mod clock;
pub mod docker_faults;
pub mod faults;
pub mod history;
pub mod linearizability;
pub mod node_net;
pub mod registrations;
pub mod workload;

use std::collections::BTreeSet;
use std::net::TcpListener as StdListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use peerchain::client::{BootstrapClient, ClientOptions};
use peerchain::raft::ClusterSecret;
use peerchain::wire::ClusterInfo;

pub const SECRET: &str = "test-cluster-secret-0123456789abcdef";

/// Flags that lift the per-source client quotas: the tests, benchmarks and checkers register
/// thousands of records from 127.0.0.1, which the defaults (meant for the Internet) refuse.
/// Tests of the quotas themselves start members with `client_quotas = true` instead.
pub const NO_CLIENT_QUOTAS: &[&str] = peerchain::bootstrap::quota_config::NO_CLIENT_QUOTA_FLAGS;

pub const NETWORK: &str = "peerchain-devnet";

/// The built binary under test.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_peerchain"))
}

/// A free loopback port (bound and released; a race with other processes is unlikely).
pub fn free_port() -> u16 {
    // The kernel may hand out a just-released port again; a port given to one caller of this
    // process (a member, a node, a container's published port) is never given to another.
    loop {
        let port = StdListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("no free port");
        if reserve_port(port) {
            return port;
        }
    }
}

/// Marks `port` as handed out; false if it already was.
fn reserve_port(port: u16) -> bool {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    if given.contains(&port) {
        return false;
    }
    given.push(port);
    true
}

/// One member process.
pub struct MemberProc {
    pub id: u64,
    pub addr: String,
    pub data_dir: PathBuf,
    pub child: Option<Child>,
    pub extra_args: Vec<String>,
    /// Size (as `mount -o size=`, e.g. `"8m"`) of a private tmpfs mounted over `data_dir`
    /// for this process only (see [`Cluster::spawn`]); `None` runs on the test's disk.
    pub tmpfs: Option<String>,
    /// A command the member runs under, e.g. `["faketime", "-f", "+1h"]` for a clock an hour
    /// ahead (the binary and its arguments are appended); empty runs the binary directly.
    pub wrapper: Vec<String>,
    /// Run with the default per-source client quotas instead of [`NO_CLIENT_QUOTAS`].
    pub client_quotas: bool,
}

/// Exit code of the tmpfs wrapper when `mount` fails (so a test can tell it from a crash).
pub const TMPFS_MOUNT_FAILED: i32 = 97;

/// A bootstrap cluster of real processes.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub members: Vec<MemberProc>,
    pub initial: String,
    pub secret_file: PathBuf,
    /// Whether members check signed records by dial-back before serving them (on, as in a
    /// deployment); off for suites whose records are synthetic addresses where nothing
    /// listens and that test something else. Kept across restarts and flag changes.
    pub dial_back: bool,
}

impl Cluster {
    /// Starts `n` members forming one cluster, with `extra` flags for each, and waits for a
    /// leader.
    pub async fn start(n: u64, extra: &[&str]) -> Result<Self> {
        let addrs = (1..=n)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        Self::start_with_addrs(addrs, extra).await
    }

    /// Like [`Self::start`], with dial-back off on every member (`PEERCHAIN_NO_DIAL_BACK`):
    /// signed records where nothing listens are served at once.
    pub async fn start_without_dial_back(n: u64, extra: &[&str]) -> Result<Self> {
        let mut cluster = Self::unstarted_n(n, extra)?;
        cluster.dial_back = false;
        cluster.start_all().await?;
        Ok(cluster)
    }

    /// Like [`Self::start_without_dial_back`], with every member serving its HTTP side port;
    /// returns those ports' addresses too, in member order.
    pub async fn start_without_dial_back_with_http(
        n: u64,
        extra: &[&str],
    ) -> Result<(Self, Vec<String>)> {
        let mut cluster = Self::unstarted_n(n, extra)?;
        cluster.dial_back = false;
        let mut http = Vec::new();
        for m in &mut cluster.members {
            let addr = format!("127.0.0.1:{}", free_port());
            m.extra_args.extend(["--http".to_string(), addr.clone()]);
            http.push(addr);
        }
        cluster.start_all().await?;
        Ok((cluster, http))
    }

    /// Like [`Self::start`], but member `i + 1` listens on `addrs[i]` (e.g. a fixed port).
    pub async fn start_with_addrs(addrs: Vec<String>, extra: &[&str]) -> Result<Self> {
        let mut cluster = Self::unstarted(addrs, extra)?;
        cluster.start_all().await?;
        Ok(cluster)
    }

    /// Lays out a cluster of `n` members without starting them, so a test can change one
    /// member (its flags, a tmpfs) before [`Self::start_all`].
    pub fn unstarted_n(n: u64, extra: &[&str]) -> Result<Self> {
        let addrs = (1..=n)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        Self::unstarted(addrs, extra)
    }

    fn unstarted(addrs: Vec<String>, extra: &[&str]) -> Result<Self> {
        let n = addrs.len() as u64;
        let dir = tempfile::tempdir()?;
        let secret_file = dir.path().join("secret");
        std::fs::write(&secret_file, SECRET)?;
        let members: Vec<MemberProc> = (1..=n)
            .zip(addrs)
            .map(|(id, addr)| MemberProc {
                id,
                addr,
                data_dir: dir.path().join(format!("m{id}")),
                child: None,
                extra_args: extra.iter().map(|s| s.to_string()).collect(),
                tmpfs: None,
                wrapper: Vec::new(),
                client_quotas: false,
            })
            .collect();
        let initial = members
            .iter()
            .map(|m| format!("{}={}", m.id, m.addr))
            .collect::<Vec<_>>()
            .join(",");
        Ok(Self {
            dir,
            members,
            initial,
            secret_file,
            dial_back: true,
        })
    }

    /// Starts every member laid out by [`Self::unstarted_n`] and waits for a leader.
    pub async fn start_all(&mut self) -> Result<()> {
        let ids: Vec<u64> = self.members.iter().map(|m| m.id).collect();
        for id in ids {
            self.spawn(id, false)?;
        }
        self.wait_leader(Duration::from_secs(20)).await?;
        Ok(())
    }

    pub fn member(&self, id: u64) -> &MemberProc {
        self.members
            .iter()
            .find(|m| m.id == id)
            .expect("no such member")
    }

    pub fn member_mut(&mut self, id: u64) -> &mut MemberProc {
        self.members
            .iter_mut()
            .find(|m| m.id == id)
            .expect("no such member")
    }

    pub fn addr(&self, id: u64) -> String {
        self.member(id).addr.clone()
    }

    pub fn addrs(&self) -> Vec<String> {
        self.members.iter().map(|m| m.addr.clone()).collect()
    }

    /// Starts member `id` (again); with `join`, as a new member waiting to be added.
    pub fn spawn(&mut self, id: u64, join: bool) -> Result<()> {
        let initial = self.initial.clone();
        let secret = self.secret_file.clone();
        let log_dir = self.dir.path().to_path_buf();
        let dial_back = self.dial_back;
        let m = self.member_mut(id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_dir.join(format!("m{id}.log")))?;
        let mut cmd = match (&m.tmpfs, m.wrapper.split_first()) {
            (None, None) => Command::new(binary()),
            (None, Some((program, args))) => {
                let mut c = Command::new(program);
                c.args(args).arg(binary());
                c
            }
            (Some(_), Some(_)) => bail!("member {id}: a wrapper and a tmpfs do not combine"),
            (Some(size), None) => {
                // A private mount namespace (as an unprivileged user namespace's root) with a
                // tmpfs of `size` over the data dir; `exec` keeps the member's pid the child's.
                std::fs::create_dir_all(&m.data_dir)?;
                let mut c = Command::new("unshare");
                c.args(["-Urm", "sh", "-c"])
                    .arg(format!(
                        "mount -t tmpfs -o size=\"$1\" tmpfs \"$2\" || exit {TMPFS_MOUNT_FAILED}; \
                         shift 2; exec \"$@\""
                    ))
                    .args(["sh", size.as_str(), &path_str(&m.data_dir)])
                    .arg(binary());
                c
            }
        };
        cmd.arg("bootstrap")
            .args(["--id", &id.to_string(), "--listen", &m.addr])
            .args(["--data-dir", &m.data_dir.display().to_string()])
            .args(["--cluster-secret-file", &secret.display().to_string()]);
        if join {
            cmd.arg("--join");
        } else {
            cmd.args(["--initial-cluster", &initial]);
        }
        if !m.client_quotas {
            cmd.args(NO_CLIENT_QUOTAS);
        }
        cmd.args(&m.extra_args)
            .env("PEERCHAIN_LOG", "info,openraft=warn")
            .env(
                "PEERCHAIN_NO_DIAL_BACK",
                if dial_back { "false" } else { "true" },
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // Its own process group: a wrapper such as `faketime` forks the member rather than
        // exec'ing it, so signalling the child alone would orphan the member (it kept
        // running after the test, two per test run, until this).
        cmd.process_group(0);
        m.child = Some(cmd.spawn().context("spawning peerchain bootstrap")?);
        Ok(())
    }

    /// Stops member `id` cleanly and starts it again under `wrapper` (see
    /// [`MemberProc::wrapper`]; empty for none), with its data and flags kept.
    pub fn restart_wrapped(&mut self, id: u64, wrapper: &[&str]) -> Result<()> {
        if self.is_running(id) {
            self.terminate(id)?;
        }
        self.member_mut(id).wrapper = wrapper.iter().map(|s| s.to_string()).collect();
        self.spawn(id, false)
    }

    /// Adds a new member process (not yet part of the membership) and starts it with --join.
    pub fn spawn_joining(&mut self, id: u64) -> Result<String> {
        let addr = format!("127.0.0.1:{}", free_port());
        self.members.push(MemberProc {
            id,
            addr: addr.clone(),
            data_dir: self.dir.path().join(format!("m{id}")),
            child: None,
            extra_args: self
                .members
                .first()
                .map(|m| m.extra_args.clone())
                .unwrap_or_default(),
            tmpfs: None,
            wrapper: Vec::new(),
            client_quotas: self.members.first().is_some_and(|m| m.client_quotas),
        });
        self.spawn(id, true)?;
        Ok(addr)
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill(&mut self, id: u64) {
        if let Some(c) = self.member_mut(id).child.take() {
            kill_group(c);
        }
    }

    /// SIGKILL to every running member at the same instant (all signals are sent before any
    /// exit is waited for), as a power cut would.
    pub fn kill_all(&mut self) {
        let children: Vec<Child> = self
            .members
            .iter_mut()
            .filter_map(|m| m.child.take())
            .collect();
        for c in &children {
            let _ = signal_group(c.id(), "KILL");
        }
        for c in children {
            kill_group(c);
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self, id: u64) -> Result<std::process::ExitStatus> {
        let Some(c) = self.member_mut(id).child.take() else {
            bail!("member {id} not running")
        };
        let pgid = c.id();
        let status = terminate_child_group(c, &format!("member {id}"))?;
        wait_group_gone(pgid, Duration::from_secs(15))?;
        Ok(status)
    }

    /// SIGSTOP / SIGCONT.
    pub fn pause(&self, id: u64) -> Result<()> {
        let c = self.member(id).child.as_ref().context("not running")?;
        signal_group(c.id(), "STOP")
    }

    pub fn resume(&self, id: u64) -> Result<()> {
        let c = self.member(id).child.as_ref().context("not running")?;
        signal_group(c.id(), "CONT")
    }

    pub fn is_running(&self, id: u64) -> bool {
        self.member(id).child.is_some()
    }

    /// A client that talks only to member `id`.
    pub fn client_of(&self, id: u64) -> BootstrapClient {
        BootstrapClient::new(vec![self.addr(id)], quick_options())
    }

    /// Addresses of the members whose process is running.
    pub fn running_addrs(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| m.child.is_some())
            .map(|m| m.addr.clone())
            .collect()
    }

    /// A client with every running member as a seed.
    pub fn client(&self) -> BootstrapClient {
        let addrs = self.running_addrs();
        BootstrapClient::new(addrs, quick_options())
    }

    /// A client of member `id` only, with the cluster secret (operator requests).
    pub fn admin_client_of(&self, id: u64) -> Result<BootstrapClient> {
        let mut options = quick_options();
        // The file, not SECRET: a test may rotate the secret.
        options.secret = Some(ClusterSecret::from_file(&self.secret_file)?);
        Ok(BootstrapClient::new(vec![self.addr(id)], options))
    }

    /// A client with the cluster secret (for admin requests).
    pub fn admin_client(&self) -> Result<BootstrapClient> {
        let addrs = self.running_addrs();
        let mut options = quick_options();
        options.secret = Some(ClusterSecret::from_file(&self.secret_file)?);
        options.request_timeout = Duration::from_secs(60);
        Ok(BootstrapClient::new(addrs, options))
    }

    /// Waits until some running member reports a leader that is running; returns its id.
    pub async fn wait_leader(&self, within: Duration) -> Result<u64> {
        let deadline = Instant::now() + within;
        loop {
            for m in self.members.iter().filter(|m| m.child.is_some()) {
                if let Ok(info) = self.client_of(m.id).cluster_info().await {
                    if let Some(l) = info.leader_id {
                        if self.members.iter().any(|x| x.id == l && x.child.is_some())
                            && self.confirms(l, l).await
                        {
                            return Ok(l);
                        }
                    }
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "no leader within {within:?}; logs in {}",
                    self.dir.path().display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn confirms(&self, member: u64, leader: u64) -> bool {
        matches!(self.client_of(member).cluster_info().await, Ok(ClusterInfo { leader_id: Some(l), .. }) if l == leader)
    }

    pub async fn info(&self, id: u64) -> Result<ClusterInfo> {
        Ok(self.client_of(id).cluster_info().await?)
    }

    /// Runs `peerchain ctl --bootstrap <all> ARGS` and returns stdout.
    pub fn ctl(&self, args: &[&str]) -> Result<std::process::Output> {
        let out = Command::new(binary())
            .arg("ctl")
            .args(["--bootstrap", &self.addrs().join(",")])
            .args(args)
            .current_dir(self.dir.path())
            // ctl's default key lives in the user's data directory: one per test cluster.
            .env("XDG_DATA_HOME", self.dir.path())
            .output()?;
        Ok(out)
    }

    /// `ctl cluster elect <id>`: member `id` calls elections until it wins (or ctl gives up).
    pub fn elect(&self, id: u64) -> Result<()> {
        let out = self.ctl(&[
            "--cluster-secret-file",
            &path_str(&self.secret_file),
            "cluster",
            "elect",
            &id.to_string(),
        ])?;
        if !out.status.success() {
            bail!(
                "ctl cluster elect {id} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    pub fn log(&self, id: u64) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("m{id}.log"))).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(c) = m.child.take() {
                let _ = signal_group(c.id(), "CONT");
                kill_group(c);
            }
        }
        if std::thread::panicking() || std::env::var_os("PEERCHAIN_KEEP_TEST_DIRS").is_some() {
            let kept = self.dir.path().to_path_buf();
            eprintln!("test cluster logs kept in {}", kept.display());
            let tmp = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
            let _ = tmp.keep();
        }
    }
}

/// SIGTERM to `c`, then waits up to 15 s for it to exit (SIGKILL and an error after that).
pub fn terminate_child(mut c: Child, what: &str) -> Result<std::process::ExitStatus> {
    signal(c.id(), "TERM")?;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = c.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            bail!("{what} did not exit after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGKILL to the process group `c` leads (see [`Cluster::spawn`]), then reaps `c`.
fn kill_group(mut c: Child) {
    let pgid = c.id();
    let _ = signal_group(pgid, "KILL");
    let _ = c.kill();
    let _ = c.wait();
    let _ = wait_group_gone(pgid, Duration::from_secs(5));
}

/// [`terminate_child`] for a child that leads its own process group: SIGTERM goes to the
/// whole group (the member under a wrapper gets it too).
fn terminate_child_group(mut c: Child, what: &str) -> Result<std::process::ExitStatus> {
    signal_group(c.id(), "TERM")?;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = c.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            let _ = signal_group(c.id(), "KILL");
            let _ = c.kill();
            bail!("{what} did not exit after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `sig` to every process of group `pgid`.
pub fn signal_group(pgid: u32, sig: &str) -> Result<()> {
    let status = Command::new("kill")
        .args([&format!("-{sig}"), "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("kill -{sig} -- -{pgid} failed");
    }
    Ok(())
}

/// Waits until no process of group `pgid` is left (a wrapper's child may outlive it by a
/// moment), or fails after `within`.
fn wait_group_gone(pgid: u32, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    while signal_group(pgid, "0").is_ok() {
        if Instant::now() > deadline {
            bail!("process group {pgid} still has members after {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

pub fn signal(pid: u32, sig: &str) -> Result<()> {
    let status = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()?;
    if !status.success() {
        bail!("kill -{sig} {pid} failed");
    }
    Ok(())
}

pub fn quick_options() -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_secs(3),
        retry_for: Duration::from_secs(10),
        secret: None,
    }
}

/// Every address stored on member `id`, read page by page from its local state (stale-OK
/// listing).
pub async fn addresses_on(cluster: &Cluster, id: u64) -> Result<BTreeSet<String>> {
    let entries = cluster.admin_client_of(id)?.list_all(Some(1000)).await?;
    Ok(entries.iter().map(|p| p.address().to_string()).collect())
}

/// `Ok(true)` if member `id` stores every address of `want`; an error naming what it lacks
/// otherwise (for [`eventually`]).
pub async fn holds_all(cluster: &Cluster, id: u64, want: &BTreeSet<String>) -> Result<bool> {
    let have = addresses_on(cluster, id).await?;
    let missing: Vec<_> = want.difference(&have).take(5).collect();
    if !missing.is_empty() {
        bail!(
            "member {id} lacks {} of {} acknowledged (e.g. {missing:?})",
            want.difference(&have).count(),
            want.len()
        );
    }
    Ok(true)
}

/// Polls `f` until it returns `Ok(true)` or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut f: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + within;
    let mut last = String::new();
    loop {
        match f().await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last = e.to_string(),
        }
        if Instant::now() > deadline {
            bail!("{what} did not happen within {within:?} (last error: {last})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// The seed chapter's Go server, client and load generator, built once into target/seed-tools
/// (benchmarks use them as the baseline).
pub fn seed_tools() -> Result<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/seed-tools");
    if !dir.join("seed-load").exists() {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/baseline/build-seed-server.sh"
        );
        if !Command::new("bash")
            .arg(script)
            .arg(&dir)
            .status()?
            .success()
        {
            bail!("building the seed tools failed (needs go: apt-get install -y golang-go)");
        }
    }
    Ok(dir)
}

/// Resident memory of process `pid` in KiB (0 if unknown): the library's own reading.
pub fn rss_kib(pid: u32) -> u64 {
    peerchain::devnet::rss_kib(pid)
}

/// A port with `len` free loopback ports from it on (checked by binding each), for a devnet
/// whose processes take consecutive ports. Drawn below the kernel's ephemeral range (32768
/// up), so that no outgoing connection of this machine takes one of them as its local port
/// between the check and the devnet's bind; no two callers of this process get overlapping
/// ranges.
pub fn free_range(len: u16) -> u16 {
    static GIVEN: std::sync::Mutex<Vec<(u16, u16)>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let base = rand::Rng::gen_range(&mut rand::thread_rng(), 12_000..32_000 - len);
        let overlaps = given.iter().any(|&(b, l)| base < b + l && b < base + len);
        if !overlaps && (base..base + len).all(|p| StdListener::bind(("127.0.0.1", p)).is_ok()) {
            given.push((base, len));
            return base;
        }
    }
}
