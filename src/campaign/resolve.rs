//! Resolution: a request merged over the repository config into a campaign whose every
//! field is concrete. This is where "missing, please provide" is decided.

use super::options::{Autonomy, Precision, PrimaryMetric};
use super::repo_config::RepoConfig;
use super::request::{CampaignRequest, Quantization, RequestProblem, SlaChoice};
use super::selection::{
    all_available, select_frameworks, FrameworkAvailability, FrameworkSelection,
    SUPPORTED_TRTLLM_BACKEND,
};
use super::slug::{hardware_slug, model_slug};
use super::workload::{DatasetKind, WorkloadSpec};
use crate::bench::Sla;
use serde::{Deserialize, Serialize};

/// Default noise threshold of the gap decision, in percent.
pub const DEFAULT_NOISE_THRESHOLD_PCT: f64 = 1.0;

/// A campaign ready to run: what the engine, the App and the reports work from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedCampaign {
    pub model: String,
    /// `None`: the model repository's default branch at benchmark time.
    pub revision: Option<String>,
    pub tokenizer: String,
    pub precision: Precision,
    /// `None`: unquantized.
    pub quantization: Option<String>,
    pub trust_remote_code: bool,
    /// `None`: the model's own maximum.
    pub max_context: Option<u32>,
    /// As requested (`H100`, `NVIDIA H100 80GB HBM3`).
    pub gpu_model: String,
    /// Normalized GPU name used in runner labels (`h100`).
    pub hardware: String,
    pub gpu_count: u32,
    pub visible_devices: Vec<u32>,
    pub multi_node: bool,
    pub runner_labels: Vec<String>,
    pub selection: FrameworkSelection,
    pub workload: WorkloadSpec,
    pub sla: Sla,
    pub history_slug: Option<String>,
    pub max_rounds: u32,
    pub autonomy: Autonomy,
    pub primary_metric: PrimaryMetric,
    pub noise_threshold_pct: f64,
    pub tensorrt_llm_backend: String,
    pub model_slug: String,
    pub notes: Option<String>,
}

impl ResolvedCampaign {
    /// `0,1,2,3`, the form of `CUDA_VISIBLE_DEVICES` and of the row's `hardware.visible_devices`.
    pub fn visible_devices_csv(&self) -> String {
        self.visible_devices
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Where a field's value came from when the request did not set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultSource {
    /// `.github/sota-bot.yml`.
    RepoConfig,
    /// sota-bot's built-in default.
    BuiltIn,
}

/// One default that resolution applied, for the restated request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedDefault {
    pub field: String,
    pub value: String,
    pub source: DefaultSource,
}

/// A resolved campaign plus the defaults that filled it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    pub campaign: ResolvedCampaign,
    pub defaults_applied: Vec<AppliedDefault>,
}

struct Defaults<'a> {
    config: &'a RepoConfig,
    applied: Vec<AppliedDefault>,
}

impl Defaults<'_> {
    fn note(&mut self, field: &str, value: impl ToString, config_key: Option<&str>) {
        let source = match config_key {
            Some(key) if self.config.is_set(key) => DefaultSource::RepoConfig,
            _ => DefaultSource::BuiltIn,
        };
        self.applied.push(AppliedDefault {
            field: field.to_string(),
            value: value.to_string(),
            source,
        });
    }

    fn set_by_config(&mut self, field: &str, value: impl ToString) {
        self.applied.push(AppliedDefault {
            field: field.to_string(),
            value: value.to_string(),
            source: DefaultSource::RepoConfig,
        });
    }
}

impl CampaignRequest {
    /// Merges this request over the repository config, assuming a runner pool that can run
    /// every framework. See [`CampaignRequest::resolve_with_pool`].
    pub fn resolve(&self, config: &RepoConfig) -> Result<ResolvedCampaign, Vec<RequestProblem>> {
        self.resolve_with_pool(config, &all_available())
            .map(|r| r.campaign)
    }

    /// Merges this request over the repository config and the runner pool's capabilities.
    /// Returns every problem at once; `Missing` only for the model, the GPU model and the
    /// precision/quantization policy.
    pub fn resolve_with_pool(
        &self,
        config: &RepoConfig,
        pool: &[FrameworkAvailability],
    ) -> Result<Resolution, Vec<RequestProblem>> {
        let mut problems = Vec::new();
        let mut d = Defaults {
            config,
            applied: Vec::new(),
        };

        let model = self.model.clone();
        if model.is_none() {
            problems.push(RequestProblem::missing("model", "please provide the model: a Hugging Face id such as meta-llama/Llama-3.1-8B-Instruct, or a checkpoint path on the runner"));
        }

        let gpu_model = match (&self.gpu.model, &config.defaults.gpu_model) {
            (Some(m), _) => Some(m.clone()),
            (None, Some(m)) => {
                d.set_by_config("gpu.model", m);
                Some(m.clone())
            }
            (None, None) => {
                problems.push(RequestProblem::missing("gpu.model", "please provide the GPU model (e.g. H100, H200, B200), or set defaults.gpu_model in .github/sota-bot.yml"));
                None
            }
        };

        let gpu_count = match (self.gpu.count, &self.gpu.visible_devices) {
            (Some(n), _) => n,
            (None, Some(ids)) => {
                let n = u32::try_from(ids.len()).unwrap_or(u32::MAX);
                d.note(
                    "gpu.count",
                    format!("{n} (number of visible GPU ids)"),
                    None,
                );
                n
            }
            (None, None) => {
                d.note(
                    "gpu.count",
                    config.defaults.gpu_count,
                    Some("defaults.gpu_count"),
                );
                config.defaults.gpu_count
            }
        };
        let multi_node = self.gpu.multi_node.unwrap_or_else(|| {
            d.note("gpu.multi_node", false, None);
            false
        });
        let visible_devices = match &self.gpu.visible_devices {
            Some(ids) => {
                let count = usize::try_from(gpu_count).unwrap_or(usize::MAX);
                let fits = if multi_node {
                    !ids.is_empty() && count % ids.len() == 0
                } else {
                    ids.len() == count
                };
                if !fits {
                    let expected = if multi_node {
                        "a divisor of the GPU count (ids per node)".to_string()
                    } else {
                        format!("exactly {gpu_count} ids, one per GPU")
                    };
                    problems.push(RequestProblem::invalid(
                        "gpu.visible_devices",
                        format!(
                            "{} GPU ids given for gpu.count {gpu_count}: expected {expected}",
                            ids.len()
                        ),
                    ));
                }
                ids.clone()
            }
            None => {
                let ids: Vec<u32> = (0..gpu_count.min(1024)).collect();
                let shown = if gpu_count == 0 {
                    "none".to_string()
                } else {
                    format!("0..{}", gpu_count - 1)
                };
                d.note("gpu.visible_devices", shown, None);
                ids
            }
        };

        let quantization = match (&self.quantization, &config.defaults.quantization) {
            (Some(q), _) => Some(q.clone()),
            (None, Some(q)) => {
                d.set_by_config("quantization", quantization_text(q));
                Some(q.clone())
            }
            (None, None) => None,
        };
        let precision = match (self.precision, config.defaults.precision) {
            (Some(p), _) => Some(p),
            (None, Some(p)) => {
                d.set_by_config("precision", p);
                Some(p)
            }
            (None, None) if quantization.is_some() => {
                d.note(
                    "precision",
                    "auto (the model's dtype; quantization given)",
                    None,
                );
                Some(Precision::Auto)
            }
            (None, None) => {
                problems.push(RequestProblem::missing("precision", "please provide the precision (bf16, fp16, fp32 or auto) and the quantization if any (e.g. fp8), or set defaults.precision in .github/sota-bot.yml"));
                None
            }
        };
        let quantization = match quantization {
            Some(Quantization::Method(m)) => Some(m),
            Some(Quantization::None) => None,
            None => {
                d.note("quantization", "none", None);
                None
            }
        };

        let tokenizer = self.tokenizer.clone().or_else(|| {
            let m = model.clone()?;
            d.note("tokenizer", format!("{m} (the model)"), None);
            Some(m)
        });
        if self.revision.is_none() {
            d.note("revision", "the model repository's default branch", None);
        }
        let trust_remote_code = self.trust_remote_code.unwrap_or_else(|| {
            d.note("trust_remote_code", false, None);
            false
        });
        if self.max_context.is_none() {
            d.note("max_context", "the model's own maximum", None);
        }

        let backend = self.tensorrt_llm_backend.clone().unwrap_or_else(|| {
            d.note("tensorrt_llm_backend", SUPPORTED_TRTLLM_BACKEND, None);
            SUPPORTED_TRTLLM_BACKEND.to_string()
        });
        let selection = select_frameworks(
            &self.frameworks,
            &config.defaults.competitors,
            pool,
            &backend,
        );
        if self.frameworks.is_default() {
            let names: Vec<&str> = config
                .defaults
                .competitors
                .iter()
                .map(|f| f.canonical())
                .collect();
            d.note(
                "frameworks",
                format!("default set: {}", names.join(", ")),
                Some("defaults.competitors"),
            );
        }
        if selection.selected.is_empty() {
            let reasons: Vec<String> = selection
                .user_excluded
                .iter()
                .chain(&selection.unsupported)
                .map(|(f, r)| format!("{f}: {r}"))
                .collect();
            problems.push(RequestProblem::invalid(
                "frameworks",
                format!(
                    "no competitor is left to compare SGLang with ({})",
                    reasons.join("; ")
                ),
            ));
        }

        let workload = self.merged_workload(config, &mut d);
        for (field, message) in workload.problems() {
            problems.push(RequestProblem::invalid(
                format!("workload.{field}"),
                message,
            ));
        }

        let sla = match &self.sla {
            SlaChoice::Custom(s) => s.clone(),
            SlaChoice::Unlimited => Sla::default(),
            SlaChoice::Default => {
                d.note("sla", describe_sla(&config.sla), Some("sla"));
                config.sla.clone()
            }
        };
        let max_rounds = self.max_rounds.unwrap_or_else(|| {
            d.note(
                "max_rounds",
                config.budget.max_rounds,
                Some("budget.max_rounds"),
            );
            config.budget.max_rounds
        });
        let autonomy = self.autonomy.unwrap_or_else(|| {
            d.note("autonomy", config.autonomy, Some("autonomy"));
            config.autonomy
        });
        let primary_metric = self.primary_metric.unwrap_or_else(|| {
            d.note("primary_metric", PrimaryMetric::default(), None);
            PrimaryMetric::default()
        });
        let noise_threshold_pct = self.noise_threshold_pct.unwrap_or_else(|| {
            d.note("noise_threshold_pct", DEFAULT_NOISE_THRESHOLD_PCT, None);
            DEFAULT_NOISE_THRESHOLD_PCT
        });
        if self.history_slug.is_none() {
            d.note("history_slug", "none (inferred by the history phase)", None);
        }

        match (model, gpu_model, precision, tokenizer) {
            (Some(model), Some(gpu_model), Some(precision), Some(tokenizer))
                if problems.is_empty() =>
            {
                let hardware = hardware_slug(&gpu_model);
                Ok(Resolution {
                    campaign: ResolvedCampaign {
                        model_slug: model_slug(&model),
                        runner_labels: config.runner_labels_for(&gpu_model, gpu_count),
                        model,
                        revision: self.revision.clone(),
                        tokenizer,
                        precision,
                        quantization,
                        trust_remote_code,
                        max_context: self.max_context,
                        gpu_model,
                        hardware,
                        gpu_count,
                        visible_devices,
                        multi_node,
                        selection,
                        workload,
                        sla,
                        history_slug: self.history_slug.clone(),
                        max_rounds,
                        autonomy,
                        primary_metric,
                        noise_threshold_pct,
                        tensorrt_llm_backend: backend,
                        notes: self.notes.clone(),
                    },
                    defaults_applied: d.applied,
                })
            }
            _ => Err(problems),
        }
    }

    fn merged_workload(&self, config: &RepoConfig, d: &mut Defaults<'_>) -> WorkloadSpec {
        let over = &self.workload;
        let mut w = config.workload.clone();
        if over.is_empty() {
            d.note("workload", w.describe(), Some("workload"));
            return w;
        }
        match (over.dataset, &over.dataset_path) {
            (Some(kind), path) => {
                w.dataset_kind = kind;
                w.dataset_path = path.clone();
            }
            // A file without a kind is a custom dataset.
            (None, Some(path)) => {
                w.dataset_kind = DatasetKind::Custom;
                w.dataset_path = Some(path.clone());
            }
            (None, None) => {}
        }
        if let Some(n) = over.num_prompts {
            w.num_prompts = n;
        }
        if let Some(s) = &over.scenarios {
            w.scenarios = s.clone();
        }
        w
    }
}

fn quantization_text(q: &Quantization) -> String {
    match q {
        Quantization::None => "none".into(),
        Quantization::Method(m) => m.clone(),
    }
}

/// `max_p50_ttft_ms 2000, max_p50_tpot_ms 50, min_success_rate 0.99`, or `none`.
pub fn describe_sla(sla: &Sla) -> String {
    let parts: Vec<String> = [
        ("max_p50_ttft_ms", sla.max_p50_ttft_ms),
        ("max_p50_tpot_ms", sla.max_p50_tpot_ms),
        ("min_success_rate", sla.min_success_rate),
        ("max_p50_e2e_ms", sla.max_p50_e2e_ms),
    ]
    .iter()
    .filter_map(|(k, v)| v.map(|v| format!("{k} {v}")))
    .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}
