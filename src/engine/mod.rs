//! The campaign engine: Phase 0 -> 0.5 -> 1 -> 2 -> 3 (ARCHITECTURE.md, *Phases*) against a git
//! checkout, until a stop condition holds. The same code serves `sota-bot local` and `sota-bot
//! runner`.
//!
//! Everything that costs GPU time or talks to a model sits behind a port: [`BenchLane`]
//! launches servers and benchmarks (the simulator lane in tests and the demo, real engines on
//! a GPU host), [`crate::runner::agent::AgentPort`] runs the coding agent, and
//! [`crate::gate::Reviewer`] is the optional LLM reviewer. The engine itself does bookkeeping:
//! rows, ledgers, checkpoint, reports and git, and it can resume after a crash from the run
//! directory alone.

pub mod agent_step;
pub mod baseline;
pub mod config;
mod finalize;
pub mod finish;
pub mod gap;
pub mod lane;
pub mod lock;
pub mod paths;
pub mod process_lane;
pub mod progress;
pub mod round;
pub mod setup;
pub mod wiring;

use crate::bench::{BenchRow, Sla};
use crate::campaign::state::{parse_checkpoint, CampaignState, Phase, StateError};
use crate::framework::Framework;
use crate::gate::{GateConfig, Reviewer};
use crate::git::{Checkout, GitError};
use crate::runner::agent::AgentPort;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use gap::Metric;
pub use gap::{sglang_passing, GapRule};
pub use lane::{BenchLane, LaneError, RunTag};
pub use paths::RunPaths;
pub use progress::{PlainProgress, Progress};

/// One aligned workload scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioSpec {
    pub name: String,
    pub input_len: u64,
    pub output_len: u64,
}

/// The campaign as the engine needs it (built from the resolved request).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineCampaign {
    pub campaign_id: String,
    pub model: String,
    pub model_slug: String,
    pub tokenizer: Option<String>,
    pub precision: Option<String>,
    pub quantization: Option<String>,
    pub hardware: String,
    /// Selected competitors (SGLang is always the target and not listed here).
    pub competitors: Vec<Framework>,
    pub excluded: Vec<Framework>,
    pub unsupported: Vec<(Framework, String)>,
    pub dataset_kind: String,
    pub num_prompts: u64,
    pub scenarios: Vec<ScenarioSpec>,
    pub sla: Sla,
    pub metric: Metric,
    pub noise_threshold_pct: f64,
    pub max_rounds: u32,
    pub wait_for_human: bool,
    pub history_slug: Option<String>,
    /// `manifest.md` text (rendered by the campaign module).
    pub manifest_md: String,
}

impl EngineCampaign {
    /// Every framework in the campaign, target first.
    pub fn frameworks(&self) -> Vec<Framework> {
        std::iter::once(Framework::Sglang)
            .chain(self.competitors.iter().copied())
            .collect()
    }

    /// One-line workload description.
    pub fn workload_line(&self) -> String {
        let sc: Vec<String> = self
            .scenarios
            .iter()
            .map(|s| format!("{} (in {}, out {})", s.name, s.input_len, s.output_len))
            .collect();
        format!(
            "dataset `{}`, {} prompts, scenarios {}",
            self.dataset_kind,
            self.num_prompts,
            sc.join(", ")
        )
    }

    /// One-line SLA description.
    pub fn sla_line(&self) -> String {
        let mut parts = Vec::new();
        if let Some(v) = self.sla.max_p50_ttft_ms {
            parts.push(format!("p50 TTFT <= {v} ms"));
        }
        if let Some(v) = self.sla.max_p50_tpot_ms {
            parts.push(format!("p50 TPOT <= {v} ms"));
        }
        if let Some(v) = self.sla.max_p50_e2e_ms {
            parts.push(format!("p50 E2E <= {v} ms"));
        }
        if let Some(v) = self.sla.min_success_rate {
            parts.push(format!("success rate >= {v}"));
        }
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }
}

/// One candidate of a framework's bounded search: a server configuration plus the
/// benchmark command template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateSpec {
    pub framework: Framework,
    pub candidate_id: String,
    pub server_command: String,
    pub benchmark_command: String,
}

impl CandidateSpec {
    /// A failed row of this candidate in `scenario`, identity and workload filled in (the
    /// row a run that never produced one leaves behind).
    pub fn failed_row(&self, scenario: &ScenarioSpec, model: &str, num_prompts: u64) -> BenchRow {
        let mut row = BenchRow::new(
            self.framework,
            self.candidate_id.clone(),
            model,
            crate::bench::RunStatus::Failed,
        );
        row.workload.scenario = Some(scenario.name.clone());
        row.workload.input_len = Some(scenario.input_len);
        row.workload.output_len = Some(scenario.output_len);
        row.workload.num_prompts = Some(num_prompts);
        row
    }
}

/// Engine settings that are not part of the campaign contract.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// The coding agent each round runs (a preset and its settings).
    pub agent: Option<crate::runner::agent::AgentSpec>,
    pub agent_timeout: Duration,
    pub knowledge_root: Option<PathBuf>,
    /// The model's config.json for Phase 0.5 (else looked up from the model id).
    pub model_config: Option<PathBuf>,
    /// Upstream PRs fetched before the campaign started (else the run directory's
    /// `history/upstream-prs.json`, which the App commits).
    pub upstream_prs: Option<crate::history::upstream::UpstreamPrs>,
    pub force_baseline: bool,
    pub gate: GateConfig,
    /// Stop after this many rounds in this invocation (the campaign continues on resume).
    pub rounds_this_run: Option<u32>,
    /// OK runs each side needs before a gap within the noise threshold counts as a tie
    /// (the shared stability rule of `bench::gap`).
    pub tie_runs: u32,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            agent: None,
            agent_timeout: Duration::from_secs(3600),
            knowledge_root: None,
            model_config: None,
            upstream_prs: None,
            force_baseline: false,
            gate: GateConfig::default(),
            rounds_this_run: None,
            tie_runs: crate::bench::gap::DEFAULT_REQUIRED_REPEATS,
        }
    }
}

/// An engine failure, with what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("checkpoint {path}: {source}")]
    State {
        path: String,
        #[source]
        source: StateError,
    },
    #[error("{path} line {line}: {message}")]
    Rows {
        path: String,
        line: usize,
        message: String,
    },
    #[error(transparent)]
    Render(#[from] crate::report::RenderError),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Lane(#[from] LaneError),
    /// A signal stopped the run; what was in flight is not recorded, so a resume redoes it.
    #[error("interrupted by {}", crate::runner::supervisor::signal_name(*.0))]
    Interrupted(i32),
}

/// Fails with [`EngineError::Interrupted`] once a signal stopped the run: results of
/// processes the interruption killed are never recorded.
pub(crate) fn check_interrupted() -> Result<(), EngineError> {
    match crate::runner::supervisor::interrupted() {
        Some(s) => Err(EngineError::Interrupted(s)),
        None => Ok(()),
    }
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> EngineError + '_ {
    move |source| EngineError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Where a run of the engine left the campaign.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    Stopped {
        reason: String,
        reached_sota: bool,
        /// The baseline measured no SGLang or no competitor result.
        unmeasurable: bool,
    },
    WaitingForHuman {
        after_round: u32,
    },
    Paused {
        after_round: u32,
    },
}

/// The engine over one checkout and campaign.
pub struct Engine<'a> {
    pub checkout: PathBuf,
    pub git: Checkout,
    pub campaign: EngineCampaign,
    pub candidates: Vec<CandidateSpec>,
    pub lane: &'a mut dyn BenchLane,
    pub agent: &'a dyn AgentPort,
    pub reviewer: Option<&'a dyn Reviewer>,
    pub progress: &'a mut dyn Progress,
    pub opts: EngineOptions,
    pub state: CampaignState,
    pub paths: RunPaths,
}

/// Writes a file, creating its directories, with credentials redacted: every file the
/// engine commits goes through here.
/// `text` with the sota-bot executable's path replaced by its name and paths under the
/// checkout made relative to it (the checkout itself becomes `.`).
pub fn portable_paths(text: &str, checkout: &Path, exe: Option<&Path>) -> String {
    let mut out = text.to_string();
    if let Some(exe) = exe.map(|e| e.display().to_string()).filter(|e| e.len() > 1) {
        out = out
            .replace(&format!("'{exe}'"), "sota-bot")
            .replace(&exe, "sota-bot");
    }
    let mut roots = vec![checkout.to_path_buf()];
    if let Ok(canonical) = checkout.canonicalize() {
        roots.push(canonical);
    }
    for root in roots {
        let root = root.display().to_string();
        let root = root.trim_end_matches('/');
        if root.is_empty() || root == "." {
            continue;
        }
        out = out
            .replace(&format!("'{root}'/"), "")
            .replace(&format!("{root}/"), "");
        // The checkout itself, where the path ends (not a longer sibling's name).
        let mut kept = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(i) = rest.find(root) {
            let after = &rest[i + root.len()..];
            let ends = after
                .chars()
                .next()
                .is_none_or(|c| !(c.is_alphanumeric() || matches!(c, '.' | '_' | '-')));
            kept.push_str(&rest[..i]);
            kept.push_str(if ends { "." } else { root });
            rest = after;
        }
        kept.push_str(rest);
        out = kept;
    }
    out
}

pub(crate) fn write_redacted(path: &Path, text: &str) -> Result<(), EngineError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let clean = crate::secrets::redact(text);
    std::fs::write(path, clean).map_err(io_err(path))
}

impl<'a> Engine<'a> {
    /// Reads the checkpoint of an existing campaign in `checkout`.
    pub fn load_state(paths: &RunPaths) -> Result<CampaignState, EngineError> {
        let p = paths.checkpoint();
        let text = std::fs::read_to_string(&p).map_err(io_err(&p))?;
        parse_checkpoint(&text).map_err(|source| EngineError::State {
            path: p.display().to_string(),
            source,
        })
    }

    /// Records in the checkpoint that a signal stopped the run, and where.
    pub fn record_interruption(&mut self, signal: i32) -> Result<(), EngineError> {
        self.state
            .run_events
            .push(crate::campaign::state::RunEvent {
                at: chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string(),
                kind: "interrupted".into(),
                detail: format!(
                    "{} during {}; every process of the run was stopped",
                    crate::runner::supervisor::signal_name(signal),
                    self.state.position()
                ),
            });
        self.save_state()
    }

    /// Writes the checkpoint (not committed).
    pub fn save_state(&self) -> Result<(), EngineError> {
        let text = crate::report::render_checkpoint(&self.state)?;
        self.write(&self.paths.checkpoint(), &text)
    }

    /// Writes a file under the checkout, creating directories, scrubbing credentials.
    pub fn write(&self, path: &Path, text: &str) -> Result<(), EngineError> {
        write_redacted(path, text)
    }

    /// Writes a report people read on GitHub (summary, review, round and final report):
    /// like [`Engine::write`], with this machine's paths made portable, since the runner's
    /// checkout and executable paths mean nothing there.
    pub fn write_report(&self, path: &Path, text: &str) -> Result<(), EngineError> {
        let exe = std::env::current_exe().ok();
        write_redacted(path, &portable_paths(text, &self.checkout, exe.as_deref()))
    }

    /// Reads every row recorded so far.
    pub fn read_rows(&self) -> Result<Vec<BenchRow>, EngineError> {
        let p = self.paths.candidates();
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&p)(e)),
        };
        crate::bench::row::parse_jsonl(&text).map_err(|errs| {
            let first = errs.into_iter().next();
            EngineError::Rows {
                path: p.display().to_string(),
                line: first.as_ref().map(|e| e.line).unwrap_or(0),
                message: first.map(|e| e.message).unwrap_or_default(),
            }
        })
    }

    /// Appends one row and flushes it to disk at once, so an interruption loses nothing.
    pub fn append_row(&self, row: &BenchRow) -> Result<(), EngineError> {
        baseline::append_row_at(&self.paths, row)
    }

    /// The campaign's scenario names, in order.
    pub fn scenario_names(&self) -> Vec<String> {
        self.campaign
            .scenarios
            .iter()
            .map(|s| s.name.clone())
            .collect()
    }

    /// Gap decisions of `round` (0: the fixed baseline) over `rows`, by the shared rule.
    pub fn gap_decisions(
        &self,
        rows: &[BenchRow],
        round: u32,
    ) -> Vec<crate::bench::gap::ScenarioGap> {
        let names = self.scenario_names();
        gap::GapRule {
            scenarios: &names,
            competitors: &self.campaign.competitors,
            metric: self.campaign.metric,
            threshold_pct: self.campaign.noise_threshold_pct,
            required_repeats: self.opts.tie_runs.max(1),
        }
        .decide(rows, round)
    }

    /// [`Engine::gap_decisions`] mapped for the gate.
    pub fn gap_views(&self, rows: &[BenchRow], round: u32) -> Vec<crate::gate::ScenarioGapView> {
        self.gap_decisions(rows, round)
            .iter()
            .map(gap::view)
            .collect()
    }

    /// Commits everything under the checkout with `message` (scrubbed: it may quote the
    /// agent's own commit messages).
    pub fn commit(&self, message: &str) -> Result<String, EngineError> {
        Ok(self
            .git
            .commit_all(&crate::secrets::redact(message), false)?)
    }

    /// Fills in the commit of every recorded round that has none, from the history: a
    /// round's commit cannot hold its own id, so a fresh checkout of the pushed branch (the
    /// runner's) learns it here and the next commit records it.
    fn fill_round_commits(&mut self) {
        for r in self.state.rounds.iter_mut().filter(|r| r.commit.is_none()) {
            let gate = self
                .paths
                .repo_rel(&format!("{}/gate.json", RunPaths::round_rel(r.round)));
            r.commit = self.git.last_commit_touching(&gate);
        }
    }

    /// Records in the checkpoint what its readers need to draw the gap chart as the engine
    /// does: the noise threshold this run's gate uses, and, for a checkpoint written before
    /// the baseline's gaps were kept, those gaps decided again from the round-0 rows.
    fn record_chart_inputs(&mut self) {
        self.state.noise_threshold_pct = Some(self.campaign.noise_threshold_pct);
        let baseline_done = !matches!(self.state.phase, Phase::Started | Phase::HistoryDone);
        if baseline_done && self.state.baseline_gaps.is_empty() {
            // Unreadable rows leave the baseline point off the chart; the phase that needs
            // the rows reports them.
            if let Ok(rows) = self.read_rows() {
                if rows.iter().any(|r| r.round == 0) {
                    self.state.baseline_gaps = self.gap_views(&rows, 0);
                }
            }
        }
    }

    /// Runs the campaign from wherever its state says it is until it stops, waits for a
    /// human, or the per-invocation round budget is spent.
    pub fn run(&mut self) -> Result<RunOutcome, EngineError> {
        self.fill_round_commits();
        self.record_chart_inputs();
        let mut rounds_run = 0u32;
        loop {
            check_interrupted()?;
            match self.state.phase {
                Phase::Started => self.phase_history()?,
                Phase::HistoryDone => self.phase_baseline()?,
                Phase::BaselineDone => self.phase_plan()?,
                Phase::PlanDone => {
                    if self.state.waiting_for_human {
                        return Ok(RunOutcome::WaitingForHuman {
                            after_round: self.state.rounds.last().map(|r| r.round).unwrap_or(0),
                        });
                    }
                    if let Some(limit) = self.opts.rounds_this_run {
                        if rounds_run >= limit {
                            return Ok(RunOutcome::Paused {
                                after_round: self.state.rounds.last().map(|r| r.round).unwrap_or(0),
                            });
                        }
                    }
                    self.run_round()?;
                    rounds_run += 1;
                }
                Phase::Stopped => {
                    let stop = self.state.stop.clone();
                    return Ok(RunOutcome::Stopped {
                        reason: stop.as_ref().map(|s| s.reason.clone()).unwrap_or_default(),
                        reached_sota: stop.as_ref().is_some_and(|s| s.reached_sota),
                        unmeasurable: stop.is_some_and(|s| s.unmeasurable),
                    });
                }
            }
        }
    }

    /// Phase 0.5: model PR history notes from the checkout's git history, the upstream PRs
    /// the App (or the caller) fetched, and the optional knowledge root; what is missing is
    /// a recorded blocker.
    fn phase_history(&mut self) -> Result<(), EngineError> {
        self.progress.step("phase 0.5: model PR history notes");
        let upstream = match &self.opts.upstream_prs {
            Some(u) => Some(u.clone()),
            None => crate::history::upstream::read_file(
                &self.paths.file(crate::history::upstream::UPSTREAM_FILE),
            ),
        };
        let frameworks = self.campaign.frameworks();
        let report = crate::history::build(&crate::history::HistoryRequest {
            checkout: &self.checkout,
            model: &self.campaign.model,
            config_json: self.opts.model_config.as_deref(),
            knowledge_root: self.opts.knowledge_root.as_deref(),
            slug_override: self.campaign.history_slug.as_deref(),
            frameworks: &frameworks,
            upstream: upstream.as_ref(),
        });
        let json_rel = self.paths.repo_rel(crate::history::render::JSON_NOTES);
        let text = crate::history::render::render_markdown(&report, &format!("`{json_rel}`"))?;
        self.write(&self.paths.history_notes(), &text)?;
        self.write(
            &self.paths.file(crate::history::render::JSON_NOTES),
            &serde_json::to_string_pretty(&report).unwrap_or_default(),
        )?;
        self.progress.step(&format!(
            "  history: family `{}`, {} model file(s), {} relevant commit(s) of {} read, {} upstream PR(s) in flight",
            report.family,
            report.model_files.len(),
            report.commits.len(),
            report.commits_read,
            report.open_prs.iter().filter(|p| p.in_flight).count()
        ));
        for b in &report.blockers {
            self.progress.step(&format!("  history blocker: {b}"));
        }
        self.state.phase = Phase::HistoryDone;
        self.save_state()
    }
}

#[cfg(test)]
mod portable_path_tests {
    use super::portable_paths;
    use std::path::Path;

    #[test]
    fn runner_paths_become_checkout_relative_and_the_executable_its_name() {
        let text = "`'/opt/t/sota-bot' sim serve --profile '/w/ck'/sim/e.yaml` raw: `/w/ck/.sota/logs/a.log` in /w/ck, not /w/ck2/x";
        let out = portable_paths(text, Path::new("/w/ck"), Some(Path::new("/opt/t/sota-bot")));
        assert_eq!(
            out,
            "`sota-bot sim serve --profile sim/e.yaml` raw: `.sota/logs/a.log` in ., not /w/ck2/x"
        );
        assert_eq!(portable_paths("a/b", Path::new("."), None), "a/b");
    }
}
