//! Phase 3: one RLCR round (evidence, prompt, agent, revalidation, ledgers, gate, report,
//! one round commit) and the final report. Each step is recorded in the checkpoint so a
//! crash resumes at the step it interrupted, without redoing or duplicating finished work.

use super::gap::geomean_improvement_pct;
use super::{baseline::digest, baseline::key_for, io_err, Engine, EngineError, RunPaths, RunTag};
use crate::bench::{BenchRow, RunStatus};
use crate::campaign::ledger::{self, AttemptRow, LineageEntry, OptimizationRow, SourceIdeaRow};
use crate::campaign::state::{
    row_key, BestRow, Phase, RoundProgress, RoundRecord, RoundStep, StopRecord,
};
use crate::framework::Framework;
use crate::gate::evidence::{parse_stop_claim, summary_claims_patch};
use crate::gate::{Decision, RoundEvidence, ScenarioGapView, StopReason};
use crate::report::{self, GapSeries, RoundPromptView, RoundReportInput};
use std::collections::HashSet;

/// Lines of an agent summary starting with `KEY:`.
pub fn summary_field(summary: &str, key: &str) -> Vec<String> {
    summary
        .lines()
        .filter_map(|l| l.trim().strip_prefix(key))
        .filter_map(|r| r.strip_prefix(':'))
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .collect()
}

/// The round's title: a `TITLE:` line, else the first line under a `## What changed`
/// heading, else the first heading.
pub fn round_title(summary: &str) -> Option<String> {
    if let Some(t) = summary_field(summary, "TITLE").into_iter().next() {
        return Some(t);
    }
    let mut after = false;
    for l in summary.lines().map(str::trim) {
        if l.starts_with('#') {
            after = l
                .trim_start_matches('#')
                .trim()
                .eq_ignore_ascii_case("what changed");
            continue;
        }
        if after && !l.is_empty() {
            return Some(l.to_string());
        }
    }
    summary
        .lines()
        .find(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim().to_string())
        .filter(|t| !t.is_empty())
}

/// The maintainer's note for a round, in the round directory.
pub const MAINTAINER_NOTE_FILE: &str = "maintainer-note.md";

/// Longest maintainer note kept (characters); a longer one is cut with a marker.
pub const MAX_MAINTAINER_NOTE_CHARS: usize = 4000;

/// Records a maintainer's note for `round` of the campaign in `paths` (from
/// `/sota continue <note>` or `--maintainer-note`): committed with the round and quoted in its
/// prompt. Credentials are scrubbed and the note is capped at [`MAX_MAINTAINER_NOTE_CHARS`].
/// A blank note records nothing.
pub fn record_maintainer_note(paths: &RunPaths, round: u32, note: &str) -> Result<(), EngineError> {
    let known = crate::secrets::SecretSet::from_default_env();
    let note = cap_note(known.scrub(note.trim()).trim());
    if note.is_empty() {
        return Ok(());
    }
    let path = paths.round_dir(round).join(MAINTAINER_NOTE_FILE);
    super::write_redacted(&path, &format!("{note}\n"))
}

/// `note` cut to [`MAX_MAINTAINER_NOTE_CHARS`] characters, marked when cut.
pub fn cap_note(note: &str) -> String {
    if note.chars().count() <= MAX_MAINTAINER_NOTE_CHARS {
        return note.to_string();
    }
    let kept: String = note.chars().take(MAX_MAINTAINER_NOTE_CHARS).collect();
    format!("{kept} [note cut at {MAX_MAINTAINER_NOTE_CHARS} characters]")
}

impl<'a> Engine<'a> {
    fn round_file(&self, round: u32, name: &str) -> std::path::PathBuf {
        self.paths.round_dir(round).join(name)
    }

    /// Runs (or resumes) the next round to its commit.
    pub(crate) fn run_round(&mut self) -> Result<(), EngineError> {
        let round = self.state.next_round();
        // A round resumed before its agent ran gets the evidence an interruption (or a
        // missing profile command) kept it from: its profiling is done again.
        if self.prepared_without_profiles(round) {
            self.progress
                .step(&format!("round {round}: profiles missing; profiling again"));
            if let Some(start) = self
                .state
                .in_progress
                .as_ref()
                .map(|p| p.start_commit.clone())
            {
                self.undo_unfinished_agent(&start)?;
            }
            self.prepare_round(round)?;
        }
        loop {
            super::check_interrupted()?;
            match self.state.in_progress.as_ref().map(|p| p.step) {
                None => self.prepare_round(round)?,
                Some(RoundStep::Prepared) => self.agent_step(round)?,
                Some(RoundStep::AgentDone) => self.revalidate(round)?,
                Some(RoundStep::Revalidated) => return self.finalize_round(round),
            }
        }
    }

    /// True when round `round` is prepared, SGLang is behind, and its profiles folder holds
    /// no profile: the agent would otherwise be asked to patch without profiler evidence.
    fn prepared_without_profiles(&self, round: u32) -> bool {
        let prepared = self
            .state
            .in_progress
            .as_ref()
            .is_some_and(|p| p.round == round && p.step == RoundStep::Prepared);
        let behind = self.state.gaps.iter().any(|g| g.status.is_behind());
        let profiles = self.paths.round_dir(round).join("profiles");
        let has_files = |dir: &std::path::Path| {
            std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| {
                    e.path().is_file()
                        || std::fs::read_dir(e.path())
                            .into_iter()
                            .flatten()
                            .flatten()
                            .next()
                            .is_some()
                })
        };
        prepared && behind && !has_files(&profiles)
    }

    fn prepare_round(&mut self, round: u32) -> Result<(), EngineError> {
        self.progress
            .step(&format!("round {round}: gap decision and evidence"));
        let behind: Vec<ScenarioGapView> = self
            .state
            .gaps
            .iter()
            .filter(|g| g.status.is_behind())
            .cloned()
            .collect();
        self.agent_ready()?;
        // An agent that cannot start here costs no profiling.
        let agent_can_start = self
            .opts
            .agent
            .as_ref()
            .is_some_and(|a| crate::runner::agent::preflight(a).is_ok());
        let mut evidence = vec![
            self.paths.repo_rel("history/model-pr-history-notes.md"),
            self.paths.repo_rel("benchmark/summary.md"),
            self.paths.repo_rel("benchmark/fairness/diagnostics.md"),
            self.paths.repo_rel("humanize/attempt-ledger.md"),
        ];
        if !behind.is_empty() && agent_can_start {
            evidence.extend(self.profile_round(round, &behind)?);
            // Profiles a signal cut short are not evidence: the step is redone on resume.
            super::check_interrupted()?;
        }
        let last_review = if round > 1 {
            std::fs::read_to_string(self.round_file(round - 1, "review.md")).ok()
        } else {
            None
        };
        let maintainer_note = std::fs::read_to_string(self.round_file(round, MAINTAINER_NOTE_FILE))
            .ok()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty());
        let c = &self.campaign;
        let view = RoundPromptView {
            round,
            model: c.model.clone(),
            hardware: c.hardware.clone(),
            competitors: c
                .competitors
                .iter()
                .map(|f| f.display_name())
                .collect::<Vec<_>>()
                .join(", "),
            checkout: self.checkout.display().to_string(),
            branch: self.state.branch.clone(),
            run_dir: self.paths.rel.clone(),
            plan_path: self.paths.repo_rel("plan.md"),
            summary_path: self
                .paths
                .repo_rel(&format!("{}/summary.md", RunPaths::round_rel(round))),
            workload: c.workload_line(),
            sla: c.sla_line(),
            noise_threshold: format!("{}", c.noise_threshold_pct),
            metric: c.metric.label().into(),
            gaps: report::prompt_gaps(&self.state.gaps),
            evidence,
            research_first: crate::gate::stagnation_required(
                &self.state.improvements(),
                c.noise_threshold_pct,
            ),
            replan: self.state.replan_requested,
            full_alignment: crate::gate::decide::is_full_alignment(round),
            last_review,
            maintainer_note,
            history_quote: std::fs::read_to_string(self.paths.history_notes())
                .ok()
                .map(|md| crate::history::render::prompt_quote(&md)),
        };
        let prompt = report::render_round_prompt(&view)?;
        self.write(&self.round_file(round, "prompt.md"), &prompt)?;
        self.state.in_progress = Some(RoundProgress {
            round,
            step: RoundStep::Prepared,
            start_commit: self.git.head_commit()?,
            measured_commit: None,
            agent_outcome: None,
            agent_left_uncommitted: Vec::new(),
            agent: None,
        });
        self.save_state()
    }

    /// Profiles SGLang and the leading competitor of the slowest scenario; writes the
    /// root-cause and layer-pipeline analyses. Returns the evidence paths.
    fn profile_round(
        &mut self,
        round: u32,
        behind: &[ScenarioGapView],
    ) -> Result<Vec<String>, EngineError> {
        let slow = behind
            .iter()
            .min_by(|a, b| {
                a.status
                    .gap_pct()
                    .unwrap_or(-100.0)
                    .partial_cmp(&b.status.gap_pct().unwrap_or(-100.0))
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .cloned();
        let Some(slow) = slow else {
            return Ok(Vec::new());
        };
        let Some(scenario) = self
            .campaign
            .scenarios
            .iter()
            .find(|s| s.name == slow.scenario)
            .cloned()
        else {
            return Ok(Vec::new());
        };
        let mut targets = Vec::new();
        if let Some(c) = self.sglang_candidate(&scenario.name) {
            targets.push(c);
        }
        let leader_fw = self
            .state
            .winners
            .iter()
            .filter(|w| w.scenario == scenario.name && w.framework != Framework::Sglang.canonical())
            .max_by(|a, b| {
                a.value
                    .partial_cmp(&b.value)
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .cloned();
        if let Some(w) = leader_fw {
            if let Some(c) = self.candidates.iter().find(|c| {
                c.framework.canonical() == w.framework && c.candidate_id == w.candidate_id
            }) {
                targets.push(c.clone());
            }
        }
        let mut paths = Vec::new();
        let mut layer_md = None;
        for cand in &targets {
            self.progress.step(&format!(
                "round {round}: profiling {} `{}` on {}",
                cand.framework.display_name(),
                cand.candidate_id,
                scenario.name
            ));
            let out = self
                .paths
                .round_dir(round)
                .join("profiles")
                .join(cand.framework.canonical());
            std::fs::create_dir_all(&out).map_err(io_err(&out))?;
            match self.lane.profile(cand, &scenario, &out) {
                Ok(files) => {
                    for f in files {
                        if cand.framework == Framework::Sglang
                            && f.file_name().is_some_and(|n| n == "layer-pipeline.md")
                        {
                            layer_md = std::fs::read_to_string(&f).ok();
                        }
                        if let Ok(rel) = f.strip_prefix(&self.checkout) {
                            paths.push(rel.display().to_string());
                        }
                    }
                }
                Err(e) => self
                    .progress
                    .step(&format!("round {round}: profiling failed: {e}")),
            }
        }
        let mut rc = format!(
            "# Root cause (round {round})\n\nSlow scenario: **{}** — {} (leader: {}).\n\nProfiles use the slow scenario's shape: prefill = {} input tokens -> 1 output token; decode = 1 input token -> {} output tokens.\n\n## Profiler tables\n\n",
            scenario.name,
            slow.status.label(),
            slow.leader.as_deref().unwrap_or("none"),
            scenario.input_len,
            scenario.output_len
        );
        for p in &paths {
            rc.push_str(&format!("- `{p}`\n"));
        }
        for p in &paths {
            let abs = self.checkout.join(p);
            if p.ends_with(".md") && !p.ends_with("layer-pipeline.md") {
                if let Ok(t) = std::fs::read_to_string(&abs) {
                    rc.push_str(&format!("\n### `{p}`\n\n{t}\n"));
                }
            }
        }
        if paths.is_empty() {
            rc.push_str("(no profile could be captured this round; see the progress log)\n");
        }
        self.write(&self.paths.root_cause(), &rc)?;
        let lp = match layer_md {
            Some(t) => format!("# Layer pipeline (round {round})\n\n{t}"),
            None => format!(
                "# Layer pipeline (round {round})\n\nThe SGLang profile of this round produced no layer pipeline; the patch must cite kernel-table rows instead.\n"
            ),
        };
        self.write(&self.paths.layer_pipeline(), &lp)?;
        paths.push(self.paths.repo_rel("analysis/root-cause.md"));
        paths.push(self.paths.repo_rel("analysis/layer-pipeline.md"));
        Ok(paths)
    }

    /// The SGLang candidate that won `scenario` in the baseline (else the first SGLang one).
    fn sglang_candidate(&self, scenario: &str) -> Option<super::CandidateSpec> {
        let id = self
            .state
            .winners
            .iter()
            .find(|w| w.framework == Framework::Sglang.canonical() && w.scenario == scenario)
            .map(|w| w.candidate_id.clone());
        self.candidates
            .iter()
            .find(|c| c.framework == Framework::Sglang && Some(&c.candidate_id) == id.as_ref())
            .or_else(|| {
                self.candidates
                    .iter()
                    .find(|c| c.framework == Framework::Sglang)
            })
            .cloned()
    }

    fn revalidate(&mut self, round: u32) -> Result<(), EngineError> {
        let agent_failed = self
            .state
            .in_progress
            .as_ref()
            .and_then(|p| p.agent.as_ref())
            .is_some_and(|a| a.failure.is_some());
        if agent_failed {
            // Nothing changed that could be measured: no GPU time for this round.
            if let Some(p) = self.state.in_progress.as_mut() {
                p.step = RoundStep::Revalidated;
            }
            return self.save_state();
        }
        self.lane_preflight()?;
        let measured = self
            .state
            .in_progress
            .as_ref()
            .and_then(|p| p.measured_commit.clone());
        let done: HashSet<String> = self.read_rows()?.iter().map(row_key).collect();
        let scenarios = self.campaign.scenarios.clone();
        // One launch per SGLang candidate, covering every scenario it still owes.
        let mut groups: Vec<(super::CandidateSpec, Vec<super::ScenarioSpec>)> = Vec::new();
        for s in &scenarios {
            let Some(cand) = self.sglang_candidate(&s.name) else {
                continue;
            };
            if done.contains(&key_for(&cand, &s.name, round, 0)) {
                continue;
            }
            match groups
                .iter_mut()
                .find(|(c, _)| c.candidate_id == cand.candidate_id)
            {
                Some((_, v)) => v.push(s.clone()),
                None => groups.push((cand, vec![s.clone()])),
            }
        }
        for (cand, owed) in groups {
            self.progress.step(&format!(
                "round {round}: revalidating SGLang `{}` on {}",
                cand.candidate_id,
                owed.iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            let tag = RunTag {
                round,
                commit: measured.clone(),
                repeat: 0,
            };
            self.measure(&cand, &owed, &tag)?;
        }
        // A gap inside the noise threshold is decided by repeat runs of SGLang and of every
        // competitor's winner in this round, until each side has the runs the rule asks for.
        let gaps = self.gap_decisions(&self.read_rows()?, round);
        for g in gaps.iter().filter(|g| {
            matches!(
                g.decision,
                crate::bench::gap::GapDecision::NeedsRepeats { .. }
            )
        }) {
            let Some(s) = scenarios.iter().find(|s| s.name == g.scenario) else {
                continue;
            };
            let mut cands: Vec<super::CandidateSpec> =
                self.sglang_candidate(&s.name).into_iter().collect();
            for w in
                self.state.winners.iter().filter(|w| {
                    w.scenario == s.name && w.framework != Framework::Sglang.canonical()
                })
            {
                if let Some(c) = self.candidates.iter().find(|c| {
                    c.framework.canonical() == w.framework && c.candidate_id == w.candidate_id
                }) {
                    cands.push(c.clone());
                }
            }
            for repeat in 0..self.opts.tie_runs {
                for cand in &cands {
                    let done: HashSet<String> = self.read_rows()?.iter().map(row_key).collect();
                    if done.contains(&key_for(cand, &s.name, round, repeat)) {
                        continue;
                    }
                    self.progress.step(&format!(
                        "round {round}: near-tie on {}: run {} of {} `{}`",
                        s.name,
                        repeat + 1,
                        cand.framework.display_name(),
                        cand.candidate_id
                    ));
                    let tag = RunTag {
                        round,
                        commit: if cand.framework == Framework::Sglang {
                            measured.clone()
                        } else {
                            None
                        },
                        repeat,
                    };
                    self.measure(cand, std::slice::from_ref(s), &tag)?;
                }
            }
        }
        if let Some(p) = self.state.in_progress.as_mut() {
            p.step = RoundStep::Revalidated;
        }
        self.save_state()
    }

    /// Gap after round `round`: SGLang's rows of this round (median over repeats) against
    /// the baseline competitors and this round's competitor reruns.
    fn current_gaps(&self, round: u32) -> Result<Vec<ScenarioGapView>, EngineError> {
        Ok(self.gap_views(&self.read_rows()?, round))
    }

    fn finalize_round(&mut self, round: u32) -> Result<(), EngineError> {
        self.progress
            .step(&format!("round {round}: ledgers and review gate"));
        let Some(progress) = self.state.in_progress.clone() else {
            return Err(EngineError::Refused("no round in progress".into()));
        };
        let start = progress.start_commit.clone();
        let rows = self.read_rows()?;
        let round_rows: Vec<BenchRow> = rows.iter().filter(|r| r.round == round).cloned().collect();
        let decided = self.gap_decisions(&rows, round);
        let sglang_now = |scenario: &str| {
            decided
                .iter()
                .find(|g| g.scenario == scenario)
                .and_then(super::gap::sglang_passing)
        };
        let mut pairs = Vec::new();
        let mut per_scenario = Vec::new();
        for s in &self.campaign.scenarios {
            let new = sglang_now(&s.name).map(|(_, v)| v);
            if let (Some(old), Some(new)) = (self.state.best_value(&s.name), new) {
                pairs.push((old, new));
                per_scenario.push(format!("{} {:+.2}%", s.name, (new / old - 1.0) * 100.0));
            }
        }
        // A scenario that had a passing best result and now has none is a regression.
        let lost = self
            .campaign
            .scenarios
            .iter()
            .any(|s| self.state.best_value(&s.name).is_some() && sglang_now(&s.name).is_none());
        let agent = progress.agent.clone();
        let agent_failure = agent.as_ref().and_then(|a| a.failure.clone());
        let gaps_before = self.state.gaps.clone();
        // A failed agent round measured nothing: no improvement, the gap as it was.
        let (geomean, gaps_after) = if agent_failure.is_some() {
            per_scenario.clear();
            (None, gaps_before.clone())
        } else if lost {
            (Some(-100.0), self.current_gaps(round)?)
        } else {
            (geomean_improvement_pct(&pairs), self.current_gaps(round)?)
        };

        let summary_path = self.round_file(round, "summary.md");
        let summary = std::fs::read_to_string(&summary_path).ok();
        let sum = summary.clone().unwrap_or_default();
        let title = match &agent_failure {
            Some(_) => "the agent failed".to_string(),
            None => round_title(&sum).unwrap_or_else(|| format!("round {round}")),
        };
        let title: String = title.chars().take(80).collect();
        let changed_sources: Vec<String> = self
            .git
            .changed_paths(
                &start,
                progress.measured_commit.as_deref().unwrap_or(&start),
            )
            .unwrap_or_default()
            .into_iter()
            .filter(|p| !p.starts_with(&format!("{}/", self.paths.rel)))
            .collect();
        let all_pass = !round_rows.is_empty()
            && round_rows
                .iter()
                .filter(|r| r.framework == Framework::Sglang)
                .all(|r| r.status == RunStatus::Ok && r.sla.passed == Some(true));

        // Ledgers: rebuilt from the round's starting version, so a resumed finalize never
        // appends twice.
        let read_start = |rel: &str| {
            self.git
                .read_at(&start, &self.paths.repo_rel(rel))
                .unwrap_or_default()
        };
        let attempt_before = read_start("humanize/attempt-ledger.md");
        let opt_before = read_start("humanize/optimization-ledger.md");
        let idea_before = read_start("humanize/source-idea-ledger.md");
        let lineage_before = read_start("humanize/lineage.jsonl");
        let verdict_hint = match &agent_failure {
            Some(_) => "AGENT FAILED".to_string(),
            None => {
                crate::gate::derive_measured_verdict(geomean, self.campaign.noise_threshold_pct)
                    .to_string()
            }
        };
        let attempt = ledger::append_attempt(
            &attempt_before,
            &AttemptRow {
                round,
                title: title.clone(),
                idea: summary_field(&sum, "IDEA").join("; "),
                files: changed_sources.clone(),
                commit: progress.measured_commit.clone(),
                geomean_pct: geomean,
                verdict: verdict_hint.to_string(),
                outcome: match (&agent, &agent_failure) {
                    (_, Some(f)) => f.describe(),
                    (Some(a), None) => format!(
                        "agent {} in {:.0}s ({}); {}",
                        a.outcome,
                        a.duration_secs,
                        a.usage.describe(),
                        per_scenario.join(", ")
                    ),
                    (None, None) => format!(
                        "agent {}; {}",
                        progress.agent_outcome.as_deref().unwrap_or("unknown"),
                        per_scenario.join(", ")
                    ),
                },
            },
        );
        self.write(&self.paths.attempt_ledger(), &attempt)?;
        let mut opt = if opt_before.is_empty() {
            ledger::ledger_header(ledger::LedgerKind::Optimization)
        } else {
            opt_before.clone()
        };
        if let Some(g) = geomean.filter(|g| *g >= self.campaign.noise_threshold_pct) {
            if all_pass && !changed_sources.is_empty() {
                opt = ledger::append_optimization(
                    &opt,
                    &OptimizationRow {
                        round,
                        title: title.clone(),
                        commit: progress.measured_commit.clone(),
                        geomean_pct: g,
                        per_scenario: per_scenario.join(", "),
                        evidence: format!("{}/rounds/round-{round}/", self.paths.rel),
                    },
                );
            }
        }
        self.write(&self.paths.optimization_ledger(), &opt)?;
        let mut ideas = if idea_before.is_empty() {
            ledger::ledger_header(ledger::LedgerKind::SourceIdea)
        } else {
            idea_before.clone()
        };
        for idea in summary_field(&sum, "IDEA") {
            ideas = ledger::append_source_idea(
                &ideas,
                &SourceIdeaRow {
                    round,
                    idea,
                    evidence: "analysis/root-cause.md, analysis/layer-pipeline.md".into(),
                    provenance: format!("agent summary, round {round}"),
                    status: if changed_sources.is_empty() {
                        "not tried"
                    } else {
                        "tried"
                    }
                    .into(),
                },
            );
        }
        self.write(&self.paths.source_idea_ledger(), &ideas)?;
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let lineage_entry = LineageEntry {
            round,
            title: title.clone(),
            parent_commit: Some(start.clone()),
            measured_commit: progress.measured_commit.clone(),
            accepted: false,
            verdict: verdict_hint.to_string(),
            decision: "pending".into(),
            geomean_pct: geomean,
            recorded_at: now.clone(),
        };
        self.write(
            &self.paths.lineage(),
            &format!("{lineage_before}{}", ledger::lineage_line(&lineage_entry)),
        )?;
        self.save_state()?;

        // Evidence from exactly what the round commit will hold.
        let tree = self.git.stage_all()?;
        let rel = |r: &str| self.paths.repo_rel(r);
        let evidence = RoundEvidence {
            round,
            run_dir: self.paths.rel.clone(),
            campaign_branch: self.state.branch.clone(),
            current_branch: self.git.current_branch(),
            round_commit: None,
            measured_commit: progress.measured_commit.clone(),
            // The round commit takes everything, the agent's uncommitted edits included.
            uncommitted_paths: Vec::new(),
            changed_paths: self.git.changed_paths(&start, &tree)?,
            tracked_paths: self.git.tracked_paths(&tree)?,
            added_text: self.git.added_text(&start, &tree)?,
            baseline_contract: self
                .state
                .baseline_commit
                .as_deref()
                .and_then(|b| self.git.read_at(b, &rel("benchmark/contract.json"))),
            current_contract: self.git.read_at(&tree, &rel("benchmark/contract.json")),
            baseline_rows: rows.iter().filter(|r| r.round == 0).cloned().collect(),
            round_rows: round_rows.clone(),
            behind_at_start: gaps_before.iter().any(|g| g.status.is_behind()),
            claims_patch: summary_claims_patch(&sum),
            attempt_rows_before: ledger::count_rows(&attempt_before),
            attempt_rows_after: ledger::count_rows(&attempt),
            optimization_rows_before: ledger::count_rows(&opt_before),
            optimization_rows_after: ledger::count_rows(&opt),
            plan_digest_at_start: self.state.plan_digest.clone(),
            plan_digest_now: self.git.read_at(&tree, &rel("plan.md")).map(|t| digest(&t)),
            summary: summary.clone(),
            geomean_improvement_pct: geomean,
            gaps_after: gaps_after.clone(),
            prior_verdicts: self.state.verdicts(),
            prior_improvements_pct: self.state.improvements(),
            stop_claim: parse_stop_claim(&sum),
            reviewer_response: None,
            reviewer_error: None,
            source_diff: progress.measured_commit.as_deref().and_then(|m| {
                self.git
                    .diff_text(&start, m, &format!("{}/", self.paths.rel), 40_000)
                    .ok()
            }),
            agent: agent.clone(),
            prior_agent_failures: self.state.trailing_agent_failures(),
            agent_cost_usd_total: match (
                self.state.agent_cost_usd(),
                agent.as_ref().and_then(|a| a.usage.cost_usd),
            ) {
                (None, None) => None,
                (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
            },
            history: Some(crate::history::verify::notes_evidence(
                &self.checkout,
                self.git
                    .read_at(&tree, &rel(crate::history::render::JSON_NOTES))
                    .as_deref(),
            )),
        };
        let mut cfg = self.opts.gate.clone();
        cfg.noise_threshold_pct = self.campaign.noise_threshold_pct;
        cfg.max_rounds = self.campaign.max_rounds;
        cfg.wait_for_human = self.campaign.wait_for_human;
        // A failed agent round has no change to review.
        let reviewer = if agent_failure.is_some() {
            None
        } else {
            self.reviewer
        };
        let gate_input = crate::gate::gate_input(&evidence, &cfg, reviewer);
        let outcome = gate_input.decide();
        self.write(
            &self.round_file(round, "gate-input.json"),
            &serde_json::to_string(&gate_input).unwrap_or_default(),
        )?;
        self.progress.step(&format!(
            "round {round}: gate {} · verdict {} · decision: {} ({})",
            if outcome.accepted {
                "accepted"
            } else {
                "REJECTED"
            },
            outcome.verdict,
            outcome.decision.label(),
            outcome.reason
        ));

        // Lineage gets the gate's answer (same line, rewritten).
        let lineage_entry = LineageEntry {
            accepted: outcome.accepted,
            verdict: outcome.verdict.to_string(),
            decision: outcome.decision.label().into(),
            ..lineage_entry
        };
        self.write(
            &self.paths.lineage(),
            &format!("{lineage_before}{}", ledger::lineage_line(&lineage_entry)),
        )?;

        // State update.
        if outcome.accepted {
            for s in &self.campaign.scenarios {
                if let Some((candidate_id, v)) = sglang_now(&s.name) {
                    let better = self.state.best_value(&s.name).is_none_or(|old| v > old);
                    if better {
                        self.state.best_sglang.retain(|b| b.scenario != s.name);
                        self.state.best_sglang.push(BestRow {
                            scenario: s.name.clone(),
                            candidate_id: candidate_id.to_string(),
                            value: v,
                            round,
                            commit: progress.measured_commit.clone(),
                        });
                    }
                }
            }
        }
        self.state.gaps = gaps_after.clone();
        self.state.tests.extend(summary_field(&sum, "TESTS"));
        if let Some(next) = summary_field(&sum, "NEXT").into_iter().next() {
            self.state.next_planned_patch = Some(next);
        }
        self.state.replan_requested = matches!(outcome.decision, Decision::Replan);
        self.state.waiting_for_human = matches!(outcome.decision, Decision::WaitForHuman);
        self.state.rounds.push(RoundRecord {
            round,
            title: title.clone(),
            commit: None,
            measured_commit: progress.measured_commit.clone(),
            accepted: outcome.accepted,
            verdict: outcome.verdict,
            decision: outcome.decision.label().into(),
            reason: outcome.reason.clone(),
            geomean_pct: geomean,
            gaps: gaps_after.clone(),
            changed_files: changed_sources,
            agent_failed: agent_failure.is_some(),
            agent_cost_usd: agent.as_ref().and_then(|a| a.usage.cost_usd),
        });
        self.state.in_progress = None;
        if let Decision::Stop { reason } = &outcome.decision {
            self.state.stop = Some(StopRecord {
                after_round: round,
                reason: reason.to_string(),
                reached_sota: matches!(
                    reason,
                    StopReason::SglangAhead | StopReason::TiedWithinNoise
                ),
                unmeasurable: false,
            });
            self.state.phase = Phase::Stopped;
        }

        // Review (embedded verbatim in the next prompt), chart and report.
        let review = report::render_review(&outcome)?;
        self.write_report(&self.round_file(round, "review.md"), &review)?;
        let svg = report::render_gap_svg(&self.gap_series(), self.campaign.noise_threshold_pct);
        self.write(&self.round_file(round, "gap-chart.svg"), &svg)?;
        let attempt_md = std::fs::read_to_string(self.paths.attempt_ledger()).unwrap_or_default();
        let rr = RunPaths::round_rel(round);
        let artifacts = vec![
            self.paths.repo_rel(&format!("{rr}/prompt.md")),
            self.paths.repo_rel(&format!("{rr}/summary.md")),
            self.paths.repo_rel(&format!("{rr}/review.md")),
            self.paths.repo_rel(&format!("{rr}/gap-chart.svg")),
            self.paths.repo_rel("benchmark/candidates.jsonl"),
            self.paths.repo_rel("analysis/root-cause.md"),
            self.paths.repo_rel("analysis/layer-pipeline.md"),
            self.paths.repo_rel("humanize/model-loop-checkpoint.md"),
        ];
        let report_md = report::render_round_report(&RoundReportInput {
            campaign_id: &self.campaign.campaign_id,
            title: &title,
            metric: self.campaign.metric.label(),
            gaps_before: &gaps_before,
            gaps_after: &gaps_after,
            outcome: &outcome,
            geomean_pct: geomean,
            attempt_ledger_md: &attempt_md,
            chart_path: "gap-chart.svg",
            artifacts,
            agent: agent.as_ref(),
        })?;
        self.write_report(&self.round_file(round, "report.md"), &report_md)?;
        let gate_json = serde_json::to_string_pretty(&outcome).unwrap_or_default();
        self.write(&self.round_file(round, "gate.json"), &gate_json)?;
        self.save_state()?;
        let mut message = format!("sota round {round}: {title}\n");
        if let Some(m) = &progress.measured_commit {
            message.push_str(&format!(
                "\nMeasured SGLang source: {m} (this commit's tree outside the run directory).\n"
            ));
        }
        if let Some(f) = &agent_failure {
            message.push_str(&format!("\nNothing measured: {}.\n", f.describe()));
        }
        let folded = agent
            .as_ref()
            .map(|a| a.commits.as_slice())
            .unwrap_or_default();
        if !folded.is_empty() {
            message.push_str("\nAgent commits folded into this round:\n");
            for c in folded {
                message.push_str(&format!("\n{c}\n"));
            }
        }
        let sha = self.commit(message.trim_end())?;
        if let Some(r) = self.state.rounds.last_mut() {
            r.commit = Some(sha);
        }
        self.save_state()?;
        if self.state.phase == Phase::Stopped {
            self.finish()?;
        }
        Ok(())
    }

    /// Gap per scenario over rounds (baseline first).
    pub fn gap_series(&self) -> Vec<GapSeries> {
        self.campaign
            .scenarios
            .iter()
            .map(|s| {
                let base = self.baseline_gap(&s.name);
                let mut points = vec![(0, base)];
                for r in &self.state.rounds {
                    let g = r
                        .gaps
                        .iter()
                        .find(|g| g.scenario == s.name)
                        .and_then(|g| g.status.gap_pct());
                    points.push((r.round, g));
                }
                GapSeries {
                    scenario: s.name.clone(),
                    points,
                }
            })
            .collect()
    }

    fn baseline_gap(&self, scenario: &str) -> Option<f64> {
        let rows = self.read_rows().ok()?;
        self.gap_views(&rows, 0)
            .into_iter()
            .find(|g| g.scenario == scenario)
            .and_then(|g| g.status.gap_pct())
    }

    /// Writes and commits the final report (§3.8).
    pub(crate) fn finish(&mut self) -> Result<(), EngineError> {
        self.progress.step("final report");
        let rows = self.read_rows()?;
        let view = super::finish::final_view(self, &rows);
        let text = report::render_final_report(&view)?;
        self.write_report(&self.paths.final_report(), &text)?;
        self.save_state()?;
        let reason = self
            .state
            .stop
            .as_ref()
            .map(|s| s.reason.clone())
            .unwrap_or_default();
        self.commit(&format!("sota final: {reason}"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_maintainer_note_is_recorded_trimmed_redacted_and_capped() {
        let dir = tempfile::tempdir().unwrap();
        let paths = RunPaths::from_rel(dir.path(), "runs/x");
        let token = format!("ghp_{}", "a1B2c3D4e5".repeat(4));
        record_maintainer_note(&paths, 2, &format!("  use this token {token} please \n")).unwrap();
        let kept = std::fs::read_to_string(paths.round_dir(2).join(MAINTAINER_NOTE_FILE)).unwrap();
        assert!(
            kept.starts_with("use this token ") && kept.ends_with(" please\n"),
            "{kept}"
        );
        assert!(!kept.contains(&token), "{kept}");

        record_maintainer_note(&paths, 3, " \n ").unwrap();
        assert!(!paths.round_dir(3).join(MAINTAINER_NOTE_FILE).exists());

        let long = "é".repeat(MAX_MAINTAINER_NOTE_CHARS + 10);
        record_maintainer_note(&paths, 4, &long).unwrap();
        let kept = std::fs::read_to_string(paths.round_dir(4).join(MAINTAINER_NOTE_FILE)).unwrap();
        assert!(kept.starts_with(&"é".repeat(MAX_MAINTAINER_NOTE_CHARS)));
        assert!(
            kept.ends_with(" [note cut at 4000 characters]\n"),
            "{}",
            &kept[kept.len() - 40..]
        );
        assert_eq!(cap_note("short"), "short");
    }
}
