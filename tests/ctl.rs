//! `peerchain ctl register` as a newcomer uses it: where its key lives, and what it says when a
//! second registration with the same key moves the record.

mod support;

use anyhow::{ensure, Result};
use support::Cluster;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_keeps_its_key_out_of_the_working_directory_and_names_what_it_replaced(
) -> Result<()> {
    let cluster = Cluster::start(3, &[]).await?;
    let secret = support::path_str(&cluster.secret_file);
    let first = cluster.ctl(&["register", "127.61.0.1:7000"])?;
    ensure!(first.status.success(), "{}", text(&first.stderr));
    let key = cluster.dir.path().join("peerchain/ctl.key");
    ensure!(
        key.exists(),
        "no key in the data directory: {}",
        text(&first.stdout)
    );
    ensure!(
        text(&first.stderr).contains(&format!("created signing key {}", key.display())),
        "the new key was not announced: {}",
        text(&first.stderr)
    );
    ensure!(
        text(&first.stdout).contains(&format!("(key {})", key.display())),
        "{}",
        text(&first.stdout)
    );
    ensure!(
        !text(&first.stdout).contains("replaced"),
        "{}",
        text(&first.stdout)
    );
    let stray: Vec<_> = std::fs::read_dir(cluster.dir.path())?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".key"))
        .collect();
    ensure!(
        stray.is_empty(),
        "a key file in the working directory: {stray:?}"
    );

    let second = cluster.ctl(&["register", "127.61.0.2:7000"])?;
    ensure!(second.status.success(), "{}", text(&second.stderr));
    ensure!(
        text(&second.stdout).contains("replaced 127.61.0.1:7000"),
        "the move was silent: {}",
        text(&second.stdout)
    );
    ensure!(
        !text(&second.stderr).contains("created signing key"),
        "a second key was made: {}",
        text(&second.stderr)
    );
    let listing = cluster.ctl(&["--cluster-secret-file", &secret, "peers", "--all"])?;
    let listing = text(&listing.stdout);
    ensure!(
        listing.contains("127.61.0.2:7000") && !listing.contains("127.61.0.1:7000"),
        "{listing}"
    );
    Ok(())
}
