//! `sota-bot bench parse --framework F <raw>`: one framework's raw benchmark output to
//! normalized JSONL rows on stdout. Bad input is reported on stderr with the file and line,
//! and exits 2.

use crate::bench::parse::{parse_raw, ParseContext, RawFormat};
use crate::bench::row::to_jsonl_line;
use crate::cli::{EXIT_FAILURE, EXIT_INVALID_INPUT, EXIT_OK};
use crate::framework::Framework;
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `bench parse`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Framework whose benchmark client wrote the output (aliases accepted: trt, sgl, ...).
    #[arg(long)]
    pub framework: String,
    /// Layout of the raw output: auto, jsonl, json or stdout.
    #[arg(long, default_value = "auto")]
    pub format: String,
    /// Model id recorded in the rows (else taken from the output).
    #[arg(long)]
    pub model: Option<String>,
    /// Candidate id recorded in the rows (several runs get `.1`, `.2`, ... suffixes).
    #[arg(long)]
    pub candidate_id: Option<String>,
    /// Scenario name recorded in the rows.
    #[arg(long)]
    pub scenario: Option<String>,
    /// Prompts sent per run; lets failures be counted when the output has no `failed` key.
    #[arg(long)]
    pub num_prompts: Option<u64>,
    /// Input length of the scenario.
    #[arg(long)]
    pub input_len: Option<u64>,
    /// Output length of the scenario.
    #[arg(long)]
    pub output_len: Option<u64>,
    /// Write the rows to this file instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Raw output file.
    pub raw: PathBuf,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<i32> {
    let file = args.raw.display().to_string();
    let Some(framework) = Framework::from_alias(&args.framework) else {
        eprintln!(
            "error: unknown framework `{}`: expected sglang, vllm, tensorrt_llm or tokenspeed",
            args.framework
        );
        return Ok(EXIT_INVALID_INPUT);
    };
    let format: RawFormat = match args.format.parse() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_INVALID_INPUT);
        }
    };
    let bytes = match std::fs::read(&args.raw) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: reading {file}: {e}");
            return Ok(EXIT_FAILURE);
        }
    };
    let Ok(text) = String::from_utf8(bytes) else {
        eprintln!("error: {file}: not UTF-8 text");
        return Ok(EXIT_INVALID_INPUT);
    };
    let ctx = ParseContext {
        model: args.model,
        candidate_id: args.candidate_id,
        scenario: args.scenario,
        num_prompts: args.num_prompts,
        input_len: args.input_len,
        output_len: args.output_len,
        raw_result_path: Some(file.clone()),
        ..ParseContext::default()
    };
    match parse_raw(framework, format, &text, &ctx) {
        Ok(rows) => {
            let text: String = rows.iter().map(to_jsonl_line).collect();
            match &args.out {
                Some(path) => std::fs::write(path, text)
                    .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?,
                None => std::io::stdout().lock().write_all(text.as_bytes())?,
            }
            Ok(EXIT_OK)
        }
        Err(e) => {
            match e.line {
                Some(line) => eprintln!("error: {file}:{line}: {e}"),
                None => eprintln!("error: {file}: {e}"),
            }
            Ok(EXIT_INVALID_INPUT)
        }
    }
}
