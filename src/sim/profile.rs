//! Simulated engine profiles: the YAML cost model behind the simulated serving engine and
//! the simulated profiler traces.
//!
//! A profile lists the kernels of one decoder layer (with names shaped like real CUDA
//! kernels) and what each costs in prefill (per token) and decode (per step and per
//! sequence). Editing the profile is how the scripted agent "patches" the simulated SGLang
//! engine: fusing two kernels into one cheaper kernel makes every step faster, and the
//! simulated traces show the new kernel.

use crate::framework::Framework;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the campaign's SGLang checkout keeps its simulated engine profile by default.
pub const DEFAULT_CHECKOUT_PROFILE_PATH: &str = "sim/engine.yaml";

/// One simulated GPU kernel launched once per layer (or once per forward pass).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelCost {
    /// Kernel name as a profiler would show it, e.g. `fused_add_rms_norm_kernel`.
    pub name: String,
    /// Rough kernel family (`gemm`, `attention`, `norm`, `elementwise`, `activation`, ...).
    #[serde(default)]
    pub category: String,
    /// The aten (or custom) op that launches it, shown as the `cpu_op` parent in traces.
    #[serde(default)]
    pub op: Option<String>,
    /// The module frame it runs under, e.g. `LlamaAttention`, shown in traces.
    #[serde(default)]
    pub module: Option<String>,
    /// Prefill cost per prompt token, in microseconds.
    #[serde(default)]
    pub prefill_us_per_token: f64,
    /// Attention-style prefill term: microseconds per (token x context token) / 1000.
    #[serde(default)]
    pub prefill_us_per_token_ctx_k: f64,
    /// Fixed decode cost per step, in microseconds (launch + weight reads).
    #[serde(default)]
    pub decode_us_per_step: f64,
    /// Decode cost per running sequence, in microseconds.
    #[serde(default)]
    pub decode_us_per_seq: f64,
    /// Attention-style decode term: microseconds per 1000 context tokens across the batch.
    #[serde(default)]
    pub decode_us_per_ctx_k: f64,
}

/// Simulated GPU memory: decides the KV-cache capacity and when a launch runs out of memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryModel {
    pub gpu_mem_gb: f64,
    pub weights_gb: f64,
    /// KV-cache bytes per token (all layers).
    pub kv_bytes_per_token: f64,
    /// Static memory fraction used when the launch does not set one.
    pub default_mem_fraction: f64,
    /// A memory fraction above this makes the simulated launch fail with CUDA OOM.
    pub max_mem_fraction: f64,
}

/// Scheduler limits used when the launch sets no flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerDefaults {
    pub max_running_requests: u32,
    pub chunked_prefill_size: u32,
    /// CPU time per scheduler step in microseconds (batch building, sampling bookkeeping).
    pub overhead_us_per_step: f64,
    /// Fraction of the scheduler overhead hidden behind GPU work (0 = none, 1 = all).
    #[serde(default)]
    pub overlap_fraction: f64,
}

/// A whole simulated engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineProfile {
    /// Human name, always marking the profile as simulated.
    pub name: String,
    pub framework: String,
    /// Decoder-layer module name used in traces, e.g. `LlamaDecoderLayer`.
    #[serde(default = "default_layer_module")]
    pub layer_module: String,
    pub layers: u32,
    pub scheduler: SchedulerDefaults,
    pub memory: MemoryModel,
    /// Kernels of one decoder layer, in launch order.
    pub layer_kernels: Vec<KernelCost>,
    /// Kernels launched once per forward pass (embedding, final norm, lm_head, sampling).
    #[serde(default)]
    pub forward_kernels: Vec<KernelCost>,
}

fn default_layer_module() -> String {
    "LlamaDecoderLayer".to_string()
}

/// Why a profile could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read engine profile {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("engine profile {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("engine profile {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Simulated engine profiles shipped with sota-bot, named `builtin:<framework>` wherever a
/// profile path is accepted, so a campaign's commands do not depend on files of one machine.
pub const BUILTIN_PROFILES: [(Framework, &str); 4] = [
    (
        Framework::Sglang,
        include_str!("../../examples/sim/sglang.yaml"),
    ),
    (
        Framework::Vllm,
        include_str!("../../examples/sim/vllm.yaml"),
    ),
    (
        Framework::TensorrtLlm,
        include_str!("../../examples/sim/tensorrt_llm.yaml"),
    ),
    (
        Framework::Tokenspeed,
        include_str!("../../examples/sim/tokenspeed.yaml"),
    ),
];

/// Prefix naming a built-in profile instead of a file.
pub const BUILTIN_PREFIX: &str = "builtin:";

/// The `builtin:<framework>` name of a shipped profile.
pub fn builtin_name(framework: Framework) -> String {
    format!("{BUILTIN_PREFIX}{}", framework.canonical())
}

/// Reads and validates a profile file, or a shipped one named `builtin:<framework>`.
pub fn load_profile(path: &Path) -> Result<EngineProfile, ProfileError> {
    if let Some(name) = path.to_str().and_then(|p| p.strip_prefix(BUILTIN_PREFIX)) {
        let text = Framework::from_alias(name)
            .and_then(|fw| BUILTIN_PROFILES.iter().find(|(f, _)| *f == fw))
            .map(|(_, text)| *text)
            .ok_or_else(|| ProfileError::Invalid {
                path: path.to_path_buf(),
                message: format!(
                    "no built-in profile `{name}` (have: {})",
                    BUILTIN_PROFILES
                        .iter()
                        .map(|(f, _)| builtin_name(*f))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        return parse_profile(text, path);
    }
    let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_profile(&text, path)
}

/// Parses and validates profile text; `path` is only used in error messages.
pub fn parse_profile(text: &str, path: &Path) -> Result<EngineProfile, ProfileError> {
    let profile: EngineProfile =
        serde_yaml_ng::from_str(text).map_err(|e| ProfileError::Parse {
            path: path.to_path_buf(),
            message: match e.location() {
                Some(loc) => format!("line {}, column {}: {e}", loc.line(), loc.column()),
                None => e.to_string(),
            },
        })?;
    profile
        .validate()
        .map_err(|message| ProfileError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
    Ok(profile)
}

impl EngineProfile {
    /// Checks that every number is finite and non-negative and the shape is usable.
    pub fn validate(&self) -> Result<(), String> {
        if self.layers == 0 || self.layers > 4096 {
            return Err(format!(
                "layers must be within 1..=4096, got {}",
                self.layers
            ));
        }
        if self.layer_kernels.is_empty() {
            return Err("layer_kernels must list at least one kernel".into());
        }
        if self.scheduler.max_running_requests == 0 || self.scheduler.chunked_prefill_size == 0 {
            return Err(
                "scheduler.max_running_requests and chunked_prefill_size must be > 0".into(),
            );
        }
        let s = &self.scheduler;
        check_num("scheduler.overhead_us_per_step", s.overhead_us_per_step)?;
        if !(0.0..=1.0).contains(&s.overlap_fraction) {
            return Err("scheduler.overlap_fraction must be within 0..=1".into());
        }
        let m = &self.memory;
        for (field, v) in [
            ("memory.gpu_mem_gb", m.gpu_mem_gb),
            ("memory.weights_gb", m.weights_gb),
            ("memory.kv_bytes_per_token", m.kv_bytes_per_token),
            ("memory.default_mem_fraction", m.default_mem_fraction),
            ("memory.max_mem_fraction", m.max_mem_fraction),
        ] {
            check_num(field, v)?;
        }
        if m.kv_bytes_per_token <= 0.0 {
            return Err("memory.kv_bytes_per_token must be > 0".into());
        }
        for (i, k) in self
            .layer_kernels
            .iter()
            .chain(&self.forward_kernels)
            .enumerate()
        {
            if k.name.trim().is_empty() {
                return Err(format!("kernel #{i} has an empty name"));
            }
            for (field, v) in [
                ("prefill_us_per_token", k.prefill_us_per_token),
                ("prefill_us_per_token_ctx_k", k.prefill_us_per_token_ctx_k),
                ("decode_us_per_step", k.decode_us_per_step),
                ("decode_us_per_seq", k.decode_us_per_seq),
                ("decode_us_per_ctx_k", k.decode_us_per_ctx_k),
            ] {
                check_num(&format!("kernel `{}` {field}", k.name), v)?;
            }
        }
        Ok(())
    }

    /// Every kernel of one forward pass with how many times it launches (layers or once).
    pub fn kernels_per_forward(&self) -> impl Iterator<Item = (&KernelCost, u32)> {
        self.layer_kernels
            .iter()
            .map(|k| (k, self.layers))
            .chain(self.forward_kernels.iter().map(|k| (k, 1)))
    }

    /// Scheduler time per step that is not hidden behind GPU work, in microseconds.
    pub fn exposed_overhead_us(&self) -> f64 {
        self.scheduler.overhead_us_per_step * (1.0 - self.scheduler.overlap_fraction)
    }

    /// GPU time of one prefill pass over `tokens` new tokens whose attention spans
    /// `token_ctx_k` = Σ(token × context)/1000, in microseconds.
    pub fn prefill_gpu_us(&self, tokens: u64, token_ctx_k: f64) -> f64 {
        self.kernels_per_forward()
            .map(|(k, n)| kernel_prefill_us(k, tokens, token_ctx_k) * n as f64)
            .sum()
    }

    /// GPU time of one decode step over `batch` sequences holding `context_tokens` in total.
    pub fn decode_gpu_us(&self, batch: u64, context_tokens: u64) -> f64 {
        self.kernels_per_forward()
            .map(|(k, n)| kernel_decode_us(k, batch, context_tokens) * n as f64)
            .sum()
    }

    /// KV-cache capacity in tokens at a memory fraction (0 when weights do not fit).
    pub fn kv_capacity_tokens(&self, mem_fraction: f64) -> u64 {
        let m = &self.memory;
        let free_gb = m.gpu_mem_gb * mem_fraction - m.weights_gb;
        if free_gb <= 0.0 {
            return 0;
        }
        (free_gb * 1024.0 * 1024.0 * 1024.0 / m.kv_bytes_per_token) as u64
    }
}

/// One kernel's prefill time in microseconds.
pub fn kernel_prefill_us(k: &KernelCost, tokens: u64, token_ctx_k: f64) -> f64 {
    k.prefill_us_per_token * tokens as f64 + k.prefill_us_per_token_ctx_k * token_ctx_k
}

/// One kernel's decode-step time in microseconds.
pub fn kernel_decode_us(k: &KernelCost, batch: u64, context_tokens: u64) -> f64 {
    if batch == 0 {
        return 0.0;
    }
    k.decode_us_per_step
        + k.decode_us_per_seq * batch as f64
        + k.decode_us_per_ctx_k * context_tokens as f64 / 1000.0
}

fn check_num(field: &str, v: f64) -> Result<(), String> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(format!(
            "{field} must be a finite non-negative number, got {v}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn example(name: &str) -> EngineProfile {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("examples/sim/{name}.yaml"));
        load_profile(&path).unwrap()
    }

    #[test]
    fn every_example_profile_loads_and_is_named_as_simulated() {
        for name in ["sglang", "vllm", "tensorrt_llm", "tokenspeed"] {
            let p = example(name);
            assert!(p.name.contains("simulated"), "{name}: {}", p.name);
            assert!(p.decode_gpu_us(1, 1000) > 0.0);
            assert!(p.prefill_gpu_us(1000, 500.0) > p.prefill_gpu_us(100, 5.0));
            assert!(p.kv_capacity_tokens(p.memory.default_mem_fraction) > 100_000);
        }
    }

    #[test]
    fn decode_cost_grows_with_batch_and_context() {
        let p = example("sglang");
        assert!(p.decode_gpu_us(8, 8000) > p.decode_gpu_us(1, 1000));
        assert!(p.decode_gpu_us(1, 100_000) > p.decode_gpu_us(1, 1000));
        assert_eq!(p.decode_gpu_us(0, 0), 0.0);
    }

    #[test]
    fn bad_profiles_report_the_field() {
        let err = parse_profile("name: x\nlayers: [", Path::new("p.yaml")).unwrap_err();
        assert!(err.to_string().contains("p.yaml"), "{err}");
        let mut p = example("sglang");
        p.layer_kernels[0].decode_us_per_step = -1.0;
        assert!(p.validate().unwrap_err().contains("decode_us_per_step"));
    }

    proptest! {
        #[test]
        fn parse_profile_never_panics(text in any::<String>()) {
            let _ = parse_profile(&text, Path::new("fuzz.yaml"));
        }
    }
}
