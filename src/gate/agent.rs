//! What a round's coding agent did, as the gate sees it: how it ended, what it cost, and
//! why a round failed before any measurement. A failed agent round is judged from these
//! facts alone (nothing was revalidated, so no verdict comes from noise), and two in a row
//! put the campaign on hold with a message that says what to fix.

use crate::runner::agent_usage::{classify_api_error, AgentUsage, ApiFailure};
use serde::{Deserialize, Serialize};

/// Why the agent's round ended before revalidation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AgentFailure {
    /// The agent could not be started (CLI missing, bad configuration).
    NotStarted { message: String },
    /// The agent exited non-zero; `message` is its own error when it reported one.
    Exited { code: i32, message: Option<String> },
    /// The agent ran past the round's timeout and was killed.
    TimedOut { after_secs: u64 },
    /// The agent finished but changed no SGLang source.
    NoChange,
    /// The agent changed paths it may not touch (the run directory's bot-owned files,
    /// `.github/`, runtime state).
    ForbiddenPaths { paths: Vec<String> },
    /// The agent wrote credentials into files (kinds only, never values).
    Credentials { files: Vec<String> },
}

impl AgentFailure {
    /// One sentence for reports and comments.
    pub fn describe(&self) -> String {
        match self {
            AgentFailure::NotStarted { message } => format!("the agent could not start: {message}"),
            AgentFailure::Exited { code, message } => match message {
                Some(m) => format!("the agent exited with code {code}: {m}"),
                None => format!("the agent exited with code {code}"),
            },
            AgentFailure::TimedOut { after_secs } => {
                format!("the agent did not finish within {after_secs}s and was stopped")
            }
            AgentFailure::NoChange => {
                "the agent finished without changing any SGLang source".into()
            }
            AgentFailure::ForbiddenPaths { paths } => {
                format!("the agent changed paths it may not touch: {}", list(paths))
            }
            AgentFailure::Credentials { files } => {
                format!("the agent wrote credentials into {}", list(files))
            }
        }
    }

    /// What a maintainer can do about it.
    pub fn fix_hint(&self) -> &'static str {
        match self {
            AgentFailure::NotStarted { .. } => "install the agent CLI on the runner (or fix `agent.preset` / `agent.command` in the config)",
            AgentFailure::Exited { message, .. } => match message.as_deref().and_then(classify_api_error) {
                Some(ApiFailure::Auth) => "check the agent's API key secret (named in `agent.secret_names`) and the job's env mapping",
                Some(ApiFailure::Overloaded) => "the model API is rate-limited or overloaded: wait, or raise the account's limits",
                None => "read the agent log tail below; fix the agent's configuration or prompt",
            },
            AgentFailure::TimedOut { .. } => "raise `agent.timeout_minutes` or lower `agent.max_turns`",
            AgentFailure::NoChange => "read the agent log and summary: the model may need a different model, more turns, or a maintainer note (`/sota continue <note>`)",
            AgentFailure::ForbiddenPaths { .. } => "the agent may change SGLang source and its round summary only; tell it so in a maintainer note",
            AgentFailure::Credentials { .. } => "rotate the leaked credential; the change was discarded and never committed",
        }
    }

    /// The contract check this failure fails.
    pub fn check_id(&self) -> &'static str {
        match self {
            AgentFailure::ForbiddenPaths { .. } => "agent.allowed_paths",
            AgentFailure::Credentials { .. } => "agent.no_credentials",
            _ => "agent.completed",
        }
    }
}

fn list(items: &[String]) -> String {
    let mut s: Vec<String> = items.iter().take(8).map(|p| format!("`{p}`")).collect();
    if items.len() > 8 {
        s.push(format!("and {} more", items.len() - 8));
    }
    s.join(", ")
}

/// The record of one agent run (committed with the round, shown in its report).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentReport {
    /// The agent as configured (`claude (model x, max 30 turns)`).
    pub agent: String,
    /// How it ended (`ok`, `exit 1`, `timeout after 60s`, `failed to start: ...`).
    pub outcome: String,
    pub duration_secs: f64,
    pub usage: AgentUsage,
    /// Set when the round ended before revalidation.
    pub failure: Option<AgentFailure>,
    /// Messages of the agent's own commits, folded into the round commit.
    pub commits: Vec<String>,
    /// Scrubbed last lines of the agent's output.
    pub log_tail: String,
}

/// The hold message after consecutive failed agent rounds.
pub fn hold_reason(failure: &AgentFailure, rounds: u32) -> String {
    format!(
        "the agent failed in {rounds} rounds in a row; last: {}. Fix: {}. Then comment `/sota retry` (locally: `sota-bot local resume`)",
        failure.describe(),
        failure.fix_hint()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::checks::agent_checks;

    #[test]
    fn failures_name_their_check_and_hint() {
        let f = AgentFailure::Exited {
            code: 1,
            message: Some("Failed to authenticate. API Error: 401".into()),
        };
        assert_eq!(f.check_id(), "agent.completed");
        assert!(f.fix_hint().contains("API key"));
        let f = AgentFailure::ForbiddenPaths {
            paths: vec![".github/workflows/x.yml".into()],
        };
        let checks = agent_checks(Some(&AgentReport {
            failure: Some(f.clone()),
            ..AgentReport::default()
        }));
        let failed: Vec<&str> = checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(failed, ["agent.completed", "agent.allowed_paths"]);
        assert!(checks[1].reason.contains("`.github/workflows/x.yml`"));
        assert!(agent_checks(None).is_empty());
        let ok = agent_checks(Some(&AgentReport {
            outcome: "ok".into(),
            ..AgentReport::default()
        }));
        assert!(ok.iter().all(|c| c.passed));
        assert!(hold_reason(&AgentFailure::NoChange, 2).contains("/sota retry"));
    }
}
