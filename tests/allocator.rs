//! The binary's allocator is jemalloc with freed pages returned within 0.1 s: the members' memory
//! at a million peers depends on it (docs/benchmarks.md, "Memory"), and the setting comes from
//! `.cargo/config.toml` at build time, so a build that missed it would be silently worse.

use std::process::Command;

use anyhow::{ensure, Context, Result};

#[test]
fn freed_pages_go_back_within_a_tenth_of_a_second_unless_overridden() -> Result<()> {
    // jemalloc prints its options at exit when asked to through its environment variable.
    let run = |conf: &str| -> Result<String> {
        let out = Command::new(env!("CARGO_BIN_EXE_peerchain"))
            .args(["ctl", "--help"])
            .env("_RJEM_MALLOC_CONF", conf)
            .output()
            .context("running peerchain")?;
        ensure!(out.status.success(), "peerchain ctl --help failed");
        Ok(String::from_utf8_lossy(&out.stderr).to_string())
    };
    let built_in = run("stats_print:true")?;
    ensure!(
        built_in.contains("config.malloc_conf: \"dirty_decay_ms:100,muzzy_decay_ms:0\""),
        "jemalloc was built without the setting: {}",
        built_in.lines().take(40).collect::<Vec<_>>().join("\n")
    );
    ensure!(
        built_in.contains("opt.dirty_decay_ms: 100 "),
        "dirty pages are kept"
    );
    ensure!(
        built_in.contains("opt.muzzy_decay_ms: 0 "),
        "muzzy pages are kept"
    );
    let operator = run("stats_print:true,dirty_decay_ms:1000")?;
    ensure!(
        operator.contains("opt.dirty_decay_ms: 1000 "),
        "an operator's setting did not override the built-in one"
    );
    Ok(())
}
