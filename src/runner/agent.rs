//! The agent port: run the configured coding agent for one round inside the checkout, with
//! a timeout that kills the agent's whole process group.
//!
//! The command is a shell line; `{prompt}`, `{summary}`, `{round}`, `{checkout}` and
//! `{run_dir}` are replaced by shell-quoted values, and the same values are exported as
//! `SOTA_PROMPT_FILE`, `SOTA_SUMMARY_FILE`, `SOTA_ROUND`, `SOTA_CHECKOUT`, `SOTA_RUN_DIR`.
//! Only files inside the checkout are read back afterwards.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One agent run.
#[derive(Debug, Clone)]
pub struct AgentInvocation {
    pub command: String,
    pub checkout: PathBuf,
    pub run_dir: PathBuf,
    pub round: u32,
    pub prompt_path: PathBuf,
    pub summary_path: PathBuf,
    pub log_path: PathBuf,
    pub timeout: Duration,
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
}

/// Anything that can run a round's agent.
pub trait AgentPort {
    fn run(&self, inv: &AgentInvocation) -> AgentOutcome;
}

/// Quotes a value for `sh`.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Substitutes the placeholders of an agent command line.
pub fn expand_command(inv: &AgentInvocation) -> String {
    inv.command
        .replace("{prompt}", &shell_quote(&inv.prompt_path.to_string_lossy()))
        .replace(
            "{summary}",
            &shell_quote(&inv.summary_path.to_string_lossy()),
        )
        .replace("{round}", &inv.round.to_string())
        .replace("{checkout}", &shell_quote(&inv.checkout.to_string_lossy()))
        .replace("{run_dir}", &shell_quote(&inv.run_dir.to_string_lossy()))
}

/// Runs the agent as `sh -c <command>` in its own process group.
pub struct ShellAgent;

fn kill_group(pid: u32) {
    // Negative pid: the whole process group the agent leads.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl AgentPort for ShellAgent {
    fn run(&self, inv: &AgentInvocation) -> AgentOutcome {
        if let Some(parent) = inv.log_path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let log = match File::create(&inv.log_path) {
            Ok(f) => f,
            Err(e) => {
                return AgentOutcome::FailedToStart {
                    message: format!("cannot create {}: {e}", inv.log_path.display()),
                }
            }
        };
        let log_err = match log.try_clone() {
            Ok(f) => f,
            Err(e) => {
                return AgentOutcome::FailedToStart {
                    message: e.to_string(),
                }
            }
        };
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(expand_command(inv))
            .current_dir(&inv.checkout)
            .env("SOTA_PROMPT_FILE", &inv.prompt_path)
            .env("SOTA_SUMMARY_FILE", &inv.summary_path)
            .env("SOTA_ROUND", inv.round.to_string())
            .env("SOTA_CHECKOUT", &inv.checkout)
            .env("SOTA_RUN_DIR", &inv.run_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .process_group(0);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return AgentOutcome::FailedToStart {
                    message: e.to_string(),
                }
            }
        };
        let started = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    // Reap anything the agent left running in its group.
                    kill_group(child.id());
                    return AgentOutcome::Finished {
                        exit_code: status.code().unwrap_or(-1),
                    };
                }
                Ok(None) if started.elapsed() >= inv.timeout => {
                    kill_group(child.id());
                    let _ = child.kill();
                    let _ = child.wait();
                    return AgentOutcome::TimedOut {
                        after_secs: inv.timeout.as_secs(),
                    };
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => {
                    kill_group(child.id());
                    return AgentOutcome::FailedToStart {
                        message: e.to_string(),
                    };
                }
            }
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
        AgentInvocation {
            command: command.into(),
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
            "echo \"r{round} $SOTA_ROUND\" > {summary}",
            10_000,
        ));
        assert_eq!(out, AgentOutcome::Finished { exit_code: 0 });
        let s = read_summary(d.path(), &d.path().join("summary.md")).unwrap();
        assert_eq!(s.trim(), "r3 3");
    }

    #[test]
    fn timeout_kills_the_process_group() {
        let d = tempfile::tempdir().unwrap();
        let marker = d.path().join("late");
        let cmd = format!("(sleep 2; touch {}) & sleep 30", marker.display());
        let started = Instant::now();
        let out = ShellAgent.run(&inv(d.path(), &cmd, 300));
        assert!(matches!(out, AgentOutcome::TimedOut { .. }), "{out:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(2500));
        assert!(
            !marker.exists(),
            "the background child must be killed with the group"
        );
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
