//! [`Progress`] (the once-a-second line on stderr), [`Latencies`] and [`BenchReport`], the
//! figures `peerchain bench` prints.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::bootstrap::signature_batcher::MAX_BATCH;

/// How often the progress line is printed.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Counters of one phase, shared by its workers and printed every second.
pub struct Progress {
    phase: &'static str,
    total: u64,
    started: Instant,
    done: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
    stop: CancellationToken,
}

impl Progress {
    /// Starts printing `phase: done/total, rate, errors` every second until [`Self::finish`].
    pub fn start(phase: &'static str, total: u64) -> Arc<Self> {
        let p = Arc::new(Self {
            phase,
            total,
            started: Instant::now(),
            done: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
            stop: CancellationToken::new(),
        });
        let printer = p.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PROGRESS_INTERVAL);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = printer.stop.cancelled() => return,
                    _ = tick.tick() => printer.print_line(),
                }
            }
        });
        p
    }

    fn print_line(&self) {
        let done = self.done.load(Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        eprintln!(
            "bench {}: {done}/{} done, {:.0}/s, {} errors",
            self.phase,
            self.total,
            done as f64 / secs,
            self.error_count()
        );
    }

    /// One request answered as wanted.
    pub fn ok(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    /// One request that failed, by a short reason.
    pub fn error(&self, reason: impl Into<String>) {
        self.done.fetch_add(1, Ordering::Relaxed);
        let mut e = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        *e.entry(reason.into()).or_default() += 1;
    }

    fn error_count(&self) -> u64 {
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .sum()
    }

    /// Stops the progress line and returns (elapsed, errors by reason).
    pub fn finish(&self) -> (Duration, BTreeMap<String, u64>) {
        self.stop.cancel();
        self.print_line();
        let errors = self
            .errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        (self.started.elapsed(), errors)
    }
}

/// Latencies of one phase.
#[derive(Debug, Default, Clone)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `q`-quantile (0.0–1.0), zero when empty.
    pub fn quantile(&mut self, q: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        self.0.sort_unstable();
        let last = self.0.len() - 1;
        let i = ((last as f64) * q.clamp(0.0, 1.0)).round() as usize;
        self.0[i.min(last)]
    }
}

/// What a write phase measured.
#[derive(Debug, Clone)]
pub struct WriteFigures {
    pub requests: u64,
    pub elapsed: Duration,
    pub errors: BTreeMap<String, u64>,
    pub latencies: Latencies,
}

impl WriteFigures {
    /// Waits for a phase's workers, each returning its latencies, and closes `progress`.
    pub async fn collect(
        requests: u64,
        progress: &Progress,
        workers: Vec<tokio::task::JoinHandle<Latencies>>,
    ) -> Self {
        let mut latencies = Latencies::default();
        for w in workers {
            if let Ok(l) = w.await {
                latencies.extend(l);
            }
        }
        let (elapsed, errors) = progress.finish();
        Self {
            requests,
            elapsed,
            errors,
            latencies,
        }
    }

    /// Successful requests per second.
    pub fn rate(&self) -> f64 {
        let ok = self.requests - self.errors.values().sum::<u64>().min(self.requests);
        ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// What the read phase measured.
#[derive(Debug, Clone)]
pub struct ReadFigures {
    pub calls: u64,
    pub sample: u32,
    pub mean_peers: f64,
    pub latencies: Latencies,
    pub errors: BTreeMap<String, u64>,
}

/// Every figure of one `peerchain bench` run.
pub struct BenchReport {
    pub targets: Vec<String>,
    pub native: Option<WriteFigures>,
    /// The same nodes renewing their records (same address, higher seq).
    pub renewals: Option<WriteFigures>,
    pub legacy: Option<WriteFigures>,
    pub reads: Option<ReadFigures>,
    pub member_rss_kib: Vec<u64>,
    /// Records one core verifies per second, alone and in batches (see
    /// `native_load::verify_rates`).
    pub verify_per_s: Option<(f64, f64)>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn errors_text(e: &BTreeMap<String, u64>) -> String {
    if e.is_empty() {
        return "0".into();
    }
    e.iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl BenchReport {
    pub fn new(targets: &[String]) -> Self {
        Self {
            targets: targets.to_vec(),
            native: None,
            renewals: None,
            legacy: None,
            reads: None,
            member_rss_kib: Vec::new(),
            verify_per_s: None,
        }
    }

    /// Writes the table and the `BENCH key=value` lines.
    ///
    /// # Errors
    /// Errors writing to `out`.
    pub fn print(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(out, "peerchain bench against {}", self.targets.join(","))?;
        let mut kv: Vec<(String, String)> = Vec::new();
        for (name, key, figures) in [
            (
                "native signed registrations (pipelined)",
                "native",
                &mut self.native,
            ),
            (
                "native renewals by the same nodes",
                "renew",
                &mut self.renewals,
            ),
            (
                "chapter REGISTER (one connection each)",
                "legacy",
                &mut self.legacy,
            ),
        ] {
            let Some(f) = figures else { continue };
            let (p50, p99) = (f.latencies.quantile(0.5), f.latencies.quantile(0.99));
            writeln!(
                out,
                "{name:<42} {:>9.0}/s  p50 {:>7.2} ms  p99 {:>7.2} ms  {} requests in {:.2} s, errors {}",
                f.rate(),
                ms(p50),
                ms(p99),
                f.requests,
                f.elapsed.as_secs_f64(),
                errors_text(&f.errors)
            )?;
            kv.push((format!("{key}_per_s"), format!("{:.0}", f.rate())));
            kv.push((format!("{key}_p50_ms"), format!("{:.3}", ms(p50))));
            kv.push((format!("{key}_p99_ms"), format!("{:.3}", ms(p99))));
            kv.push((
                format!("{key}_errors"),
                f.errors.values().sum::<u64>().to_string(),
            ));
        }
        if let Some((alone, batched)) = self.verify_per_s {
            writeln!(
                out,
                "{:<42} {alone:>9.0}/s alone, {batched:.0}/s in batches of {MAX_BATCH} \
                 (every registration costs one on the member it reaches)",
                "record signature checks, one core"
            )?;
            kv.push(("verify_per_s_one_core".into(), format!("{alone:.0}")));
            kv.push((
                "verify_batch_per_s_one_core".into(),
                format!("{batched:.0}"),
            ));
        }
        if let Some(r) = &mut self.reads {
            let (p50, p99) = (r.latencies.quantile(0.5), r.latencies.quantile(0.99));
            writeln!(
                out,
                "{:<42} p50 {:.3} ms  p99 {:.3} ms  over {} calls, {:.1} peers each, errors {}",
                format!("GetPeers sample of {}", r.sample),
                ms(p50),
                ms(p99),
                r.calls,
                r.mean_peers,
                errors_text(&r.errors)
            )?;
            kv.push(("get_peers_p50_ms".into(), format!("{:.3}", ms(p50))));
            kv.push(("get_peers_p99_ms".into(), format!("{:.3}", ms(p99))));
            kv.push((
                "get_peers_mean_peers".into(),
                format!("{:.1}", r.mean_peers),
            ));
        }
        if !self.member_rss_kib.is_empty() {
            let mib: Vec<String> = self
                .member_rss_kib
                .iter()
                .map(|k| format!("{:.0}", *k as f64 / 1024.0))
                .collect();
            writeln!(
                out,
                "{:<42} {} MiB",
                "members' resident memory at the end",
                mib.join(" / ")
            )?;
            let max = self.member_rss_kib.iter().max().copied().unwrap_or(0);
            kv.push((
                "member_rss_max_mib".into(),
                format!("{:.0}", max as f64 / 1024.0),
            ));
        }
        for (k, v) in kv {
            writeln!(out, "BENCH {k}={v}")?;
        }
        Ok(())
    }
}
