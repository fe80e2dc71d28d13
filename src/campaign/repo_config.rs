//! Per-repository configuration, `.github/sota-bot.yml` on the fork.
//!
//! Every key is optional. The file says where campaigns run (fork, base branch, runner
//! labels), what requests default to, and the budgets and external tools (reviewer,
//! coding agent). Validation reports every problem at once with its key path and line;
//! unknown keys get a "did you mean". Secrets are referred to by *name* only: a value that
//! looks like a token is rejected so that it never lands in a committed file.
//!
//! ```yaml
//! fork: owner/sglang
//! base_branch: main
//! upstream: sgl-project/sglang   # searched for the model family's open and merged PRs
//! runner_labels: {}            # e.g. {"h100": {"8": ["self-hosted", "8-gpu-h100"]}}
//! defaults: {gpu_model: h100, gpu_count: 1, precision: bf16, competitors: [vllm, tensorrt_llm, tokenspeed]}
//! workload: {dataset: random, num_prompts: 80, scenarios: [{name: chat, input_len: 1000, output_len: 1000}]}
//! sla: {max_p50_ttft_ms: 2000, max_p50_tpot_ms: 50, min_success_rate: 0.99}
//! budget: {max_rounds: 42, max_gpu_hours: 48, job_timeout_minutes: 360, max_agent_cost_usd: 200}
//! autonomy: auto-continue      # or wait-for-human
//! reviewer: {base_url: "https://api.openai.com/v1", model: "", api_key_env: SOTA_REVIEWER_API_KEY}
//! agent: {preset: claude, model: "", max_turns: 100, secret_names: [ANTHROPIC_API_KEY], timeout_minutes: 120}
//! ```

use super::options::{Autonomy, Precision};
use super::request::{Quantization, RequestProblem, SlaChoice};
use super::request_yaml::{sla_value, workload_value, YamlCtx};
use super::selection::competitor_from_name;
use super::slug::hardware_slug;
use super::suggest;
use super::workload::WorkloadSpec;
use super::yaml_lines::KeyLines;
use crate::bench::Sla;
use crate::framework::Framework;
use crate::runner::agent::AgentPreset;
use serde::{Deserialize, Serialize};
use serde_yaml_ng::{Mapping, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Problems in the repository config use the request's problem type (field = key path).
pub type ConfigProblem = RequestProblem;

/// The built-in SLA: p50 TTFT at most 2 s, p50 TPOT at most 50 ms, 99% of requests succeed.
pub fn default_sla() -> Sla {
    Sla {
        max_p50_ttft_ms: Some(2000.0),
        max_p50_tpot_ms: Some(50.0),
        min_success_rate: Some(0.99),
        max_p50_e2e_ms: None,
    }
}

/// Defaults for requests that leave fields out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepoDefaults {
    pub gpu_model: Option<String>,
    pub gpu_count: u32,
    pub precision: Option<Precision>,
    /// Also accepted (not in the original schema): the default quantization policy.
    pub quantization: Option<Quantization>,
    /// The default comparison set.
    pub competitors: Vec<Framework>,
}

impl Default for RepoDefaults {
    fn default() -> Self {
        RepoDefaults {
            gpu_model: None,
            gpu_count: 1,
            precision: None,
            quantization: None,
            competitors: Framework::COMPETITORS.to_vec(),
        }
    }
}

/// Limits on a campaign's cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    pub max_rounds: u32,
    pub max_gpu_hours: f64,
    pub job_timeout_minutes: u32,
    /// The agent's API spend over the whole campaign (USD, as the CLI reports it); none:
    /// unlimited.
    #[serde(default)]
    pub max_agent_cost_usd: Option<f64>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_rounds: 42,
            max_gpu_hours: 48.0,
            job_timeout_minutes: 360,
            max_agent_cost_usd: None,
        }
    }
}

/// The optional LLM reviewer (OpenAI-compatible). Off when `model` is empty or the key
/// variable is unset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewerConfig {
    pub base_url: String,
    pub model: String,
    /// Name of the environment variable (or Actions secret) holding the API key.
    pub api_key_env: String,
}

impl Default for ReviewerConfig {
    fn default() -> Self {
        ReviewerConfig {
            base_url: "https://api.openai.com/v1".into(),
            model: String::new(),
            api_key_env: "SOTA_REVIEWER_API_KEY".into(),
        }
    }
}

/// The coding agent each round runs on the GPU host: a preset (`claude`, `codex`,
/// `command`) and its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentConfig {
    pub preset: AgentPreset,
    /// `command` preset: the shell line; `claude`/`codex`: the executable when it is not
    /// the CLI on `PATH`. Empty: none.
    pub command: String,
    /// Model for the CLI; empty: the CLI's default.
    pub model: String,
    pub max_turns: Option<u32>,
    /// Names of Actions secrets passed to the agent's environment.
    pub secret_names: Vec<String>,
    pub timeout_minutes: u32,
}

/// Turn limit of a round's agent unless the config sets one.
pub const DEFAULT_AGENT_MAX_TURNS: u32 = 100;

/// The upstream SGLang repository (history and PR search) unless the config names one.
pub const DEFAULT_UPSTREAM: &str = "sgl-project/sglang";

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            preset: AgentPreset::Claude,
            command: String::new(),
            model: String::new(),
            max_turns: Some(DEFAULT_AGENT_MAX_TURNS),
            secret_names: vec!["ANTHROPIC_API_KEY".into()],
            timeout_minutes: 120,
        }
    }
}

/// `.github/sota-bot.yml`, with defaults filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepoConfig {
    /// `owner/name` of the SGLang fork campaigns push to; `None` = the repository itself.
    pub fork: Option<String>,
    pub base_branch: String,
    /// `owner/name` of the upstream SGLang repository whose open and recently merged PRs
    /// for the model family Phase 0.5 marks as in flight.
    pub upstream: String,
    /// hardware slug -> GPU count -> runner labels.
    pub runner_labels: BTreeMap<String, BTreeMap<u32, Vec<String>>>,
    pub defaults: RepoDefaults,
    pub workload: WorkloadSpec,
    /// The default SLA; `sla: none` in the file means no limits.
    pub sla: Sla,
    pub budget: Budget,
    pub autonomy: Autonomy,
    pub reviewer: ReviewerConfig,
    pub agent: AgentConfig,
    /// Dotted keys present in the file, so reports can say where a default came from.
    #[serde(skip)]
    pub set_keys: BTreeSet<String>,
}

impl Default for RepoConfig {
    fn default() -> Self {
        RepoConfig {
            fork: None,
            base_branch: "main".into(),
            upstream: DEFAULT_UPSTREAM.into(),
            runner_labels: BTreeMap::new(),
            defaults: RepoDefaults::default(),
            workload: WorkloadSpec::default(),
            sla: default_sla(),
            budget: Budget::default(),
            autonomy: Autonomy::AutoContinue,
            reviewer: ReviewerConfig::default(),
            agent: AgentConfig::default(),
            set_keys: BTreeSet::new(),
        }
    }
}

impl RepoConfig {
    /// Runner labels for a GPU environment: the override from `runner_labels` when present,
    /// else SGLang CI's convention `["self-hosted", "<count>-gpu-<hardware>"]`.
    pub fn runner_labels_for(&self, gpu_model: &str, count: u32) -> Vec<String> {
        let hardware = hardware_slug(gpu_model);
        if let Some(labels) = self
            .runner_labels
            .get(&hardware)
            .and_then(|by_count| by_count.get(&count))
        {
            return labels.clone();
        }
        vec!["self-hosted".to_string(), format!("{count}-gpu-{hardware}")]
    }

    /// Whether the file set `key` (dotted path) rather than leaving the built-in default.
    pub fn is_set(&self, key: &str) -> bool {
        self.set_keys.contains(key)
    }
}

const TOP_KEYS: &[&str] = &[
    "fork",
    "base_branch",
    "upstream",
    "runner_labels",
    "defaults",
    "workload",
    "sla",
    "budget",
    "autonomy",
    "reviewer",
    "agent",
];
const DEFAULTS_KEYS: &[&str] = &[
    "gpu_model",
    "gpu_count",
    "precision",
    "quantization",
    "competitors",
];
const BUDGET_KEYS: &[&str] = &[
    "max_rounds",
    "max_gpu_hours",
    "job_timeout_minutes",
    "max_agent_cost_usd",
];
const REVIEWER_KEYS: &[&str] = &["base_url", "model", "api_key_env"];
const AGENT_KEYS: &[&str] = &[
    "preset",
    "command",
    "model",
    "max_turns",
    "secret_names",
    "timeout_minutes",
];

/// Parses `.github/sota-bot.yml`. An empty file is the all-defaults config.
pub fn parse_repo_config(text: &str) -> Result<RepoConfig, Vec<ConfigProblem>> {
    let value: Value = match serde_yaml_ng::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Err(vec![ConfigProblem::invalid(
                "yaml",
                format!("not valid YAML: {e}"),
            )
            .at(e.location().map(|l| l.line()))])
        }
    };
    let lines = KeyLines::scan(text, 1);
    let mut w = Walker {
        ctx: YamlCtx::new(&lines),
        config: RepoConfig::default(),
    };
    match &value {
        Value::Null => {}
        Value::Mapping(map) => w.top(map),
        _ => w.ctx.invalid(
            "config",
            "expected a mapping of settings (fork: ..., defaults: ...)",
        ),
    }
    if w.ctx.problems.is_empty() {
        Ok(w.config)
    } else {
        Err(super::request_yaml::in_document_order(w.ctx.problems))
    }
}

struct Walker<'a> {
    ctx: YamlCtx<'a>,
    config: RepoConfig,
}

impl Walker<'_> {
    fn entries<'v>(
        &mut self,
        map: &'v Mapping,
        path: &str,
        known: &[&str],
    ) -> Vec<(String, String, &'v Value)> {
        let mut out = Vec::new();
        for (k, v) in map {
            let Some(key) = k.as_str() else {
                self.ctx.invalid(path, "keys must be text");
                continue;
            };
            let full = if path.is_empty() {
                key.to_string()
            } else {
                format!("{path}.{key}")
            };
            if known.contains(&key) {
                self.config.set_keys.insert(full.clone());
                out.push((key.to_string(), full, v));
            } else {
                let hint = suggest::hint(key, known);
                self.ctx.invalid(
                    &full,
                    format!(
                        "unknown key `{key}`{hint}; expected one of: {}",
                        known.join(", ")
                    ),
                );
            }
        }
        out
    }

    fn mapping<'v>(&mut self, v: &'v Value, path: &str) -> Option<&'v Mapping> {
        match v {
            Value::Mapping(m) => Some(m),
            Value::Null => None,
            _ => {
                self.ctx.invalid(path, "expected a mapping");
                None
            }
        }
    }

    fn text(&mut self, v: &Value, path: &str) -> Option<String> {
        match v {
            Value::String(s) => Some(s.trim().to_string()),
            Value::Number(n) => Some(n.to_string()),
            Value::Null => None,
            _ => {
                self.ctx.invalid(path, "expected text");
                None
            }
        }
    }

    fn whole(&mut self, v: &Value, path: &str, min: u64, max: u64) -> Option<u32> {
        match v.as_u64() {
            Some(n) if (min..=max).contains(&n) => u32::try_from(n).ok(),
            _ => {
                self.ctx
                    .invalid(path, format!("expected a whole number from {min} to {max}"));
                None
            }
        }
    }

    /// An `owner/name` repository.
    fn repository(&mut self, v: &Value, path: &str) -> Option<String> {
        let repo = self.text(v, path)?;
        let parts: Vec<&str> = repo.split('/').collect();
        let ok = parts.len() == 2
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            });
        if ok {
            Some(repo)
        } else {
            self.ctx.invalid(
                path,
                format!("`{repo}` is not a repository: expected owner/name"),
            );
            None
        }
    }

    fn env_name(&mut self, v: &Value, path: &str) -> Option<String> {
        let name = self.text(v, path)?;
        let looks_secret = ["sk-", "ghp_", "gho_", "ghs_", "github_pat_", "hf_", "xox"]
            .iter()
            .any(|p| name.starts_with(p));
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if looks_secret {
            self.ctx.invalid(path, "this looks like a secret value: put the NAME of the environment variable or Actions secret here, never the secret itself");
            None
        } else if !valid {
            self.ctx.invalid(
                path,
                format!("`{name}` is not an environment variable name: expected UPPER_SNAKE_CASE"),
            );
            None
        } else {
            Some(name)
        }
    }

    fn top(&mut self, map: &Mapping) {
        for (key, path, v) in self.entries(map, "", TOP_KEYS) {
            match key.as_str() {
                "fork" => {
                    if let Some(fork) = self.repository(v, &path) {
                        self.config.fork = Some(fork);
                    }
                }
                "upstream" => {
                    if let Some(up) = self.repository(v, &path) {
                        self.config.upstream = up;
                    }
                }
                "base_branch" => {
                    if let Some(b) = self.text(v, &path) {
                        if b.is_empty() || b.contains(char::is_whitespace) || b.contains("..") {
                            self.ctx
                                .invalid(&path, format!("`{b}` is not a branch name"));
                        } else {
                            self.config.base_branch = b;
                        }
                    }
                }
                "runner_labels" => self.runner_labels(v, &path),
                "defaults" => self.defaults(v, &path),
                "workload" => {
                    let over = workload_value(v, &path, &mut self.ctx);
                    let w = &mut self.config.workload;
                    if let Some(kind) = over.dataset {
                        w.dataset_kind = kind;
                    }
                    if over.dataset_path.is_some() {
                        w.dataset_path = over.dataset_path;
                    }
                    if let Some(n) = over.num_prompts {
                        w.num_prompts = n;
                    }
                    if let Some(s) = over.scenarios {
                        w.scenarios = s;
                    }
                    for (field, message) in w.problems() {
                        self.ctx.invalid(&format!("workload.{field}"), message);
                    }
                }
                "sla" => match sla_value(v, &path, &mut self.ctx) {
                    SlaChoice::Default => {}
                    SlaChoice::Unlimited => self.config.sla = Sla::default(),
                    SlaChoice::Custom(s) => self.config.sla = s,
                },
                "autonomy" => {
                    if let Some(t) = self.text(v, &path) {
                        match Autonomy::parse(&t) {
                            Some(a) => self.config.autonomy = a,
                            None => self.ctx.invalid(&path, format!("`{t}` is not an autonomy mode: expected auto-continue or wait-for-human")),
                        }
                    }
                }
                "budget" => self.budget(v, &path),
                "reviewer" => self.reviewer(v, &path),
                _ => self.agent(v, &path),
            }
        }
    }

    fn runner_labels(&mut self, v: &Value, path: &str) {
        let Some(map) = self.mapping(v, path) else {
            return;
        };
        for (hw, counts) in map {
            let Some(hw_name) = hw.as_str() else {
                self.ctx
                    .invalid(path, "hardware keys must be text such as h100");
                continue;
            };
            let hw_path = format!("{path}.{hw_name}");
            let hardware = hardware_slug(hw_name);
            let Some(count_map) = self.mapping(counts, &hw_path) else {
                continue;
            };
            for (count, labels) in count_map {
                let count_text = match count {
                    Value::Number(n) => n.to_string(),
                    Value::String(s) => s.clone(),
                    _ => String::new(),
                };
                let label_path = format!("{hw_path}.{count_text}");
                let Some(n) = count_text.trim().parse::<u32>().ok().filter(|n| *n > 0) else {
                    self.ctx.invalid(
                        &label_path,
                        format!(
                            "`{count_text}` is not a GPU count: expected a positive whole number"
                        ),
                    );
                    continue;
                };
                let list: Option<Vec<String>> = labels.as_sequence().and_then(|items| {
                    items
                        .iter()
                        .map(|i| i.as_str().map(str::to_string))
                        .collect()
                });
                match list {
                    Some(l) if !l.is_empty() && l.iter().all(|s| !s.trim().is_empty()) => {
                        self.config.runner_labels.entry(hardware.clone()).or_default().insert(n, l);
                    }
                    _ => self.ctx.invalid(&label_path, "expected a non-empty list of runner labels, e.g. [self-hosted, 8-gpu-h100]"),
                }
            }
        }
    }

    fn defaults(&mut self, v: &Value, path: &str) {
        let Some(map) = self.mapping(v, path) else {
            return;
        };
        for (key, full, value) in self.entries(map, path, DEFAULTS_KEYS) {
            match key.as_str() {
                "gpu_model" => {
                    self.config.defaults.gpu_model =
                        self.text(value, &full).filter(|s| !s.is_empty())
                }
                "gpu_count" => {
                    if let Some(n) = self.whole(value, &full, 1, 1024) {
                        self.config.defaults.gpu_count = n;
                    }
                }
                "precision" => {
                    if let Some(t) = self.text(value, &full) {
                        match Precision::parse(&t) {
                            Some(p) => self.config.defaults.precision = Some(p),
                            None => self.ctx.invalid(
                                &full,
                                format!(
                                    "`{t}` is not a precision: expected bf16, fp16, fp32 or auto"
                                ),
                            ),
                        }
                    }
                }
                "quantization" => {
                    if let Some(t) = self.text(value, &full) {
                        let mut probe = super::request::CampaignRequest::default();
                        match probe.set_scalar(super::request::ScalarField::Quantization, &t) {
                            Ok(()) => self.config.defaults.quantization = probe.quantization,
                            Err(m) => self.ctx.invalid(&full, m),
                        }
                    }
                }
                _ => {
                    let items: Vec<&Value> = match value {
                        Value::Sequence(items) => items.iter().collect(),
                        other => vec![other],
                    };
                    let mut list = Vec::new();
                    for (i, item) in items.iter().enumerate() {
                        let item_path = format!("{full}[{i}]");
                        match item.as_str().map(competitor_from_name) {
                            Some(Ok(fw)) if !list.contains(&fw) => list.push(fw),
                            Some(Ok(fw)) => self
                                .ctx
                                .invalid(&item_path, format!("`{fw}` is listed twice")),
                            Some(Err(m)) => self.ctx.invalid(&item_path, m),
                            None => self.ctx.invalid(&item_path, "expected a framework name"),
                        }
                    }
                    self.config.defaults.competitors = list;
                }
            }
        }
    }

    fn budget(&mut self, v: &Value, path: &str) {
        let Some(map) = self.mapping(v, path) else {
            return;
        };
        for (key, full, value) in self.entries(map, path, BUDGET_KEYS) {
            match key.as_str() {
                "max_rounds" => {
                    if let Some(n) = self.whole(value, &full, 1, 1000) {
                        self.config.budget.max_rounds = n;
                    }
                }
                "job_timeout_minutes" => {
                    if let Some(n) = self.whole(value, &full, 1, 7 * 24 * 60) {
                        self.config.budget.job_timeout_minutes = n;
                    }
                }
                "max_agent_cost_usd" => match value.as_f64() {
                    Some(c) if c.is_finite() && c > 0.0 => {
                        self.config.budget.max_agent_cost_usd = Some(c)
                    }
                    _ => self
                        .ctx
                        .invalid(&full, "expected a positive number of US dollars"),
                },
                _ => match value.as_f64() {
                    Some(h) if h.is_finite() && h > 0.0 => self.config.budget.max_gpu_hours = h,
                    _ => self
                        .ctx
                        .invalid(&full, "expected a positive number of GPU-hours"),
                },
            }
        }
    }

    fn reviewer(&mut self, v: &Value, path: &str) {
        let Some(map) = self.mapping(v, path) else {
            return;
        };
        for (key, full, value) in self.entries(map, path, REVIEWER_KEYS) {
            match key.as_str() {
                "base_url" => {
                    if let Some(u) = self.text(value, &full) {
                        match url::Url::parse(&u) {
                            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {
                                self.config.reviewer.base_url = u
                            }
                            _ => self
                                .ctx
                                .invalid(&full, format!("`{u}` is not an http(s) URL")),
                        }
                    }
                }
                "model" => self.config.reviewer.model = self.text(value, &full).unwrap_or_default(),
                _ => {
                    if let Some(n) = self.env_name(value, &full) {
                        self.config.reviewer.api_key_env = n;
                    }
                }
            }
        }
    }

    fn agent(&mut self, v: &Value, path: &str) {
        let Some(map) = self.mapping(v, path) else {
            return;
        };
        let mut preset_set = false;
        for (key, full, value) in self.entries(map, path, AGENT_KEYS) {
            match key.as_str() {
                "preset" => {
                    if let Some(t) = self.text(value, &full) {
                        match AgentPreset::parse(&t) {
                            Some(p) => {
                                self.config.agent.preset = p;
                                preset_set = true;
                            }
                            None => {
                                let hint = suggest::hint(&t, AgentPreset::NAMES);
                                self.ctx.invalid(
                                    &full,
                                    format!(
                                        "`{t}` is not an agent preset{hint}; expected one of: {}",
                                        AgentPreset::NAMES.join(", ")
                                    ),
                                )
                            }
                        }
                    }
                }
                "command" => match self.text(value, &full) {
                    Some(c) if !c.is_empty() => self.config.agent.command = c,
                    Some(_) => self
                        .ctx
                        .invalid(&full, "the agent command must not be empty"),
                    None => {}
                },
                "model" => self.config.agent.model = self.text(value, &full).unwrap_or_default(),
                "max_turns" => {
                    if let Some(n) = self.whole(value, &full, 1, 10_000) {
                        self.config.agent.max_turns = Some(n);
                    }
                }
                "timeout_minutes" => {
                    if let Some(n) = self.whole(value, &full, 1, 24 * 60) {
                        self.config.agent.timeout_minutes = n;
                    }
                }
                _ => {
                    let items: Vec<Value> = match value {
                        Value::Sequence(items) => items.clone(),
                        Value::Null => Vec::new(),
                        other => vec![other.clone()],
                    };
                    let mut names = Vec::new();
                    for (i, item) in items.iter().enumerate() {
                        if let Some(n) = self.env_name(item, &format!("{full}[{i}]")) {
                            names.push(n);
                        }
                    }
                    self.config.agent.secret_names = names;
                }
            }
        }
        // A command line without a preset is the `command` preset, as before presets.
        if !preset_set && !self.config.agent.command.is_empty() {
            self.config.agent.preset = AgentPreset::Command;
        }
        if self.config.agent.preset == AgentPreset::Command && self.config.agent.command.is_empty()
        {
            self.ctx.invalid(
                &format!("{path}.command"),
                "the `command` agent preset needs a command line",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"fork: owner/sglang
base_branch: main
upstream: sgl-project/sglang   # searched for the model family's open and merged PRs
runner_labels: {"h100": {"8": ["self-hosted", "8-gpu-h100-big"]}}
defaults: {gpu_model: h100, gpu_count: 1, precision: bf16, competitors: [vllm, tensorrt_llm, tokenspeed]}
workload: {dataset: random, num_prompts: 80, scenarios: [{name: chat, input_len: 1000, output_len: 1000}, {name: summarization, input_len: 8000, output_len: 1000}]}
sla: {max_p50_ttft_ms: 2000, max_p50_tpot_ms: 50, min_success_rate: 0.99}
budget: {max_rounds: 42, max_gpu_hours: 48, job_timeout_minutes: 360}
autonomy: auto-continue      # or wait-for-human
reviewer: {base_url: "https://api.openai.com/v1", model: "", api_key_env: SOTA_REVIEWER_API_KEY}
agent: {preset: claude, model: "", max_turns: 100, secret_names: [ANTHROPIC_API_KEY], timeout_minutes: 120}
"#;

    #[test]
    fn the_documented_example_parses() {
        let c = parse_repo_config(FULL).unwrap();
        assert_eq!(c.fork.as_deref(), Some("owner/sglang"));
        assert_eq!(c.upstream, "sgl-project/sglang");
        assert!(c.is_set("upstream"));
        assert_eq!(
            parse_repo_config("upstream: acme/sglang-mirror\n").map(|c| c.upstream),
            Ok("acme/sglang-mirror".to_string())
        );
        assert!(parse_repo_config("upstream: sglang\n").is_err());
        assert_eq!(c.defaults.precision, Some(Precision::Bf16));
        assert_eq!(c.workload, WorkloadSpec::default());
        assert_eq!(c.sla, default_sla());
        assert!(c.is_set("defaults.precision"));
        assert_eq!(
            c.runner_labels_for("NVIDIA H100 80GB HBM3", 8),
            vec!["self-hosted", "8-gpu-h100-big"]
        );
        assert_eq!(
            c.runner_labels_for("H100", 2),
            vec!["self-hosted", "2-gpu-h100"]
        );
    }

    #[test]
    fn empty_file_is_all_defaults() {
        let c = parse_repo_config("").unwrap();
        let mut expected = RepoConfig::default();
        expected.set_keys.clear();
        assert_eq!(c, expected);
        assert_eq!(c.defaults.precision, None, "precision is never invented");
        assert_eq!(c.budget.max_rounds, 42);
    }

    #[test]
    fn every_problem_with_path_line_and_hint() {
        let text = "fork: not-a-repo\ndefaults:\n  gpu_cont: 2\n  precision: fp8\nbudget:\n  max_rounds: 0\nreviewer:\n  api_key_env: sk-abc123\nagent:\n  secret_names: [lower_case]\nsla: {max_tpot_ms: 5}\nrunner_label: {}\n";
        let problems = parse_repo_config(text).unwrap_err();
        let got: Vec<(&str, Option<usize>)> = problems
            .iter()
            .map(|p| (p.field.as_str(), p.line))
            .collect();
        assert_eq!(
            got,
            [
                ("fork", Some(1)),
                ("defaults.gpu_cont", Some(3)),
                ("defaults.precision", Some(4)),
                ("budget.max_rounds", Some(6)),
                ("reviewer.api_key_env", Some(8)),
                ("agent.secret_names[0]", Some(10)),
                ("sla.max_tpot_ms", Some(11)),
                ("runner_label", Some(12)),
            ]
        );
        assert!(problems[1].message.contains("did you mean `gpu_count`"));
        assert!(problems[4].message.contains("looks like a secret value"));
        assert!(
            !problems[4].message.contains("abc123"),
            "never echo a secret"
        );
        assert!(problems[6].message.contains("max_p50_tpot_ms"));
        assert!(problems[7].message.contains("did you mean `runner_labels`"));
    }

    #[test]
    fn agent_presets() {
        let c = parse_repo_config("agent: {preset: codex, model: gpt-5-codex, max_turns: 30, secret_names: [OPENAI_API_KEY]}\nbudget: {max_agent_cost_usd: 50}\n").unwrap();
        assert_eq!(c.agent.preset, AgentPreset::Codex);
        assert_eq!(c.agent.model, "gpt-5-codex");
        assert_eq!(c.agent.max_turns, Some(30));
        assert_eq!(c.budget.max_agent_cost_usd, Some(50.0));
        // An older file: a command line alone still works, as the `command` preset.
        let c = parse_repo_config("agent: {command: \"claude -p\"}").unwrap();
        assert_eq!(c.agent.preset, AgentPreset::Command);
        let problems =
            parse_repo_config("agent: {preset: claud}\nbudget: {max_agent_cost_usd: 0}\n")
                .unwrap_err();
        assert!(
            problems[0].message.contains("did you mean `claude`"),
            "{problems:?}"
        );
        assert_eq!(problems[1].field, "budget.max_agent_cost_usd");
        assert!(parse_repo_config("agent: {preset: command}").is_err());
    }

    #[test]
    fn sla_none_means_unlimited() {
        assert_eq!(parse_repo_config("sla: none").unwrap().sla, Sla::default());
    }
}
