//! `sota-bot bench ...`: benchmark plans, raw-output parsing, summaries, gaps and the
//! built-in benchmark client. Each subcommand has its own file under `bench/`.

use clap::Subcommand;

pub mod candidates;
pub mod gap;
pub mod parse;
pub mod run;
pub mod summarize;

/// Arguments of `sota-bot bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Expand a benchmark plan into candidates and server launch groups.
    Candidates(candidates::Args),
    /// Parse one framework's raw benchmark output into normalized JSONL rows.
    Parse(parse::Args),
    /// Write summary.md, winning-commands.md and a CSV from candidates.jsonl.
    Summarize(summarize::Args),
    /// Decide the SGLang gap per scenario from candidates.jsonl.
    Gap(gap::Args),
    /// Built-in OpenAI-compatible benchmark client (framework-neutral).
    Run(run::Args),
}

/// Runs the selected bench subcommand.
pub fn run(args: Args) -> anyhow::Result<i32> {
    match args.command {
        BenchCommand::Candidates(a) => candidates::run(a),
        BenchCommand::Parse(a) => parse::run(a),
        BenchCommand::Summarize(a) => summarize::run(a),
        BenchCommand::Gap(a) => gap::run(a),
        BenchCommand::Run(a) => run::run(a),
    }
}
