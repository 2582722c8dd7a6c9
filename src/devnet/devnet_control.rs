//! [`DevnetControl`]: a Unix socket in the devnet's data directory through which another
//! terminal restarts a member or node (`peerchain devnet --restart 2`), so that a killed
//! leader can be brought back by name, without looking up its command line.
//!
//! One line in, one line out: `restart bootstrap-2` → `restarted bootstrap-2 (pid 4242)` or
//! `error: ...`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// The socket's file name in the data directory.
pub const SOCKET_NAME: &str = "devnet.sock";
/// How long a control client may take to send its line, and a restart to be answered.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest control line read.
const MAX_LINE: u64 = 256;

/// A request from a control client: the process to restart, and where to send the answer.
pub struct RestartRequest {
    pub name: String,
    pub reply: oneshot::Sender<String>,
}

/// The listening control socket.
pub struct DevnetControl {
    listener: UnixListener,
    path: PathBuf,
}

impl DevnetControl {
    /// Binds `<data_dir>/devnet.sock`, replacing a stale socket left by a devnet that died.
    ///
    /// # Errors
    /// Another devnet is running on this data directory, or binding fails.
    pub async fn bind(data_dir: &Path) -> std::io::Result<Self> {
        let path = data_dir.join(SOCKET_NAME);
        if path.exists() {
            if UnixStream::connect(&path).await.is_ok() {
                return Err(std::io::Error::other(format!(
                    "another devnet is running on {} (its control socket {} answers)",
                    data_dir.display(),
                    path.display()
                )));
            }
            std::fs::remove_file(&path)?;
        }
        let listener = UnixListener::bind(&path)?;
        Ok(Self { listener, path })
    }

    /// Accepts control clients until the devnet stops, passing their requests to `requests`.
    pub async fn serve(self, requests: mpsc::Sender<RestartRequest>) {
        loop {
            let Ok((stream, _)) = self.listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let requests = requests.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(CONTROL_TIMEOUT, answer(stream, requests)).await;
            });
        }
    }
}

impl Drop for DevnetControl {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn answer(stream: UnixStream, requests: mpsc::Sender<RestartRequest>) -> std::io::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut line = String::new();
    BufReader::new(rd.take(MAX_LINE))
        .read_line(&mut line)
        .await?;
    let reply = match parse(&line) {
        Ok(name) => {
            let (tx, rx) = oneshot::channel();
            match requests.send(RestartRequest { name, reply: tx }).await {
                Ok(()) => rx
                    .await
                    .unwrap_or_else(|_| "error: the devnet is stopping".into()),
                Err(_) => "error: the devnet is stopping".into(),
            }
        }
        Err(e) => format!("error: {e}"),
    };
    wr.write_all(format!("{reply}\n").as_bytes()).await
}

/// The process a control line or a `--restart` argument names: `N` or `bootstrap-N` for a
/// member, `node-N` for a node, with or without a leading `restart`.
///
/// # Errors
/// A readable reason for anything else.
pub fn parse(line: &str) -> Result<String, String> {
    let target = line.trim();
    let target = target.strip_prefix("restart").unwrap_or(target).trim();
    let valid = |n: &str| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit());
    if valid(target) {
        return Ok(format!("bootstrap-{target}"));
    }
    match target.split_once('-') {
        Some(("bootstrap" | "node", n)) if valid(n) => Ok(target.to_string()),
        _ => Err(format!(
            "cannot restart {target:?}: name a member (2 or bootstrap-2) or a node (node-3)"
        )),
    }
}

/// Asks the devnet running on `data_dir` to restart `target`, and returns its answer.
///
/// # Errors
/// No devnet answers there, or it refused.
pub async fn request_restart(data_dir: &Path, target: &str) -> Result<String, String> {
    let name = parse(target)?;
    let path = data_dir.join(SOCKET_NAME);
    let exchange = async {
        let mut stream = UnixStream::connect(&path).await.map_err(|e| {
            format!(
                "no devnet answers on {} ({e}); is `peerchain devnet --data-dir {}` running?",
                path.display(),
                data_dir.display()
            )
        })?;
        stream
            .write_all(format!("restart {name}\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut reply = String::new();
        BufReader::new(stream.take(MAX_LINE * 4))
            .read_line(&mut reply)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(reply.trim().to_string())
    };
    let reply = tokio::time::timeout(CONTROL_TIMEOUT, exchange)
        .await
        .map_err(|_| "the devnet did not answer in time".to_string())??;
    match reply.strip_prefix("error: ") {
        Some(e) => Err(e.to_string()),
        None => Ok(reply),
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn names_members_and_nodes() {
        assert_eq!(parse("2").as_deref(), Ok("bootstrap-2"));
        assert_eq!(parse("restart bootstrap-3\n").as_deref(), Ok("bootstrap-3"));
        assert_eq!(parse("node-4").as_deref(), Ok("node-4"));
        assert!(parse("node-").is_err());
        assert!(parse("../etc").is_err());
        assert!(parse("").is_err());
    }
}
