//! The seed chapter's `client.go`, as a test client: either the chapter's own Go program
//! (built by `../shared/baseline/build-seed-server.sh` when that directory sits beside the
//! repository) or [`ChapterClient::Ours`], a Rust client that puts the same bytes on the wire.
//!
//! `client.go` dials `localhost:4000` (10 s timeout), writes `json.Marshal(Request{Type,
//! Payload})` plus `\n` through a `bufio.Writer`, reads one line with `ReadString('\n')` and
//! prints `Response dari server: <line with surrounding white space trimmed>`. Go's
//! `json.Marshal` writes the fields in declaration order (`type`, then `payload`) and escapes
//! `<`, `>`, `&`, U+2028 and U+2029 besides what JSON requires; [`go_json_string`] does the
//! same, so that a fresh clone without `../shared` (and without Go) still tests the chapter's
//! protocol byte for byte.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// What `client.go` prints before the server's reply.
pub const PREFIX: &str = "Response dari server: ";
/// The address `client.go` hard-codes.
pub const CHAPTER_ADDR: &str = "localhost:4000";
/// `client.go`'s dial timeout.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one run of either client may take before the test calls it hung.
const RUN_TIMEOUT: Duration = Duration::from_secs(20);

/// The build script of the seed's Go tools, present only when `../shared` sits beside the
/// repository.
pub fn seed_build_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/baseline/build-seed-server.sh")
}

/// Which program plays the chapter's client.
pub enum ChapterClient {
    /// The chapter's own `client.go`, built unchanged.
    Go(PathBuf),
    /// Our byte-for-byte Rust stand-in.
    Ours,
}

impl ChapterClient {
    /// The chapter's `client.go` when `../shared` is present (built into `out`; Go is then
    /// required), otherwise our own client. Prints one line saying which.
    /// `PEERCHAIN_CHAPTER_CLIENT=ours` picks our client even where `../shared` is present.
    pub fn pick(out: &Path) -> Result<Self> {
        let script = seed_build_script();
        if std::env::var("PEERCHAIN_CHAPTER_CLIENT").as_deref() == Ok("ours") {
            eprintln!("chapter client: ours (byte-for-byte JSON lines in Rust), as PEERCHAIN_CHAPTER_CLIENT=ours asks");
            return Ok(Self::Ours);
        }
        if !script.exists() {
            eprintln!(
                "chapter client: ours (byte-for-byte JSON lines in Rust); {} is absent, so the \
                 chapter's own client.go is not used",
                script.display()
            );
            return Ok(Self::Ours);
        }
        let client = build_client_go(&script, out)?;
        eprintln!("chapter client: the chapter's own client.go, built from ../shared");
        Ok(Self::Go(client))
    }

    /// Runs one command (`register ADDR`, `get_peers`, `remove ADDR`) and returns what the
    /// client printed after [`PREFIX`].
    pub async fn run(&self, args: &[&str]) -> Result<String> {
        let started = Instant::now();
        let printed = match self {
            Self::Go(bin) => run_go(bin, args).await?,
            Self::Ours => tokio::time::timeout(RUN_TIMEOUT, run_ours(args))
                .await
                .with_context(|| format!("chapter client {args:?} hung"))??,
        };
        eprintln!(
            "chapter client {} -> {printed:?} ({:?})",
            args.join(" "),
            started.elapsed()
        );
        match printed.strip_prefix(PREFIX) {
            Some(reply) => Ok(reply.to_string()),
            None => bail!("chapter client {args:?} printed {printed:?}, not a server response"),
        }
    }
}

fn build_client_go(script: &Path, out: &Path) -> Result<PathBuf> {
    let has_go = Command::new("go")
        .arg("version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    ensure!(
        has_go,
        "{} is present, so this test builds the chapter's own client.go, but the Go toolchain \
         is missing: run `apt-get update && apt-get install -y golang-go` (scripts/test does)",
        script.display()
    );
    let output = Command::new("bash")
        .arg(script)
        .arg(out)
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    ensure!(
        output.status.success(),
        "{} failed ({}):\n{}\n{}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let client = out.join("seed-client");
    ensure!(
        client.exists(),
        "{} did not produce {}",
        script.display(),
        client.display()
    );
    Ok(client)
}

async fn run_go(bin: &Path, args: &[&str]) -> Result<String> {
    let run = tokio::process::Command::new(bin)
        .args(args)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(RUN_TIMEOUT, run)
        .await
        .with_context(|| format!("seed-client {args:?} hung"))??;
    ensure!(
        out.status.success(),
        "seed-client {args:?} exited with {} (stderr {:?})",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
}

/// What `client.go` prints for `args`, produced the way `client.go` produces it.
async fn run_ours(args: &[&str]) -> Result<String> {
    let (command, payload) = match args {
        ["get_peers", rest @ ..] => ("GET_PEERS", rest.first().copied().unwrap_or("")),
        ["register", addr, ..] => ("REGISTER", *addr),
        ["remove", addr, ..] => ("REMOVE", *addr),
        other => bail!("client.go has no command {other:?}"),
    };
    let mut conn = match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(CHAPTER_ADDR)).await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Ok(format!("Gagal terhubung ke server: {e}")),
        Err(_) => return Ok("Gagal terhubung ke server: i/o timeout".to_string()),
    };
    conn.write_all(&request_line(command, payload)).await?;
    let mut line = Vec::new();
    let mut reader = BufReader::new(conn);
    reader.read_until(b'\n', &mut line).await?;
    if line.last() != Some(&b'\n') {
        return Ok("Gagal membaca response: EOF".to_string());
    }
    Ok(format!("{PREFIX}{}", String::from_utf8_lossy(&line).trim()))
}

/// The bytes `client.go` writes: `json.Marshal(Request{Type, Payload})` and a newline.
pub fn request_line(command: &str, payload: &str) -> Vec<u8> {
    format!(
        "{{\"type\":{},\"payload\":{}}}\n",
        go_json_string(command),
        go_json_string(payload)
    )
    .into_bytes()
}

/// A string as Go's `encoding/json` marshals it (HTML-safe escaping included).
pub fn go_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
