//! Test support for the fuzz seeds in `fuzz/seeds/<target>/`: each target's seeds are written by
//! a test beside the decoder it feeds, from values encoded by this crate's (or `kafka-protocol`'s)
//! encoder, and the same test checks that the committed files are still exactly those.
//!
//! Regenerate after a deliberate format change: `KAFKA_ONCE_WRITE_SEEDS=1 cargo test --lib seeds`.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Checks that `fuzz/seeds/<target>/` holds exactly `files` (name → bytes), or writes them (and
/// removes stale ones) when `KAFKA_ONCE_WRITE_SEEDS` is set.
pub(crate) fn check_or_write(target: &str, files: BTreeMap<String, Vec<u8>>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    assert!(!files.is_empty(), "no seeds for {target}");
    let committed: BTreeMap<String, Vec<u8>> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect();
    if std::env::var_os("KAFKA_ONCE_WRITE_SEEDS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for name in committed.keys().filter(|n| !files.contains_key(*n)) {
            std::fs::remove_file(dir.join(name)).unwrap();
        }
        for (name, data) in &files {
            std::fs::write(dir.join(name), data).unwrap();
        }
        return;
    }
    let stale: Vec<&String> = files
        .iter()
        .filter(|(name, data)| committed.get(*name) != Some(*data))
        .map(|(name, _)| name)
        .chain(committed.keys().filter(|n| !files.contains_key(*n)))
        .collect();
    assert!(
        stale.is_empty(),
        "fuzz/seeds/{target}: {stale:?} differ from what the encoder makes now; regenerate with \
         KAFKA_ONCE_WRITE_SEEDS=1 cargo test --lib seeds"
    );
}
