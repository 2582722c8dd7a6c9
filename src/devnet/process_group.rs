//! [`ProcessGroup`]: the devnet's child processes, each logging to its own file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Named child processes started and stopped together.
pub struct ProcessGroup {
    log_dir: PathBuf,
    children: Vec<(String, Child)>,
}

impl ProcessGroup {
    pub fn new(log_dir: PathBuf) -> Self {
        Self {
            log_dir,
            children: Vec::new(),
        }
    }

    /// Starts `binary args...` as `name`, with output in `<log_dir>/<name>.log`.
    ///
    /// # Errors
    /// Spawn or log-file errors.
    pub fn spawn(&mut self, name: &str, binary: &Path, args: &[String]) -> std::io::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_dir.join(format!("{name}.log")))?;
        let child = Command::new(binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.children.push((name.to_string(), child));
        Ok(())
    }

    /// Names of children that have exited, with their status.
    pub fn exited(&mut self) -> Vec<(String, String)> {
        self.children
            .iter_mut()
            .filter_map(|(name, c)| match c.try_wait() {
                Ok(Some(status)) => Some((name.clone(), status.to_string())),
                _ => None,
            })
            .collect()
    }

    /// SIGTERM to every child, then SIGKILL to those still running after `grace`.
    pub async fn stop_all(&mut self, grace: Duration) {
        for (_, c) in &self.children {
            if let Ok(pid) = i32::try_from(c.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self
                .children
                .iter_mut()
                .all(|(_, c)| matches!(c.try_wait(), Ok(Some(_))))
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for (name, c) in &mut self.children {
            if matches!(c.try_wait(), Ok(None)) {
                eprintln!("{name} did not stop in {grace:?}; killing it");
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        for (_, c) in &mut self.children {
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}
