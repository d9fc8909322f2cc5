//! The shared corpus (`shared/corpus` beside the repository: real captures with their Zeek and
//! suricata-verify outputs), and what happens when it is missing.
//!
//! Tests that need it call [`corpus`] and return early on `None`. A missing corpus is a skip
//! with a printed note on a developer's machine, and a failure under CI (`CI` set, and not to
//! `false` or `0`): a CI run without `../shared` must not pass these tests without running them.

use std::path::{Path, PathBuf};

/// The variable that names the corpus folder instead of the search (a corpus kept elsewhere;
/// `scripts/test-all.sh` points it at a missing folder to check the CI rule).
pub const CORPUS_VAR: &str = "WSCOPE_CORPUS";

/// The corpus: the folder [`CORPUS_VAR`] names when it is set, else `shared/corpus` in the
/// nearest ancestor of this crate's directory that has one (the repository's parent,
/// normally); or `None` after printing a note.
///
/// # Panics
/// When the corpus is missing and [`in_ci`] is true.
pub fn corpus() -> Option<PathBuf> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = match std::env::var_os(CORPUS_VAR) {
        Some(dir) => Some(PathBuf::from(dir)).filter(|p| p.join("zeek/traces").is_dir()),
        None => find_corpus(here),
    };
    if found.is_none() {
        missing(here, in_ci());
    }
    found
}

/// `shared/corpus` (with its `zeek/traces` folder) in `start` or one of its ancestors.
fn find_corpus(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|up| up.join("shared/corpus"))
        .find(|p| p.join("zeek/traces").is_dir())
}

/// Reports a missing corpus: a panic under CI, a note otherwise.
fn missing(start: &Path, ci: bool) {
    assert!(
        !ci,
        "shared/corpus not found above {}: the tests need ../shared beside the repository \
         (it is missing and CI is set, so this is a failure, not a skip)",
        start.display()
    );
    eprintln!(
        "SKIPPED: shared/corpus not found above {} (needs ../shared beside the repository)",
        start.display()
    );
}

/// Whether the tests run under CI: the `CI` variable is set, and not to ``, `false` or `0`.
pub fn in_ci() -> bool {
    ci_value(std::env::var("CI").ok().as_deref())
}

fn ci_value(v: Option<&str>) -> bool {
    v.is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_values() {
        assert!(!ci_value(None));
        for off in ["", "false", "0"] {
            assert!(!ci_value(Some(off)), "{off:?}");
        }
        for on in ["true", "1", "yes"] {
            assert!(ci_value(Some(on)), "{on:?}");
        }
    }

    #[test]
    fn missing_corpus_skips_locally_and_fails_under_ci() {
        let nowhere = std::env::temp_dir().join("wscope-no-corpus-here");
        assert_eq!(find_corpus(&nowhere), None);
        missing(&nowhere, false);
        let failed = std::panic::catch_unwind(|| missing(&nowhere, true));
        assert!(failed.is_err(), "a missing corpus under CI must fail");
    }
}
