//! The normalized benchmark row (ARCHITECTURE.md, *Benchmark rows, SLA and
//! ranking*): one JSON object per candidate and scenario.
//!
//! Every framework's raw benchmark output is parsed into this one shape so that ranking,
//! SLA checks, gap decisions and reports never look at framework-specific formats. Keys the
//! spec names are always written (missing metrics as `null`, never 0); unknown keys read from
//! a file are kept in `extra` and written back, so no tool loses another tool's data.

use crate::framework::Framework;
use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::fmt;

/// Outcome of one candidate run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Ok,
    Failed,
    Oom,
    Timeout,
    Skipped,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Failed => "failed",
            RunStatus::Oom => "oom",
            RunStatus::Timeout => "timeout",
            RunStatus::Skipped => "skipped",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Request arrival rate: benchmark clients write an unbounded rate as `inf`/`Infinity`,
/// which JSON numbers cannot hold, so it is kept as its own variant and written as `"inf"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RequestRate {
    PerSecond(f64),
    Unbounded,
}

impl Serialize for RequestRate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RequestRate::PerSecond(v) if v.is_finite() => s.serialize_f64(*v),
            _ => s.serialize_str("inf"),
        }
    }
}

impl<'de> Deserialize<'de> for RequestRate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        RequestRate::from_json(&v).ok_or_else(|| {
            serde::de::Error::custom(format!("request_rate must be a number or \"inf\", got {v}"))
        })
    }
}

impl RequestRate {
    /// Reads a rate from a JSON value as benchmark clients write it.
    pub fn from_json(v: &Value) -> Option<RequestRate> {
        match v {
            Value::Number(n) => n.as_f64().map(|f| {
                if f.is_finite() {
                    RequestRate::PerSecond(f)
                } else {
                    RequestRate::Unbounded
                }
            }),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "inf" | "+inf" | "infinity" | "+infinity" => Some(RequestRate::Unbounded),
                other => other.parse::<f64>().ok().map(|f| {
                    if f.is_finite() {
                        RequestRate::PerSecond(f)
                    } else {
                        RequestRate::Unbounded
                    }
                }),
            },
            _ => None,
        }
    }
}

impl fmt::Display for RequestRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestRate::PerSecond(v) => write!(f, "{v}"),
            RequestRate::Unbounded => f.write_str("inf"),
        }
    }
}

/// GPUs the candidate ran on.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Hardware {
    pub gpu_model: Option<String>,
    pub gpu_count: Option<u32>,
    pub visible_devices: Option<String>,
}

/// Sampling settings sent with every request; part of the fairness contract.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Sampling {
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub ignore_eos: Option<bool>,
}

/// The request shape and load of one scenario.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Workload {
    pub kind: Option<String>,
    pub scenario: Option<String>,
    pub dataset_path: Option<String>,
    pub input_len: Option<u64>,
    pub output_len: Option<u64>,
    pub input_len_p50: Option<f64>,
    pub input_len_p95: Option<f64>,
    pub output_len_p50: Option<f64>,
    pub output_len_p95: Option<f64>,
    /// Shortest and longest measured lengths (tokens), when per-request counts are known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_len_min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_len_max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_len_min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_len_max: Option<f64>,
    /// Mean measured lengths (all a client's totals give when it saves no per-request counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_len_mean: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_len_mean: Option<f64>,
    /// Who counted the measured lengths: `server` (its usage) or `client`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_counts: Option<String>,
    /// Digest of the request prompts: rows with equal digests were sent the same prompts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_digest: Option<String>,
    pub num_prompts: Option<u64>,
    pub request_rate: Option<RequestRate>,
    pub max_concurrency: Option<u64>,
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<Sampling>,
    #[serde(flatten)]
    pub extra: IndexMap<String, Value>,
}

/// The SLA thresholds in force and whether this row met them (`passed` is computed by
/// sota-bot from the metrics, never taken from input).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SlaBlock {
    pub max_p50_ttft_ms: Option<f64>,
    pub max_p50_tpot_ms: Option<f64>,
    pub min_success_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_p50_e2e_ms: Option<f64>,
    pub passed: Option<bool>,
}

/// Measured results. Latencies in milliseconds, throughputs per second, success in [0, 1].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Metrics {
    pub request_throughput: Option<f64>,
    pub output_token_throughput: Option<f64>,
    pub total_token_throughput: Option<f64>,
    pub p50_ttft_ms: Option<f64>,
    pub mean_ttft_ms: Option<f64>,
    pub p99_ttft_ms: Option<f64>,
    pub p50_tpot_ms: Option<f64>,
    pub mean_tpot_ms: Option<f64>,
    pub p99_tpot_ms: Option<f64>,
    pub p50_e2e_ms: Option<f64>,
    pub mean_e2e_ms: Option<f64>,
    pub p99_e2e_ms: Option<f64>,
    pub success_rate: Option<f64>,
    #[serde(flatten)]
    pub extra: IndexMap<String, Value>,
}

/// Speculative decoding settings and how well drafts were accepted.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SpecDecode {
    pub enabled: Option<bool>,
    pub algorithm: Option<String>,
    pub num_steps: Option<u32>,
    pub num_draft_tokens: Option<u32>,
    pub mean_accept_length: Option<f64>,
    pub acceptance_rate: Option<f64>,
}

/// Time spent outside the GPU forward pass, per request, in milliseconds.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PhaseMetrics {
    pub pre_scheduler_ms: Option<f64>,
    pub scheduler_ms: Option<f64>,
    pub tokenizer_ms: Option<f64>,
    pub detokenizer_ms: Option<f64>,
    pub queue_ms: Option<f64>,
}

/// Prefix cache and KV cache state; a cache hit rate can explain a leader's win.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CacheBlock {
    pub prefix_cache_enabled: Option<bool>,
    pub prefix_cache_hit_rate: Option<f64>,
    pub kv_cache_tokens: Option<u64>,
    pub kv_cache_utilization: Option<f64>,
}

/// Memory settings that change what a server can hold on the GPU.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MemoryBlock {
    pub gpu_memory_utilization: Option<f64>,
    pub kv_cache_dtype: Option<String>,
    pub cpu_offload_gb: Option<f64>,
    pub gpu_resident_weight_gb: Option<f64>,
}

/// Claims that the comparison was normalized.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Normalization {
    pub same_gpu_count: Option<bool>,
    pub same_model_weights: Option<bool>,
    pub same_tokenizer: Option<bool>,
    pub same_endpoint: Option<bool>,
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Flags that were checked against the captured `--help` text.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ValidatedFlags {
    #[serde(default)]
    pub server: Vec<String>,
    #[serde(default)]
    pub benchmark: Vec<String>,
}

/// Paths of the files behind this row.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ArtifactPaths {
    pub server_log: Option<String>,
    pub raw_result: Option<String>,
    pub server_help: Option<String>,
    pub benchmark_help: Option<String>,
}

/// One normalized benchmark row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchRow {
    pub framework: Framework,
    pub framework_version: Option<String>,
    pub framework_commit: Option<String>,
    pub candidate_id: String,
    pub model: String,
    pub status: RunStatus,
    pub failure_reason: Option<String>,
    #[serde(default)]
    pub hardware: Hardware,
    #[serde(default)]
    pub workload: Workload,
    #[serde(default)]
    pub sla: SlaBlock,
    #[serde(default)]
    pub metrics: Metrics,
    pub server_command: Option<String>,
    pub benchmark_command: Option<String>,
    /// Campaign round that produced the row: 0 is the fixed baseline.
    #[serde(default)]
    pub round: u32,
    /// SGLang commit the row was measured on (revalidation rows are traced to it).
    #[serde(default)]
    pub commit: Option<String>,
    /// Index of a repeated run of the same command (0 for the first).
    #[serde(default)]
    pub repeat: u32,
    /// Smoke runs check the flow only and never decide SOTA.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub smoke: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_decode: Option<SpecDecode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase_metrics: Option<PhaseMetrics>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheBlock>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryBlock>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalization: Option<Normalization>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validated_cli_flags: Option<ValidatedFlags>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<ArtifactPaths>,
    /// Keys this version does not know, kept verbatim.
    #[serde(flatten)]
    pub extra: IndexMap<String, Value>,
}

impl BenchRow {
    /// A row with identity fields set and everything else unknown.
    pub fn new(
        framework: Framework,
        candidate_id: impl Into<String>,
        model: impl Into<String>,
        status: RunStatus,
    ) -> BenchRow {
        BenchRow {
            framework,
            framework_version: None,
            framework_commit: None,
            candidate_id: candidate_id.into(),
            model: model.into(),
            status,
            failure_reason: None,
            hardware: Hardware::default(),
            workload: Workload::default(),
            sla: SlaBlock::default(),
            metrics: Metrics::default(),
            server_command: None,
            benchmark_command: None,
            round: 0,
            commit: None,
            repeat: 0,
            smoke: false,
            precision: None,
            quantization: None,
            tokenizer: None,
            spec_decode: None,
            phase_metrics: None,
            cache: None,
            memory: None,
            normalization: None,
            validated_cli_flags: None,
            artifacts: None,
            extra: IndexMap::new(),
        }
    }

    /// The scenario name, or `default` when the row carries none.
    pub fn scenario(&self) -> &str {
        self.workload.scenario.as_deref().unwrap_or("default")
    }
}

/// A row file line that could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct RowParseError {
    pub line: usize,
    pub message: String,
}

/// Reads `candidates.jsonl` text: one row per non-blank line. Every bad line is reported.
pub fn parse_jsonl(text: &str) -> Result<Vec<BenchRow>, Vec<RowParseError>> {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<BenchRow>(line) {
            Ok(row) => rows.push(row),
            Err(e) => errors.push(RowParseError {
                line: idx + 1,
                message: e.to_string(),
            }),
        }
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

/// Writes one row as a single JSONL line (with the trailing newline).
pub fn to_jsonl_line(row: &BenchRow) -> String {
    let mut s = serde_json::to_string(row).unwrap_or_else(|e| {
        // Serializing plain data cannot fail except for non-string map keys, which the
        // row does not have; keep the error visible instead of panicking.
        format!("{{\"serialization_error\":{:?}}}", e.to_string())
    });
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_metrics_serialize_as_null_and_unknown_keys_survive() {
        let line = r#"{"framework":"vllm","framework_version":"0.9.0","framework_commit":null,"candidate_id":"vllm-0","model":"m","status":"ok","failure_reason":null,"hardware":{"gpu_model":"H100","gpu_count":1,"visible_devices":"0"},"workload":{"kind":"random","scenario":"chat","dataset_path":null,"input_len":1000,"output_len":1000,"input_len_p50":null,"input_len_p95":null,"output_len_p50":null,"output_len_p95":null,"num_prompts":80,"request_rate":"inf","max_concurrency":null,"endpoint":"/v1/completions","future_key":1},"sla":{"max_p50_ttft_ms":null,"max_p50_tpot_ms":null,"min_success_rate":null,"passed":null},"metrics":{"request_throughput":1.5,"output_token_throughput":null,"total_token_throughput":null,"p50_ttft_ms":null,"mean_ttft_ms":null,"p99_ttft_ms":null,"p50_tpot_ms":null,"mean_tpot_ms":null,"p99_tpot_ms":null,"p50_e2e_ms":null,"mean_e2e_ms":null,"p99_e2e_ms":null,"success_rate":1.0},"server_command":"vllm serve m","benchmark_command":null,"round":0,"commit":null,"repeat":0,"my_tool":{"x":[1,2]}}"#;
        let rows = parse_jsonl(line).unwrap();
        let row = &rows[0];
        assert_eq!(row.workload.request_rate, Some(RequestRate::Unbounded));
        assert_eq!(row.metrics.output_token_throughput, None);
        assert_eq!(row.extra["my_tool"], serde_json::json!({"x": [1, 2]}));
        assert_eq!(row.workload.extra["future_key"], serde_json::json!(1));
        let back = to_jsonl_line(row);
        let reparsed: serde_json::Value = serde_json::from_str(&back).unwrap();
        let original: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(reparsed, original);
    }

    #[test]
    fn bad_lines_are_reported_with_their_numbers() {
        let err = parse_jsonl("\n{\"framework\":\"nope\"}\nnot json\n").unwrap_err();
        assert_eq!(err.len(), 2);
        assert_eq!(err[0].line, 2);
        assert_eq!(err[1].line, 3);
    }
}
