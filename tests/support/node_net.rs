//! Test harness for nodes: real `peerchain node` processes on loopback, and [`TestPeer`], a
//! scripted peer that speaks the node protocol from the test (to fetch a node's chain or to
//! misbehave on purpose).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use futures::{SinkExt, StreamExt};
use peerchain::chain::Block;
use peerchain::client::NodeStatusQuery;
use peerchain::node::Handshake;
use peerchain::record::NodeIdentity;
use peerchain::wire::{FrameCodec, Hello, NodeStatus, PeerMessage, Tip};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use super::{binary, free_port, terminate_child, NETWORK};

/// Difficulty of test chains: cheap even in a debug build.
pub const DIFFICULTY: u32 = 10;

struct NodeProc {
    addr: String,
    /// Listen address, data directory and test defaults.
    base_args: Vec<String>,
    /// The caller's arguments (replaceable on restart).
    args: Vec<String>,
    child: Option<Child>,
}

/// A set of node processes, each with a data directory under one temporary directory.
pub struct NodeNet {
    pub dir: tempfile::TempDir,
    nodes: HashMap<String, NodeProc>,
}

impl NodeNet {
    pub fn new() -> Result<Self> {
        Ok(Self {
            dir: tempfile::tempdir()?,
            nodes: HashMap::new(),
        })
    }

    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts node `name` on a fresh loopback port with `args` (plus test defaults:
    /// difficulty, no subnet diversity); returns its address.
    pub fn spawn(&mut self, name: &str, args: &[&str]) -> Result<String> {
        let addr = format!("127.0.0.1:{}", free_port());
        let base_args = vec![
            "node".to_string(),
            "--listen".into(),
            addr.clone(),
            "--data-dir".into(),
            self.data_dir(name).display().to_string(),
            "--difficulty".into(),
            DIFFICULTY.to_string(),
            "--no-diversity".into(),
        ];
        self.nodes.insert(
            name.to_string(),
            NodeProc {
                addr: addr.clone(),
                base_args,
                args: args.iter().map(|s| s.to_string()).collect(),
                child: None,
            },
        );
        self.start(name)?;
        Ok(addr)
    }

    fn start(&mut self, name: &str) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{name}.log")))?;
        let node = self.nodes.get_mut(name).context("no such node")?;
        let child = Command::new(binary())
            .args(&node.base_args)
            .args(&node.args)
            .env("PEERCHAIN_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawning peerchain node")?;
        node.child = Some(child);
        Ok(())
    }

    /// Starts `name` again with its data directory and address; `args` replaces the extra
    /// arguments if given.
    pub fn restart(&mut self, name: &str, args: Option<&[&str]>) -> Result<()> {
        if let Some(args) = args {
            let node = self.nodes.get_mut(name).context("no such node")?;
            node.args = args.iter().map(|s| s.to_string()).collect();
        }
        self.start(name)
    }

    pub fn addr(&self, name: &str) -> String {
        self.nodes
            .get(name)
            .map(|n| n.addr.clone())
            .unwrap_or_default()
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self, name: &str) -> Result<std::process::ExitStatus> {
        let node = self.nodes.get_mut(name).context("no such node")?;
        let Some(c) = node.child.take() else {
            bail!("node {name} not running")
        };
        terminate_child(c, &format!("node {name}"))
    }

    pub async fn status(&self, name: &str) -> Result<NodeStatus> {
        Ok(NodeStatusQuery::fetch(&self.addr(name), Duration::from_secs(3)).await?)
    }

    /// The status, retried for a few seconds while the node starts.
    pub async fn status_eventually(&self, name: &str) -> Result<NodeStatus> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.status(name).await {
                Ok(s) => return Ok(s),
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }
}

impl Drop for NodeNet {
    fn drop(&mut self) {
        for n in self.nodes.values_mut() {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if std::thread::panicking() || std::env::var_os("PEERCHAIN_KEEP_TEST_DIRS").is_some() {
            let tmp = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
            eprintln!("node logs kept in {}", tmp.path().display());
            let _ = tmp.keep();
        }
    }
}

/// A peer driven by the test.
pub struct TestPeer {
    framed: Framed<TcpStream, FrameCodec<PeerMessage, PeerMessage>>,
    /// Messages read while waiting for another one, oldest first.
    backlog: std::collections::VecDeque<PeerMessage>,
    /// The node's Hello.
    pub hello: Hello,
}

impl TestPeer {
    /// Dials `addr` and completes the handshake as `identity`.
    ///
    /// # Errors
    /// Connection errors, or the node refusing the handshake (the reason is in the error).
    pub async fn connect(addr: &str, identity: &NodeIdentity) -> Result<Self> {
        Self::connect_from(addr, identity, None).await
    }

    /// [`TestPeer::connect`] from the source IP `from` (e.g. `127.9.9.1`, to act as a peer
    /// on another host of the loopback /8), or from the default address if `None`.
    ///
    /// # Errors
    /// As [`TestPeer::connect`], or `from` cannot be bound.
    pub async fn connect_from(
        addr: &str,
        identity: &NodeIdentity,
        from: Option<std::net::IpAddr>,
    ) -> Result<Self> {
        let stream = match from {
            None => TcpStream::connect(addr).await?,
            Some(ip) => {
                let target: std::net::SocketAddr = addr.parse()?;
                let socket = tokio::net::TcpSocket::new_v4()?;
                socket.bind(std::net::SocketAddr::new(ip, 0))?;
                socket.connect(target).await?
            }
        };
        let mut framed = Framed::new(stream, FrameCodec::new(2 * 1024 * 1024));
        let genesis = peerchain::chain::genesis(NETWORK);
        let handshake = Handshake::new(NETWORK, genesis.hash, DIFFICULTY);
        let tip = Tip {
            height: 0,
            hash: genesis.hash,
            total_work: genesis.work(),
        };
        framed
            .send(PeerMessage::Hello(handshake.hello(identity, None, tip)))
            .await?;
        let hello = match next(&mut framed).await? {
            PeerMessage::Hello(h) => h,
            other => bail!("expected Hello, got {other:?}"),
        };
        framed
            .send(PeerMessage::HelloProof {
                signature: handshake.prove(identity, &hello),
            })
            .await?;
        match next(&mut framed).await? {
            PeerMessage::HelloProof { signature } => handshake
                .verify_proof(&hello, &signature)
                .map_err(|e| anyhow::anyhow!("node's proof: {e}"))?,
            other => bail!("expected HelloProof, got {other:?}"),
        }
        let mut peer = Self {
            framed,
            hello,
            backlog: Default::default(),
        };
        // The node accepts (or refuses) after checking our proof: a refusal is a Goodbye.
        peer.send(PeerMessage::Ping { nonce: 7 }).await?;
        peer.recv_until(Duration::from_secs(5), |m| {
            matches!(m, PeerMessage::Pong { nonce: 7 }).then_some(())
        })
        .await?;
        Ok(peer)
    }

    pub async fn send(&mut self, msg: PeerMessage) -> Result<()> {
        self.framed.send(msg).await?;
        Ok(())
    }

    /// Reads messages until `f` picks one (looking first at those read earlier and not
    /// picked then); a Goodbye or EOF is an error naming the reason.
    pub async fn recv_until<T>(
        &mut self,
        within: Duration,
        mut f: impl FnMut(&PeerMessage) -> Option<T>,
    ) -> Result<T> {
        for i in 0..self.backlog.len() {
            if let Some(t) = f(&self.backlog[i]) {
                self.backlog.remove(i);
                return Ok(t);
            }
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let msg = tokio::time::timeout_at(deadline, next(&mut self.framed))
                .await
                .context("timed out waiting for a message")??;
            if let Some(t) = f(&msg) {
                return Ok(t);
            }
            if let PeerMessage::Goodbye { reason } = msg {
                bail!("node said goodbye: {reason}");
            }
            if self.backlog.len() < 1000 {
                self.backlog.push_back(msg);
            }
        }
    }

    /// The node's whole best chain, fetched in ranges.
    pub async fn main_chain(&mut self) -> Result<Vec<Block>> {
        let mut chain = vec![peerchain::chain::genesis(NETWORK)];
        loop {
            let last = chain.last().map(|b| b.hash).context("empty chain")?;
            self.send(PeerMessage::GetBlocks {
                locator: vec![last],
                limit: 500,
            })
            .await?;
            let blocks = self
                .recv_until(Duration::from_secs(10), |m| match m {
                    PeerMessage::Blocks { blocks, .. } => Some(blocks.clone()),
                    _ => None,
                })
                .await?;
            if blocks.is_empty() {
                return Ok(chain);
            }
            ensure!(
                blocks[0].prev_hash == last,
                "blocks do not continue the chain"
            );
            chain.extend(blocks);
        }
    }
}

async fn next(
    framed: &mut Framed<TcpStream, FrameCodec<PeerMessage, PeerMessage>>,
) -> Result<PeerMessage> {
    match framed.next().await {
        Some(Ok(m)) => Ok(m),
        Some(Err(e)) => Err(e.into()),
        None => bail!("node closed the connection"),
    }
}
