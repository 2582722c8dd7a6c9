//! [`ProcessGroup`]: the devnet's child processes, each logging to its own file.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Named child processes started and stopped together.
pub struct ProcessGroup {
    log_dir: PathBuf,
    children: Vec<(String, Child)>,
    /// How each child was started, so that it can be started again.
    commands: Vec<(PathBuf, Vec<String>)>,
}

impl ProcessGroup {
    pub fn new(log_dir: PathBuf) -> Self {
        Self {
            log_dir,
            children: Vec::new(),
            commands: Vec::new(),
        }
    }

    /// Starts `binary args...` as `name`, with output in `<log_dir>/<name>.log`.
    ///
    /// # Errors
    /// Spawn or log-file errors.
    pub fn spawn(&mut self, name: &str, binary: &Path, args: &[String]) -> std::io::Result<()> {
        let child = self.start(name, binary, args)?;
        self.children.push((name.to_string(), child));
        self.commands.push((binary.to_path_buf(), args.to_vec()));
        Ok(())
    }

    fn start(&self, name: &str, binary: &Path, args: &[String]) -> std::io::Result<Child> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_dir.join(format!("{name}.log")))?;
        // A process group of its own: Ctrl-C reaches only the devnet, which then stops the
        // children in order (nodes first, so they can deregister while the cluster is up).
        Command::new(binary)
            .args(args)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
    }

    /// Starts child `name` again with the command it was first started with: a running one
    /// gets SIGTERM (SIGKILL after `grace`) first. Returns the new pid.
    ///
    /// # Errors
    /// No child of that name, or spawning fails.
    pub async fn restart(&mut self, name: &str, grace: Duration) -> std::io::Result<u32> {
        let i = self
            .children
            .iter()
            .position(|(n, _)| n == name)
            .ok_or_else(|| std::io::Error::other(format!("no process named {name}")))?;
        if matches!(self.children[i].1.try_wait(), Ok(None)) {
            self.stop(&[i], grace).await;
        }
        let (binary, args) = self.commands[i].clone();
        let child = self.start(name, &binary, &args)?;
        let pid = child.id();
        self.children[i].1 = child;
        Ok(pid)
    }

    /// The pid of child `name` while it runs.
    pub fn pid_of(&mut self, name: &str) -> Option<u32> {
        let (_, c) = self.children.iter_mut().find(|(n, _)| n == name)?;
        matches!(c.try_wait(), Ok(None)).then(|| c.id())
    }

    /// The children's process ids, in start order.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(|(_, c)| c.id()).collect()
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

    /// Stops every child, newest first in two waves: those named `first_prefix*`, then the
    /// rest. Each wave gets SIGTERM, then SIGKILL for those still running after `grace`.
    pub async fn stop_all(&mut self, first_prefix: &str, grace: Duration) {
        let (first, rest): (Vec<usize>, Vec<usize>) =
            (0..self.children.len()).partition(|i| self.children[*i].0.starts_with(first_prefix));
        self.stop(&first, grace).await;
        self.stop(&rest, grace).await;
    }

    async fn stop(&mut self, which: &[usize], grace: Duration) {
        for i in which {
            if let Ok(pid) = i32::try_from(self.children[*i].1.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            let all_done = which
                .iter()
                .all(|i| matches!(self.children[*i].1.try_wait(), Ok(Some(_))));
            if all_done {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for i in which {
            let (name, c) = &mut self.children[*i];
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

/// Resident memory of process `pid` in KiB, from `/proc` (0 where unknown).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}
