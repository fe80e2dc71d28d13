//! Shared helpers are in `tests/profile_support/mod.rs`; this file only checks that the
//! fixtures the profile tests rely on are reachable.

mod profile_support;

#[test]
fn fixture_traces_are_reachable() {
    let dir = profile_support::traces_dir();
    assert!(dir.join("README.md").is_file(), "{}", dir.display());
}
