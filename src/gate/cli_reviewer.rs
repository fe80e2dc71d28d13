//! The reviewer as a real coding-agent CLI (Codex or Claude Code), the way Humanize reviews
//! a round with Codex: the CLI runs headless and read-only in the checkout, gets the gate's
//! reviewer prompt (contract, measured facts, the round's diff, the agent's summary) on
//! standard input and answers in the gate's verdict format. A CLI that cannot start, exits
//! non-zero or prints no answer is a [`ReviewerError`], which the gate records as a failed
//! `reviewer.answered` check; an answer without the verdict line fails
//! `reviewer.verdict_line`. Neither passes silently.

use super::reviewer_port::{Reviewer, ReviewerError, ReviewerPrompt};
use crate::runner::agent::{AgentPreset, AgentSpec};
use crate::runner::agent_preset::find_program;
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A reviewer that runs Codex or Claude Code.
#[derive(Debug, Clone)]
pub struct CliReviewer {
    /// `claude` or `codex` (with model, endpoint and key variable as for an agent).
    pub spec: AgentSpec,
    /// Working directory of the review (the checkout, read-only for the CLI).
    pub checkout: PathBuf,
    pub timeout: Duration,
    /// Extra environment for the CLI (its state folders, a key under another name).
    pub env: Vec<(String, String)>,
}

impl CliReviewer {
    fn url(&self) -> String {
        format!("{} reviewer", self.spec.preset.as_str())
    }

    /// The read-only invocation: no edits, no commands that change anything.
    fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = Vec::new();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        match self.spec.preset {
            AgentPreset::Codex => {
                args.extend(s(&[
                    "exec",
                    "--json",
                    "--sandbox",
                    "read-only",
                    "--ephemeral",
                    "--cd",
                ]));
                args.push(self.checkout.to_string_lossy().into_owned());
                args.extend(self.spec.codex_model_args().0);
                args.push("-".into());
            }
            _ => {
                args.extend(s(&[
                    "-p",
                    "--output-format",
                    "json",
                    "--permission-mode",
                    "plan",
                    "--allowedTools",
                    "Read,Glob,Grep",
                    "--no-session-persistence",
                    "--max-turns",
                ]));
                args.push(self.spec.max_turns.unwrap_or(8).to_string());
                if let Some(m) = &self.spec.model {
                    args.push("--model".into());
                    args.push(m.clone());
                }
            }
        }
        args
    }

    /// The answer in the CLI's machine-readable output.
    fn answer(&self, stdout: &str) -> Result<String, String> {
        match self.spec.preset {
            AgentPreset::Codex => {
                let mut last = None;
                let mut error = None;
                for v in stdout
                    .lines()
                    .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
                {
                    match v["type"].as_str() {
                        Some("item.completed") if v["item"]["type"] == "agent_message" => {
                            last = v["item"]["text"].as_str().map(str::to_string)
                        }
                        Some("turn.failed") => {
                            error = v["error"]["message"].as_str().map(str::to_string)
                        }
                        _ => {}
                    }
                }
                match (last, error) {
                    (_, Some(e)) => Err(e),
                    (Some(t), None) if !t.trim().is_empty() => Ok(t),
                    _ => Err("the CLI printed no answer".into()),
                }
            }
            _ => {
                let v: Value = stdout
                    .lines()
                    .rev()
                    .find_map(|l| serde_json::from_str(l.trim()).ok())
                    .ok_or("the CLI printed no JSON result")?;
                let text = v["result"].as_str().unwrap_or("").to_string();
                if v["is_error"].as_bool().unwrap_or(false) {
                    Err(text)
                } else if text.trim().is_empty() {
                    Err("the CLI printed no answer".into())
                } else {
                    Ok(text)
                }
            }
        }
    }
}

impl Reviewer for CliReviewer {
    fn review(&self, prompt: &ReviewerPrompt) -> Result<String, ReviewerError> {
        let url = self.url();
        let fail = |message: String| ReviewerError::Http {
            url: url.clone(),
            message: crate::secrets::redact(&message),
        };
        if !matches!(self.spec.preset, AgentPreset::Claude | AgentPreset::Codex) {
            return Err(fail("a CLI reviewer is `claude` or `codex`".into()));
        }
        let program = self.spec.program();
        if find_program(&program).is_none() {
            return Err(fail(format!(
                "`{program}` is not installed or not on PATH (install it with `{}`)",
                self.spec.preset.install_hint()
            )));
        }
        let launch = self.spec.launch(None, &self.checkout.to_string_lossy());
        let mut command = Command::new(&program);
        // The reviewer reads the checkout with its own key only.
        for name in crate::secrets::withheld_env(&self.spec.secret_names()) {
            command.env_remove(name);
        }
        let mut child = command
            .args(self.args())
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.checkout)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail(format!("`{program}`: {e}")))?;
        let input = format!("{}\n\n{}\n", prompt.system, prompt.user);
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(input.as_bytes());
        }
        // Read both streams on threads so a chatty CLI never blocks on a full pipe.
        let out = child.stdout.take();
        let err = child.stderr.take();
        let read = |s: Option<Box<dyn std::io::Read + Send>>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                if let Some(mut s) = s {
                    let _ = s.read_to_string(&mut text);
                }
                text
            })
        };
        let out = read(out.map(|s| Box::new(s) as Box<dyn std::io::Read + Send>));
        let err = read(err.map(|s| Box::new(s) as Box<dyn std::io::Read + Send>));
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if started.elapsed() >= self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(fail(format!(
                        "no answer within {}s",
                        self.timeout.as_secs()
                    )));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => return Err(fail(e.to_string())),
            }
        };
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        match self.answer(&stdout) {
            Ok(text) if status.success() => Ok(text),
            Ok(_) => Err(fail(format!("exited with {status}"))),
            Err(why) => {
                let last: String = stderr
                    .lines()
                    .last()
                    .unwrap_or("")
                    .chars()
                    .take(300)
                    .collect();
                Err(fail(if last.is_empty() {
                    format!("{why} ({status})")
                } else {
                    format!("{why} ({status}; {last})")
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reviewer(preset: AgentPreset) -> CliReviewer {
        CliReviewer {
            spec: AgentSpec {
                preset,
                model: Some("m".into()),
                base_url: Some("http://127.0.0.1:9/v1".into()),
                ..AgentSpec::default()
            },
            checkout: PathBuf::from("/co"),
            timeout: Duration::from_secs(5),
            env: Vec::new(),
        }
    }

    #[test]
    fn invocations_are_read_only() {
        let c = reviewer(AgentPreset::Codex).args();
        assert_eq!(&c[..4], ["exec", "--json", "--sandbox", "read-only"]);
        assert!(c.contains(&"model_providers.sota.base_url=http://127.0.0.1:9/v1".to_string()));
        assert_eq!(c.last().map(String::as_str), Some("-"));
        let c = reviewer(AgentPreset::Claude).args();
        assert!(c
            .join(" ")
            .contains("--permission-mode plan --allowedTools Read,Glob,Grep"));
    }

    #[test]
    fn answers_and_failures_are_read_from_the_output() {
        let codex = reviewer(AgentPreset::Codex);
        let ok = "{\"type\":\"item.completed\",\"item\":{\"type\":\"agent_message\",\"text\":\"Mainline Progress Verdict: ADVANCED\"}}\n";
        assert_eq!(
            codex.answer(ok).unwrap(),
            "Mainline Progress Verdict: ADVANCED"
        );
        let failed = "{\"type\":\"turn.failed\",\"error\":{\"message\":\"401\"}}\n";
        assert_eq!(codex.answer(failed).unwrap_err(), "401");
        assert!(codex.answer("").is_err());
        let claude = reviewer(AgentPreset::Claude);
        assert_eq!(
            claude
                .answer("{\"type\":\"result\",\"is_error\":false,\"result\":\"x\"}")
                .unwrap(),
            "x"
        );
        assert!(claude
            .answer("{\"type\":\"result\",\"is_error\":true,\"result\":\"API Error: 529\"}")
            .is_err());
    }

    #[test]
    fn a_missing_cli_is_an_error() {
        let mut r = reviewer(AgentPreset::Claude);
        r.spec.command = Some("sota-bot-test-no-reviewer-cli".into());
        let e = r
            .review(&ReviewerPrompt {
                system: "s".into(),
                user: "u".into(),
            })
            .unwrap_err();
        assert!(e.to_string().contains("not installed"), "{e}");
    }
}
