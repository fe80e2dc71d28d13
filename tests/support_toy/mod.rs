//! The simulator lane's stand-ins for a GPU host, shared by the tests that run real phases:
//! the toy SGLang checkout with an SGLang clearly behind vLLM, and `nvidia-smi` answering
//! with a captured H100 host's output.
#![allow(dead_code)] // each test crate uses part of this

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The toy SGLang checkout (`sota-bot local demo`'s) at `dir`, committed with an SGLang
/// clearly behind vLLM, so no scheduling noise of a busy machine lets it win the baseline
/// and stop a campaign before its rounds.
pub fn slow_sglang_checkout(dir: &Path) {
    sota_bot::cli::local_demo::make_toy_checkout(dir).unwrap();
    let profile = dir.join("sim/engine.yaml");
    let text = std::fs::read_to_string(&profile).unwrap();
    assert!(text.contains("overhead_us_per_step: 900"));
    std::fs::write(
        &profile,
        text.replace("overhead_us_per_step: 900", "overhead_us_per_step: 3000"),
    )
    .unwrap();
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(["commit", "-qam", "slower sglang"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// `bin_dir/nvidia-smi`: no GPU here, so it answers with a captured H100 host's output.
pub fn fake_nvidia_smi(bin_dir: &Path) {
    fake_nvidia_smi_of(bin_dir, "h100x8");
}

/// `bin_dir/nvidia-smi` answering with the captured output of `host`, one of the folders
/// of `tests/fixtures/nvidia-smi` (written again: the host a runner sees can change).
pub fn fake_nvidia_smi_of(bin_dir: &Path, host: &str) {
    let fixtures = repo_root().join("tests/fixtures/nvidia-smi");
    assert!(fixtures.join(host).is_dir(), "no captured host {host}");
    crate::support_exec::write_executable(
        &bin_dir.join("nvidia-smi"),
        &format!(
            "#!/bin/sh\nFAKE_NVIDIA_SMI_DIR='{}' exec bash '{}' \"$@\"\n",
            fixtures.join(host).display(),
            fixtures.join("fake-nvidia-smi.sh").display()
        ),
    );
}
