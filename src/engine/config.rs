//! The local configuration file (YAML) of `sota-bot local`: knowledge root, history
//! settings, agent command and timeout, simulator settings, bench plan path, reviewer and
//! gate settings. Relative paths are resolved against the config file's folder.

use crate::gate::ReviewerConfig;
use crate::runner::agent::{AgentPreset, AgentSpec};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The agent to run each round: a preset (`claude`, `codex` or `command`) and its settings.
/// Without `preset`, a `command` means the `command` preset and nothing means Claude Code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    #[serde(default)]
    pub preset: Option<AgentPreset>,
    /// `command` preset: the shell line (see `runner::agent` for placeholders); `claude` /
    /// `codex`: the executable, when not the CLI on `PATH`.
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub max_turns: Option<u32>,
    /// Model endpoint (`ANTHROPIC_BASE_URL`, or Codex's provider base URL).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Environment variable holding the agent's API key, when not the CLI's default.
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default = "default_agent_timeout")]
    pub timeout_secs: u64,
}

impl AgentSettings {
    /// The agent these settings describe.
    pub fn spec(&self) -> AgentSpec {
        AgentSpec {
            model: self.model.clone(),
            max_turns: self.max_turns,
            base_url: self.base_url.clone(),
            api_key_env: self.api_key_env.clone(),
            ..AgentSpec::from_parts(self.preset, self.command.clone())
        }
    }
}

fn default_agent_timeout() -> u64 {
    3600
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            preset: None,
            command: None,
            model: None,
            max_turns: None,
            base_url: None,
            api_key_env: None,
            timeout_secs: default_agent_timeout(),
        }
    }
}

/// Simulator lane settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimSettings {
    /// Use the built-in simulated engines instead of real frameworks.
    #[serde(default)]
    pub enabled: bool,
    /// Real seconds per simulated second (`sim serve --time-scale`; 0.01 runs 100x faster).
    #[serde(default = "default_time_scale")]
    pub time_scale: f64,
    /// Competitor engine profiles by framework (paths).
    #[serde(default)]
    pub competitor_profiles: std::collections::BTreeMap<String, PathBuf>,
    /// SGLang engine profile inside the checkout (patched by the agent).
    #[serde(default = "default_sglang_profile")]
    pub sglang_profile: PathBuf,
    /// Tokenizer of the simulated model: `builtin:sim` (default) or a real `tokenizer.json`
    /// (or model folder), so a simulated campaign can count tokens as a real model does.
    #[serde(default)]
    pub tokenizer: Option<String>,
}

fn default_time_scale() -> f64 {
    0.01
}

fn default_sglang_profile() -> PathBuf {
    PathBuf::from("sim/engine.yaml")
}

impl Default for SimSettings {
    fn default() -> Self {
        SimSettings {
            enabled: false,
            time_scale: default_time_scale(),
            competitor_profiles: Default::default(),
            sglang_profile: default_sglang_profile(),
            tokenizer: None,
        }
    }
}

/// Gate settings that may be overridden locally.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateSettings {
    pub max_rounds: Option<u32>,
    /// The campaign's agent cost budget in USD (the campaign stops once it is spent).
    #[serde(default)]
    pub max_agent_cost_usd: Option<f64>,
    /// Use the LLM reviewer when its key variable is set.
    #[serde(default)]
    pub llm_reviewer: bool,
    #[serde(default)]
    pub reviewer: ReviewerConfig,
}

/// Process lane settings: timeouts and the per-framework help and profile commands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaneSettings {
    #[serde(default = "default_ready")]
    pub ready_timeout_secs: u64,
    #[serde(default = "default_bench")]
    pub bench_timeout_secs: u64,
    /// framework -> file name -> shell command printing the help text.
    #[serde(default)]
    pub help: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
    /// framework -> shell command writing profiler tables under `{out_dir}`.
    #[serde(default)]
    pub profile: std::collections::BTreeMap<String, String>,
}

fn default_ready() -> u64 {
    600
}

fn default_bench() -> u64 {
    3600
}

impl Default for LaneSettings {
    fn default() -> Self {
        LaneSettings {
            ready_timeout_secs: default_ready(),
            bench_timeout_secs: default_bench(),
            help: Default::default(),
            profile: Default::default(),
        }
    }
}

/// Phase 0.5 settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistorySettings {
    /// The model's config.json (default: the model folder, then the Hugging Face cache).
    pub model_config: Option<PathBuf>,
    /// Upstream repository searched for the family's open and recently merged PRs.
    #[serde(default = "default_upstream")]
    pub upstream: String,
    /// Environment variable holding a GitHub token; without one no search runs locally.
    pub github_token_env: Option<String>,
    #[serde(default = "default_api_url")]
    pub github_api_url: String,
}

fn default_upstream() -> String {
    crate::campaign::repo_config::DEFAULT_UPSTREAM.into()
}

fn default_api_url() -> String {
    "https://api.github.com".into()
}

impl Default for HistorySettings {
    fn default() -> Self {
        HistorySettings {
            model_config: None,
            upstream: default_upstream(),
            github_token_env: None,
            github_api_url: default_api_url(),
        }
    }
}

/// The whole local config file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalConfig {
    pub knowledge_root: Option<PathBuf>,
    #[serde(default)]
    pub history: HistorySettings,
    #[serde(default)]
    pub agent: AgentSettings,
    #[serde(default)]
    pub sim: SimSettings,
    /// Bench plan (search space per framework).
    pub plan: Option<PathBuf>,
    #[serde(default)]
    pub gate: GateSettings,
    #[serde(default)]
    pub lane: LaneSettings,
}

/// A config file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
}

impl LocalConfig {
    /// Parses config text; `base` resolves relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<LocalConfig, ConfigError> {
        let mut cfg: LocalConfig =
            serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Parse {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        if cfg.agent.max_turns == Some(0) {
            return Err(ConfigError::Parse {
                path: path.display().to_string(),
                message: "agent.max_turns must be at least 1".into(),
            });
        }
        if cfg
            .gate
            .max_agent_cost_usd
            .is_some_and(|c| !(c.is_finite() && c > 0.0))
        {
            return Err(ConfigError::Parse {
                path: path.display().to_string(),
                message: "gate.max_agent_cost_usd must be a positive number".into(),
            });
        }
        if cfg.agent.timeout_secs == 0 {
            return Err(ConfigError::Parse {
                path: path.display().to_string(),
                message: "agent.timeout_secs must be at least 1".into(),
            });
        }
        if !(cfg.sim.time_scale.is_finite() && cfg.sim.time_scale > 0.0) {
            return Err(ConfigError::Parse {
                path: path.display().to_string(),
                message: "sim.time_scale must be a positive number".into(),
            });
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let abs = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(p) = cfg.knowledge_root.as_mut() {
            abs(p);
        }
        if let Some(p) = cfg.plan.as_mut() {
            abs(p);
        }
        if let Some(p) = cfg.history.model_config.as_mut() {
            abs(p);
        }
        if crate::github::RepoName::parse(&cfg.history.upstream).is_err() {
            return Err(ConfigError::Parse {
                path: path.display().to_string(),
                message: format!(
                    "history.upstream: `{}` is not a repository: expected owner/name",
                    cfg.history.upstream
                ),
            });
        }
        for p in cfg.sim.competitor_profiles.values_mut() {
            abs(p);
        }
        if let Some(t) = cfg.sim.tokenizer.as_mut() {
            let as_path = PathBuf::from(t.as_str());
            if t.as_str() != crate::tokenizer::BUILTIN_SIM && as_path.is_relative() {
                *t = base.join(as_path).display().to_string();
            }
        }
        Ok(cfg)
    }

    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<LocalConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        LocalConfig::parse(&text, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_resolves_paths() {
        let c = LocalConfig::parse(
            "knowledge_root: knowledge\nagent:\n  command: ./agent.sh\n  timeout_secs: 30\nsim:\n  enabled: true\n  time_scale: 50\nplan: plan.yaml\ngate:\n  max_rounds: 6\n",
            Path::new("/demo/config.yaml"),
        )
        .unwrap();
        assert_eq!(c.knowledge_root, Some(PathBuf::from("/demo/knowledge")));
        assert_eq!(c.plan, Some(PathBuf::from("/demo/plan.yaml")));
        assert_eq!(c.agent.timeout_secs, 30);
        assert_eq!(c.gate.max_rounds, Some(6));
        assert_eq!(c.agent.spec().preset, AgentPreset::Command);
        let c = LocalConfig::parse(
            "agent:\n  preset: codex\n  model: gpt-5-codex\n  base_url: http://127.0.0.1:1/v1\n  api_key_env: SIM_KEY\ngate:\n  max_agent_cost_usd: 5\n",
            Path::new("/demo/config.yaml"),
        )
        .unwrap();
        let spec = c.agent.spec();
        assert_eq!(
            (
                spec.preset,
                spec.model.as_deref(),
                spec.api_key_env.as_deref()
            ),
            (AgentPreset::Codex, Some("gpt-5-codex"), Some("SIM_KEY"))
        );
        assert_eq!(c.gate.max_agent_cost_usd, Some(5.0));
        let c = LocalConfig::parse(
            "gate:\n  llm_reviewer: true\n  reviewer:\n    cli: codex\n    model: gpt-5-codex\n",
            Path::new("/demo/config.yaml"),
        )
        .unwrap();
        assert_eq!(c.gate.reviewer.cli, Some(AgentPreset::Codex));
        assert!(crate::gate::reviewer::from_config(&c.gate.reviewer, Path::new("/co")).is_some());
        assert_eq!(
            LocalConfig::default().agent.spec().preset,
            AgentPreset::Claude,
            "no agent settings: Claude Code"
        );
        assert_eq!(c.history, HistorySettings::default());
        let h = LocalConfig::parse(
            "history:\n  model_config: models/config.json\n  upstream: acme/sglang\n  github_token_env: GH_TOKEN\n",
            Path::new("/demo/config.yaml"),
        )
        .unwrap()
        .history;
        assert_eq!(
            h.model_config,
            Some(PathBuf::from("/demo/models/config.json"))
        );
        assert_eq!(h.upstream, "acme/sglang");
        assert_eq!(h.github_token_env.as_deref(), Some("GH_TOKEN"));
        assert!(LocalConfig::parse("history: {upstream: nope}\n", Path::new("c.yaml")).is_err());
    }

    #[test]
    fn typos_and_bad_values_are_errors() {
        let e = LocalConfig::parse("agnet: {}\n", Path::new("c.yaml")).unwrap_err();
        assert!(e.to_string().contains("c.yaml"), "{e}");
        assert!(LocalConfig::parse("sim:\n  time_scale: 0\n", Path::new("c.yaml")).is_err());
        let e = LocalConfig::parse("agent:\n  preset: cursor\n", Path::new("c.yaml")).unwrap_err();
        assert!(e.to_string().contains("unknown variant `cursor`"), "{e}");
        assert!(LocalConfig::parse("agent:\n  max_turns: 0\n", Path::new("c.yaml")).is_err());
        assert!(
            LocalConfig::parse("gate:\n  max_agent_cost_usd: -1\n", Path::new("c.yaml")).is_err()
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in ".*") {
            let _ = LocalConfig::parse(&s, Path::new("c.yaml"));
        }
    }
}
