//! Running a member with a skewed wall clock (libfaketime) and reading what it logged.

use std::process::Command;

/// The `faketime` wrapper for a clock `offset` (`+1h`, `-1h`) off; panics with the install
/// hint if faketime is missing. The monotonic clock is left alone: only the wall clock lies.
pub fn faketime(offset: &str) -> Vec<&str> {
    let works = Command::new("faketime")
        .args(["-f", "+0", "true"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        works,
        "faketime is required by tests/clock_skew.rs (it runs a member with a skewed clock): \
         apt-get install -y faketime"
    );
    vec![
        "env",
        "FAKETIME_DONT_FAKE_MONOTONIC=1",
        "faketime",
        "-m",
        "-f",
        offset,
    ]
}

/// libfaketime itself, for a clock changed while the member runs (`faketime` fixes the
/// offset at start); panics with the install hint if missing.
pub fn libfaketime() -> String {
    let candidates = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/faketime/libfaketimeMT.so.1",
        "/usr/local/lib/faketime/libfaketimeMT.so.1",
    ];
    candidates
        .iter()
        .find(|p| std::path::Path::new(p).exists())
        .map(|p| p.to_string())
        .unwrap_or_else(|| {
            panic!(
                "libfaketimeMT.so.1 is required by tests/clock_skew.rs (looked in {candidates:?}): \
                 apt-get install -y faketime"
            )
        })
}

/// `text` without terminal colour codes (`ESC [ ... m`), as the member logs are coloured.
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_escape = false;
    for c in text.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (false, c) => out.push(c),
            (true, 'm') => in_escape = false,
            (true, _) => {}
        }
    }
    out
}
