//! The agent port: run the configured coding agent for one round inside the checkout, with
//! the round prompt on standard input and a timeout that kills the agent's whole process
//! group.
//!
//! The agent is an [`AgentSpec`] (a preset, see [`super::agent_preset`]). A `command`
//! agent's line may use `{prompt}`, `{summary}`, `{round}`, `{checkout}` and `{run_dir}`,
//! replaced by shell-quoted values; every agent also gets them as `SOTA_PROMPT_FILE`,
//! `SOTA_SUMMARY_FILE`, `SOTA_ROUND`, `SOTA_CHECKOUT`, `SOTA_RUN_DIR`. Standard output goes
//! to `<log>.out` (the CLI's JSON, read back for usage) and standard error to the log.
//! Only files inside the checkout are read back afterwards.

pub use super::agent_preset::{AgentPreset, AgentSpec};
pub use super::agent_usage::AgentUsage;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One agent run.
#[derive(Debug, Clone)]
pub struct AgentInvocation {
    pub spec: AgentSpec,
    pub checkout: PathBuf,
    pub run_dir: PathBuf,
    pub round: u32,
    pub prompt_path: PathBuf,
    pub summary_path: PathBuf,
    pub log_path: PathBuf,
    pub timeout: Duration,
}

impl AgentInvocation {
    /// Where the agent's standard output is kept.
    pub fn stdout_path(&self) -> PathBuf {
        let mut p = self.log_path.clone().into_os_string();
        p.push(".out");
        PathBuf::from(p)
    }
}

/// How the agent run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentOutcome {
    Finished { exit_code: i32 },
    TimedOut { after_secs: u64 },
    FailedToStart { message: String },
}

impl AgentOutcome {
    /// A short description for ledgers and reports.
    pub fn describe(&self) -> String {
        match self {
            AgentOutcome::Finished { exit_code: 0 } => "ok".into(),
            AgentOutcome::Finished { exit_code } => format!("exit {exit_code}"),
            AgentOutcome::TimedOut { after_secs } => format!("timeout after {after_secs}s"),
            AgentOutcome::FailedToStart { message } => format!("failed to start: {message}"),
        }
    }

    /// Whether the agent ran to a clean exit.
    pub fn is_ok(&self) -> bool {
        matches!(self, AgentOutcome::Finished { exit_code: 0 })
    }
}

/// Everything one agent run left behind: how it ended, how long it took, what it reported.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRun {
    pub outcome: AgentOutcome,
    pub duration: Duration,
    pub usage: AgentUsage,
}

impl AgentRun {
    /// A run that never started.
    pub fn not_started(message: impl Into<String>) -> AgentRun {
        AgentRun {
            outcome: AgentOutcome::FailedToStart {
                message: message.into(),
            },
            duration: Duration::ZERO,
            usage: AgentUsage::default(),
        }
    }
}

/// Anything that can run a round's agent.
pub trait AgentPort {
    fn run(&self, inv: &AgentInvocation) -> AgentRun;
}

/// Quotes a value for `sh`.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Substitutes the placeholders of a `command` agent's line.
pub fn expand_command(inv: &AgentInvocation) -> String {
    inv.spec
        .command
        .as_deref()
        .unwrap_or_default()
        .replace("{prompt}", &shell_quote(&inv.prompt_path.to_string_lossy()))
        .replace(
            "{summary}",
            &shell_quote(&inv.summary_path.to_string_lossy()),
        )
        .replace("{round}", &inv.round.to_string())
        .replace("{checkout}", &shell_quote(&inv.checkout.to_string_lossy()))
        .replace("{run_dir}", &shell_quote(&inv.run_dir.to_string_lossy()))
}

/// Why an agent cannot start on this machine, checked before a round spends GPU time on
/// profiling: its program is missing, or a `command` agent has no command.
pub fn preflight(spec: &AgentSpec) -> Result<(), String> {
    if spec.preset == AgentPreset::Command
        && spec.command.as_deref().is_none_or(|c| c.trim().is_empty())
    {
        return Err("the `command` agent preset needs a command line (agent.command)".into());
    }
    let program = spec.program();
    if super::agent_preset::find_program(&program).is_none() {
        return Err(format!(
            "`{program}` is not installed or not on PATH (install it with `{}`)",
            spec.preset.install_hint()
        ));
    }
    Ok(())
}

/// Runs the agent as a child process in its own process group.
pub struct ShellAgent;

fn kill_group(pid: u32) {
    // Negative pid: the whole process group the agent leads.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// What the agent reported about itself: its machine-readable output on standard output,
/// and, when that names no error and the agent failed, the model-API error its standard
/// error names (a `command` agent, or a CLI that died before printing its result).
fn usage_from(
    preset: AgentPreset,
    outcome: &AgentOutcome,
    stdout_path: &Path,
    stderr_path: &Path,
) -> AgentUsage {
    let text = std::fs::read_to_string(stdout_path).unwrap_or_default();
    let parsed = match preset {
        AgentPreset::Claude => super::agent_usage::parse_claude(&text),
        AgentPreset::Codex => super::agent_usage::parse_codex(&text),
        AgentPreset::Command => super::agent_usage::parse_claude(&text)
            .or_else(|| super::agent_usage::parse_codex(&text)),
    };
    let mut usage = parsed.unwrap_or_default();
    let failed = matches!(outcome, AgentOutcome::Finished { exit_code } if *exit_code != 0);
    if usage.error.is_none() && failed {
        let stderr = std::fs::read(stderr_path).unwrap_or_default();
        usage.error = super::agent_usage::api_error_line(&String::from_utf8_lossy(&stderr));
    }
    usage
}

impl AgentPort for ShellAgent {
    fn run(&self, inv: &AgentInvocation) -> AgentRun {
        if let Some(parent) = inv.log_path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let files = (|| {
            let log = File::create(&inv.log_path)?;
            let out = File::create(inv.stdout_path())?;
            let prompt = File::open(&inv.prompt_path)?;
            Ok::<_, std::io::Error>((log, out, prompt))
        })();
        let (log, out, prompt) = match files {
            Ok(f) => f,
            Err(e) => {
                return AgentRun::not_started(format!(
                    "cannot open the prompt or log files ({}): {e}",
                    inv.log_path.display()
                ))
            }
        };
        let launch = inv
            .spec
            .launch(Some(&expand_command(inv)), &inv.checkout.to_string_lossy());
        let mut cmd = Command::new(&launch.program);
        // The agent gets its own keys only: not the push token, the Hugging Face token, the
        // reviewer's key or the App's secrets.
        let mut keep = inv.spec.secret_names();
        keep.extend(crate::secrets::agent_secret_names());
        for name in crate::secrets::withheld_env(&keep) {
            cmd.env_remove(name);
        }
        cmd.args(&launch.args)
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&inv.checkout)
            .env("SOTA_PROMPT_FILE", &inv.prompt_path)
            .env("SOTA_SUMMARY_FILE", &inv.summary_path)
            .env("SOTA_ROUND", inv.round.to_string())
            .env("SOTA_CHECKOUT", &inv.checkout)
            .env("SOTA_RUN_DIR", &inv.run_dir)
            .stdin(Stdio::from(prompt))
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(log))
            .process_group(0);
        let started = Instant::now();
        if let Err(e) = super::supervisor::refuse_if_interrupted() {
            return AgentRun::not_started(e.to_string());
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return AgentRun::not_started(format!("`{}`: {e}", launch.program));
            }
        };
        super::supervisor::register(child.id(), &format!("agent {}", launch.program));
        let outcome = loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    // Reap anything the agent left running in its group.
                    kill_group(child.id());
                    break AgentOutcome::Finished {
                        exit_code: status.code().unwrap_or(-1),
                    };
                }
                Ok(None) if started.elapsed() >= inv.timeout => {
                    kill_group(child.id());
                    let _ = child.kill();
                    let _ = child.wait();
                    break AgentOutcome::TimedOut {
                        after_secs: inv.timeout.as_secs(),
                    };
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => {
                    kill_group(child.id());
                    break AgentOutcome::FailedToStart {
                        message: e.to_string(),
                    };
                }
            }
        };
        super::supervisor::unregister(child.id());
        AgentRun {
            duration: started.elapsed(),
            usage: usage_from(launch.preset, &outcome, &inv.stdout_path(), &inv.log_path),
            outcome,
        }
    }
}

/// Reads the agent's summary when it is a regular file inside the checkout (symlinks out
/// of the checkout are not followed).
pub fn read_summary(checkout: &Path, summary: &Path) -> Option<String> {
    let root = checkout.canonicalize().ok()?;
    let meta = std::fs::symlink_metadata(summary).ok()?;
    if !meta.is_file() {
        return None;
    }
    let real = summary.canonicalize().ok()?;
    if !real.starts_with(&root) {
        return None;
    }
    std::fs::read_to_string(real).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(dir: &Path, command: &str, timeout_ms: u64) -> AgentInvocation {
        std::fs::write(dir.join("prompt.md"), "the round prompt\n").unwrap();
        AgentInvocation {
            spec: AgentSpec::shell(command),
            checkout: dir.into(),
            run_dir: dir.join("run"),
            round: 3,
            prompt_path: dir.join("prompt.md"),
            summary_path: dir.join("summary.md"),
            log_path: dir.join("agent.log"),
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    #[test]
    fn runs_in_checkout_with_placeholders() {
        let d = tempfile::tempdir().unwrap();
        let out = ShellAgent.run(&inv(
            d.path(),
            "echo \"r{round} $SOTA_ROUND $(cat)\" > {summary}",
            10_000,
        ));
        assert_eq!(out.outcome, AgentOutcome::Finished { exit_code: 0 });
        let s = read_summary(d.path(), &d.path().join("summary.md")).unwrap();
        assert_eq!(
            s.trim(),
            "r3 3 the round prompt",
            "the prompt arrives on stdin"
        );
    }

    #[test]
    fn timeout_kills_the_process_group() {
        let d = tempfile::tempdir().unwrap();
        let marker = d.path().join("late");
        let cmd = format!("(sleep 2; touch {}) & sleep 30", marker.display());
        let started = Instant::now();
        let out = ShellAgent.run(&inv(d.path(), &cmd, 300));
        assert!(
            matches!(out.outcome, AgentOutcome::TimedOut { .. }),
            "{out:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(2500));
        assert!(
            !marker.exists(),
            "the background child must be killed with the group"
        );
    }

    #[test]
    fn a_missing_program_fails_preflight_and_to_start() {
        let spec = AgentSpec {
            preset: AgentPreset::Claude,
            command: Some("sota-bot-test-no-such-claude".into()),
            ..AgentSpec::default()
        };
        let why = preflight(&spec).unwrap_err();
        assert!(
            why.contains("sota-bot-test-no-such-claude")
                && why.contains("npm install -g @anthropic-ai/claude-code"),
            "{why}"
        );
        let d = tempfile::tempdir().unwrap();
        let mut i = inv(d.path(), "", 1000);
        i.spec = spec;
        assert!(matches!(
            ShellAgent.run(&i).outcome,
            AgentOutcome::FailedToStart { .. }
        ));
        assert!(preflight(&AgentSpec::shell(" ")).is_err());
    }

    #[test]
    fn json_on_stdout_is_read_as_usage() {
        let d = tempfile::tempdir().unwrap();
        let line = r#"{"type":"result","is_error":false,"num_turns":4,"total_cost_usd":0.5,"usage":{"input_tokens":10,"output_tokens":3}}"#;
        let out = ShellAgent.run(&inv(
            d.path(),
            &format!("echo '{line}'; echo progress >&2"),
            10_000,
        ));
        assert_eq!(out.usage.turns, Some(4));
        assert_eq!(out.usage.cost_usd, Some(0.5));
        assert_eq!(
            std::fs::read_to_string(d.path().join("agent.log")).unwrap(),
            "progress\n"
        );
    }

    #[test]
    fn a_command_agent_s_api_error_on_stderr_is_its_error_message() {
        let d = tempfile::tempdir().unwrap();
        let out = ShellAgent.run(&inv(
            d.path(),
            "echo 'calling the model' >&2; echo 'Error: 401 Unauthorized (invalid x-api-key)' >&2; echo 'giving up' >&2; exit 1",
            10_000,
        ));
        assert_eq!(out.outcome, AgentOutcome::Finished { exit_code: 1 });
        let error = out.usage.error.as_deref();
        assert_eq!(error, Some("Error: 401 Unauthorized (invalid x-api-key)"));
        assert_eq!(
            error.and_then(super::super::agent_usage::classify_api_error),
            Some(super::super::agent_usage::ApiFailure::Auth)
        );
        // A clean exit, or a failure that names no API error, has no error message.
        let ok = ShellAgent.run(&inv(d.path(), "echo '401 Unauthorized' >&2", 10_000));
        assert_eq!(ok.usage.error, None);
        let other = ShellAgent.run(&inv(d.path(), "echo 'syntax error' >&2; exit 2", 10_000));
        assert_eq!(other.usage.error, None);
    }

    #[test]
    fn summary_outside_checkout_is_not_trusted() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("s.md");
        std::fs::write(&target, "PATCH: fake").unwrap();
        let link = d.path().join("summary.md");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(read_summary(d.path(), &link), None);
    }
}
