//! Benchmark plan (ARCHITECTURE.md, *The fixed workload*): what every framework's bounded search
//! looks like.
//!
//! A plan is YAML written by a person (or rendered by the campaign engine). It names the
//! model, tensor-parallel size, port and scenarios shared by all frameworks, and per
//! framework the baseline server flags, an ordered search space, benchmark-only knobs
//! (which do not need a server relaunch) and an optional server binary spelling.
//!
//! Flag names may be written `snake_case`, `dash-case` or with a leading `--`; they are
//! normalised to `snake_case` here and rendered per framework by [`crate::bench::command`].
//! Memory fractions are pinned by default: searching over them is rejected unless the plan
//! says `allow_memory_search: true`, because a memory sweep changes what the server can
//! hold and turns a fair comparison into a capacity contest.

use crate::framework::Framework;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_yaml_ng as serde_yaml;
use std::fmt;

/// Candidates per framework when the plan does not say (baseline included).
pub const DEFAULT_MAX_CANDIDATES: usize = 10;
/// Prompts per scenario in the default workload.
pub const DEFAULT_NUM_PROMPTS: u64 = 80;
/// Server flags that size GPU memory; pinned unless `allow_memory_search` is set.
pub const MEMORY_FRACTION_FLAGS: [&str; 3] = [
    "mem_fraction_static",
    "gpu_memory_utilization",
    "kv_cache_free_gpu_memory_fraction",
];
/// Flags the plan sets once for every framework (model, port, tensor parallelism); writing
/// them in per-framework flags would make two sources of truth.
const RESERVED_SERVER_FLAGS: [&str; 8] = [
    "model",
    "model_path",
    "port",
    "tp",
    "tp_size",
    "tensor_parallel_size",
    "backend",
    "host",
];

/// Benchmark-client flags sota-bot renders itself so every framework gets the same fixed
/// workload (lengths, prompt count, dataset, sampling, seed, tokenizer, endpoint, output
/// files); a plan may only add load knobs such as `max_concurrency` or `request_rate`.
const RESERVED_BENCH_FLAGS: [&str; 30] = [
    "model",
    "tokenizer",
    "backend",
    "host",
    "port",
    "base_url",
    "endpoint",
    "dataset_name",
    "dataset_path",
    "random_ids",
    "num_prompts",
    "input_len",
    "output_len",
    "random_input_len",
    "random_output_len",
    "random_range_ratio",
    "random_prefix_len",
    "seed",
    "temperature",
    "top_p",
    "top_k",
    "ignore_eos",
    "disable_ignore_eos",
    "extra_body",
    "extra_request_body",
    "output_file",
    "output_details",
    "result_filename",
    "save_result",
    "save_detailed",
];

/// One value of a command-line flag, as written in the plan.
#[derive(Debug, Clone, PartialEq)]
pub enum FlagValue {
    /// Omits the flag.
    Null,
    /// `true` renders a bare flag, `false` omits it.
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// Rendered as one flag followed by each item.
    List(Vec<FlagValue>),
}

impl FlagValue {
    /// Whether the flag appears on the command line at all.
    pub fn is_rendered(&self) -> bool {
        match self {
            FlagValue::Null | FlagValue::Bool(false) => false,
            FlagValue::List(items) => !items.is_empty(),
            _ => true,
        }
    }

    /// Value as a positive integer, for sequence-limit checks.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            FlagValue::Int(v) => u64::try_from(*v).ok(),
            FlagValue::Float(f) if f.is_finite() && *f >= 0.0 && f.fract() == 0.0 => {
                Some(*f as u64)
            }
            FlagValue::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// The argument words of this value (empty for a bare or omitted flag).
    pub fn to_args(&self) -> Vec<String> {
        match self {
            FlagValue::Null | FlagValue::Bool(_) => Vec::new(),
            FlagValue::Int(v) => vec![v.to_string()],
            FlagValue::Float(f) => vec![format_float(*f)],
            FlagValue::Str(s) => vec![s.clone()],
            FlagValue::List(items) => items.iter().flat_map(FlagValue::to_args).collect(),
        }
    }

    fn from_yaml(v: &serde_yaml::Value, path: &str) -> Result<FlagValue, PlanError> {
        use serde_yaml::Value as Y;
        Ok(match v {
            Y::Null => FlagValue::Null,
            Y::Bool(b) => FlagValue::Bool(*b),
            Y::Number(n) => {
                if let Some(i) = n.as_i64() {
                    FlagValue::Int(i)
                } else if let Some(f) = n.as_f64() {
                    FlagValue::Float(f)
                } else {
                    return Err(PlanError::invalid(
                        path,
                        format!("number {n} is out of range"),
                    ));
                }
            }
            Y::String(s) => FlagValue::Str(s.clone()),
            Y::Sequence(items) => FlagValue::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let p = format!("{path}[{i}]");
                        match item {
                            Y::Sequence(_) | Y::Mapping(_) => Err(PlanError::invalid(
                                &p,
                                "a list flag value holds scalars only".to_string(),
                            )),
                            other => FlagValue::from_yaml(other, &p),
                        }
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Y::Mapping(_) => {
                return Err(PlanError::invalid(
                    path,
                    "a flag value must be a scalar or a list, not a mapping".to_string(),
                ))
            }
            Y::Tagged(t) => FlagValue::from_yaml(&t.value, path)?,
        })
    }
}

/// Floats keep a decimal point (`1.0`, not `1`) so a float flag never reads as an integer.
fn format_float(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

impl fmt::Display for FlagValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlagValue::Null => f.write_str("null"),
            FlagValue::Bool(b) => write!(f, "{b}"),
            other => f.write_str(&other.to_args().join(" ")),
        }
    }
}

impl Serialize for FlagValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            FlagValue::Null => s.serialize_none(),
            FlagValue::Bool(b) => s.serialize_bool(*b),
            FlagValue::Int(i) => s.serialize_i64(*i),
            FlagValue::Float(x) => s.serialize_f64(*x),
            FlagValue::Str(x) => s.serialize_str(x),
            FlagValue::List(items) => items.serialize(s),
        }
    }
}

/// Ordered flag name -> value (names normalised to `snake_case`).
pub type Flags = IndexMap<String, FlagValue>;
/// Ordered flag name -> values to try (names normalised to `snake_case`).
pub type SearchSpace = IndexMap<String, Vec<FlagValue>>;

/// One aligned request shape (not a cartesian product of lengths).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    pub name: String,
    pub input_len: u64,
    pub output_len: u64,
    pub num_prompts: u64,
}

/// Which client drives the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BenchClient {
    /// `sota-bot bench run`: one OpenAI-compatible request path for every framework.
    #[default]
    Builtin,
    /// Each framework's own benchmark CLI.
    Native,
}

/// One framework's bounded search.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrameworkPlan {
    pub framework: Framework,
    /// Replaces the launcher words (e.g. `python3 -m sglang.launch_server`).
    pub server_binary: Option<String>,
    /// Replaces the native benchmark client's launcher words (e.g. a container's alias).
    pub bench_binary: Option<String>,
    /// TensorRT-LLM server backend; only `pytorch` is supported.
    pub backend: Option<String>,
    pub base_server_flags: Flags,
    pub search_space: SearchSpace,
    pub benchmark_flags: Flags,
    pub benchmark_search_space: SearchSpace,
    pub max_candidates: usize,
}

/// A parsed, validated benchmark plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchPlan {
    pub model: String,
    pub tokenizer: Option<String>,
    pub tp_size: u32,
    pub host: String,
    pub port: u16,
    pub dataset: String,
    pub endpoint: String,
    pub bench_client: BenchClient,
    /// Seeds every client's prompts: the built-in client sends the same prompts for the
    /// same seed; native clients get the same seed (their generators differ).
    pub seed: u64,
    pub allow_memory_search: bool,
    pub scenarios: Vec<Scenario>,
    pub frameworks: Vec<FrameworkPlan>,
}

impl BenchPlan {
    /// The plan of one framework, if selected.
    pub fn framework(&self, fw: Framework) -> Option<&FrameworkPlan> {
        self.frameworks.iter().find(|f| f.framework == fw)
    }

    /// `http://host:port` of the server under test.
    pub fn base_url(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }
}

/// A plan that could not be read or violates the campaign contract.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("plan is not valid YAML: {0}")]
    Yaml(String),
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

impl PlanError {
    fn invalid(path: &str, message: String) -> PlanError {
        PlanError::Invalid {
            path: path.to_string(),
            message,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    model: String,
    #[serde(default)]
    tokenizer: Option<String>,
    #[serde(default = "default_tp", alias = "tp")]
    tp_size: u32,
    #[serde(default = "default_host")]
    host: String,
    #[serde(default = "default_port")]
    port: u16,
    #[serde(default = "default_dataset")]
    dataset: String,
    #[serde(default = "default_endpoint")]
    endpoint: String,
    #[serde(default)]
    bench_client: BenchClient,
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    max_candidates: Option<usize>,
    #[serde(default)]
    allow_memory_search: bool,
    #[serde(default)]
    num_prompts: Option<u64>,
    #[serde(default)]
    scenarios: Option<Vec<RawScenario>>,
    frameworks: IndexMap<String, Option<RawFrameworkPlan>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    input_len: u64,
    output_len: u64,
    #[serde(default)]
    num_prompts: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFrameworkPlan {
    #[serde(default)]
    server_binary: Option<String>,
    #[serde(default)]
    bench_binary: Option<String>,
    #[serde(default)]
    backend: Option<String>,
    #[serde(default)]
    base_server_flags: IndexMap<String, serde_yaml::Value>,
    #[serde(default)]
    search_space: IndexMap<String, serde_yaml::Value>,
    #[serde(default)]
    benchmark_flags: IndexMap<String, serde_yaml::Value>,
    #[serde(default)]
    benchmark_search_space: IndexMap<String, serde_yaml::Value>,
    #[serde(default)]
    max_candidates: Option<usize>,
}

fn default_tp() -> u32 {
    1
}
fn default_host() -> String {
    "127.0.0.1".to_string()
}
fn default_port() -> u16 {
    30000
}
fn default_dataset() -> String {
    "random".to_string()
}
fn default_endpoint() -> String {
    "/v1/completions".to_string()
}

/// The default aligned scenarios (ARCHITECTURE.md, *The fixed workload*).
pub fn default_scenarios(num_prompts: u64) -> Vec<Scenario> {
    vec![
        Scenario {
            name: "chat".into(),
            input_len: 1000,
            output_len: 1000,
            num_prompts,
        },
        Scenario {
            name: "summarization".into(),
            input_len: 8000,
            output_len: 1000,
            num_prompts,
        },
    ]
}

/// Normalises a flag name: strips leading dashes, dash-case to snake_case.
pub fn normalize_flag_name(name: &str) -> String {
    name.trim().trim_start_matches('-').replace('-', "_")
}

fn is_memory_fraction(name: &str) -> bool {
    MEMORY_FRACTION_FLAGS.contains(&name)
}

fn flags_from_yaml(
    raw: &IndexMap<String, serde_yaml::Value>,
    path: &str,
) -> Result<Flags, PlanError> {
    let mut out = Flags::new();
    for (name, value) in raw {
        let key = normalize_flag_name(name);
        let p = format!("{path}.{name}");
        if key.is_empty() {
            return Err(PlanError::invalid(&p, "empty flag name".into()));
        }
        if out.contains_key(&key) {
            return Err(PlanError::invalid(
                &p,
                format!("flag `{key}` is given twice (dash and snake spellings are the same flag)"),
            ));
        }
        out.insert(key, FlagValue::from_yaml(value, &p)?);
    }
    Ok(out)
}

fn space_from_yaml(
    raw: &IndexMap<String, serde_yaml::Value>,
    path: &str,
) -> Result<SearchSpace, PlanError> {
    let mut out = SearchSpace::new();
    for (name, value) in raw {
        let key = normalize_flag_name(name);
        let p = format!("{path}.{name}");
        if key.is_empty() {
            return Err(PlanError::invalid(&p, "empty flag name".into()));
        }
        if out.contains_key(&key) {
            return Err(PlanError::invalid(
                &p,
                format!("flag `{key}` is given twice"),
            ));
        }
        let values = match value {
            serde_yaml::Value::Sequence(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| FlagValue::from_yaml(v, &format!("{p}[{i}]")))
                .collect::<Result<Vec<_>, _>>()?,
            _ => {
                return Err(PlanError::invalid(
                    &p,
                    "a search-space entry must be a list of values to try".into(),
                ))
            }
        };
        if values.is_empty() {
            return Err(PlanError::invalid(
                &p,
                "a search-space entry needs at least one value".into(),
            ));
        }
        out.insert(key, values);
    }
    Ok(out)
}

/// Reads and validates a plan. Errors name the offending key path.
pub fn parse_plan(text: &str) -> Result<BenchPlan, PlanError> {
    let raw: RawPlan = serde_yaml::from_str(text).map_err(|e| PlanError::Yaml(e.to_string()))?;
    if raw.model.trim().is_empty() {
        return Err(PlanError::invalid("model", "must not be empty".into()));
    }
    if raw.tp_size == 0 {
        return Err(PlanError::invalid("tp_size", "must be at least 1".into()));
    }
    if raw.port == 0 {
        return Err(PlanError::invalid("port", "must be 1..65535".into()));
    }
    let plan_max = raw.max_candidates.unwrap_or(DEFAULT_MAX_CANDIDATES);
    if plan_max == 0 {
        return Err(PlanError::invalid(
            "max_candidates",
            "must be at least 1 (the baseline)".into(),
        ));
    }
    let num_prompts = raw.num_prompts.unwrap_or(DEFAULT_NUM_PROMPTS);
    if num_prompts == 0 {
        return Err(PlanError::invalid(
            "num_prompts",
            "must be at least 1".into(),
        ));
    }
    let scenarios = match raw.scenarios {
        None => default_scenarios(num_prompts),
        Some(list) => {
            if list.is_empty() {
                return Err(PlanError::invalid(
                    "scenarios",
                    "at least one scenario is needed".into(),
                ));
            }
            let mut out: Vec<Scenario> = Vec::new();
            for (i, s) in list.into_iter().enumerate() {
                let p = format!("scenarios[{i}]");
                if s.name.trim().is_empty() {
                    return Err(PlanError::invalid(
                        &p,
                        "scenario name must not be empty".into(),
                    ));
                }
                if out.iter().any(|o| o.name == s.name) {
                    return Err(PlanError::invalid(
                        &p,
                        format!("scenario `{}` is given twice", s.name),
                    ));
                }
                if s.input_len == 0 || s.output_len == 0 {
                    return Err(PlanError::invalid(
                        &p,
                        "input_len and output_len must be positive".into(),
                    ));
                }
                out.push(Scenario {
                    name: s.name,
                    input_len: s.input_len,
                    output_len: s.output_len,
                    num_prompts: s.num_prompts.unwrap_or(num_prompts),
                });
            }
            out
        }
    };
    if raw.frameworks.is_empty() {
        return Err(PlanError::invalid(
            "frameworks",
            "at least one framework is needed".into(),
        ));
    }
    let mut frameworks: Vec<FrameworkPlan> = Vec::new();
    let empty = RawFrameworkPlan::default();
    for (name, fw_raw) in &raw.frameworks {
        let fw_raw = fw_raw.as_ref().unwrap_or(&empty);
        let path = format!("frameworks.{name}");
        let framework = Framework::from_alias(name).ok_or_else(|| {
            PlanError::invalid(
                &path,
                format!(
                    "unknown framework `{name}`: expected sglang, vllm, tensorrt_llm or tokenspeed"
                ),
            )
        })?;
        if frameworks.iter().any(|f| f.framework == framework) {
            return Err(PlanError::invalid(
                &path,
                format!("framework `{framework}` is given twice"),
            ));
        }
        frameworks.push(framework_plan(
            framework,
            fw_raw,
            &path,
            plan_max,
            raw.allow_memory_search,
        )?);
    }
    Ok(BenchPlan {
        model: raw.model,
        tokenizer: raw.tokenizer,
        tp_size: raw.tp_size,
        host: raw.host,
        port: raw.port,
        dataset: raw.dataset,
        endpoint: raw.endpoint,
        bench_client: raw.bench_client,
        seed: raw.seed,
        allow_memory_search: raw.allow_memory_search,
        scenarios,
        frameworks,
    })
}

fn framework_plan(
    framework: Framework,
    raw: &RawFrameworkPlan,
    path: &str,
    plan_max: usize,
    allow_memory_search: bool,
) -> Result<FrameworkPlan, PlanError> {
    let base_server_flags =
        flags_from_yaml(&raw.base_server_flags, &format!("{path}.base_server_flags"))?;
    let search_space = space_from_yaml(&raw.search_space, &format!("{path}.search_space"))?;
    let benchmark_flags =
        flags_from_yaml(&raw.benchmark_flags, &format!("{path}.benchmark_flags"))?;
    let benchmark_search_space = space_from_yaml(
        &raw.benchmark_search_space,
        &format!("{path}.benchmark_search_space"),
    )?;
    for (section, keys) in [
        (
            "base_server_flags",
            base_server_flags.keys().collect::<Vec<_>>(),
        ),
        ("search_space", search_space.keys().collect::<Vec<_>>()),
    ] {
        if let Some(k) = keys
            .iter()
            .find(|k| RESERVED_SERVER_FLAGS.contains(&k.as_str()))
        {
            return Err(PlanError::invalid(
                &format!("{path}.{section}.{k}"),
                "model, port, host, tensor parallelism and backend are set once at plan level (model, port, host, tp_size, backend)".into(),
            ));
        }
    }
    if !allow_memory_search {
        if let Some(k) = search_space.keys().find(|k| is_memory_fraction(k)) {
            return Err(PlanError::invalid(
                &format!("{path}.search_space.{k}"),
                format!("memory fractions are pinned, not searched: set `{k}` in base_server_flags, or set `allow_memory_search: true` to search it"),
            ));
        }
    }
    for (section, keys) in [
        (
            "benchmark_flags",
            benchmark_flags.keys().collect::<Vec<_>>(),
        ),
        (
            "benchmark_search_space",
            benchmark_search_space.keys().collect::<Vec<_>>(),
        ),
    ] {
        if let Some(k) = keys
            .iter()
            .find(|k| RESERVED_BENCH_FLAGS.contains(&k.replace('-', "_").as_str()))
        {
            return Err(PlanError::invalid(
                &format!("{path}.{section}.{k}"),
                "sota-bot renders the fixed workload itself (lengths, prompts, dataset, sampling, seed, tokenizer, endpoint, result files) the same way for every framework; only load knobs such as max_concurrency or request_rate may be set here (the seed is `seed` at plan level)".into(),
            ));
        }
    }
    if let Some(k) = benchmark_search_space
        .keys()
        .find(|k| search_space.contains_key(*k))
    {
        return Err(PlanError::invalid(
            &format!("{path}.benchmark_search_space.{k}"),
            "a flag is either a server flag or a benchmark knob, not both".into(),
        ));
    }
    let backend = raw.backend.clone();
    if framework == Framework::TensorrtLlm {
        if let Some(b) = &backend {
            if b != "pytorch" {
                return Err(PlanError::invalid(
                    &format!("{path}.backend"),
                    format!("TensorRT-LLM backend `{b}` is unsupported: only `trtllm-serve serve --backend pytorch` is benchmarked"),
                ));
            }
        }
    } else if backend.is_some() {
        return Err(PlanError::invalid(
            &format!("{path}.backend"),
            "only TensorRT-LLM takes a server backend".into(),
        ));
    }
    for (field, bin) in [
        ("server_binary", &raw.server_binary),
        ("bench_binary", &raw.bench_binary),
    ] {
        if bin
            .as_ref()
            .is_some_and(|b| b.split_whitespace().next().is_none())
        {
            return Err(PlanError::invalid(
                &format!("{path}.{field}"),
                "must not be empty".into(),
            ));
        }
    }
    let max_candidates = raw.max_candidates.unwrap_or(plan_max);
    if max_candidates == 0 {
        return Err(PlanError::invalid(
            &format!("{path}.max_candidates"),
            "must be at least 1 (the baseline)".into(),
        ));
    }
    Ok(FrameworkPlan {
        framework,
        server_binary: raw.server_binary.clone(),
        bench_binary: raw.bench_binary.clone(),
        backend,
        base_server_flags,
        search_space,
        benchmark_flags,
        benchmark_search_space,
        max_candidates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "model: m\nframeworks:\n  sglang: {}\n";

    #[test]
    fn defaults_follow_the_spec() {
        let plan = parse_plan(MINIMAL).unwrap();
        assert_eq!(plan.tp_size, 1);
        assert_eq!(plan.scenarios.len(), 2);
        assert_eq!(plan.scenarios[1].input_len, 8000);
        assert_eq!(plan.scenarios[0].num_prompts, 80);
        assert_eq!(plan.frameworks[0].max_candidates, 10);
        assert_eq!(plan.bench_client, BenchClient::Builtin);
    }

    #[test]
    fn memory_search_is_rejected_unless_allowed() {
        let text = "model: m\nframeworks:\n  vllm:\n    search_space:\n      gpu-memory-utilization: [0.8, 0.9]\n";
        let err = parse_plan(text).unwrap_err().to_string();
        assert!(
            err.contains("frameworks.vllm.search_space.gpu_memory_utilization"),
            "{err}"
        );
        assert!(err.contains("pinned"), "{err}");
        let allowed = format!("allow_memory_search: true\n{text}");
        assert!(parse_plan(&allowed).is_ok());
        // Pinning it in the baseline is fine.
        let pinned = "model: m\nframeworks:\n  vllm:\n    base_server_flags: {gpu_memory_utilization: 0.9}\n";
        assert!(parse_plan(pinned).is_ok());
    }

    #[test]
    fn trtllm_non_pytorch_backend_is_unsupported() {
        let text = "model: m\nframeworks:\n  trtllm:\n    backend: tensorrt\n";
        let err = parse_plan(text).unwrap_err().to_string();
        assert!(err.contains("unsupported"), "{err}");
        let ok = "model: m\nframeworks:\n  trtllm:\n    backend: pytorch\n";
        assert_eq!(
            parse_plan(ok).unwrap().frameworks[0].framework,
            Framework::TensorrtLlm
        );
    }

    #[test]
    fn errors_name_the_key_path() {
        let err = parse_plan("model: m\nframeworks:\n  llama.cpp: {}\n").unwrap_err();
        assert!(err.to_string().contains("frameworks.llama.cpp"));
        let err = parse_plan(
            "model: m\nframeworks:\n  sglang:\n    search_space: {chunked_prefill_size: 4096}\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("list of values"), "{err}");
        let err =
            parse_plan("model: m\nframeworks:\n  sglang:\n    base_server_flags: {port: 1}\n")
                .unwrap_err();
        assert!(err.to_string().contains("plan level"), "{err}");
        let err = parse_plan("model: m\nfoo: 1\nframeworks: {sglang: {}}\n").unwrap_err();
        assert!(matches!(err, PlanError::Yaml(_)));
        let err = parse_plan("model: m\nframeworks:\n  sglang: {}\n  sgl: {}\n").unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
    }

    #[test]
    fn flag_names_are_normalised() {
        let plan = parse_plan(
            "model: m\nframeworks:\n  sglang:\n    base_server_flags: {--chunked-prefill-size: 4096, enable_torch_compile: true}\n",
        )
        .unwrap();
        let keys: Vec<_> = plan.frameworks[0]
            .base_server_flags
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, vec!["chunked_prefill_size", "enable_torch_compile"]);
    }
}
