//! `sota-bot request check`: parse, validate and resolve a campaign request, then restate
//! it (with every default applied, the run directory and the framework selection) or list
//! every problem with file and line.

use crate::campaign::issue_form::parse_issue_form;
use crate::campaign::repo_config::{parse_repo_config, RepoConfig};
use crate::campaign::request::DEFAULTS_HELP;
use crate::campaign::request_yaml::parse_yaml;
use crate::campaign::resolve::{describe_sla, DefaultSource, Resolution};
use crate::campaign::selection::all_available;
use crate::campaign::{RequestProblem, RunDir};
use crate::cli::{EXIT_INVALID_INPUT, EXIT_OK};
use anyhow::Context;
use chrono::NaiveDate;
use clap::{Subcommand, ValueEnum};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Arguments of `sota-bot request`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: RequestCommand,
}

#[derive(Debug, Subcommand)]
pub enum RequestCommand {
    /// Validate a request (issue-form body or YAML) and print it resolved, or all its problems.
    #[command(after_help = DEFAULTS_HELP)]
    Check(CheckArgs),
}

/// How `check` prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// Arguments of `sota-bot request check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The request: an issue-form body (`.md`) or a YAML file (`.yml`/`.yaml`); other
    /// extensions are detected by content (`### ` headings mean an issue form).
    pub file: PathBuf,
    /// The repository config (`.github/sota-bot.yml`) whose defaults apply; built-in
    /// defaults when absent.
    #[arg(long, value_name = "FILE")]
    pub repo_config: Option<PathBuf>,
    /// Campaign start date for the run-directory name, `YYYYMMDD` (default: today, UTC).
    #[arg(long, value_name = "YYYYMMDD", value_parser = parse_date)]
    pub date: Option<NaiveDate>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y%m%d").map_err(|e| format!("expected YYYYMMDD: {e}"))
}

/// Which parser a request file needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputFormat {
    IssueForm,
    Yaml,
}

/// By extension, else by content: a line starting with `### ` means an issue form.
pub fn detect_format(path: &Path, text: &str) -> InputFormat {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("md" | "markdown") => InputFormat::IssueForm,
        Some("yml" | "yaml") => InputFormat::Yaml,
        _ if text.lines().any(|l| l.trim_start().starts_with("### ")) => InputFormat::IssueForm,
        _ => InputFormat::Yaml,
    }
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<i32> {
    match args.command {
        RequestCommand::Check(a) => check(a),
    }
}

#[derive(Serialize)]
struct LocatedProblem<'a> {
    file: String,
    #[serde(flatten)]
    problem: &'a RequestProblem,
}

/// A file's text: `Ok(Err(message))` when it is readable but not UTF-8 (invalid input,
/// with the byte where the text stops being UTF-8); `Err` when it cannot be read at all.
fn read_text(path: &std::path::Path) -> anyhow::Result<Result<String, String>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(String::from_utf8(bytes).map_err(|e| {
        format!(
            "{}: not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    }))
}

fn check(args: CheckArgs) -> anyhow::Result<i32> {
    let text = match read_text(&args.file)? {
        Ok(t) => t,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(EXIT_INVALID_INPUT);
        }
    };
    let config_text = match &args.repo_config {
        Some(p) => match read_text(p)? {
            Ok(t) => Some(t),
            Err(message) => {
                eprintln!("error: {message}");
                return Ok(EXIT_INVALID_INPUT);
            }
        },
        None => None,
    };
    let date = args.date.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let outcome = evaluate(
        &args.file,
        &text,
        args.repo_config.as_deref(),
        config_text.as_deref(),
        date,
    );
    match (outcome, args.format) {
        (Ok(ok), OutputFormat::Text) => {
            print!("{}", render_text(&ok));
            Ok(EXIT_OK)
        }
        (Ok(ok), OutputFormat::Json) => {
            let json = serde_json::json!({
                "ok": true,
                "input_format": ok.format,
                "run_dir": ok.run_dir.root,
                "campaign": ok.resolution.campaign,
                "defaults_applied": ok.resolution.defaults_applied,
            });
            println!("{}", serde_json::to_string_pretty(&json)?);
            Ok(EXIT_OK)
        }
        (Err(problems), OutputFormat::Text) => {
            for (file, p) in &problems {
                let at = p
                    .line
                    .map(|l| format!("{file}:{l}"))
                    .unwrap_or_else(|| file.clone());
                eprintln!("{at}: {}", without_line(p));
            }
            let n = problems.len();
            eprintln!(
                "{n} problem{} found; the request was not accepted",
                if n == 1 { "" } else { "s" }
            );
            Ok(EXIT_INVALID_INPUT)
        }
        (Err(problems), OutputFormat::Json) => {
            let list: Vec<LocatedProblem<'_>> = problems
                .iter()
                .map(|(file, problem)| LocatedProblem {
                    file: file.clone(),
                    problem,
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({"ok": false, "problems": list}))?
            );
            Ok(EXIT_INVALID_INPUT)
        }
    }
}

fn without_line(p: &RequestProblem) -> String {
    RequestProblem {
        line: None,
        ..p.clone()
    }
    .to_string()
}

/// A request that resolved, with what is needed to restate it.
pub struct Checked {
    pub format: InputFormat,
    pub request_file: String,
    pub config_file: Option<String>,
    pub run_dir: RunDir,
    pub resolution: Resolution,
}

/// The pure core of `check`: parse, resolve, and name the run directory. Problems are
/// paired with the file they belong to.
pub fn evaluate(
    request_path: &Path,
    text: &str,
    config_path: Option<&Path>,
    config_text: Option<&str>,
    date: NaiveDate,
) -> Result<Checked, Vec<(String, RequestProblem)>> {
    let request_file = request_path.display().to_string();
    let config_file = config_path.map(|p| p.display().to_string());
    let format = detect_format(request_path, text);
    let parsed = match format {
        InputFormat::IssueForm => parse_issue_form(text),
        InputFormat::Yaml => parse_yaml(text),
    };
    let config = match config_text {
        Some(t) => parse_repo_config(t),
        None => Ok(RepoConfig::default()),
    };
    let tag = |file: &str, list: Vec<RequestProblem>| -> Vec<(String, RequestProblem)> {
        list.into_iter().map(|p| (file.to_string(), p)).collect()
    };
    let (request, config) = match (parsed, config) {
        (Ok(r), Ok(c)) => (r, c),
        (parsed, config) => {
            let mut all = Vec::new();
            if let Err(p) = config {
                all.extend(tag(config_file.as_deref().unwrap_or("repo config"), p));
            }
            if let Err(p) = parsed {
                all.extend(tag(&request_file, p));
            }
            return Err(all);
        }
    };
    let resolution = request
        .resolve_with_pool(&config, &all_available())
        .map_err(|p| tag(&request_file, p))?;
    let run_dir = RunDir::for_campaign(&resolution.campaign, date);
    Ok(Checked {
        format,
        request_file,
        config_file,
        run_dir,
        resolution,
    })
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// The restated request, as printed by `check --format text`.
pub fn render_text(ok: &Checked) -> String {
    let c = &ok.resolution.campaign;
    let mut out = String::new();
    let format = match ok.format {
        InputFormat::IssueForm => "issue form",
        InputFormat::Yaml => "YAML",
    };
    let _ = writeln!(out, "Request {} ({format}) is valid.", ok.request_file);
    let _ = writeln!(
        out,
        "Repository config: {}",
        ok.config_file
            .as_deref()
            .unwrap_or("none (built-in defaults)")
    );
    let _ = writeln!(out, "Run directory: {}/", ok.run_dir.root.display());
    let _ = writeln!(out);
    let rows: Vec<(&str, String)> = vec![
        ("model", c.model.clone()),
        (
            "revision",
            c.revision
                .clone()
                .unwrap_or_else(|| "default branch (not pinned)".into()),
        ),
        ("tokenizer", c.tokenizer.clone()),
        ("precision", c.precision.to_string()),
        (
            "quantization",
            c.quantization.clone().unwrap_or_else(|| "none".into()),
        ),
        ("trust_remote_code", c.trust_remote_code.to_string()),
        (
            "max_context",
            c.max_context
                .map_or_else(|| "model default".into(), |n| n.to_string()),
        ),
        (
            "gpu",
            format!("{} x {} ({})", c.gpu_count, c.gpu_model, c.hardware),
        ),
        ("visible_devices", c.visible_devices_csv()),
        ("multi_node", c.multi_node.to_string()),
        ("runner_labels", c.runner_labels.join(", ")),
        ("target", c.selection.target.to_string()),
        (
            "selected",
            list_or_none(
                &c.selection
                    .selected
                    .iter()
                    .map(|f| f.to_string())
                    .collect::<Vec<_>>(),
            ),
        ),
        (
            "excluded",
            list_or_none(
                &c.selection
                    .user_excluded
                    .iter()
                    .map(|(f, r)| format!("{f} ({r})"))
                    .collect::<Vec<_>>(),
            ),
        ),
        (
            "unsupported",
            list_or_none(
                &c.selection
                    .unsupported
                    .iter()
                    .map(|(f, r)| format!("{f} ({r})"))
                    .collect::<Vec<_>>(),
            ),
        ),
        ("workload", c.workload.describe()),
        ("sla", describe_sla(&c.sla)),
        (
            "history_slug",
            c.history_slug
                .clone()
                .unwrap_or_else(|| "inferred later".into()),
        ),
        ("max_rounds", c.max_rounds.to_string()),
        ("autonomy", c.autonomy.to_string()),
        ("primary_metric", c.primary_metric.to_string()),
        ("noise_threshold_pct", c.noise_threshold_pct.to_string()),
        ("tensorrt_llm_backend", c.tensorrt_llm_backend.clone()),
        ("model_slug", c.model_slug.clone()),
    ];
    for (k, v) in rows {
        let _ = writeln!(out, "  {k:<21} {v}");
    }
    let applied = &ok.resolution.defaults_applied;
    let _ = writeln!(out);
    if applied.is_empty() {
        let _ = writeln!(out, "Defaults applied: none");
    } else {
        let _ = writeln!(out, "Defaults applied:");
        for a in applied {
            let source = match a.source {
                DefaultSource::RepoConfig => "repository config",
                DefaultSource::BuiltIn => "built-in",
            };
            let _ = writeln!(out, "  {:<21} {} [{source}]", a.field, a.value);
        }
    }
    out
}
