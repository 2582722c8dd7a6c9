//! Replays every committed fuzz input — the minimized corpus of each target under
//! `fuzz/corpus/<target>/` and every crash found, kept under `fuzz/regressions/<target>/` —
//! through the very functions the `cargo fuzz` targets call (`peerchain::fuzzing`). A
//! panic is a failure; an empty corpus is a failure too, so the replay cannot silently test
//! nothing.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use peerchain::fuzzing::TARGETS;

fn inputs(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| dir.display().to_string())? {
        let path = entry?.path();
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn replay(target: &str, run: fn(&[u8]), files: &[PathBuf]) -> Result<()> {
    for path in files {
        let data = match std::fs::read(path) {
            Ok(d) => d,
            // A fuzzer running on the same corpus meanwhile replaces inputs with smaller ones:
            // a file listed a moment ago may be gone (its replacement is listed too).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| path.display().to_string()),
        };
        let outcome = std::panic::catch_unwind(|| run(&data));
        ensure!(
            outcome.is_ok(),
            "target {target} panics on {} (rerun: cargo +nightly fuzz run {target} {})",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

#[test]
fn every_corpus_and_regression_input_replays_without_a_panic() -> Result<()> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let started = Instant::now();
    let mut total = 0;
    for (target, run) in TARGETS {
        let corpus = inputs(&fuzz.join("corpus").join(target))?;
        let regressions = inputs(&fuzz.join("regressions").join(target))?;
        ensure!(
            !corpus.is_empty(),
            "no committed corpus for target {target}"
        );
        replay(target, *run, &corpus)?;
        replay(target, *run, &regressions)?;
        eprintln!(
            "{target}: {} corpus inputs, {} regressions",
            corpus.len(),
            regressions.len()
        );
        total += corpus.len() + regressions.len();
    }
    eprintln!("{total} inputs replayed in {:?}", started.elapsed());
    Ok(())
}
