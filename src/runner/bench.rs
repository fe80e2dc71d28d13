//! Benchmark-client processes: run to completion under a timeout, capture a scrubbed log,
//! classify how it ended.

use super::classify::{classify_failure, ExitKind};
use super::process::{CommandSpec, LogCapture, OsLauncher, ProcessLauncher, ProcessSpec};
use super::server::exit_kind;
use crate::bench::row::RunStatus;
use crate::secrets::SecretSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How one benchmark command ended.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchOutcome {
    pub status: RunStatus,
    pub failure_reason: Option<String>,
    pub exit_code: Option<i32>,
    pub duration: Duration,
    pub log_path: PathBuf,
    /// The last scrubbed log lines.
    pub log_tail: String,
}

/// A benchmark command with its environment.
#[derive(Debug, Clone)]
pub struct BenchSpec {
    pub command: CommandSpec,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    pub timeout: Duration,
    pub log_path: PathBuf,
    pub secrets: SecretSet,
}

/// Runs `cmd` with real processes, killing it after `timeout`.
pub fn run_benchmark(cmd: &CommandSpec, timeout: Duration, log_path: &Path) -> BenchOutcome {
    run_benchmark_with(
        &OsLauncher,
        &BenchSpec {
            command: cmd.clone(),
            env: Vec::new(),
            cwd: None,
            timeout,
            log_path: log_path.to_path_buf(),
            secrets: SecretSet::from_default_env(),
        },
    )
}

/// Runs a benchmark through `launcher`. Never fails: problems become a classified outcome.
pub fn run_benchmark_with(launcher: &dyn ProcessLauncher, spec: &BenchSpec) -> BenchOutcome {
    let started = Instant::now();
    let outcome = |status, reason: Option<String>, code, tail: String| BenchOutcome {
        status,
        failure_reason: reason,
        exit_code: code,
        duration: started.elapsed(),
        log_path: spec.log_path.clone(),
        log_tail: tail,
    };
    let capture = match LogCapture::to_file(&spec.log_path, spec.secrets.clone()) {
        Ok(c) => c,
        Err(e) => {
            let reason = format!("cannot open log {}: {e}", spec.log_path.display());
            return outcome(RunStatus::Failed, Some(reason), None, String::new());
        }
    };
    let pspec = ProcessSpec {
        command: spec.command.clone(),
        env: spec.env.clone(),
        cwd: spec.cwd.clone(),
    };
    let mut child = match launcher.spawn(&pspec, capture.clone()) {
        Ok(c) => c,
        Err(e) => {
            let cmd = spec.secrets.scrub(&spec.command.display()).into_owned();
            return outcome(
                RunStatus::Failed,
                Some(format!("cannot start `{cmd}`: {e}")),
                None,
                String::new(),
            );
        }
    };
    let exit = loop {
        match child.try_wait() {
            Ok(Some(status)) => break exit_kind(status),
            Ok(None) => {}
            Err(e) => {
                break ExitKind::NotRun {
                    reason: format!("cannot wait for the benchmark: {e}"),
                }
            }
        }
        if started.elapsed() >= spec.timeout {
            let _ = child.terminate();
            std::thread::sleep(Duration::from_millis(200));
            let _ = child.kill();
            let _ = child.wait();
            break ExitKind::TimedOut {
                after_s: spec.timeout.as_secs_f64(),
            };
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    child.drain_output();
    let tail = capture.tail();
    let code = match exit {
        ExitKind::Success => Some(0),
        ExitKind::Code(c) => Some(c),
        _ => None,
    };
    let c = classify_failure(&tail, &exit);
    let status = if matches!(exit, ExitKind::NotRun { .. }) {
        RunStatus::Failed
    } else {
        c.status
    };
    outcome(status, c.reason, code, tail)
}
