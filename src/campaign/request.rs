//! Campaign requests (ARCHITECTURE.md, *Phases*): what a maintainer asks for, from an issue-form
//! body ([`super::issue_form`]) or a YAML file ([`super::request_yaml`]), as one typed value.
//!
//! Parsing checks each field's shape and reports **every** problem at once. Whether the
//! request is complete is decided later by [`CampaignRequest::resolve`], which merges it
//! over the repository config (`.github/sota-bot.yml`). Only three things may ever be
//! reported as missing: the model, the GPU environment, and the precision/quantization
//! policy. Everything else has a default:
//!
//! | field | default when neither the request nor the repo config sets it |
//! | --- | --- |
//! | revision | none: the model repository's default branch (record a commit for reproducibility) |
//! | tokenizer | the model |
//! | precision | **missing** (asked for), unless a quantization is given: then `auto` |
//! | quantization | none |
//! | trust_remote_code | false |
//! | max_context | the model's own maximum |
//! | gpu.model | **missing** (asked for) |
//! | gpu.count | the number of visible GPU ids if given, else 1 |
//! | gpu.visible_devices | `0..count-1` |
//! | gpu.multi_node | false |
//! | frameworks | vllm, tensorrt_llm, tokenspeed (those the runner pool can run) |
//! | workload | `random`, 80 prompts, chat 1000/1000 and summarization 8000/1000 (aligned) |
//! | sla | max_p50_ttft_ms 2000, max_p50_tpot_ms 50, min_success_rate 0.99 (`none` = no limits) |
//! | history_slug | none: inferred by the history phase |
//! | max_rounds | 42 |
//! | autonomy | auto-continue |
//! | primary_metric | request_throughput |
//! | noise_threshold_pct | 1.0 |
//! | tensorrt_llm_backend | pytorch (the only supported backend) |
//!
//! The same table is printed by `sota-bot request check --help` ([`DEFAULTS_HELP`]).

use super::options::{Autonomy, Precision, PrimaryMetric};
use super::selection::FrameworkChoice;
use super::workload::{DatasetKind, Scenario};
use crate::bench::Sla;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The defaults table, as shown by `sota-bot request check --help`.
pub const DEFAULTS_HELP: &str = "\
Defaults (applied when neither the request nor .github/sota-bot.yml sets a field):
  revision              model repository's default branch
  tokenizer             the model
  precision             MISSING (asked for), or `auto` when a quantization is given
  quantization          none
  trust_remote_code     false
  max_context           the model's own maximum
  gpu.model             MISSING (asked for)
  gpu.count             number of visible GPU ids if given, else 1
  gpu.visible_devices   0..count-1
  gpu.multi_node        false
  frameworks            vllm, tensorrt_llm, tokenspeed (those the runner pool can run)
  workload              random, 80 prompts, chat 1000/1000 + summarization 8000/1000 (aligned)
  sla                   max_p50_ttft_ms 2000, max_p50_tpot_ms 50, min_success_rate 0.99 (`none` = no limits)
  history_slug          none (inferred by the history phase)
  max_rounds            42
  autonomy              auto-continue
  primary_metric        request_throughput
  noise_threshold_pct   1.0
  tensorrt_llm_backend  pytorch (the only supported backend)
Only the model, the GPU model and the precision/quantization are ever reported as missing.";

/// Whether a field is absent (the user must provide it) or present but wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    Missing,
    Invalid,
}

/// One problem with a request or config, naming the field and what is expected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestProblem {
    /// Dotted field path (`gpu.count`, `workload.scenarios[1].input_len`) or issue heading.
    pub field: String,
    pub kind: ProblemKind,
    pub message: String,
    /// 1-based line in the parsed text, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

impl RequestProblem {
    /// A field that is present but wrong.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> RequestProblem {
        RequestProblem {
            field: field.into(),
            kind: ProblemKind::Invalid,
            message: message.into(),
            line: None,
        }
    }

    /// A required field that nobody supplied.
    pub fn missing(field: impl Into<String>, message: impl Into<String>) -> RequestProblem {
        RequestProblem {
            field: field.into(),
            kind: ProblemKind::Missing,
            message: message.into(),
            line: None,
        }
    }

    /// The same problem located at `line`.
    pub fn at(mut self, line: Option<usize>) -> RequestProblem {
        self.line = line;
        self
    }
}

impl std::error::Error for RequestProblem {}

impl fmt::Display for RequestProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        let kind = match self.kind {
            ProblemKind::Missing => "missing",
            ProblemKind::Invalid => "invalid",
        };
        write!(f, "{} ({kind}): {}", self.field, self.message)
    }
}

/// Quantization as requested: explicitly none, or a method name (`fp8`, `awq`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantization {
    None,
    Method(String),
}

/// The GPU environment as requested.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuRequest {
    /// As typed (`H100`, `NVIDIA H100 80GB HBM3`).
    pub model: Option<String>,
    pub count: Option<u32>,
    pub visible_devices: Option<Vec<u32>>,
    pub multi_node: Option<bool>,
}

/// Workload fields the request overrides; unset ones come from the repo config or defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadOverride {
    pub dataset: Option<DatasetKind>,
    pub dataset_path: Option<String>,
    pub num_prompts: Option<u64>,
    pub scenarios: Option<Vec<Scenario>>,
}

impl WorkloadOverride {
    /// Whether the request says nothing about the workload.
    pub fn is_empty(&self) -> bool {
        *self == WorkloadOverride::default()
    }
}

/// The SLA as requested. A given SLA replaces the default as a whole.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaChoice {
    /// Use the repository's (or built-in) SLA.
    #[default]
    Default,
    /// `none`: no thresholds at all.
    Unlimited,
    /// These thresholds only (keys not given are unlimited).
    Custom(Sla),
}

/// A parsed, shape-checked campaign request. Every field is optional here; see the module
/// docs for the defaults [`CampaignRequest::resolve`] applies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CampaignRequest {
    /// Hugging Face id (`org/name`) or checkpoint path.
    pub model: Option<String>,
    /// Immutable revision (commit) of the weights, when given.
    pub revision: Option<String>,
    pub tokenizer: Option<String>,
    pub precision: Option<Precision>,
    pub quantization: Option<Quantization>,
    pub trust_remote_code: Option<bool>,
    pub max_context: Option<u32>,
    pub gpu: GpuRequest,
    pub frameworks: FrameworkChoice,
    pub workload: WorkloadOverride,
    pub sla: SlaChoice,
    pub history_slug: Option<String>,
    pub max_rounds: Option<u32>,
    pub autonomy: Option<Autonomy>,
    pub primary_metric: Option<PrimaryMetric>,
    pub noise_threshold_pct: Option<f64>,
    pub tensorrt_llm_backend: Option<String>,
    pub notes: Option<String>,
}

/// A scalar field both input formats share. `key()` is the YAML path and the problem's field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScalarField {
    Model,
    Revision,
    Tokenizer,
    Precision,
    Quantization,
    TrustRemoteCode,
    MaxContext,
    GpuModel,
    GpuCount,
    VisibleDevices,
    MultiNode,
    HistorySlug,
    MaxRounds,
    Autonomy,
    PrimaryMetric,
    NoiseThreshold,
    TrtllmBackend,
    Notes,
}

impl ScalarField {
    pub(crate) fn key(self) -> &'static str {
        match self {
            ScalarField::Model => "model",
            ScalarField::Revision => "revision",
            ScalarField::Tokenizer => "tokenizer",
            ScalarField::Precision => "precision",
            ScalarField::Quantization => "quantization",
            ScalarField::TrustRemoteCode => "trust_remote_code",
            ScalarField::MaxContext => "max_context",
            ScalarField::GpuModel => "gpu.model",
            ScalarField::GpuCount => "gpu.count",
            ScalarField::VisibleDevices => "gpu.visible_devices",
            ScalarField::MultiNode => "gpu.multi_node",
            ScalarField::HistorySlug => "history_slug",
            ScalarField::MaxRounds => "max_rounds",
            ScalarField::Autonomy => "autonomy",
            ScalarField::PrimaryMetric => "primary_metric",
            ScalarField::NoiseThreshold => "noise_threshold_pct",
            ScalarField::TrtllmBackend => "tensorrt_llm_backend",
            ScalarField::Notes => "notes",
        }
    }
}

/// Words that mean "nothing given" in a scalar field.
pub(crate) fn is_blank(text: &str) -> bool {
    let t = text.trim().to_ascii_lowercase();
    t.is_empty() || t == "_no response_" || t == "default" || t == "~" || t == "null"
}

impl CampaignRequest {
    /// Sets one scalar field from its text; blank text leaves it unset. The error says what
    /// is expected.
    pub(crate) fn set_scalar(&mut self, field: ScalarField, text: &str) -> Result<(), String> {
        let text = text.trim();
        if field != ScalarField::Notes && text.contains('\n') {
            return Err("expected a single line".to_string());
        }
        if is_blank(text) {
            return Ok(());
        }
        match field {
            ScalarField::Model => self.model = Some(model_reference(text, "model")?),
            ScalarField::Tokenizer => self.tokenizer = Some(model_reference(text, "tokenizer")?),
            ScalarField::Revision => self.revision = Some(plain_token(text, "a revision (commit sha, tag or branch)", 200)?),
            ScalarField::Precision => {
                self.precision = Some(Precision::parse(text).ok_or_else(|| {
                    format!("`{text}` is not a precision: expected bf16, fp16, fp32 or auto (fp8 and int4 are quantizations)")
                })?)
            }
            ScalarField::Quantization => self.quantization = Some(parse_quantization(text)?),
            ScalarField::TrustRemoteCode => self.trust_remote_code = Some(parse_bool(text)?),
            ScalarField::MultiNode => self.gpu.multi_node = Some(parse_bool(text)?),
            ScalarField::MaxContext => self.max_context = parse_context(text)?,
            ScalarField::GpuModel => {
                let name = plain_line(text, "a GPU model such as H100", 80)?;
                if super::slug::hardware_slug(&name).is_empty() {
                    return Err(format!("`{name}` names no GPU model: expected e.g. H100, H200, B200"));
                }
                self.gpu.model = Some(name)
            }
            ScalarField::GpuCount => self.gpu.count = Some(parse_count(text, "GPU count", 1, 1024)?),
            ScalarField::VisibleDevices => self.gpu.visible_devices = parse_devices(text)?,
            ScalarField::HistorySlug => self.history_slug = Some(parse_history_slug(text)?),
            ScalarField::MaxRounds => self.max_rounds = Some(parse_count(text, "max rounds", 1, 1000)?),
            ScalarField::Autonomy => {
                self.autonomy = Some(Autonomy::parse(text).ok_or_else(|| {
                    format!("`{text}` is not an autonomy mode: expected auto-continue or wait-for-human")
                })?)
            }
            ScalarField::PrimaryMetric => {
                self.primary_metric = Some(PrimaryMetric::parse(text).ok_or_else(|| {
                    format!("`{text}` is not a primary metric: expected request_throughput or output_token_throughput")
                })?)
            }
            ScalarField::NoiseThreshold => self.noise_threshold_pct = Some(parse_noise(text)?),
            ScalarField::TrtllmBackend => {
                self.tensorrt_llm_backend = Some(plain_token(text, "a TensorRT-LLM backend name", 40)?.to_ascii_lowercase())
            }
            ScalarField::Notes => self.notes = Some(text.to_string()),
        }
        Ok(())
    }
}

fn plain_line(text: &str, expected: &str, max_len: usize) -> Result<String, String> {
    if text.chars().count() > max_len || text.chars().any(char::is_control) {
        return Err(format!("expected {expected} (one short line)"));
    }
    Ok(text.to_string())
}

fn plain_token(text: &str, expected: &str, max_len: usize) -> Result<String, String> {
    let t = text.trim_matches('`');
    if t.is_empty()
        || t.chars().count() > max_len
        || t.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "`{text}` is not {expected}: expected one word without spaces"
        ));
    }
    Ok(t.to_string())
}

/// A Hugging Face id or a path; a huggingface.co URL is reduced to its id.
fn model_reference(text: &str, what: &str) -> Result<String, String> {
    let t = text.trim_matches('`');
    let t = t
        .strip_prefix("https://huggingface.co/")
        .or_else(|| t.strip_prefix("http://huggingface.co/"))
        .or_else(|| t.strip_prefix("hf://"))
        .unwrap_or(t)
        .trim_end_matches('/');
    let t = plain_token(
        t,
        &format!("a {what} id or path (e.g. meta-llama/Llama-3.1-8B-Instruct)"),
        300,
    )?;
    if t.contains("://") {
        return Err(format!(
            "`{t}` is a URL: expected a Hugging Face id (org/name) or a path on the runner"
        ));
    }
    Ok(t)
}

fn parse_quantization(text: &str) -> Result<Quantization, String> {
    let t = text.trim_matches('`').trim().to_ascii_lowercase();
    if matches!(
        t.as_str(),
        "none" | "no" | "off" | "false" | "unquantized" | "-"
    ) {
        return Ok(Quantization::None);
    }
    let ok = !t.is_empty()
        && t.len() <= 40
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(Quantization::Method(t))
    } else {
        Err(format!("`{text}` is not a quantization method: expected none or a method name such as fp8, awq, gptq, modelopt_fp4"))
    }
}

pub(crate) fn parse_bool(text: &str) -> Result<bool, String> {
    let t = text.trim().to_ascii_lowercase();
    if t.lines().any(|l| l.trim_start().starts_with("- [")) {
        return Ok(t.lines().any(|l| {
            let l = l.trim_start();
            l.starts_with("- [x]")
        }));
    }
    match t.as_str() {
        "true" | "yes" | "y" | "on" | "1" | "allow" | "allowed" | "enabled" => Ok(true),
        "false" | "no" | "n" | "off" | "0" | "deny" | "denied" | "disabled" => Ok(false),
        _ => Err(format!(
            "`{}` is not yes/no: expected true or false",
            text.trim()
        )),
    }
}

pub(crate) fn parse_count(text: &str, what: &str, min: u32, max: u32) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{}` is not a valid {what}: expected a whole number from {min} to {max}",
            text.trim()
        )),
    }
}

fn parse_context(text: &str) -> Result<Option<u32>, String> {
    let t = text.trim().to_ascii_lowercase();
    if matches!(t.as_str(), "model default" | "auto" | "none") {
        return Ok(None);
    }
    let (digits, scale) = match t.strip_suffix('k') {
        Some(d) => (d, 1024u64),
        None => (t.as_str(), 1u64),
    };
    match digits.trim().replace('_', "").parse::<u64>() {
        Ok(n) if n > 0 => match n.checked_mul(scale).and_then(|t| u32::try_from(t).ok()) {
            Some(tokens) => Ok(Some(tokens)),
            None => Err(format!(
                "`{}` is too large for a context length",
                text.trim()
            )),
        },
        _ => Err(format!(
            "`{}` is not a context length: expected tokens, e.g. 32768 or 32k",
            text.trim()
        )),
    }
}

/// Most GPU ids a request may list (the GPU count's own limit).
pub const MAX_GPU_IDS: usize = 1024;

/// Longest GPU id list read, in bytes: room for every id up to [`MAX_GPU_IDS`] with
/// separators, written out one by one.
pub const MAX_GPU_IDS_FIELD: usize = 8 * 1024;

/// `0,1,2,3`, `0-3`, `[0, 1]`, `0 1`; `all` means the default. Linear in the field's
/// length, which is capped, as is the number of ids (ranges included).
fn parse_devices(text: &str) -> Result<Option<Vec<u32>>, String> {
    if text.len() > MAX_GPU_IDS_FIELD {
        return Err(format!(
            "the GPU id list is {} bytes long; at most {MAX_GPU_IDS_FIELD} are read",
            text.len()
        ));
    }
    let too_many =
        || format!("more than {MAX_GPU_IDS} GPU ids listed; a request names at most {MAX_GPU_IDS}");
    let t = text
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim();
    if t.eq_ignore_ascii_case("all") {
        return Ok(None);
    }
    let mut ids: Vec<u32> = Vec::new();
    let bad = || {
        format!(
            "`{}` is not a list of GPU ids: expected e.g. 0,1,2,3 or 0-3",
            text.trim()
        )
    };
    for part in t.split([',', ' ']).map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((a, b)) = part.split_once('-') {
            let (a, b) = (
                a.trim().parse::<u32>().map_err(|_| bad())?,
                b.trim().parse::<u32>().map_err(|_| bad())?,
            );
            if a > b {
                return Err(bad());
            }
            let len = usize::try_from(b - a)
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            if ids.len().saturating_add(len) > MAX_GPU_IDS {
                return Err(too_many());
            }
            ids.extend(a..=b);
        } else {
            if ids.len() >= MAX_GPU_IDS {
                return Err(too_many());
            }
            ids.push(part.parse::<u32>().map_err(|_| bad())?);
        }
    }
    if ids.is_empty() {
        return Err(bad());
    }
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    if let Some(id) = ids.iter().find(|id| !seen.insert(**id)) {
        return Err(format!("GPU id {id} is listed twice"));
    }
    Ok(Some(ids))
}

fn parse_history_slug(text: &str) -> Result<String, String> {
    let t = text.trim().trim_matches('`').to_ascii_lowercase();
    let ok = !t.is_empty()
        && t.len() <= 100
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !t.contains("..")
        && !t.starts_with('.');
    if ok {
        Ok(t)
    } else {
        Err(format!(
            "`{}` is not a history slug: expected one folder name such as llama or deepseek-v3",
            text.trim()
        ))
    }
}

fn parse_noise(text: &str) -> Result<f64, String> {
    let t = text.trim().trim_end_matches('%').trim();
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 50.0 => Ok(v),
        _ => Err(format!(
            "`{}` is not a noise threshold: expected a percentage above 0 and at most 50, e.g. 1.0",
            text.trim()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_parsers() {
        let mut r = CampaignRequest::default();
        r.set_scalar(
            ScalarField::Model,
            "https://huggingface.co/meta-llama/Llama-3.1-8B/",
        )
        .unwrap();
        assert_eq!(r.model.as_deref(), Some("meta-llama/Llama-3.1-8B"));
        r.set_scalar(ScalarField::MaxContext, "32k").unwrap();
        assert_eq!(r.max_context, Some(32768));
        r.set_scalar(ScalarField::VisibleDevices, "0-2, 5").unwrap();
        assert_eq!(r.gpu.visible_devices, Some(vec![0, 1, 2, 5]));
        r.set_scalar(ScalarField::TrustRemoteCode, "- [x] Trust remote code")
            .unwrap();
        assert_eq!(r.trust_remote_code, Some(true));
        r.set_scalar(ScalarField::Quantization, "None").unwrap();
        assert_eq!(r.quantization, Some(Quantization::None));
        r.set_scalar(ScalarField::NoiseThreshold, "2%").unwrap();
        assert_eq!(r.noise_threshold_pct, Some(2.0));
        r.set_scalar(ScalarField::Revision, "_No response_")
            .unwrap();
        assert_eq!(r.revision, None);
        assert!(r.set_scalar(ScalarField::Model, "two words").is_err());
        assert!(r
            .set_scalar(ScalarField::GpuCount, "0")
            .unwrap_err()
            .contains("from 1 to 1024"));
        assert!(r
            .set_scalar(ScalarField::VisibleDevices, "0,0")
            .unwrap_err()
            .contains("twice"));
        assert!(r
            .set_scalar(ScalarField::Precision, "fp8")
            .unwrap_err()
            .contains("quantizations"));
        assert!(r.set_scalar(ScalarField::HistorySlug, "../etc").is_err());
        assert!(r
            .set_scalar(ScalarField::Model, "a\nb")
            .unwrap_err()
            .contains("single line"));
    }

    #[test]
    fn huge_gpu_id_lists_are_refused_not_searched() {
        // What took a minute (80 overlapping ranges) or never finished (100,000 ids).
        let ranges = vec!["0-1024"; 80].join(",");
        let ids = (0..100_000)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let mut r = CampaignRequest::default();
        assert!(r
            .set_scalar(ScalarField::VisibleDevices, &ranges)
            .unwrap_err()
            .contains("more than 1024 GPU ids"));
        assert!(r
            .set_scalar(ScalarField::VisibleDevices, &ids)
            .unwrap_err()
            .contains("at most 8192 are read"));
        let last_twice = format!("0-1022,{}", 5);
        assert!(r
            .set_scalar(ScalarField::VisibleDevices, &last_twice)
            .unwrap_err()
            .contains("GPU id 5 is listed twice"));
        r.set_scalar(ScalarField::VisibleDevices, "0-1023").unwrap();
        assert_eq!(r.gpu.visible_devices.as_ref().map(Vec::len), Some(1024));
        assert!(r
            .set_scalar(ScalarField::VisibleDevices, "0-1023,2000")
            .is_err());
    }

    proptest::proptest! {
        #[test]
        fn gpu_id_lists_parse_to_distinct_ids_within_the_cap(
            parts in proptest::collection::vec((0u32..3000, 0u32..600, proptest::bool::ANY), 0..40),
        ) {
            let text = parts
                .iter()
                .map(|(a, len, range)| if *range { format!("{a}-{}", a + len) } else { a.to_string() })
                .collect::<Vec<_>>()
                .join(",");
            if let Ok(Some(ids)) = parse_devices(&text) {
                proptest::prop_assert!(ids.len() <= MAX_GPU_IDS);
                let distinct: std::collections::HashSet<_> = ids.iter().collect();
                proptest::prop_assert_eq!(distinct.len(), ids.len());
            }
        }

        #[test]
        fn any_gpu_id_text_gets_an_answer(text in "[0-9, \\[\\]-]{0,200}") {
            let _ = parse_devices(&text);
        }
    }

    #[test]
    fn problem_display_names_field_kind_and_line() {
        let p = RequestProblem::invalid("gpu.count", "expected a number").at(Some(4));
        assert_eq!(
            p.to_string(),
            "line 4: gpu.count (invalid): expected a number"
        );
        let p = RequestProblem::missing("model", "please provide the model");
        assert_eq!(p.to_string(), "model (missing): please provide the model");
    }
}
