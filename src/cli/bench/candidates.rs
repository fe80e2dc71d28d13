//! `sota-bot bench candidates <plan.yaml>`: expands a benchmark plan into candidates per
//! framework, server launch groups and skipped (candidate, scenario) pairs, and, with
//! `--help-dir`, checks every rendered server flag against `<framework>-server.txt` and
//! every benchmark flag against `<framework>-bench.txt` (captured from the installed
//! versions as a campaign captures them: see `runner::help`). Exits 3 naming each flag the
//! installed version cannot parse as written.

use crate::bench::candidates::{generate, CandidateSet};
use crate::bench::command::{client_long_flags, render_server_command};
use crate::bench::help_flags::{validate, FlagValidation};
use crate::bench::plan::{parse_plan, BenchPlan};
use crate::cli::{EXIT_FAILURE, EXIT_INVALID_INPUT, EXIT_OK, EXIT_VERDICT};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Output layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// Arguments of `bench candidates`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Benchmark plan (YAML).
    pub plan: PathBuf,
    /// Output layout.
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutputFormat,
    /// Folder of captured help texts named `<framework>-server.txt` and
    /// `<framework>-bench.txt` (e.g. `vllm-server.txt` from `vllm serve --help=all`).
    #[arg(long)]
    pub help_dir: Option<PathBuf>,
}

#[derive(Serialize)]
struct FlagReport {
    candidate_id: String,
    validation: FlagValidation,
    benchmark: Vec<BenchFlagReport>,
}

#[derive(Serialize)]
struct BenchFlagReport {
    scenario: String,
    validation: FlagValidation,
}

fn read_help(path: &std::path::Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => anyhow::bail!("reading {}: {e}", path.display()),
    }
}

fn check_against(
    help: &Option<String>,
    path: &std::path::Path,
    flags: &[String],
) -> FlagValidation {
    match help {
        Some(h) => validate(flags, h),
        None => FlagValidation::NotValidated {
            reason: format!("{} not found", path.display()),
        },
    }
}

#[derive(Serialize)]
struct Report<'a> {
    candidate_count: usize,
    launch_count: usize,
    naive_launch_count: usize,
    run_count: usize,
    #[serde(flatten)]
    set: &'a CandidateSet,
    flag_validation: BTreeMap<String, Vec<FlagReport>>,
}

fn check_flags(
    set: &CandidateSet,
    plan: &BenchPlan,
    dir: &std::path::Path,
) -> anyhow::Result<BTreeMap<String, Vec<FlagReport>>> {
    let mut out = BTreeMap::new();
    for fw in plan.frameworks.iter().map(|f| f.framework) {
        let server_path = dir.join(format!("{}-server.txt", fw.canonical()));
        let bench_path = dir.join(format!("{}-bench.txt", fw.canonical()));
        let (server_help, bench_help) = (read_help(&server_path)?, read_help(&bench_path)?);
        let mut reports = Vec::new();
        for c in set.candidates().filter(|c| c.framework == fw) {
            let cmd = render_server_command(plan, fw, &c.server_flags)?;
            // The built-in client's flags are sota-bot's own; native clients are checked
            // against their help.
            let native = plan.bench_client == crate::bench::plan::BenchClient::Native;
            let benchmark = set
                .launches
                .iter()
                .flat_map(|l| &l.candidates)
                .filter(|r| native && r.candidate_id == c.id)
                .map(|r| BenchFlagReport {
                    scenario: r.scenario.clone(),
                    validation: check_against(
                        &bench_help,
                        &bench_path,
                        &client_long_flags(&r.benchmark_command),
                    ),
                })
                .collect();
            reports.push(FlagReport {
                candidate_id: c.id.clone(),
                validation: check_against(&server_help, &server_path, &cmd.long_flags()),
                benchmark,
            });
        }
        out.insert(fw.canonical().to_string(), reports);
    }
    Ok(out)
}

fn render_text(report: &Report<'_>) -> String {
    let mut s = String::new();
    for fc in &report.set.frameworks {
        s.push_str(&format!(
            "## {} ({} candidates, {} duplicates skipped, {} combinations{})\n",
            fc.framework.display_name(),
            fc.candidates.len(),
            fc.duplicates_skipped,
            fc.combinations_total,
            if fc.capped { ", capped" } else { "" }
        ));
        for c in &fc.candidates {
            let knobs = c
                .benchmark_flags
                .iter()
                .filter(|(_, v)| v.is_rendered())
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ");
            s.push_str(&format!(
                "{}{}  {}{}\n",
                c.id,
                if c.is_baseline { " (baseline)" } else { "" },
                c.server_command,
                if knobs.is_empty() {
                    String::new()
                } else {
                    format!("  [bench: {knobs}]")
                }
            ));
            for skip in &c.skipped {
                s.push_str(&format!("  skipped {}: {}\n", skip.scenario, skip.reason));
            }
        }
        if let Some(reports) = report.flag_validation.get(fc.framework.canonical()) {
            for r in reports {
                let bench = r.benchmark.first().map(|b| &b.validation);
                for (side, v) in [("server", Some(&r.validation)), ("benchmark", bench)] {
                    match v {
                        Some(FlagValidation::Checked { problems, .. }) => {
                            for p in problems {
                                s.push_str(&format!(
                                    "  flag problem {} ({side}): {p}\n",
                                    r.candidate_id
                                ));
                            }
                        }
                        Some(FlagValidation::NotValidated { reason }) => s.push_str(&format!(
                            "  {side} flags not validated {}: {reason}\n",
                            r.candidate_id
                        )),
                        None => {}
                    }
                }
            }
        }
        s.push('\n');
    }
    s.push_str(&format!(
        "## Launches: {} server launches for {} runs ({} candidates x {} scenarios = {} without grouping)\n",
        report.launch_count,
        report.run_count,
        report.candidate_count,
        report.set.scenarios.len(),
        report.naive_launch_count
    ));
    for (i, l) in report.set.launches.iter().enumerate() {
        s.push_str(&format!(
            "launch {} [{}] {}\n",
            i + 1,
            l.framework,
            l.server_command
        ));
        for r in &l.candidates {
            s.push_str(&format!(
                "  {} {}: {}\n",
                r.candidate_id, r.scenario, r.benchmark_command
            ));
        }
    }
    s
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<i32> {
    let text = match std::fs::read_to_string(&args.plan) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: reading {}: {e}", args.plan.display());
            return Ok(EXIT_FAILURE);
        }
    };
    let plan = match parse_plan(&text) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {}: {e}", args.plan.display());
            return Ok(EXIT_INVALID_INPUT);
        }
    };
    let set = match generate(&plan) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {}: {e}", args.plan.display());
            return Ok(EXIT_INVALID_INPUT);
        }
    };
    let flag_validation = match &args.help_dir {
        Some(dir) => check_flags(&set, &plan, dir)?,
        None => BTreeMap::new(),
    };
    let report = Report {
        candidate_count: set.candidate_count(),
        launch_count: set.launch_count(),
        naive_launch_count: set.naive_launch_count(),
        run_count: set.run_count(),
        set: &set,
        flag_validation,
    };
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        OutputFormat::Text => print!("{}", render_text(&report)),
    }
    let problems: Vec<String> = report
        .flag_validation
        .values()
        .flatten()
        .flat_map(|r| {
            r.validation
                .problems()
                .iter()
                .chain(r.benchmark.iter().flat_map(|b| b.validation.problems()))
                .map(|p| p.flag().to_string())
        })
        .collect::<std::collections::BTreeSet<String>>()
        .into_iter()
        .collect();
    if !problems.is_empty() {
        eprintln!(
            "error: the installed versions cannot parse these flags as written: {}",
            problems.join(", ")
        );
        return Ok(EXIT_VERDICT);
    }
    Ok(EXIT_OK)
}
