//! Command-line flags of the simulated serving engine, parsed the way Python's argparse
//! parses a real engine's flags (pure).
//!
//! The simulator accepts the tuning flags of the framework it stands in for (SGLang's
//! `--max-running-requests`, vLLM's `--max-num-seqs`, TensorRT-LLM's snake_case
//! `--max_batch_size`, ...), rejects unknown flags with argparse's message and exit code 2,
//! and prints argparse-style `--help`, so sota-bot's flag validation against captured help
//! text and a framework's bounded search both have something real to work on.

use crate::framework::Framework;
use std::path::PathBuf;

/// What one flag sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dest {
    Framework,
    Profile,
    Model,
    Host,
    Port,
    TimeScale,
    StartupDelayMs,
    NeverReady,
    MaxRunning,
    ChunkTokens,
    MemFraction,
    KvFreeFraction,
    TensorParallel,
    Backend,
    Tokenizer,
    RequestLog,
}

struct FlagSpec {
    names: &'static [&'static str],
    dest: Dest,
    metavar: Option<&'static str>,
    help: &'static str,
}

const COMMON: &[FlagSpec] = &[
    FlagSpec {
        names: &["--framework"],
        dest: Dest::Framework,
        metavar: Some("{sglang,vllm,tensorrt_llm,tokenspeed}"),
        help: "Framework whose server flags the simulator accepts.",
    },
    FlagSpec {
        names: &["--profile"],
        dest: Dest::Profile,
        metavar: Some("PROFILE"),
        help: "Simulated engine profile (YAML cost model).",
    },
    FlagSpec {
        names: &["--model", "--model-path"],
        dest: Dest::Model,
        metavar: Some("MODEL"),
        help: "Model name served at /v1/models (nothing is loaded).",
    },
    FlagSpec {
        names: &["--host"],
        dest: Dest::Host,
        metavar: Some("HOST"),
        help: "Address to bind (default: 127.0.0.1).",
    },
    FlagSpec {
        names: &["--port"],
        dest: Dest::Port,
        metavar: Some("PORT"),
        help: "Port to bind (default: 30000).",
    },
    FlagSpec {
        names: &["--time-scale"],
        dest: Dest::TimeScale,
        metavar: Some("TIME_SCALE"),
        help: "Real seconds per simulated second (default: 0.01).",
    },
    FlagSpec {
        names: &["--startup-delay-ms"],
        dest: Dest::StartupDelayMs,
        metavar: Some("STARTUP_DELAY_MS"),
        help: "Real milliseconds to wait before listening (default: 0).",
    },
    FlagSpec {
        names: &["--tokenizer"],
        dest: Dest::Tokenizer,
        metavar: Some("TOKENIZER"),
        help: "Tokenizer that counts prompt tokens: a tokenizer.json, a model folder, a cached Hugging Face id, or builtin:sim (default: builtin:sim, the simulated model's own).",
    },
    FlagSpec {
        names: &["--request-log"],
        dest: Dest::RequestLog,
        metavar: Some("REQUEST_LOG"),
        help: "Append one JSON line per request (prompt digest, token counts, sampling) to this file.",
    },
    FlagSpec {
        names: &["--never-ready"],
        dest: Dest::NeverReady,
        metavar: None,
        help: "Listen but answer 503 on every health check (readiness tests).",
    },
];

const SGLANG: &[FlagSpec] = &[
    FlagSpec { names: &["--max-running-requests"], dest: Dest::MaxRunning, metavar: Some("MAX_RUNNING_REQUESTS"), help: "The maximum number of running requests." },
    FlagSpec { names: &["--chunked-prefill-size"], dest: Dest::ChunkTokens, metavar: Some("CHUNKED_PREFILL_SIZE"), help: "The maximum number of tokens in a chunk for the chunked prefill." },
    FlagSpec { names: &["--mem-fraction-static"], dest: Dest::MemFraction, metavar: Some("MEM_FRACTION_STATIC"), help: "The fraction of the memory used for static allocation (model weights and KV cache memory pool)." },
    FlagSpec { names: &["--tp-size", "--tensor-parallel-size"], dest: Dest::TensorParallel, metavar: Some("TP_SIZE"), help: "The tensor parallelism size." },
];

const VLLM_LIKE: &[FlagSpec] = &[
    FlagSpec {
        names: &["--max-num-seqs"],
        dest: Dest::MaxRunning,
        metavar: Some("MAX_NUM_SEQS"),
        help: "Maximum number of sequences to be processed in a single iteration.",
    },
    FlagSpec {
        names: &["--max-num-batched-tokens"],
        dest: Dest::ChunkTokens,
        metavar: Some("MAX_NUM_BATCHED_TOKENS"),
        help: "Maximum number of tokens to be processed in a single iteration.",
    },
    FlagSpec {
        names: &["--gpu-memory-utilization"],
        dest: Dest::MemFraction,
        metavar: Some("GPU_MEMORY_UTILIZATION"),
        help: "The fraction of GPU memory to be used for the model executor.",
    },
    FlagSpec {
        names: &["--tensor-parallel-size", "-tp"],
        dest: Dest::TensorParallel,
        metavar: Some("TENSOR_PARALLEL_SIZE"),
        help: "Number of tensor parallel groups.",
    },
];

const TRTLLM: &[FlagSpec] = &[
    FlagSpec { names: &["--backend"], dest: Dest::Backend, metavar: Some("{pytorch}"), help: "The backend to use (only pytorch is supported)." },
    FlagSpec { names: &["--max_batch_size"], dest: Dest::MaxRunning, metavar: Some("MAX_BATCH_SIZE"), help: "Maximum number of requests that the engine can schedule." },
    FlagSpec { names: &["--max_num_tokens"], dest: Dest::ChunkTokens, metavar: Some("MAX_NUM_TOKENS"), help: "Maximum number of batched input tokens after padding is removed in each batch." },
    FlagSpec { names: &["--kv_cache_free_gpu_memory_fraction"], dest: Dest::KvFreeFraction, metavar: Some("KV_CACHE_FREE_GPU_MEMORY_FRACTION"), help: "Free GPU memory fraction reserved for KV Cache, after allocating model weights and buffers." },
    FlagSpec { names: &["--tp_size"], dest: Dest::TensorParallel, metavar: Some("TP_SIZE"), help: "Tensor parallelism size." },
];

fn framework_flags(fw: Option<Framework>) -> Vec<&'static FlagSpec> {
    let extra: Vec<&'static FlagSpec> = match fw {
        Some(Framework::Sglang) => SGLANG.iter().collect(),
        Some(Framework::Vllm) | Some(Framework::Tokenspeed) => VLLM_LIKE.iter().collect(),
        Some(Framework::TensorrtLlm) => TRTLLM.iter().collect(),
        None => Vec::new(),
    };
    COMMON.iter().chain(extra).collect()
}

/// Parsed `sim serve` flags. Framework knobs are mapped onto the simulator's meaning.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeFlags {
    pub framework: Framework,
    pub profile: PathBuf,
    pub model: String,
    pub host: String,
    pub port: u16,
    pub time_scale: f64,
    pub startup_delay_ms: u64,
    pub never_ready: bool,
    pub max_running_requests: Option<u32>,
    pub chunked_prefill_size: Option<u32>,
    /// Share of total GPU memory for weights + KV cache (SGLang/vLLM meaning).
    pub mem_fraction: Option<f64>,
    /// TensorRT-LLM meaning: share of the memory left after weights.
    pub kv_free_fraction: Option<f64>,
    pub tensor_parallel: u32,
    /// Tokenizer spec (see `crate::tokenizer`).
    pub tokenizer: String,
    pub request_log: Option<PathBuf>,
}

/// Outcome of parsing: run the server, or print help (exit 0).
#[derive(Debug, Clone, PartialEq)]
pub enum ParsedServe {
    Run(ServeFlags),
    Help(String),
}

/// An argparse-style usage error (the CLI prints usage + this and exits 2).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{usage}\nsota-bot sim serve: error: {message}")]
pub struct FlagError {
    pub usage: String,
    pub message: String,
}

/// Parses `sim serve` arguments (without the program and subcommand names).
pub fn parse_serve_args(args: &[String]) -> Result<ParsedServe, FlagError> {
    // The framework decides which flags exist, so find it first.
    let framework = find_framework(args);
    let fw = match framework {
        Some(Ok(fw)) => Some(fw),
        Some(Err(bad)) => {
            return Err(err(None, format!("argument --framework: invalid choice: '{bad}' (choose from 'sglang', 'vllm', 'tensorrt_llm', 'tokenspeed')")));
        }
        None => None,
    };
    if args.iter().any(|a| a == "-h" || a == "--help") {
        return Ok(ParsedServe::Help(help_text(fw)));
    }
    let specs = framework_flags(fw);
    let mut values: Vec<(Dest, String, String)> = Vec::new(); // dest, flag, value
    let mut positional: Vec<String> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        i += 1;
        if !arg.starts_with('-') || arg == "-" {
            positional.push(arg.clone());
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let spec = match lookup(&specs, &name) {
            Lookup::Found(spec) => Some(spec),
            Lookup::Ambiguous(matches) => {
                return Err(err(
                    fw,
                    format!(
                        "ambiguous option: {name} could match {}",
                        matches.join(", ")
                    ),
                ))
            }
            Lookup::Unknown => None,
        };
        let Some(spec) = spec else {
            unknown.push(arg.clone());
            // An unknown `--flag value` pair is reported whole rather than taking the value
            // as the positional model.
            if inline.is_none() {
                if let Some(v) = args.get(i).filter(|v| !v.starts_with('-')) {
                    unknown.push(v.clone());
                    i += 1;
                }
            }
            continue;
        };
        match spec.metavar {
            None => {
                if inline.is_some() {
                    return Err(err(
                        fw,
                        format!("argument {name}: ignored explicit argument"),
                    ));
                }
                values.push((spec.dest, name, String::new()));
            }
            Some(metavar) => {
                let value = match inline {
                    Some(v) => v,
                    None => match args.get(i) {
                        Some(v) if !v.starts_with("--") => {
                            i += 1;
                            v.clone()
                        }
                        _ => {
                            let _ = metavar;
                            return Err(err(fw, format!("argument {name}: expected one argument")));
                        }
                    },
                };
                values.push((spec.dest, name, value));
            }
        }
    }
    if positional.len() > 1 || !unknown.is_empty() {
        let mut all = positional.iter().skip(1).cloned().collect::<Vec<_>>();
        all.extend(unknown);
        return Err(err(
            fw,
            format!("unrecognized arguments: {}", all.join(" ")),
        ));
    }
    build(fw, values, positional.into_iter().next())
}

enum Lookup<'a> {
    Found(&'a FlagSpec),
    Ambiguous(Vec<&'static str>),
    Unknown,
}

/// Finds a flag as argparse does: an exact name, else a long-flag prefix naming exactly one
/// flag (argparse's `allow_abbrev`); a prefix of several flags is ambiguous.
fn lookup<'a>(specs: &[&'a FlagSpec], name: &str) -> Lookup<'a> {
    if let Some(spec) = specs.iter().find(|s| s.names.contains(&name)) {
        return Lookup::Found(spec);
    }
    if !name.starts_with("--") || name.len() < 3 {
        return Lookup::Unknown;
    }
    let matches: Vec<(&'a FlagSpec, &'static str)> = specs
        .iter()
        .flat_map(|s| s.names.iter().map(move |n| (*s, *n)))
        .filter(|(_, n)| n.starts_with(name))
        .collect();
    match matches.as_slice() {
        [] => Lookup::Unknown,
        [(spec, _)] => Lookup::Found(spec),
        _ => Lookup::Ambiguous(matches.iter().map(|(_, n)| *n).collect()),
    }
}

fn find_framework(args: &[String]) -> Option<Result<Framework, String>> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = if a == "--framework" {
            it.next().cloned().unwrap_or_default()
        } else if let Some(v) = a.strip_prefix("--framework=") {
            v.to_string()
        } else {
            continue;
        };
        return Some(v.parse::<Framework>().map_err(|_| v));
    }
    None
}

fn build(
    fw: Option<Framework>,
    values: Vec<(Dest, String, String)>,
    positional_model: Option<String>,
) -> Result<ParsedServe, FlagError> {
    let Some(framework) = fw else {
        return Err(err(
            None,
            "the following arguments are required: --framework".into(),
        ));
    };
    let mut flags = ServeFlags {
        framework,
        profile: PathBuf::new(),
        model: positional_model.unwrap_or_default(),
        host: "127.0.0.1".into(),
        port: 30000,
        time_scale: 0.01,
        startup_delay_ms: 0,
        never_ready: false,
        max_running_requests: None,
        chunked_prefill_size: None,
        mem_fraction: None,
        kv_free_fraction: None,
        tensor_parallel: 1,
        tokenizer: crate::tokenizer::BUILTIN_SIM.to_string(),
        request_log: None,
    };
    let mut have_profile = false;
    for (dest, name, value) in values {
        let bad = |kind: &str| {
            err(
                fw,
                format!("argument {name}: invalid {kind} value: '{value}'"),
            )
        };
        match dest {
            Dest::Framework => {}
            Dest::Profile => {
                flags.profile = PathBuf::from(&value);
                have_profile = true;
            }
            Dest::Model => flags.model = value.clone(),
            Dest::Tokenizer => flags.tokenizer = value.clone(),
            Dest::RequestLog => flags.request_log = Some(PathBuf::from(&value)),
            Dest::Host => flags.host = value.clone(),
            Dest::Port => flags.port = value.parse().map_err(|_| bad("int"))?,
            Dest::TimeScale => {
                let v: f64 = value.parse().map_err(|_| bad("float"))?;
                if !(v.is_finite() && v > 0.0) {
                    return Err(bad("float (must be > 0)"));
                }
                flags.time_scale = v;
            }
            Dest::StartupDelayMs => {
                flags.startup_delay_ms = value.parse().map_err(|_| bad("int"))?
            }
            Dest::NeverReady => flags.never_ready = true,
            Dest::MaxRunning => {
                let v: u32 = value.parse().map_err(|_| bad("int"))?;
                if v == 0 {
                    return Err(bad("int (must be > 0)"));
                }
                flags.max_running_requests = Some(v);
            }
            Dest::ChunkTokens => {
                let v: u32 = value.parse().map_err(|_| bad("int"))?;
                if v == 0 {
                    return Err(bad("int (must be > 0)"));
                }
                flags.chunked_prefill_size = Some(v);
            }
            Dest::MemFraction | Dest::KvFreeFraction => {
                let v: f64 = value.parse().map_err(|_| bad("float"))?;
                if !(v.is_finite() && v > 0.0) {
                    return Err(bad("float (must be > 0)"));
                }
                if dest == Dest::MemFraction {
                    flags.mem_fraction = Some(v);
                } else {
                    flags.kv_free_fraction = Some(v);
                }
            }
            Dest::TensorParallel => {
                let v: u32 = value.parse().map_err(|_| bad("int"))?;
                if v == 0 || v > 64 {
                    return Err(bad("int (must be within 1..=64)"));
                }
                flags.tensor_parallel = v;
            }
            Dest::Backend => {
                if value != "pytorch" {
                    return Err(err(
                        fw,
                        format!(
                            "argument --backend: invalid choice: '{value}' (choose from 'pytorch')"
                        ),
                    ));
                }
            }
        }
    }
    if !have_profile {
        return Err(err(
            fw,
            "the following arguments are required: --profile".into(),
        ));
    }
    if flags.model.is_empty() {
        return Err(err(
            fw,
            "the following arguments are required: --model".into(),
        ));
    }
    Ok(ParsedServe::Run(flags))
}

fn usage(fw: Option<Framework>) -> String {
    let mut parts = vec!["[-h]".to_string()];
    for spec in framework_flags(fw) {
        let name = spec.names.first().copied().unwrap_or("");
        let required = matches!(spec.dest, Dest::Framework | Dest::Profile);
        let body = match spec.metavar {
            Some(m) => format!("{name} {m}"),
            None => name.to_string(),
        };
        parts.push(if required { body } else { format!("[{body}]") });
    }
    let mut out = String::from("usage: sota-bot sim serve");
    let indent = " ".repeat(out.len());
    let mut line_len = out.len();
    for part in parts {
        if line_len + part.len() + 1 > 88 {
            out.push('\n');
            out.push_str(&indent);
            line_len = indent.len();
        }
        out.push(' ');
        out.push_str(&part);
        line_len += part.len() + 1;
    }
    out.push_str(" [MODEL]");
    out
}

/// The argparse-style help text for `sim serve` (framework-specific when one is given).
pub fn help_text(fw: Option<Framework>) -> String {
    let mut out = usage(fw);
    out.push_str(
        "\n\nSIMULATED serving engine (sota-bot simulator lane). Serves OpenAI-compatible\n",
    );
    out.push_str("endpoints whose latency comes from a simulated cost model; no model runs.\n");
    if let Some(f) = fw {
        out.push_str(&format!(
            "Accepting the server flags of: {}.\n",
            f.display_name()
        ));
    }
    out.push_str("\npositional arguments:\n  MODEL                 Model name (same as --model).\n\noptions:\n");
    out.push_str("  -h, --help            show this help message and exit\n");
    for spec in framework_flags(fw) {
        let mut head = format!("  {}", spec.names.join(", "));
        if let Some(m) = spec.metavar {
            head = spec
                .names
                .iter()
                .map(|n| format!("{n} {m}"))
                .collect::<Vec<_>>()
                .join(", ");
            head = format!("  {head}");
        }
        if head.len() <= 22 {
            out.push_str(&format!("{head:<24}{}\n", spec.help));
        } else {
            out.push_str(&format!("{head}\n{:24}{}\n", "", spec.help));
        }
    }
    out
}

fn err(fw: Option<Framework>, message: String) -> FlagError {
    FlagError {
        usage: usage(fw),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn sglang_flags_parse() {
        let p = parse_serve_args(&args("--framework sglang --profile p.yaml --model m --port 31000 --max-running-requests 64 --chunked-prefill-size=4096 --mem-fraction-static 0.8 --never-ready")).unwrap();
        let ParsedServe::Run(f) = p else {
            panic!("expected run")
        };
        assert_eq!(f.port, 31000);
        assert_eq!(f.max_running_requests, Some(64));
        assert_eq!(f.chunked_prefill_size, Some(4096));
        assert_eq!(f.mem_fraction, Some(0.8));
        assert!(f.never_ready);
        assert_eq!(f.time_scale, 0.01);
    }

    #[test]
    fn abbreviations_resolve_like_argparse_and_ambiguous_ones_fail() {
        let p = parse_serve_args(&args(
            "--framework vllm --profile p m --max-num-s 8 --tokenizer t.json",
        ))
        .unwrap();
        let ParsedServe::Run(f) = p else {
            panic!("expected run")
        };
        assert_eq!(f.max_running_requests, Some(8));
        assert_eq!(f.tokenizer, "t.json");
        let e = parse_serve_args(&args("--framework vllm --profile p m --max-num 8")).unwrap_err();
        assert_eq!(
            e.message,
            "ambiguous option: --max-num could match --max-num-seqs, --max-num-batched-tokens"
        );
    }

    #[test]
    fn other_frameworks_flags_are_unknown_to_sglang() {
        let e = parse_serve_args(&args(
            "--framework sglang --profile p --model m --max-num-seqs 8",
        ))
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("error: unrecognized arguments: --max-num-seqs 8"),
            "{e}"
        );
        let ok =
            parse_serve_args(&args("--framework vllm --profile p m --max-num-seqs 8")).unwrap();
        assert!(matches!(
            ok,
            ParsedServe::Run(ServeFlags {
                max_running_requests: Some(8),
                ..
            })
        ));
        let trt = parse_serve_args(&args(
            "--framework trtllm --profile p m --backend pytorch --max_batch_size 4",
        ))
        .unwrap();
        assert!(matches!(
            trt,
            ParsedServe::Run(ServeFlags {
                framework: Framework::TensorrtLlm,
                ..
            })
        ));
        let e = parse_serve_args(&args("--framework trt --profile p m --backend tensorrt"))
            .unwrap_err();
        assert!(e.message.contains("invalid choice"), "{e}");
    }

    #[test]
    fn help_is_argparse_shaped_and_lists_framework_flags() {
        let ParsedServe::Help(h) = parse_serve_args(&args("--framework sglang --help")).unwrap()
        else {
            panic!("expected help")
        };
        assert!(h.starts_with("usage: sota-bot sim serve"));
        assert!(h.contains("\noptions:\n  -h, --help"));
        assert!(h.contains("--max-running-requests MAX_RUNNING_REQUESTS"));
        assert!(h.contains("SIMULATED"));
        assert!(!h.contains("--max-num-seqs"));
    }

    #[test]
    fn missing_values_and_required_flags_are_errors() {
        assert!(parse_serve_args(&args("--framework sglang --profile"))
            .unwrap_err()
            .message
            .contains("expected one argument"));
        assert!(parse_serve_args(&args("--profile p --model m"))
            .unwrap_err()
            .message
            .contains("--framework"));
        assert!(parse_serve_args(&args("--framework sglang --model m"))
            .unwrap_err()
            .message
            .contains("--profile"));
        assert!(
            parse_serve_args(&args("--framework sglang --profile p --model m --port x"))
                .unwrap_err()
                .message
                .contains("invalid int")
        );
    }

    proptest! {
        #[test]
        fn parser_never_panics(v in proptest::collection::vec(any::<String>(), 0..8)) {
            let _ = parse_serve_args(&v);
        }
    }
}
