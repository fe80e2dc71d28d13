//! `sota-bot bench run`: the built-in OpenAI-compatible benchmark client. Framework-neutral,
//! so a campaign can use it as the one request path for every framework; against the
//! simulator it reports latencies in simulated milliseconds (see `runner::client`).

use super::super::{EXIT_FAILURE, EXIT_INVALID_INPUT, EXIT_OK};
use crate::bench::row::{to_jsonl_line, BenchRow, RequestRate, RunStatus, Sampling, Workload};
use crate::framework::Framework;
use crate::runner::client::{
    build_prompts, record_measured_lengths, run_client, summarize, ClientConfig, PromptFormat,
};
use crate::secrets::SecretSet;
use crate::tokenizer::{HfCache, ModelTokenizer};
use anyhow::Context;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `sota-bot bench run` (boxed: the options are large next to the other
/// bench subcommands).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub options: Box<RunOptions>,
}

/// The options of `sota-bot bench run`.
#[derive(Debug, clap::Args)]
pub struct RunOptions {
    /// Server base URL, e.g. http://127.0.0.1:30000.
    #[arg(long)]
    pub base_url: String,
    #[arg(long)]
    pub model: String,
    #[arg(long)]
    pub framework: Framework,
    #[arg(long)]
    pub candidate_id: String,
    #[arg(long)]
    pub scenario: String,
    /// Prompt length in tokens of the model's tokenizer (every prompt is exactly this long).
    #[arg(long)]
    pub input_len: u64,
    /// Output tokens per request (`max_tokens`, sent with `ignore_eos`).
    #[arg(long)]
    pub output_len: u64,
    #[arg(long)]
    pub num_prompts: u64,
    #[arg(long)]
    pub max_concurrency: Option<u64>,
    /// Requests per (simulated) second, or `inf` to send all at once.
    #[arg(long, default_value = "inf")]
    pub request_rate: String,
    #[arg(long, default_value = "/v1/completions")]
    pub endpoint: String,
    /// Seeds the prompts and the arrival process: the same seed sends the same requests.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The model's tokenizer: a tokenizer.json, a model folder, a Hugging Face id in the
    /// local cache, or `builtin:sim` (the simulated model's). Defaults to the model.
    #[arg(long)]
    pub tokenizer: Option<String>,
    /// Prompts as text (re-encoding to exactly the length) or as token ids (completions only).
    #[arg(long, value_enum, default_value = "text")]
    pub prompt_format: PromptFormat,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 3600)]
    pub request_timeout_s: u64,
    /// Normalized row output (JSONL, one line).
    #[arg(long)]
    pub out: PathBuf,
    /// Per-request raw results (JSON).
    #[arg(long)]
    pub raw_out: Option<PathBuf>,
}

fn parse_rate(s: &str) -> Option<RequestRate> {
    RequestRate::from_json(&Value::String(s.to_string())).filter(|r| match r {
        RequestRate::PerSecond(v) => *v > 0.0,
        RequestRate::Unbounded => true,
    })
}

/// Runs the client and writes the row.
pub fn run(args: Args) -> anyhow::Result<i32> {
    let args = *args.options;
    let Some(rate) = parse_rate(&args.request_rate) else {
        eprintln!(
            "error: --request-rate must be a positive number or `inf`, got `{}`",
            args.request_rate
        );
        return Ok(EXIT_INVALID_INPUT);
    };
    if args.input_len == 0 || args.output_len == 0 || args.num_prompts == 0 {
        eprintln!("error: --input-len, --output-len and --num-prompts must be at least 1");
        return Ok(EXIT_INVALID_INPUT);
    }
    if !args.endpoint.starts_with('/') {
        eprintln!("error: --endpoint must be a path such as /v1/completions");
        return Ok(EXIT_INVALID_INPUT);
    }
    if args.prompt_format == PromptFormat::Ids && args.endpoint.contains("chat") {
        eprintln!("error: --prompt-format ids needs a completions endpoint; chat takes text");
        return Ok(EXIT_INVALID_INPUT);
    }
    // The tokenizer decides what "input_len tokens" means: without it nothing is sent.
    let spec = args.tokenizer.clone().unwrap_or_else(|| args.model.clone());
    let tokenizer = match ModelTokenizer::load_spec(&spec, &HfCache::from_env()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}; pass --tokenizer with the model's tokenizer.json");
            return Ok(EXIT_INVALID_INPUT);
        }
    };
    let prompts = match build_prompts(
        &tokenizer,
        args.input_len,
        args.num_prompts,
        args.seed,
        args.prompt_format,
    ) {
        Ok(p) => std::sync::Arc::new(p),
        Err(e) => {
            eprintln!("error: {}: {e}", tokenizer.source().display());
            return Ok(EXIT_INVALID_INPUT);
        }
    };
    let cfg = ClientConfig {
        base_url: args.base_url.clone(),
        model: args.model.clone(),
        endpoint: args.endpoint.clone(),
        input_len: args.input_len,
        output_len: args.output_len,
        num_prompts: args.num_prompts,
        max_concurrency: args.max_concurrency,
        request_rate: rate,
        seed: args.seed,
        request_timeout: Duration::from_secs(args.request_timeout_s.max(1)),
        prompts: prompts.clone(),
    };
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let run = match rt.block_on(run_client(&cfg)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_INVALID_INPUT);
        }
    };
    let metrics = summarize(&run, args.num_prompts);
    let completed = run.results.iter().filter(|r| r.success).count();
    let secrets = SecretSet::from_default_env();
    let status = if completed > 0 {
        RunStatus::Ok
    } else {
        RunStatus::Failed
    };
    let mut row = BenchRow::new(args.framework, &args.candidate_id, &args.model, status);
    if completed == 0 {
        let first = run
            .results
            .iter()
            .find_map(|r| r.error.clone())
            .unwrap_or_else(|| "no request completed".into());
        row.failure_reason = Some(
            secrets
                .scrub(&format!(
                    "all {} requests failed; first error: {first}",
                    run.results.len()
                ))
                .into_owned(),
        );
    }
    row.workload = Workload {
        kind: Some("random".into()),
        scenario: Some(args.scenario.clone()),
        input_len: Some(args.input_len),
        output_len: Some(args.output_len),
        num_prompts: Some(args.num_prompts),
        request_rate: Some(rate),
        max_concurrency: args.max_concurrency,
        endpoint: Some(args.endpoint.clone()),
        sampling: Some(Sampling {
            temperature: Some(0.0),
            top_p: None,
            ignore_eos: Some(true),
        }),
        prompt_digest: Some(prompts.digest.clone()),
        ..Workload::default()
    };
    record_measured_lengths(&run, &mut row.workload);
    row.tokenizer = Some(spec.clone());
    row.metrics = metrics;
    let argv: Vec<String> = std::env::args().collect();
    row.benchmark_command = Some(secrets.scrub(&shell_join(&argv)).into_owned());
    row.extra.insert(
        "client".into(),
        json!({"name": "sota-bot bench run", "time_scale": run.time_scale,
               "prompt_format": args.prompt_format,
               "latency_unit": if run.time_scale != 1.0 { "simulated_ms" } else { "ms" }}),
    );
    if let Some(raw) = &args.raw_out {
        row.artifacts
            .get_or_insert_with(Default::default)
            .raw_result = Some(raw.display().to_string());
        let doc = json!({"client": "sota-bot bench run", "base_url": args.base_url, "model": args.model,
            "endpoint": args.endpoint, "input_len": args.input_len, "output_len": args.output_len,
            "num_prompts": args.num_prompts, "request_rate": args.request_rate, "max_concurrency": args.max_concurrency,
            "seed": args.seed, "tokenizer": tokenizer.source().display(),
            "prompt_format": args.prompt_format, "prompt_digest": prompts.digest, "duration_s": run.duration_s, "time_scale": run.time_scale, "requests": run.results});
        let text = serde_json::to_string_pretty(&doc)?;
        write_file(raw, &secrets.scrub(&text))?;
    }
    write_file(&args.out, &to_jsonl_line(&row))?;
    Ok(if completed > 0 { EXIT_OK } else { EXIT_FAILURE })
}

fn write_file(path: &PathBuf, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn shell_join(argv: &[String]) -> String {
    crate::runner::process::CommandSpec::Argv(argv.to_vec()).display()
}
