//! `sota-bot profile`: torch-profiler trace analysis and NCU digests.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};

use super::{EXIT_FAILURE, EXIT_INVALID_INPUT, EXIT_OK};
use crate::profile::{self, ncu, AnalyzeOptions, FuseCatalog, ModelInfo, ProfileError};

/// Arguments of this command.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: ProfileCommand,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Markdown,
    Json,
}

/// Options shared by the trace commands.
#[derive(Debug, Clone, clap::Args)]
pub struct TraceOpts {
    /// Only this stage (prefill, decode, ...).
    #[arg(long)]
    pub stage: Option<String>,
    /// Hugging Face config.json of the model (gates model-specific fuse patterns).
    #[arg(long)]
    pub model_config: Option<PathBuf>,
    /// Tensor-parallel size (default: from the trace).
    #[arg(long)]
    pub tp: Option<u32>,
    /// Fold rows under this percentage of a stage into a remainder row.
    #[arg(long, default_value_t = 1.0)]
    pub min_share_pct: f64,
    /// Fuse-pattern catalog (YAML) instead of the built-in one.
    #[arg(long)]
    pub fuse_catalog: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Markdown)]
    pub format: Format,
    /// Write the output to this file instead of stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Print wall time, throughput and peak memory (VmHWM) to stderr (for benchmarks).
    #[arg(long, hide = true)]
    pub report_resources: bool,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Kernel, overlap-opportunity and fuse-pattern tables per stage.
    Analyze {
        /// A trace (.json / .json.gz) or a directory of per-rank / per-stage traces.
        trace: PathBuf,
        #[command(flatten)]
        opts: TraceOpts,
    },
    /// Side by side: which stage and which rows explain the gap.
    Compare {
        /// SGLang trace or directory.
        sglang: PathBuf,
        /// Competitor trace or directory.
        competitor: PathBuf,
        #[command(flatten)]
        opts: TraceOpts,
    },
    /// Forward passes, layer types and representative layers (`analysis/layer-pipeline.md`).
    Layers {
        trace: PathBuf,
        #[command(flatten)]
        opts: TraceOpts,
    },
    /// Compare NCU CSV exports (details or raw page) of a baseline and a candidate.
    Ncu {
        baseline: PathBuf,
        candidate: PathBuf,
        /// Extra raw-page export of the baseline (adds stall reasons).
        #[arg(long)]
        baseline_raw: Option<PathBuf>,
        /// Extra raw-page export of the candidate.
        #[arg(long)]
        candidate_raw: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Markdown)]
        format: Format,
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<i32> {
    match args.command {
        ProfileCommand::Analyze { trace, opts } => with_input_errors(|| {
            let started = Instant::now();
            let a = profile::analyze_path(&trace, &analyze_options(&opts)?)?;
            let text = match opts.format {
                Format::Json => serde_json::to_string_pretty(&a)?,
                Format::Markdown => profile::render_analysis_md(&a),
            };
            emit(&opts.output, &text)?;
            if opts.report_resources {
                report_resources(&trace, started);
            }
            Ok(EXIT_OK)
        }),
        ProfileCommand::Compare {
            sglang,
            competitor,
            opts,
        } => with_input_errors(|| {
            let mut o = analyze_options(&opts)?;
            o.min_share = 0.0;
            let left = profile::analyze_path(&sglang, &o)?;
            let right = profile::analyze_path(&competitor, &o)?;
            let c = profile::compare(&left, &right, &label(&sglang), &label(&competitor));
            let text = match opts.format {
                Format::Json => serde_json::to_string_pretty(&c)?,
                Format::Markdown => profile::render_comparison_md(&c),
            };
            emit(&opts.output, &text)?;
            Ok(EXIT_OK)
        }),
        ProfileCommand::Layers { trace, opts } => with_input_errors(|| {
            let tl = profile::load_timeline(&trace)?;
            if let Some(s) = &opts.stage {
                if !tl.stages.iter().any(|st| &st.name == s) {
                    return Err(ProfileError::UnknownStage {
                        stage: s.clone(),
                        available: tl
                            .stages
                            .iter()
                            .map(|s| s.name.clone())
                            .collect::<Vec<_>>()
                            .join(", "),
                    }
                    .into());
                }
            }
            let p = profile::layer_pipeline(&tl, opts.stage.as_deref());
            let text = match opts.format {
                Format::Json => serde_json::to_string_pretty(&p)?,
                Format::Markdown => profile::render_layer_pipeline_md(&p),
            };
            emit(&opts.output, &text)?;
            Ok(EXIT_OK)
        }),
        ProfileCommand::Ncu {
            baseline,
            candidate,
            baseline_raw,
            candidate_raw,
            format,
            output,
        } => with_input_errors(|| {
            let b = read_ncu(&baseline, baseline_raw.as_deref())?;
            let c = read_ncu(&candidate, candidate_raw.as_deref())?;
            let d = ncu::digest(&b, &c);
            let text = match format {
                Format::Json => serde_json::to_string_pretty(&d)?,
                Format::Markdown => ncu::render_md(&d),
            };
            emit(&output, &text)?;
            Ok(EXIT_OK)
        }),
    }
}

/// Maps input errors (bad trace, bad CSV, unknown stage) to exit code 2.
fn with_input_errors(f: impl FnOnce() -> anyhow::Result<i32>) -> anyhow::Result<i32> {
    match f() {
        Ok(c) => Ok(c),
        Err(e) => {
            let input = e
                .downcast_ref::<ProfileError>()
                .is_some_and(|p| !matches!(p, ProfileError::Io { .. }))
                || e.downcast_ref::<ncu::NcuError>().is_some()
                || e.downcast_ref::<serde_json::Error>().is_some();
            eprintln!("error: {e:#}");
            Ok(if input {
                EXIT_INVALID_INPUT
            } else {
                EXIT_FAILURE
            })
        }
    }
}

fn analyze_options(o: &TraceOpts) -> anyhow::Result<AnalyzeOptions> {
    let model = match &o.model_config {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Some(
                ModelInfo::from_config_json(&text)
                    .with_context(|| format!("parsing {}", p.display()))?,
            )
        }
        None => None,
    };
    let catalog = match &o.fuse_catalog {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Some(FuseCatalog::from_yaml(&text, &p.display().to_string())?)
        }
        None => None,
    };
    if !(0.0..=100.0).contains(&o.min_share_pct) {
        anyhow::bail!("--min-share-pct must be between 0 and 100");
    }
    Ok(AnalyzeOptions {
        stage: o.stage.clone(),
        min_share: o.min_share_pct / 100.0,
        model,
        tp: o.tp,
        catalog,
    })
}

fn read_ncu(path: &Path, raw: Option<&Path>) -> anyhow::Result<ncu::NcuReport> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut r = ncu::NcuReport::parse(&text, &path.display().to_string())?;
    if let Some(raw) = raw {
        let text =
            std::fs::read_to_string(raw).with_context(|| format!("reading {}", raw.display()))?;
        r.merge(ncu::NcuReport::parse(&text, &raw.display().to_string())?);
    }
    Ok(r)
}

fn label(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

fn emit(out: &Option<PathBuf>, text: &str) -> anyhow::Result<()> {
    match out {
        Some(p) => {
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))
        }
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            match writeln!(out, "{text}").and_then(|_| out.flush()) {
                // A closed pipe (`| head`) is the reader's choice, not a failure.
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(()),
            }
        }
    }
}

/// Peak resident memory of this process in KiB (Linux `VmHWM`).
fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn report_resources(trace: &Path, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    let bytes: u64 = profile::trace_files(trace)
        .map(|fs| {
            fs.iter()
                .filter_map(|f| std::fs::metadata(f).ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    eprintln!(
        "resources: wall_s={secs:.3} input_bytes={bytes} mb_per_s={:.1} peak_rss_kib={}",
        bytes as f64 / 1e6 / secs.max(1e-9),
        peak_rss_kib().unwrap_or(0)
    );
}
