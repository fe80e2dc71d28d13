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

/// File names of the snapshots a flag check reads (under the run directory's `help/`,
/// prefixed with the framework).
pub const SERVER_HELP: &str = "server.txt";
pub const BENCH_HELP: &str = "bench.txt";
pub const VERSION: &str = "version.txt";

/// The words of a command template before its first long flag (the launcher), and the
/// positional model where the launcher takes one (`vllm serve M`).
fn launcher(template: &str) -> Vec<String> {
    shlex::split(template)
        .unwrap_or_default()
        .into_iter()
        .take_while(|w| !w.starts_with("--") && w != "&&")
        .collect()
}

fn shell_line(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            // Placeholders are expanded (already quoted) by the lane.
            if w.starts_with('{') && w.ends_with('}') {
                w.clone()
            } else {
                crate::bench::command::shell_quote(w)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// How to capture a framework's whole flag surface, from the commands a campaign renders:
/// `(file name, shell command)` for the server's and the benchmark client's help and the
/// version. Each tool is asked the way that lists every flag: vLLM only lists option
/// groups under `--help` (its flags are under `--help=all`); `tokenspeed serve --help`
/// shows only `--headless` (its engine flags come from the engine's own argument parser);
/// the simulator lists a framework's flags when told the framework.
pub fn default_help_commands(
    framework: crate::framework::Framework,
    server_template: &str,
    bench_template: &str,
) -> Vec<(String, String)> {
    use crate::framework::Framework;
    let server = launcher(server_template);
    let bench = launcher(bench_template);
    let sim = server.iter().any(|w| w == "sim") && server.iter().any(|w| w == "serve");
    let python_of = |words: &[String]| -> String {
        match words.first() {
            Some(p) if words.get(1).is_some_and(|w| w == "-m") || p.contains("python") => {
                shell_line(&words[..1])
            }
            _ => "python3".to_string(),
        }
    };
    let mut out = Vec::new();
    let server_help = if sim {
        format!(
            "{} --framework {} --help",
            shell_line(&server),
            framework.canonical()
        )
    } else {
        match framework {
            Framework::Vllm => format!("{} --help=all", shell_line(&server)),
            Framework::Tokenspeed => format!(
                "{} --help; {} -c 'import argparse; from tokenspeed.runtime.utils.server_args import ServerArgs; p = argparse.ArgumentParser(prog=\"tokenspeed serve\"); ServerArgs.add_cli_args(p); p.print_help()'",
                shell_line(&server),
                python_of(&server)
            ),
            _ => format!("{} --help", shell_line(&server)),
        }
    };
    out.push((SERVER_HELP.to_string(), server_help));
    let bench_help = if framework == Framework::Vllm && bench.iter().any(|w| w == "vllm") {
        format!("{} --help=all", shell_line(&bench))
    } else {
        format!("{} --help", shell_line(&bench))
    };
    out.push((BENCH_HELP.to_string(), bench_help));
    let package = match framework {
        Framework::Sglang => "sglang",
        Framework::Vllm => "vllm",
        Framework::TensorrtLlm => "tensorrt_llm",
        Framework::Tokenspeed => "tokenspeed",
    };
    let version = if sim {
        format!("{} --version", shell_line(&server[..1.min(server.len())]))
    } else {
        format!(
            "{} -c 'import importlib.metadata as m; print(m.version(\"{package}\"))'",
            python_of(&server)
        )
    };
    out.push((VERSION.to_string(), version));
    out
}
