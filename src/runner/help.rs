//! `--help` and `--version` snapshots of framework CLIs: every flag sota-bot renders is
//! checked against the captured help text, and the snapshots are kept as artifacts.

use super::bench::{run_benchmark_with, BenchSpec};
use super::process::{CommandSpec, OsLauncher};
use super::server::RunnerError;
use crate::bench::row::RunStatus;
use crate::secrets::SecretSet;
use std::time::Duration;

const CAPTURE_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `cmd --help` and returns its scrubbed output (stdout and stderr).
pub fn capture_help(cmd: &CommandSpec) -> Result<String, RunnerError> {
    capture(cmd, "--help")
}

/// Runs `cmd --version` and returns its scrubbed output, trimmed.
pub fn capture_version(cmd: &CommandSpec) -> Result<String, RunnerError> {
    capture(cmd, "--version").map(|s| s.trim().to_string())
}

fn capture(cmd: &CommandSpec, flag: &str) -> Result<String, RunnerError> {
    let dir = tempfile::tempdir()?;
    let spec = BenchSpec {
        command: cmd.with_args(&[flag]),
        env: Vec::new(),
        cwd: None,
        timeout: CAPTURE_TIMEOUT,
        log_path: dir.path().join("capture.log"),
        secrets: SecretSet::from_default_env(),
    };
    let outcome = run_benchmark_with(&OsLauncher, &spec);
    let text = std::fs::read_to_string(&spec.log_path)?;
    if outcome.status == RunStatus::Ok || (!text.trim().is_empty() && outcome.exit_code.is_some()) {
        Ok(text)
    } else {
        Err(RunnerError::ExitedBeforeReady {
            status: outcome.status,
            reason: outcome
                .failure_reason
                .unwrap_or_else(|| format!("`{flag}` printed nothing")),
        })
    }
}
