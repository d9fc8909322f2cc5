//! The committed fuzz seeds (`fuzz/seeds/<target>/`), which every crate's tests replay.

use std::fs;
use std::path::{Path, PathBuf};

/// The folder that holds one folder of seeds per fuzz target.
pub fn seeds_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds")
}

/// The seed files of `target`, sorted by name; panics when the folder cannot be read or holds
/// fewer than `min` files (a seed set that went missing must not pass as an empty replay).
pub fn seed_files(target: &str, min: usize) -> Vec<PathBuf> {
    let dir = seeds_root().join(target);
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= min, "{target}: {} seeds", files.len());
    files
}
