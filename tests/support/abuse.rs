//! Tools for the abuse tests: clients from chosen loopback source addresses (other hosts, to
//! the member), raw frames and raw legacy lines, and a cluster with the default quotas.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use peerchain::wire::{Envelope, FrameCodec, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::codec::Framed;

use super::Cluster;

/// The client side of the bootstrap protocol.
pub type ClientCodec = FrameCodec<Envelope<Response>, Envelope<Request>>;

/// A cluster of `n` members with the default client quotas (the harness otherwise lifts
/// them) and `extra` flags.
pub async fn cluster_with_quotas(n: u64, extra: &[&str]) -> Result<Cluster> {
    let mut cluster = Cluster::unstarted_n(n, extra)?;
    for m in &mut cluster.members {
        m.client_quotas = true;
    }
    cluster.start_all().await?;
    Ok(cluster)
}

/// Like [`cluster_with_quotas`], with member 1 serving its HTTP side port; returns that
/// port's address too.
pub async fn cluster_with_quotas_and_http(n: u64, extra: &[&str]) -> Result<(Cluster, String)> {
    let mut cluster = Cluster::unstarted_n(n, extra)?;
    let http = format!("127.0.0.1:{}", super::free_port());
    for m in &mut cluster.members {
        m.client_quotas = true;
        if m.id == 1 {
            m.extra_args.extend(["--http".to_string(), http.clone()]);
        }
    }
    cluster.start_all().await?;
    Ok((cluster, http))
}

/// The value of the sample `series` (`name{labels}`) in member `http`'s `/metrics`.
pub async fn metric(http: &str, series: &str) -> Result<f64> {
    let reply = peerchain::http::HttpProbe::get(http, "/metrics", Duration::from_secs(3)).await?;
    reply
        .body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .with_context(|| format!("no sample {series} in {http}/metrics"))
}

/// Connects to `addr` from the loopback address `source` (port chosen by the kernel), as a
/// client on another host would.
pub async fn connect_from(source: IpAddr, addr: &str) -> Result<TcpStream> {
    let to: SocketAddr = addr.parse()?;
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    let stream = tokio::time::timeout(Duration::from_secs(5), socket.connect(to))
        .await
        .context("connect timed out")??;
    Ok(stream)
}

/// `127.9.a.b`.
pub fn source(a: u8, b: u8) -> IpAddr {
    IpAddr::from([127, 9, a, b])
}

/// A framed connection from `source`.
pub async fn framed_from(source: IpAddr, addr: &str) -> Result<Framed<TcpStream, ClientCodec>> {
    Ok(Framed::new(
        connect_from(source, addr).await?,
        ClientCodec::default(),
    ))
}

/// One request, one reply, bounded in time.
pub async fn call(
    framed: &mut Framed<TcpStream, ClientCodec>,
    id: u64,
    body: Request,
) -> Result<Response> {
    framed.send(Envelope { id, body }).await?;
    match tokio::time::timeout(Duration::from_secs(5), framed.next()).await? {
        Some(Ok(env)) => Ok(env.body),
        Some(Err(e)) => bail!("reply: {e}"),
        None => bail!("closed without a reply"),
    }
}

/// Decodes the reply frames in `bytes`.
pub fn decode_all(bytes: &[u8]) -> Result<Vec<Envelope<Response>>> {
    use tokio_util::codec::Decoder;
    let mut codec = ClientCodec::default();
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(env) = codec.decode(&mut buf)? {
        out.push(env);
    }
    Ok(out)
}

/// Log lines of member `id` that contain `needle`.
pub fn log_lines(cluster: &Cluster, id: u64, needle: &str) -> usize {
    plain_log(cluster, id)
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

/// Member `id`'s log without the terminal colour codes tracing puts around fields.
pub fn plain_log(cluster: &Cluster, id: u64) -> String {
    let log = cluster.log(id);
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... m
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Opens up to `n` connections from `from` to `member`, one after another; returns the
/// ones still open after the member had a moment to refuse, and the refusal texts seen.
pub async fn flood(from: IpAddr, member: &str, n: usize) -> Result<(Vec<TcpStream>, Vec<String>)> {
    let mut streams = Vec::new();
    for i in 0..n {
        match connect_from(from, member).await {
            Ok(s) => streams.push(s),
            Err(e) => {
                println!("stopped at {i} connections: {e}");
                break;
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (mut open, mut refusals) = (Vec::new(), Vec::new());
    for mut s in streams {
        let mut buf = Vec::new();
        match tokio::time::timeout(Duration::from_millis(2), s.read_to_end(&mut buf)).await {
            Err(_) => open.push(s),
            Ok(_) => {
                for env in decode_all(&buf).unwrap_or_default() {
                    if let Response::Error(e) = env.body {
                        refusals.push(e.message);
                    }
                }
            }
        }
    }
    Ok((open, refusals))
}

/// Opens connections from `127.9.<subnet>.x` until member 1 refuses one, each holding one
/// byte of a frame; adds them to `held`.
pub async fn fill(held: &mut Vec<TcpStream>, member: &str, subnet: u8) -> Result<()> {
    for host in 1..=10 {
        let (mut open, _) = flood(source(subnet, host), member, 32).await?;
        for s in &mut open {
            s.write_all(&[0]).await?;
        }
        let full = open.len() < 32;
        held.extend(open);
        if full {
            return Ok(());
        }
    }
    anyhow::bail!("member 1 never filled up")
}
