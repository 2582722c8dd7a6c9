//! [`RefusalLog`]: logs refusals once per source per interval, with a count, instead of once
//! per connection or request.
//!
//! A flood is exactly when a member refuses most; a log line per refusal turned one
//! attacker's 5,000 connections into 114,641 lines (48 MB) a minute. Here the first refusal
//! of a source in an interval is logged at once (the operator sees who and why), the rest
//! are counted, and [`RefusalLog::flush`] (run every interval) logs each count once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a source's refusals are summed up in the log.
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Sources tracked at once; refusals from further sources in the same interval are summed
/// into one line (a flood from many addresses must not grow the map without bound).
pub const MAX_TRACKED_SOURCES: usize = 16_384;

#[derive(Debug)]
struct Window {
    started: Instant,
    /// Refusals after the one logged when the window opened.
    suppressed: u64,
    /// The kind of the latest refusal ("connection", "request", ...).
    latest: &'static str,
}

#[derive(Debug, Default)]
struct State {
    sources: HashMap<IpAddr, Window>,
    /// Refusals from sources beyond [`MAX_TRACKED_SOURCES`].
    untracked: u64,
}

/// Per-source refusal counts for the current interval.
#[derive(Debug, Default)]
pub struct RefusalLog {
    state: Mutex<State>,
}

impl RefusalLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `kind` from `source` was refused because of `reason`; logs it if it is
    /// the source's first refusal this interval.
    pub fn refused(&self, source: IpAddr, kind: &'static str, reason: &dyn std::fmt::Display) {
        let mut state = self.lock();
        let now = Instant::now();
        let tracked = state.sources.len();
        match state.sources.get_mut(&source) {
            Some(w) if now.duration_since(w.started) < REFUSAL_LOG_INTERVAL => {
                w.suppressed += 1;
                w.latest = kind;
                return;
            }
            Some(w) => {
                let suppressed = std::mem::take(&mut w.suppressed);
                w.started = now;
                w.latest = kind;
                drop(state);
                log_first(source, kind, reason, suppressed);
                return;
            }
            None if tracked >= MAX_TRACKED_SOURCES => {
                state.untracked += 1;
                return;
            }
            None => {
                state.sources.insert(
                    source,
                    Window {
                        started: now,
                        suppressed: 0,
                        latest: kind,
                    },
                );
            }
        }
        drop(state);
        log_first(source, kind, reason, 0);
    }

    /// Logs the counts of every window that has ended and forgets those sources. Run every
    /// [`REFUSAL_LOG_INTERVAL`].
    pub fn flush(&self) {
        let now = Instant::now();
        let (ended, untracked) = {
            let mut state = self.lock();
            let mut ended = Vec::new();
            state.sources.retain(|ip, w| {
                let open = now.duration_since(w.started) < REFUSAL_LOG_INTERVAL;
                if !open && w.suppressed > 0 {
                    ended.push((*ip, w.suppressed, w.latest));
                }
                open
            });
            (ended, std::mem::take(&mut state.untracked))
        };
        for (source, count, latest) in ended {
            tracing::warn!(
                %source,
                refused = count,
                latest,
                interval = ?REFUSAL_LOG_INTERVAL,
                "refused more from this source (quota)"
            );
        }
        if untracked > 0 {
            tracing::warn!(
                refused = untracked,
                sources_over = MAX_TRACKED_SOURCES,
                "refused more from sources too many to list (quota)"
            );
        }
    }

    /// How many sources are tracked now (for tests).
    pub fn tracked(&self) -> usize {
        self.lock().sources.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn log_first(source: IpAddr, kind: &'static str, reason: &dyn std::fmt::Display, before: u64) {
    tracing::warn!(
        %source,
        kind,
        refused_before = before,
        "refusing {kind}: {reason} (further refusals from this source are counted and logged \
         once per {}s)",
        REFUSAL_LOG_INTERVAL.as_secs()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_within_an_interval_are_counted_not_tracked_twice() {
        let log = RefusalLog::new();
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        for _ in 0..1000 {
            log.refused(a, "connection", &"too many");
        }
        assert_eq!(log.tracked(), 1);
        let state = log.lock();
        assert_eq!(state.sources.get(&a).map(|w| w.suppressed), Some(999));
    }

    #[test]
    fn sources_beyond_the_cap_are_summed() {
        let log = RefusalLog::new();
        for i in 0..(MAX_TRACKED_SOURCES as u32 + 10) {
            log.refused(IpAddr::from(i.to_be_bytes()), "connection", &"x");
        }
        assert_eq!(log.tracked(), MAX_TRACKED_SOURCES);
        assert_eq!(log.lock().untracked, 10);
    }
}
