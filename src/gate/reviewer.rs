//! The optional LLM reviewer: its settings, the prompt built from a round's evidence, the
//! OpenAI-compatible HTTP implementation of the [`Reviewer`] port (`POST
//! {base_url}/chat/completions`), and the choice between it and a coding-agent CLI
//! ([`super::cli_reviewer`]).

use super::config::GateConfig;
use super::decide::is_full_alignment;
use super::evidence::RoundEvidence;
use super::reviewer_port::{Reviewer, ReviewerError, ReviewerPrompt};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Reviewer settings. The key is read from the environment variable named here, so the
/// config file itself never holds a secret; no key means no LLM reviewer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReviewerConfig {
    pub base_url: String,
    pub model: String,
    pub api_key_env: String,
    pub timeout_secs: u64,
    /// Review with a coding-agent CLI (`claude` or `codex`) instead of the HTTP API.
    pub cli: Option<crate::runner::agent::AgentPreset>,
    /// The CLI's model endpoint (`ANTHROPIC_BASE_URL`, or Codex's provider base URL);
    /// the CLI's default when absent.
    pub cli_base_url: Option<String>,
}

impl Default for ReviewerConfig {
    fn default() -> Self {
        ReviewerConfig {
            base_url: "https://api.openai.com/v1".into(),
            model: "gpt-4o".into(),
            api_key_env: "SOTA_REVIEWER_API_KEY".into(),
            timeout_secs: 300,
            cli: None,
            cli_base_url: None,
        }
    }
}

/// Calls an OpenAI-compatible `/chat/completions` endpoint.
pub struct OpenAiReviewer {
    config: ReviewerConfig,
    api_key: String,
    client: reqwest::blocking::Client,
}

impl OpenAiReviewer {
    /// Builds the reviewer when the key variable is set and non-empty; `None` otherwise.
    pub fn from_env(config: &ReviewerConfig) -> Option<OpenAiReviewer> {
        let key = std::env::var(&config.api_key_env).ok()?;
        OpenAiReviewer::with_key(config, key)
    }

    /// Builds the reviewer with an explicit key (empty: none). The key joins the process's
    /// secrets, so nothing the process writes afterwards can carry it.
    pub fn with_key(config: &ReviewerConfig, api_key: String) -> Option<OpenAiReviewer> {
        if api_key.trim().is_empty() {
            return None;
        }
        crate::secrets::register_value("reviewer key", &api_key);
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs.max(1)))
            .build()
            .ok()?;
        Some(OpenAiReviewer {
            config: config.clone(),
            api_key,
            client,
        })
    }

    fn url(&self) -> String {
        format!(
            "{}/chat/completions",
            self.config.base_url.trim_end_matches('/')
        )
    }
}

impl Reviewer for OpenAiReviewer {
    fn review(&self, prompt: &ReviewerPrompt) -> Result<String, ReviewerError> {
        let url = self.url();
        let body = serde_json::json!({
            "model": self.config.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": prompt.system},
                {"role": "user", "content": prompt.user},
            ],
        });
        let resp = self
            .client
            .post(&url)
            .bearer_auth(&self.api_key)
            .json(&body)
            .send()
            .map_err(|e| ReviewerError::Http {
                url: url.clone(),
                message: e.without_url().to_string(),
            })?;
        let status = resp.status();
        let text = resp.text().map_err(|e| ReviewerError::Http {
            url: url.clone(),
            message: e.to_string(),
        })?;
        if !status.is_success() {
            let body: String = text.chars().take(500).collect();
            return Err(ReviewerError::Status {
                url,
                status: status.as_u16(),
                body: crate::secrets::redact(&body),
            });
        }
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| ReviewerError::Shape {
                url: url.clone(),
                message: e.to_string(),
            })?;
        value
            .pointer("/choices/0/message/content")
            .and_then(|c| c.as_str())
            .map(str::to_string)
            .ok_or_else(|| ReviewerError::Shape {
                url,
                message: "missing choices[0].message.content".into(),
            })
    }
}

/// The reviewer a config asks for: a coding-agent CLI when `cli` is set, else the HTTP
/// reviewer when its key variable is set; `None` when neither.
pub fn from_config(
    config: &ReviewerConfig,
    checkout: &std::path::Path,
) -> Option<Box<dyn Reviewer>> {
    crate::secrets::register_env_name(&config.api_key_env);
    match config.cli {
        Some(preset) => Some(Box::new(super::cli_reviewer::CliReviewer {
            spec: crate::runner::agent::AgentSpec {
                preset,
                model: Some(config.model.clone()).filter(|m| !m.is_empty()),
                base_url: config.cli_base_url.clone(),
                api_key_env: Some(config.api_key_env.clone()).filter(|k| !k.is_empty()),
                ..Default::default()
            },
            checkout: checkout.to_path_buf(),
            timeout: Duration::from_secs(config.timeout_secs.max(1)),
            env: Vec::new(),
        })),
        None => OpenAiReviewer::from_env(config).map(|r| Box::new(r) as Box<dyn Reviewer>),
    }
}

/// The reviewer prompt: the contract, the measured facts and the agent's summary.
pub fn build_prompt(ev: &RoundEvidence, cfg: &GateConfig) -> ReviewerPrompt {
    let kind = if is_full_alignment(ev.round) {
        "FULL ALIGNMENT review: check the whole campaign plan against everything done so far, not only this round"
    } else {
        "regular round review"
    };
    let system = format!(
        "You review one round of an SGLang performance campaign (sota-bot). The campaign goal: SGLang matches or beats the best SLA-passing selected competitor under a fixed workload and SLA. Rounds must keep the fixed workload/SLA, profile when behind, patch SGLang source minimally with evidence, revalidate, and append ledgers. This is a {kind}. Answer in markdown. Include exactly one line `Mainline Progress Verdict: ADVANCED | STALLED | REGRESSED`. End with a line `COMPLETE` only when the goal is met or provably unreachable, `STOP` to halt the loop for a human, and anything else to continue. The noise threshold is {:.2}%.",
        cfg.noise_threshold_pct
    );
    let mut user = format!("# Round {}\n\n## Gap after the round\n\n", ev.round);
    for g in &ev.gaps_after {
        user.push_str(&format!(
            "- {}: {} (leader: {})\n",
            g.scenario,
            g.status.label(),
            g.leader.as_deref().unwrap_or("none")
        ));
    }
    user.push_str(&format!(
        "\nGeomean improvement over the prior best: {}\n\n## Changed files\n\n",
        ev.geomean_improvement_pct
            .map(|g| format!("{g:+.2}%"))
            .unwrap_or_else(|| "not measured".into())
    ));
    for p in ev.changed_paths.iter().take(200) {
        user.push_str(&format!("- `{p}`\n"));
    }
    if let Some(d) = ev.source_diff.as_deref().filter(|d| !d.trim().is_empty()) {
        user.push_str("\n## SGLang source diff\n\n```diff\n");
        user.push_str(d);
        user.push_str("\n```\n");
    }
    user.push_str("\n## Agent summary\n\n");
    user.push_str(ev.summary.as_deref().unwrap_or("(missing)"));
    ReviewerPrompt {
        system,
        user: crate::secrets::redact(&user),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_key_no_reviewer() {
        assert!(OpenAiReviewer::with_key(&ReviewerConfig::default(), "  ".into()).is_none());
    }
}
