//! `sota-bot bench summarize <candidates.jsonl> --out DIR [--sla FILE.yaml]`: writes
//! `summary.md`, `winning-commands.md`, `candidates.csv` and `fairness/diagnostics.md`.
//!
//! SLA verdicts are always recomputed: with the thresholds from `--sla` when given, else
//! with the thresholds recorded in each row.

use crate::bench::fairness::{diagnose, render_fairness_md};
use crate::bench::rank::{apply_sla, RankMetric};
use crate::bench::row::{parse_jsonl, BenchRow};
use crate::bench::sla::Sla;
use crate::bench::summary::{render_csv, render_summary_md, render_winning_commands_md};
use crate::cli::{EXIT_INVALID_INPUT, EXIT_OK};
use crate::framework::Framework;
use anyhow::Context;
use std::fmt;
use std::path::{Path, PathBuf};

/// Arguments of `bench summarize`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Normalized rows (`candidates.jsonl`).
    pub candidates: PathBuf,
    /// Directory to write the reports into (created when missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Campaign SLA (YAML mapping of max_p50_ttft_ms, max_p50_tpot_ms, min_success_rate,
    /// max_p50_e2e_ms); replaces the thresholds recorded in the rows.
    #[arg(long)]
    pub sla: Option<PathBuf>,
    /// Primary ranking metric.
    #[arg(long, default_value = "request_throughput")]
    pub metric: RankMetric,
    /// Selected comparison frameworks for the fairness diagnostics (default: all).
    #[arg(long, value_delimiter = ',')]
    pub competitors: Vec<Framework>,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<i32> {
    let sla = match args.sla.as_deref().map(read_sla).transpose() {
        Ok(sla) => sla,
        Err(e) => return Ok(report(e)),
    };
    let mut rows = match read_rows(&args.candidates) {
        Ok(rows) => rows,
        Err(e) => return Ok(report(e)),
    };
    apply_sla(&mut rows, sla.as_ref());
    let competitors = if args.competitors.is_empty() {
        Framework::COMPETITORS.to_vec()
    } else {
        args.competitors.clone()
    };
    let fairness = diagnose(&rows, &competitors, args.metric);
    let files = [
        ("summary.md", render_summary_md(&rows, args.metric)),
        (
            "winning-commands.md",
            render_winning_commands_md(&rows, args.metric),
        ),
        ("candidates.csv", render_csv(&rows)),
        ("fairness/diagnostics.md", render_fairness_md(&fairness)),
    ];
    for (name, text) in files {
        let path = args.out.join(name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(EXIT_OK)
}

fn report(err: InputError) -> i32 {
    eprint!("{err}");
    EXIT_INVALID_INPUT
}

// Input reading shared with `bench gap`.

/// Input that could not be read or validated; `Display` is ready for stderr (one problem
/// per line, each prefixed with `file:line:` where a line is known).
#[derive(Debug)]
pub struct InputError {
    lines: Vec<String>,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.lines {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

/// Reads `candidates.jsonl`, reporting every bad line.
pub fn read_rows(path: &Path) -> Result<Vec<BenchRow>, InputError> {
    let text = std::fs::read_to_string(path).map_err(|e| InputError {
        lines: vec![format!("{}: cannot read: {e}", path.display())],
    })?;
    parse_jsonl(&text).map_err(|errors| InputError {
        lines: errors
            .iter()
            .map(|e| format!("{}:{}: {}", path.display(), e.line, e.message))
            .collect(),
    })
}

/// Reads an SLA YAML (or JSON) mapping, reporting every bad key.
pub fn read_sla(path: &Path) -> Result<Sla, InputError> {
    let fail = |msg: String| InputError {
        lines: vec![format!("{}: {msg}", path.display())],
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let yaml: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).map_err(|e| fail(format!("invalid YAML: {e}")))?;
    let value =
        serde_json::to_value(yaml).map_err(|e| fail(format!("unsupported YAML value: {e}")))?;
    // Accept either the bare mapping or one nested under `sla:` (as in a campaign file).
    let value = match value.get("sla") {
        Some(inner) if value.as_object().is_some_and(|m| m.len() == 1) => inner.clone(),
        _ => value,
    };
    Sla::from_value(&value).map_err(|errors| InputError {
        lines: errors
            .iter()
            .map(|e| format!("{}: {e}", path.display()))
            .collect(),
    })
}
