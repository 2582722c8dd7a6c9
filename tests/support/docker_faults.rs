//! `DockerFaults`: the [`Faults`] harness over the real deployment, deploy/docker-compose.yml,
//! started as its own compose project (unique name per run, ports on 127.0.0.1 only) and torn
//! down with its volumes on drop, also when the test fails.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{bail, Context, Result};
use peerchain::wire::NodeStatus;

use super::faults::Faults;
use super::{free_port, NETWORK, SECRET};

const MEMBERS: [u64; 3] = [1, 2, 3];
/// The nodes deploy/docker-compose.yml brings along.
const COMPOSE_NODES: [&str; 4] = ["node1", "node2", "node3", "node4"];
/// Proof-of-work difficulty of the chaos deployment's chain.
const DIFFICULTY: u32 = 14;
static RUNS: AtomicUsize = AtomicUsize::new(0);

/// `docker compose` (v2 plugin) if present, else `docker-compose` (v1).
fn compose_program() -> Result<Vec<String>> {
    let v2 = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if v2 {
        return Ok(vec!["docker".into(), "compose".into()]);
    }
    let v1 = Command::new("docker-compose")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if v1 {
        return Ok(vec!["docker-compose".into()]);
    }
    bail!("neither `docker compose` nor `docker-compose` is installed")
}

fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn docker(args: &[&str]) -> Result<String> {
    run(Command::new("docker").args(args))
}

/// The 3 bootstrap members of deploy/docker-compose.yml in a compose project of their own.
pub struct DockerFaults {
    project: String,
    compose: Vec<String>,
    dir: tempfile::TempDir,
    image: String,
    ports: BTreeMap<u64, u16>,
    joined: BTreeSet<u64>,
    running: BTreeSet<u64>,
    containers: BTreeMap<u64, String>,
    node_ports: BTreeMap<String, u16>,
    /// Container id of every node, by name.
    node_containers: BTreeMap<String, String>,
    /// Nodes started with `docker run` (removed at teardown before the network goes).
    extra_nodes: Vec<String>,
}

impl DockerFaults {
    /// Starts the deployment with `image` (already built) and waits for the containers.
    pub fn start(image: &str) -> Result<Self> {
        let compose = compose_program()?;
        docker(&["image", "inspect", image]).with_context(|| {
            format!("image {image} is missing: build it with deploy/build-image.sh")
        })?;
        let dir = tempfile::tempdir()?;
        let secret = dir.path().join("cluster-secret");
        std::fs::write(&secret, SECRET)?;
        // Read by the container's uid 10001 through the bind mount; the temp dir is 0700.
        let mut perms = std::fs::metadata(&secret)?.permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
        std::fs::set_permissions(&secret, perms)?;
        // scripts/test sets the prefix so that its trap can remove whatever a killed run left.
        let prefix = std::env::var("PEERCHAIN_CHAOS_PROJECT_PREFIX")
            .unwrap_or_else(|_| "peerchain-chaos".into());
        let project = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::Relaxed)
        );
        let mut me = Self {
            project,
            compose,
            dir,
            image: image.to_string(),
            ports: MEMBERS.iter().map(|&id| (id, free_port())).collect(),
            joined: BTreeSet::new(),
            running: BTreeSet::new(),
            containers: BTreeMap::new(),
            node_ports: COMPOSE_NODES
                .iter()
                .map(|n| (n.to_string(), free_port()))
                .collect(),
            node_containers: BTreeMap::new(),
            extra_nodes: Vec::new(),
        };
        me.compose_run(&["up", "-d"])?;
        for id in MEMBERS {
            me.refresh_container(id)?;
            me.running.insert(id);
        }
        for name in COMPOSE_NODES {
            let cid = me.compose_run(&["ps", "-q", name])?;
            if cid.is_empty() {
                bail!("no container for {name}");
            }
            me.node_containers.insert(name.to_string(), cid);
        }
        Ok(me)
    }

    fn node_container_name(&self, name: &str) -> String {
        format!("{}-{name}", self.project)
    }

    fn compose_file() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/docker-compose.yml")
    }

    fn compose_run(&self, args: &[&str]) -> Result<String> {
        let mut cmd = Command::new(&self.compose[0]);
        cmd.args(&self.compose[1..])
            .args(["-p", &self.project, "-f"])
            .arg(Self::compose_file())
            .args(args)
            .env("PEERCHAIN_IMAGE", &self.image)
            .env(
                "PEERCHAIN_SECRET_FILE",
                self.dir.path().join("cluster-secret"),
            )
            .env("PEERCHAIN_RESTART", "no")
            // The workload registers records where nothing listens and reads them back
            // through samples: it checks replication, not dial-back.
            .env("PEERCHAIN_NO_DIAL_BACK", "true")
            .env("PEERCHAIN_LOG", "info,openraft=warn");
        for (id, port) in &self.ports {
            cmd.env(format!("PEERCHAIN_PORT_{id}"), port.to_string());
            let join = self.joined.contains(id);
            cmd.env(format!("PEERCHAIN_JOIN_{id}"), join.to_string());
            // Empty: docker picks a free host port, so parallel deployments never collide.
            cmd.env(format!("PEERCHAIN_HTTP_PORT_{id}"), "");
        }
        for (i, name) in COMPOSE_NODES.iter().enumerate() {
            if let Some(port) = self.node_ports.get(*name) {
                cmd.env(format!("PEERCHAIN_NODE_PORT_{}", i + 1), port.to_string());
            }
            cmd.env(format!("PEERCHAIN_NODE_HTTP_PORT_{}", i + 1), "");
        }
        cmd.env("PEERCHAIN_DIFFICULTY", DIFFICULTY.to_string());
        run(&mut cmd)
    }

    fn refresh_container(&mut self, id: u64) -> Result<()> {
        let cid = self.compose_run(&["ps", "-q", &format!("bootstrap{id}")])?;
        if cid.is_empty() {
            bail!("no container for bootstrap{id}");
        }
        self.containers.insert(id, cid);
        Ok(())
    }

    fn container(&self, id: u64) -> Result<&str> {
        self.containers
            .get(&id)
            .map(String::as_str)
            .with_context(|| format!("no container for member {id}"))
    }

    /// The compose project's default network, also while `id` is disconnected.
    fn project_network(&self) -> Result<String> {
        let out = docker(&[
            "network",
            "ls",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.project),
            "--format",
            "{{.Name}}",
        ])?;
        out.lines()
            .next()
            .map(str::to_string)
            .with_context(|| format!("no network for compose project {}", self.project))
    }
}

impl Faults for DockerFaults {
    fn harness(&self) -> &'static str {
        "docker"
    }

    fn ids(&self) -> Vec<u64> {
        MEMBERS.to_vec()
    }

    fn client_addr(&self, id: u64) -> String {
        format!("127.0.0.1:{}", self.ports.get(&id).copied().unwrap_or(0))
    }

    fn member_addr(&self, id: u64) -> String {
        format!("bootstrap{id}:4000")
    }

    fn is_running(&self, id: u64) -> bool {
        self.running.contains(&id)
    }

    fn kill(&mut self, id: u64) -> Result<()> {
        docker(&["kill", "--signal", "KILL", self.container(id)?])?;
        self.running.remove(&id);
        Ok(())
    }

    fn restart(&mut self, id: u64) -> Result<()> {
        docker(&["start", self.container(id)?])?;
        self.running.insert(id);
        Ok(())
    }

    fn pause(&mut self, id: u64) -> Result<()> {
        docker(&["pause", self.container(id)?]).map(drop)
    }

    fn resume(&mut self, id: u64) -> Result<()> {
        docker(&["unpause", self.container(id)?]).map(drop)
    }

    fn disconnect(&mut self, id: u64) -> Result<Option<String>> {
        let net = self.project_network()?;
        docker(&["network", "disconnect", &net, self.container(id)?])?;
        Ok(None)
    }

    fn heal(&mut self, id: u64) -> Result<()> {
        let net = self.project_network()?;
        let alias = format!("bootstrap{id}");
        docker(&[
            "network",
            "connect",
            "--alias",
            &alias,
            &net,
            self.container(id)?,
        ])
        .map(drop)
    }

    fn wipe_and_start_joining(&mut self, id: u64) -> Result<()> {
        let cid = self.container(id)?.to_string();
        let volumes = docker(&[
            "inspect",
            "--format",
            "{{range .Mounts}}{{if eq .Type \"volume\"}}{{.Name}} {{end}}{{end}}",
            &cid,
        ])?;
        docker(&["rm", "--force", &cid])?;
        self.running.remove(&id);
        for v in volumes.split_whitespace() {
            docker(&["volume", "rm", v])?;
        }
        self.joined.insert(id);
        self.compose_run(&["up", "-d", "--no-deps", &format!("bootstrap{id}")])?;
        self.refresh_container(id)?;
        self.running.insert(id);
        Ok(())
    }

    fn diagnostics(&self) -> String {
        format!(
            "compose project {} (logs saved to target/chaos-logs/{}.log at teardown)",
            self.project, self.project
        )
    }

    fn seed_addr(&self, id: u64) -> String {
        format!("bootstrap{id}:4000")
    }

    fn dead_seed(&self) -> String {
        // Resolves to nothing on the compose network: the lookup fails at once.
        "bootstrap9:4000".into()
    }

    fn start_node(&mut self, name: &str, seeds: &[String], mine: bool) -> Result<()> {
        let container = self.node_container_name(name);
        let network = self.project_network()?;
        let advertise = format!("{container}:7000");
        let seeds = seeds.join(",");
        let difficulty = DIFFICULTY.to_string();
        let mut args = vec![
            "run",
            "-d",
            "--name",
            &container,
            "--network",
            &network,
            "--pull",
            "never",
            &self.image,
            "node",
            "--listen",
            "0.0.0.0:7000",
            "--advertise",
            &advertise,
            "--seeds",
            &seeds,
            "--data-dir",
            "/data",
            "--network-id",
            NETWORK,
            "--difficulty",
            &difficulty,
        ];
        if mine {
            args.push("--mine");
        }
        let cid = docker(&args)?;
        self.extra_nodes.push(name.to_string());
        self.node_containers.insert(name.to_string(), cid);
        Ok(())
    }

    fn nodes(&self) -> Vec<String> {
        self.node_containers.keys().cloned().collect()
    }

    fn node_advertised(&self, name: &str) -> String {
        if self.extra_nodes.iter().any(|n| n == name) {
            format!("{}:7000", self.node_container_name(name))
        } else {
            format!("{name}:7000")
        }
    }

    async fn node_status(&self, name: &str) -> Result<NodeStatus> {
        let cid = self
            .node_containers
            .get(name)
            .with_context(|| format!("no node {name}"))?;
        // The image has no shell, but it has the binary: ask from inside the container.
        let out = tokio::process::Command::new("docker")
            .args(["exec", cid, "/peerchain", "ctl", "--json", "status"])
            .args(["--node", "127.0.0.1:7000"])
            .env("RUST_BACKTRACE", "0")
            .output()
            .await?;
        if !out.status.success() {
            bail!(
                "status of {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }
}

impl Drop for DockerFaults {
    fn drop(&mut self) {
        // Nodes started with `docker run` first: the compose network cannot go while they
        // are attached to it. Their logs go with the others.
        let mut extra_logs = String::new();
        for name in std::mem::take(&mut self.extra_nodes) {
            let container = self.node_container_name(&name);
            if let Ok(out) = Command::new("docker").args(["logs", &container]).output() {
                extra_logs.push_str(&format!("== {name}\n"));
                extra_logs.push_str(&String::from_utf8_lossy(&out.stdout));
                extra_logs.push_str(&String::from_utf8_lossy(&out.stderr));
            }
            let _ = docker(&["rm", "--force", &container]);
        }
        for id in MEMBERS {
            if let Ok(cid) = self.container(id) {
                let _ = docker(&["unpause", cid]);
            }
        }
        // The members' logs outlive the containers, for reading after a failed run.
        if let Ok(mut logs) = self.compose_run(&["logs", "--no-color"]) {
            logs.push_str(&extra_logs);
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/chaos-logs");
            let path = dir.join(format!("{}.log", self.project));
            if std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::write(&path, logs))
                .is_ok()
            {
                eprintln!("docker chaos logs saved to {}", path.display());
            }
        }
        if let Err(e) = self.compose_run(&["down", "--volumes", "--remove-orphans", "-t", "2"]) {
            eprintln!("cleaning up compose project {} failed: {e:#}", self.project);
        }
    }
}
