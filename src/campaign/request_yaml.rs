//! The YAML request file, and the structured values (frameworks, workload, SLA) that the
//! issue form's sections share with it.
//!
//! The document is read into a generic YAML value first and then walked field by field,
//! so that every problem is reported in one pass (serde's `deny_unknown_fields` would stop
//! at the first). Unknown keys get a "did you mean" suggestion.

use super::request::{
    is_blank, CampaignRequest, RequestProblem, ScalarField, SlaChoice, WorkloadOverride,
};
use super::selection::{competitor_from_name, parse_framework_text, FrameworkChoice};
use super::suggest;
use super::workload::{DatasetKind, Scenario};
use super::yaml_lines::KeyLines;
use crate::bench::sla::{Sla, SlaError};
use serde_yaml_ng::{Mapping, Value};

const TOP_LEVEL_KEYS: &[&str] = &[
    "model",
    "revision",
    "tokenizer",
    "precision",
    "quantization",
    "trust_remote_code",
    "max_context",
    "gpu",
    "frameworks",
    "workload",
    "sla",
    "history_slug",
    "max_rounds",
    "autonomy",
    "primary_metric",
    "noise_threshold_pct",
    "tensorrt_llm_backend",
    "notes",
];
/// Nested paths offered as suggestions for flat spellings such as `gpu_count`.
const NESTED_PATHS: &[&str] = &[
    "gpu.model",
    "gpu.count",
    "gpu.visible_devices",
    "gpu.multi_node",
    "workload.dataset",
    "workload.dataset_path",
    "workload.num_prompts",
    "workload.scenarios",
];
const GPU_KEYS: &[&str] = &["model", "count", "visible_devices", "multi_node"];
const WORKLOAD_KEYS: &[&str] = &["dataset", "dataset_path", "num_prompts", "scenarios"];
const SCENARIO_KEYS: &[&str] = &["name", "input_len", "output_len"];
const FRAMEWORK_KEYS: &[&str] = &["only", "exclude"];
const SLA_KEYS: &[&str] = &[
    "max_p50_ttft_ms",
    "max_p50_tpot_ms",
    "min_success_rate",
    "max_p50_e2e_ms",
];

/// Problems found while walking one YAML document, located through its key lines.
pub(crate) struct YamlCtx<'a> {
    pub lines: &'a KeyLines,
    pub problems: Vec<RequestProblem>,
}

impl<'a> YamlCtx<'a> {
    pub fn new(lines: &'a KeyLines) -> YamlCtx<'a> {
        YamlCtx {
            lines,
            problems: Vec::new(),
        }
    }

    pub fn invalid(&mut self, path: &str, message: impl Into<String>) {
        let line = self.lines.line_of(path);
        self.problems
            .push(RequestProblem::invalid(path, message).at(line));
    }

    /// Iterates a mapping's string keys, reporting non-string and unknown keys.
    fn entries<'v>(
        &mut self,
        map: &'v Mapping,
        path: &str,
        known: &[&str],
        extra_hints: &[&str],
    ) -> Vec<(String, &'v Value)> {
        let mut out = Vec::new();
        for (k, v) in map {
            let Some(key) = k.as_str() else {
                self.invalid(path, format!("keys must be text, found `{}`", short(k)));
                continue;
            };
            let full = join(path, key);
            if known.contains(&key) {
                out.push((key.to_string(), v));
            } else {
                let candidates: Vec<&str> = known.iter().chain(extra_hints).copied().collect();
                let hint = suggest::hint(key, &candidates);
                let expected = known.join(", ");
                self.invalid(
                    &full,
                    format!("unknown key `{key}`{hint}; expected one of: {expected}"),
                );
            }
        }
        out
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A compact rendering of a YAML value for messages.
fn short(v: &Value) -> String {
    let text = serde_yaml_ng::to_string(v).unwrap_or_default();
    let one_line = text.trim().replace('\n', " ");
    if one_line.chars().count() > 60 {
        format!("{}...", one_line.chars().take(60).collect::<String>())
    } else {
        one_line
    }
}

/// The text of a scalar (strings, numbers, booleans); `None` for null.
pub(crate) fn scalar_text(v: &Value) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        other => Err(format!("expected a single value, found `{}`", short(other))),
    }
}

/// Parses a YAML request file.
pub fn parse_yaml(text: &str) -> Result<CampaignRequest, Vec<RequestProblem>> {
    let value: Value = match serde_yaml_ng::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Err(vec![RequestProblem::invalid(
                "yaml",
                format!("not valid YAML: {e}"),
            )
            .at(e.location().map(|l| l.line()))])
        }
    };
    let lines = KeyLines::scan(text, 1);
    let mut ctx = YamlCtx::new(&lines);
    let mut request = CampaignRequest::default();
    match &value {
        Value::Null => {}
        Value::Mapping(map) => {
            let hints: Vec<&str> = NESTED_PATHS.to_vec();
            for (key, v) in ctx.entries(map, "", TOP_LEVEL_KEYS, &hints) {
                apply_top_level(&mut request, &key, v, &mut ctx);
            }
        }
        other => ctx.invalid(
            "request",
            format!(
                "expected a mapping of request fields (model: ..., gpu: ...), found `{}`",
                short(other)
            ),
        ),
    }
    if ctx.problems.is_empty() {
        Ok(request)
    } else {
        Err(in_document_order(ctx.problems))
    }
}

/// Sorts problems by line (stable; unlocated ones last) so they read top to bottom.
pub(crate) fn in_document_order(mut problems: Vec<RequestProblem>) -> Vec<RequestProblem> {
    problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    problems
}

fn apply_top_level(request: &mut CampaignRequest, key: &str, v: &Value, ctx: &mut YamlCtx<'_>) {
    let scalar = match key {
        "model" => ScalarField::Model,
        "revision" => ScalarField::Revision,
        "tokenizer" => ScalarField::Tokenizer,
        "precision" => ScalarField::Precision,
        "quantization" => ScalarField::Quantization,
        "trust_remote_code" => ScalarField::TrustRemoteCode,
        "max_context" => ScalarField::MaxContext,
        "history_slug" => ScalarField::HistorySlug,
        "max_rounds" => ScalarField::MaxRounds,
        "autonomy" => ScalarField::Autonomy,
        "primary_metric" => ScalarField::PrimaryMetric,
        "noise_threshold_pct" => ScalarField::NoiseThreshold,
        "tensorrt_llm_backend" => ScalarField::TrtllmBackend,
        "notes" => ScalarField::Notes,
        "gpu" => return apply_gpu(request, v, ctx),
        "frameworks" => {
            if let Some(choice) = frameworks_value(v, "frameworks", ctx) {
                request.frameworks = choice;
            }
            return;
        }
        "workload" => {
            request.workload = workload_value(v, "workload", ctx);
            return;
        }
        "sla" => {
            request.sla = sla_value(v, "sla", ctx);
            return;
        }
        _ => return,
    };
    set_from_value(request, scalar, v, ctx);
}

fn set_from_value(
    request: &mut CampaignRequest,
    field: ScalarField,
    v: &Value,
    ctx: &mut YamlCtx<'_>,
) {
    let text = match (field, v) {
        (ScalarField::VisibleDevices, Value::Sequence(items)) => {
            let parts: Result<Vec<String>, String> = items
                .iter()
                .map(|i| scalar_text(i).map(|t| t.unwrap_or_default()))
                .collect();
            parts.map(|p| Some(p.join(",")))
        }
        _ => scalar_text(v),
    };
    let result = text.and_then(|t| match t {
        Some(t) => request.set_scalar(field, &t),
        None => Ok(()),
    });
    if let Err(message) = result {
        ctx.invalid(field.key(), message);
    }
}

fn apply_gpu(request: &mut CampaignRequest, v: &Value, ctx: &mut YamlCtx<'_>) {
    match v {
        Value::Null => {}
        Value::Mapping(map) => {
            for (key, value) in ctx.entries(map, "gpu", GPU_KEYS, &[]) {
                let field = match key.as_str() {
                    "model" => ScalarField::GpuModel,
                    "count" => ScalarField::GpuCount,
                    "visible_devices" => ScalarField::VisibleDevices,
                    _ => ScalarField::MultiNode,
                };
                set_from_value(request, field, value, ctx);
            }
        }
        Value::String(s) => {
            // `gpu: H100` is a common shorthand for the model alone.
            if let Err(m) = request.set_scalar(ScalarField::GpuModel, s) {
                ctx.invalid("gpu", m);
            }
        }
        other => ctx.invalid(
            "gpu",
            format!(
                "expected a mapping {{model, count, visible_devices, multi_node}}, found `{}`",
                short(other)
            ),
        ),
    }
}

fn name_list(v: &Value, path: &str, ctx: &mut YamlCtx<'_>) -> Vec<crate::framework::Framework> {
    let items: Vec<&Value> = match v {
        Value::Sequence(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        single => vec![single],
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        match scalar_text(item) {
            Ok(Some(name)) => match competitor_from_name(&name) {
                Ok(fw) if !out.contains(&fw) => out.push(fw),
                Ok(fw) => ctx.invalid(&item_path, format!("`{fw}` is listed twice")),
                Err(m) => ctx.invalid(&item_path, m),
            },
            Ok(None) => {}
            Err(m) => ctx.invalid(&item_path, m),
        }
    }
    out
}

/// `[vllm, tokenspeed]`, `{only: [...]}`, `{exclude: [...]}`, or free text (`only vllm`).
pub(crate) fn frameworks_value(
    v: &Value,
    path: &str,
    ctx: &mut YamlCtx<'_>,
) -> Option<FrameworkChoice> {
    let before = ctx.problems.len();
    let choice = match v {
        Value::Null => FrameworkChoice::default(),
        Value::String(text) => match parse_framework_text(text) {
            Ok(c) => c,
            Err(messages) => {
                for m in messages {
                    ctx.invalid(path, m);
                }
                return None;
            }
        },
        Value::Sequence(_) => FrameworkChoice {
            only: Some(name_list(v, path, ctx)),
            exclude: Vec::new(),
        },
        Value::Mapping(map) => {
            let mut choice = FrameworkChoice::default();
            for (key, value) in ctx.entries(map, path, FRAMEWORK_KEYS, &[]) {
                let list = name_list(value, &join(path, &key), ctx);
                if key == "only" {
                    choice.only = Some(list);
                } else {
                    choice.exclude = list;
                }
            }
            choice
        }
        other => {
            ctx.invalid(path, format!("expected a list of frameworks, {{only: [...]}} or {{exclude: [...]}}, found `{}`", short(other)));
            return None;
        }
    };
    for m in choice.problems() {
        ctx.invalid(path, m);
    }
    (ctx.problems.len() == before).then_some(choice)
}

fn positive_number(v: &Value, path: &str, ctx: &mut YamlCtx<'_>) -> Option<u64> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().replace('_', "").parse::<u64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if n > 0 => Some(n),
        _ => {
            ctx.invalid(
                path,
                format!("expected a positive whole number, found `{}`", short(v)),
            );
            None
        }
    }
}

/// The workload override: `{dataset, dataset_path, num_prompts, scenarios: [...]}`.
pub(crate) fn workload_value(v: &Value, path: &str, ctx: &mut YamlCtx<'_>) -> WorkloadOverride {
    let mut out = WorkloadOverride::default();
    let map = match v {
        Value::Null => return out,
        Value::String(s) if is_blank(s) => return out,
        Value::Mapping(map) => map,
        other => {
            ctx.invalid(path, format!("expected a mapping {{dataset, dataset_path, num_prompts, scenarios}} or `default`, found `{}`", short(other)));
            return out;
        }
    };
    for (key, value) in ctx.entries(map, path, WORKLOAD_KEYS, &[]) {
        let field = join(path, &key);
        match key.as_str() {
            "dataset" => match scalar_text(value) {
                Ok(Some(t)) => match DatasetKind::parse(&t) {
                    Some(kind) => out.dataset = Some(kind),
                    None => ctx.invalid(
                        &field,
                        format!("`{t}` is not a dataset kind: expected random, sharegpt or custom"),
                    ),
                },
                Ok(None) => {}
                Err(m) => ctx.invalid(&field, m),
            },
            "dataset_path" => match scalar_text(value) {
                Ok(Some(t)) if !t.trim().is_empty() => {
                    out.dataset_path = Some(t.trim().to_string())
                }
                Ok(_) => {}
                Err(m) => ctx.invalid(&field, m),
            },
            "num_prompts" => out.num_prompts = positive_number(value, &field, ctx),
            _ => out.scenarios = scenarios_value(value, &field, ctx),
        }
    }
    out
}

fn scenarios_value(v: &Value, path: &str, ctx: &mut YamlCtx<'_>) -> Option<Vec<Scenario>> {
    let Value::Sequence(items) = v else {
        ctx.invalid(
            path,
            format!(
                "expected a list of {{name, input_len, output_len}}, found `{}`",
                short(v)
            ),
        );
        return None;
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        let Value::Mapping(map) = item else {
            ctx.invalid(
                &item_path,
                format!(
                    "expected {{name, input_len, output_len}}, found `{}`",
                    short(item)
                ),
            );
            continue;
        };
        let (mut name, mut input, mut output) = (None, None, None);
        for (key, value) in ctx.entries(map, &item_path, SCENARIO_KEYS, &[]) {
            let field = join(&item_path, &key);
            match key.as_str() {
                "name" => match scalar_text(value) {
                    Ok(Some(t)) => name = Some(t),
                    Ok(None) => {}
                    Err(m) => ctx.invalid(&field, m),
                },
                "input_len" => input = positive_number(value, &field, ctx),
                _ => output = positive_number(value, &field, ctx),
            }
        }
        for (missing, present) in [
            ("name", name.is_some()),
            ("input_len", input.is_some()),
            ("output_len", output.is_some()),
        ] {
            if !present && map.get(missing).is_none() {
                ctx.invalid(&item_path, format!("scenario needs `{missing}`"));
            }
        }
        if let (Some(name), Some(input_len), Some(output_len)) = (name, input, output) {
            out.push(Scenario {
                name,
                input_len,
                output_len,
            });
        }
    }
    Some(out)
}

/// The SLA: a mapping of thresholds, `none` for no limits, or `default`.
pub(crate) fn sla_value(v: &Value, path: &str, ctx: &mut YamlCtx<'_>) -> SlaChoice {
    match v {
        Value::Null => SlaChoice::Default,
        Value::String(s) if is_blank(s) => SlaChoice::Default,
        Value::String(s)
            if matches!(
                s.trim().to_ascii_lowercase().as_str(),
                "none" | "no sla" | "unlimited" | "off"
            ) =>
        {
            SlaChoice::Unlimited
        }
        Value::Mapping(_) => {
            let json = match serde_json::to_value(v) {
                Ok(j) => j,
                Err(e) => {
                    ctx.invalid(path, format!("the SLA must map text keys to numbers: {e}"));
                    return SlaChoice::Default;
                }
            };
            match Sla::from_value(&json) {
                Ok(sla) => SlaChoice::Custom(sla),
                Err(errors) => {
                    for e in errors {
                        let (key, extra) = match &e {
                            SlaError::Unknown { key } => {
                                (Some(key.as_str()), suggest::hint(key, SLA_KEYS))
                            }
                            SlaError::Deprecated { key, .. } | SlaError::NotANumber { key, .. } => {
                                (Some(key.as_str()), String::new())
                            }
                            SlaError::SuccessRateRange { .. } => {
                                (Some("min_success_rate"), String::new())
                            }
                            SlaError::NotAMapping { .. } => (None, String::new()),
                        };
                        let field = key
                            .map(|k| join(path, k))
                            .unwrap_or_else(|| path.to_string());
                        ctx.invalid(&field, format!("{e}{extra}"));
                    }
                    SlaChoice::Default
                }
            }
        }
        other => {
            ctx.invalid(
                path,
                format!(
                    "expected SLA thresholds (max_p50_ttft_ms: 2000, ...) or `none`, found `{}`",
                    short(other)
                ),
            );
            SlaChoice::Default
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::request::ProblemKind;
    use crate::framework::Framework;

    #[test]
    fn reads_every_field() {
        let text = "model: meta-llama/Llama-3.1-8B-Instruct\nrevision: 0e9e39f249a16976918f6564b8830bc894c89659\nprecision: bf16\nquantization: none\ntrust_remote_code: false\nmax_context: 8192\ngpu: {model: H100, count: 2, visible_devices: [2, 3], multi_node: false}\nframeworks: {only: [vLLM]}\nworkload:\n  num_prompts: 40\n  scenarios:\n    - {name: short, input_len: 128, output_len: 128}\nsla: none\nmax_rounds: 5\nautonomy: wait-for-human\nprimary_metric: output_token_throughput\nnoise_threshold_pct: 2\ntensorrt_llm_backend: pytorch\nnotes: hello\n";
        let r = parse_yaml(text).unwrap();
        assert_eq!(r.gpu.visible_devices, Some(vec![2, 3]));
        assert_eq!(r.frameworks.only, Some(vec![Framework::Vllm]));
        assert_eq!(
            r.workload.scenarios,
            Some(vec![Scenario::new("short", 128, 128)])
        );
        assert_eq!(r.sla, SlaChoice::Unlimited);
        assert_eq!(r.max_rounds, Some(5));
        assert_eq!(r.noise_threshold_pct, Some(2.0));
    }

    #[test]
    fn reports_all_problems_with_lines_and_suggestions() {
        let text = "modle: x\ngpu:\n  count: zero\n  visble_devices: [0]\nframeworks: [vllm, sglang]\nworkload:\n  scenarios:\n    - name: chat\n      input_len: -5\nsla:\n  max_ttft_ms: 100\n  max_p50_tpot: 5\ngpu_count: 2\n";
        let problems = parse_yaml(text).unwrap_err();
        let got: Vec<(String, Option<usize>)> =
            problems.iter().map(|p| (p.field.clone(), p.line)).collect();
        assert_eq!(
            got,
            [
                ("modle".to_string(), Some(1)),
                ("gpu.count".to_string(), Some(3)),
                ("gpu.visble_devices".to_string(), Some(4)),
                ("frameworks[1]".to_string(), Some(5)),
                ("workload.scenarios[0]".to_string(), Some(8)),
                ("workload.scenarios[0].input_len".to_string(), Some(9)),
                ("sla.max_ttft_ms".to_string(), Some(11)),
                ("sla.max_p50_tpot".to_string(), Some(12)),
                ("gpu_count".to_string(), Some(13)),
            ]
        );
        assert!(problems.iter().all(|p| p.kind == ProblemKind::Invalid));
        let text: Vec<String> = problems.iter().map(|p| p.message.clone()).collect();
        assert!(text[0].contains("did you mean `model`"), "{text:?}");
        assert!(
            text[2].contains("did you mean `visible_devices`"),
            "{text:?}"
        );
        assert!(text[3].contains("always the target"), "{text:?}");
        assert!(text[6].contains("use `max_p50_ttft_ms`"), "{text:?}");
        assert!(
            text[7].contains("did you mean `max_p50_tpot_ms`"),
            "{text:?}"
        );
        assert!(text[8].contains("did you mean `gpu.count`"), "{text:?}");
    }

    #[test]
    fn syntax_errors_carry_a_line() {
        let problems = parse_yaml("model: x\ngpu: [unclosed\n").unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "yaml");
        assert!(problems[0].line.is_some());
    }

    #[test]
    fn framework_forms() {
        let parse = |t: &str| parse_yaml(t).map(|r| r.frameworks);
        assert_eq!(
            parse("frameworks: [trt]").unwrap().only,
            Some(vec![Framework::TensorrtLlm])
        );
        assert_eq!(
            parse("frameworks: {exclude: tokenspeed}").unwrap().exclude,
            vec![Framework::Tokenspeed]
        );
        assert_eq!(
            parse("frameworks: only compare with vLLM").unwrap().only,
            Some(vec![Framework::Vllm])
        );
        assert!(parse("frameworks: {ony: [vllm]}").unwrap_err()[0]
            .message
            .contains("did you mean `only`"));
        assert!(parse("frameworks: []").unwrap_err()[0]
            .message
            .contains("empty"));
        assert!(parse("frameworks: [vllm, vllm]").unwrap_err()[0]
            .message
            .contains("twice"));
    }
}
