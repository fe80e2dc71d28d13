//! Writing executable files in tests that run in parallel threads.
//!
//! A file written by this process and executed at once can fail with ETXTBSY ("Text file
//! busy"): another test thread's fork() may still hold the write descriptor until its child
//! execs. Executables are therefore written into place by a child process (`install`), so
//! no write descriptor of the final path ever exists in this process.

#![allow(dead_code)] // each test crate uses part of this

use std::path::Path;
use std::process::Command;

/// Copies `from` to `to` (created or replaced) with mode 0755.
pub fn install_executable(from: &Path, to: &Path) {
    let status = Command::new("install")
        .arg("-m")
        .arg("0755")
        .arg(from)
        .arg(to)
        .status()
        .expect("install runs");
    assert!(status.success(), "install {} failed", to.display());
}

/// Creates (or replaces) `path` as an executable holding `text`.
pub fn write_executable(path: &Path, text: &str) {
    let staging =
        tempfile::NamedTempFile::new_in(path.parent().expect("a file path")).expect("staging file");
    std::fs::write(staging.path(), text).expect("staging file written");
    install_executable(staging.path(), path);
}
