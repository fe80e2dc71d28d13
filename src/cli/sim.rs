//! `sota-bot sim ...`: the SIMULATOR lane for machines without GPUs: a simulated serving
//! engine, simulated profiler traces, and a scripted coding-agent simulator.

use super::{EXIT_FAILURE, EXIT_INVALID_INPUT, EXIT_OK};
use crate::sim::agent::{AgentScript, ScriptedAgent};
use crate::sim::flags::{parse_serve_args, ParsedServe};
use crate::sim::profile::load_profile;
use crate::sim::server::{serve, ServeConfig, SimServeError};
use crate::sim::trace::{write_trace, Stage, TraceRequest};
use crate::tokenizer::{HfCache, ModelTokenizer};
use anyhow::Context;
use clap::Subcommand;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Arguments of `sota-bot sim`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: SimCommand,
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// SIMULATED OpenAI-compatible serving engine (argparse-style flags; see `sim serve --help`).
    #[command(disable_help_flag = true)]
    Serve(ServeArgs),
    /// Write a SIMULATED torch-profiler Chrome trace from an engine profile.
    Trace(TraceArgs),
    /// Scripted coding-agent SIMULATOR: apply one scripted round to a checkout.
    Agent(AgentArgs),
    /// Write the SIMULATED model's tokenizer (`tokenizer.json` + `tokenizer_config.json`) to
    /// a folder, for real benchmark clients run against `sim serve`.
    Tokenizer(TokenizerArgs),
}

#[derive(Debug, clap::Args)]
pub struct TokenizerArgs {
    /// Folder to write (created when missing).
    #[arg(long)]
    pub out: PathBuf,
}

/// Raw `sim serve` arguments, parsed argparse-style by `sim::flags`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    /// Simulated engine profile (YAML).
    #[arg(long)]
    pub profile: PathBuf,
    /// prefill or decode.
    #[arg(long)]
    pub stage: Stage,
    #[arg(long, default_value_t = 1)]
    pub batch: u64,
    #[arg(long)]
    pub input_len: u64,
    #[arg(long, default_value_t = 1)]
    pub output_len: u64,
    /// Output file (`.json` or `.json.gz`).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// The SGLang checkout to edit.
    #[arg(long)]
    pub checkout: PathBuf,
    /// 1-based round number (selects the script step).
    #[arg(long)]
    pub round: u32,
    /// The round prompt (markdown).
    #[arg(long)]
    pub prompt: PathBuf,
    /// Where to write the round summary (markdown).
    #[arg(long)]
    pub summary_out: PathBuf,
    /// Script (YAML list of steps); the built-in three-patch script when absent.
    #[arg(long)]
    pub script: Option<PathBuf>,
    /// Engine profile path inside the checkout.
    #[arg(long, default_value = crate::sim::profile::DEFAULT_CHECKOUT_PROFILE_PATH)]
    pub profile_path: PathBuf,
}

/// Runs the selected sim subcommand.
pub fn run(args: Args) -> anyhow::Result<i32> {
    match args.command {
        SimCommand::Serve(a) => run_serve(a),
        SimCommand::Trace(a) => run_trace(a),
        SimCommand::Agent(a) => run_agent(a),
        SimCommand::Tokenizer(a) => {
            crate::tokenizer::sim::write_model_dir(&a.out)
                .with_context(|| format!("writing {}", a.out.display()))?;
            println!("{}", a.out.display());
            Ok(EXIT_OK)
        }
    }
}

fn run_serve(a: ServeArgs) -> anyhow::Result<i32> {
    let flags = match parse_serve_args(&a.args) {
        Ok(ParsedServe::Help(text)) => {
            print!("{text}");
            return Ok(EXIT_OK);
        }
        Ok(ParsedServe::Run(f)) => f,
        Err(e) => {
            eprintln!("{e}");
            return Ok(EXIT_INVALID_INPUT);
        }
    };
    let profile = match load_profile(&flags.profile) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_INVALID_INPUT);
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .try_init();
    // A real engine that cannot load its tokenizer fails at start-up; so does the simulator.
    let tokenizer = match ModelTokenizer::load_spec(&flags.tokenizer, &HfCache::from_env()) {
        Ok(t) => Arc::new(t),
        Err(e) => {
            eprintln!("error: [simulated engine] {e}");
            return Ok(EXIT_FAILURE);
        }
    };
    let mem_fraction = match (flags.mem_fraction, flags.kv_free_fraction) {
        (Some(f), _) => Some(f),
        (None, Some(kv)) => {
            let m = &profile.memory;
            Some((m.weights_gb + kv * (m.gpu_mem_gb - m.weights_gb)) / m.gpu_mem_gb)
        }
        (None, None) => None,
    };
    let config = ServeConfig {
        framework: flags.framework,
        profile,
        model: flags.model,
        host: flags.host,
        port: flags.port,
        time_scale: flags.time_scale,
        max_running_requests: flags.max_running_requests,
        chunked_prefill_size: flags.chunked_prefill_size,
        mem_fraction,
        tensor_parallel: flags.tensor_parallel,
        startup_delay: Duration::from_millis(flags.startup_delay_ms),
        never_ready: flags.never_ready,
        tokenizer,
        request_log: flags.request_log,
    };
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    match rt.block_on(serve(config)) {
        Ok(()) => Ok(EXIT_OK),
        Err(e @ SimServeError::OutOfMemory { .. }) => {
            eprintln!(
                "[simulated engine] Scheduler hit an exception: Traceback (most recent call last):"
            );
            eprintln!("  File \"sota-bot/sim/server.rs\", in resolve_limits (simulated)");
            eprintln!("{e}");
            Ok(EXIT_FAILURE)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(EXIT_FAILURE)
        }
    }
}

fn run_trace(a: TraceArgs) -> anyhow::Result<i32> {
    let profile = match load_profile(&a.profile) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_INVALID_INPUT);
        }
    };
    let req = TraceRequest {
        stage: a.stage,
        batch: a.batch,
        input_len: a.input_len,
        output_len: a.output_len,
    };
    match write_trace(&profile, &req, &a.out) {
        Ok(()) => Ok(EXIT_OK),
        Err(e @ crate::sim::trace::TraceError::Invalid(_)) => {
            eprintln!("error: {e}");
            Ok(EXIT_INVALID_INPUT)
        }
        Err(e) => Err(e.into()),
    }
}

fn run_agent(a: AgentArgs) -> anyhow::Result<i32> {
    let script = match &a.script {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            match AgentScript::parse(&text, &path.display().to_string()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(EXIT_INVALID_INPUT);
                }
            }
        }
        None => AgentScript::default_script(),
    };
    let prompt = std::fs::read_to_string(&a.prompt)
        .with_context(|| format!("reading {}", a.prompt.display()))?;
    let mut agent = ScriptedAgent::new(&a.checkout, script);
    agent.profile_path = a.profile_path;
    let outcome = agent.run_round(a.round, &prompt, &a.summary_out)?;
    if outcome.exit_code != 0 {
        eprintln!("simulated agent crash: {}", outcome.summary_markdown);
    } else {
        println!(
            "simulated agent round {}: changed {:?}",
            a.round, outcome.changed_files
        );
    }
    Ok(outcome.exit_code)
}
