//! `sota-bot bench gap <candidates.jsonl>`: prints the per-scenario gap decision of SGLang
//! against the best SLA-passing selected competitor, as a Markdown table or JSON.

use super::summarize::{read_rows, InputError};
use crate::bench::gap::{decide_gaps, render_gap_table_md, GapOptions, DEFAULT_REQUIRED_REPEATS};
use crate::bench::rank::{apply_sla, RankMetric};
use crate::cli::{EXIT_INVALID_INPUT, EXIT_OK};
use crate::framework::Framework;
use std::path::PathBuf;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Arguments of `bench gap`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Normalized rows (`candidates.jsonl`); SLA verdicts are recomputed from their thresholds.
    pub candidates: PathBuf,
    /// Stable-noise threshold in percent.
    #[arg(long, default_value_t = 1.0)]
    pub threshold_pct: f64,
    /// Metric the gap is measured on.
    #[arg(long, default_value = "request_throughput")]
    pub metric: RankMetric,
    /// SGLang round to compare (default: the latest round per scenario).
    #[arg(long)]
    pub sglang_round: Option<u32>,
    /// Selected comparison frameworks (default: all).
    #[arg(long, value_delimiter = ',')]
    pub competitors: Vec<Framework>,
    /// OK runs per side needed to decide a near-tie or call a gap stable.
    #[arg(long, default_value_t = DEFAULT_REQUIRED_REPEATS)]
    pub repeats: u32,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<i32> {
    if !args.threshold_pct.is_finite() || args.threshold_pct < 0.0 {
        eprintln!(
            "--threshold-pct must be a non-negative number, got {}",
            args.threshold_pct
        );
        return Ok(EXIT_INVALID_INPUT);
    }
    let mut rows = match read_rows(&args.candidates) {
        Ok(rows) => rows,
        Err(e) => return Ok(report(e)),
    };
    apply_sla(&mut rows, None);
    let competitors = if args.competitors.is_empty() {
        Framework::COMPETITORS.to_vec()
    } else {
        args.competitors.clone()
    };
    let opts = GapOptions {
        threshold_pct: args.threshold_pct,
        metric: args.metric,
        sglang_round: args.sglang_round,
        selected_competitors: &competitors,
        required_repeats: args.repeats.max(1),
    };
    let gaps = decide_gaps(&rows, &opts);
    match args.format {
        Format::Text => print!("{}", render_gap_table_md(&gaps)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&gaps)?),
    }
    Ok(EXIT_OK)
}

fn report(err: InputError) -> i32 {
    eprint!("{err}");
    EXIT_INVALID_INPUT
}
