//! The last step of a round, once SGLang is revalidated: ledgers, the review gate, the
//! checkpoint's record of the round, its review and report, and the one round commit.
//!
//! The round stays in progress in the checkpoint until its record is saved, just before the
//! commit, so a crash before that runs this step again from the start. That is safe: the
//! ledgers are rebuilt from their text at the round's start commit, never appended twice.

use super::gap::geomean_improvement_pct;
use super::round::{round_title, summary_field};
use super::{baseline::digest, Engine, EngineError, RunPaths};
use crate::bench::gap::ScenarioGap;
use crate::bench::{BenchRow, RunStatus};
use crate::campaign::ledger::{self, AttemptRow, LineageEntry, OptimizationRow, SourceIdeaRow};
use crate::campaign::state::{BestRow, Phase, RoundProgress, RoundRecord, StopRecord};
use crate::framework::Framework;
use crate::gate::evidence::{parse_stop_claim, summary_claims_patch};
use crate::gate::{
    AgentFailure, AgentReport, Decision, GateOutcome, RoundEvidence, ScenarioGapView, StopReason,
};
use crate::report::{self, RoundReportInput};

/// Longest round title kept (characters).
const MAX_TITLE_CHARS: usize = 80;

/// What a revalidated round measured and what its agent said, gathered once; every step of
/// [`Engine::finalize_round`] reads it.
struct RoundFacts {
    round: u32,
    progress: RoundProgress,
    /// Every row recorded so far.
    rows: Vec<BenchRow>,
    /// This round's rows.
    round_rows: Vec<BenchRow>,
    /// The gap decisions after this round.
    decided: Vec<ScenarioGap>,
    /// `scenario +x.xx%` against the best SGLang result so far, per scenario that has both.
    per_scenario: Vec<String>,
    agent: Option<AgentReport>,
    agent_failure: Option<AgentFailure>,
    gaps_before: Vec<ScenarioGapView>,
    gaps_after: Vec<ScenarioGapView>,
    /// Geometric-mean improvement over the best results so far (-100 when a scenario lost
    /// its passing result; none when the agent failed and nothing was measured).
    geomean: Option<f64>,
    /// The agent's round summary, when it wrote one.
    summary: Option<String>,
    title: String,
    /// Paths outside the run directory the measured commit changed.
    changed_sources: Vec<String>,
    /// The round has rows, and every SGLang row ran and passed its SLA.
    all_pass: bool,
}

impl RoundFacts {
    fn start(&self) -> &str {
        &self.progress.start_commit
    }

    fn measured_commit(&self) -> Option<String> {
        self.progress.measured_commit.clone()
    }

    fn summary_text(&self) -> &str {
        self.summary.as_deref().unwrap_or_default()
    }

    /// SGLang's passing candidate and value in `scenario` after this round.
    fn sglang_now(&self, scenario: &str) -> Option<(&str, f64)> {
        self.decided
            .iter()
            .find(|g| g.scenario == scenario)
            .and_then(super::gap::sglang_passing)
    }

    /// The verdict the measurement alone gives, for the ledgers before the gate answers.
    fn verdict_hint(&self, noise_threshold_pct: f64) -> String {
        match &self.agent_failure {
            Some(_) => "AGENT FAILED".to_string(),
            None => {
                crate::gate::derive_measured_verdict(self.geomean, noise_threshold_pct).to_string()
            }
        }
    }
}

/// The ledgers' text at the round's start commit, the attempt and optimization ledgers as
/// written for this round (the gate counts their rows), and the round's lineage line.
struct RoundLedgers {
    attempt_before: String,
    attempt: String,
    optimization_before: String,
    optimization: String,
    lineage_before: String,
    /// The round's lineage line, its decision pending until the gate answers.
    lineage: LineageEntry,
}

impl<'a> Engine<'a> {
    /// Ends a revalidated round: ledgers, review gate, round record, report, commit; and the
    /// final report when the gate stopped the campaign.
    pub(super) fn finalize_round(&mut self, round: u32) -> Result<(), EngineError> {
        self.progress
            .step(&format!("round {round}: ledgers and review gate"));
        let facts = self.round_facts(round)?;
        let ledgers = self.write_ledgers(&facts)?;
        self.save_state()?;
        let outcome = self.review_gate(&facts, &ledgers)?;
        self.record_gate_in_lineage(&ledgers, &outcome)?;
        self.record_round(&facts, &outcome);
        self.write_round_report(&facts, &outcome)?;
        self.save_state()?;
        self.commit_round(&facts)?;
        if self.state.phase == Phase::Stopped {
            self.finish()?;
        }
        Ok(())
    }

    /// Gathers what round `round` measured against the best results so far, and what its
    /// agent left (summary, title, changed sources).
    fn round_facts(&self, round: u32) -> Result<RoundFacts, EngineError> {
        let Some(progress) = self.state.in_progress.clone() else {
            return Err(EngineError::Refused("no round in progress".into()));
        };
        let rows = self.read_rows()?;
        let round_rows: Vec<BenchRow> = rows.iter().filter(|r| r.round == round).cloned().collect();
        let decided = self.gap_decisions(&rows, round);
        let agent = progress.agent.clone();
        let agent_failure = agent.as_ref().and_then(|a| a.failure.clone());
        let summary = std::fs::read_to_string(self.round_file(round, "summary.md")).ok();
        let title = match &agent_failure {
            Some(_) => "the agent failed".to_string(),
            None => round_title(summary.as_deref().unwrap_or_default())
                .unwrap_or_else(|| format!("round {round}")),
        };
        let start = progress.start_commit.as_str();
        let run_prefix = format!("{}/", self.paths.rel);
        let changed_sources: Vec<String> = self
            .git
            .changed_paths(start, progress.measured_commit.as_deref().unwrap_or(start))
            .unwrap_or_default()
            .into_iter()
            .filter(|p| !p.starts_with(&run_prefix))
            .collect();
        let all_pass = !round_rows.is_empty()
            && round_rows
                .iter()
                .filter(|r| r.framework == Framework::Sglang)
                .all(|r| r.status == RunStatus::Ok && r.sla.passed == Some(true));
        let mut facts = RoundFacts {
            round,
            progress,
            rows,
            round_rows,
            decided,
            per_scenario: Vec::new(),
            agent,
            agent_failure,
            gaps_before: self.state.gaps.clone(),
            gaps_after: Vec::new(),
            geomean: None,
            summary,
            title: title.chars().take(MAX_TITLE_CHARS).collect(),
            changed_sources,
            all_pass,
        };
        self.measure_gains(&mut facts)?;
        Ok(facts)
    }

    /// The round's gain per scenario and overall, and the gaps after it. A failed agent
    /// round measured nothing: no improvement, the gap as it was.
    fn measure_gains(&self, facts: &mut RoundFacts) -> Result<(), EngineError> {
        if facts.agent_failure.is_some() {
            facts.gaps_after = facts.gaps_before.clone();
            return Ok(());
        }
        let mut pairs = Vec::new();
        for s in &self.campaign.scenarios {
            let new = facts.sglang_now(&s.name).map(|(_, v)| v);
            if let (Some(old), Some(new)) = (self.state.best_value(&s.name), new) {
                pairs.push((old, new));
                facts
                    .per_scenario
                    .push(format!("{} {:+.2}%", s.name, (new / old - 1.0) * 100.0));
            }
        }
        // A scenario that had a passing best result and now has none is a regression.
        let lost = self.campaign.scenarios.iter().any(|s| {
            self.state.best_value(&s.name).is_some() && facts.sglang_now(&s.name).is_none()
        });
        facts.geomean = if lost {
            Some(-100.0)
        } else {
            geomean_improvement_pct(&pairs)
        };
        facts.gaps_after = self.gap_views(&self.read_rows()?, facts.round);
        Ok(())
    }

    /// Writes the attempt, optimization and source-idea ledgers and the round's lineage line
    /// (decision pending), each rebuilt from its text at the round's start commit so a
    /// resumed finalize never appends twice.
    fn write_ledgers(&self, facts: &RoundFacts) -> Result<RoundLedgers, EngineError> {
        let round = facts.round;
        let read_start = |rel: &str| {
            self.git
                .read_at(facts.start(), &self.paths.repo_rel(rel))
                .unwrap_or_default()
        };
        let attempt_before = read_start("humanize/attempt-ledger.md");
        let optimization_before = read_start("humanize/optimization-ledger.md");
        let idea_before = read_start("humanize/source-idea-ledger.md");
        let lineage_before = read_start("humanize/lineage.jsonl");
        let verdict_hint = facts.verdict_hint(self.campaign.noise_threshold_pct);

        let attempt = ledger::append_attempt(&attempt_before, &attempt_row(facts, &verdict_hint));
        self.write(&self.paths.attempt_ledger(), &attempt)?;

        let mut optimization = if optimization_before.is_empty() {
            ledger::ledger_header(ledger::LedgerKind::Optimization)
        } else {
            optimization_before.clone()
        };
        if let Some(row) = self.optimization_row(facts) {
            optimization = ledger::append_optimization(&optimization, &row);
        }
        self.write(&self.paths.optimization_ledger(), &optimization)?;

        let mut ideas = if idea_before.is_empty() {
            ledger::ledger_header(ledger::LedgerKind::SourceIdea)
        } else {
            idea_before
        };
        for row in source_idea_rows(facts) {
            ideas = ledger::append_source_idea(&ideas, &row);
        }
        self.write(&self.paths.source_idea_ledger(), &ideas)?;

        let lineage = LineageEntry {
            round,
            title: facts.title.clone(),
            parent_commit: Some(facts.start().to_string()),
            measured_commit: facts.measured_commit(),
            accepted: false,
            verdict: verdict_hint,
            decision: "pending".into(),
            geomean_pct: facts.geomean,
            recorded_at: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        };
        let ledgers = RoundLedgers {
            attempt_before,
            attempt,
            optimization_before,
            optimization,
            lineage_before,
            lineage,
        };
        self.write_lineage(&ledgers, &ledgers.lineage)?;
        Ok(ledgers)
    }

    /// The optimization ledger's row for a round that improved past the noise threshold with
    /// every SGLang row passing and a source change behind it.
    fn optimization_row(&self, facts: &RoundFacts) -> Option<OptimizationRow> {
        let g = facts
            .geomean
            .filter(|g| *g >= self.campaign.noise_threshold_pct)?;
        (facts.all_pass && !facts.changed_sources.is_empty()).then(|| OptimizationRow {
            round: facts.round,
            title: facts.title.clone(),
            commit: facts.measured_commit(),
            geomean_pct: g,
            per_scenario: facts.per_scenario.join(", "),
            evidence: format!("{}/rounds/round-{}/", self.paths.rel, facts.round),
        })
    }

    /// The lineage file: its text at the round's start plus the round's line.
    fn write_lineage(
        &self,
        ledgers: &RoundLedgers,
        entry: &LineageEntry,
    ) -> Result<(), EngineError> {
        self.write(
            &self.paths.lineage(),
            &format!("{}{}", ledgers.lineage_before, ledger::lineage_line(entry)),
        )
    }

    /// Runs the review gate on exactly what the round commit will hold, keeps its input as
    /// `gate-input.json`, and returns its outcome.
    fn review_gate(
        &mut self,
        facts: &RoundFacts,
        ledgers: &RoundLedgers,
    ) -> Result<GateOutcome, EngineError> {
        let evidence = self.round_evidence(facts, ledgers)?;
        let mut cfg = self.opts.gate.clone();
        cfg.noise_threshold_pct = self.campaign.noise_threshold_pct;
        cfg.max_rounds = self.campaign.max_rounds;
        cfg.wait_for_human = self.campaign.wait_for_human;
        // A failed agent round has no change to review.
        let reviewer = if facts.agent_failure.is_some() {
            None
        } else {
            self.reviewer
        };
        let gate_input = crate::gate::gate_input(&evidence, &cfg, reviewer);
        let outcome = gate_input.decide();
        self.write(
            &self.round_file(facts.round, "gate-input.json"),
            &serde_json::to_string(&gate_input).unwrap_or_default(),
        )?;
        self.progress.step(&format!(
            "round {}: gate {} · verdict {} · decision: {} ({})",
            facts.round,
            if outcome.accepted {
                "accepted"
            } else {
                "REJECTED"
            },
            outcome.verdict,
            outcome.decision.label(),
            outcome.reason
        ));
        Ok(outcome)
    }

    /// The gate's evidence, read from the staged tree the round commit will hold.
    fn round_evidence(
        &self,
        facts: &RoundFacts,
        ledgers: &RoundLedgers,
    ) -> Result<RoundEvidence, EngineError> {
        let start = facts.start();
        let sum = facts.summary_text();
        let tree = self.git.stage_all()?;
        let rel = |r: &str| self.paths.repo_rel(r);
        let agent = facts.agent.as_ref();
        Ok(RoundEvidence {
            round: facts.round,
            run_dir: self.paths.rel.clone(),
            campaign_branch: self.state.branch.clone(),
            current_branch: self.git.current_branch(),
            round_commit: None,
            measured_commit: facts.measured_commit(),
            // The round commit takes everything, the agent's uncommitted edits included.
            uncommitted_paths: Vec::new(),
            changed_paths: self.git.changed_paths(start, &tree)?,
            tracked_paths: self.git.tracked_paths(&tree)?,
            added_text: self.git.added_text(start, &tree)?,
            baseline_contract: self
                .state
                .baseline_commit
                .as_deref()
                .and_then(|b| self.git.read_at(b, &rel("benchmark/contract.json"))),
            current_contract: self.git.read_at(&tree, &rel("benchmark/contract.json")),
            baseline_rows: facts
                .rows
                .iter()
                .filter(|r| r.round == 0)
                .cloned()
                .collect(),
            round_rows: facts.round_rows.clone(),
            behind_at_start: facts.gaps_before.iter().any(|g| g.status.is_behind()),
            claims_patch: summary_claims_patch(sum),
            attempt_rows_before: ledger::count_rows(&ledgers.attempt_before),
            attempt_rows_after: ledger::count_rows(&ledgers.attempt),
            optimization_rows_before: ledger::count_rows(&ledgers.optimization_before),
            optimization_rows_after: ledger::count_rows(&ledgers.optimization),
            plan_digest_at_start: self.state.plan_digest.clone(),
            plan_digest_now: self.git.read_at(&tree, &rel("plan.md")).map(|t| digest(&t)),
            summary: facts.summary.clone(),
            geomean_improvement_pct: facts.geomean,
            gaps_after: facts.gaps_after.clone(),
            prior_verdicts: self.state.verdicts(),
            prior_improvements_pct: self.state.improvements(),
            stop_claim: parse_stop_claim(sum),
            reviewer_response: None,
            reviewer_error: None,
            source_diff: facts.progress.measured_commit.as_deref().and_then(|m| {
                self.git
                    .diff_text(start, m, &format!("{}/", self.paths.rel), 40_000)
                    .ok()
            }),
            agent: facts.agent.clone(),
            prior_agent_failures: self.state.trailing_agent_failures(),
            agent_cost_usd_total: match (
                self.state.agent_cost_usd(),
                agent.and_then(|a| a.usage.cost_usd),
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
        })
    }

    /// Rewrites the round's lineage line with the gate's answer.
    fn record_gate_in_lineage(
        &self,
        ledgers: &RoundLedgers,
        outcome: &GateOutcome,
    ) -> Result<(), EngineError> {
        let entry = LineageEntry {
            accepted: outcome.accepted,
            verdict: outcome.verdict.to_string(),
            decision: outcome.decision.label().into(),
            ..ledgers.lineage.clone()
        };
        self.write_lineage(ledgers, &entry)
    }

    /// Records the round in the checkpoint (in memory): the best SGLang results an accepted
    /// round raised, the gaps, the agent's tests and next patch, the gate's decision, the
    /// round record, and the stop when the gate stopped the campaign. The round is no
    /// longer in progress.
    fn record_round(&mut self, facts: &RoundFacts, outcome: &GateOutcome) {
        let round = facts.round;
        if outcome.accepted {
            for s in &self.campaign.scenarios {
                let Some((candidate_id, v)) = facts.sglang_now(&s.name) else {
                    continue;
                };
                if self.state.best_value(&s.name).is_none_or(|old| v > old) {
                    self.state.best_sglang.retain(|b| b.scenario != s.name);
                    self.state.best_sglang.push(BestRow {
                        scenario: s.name.clone(),
                        candidate_id: candidate_id.to_string(),
                        value: v,
                        round,
                        commit: facts.measured_commit(),
                    });
                }
            }
        }
        let sum = facts.summary_text();
        self.state.gaps = facts.gaps_after.clone();
        self.state.tests.extend(summary_field(sum, "TESTS"));
        if let Some(next) = summary_field(sum, "NEXT").into_iter().next() {
            self.state.next_planned_patch = Some(next);
        }
        self.state.replan_requested = matches!(outcome.decision, Decision::Replan);
        self.state.waiting_for_human = matches!(outcome.decision, Decision::WaitForHuman);
        self.state.rounds.push(round_record(facts, outcome));
        self.state.in_progress = None;
        if let Some(stop) = stop_record(round, &outcome.decision) {
            self.state.stop = Some(stop);
            self.state.phase = Phase::Stopped;
        }
    }

    /// Writes the review (embedded verbatim in the next prompt), the gap chart (drawn from
    /// the checkpoint, like the App's and the dashboard's), the round report and the gate's
    /// outcome into the round directory.
    fn write_round_report(
        &self,
        facts: &RoundFacts,
        outcome: &GateOutcome,
    ) -> Result<(), EngineError> {
        let round = facts.round;
        let review = report::render_review(outcome)?;
        self.write_report(&self.round_file(round, "review.md"), &review)?;
        let svg = report::render_gap_svg(
            &report::gap_series(&self.state),
            report::noise_band(&self.state),
        );
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
            title: &facts.title,
            metric: self.campaign.metric.label(),
            gaps_before: &facts.gaps_before,
            gaps_after: &facts.gaps_after,
            outcome,
            geomean_pct: facts.geomean,
            attempt_ledger_md: &attempt_md,
            chart_path: "gap-chart.svg",
            artifacts,
            agent: facts.agent.as_ref(),
        })?;
        self.write_report(&self.round_file(round, "report.md"), &report_md)?;
        let gate_json = serde_json::to_string_pretty(outcome).unwrap_or_default();
        self.write(&self.round_file(round, "gate.json"), &gate_json)
    }

    /// Commits the round (everything in the checkout) and records the commit in the
    /// checkpoint.
    fn commit_round(&mut self, facts: &RoundFacts) -> Result<(), EngineError> {
        let sha = self.commit(&round_commit_message(facts))?;
        if let Some(r) = self.state.rounds.last_mut() {
            r.commit = Some(sha);
        }
        self.save_state()
    }
}

/// The attempt ledger's row: what was tried, on which files, and how the agent ended.
fn attempt_row(facts: &RoundFacts, verdict_hint: &str) -> AttemptRow {
    let per_scenario = facts.per_scenario.join(", ");
    AttemptRow {
        round: facts.round,
        title: facts.title.clone(),
        idea: summary_field(facts.summary_text(), "IDEA").join("; "),
        files: facts.changed_sources.clone(),
        commit: facts.measured_commit(),
        geomean_pct: facts.geomean,
        verdict: verdict_hint.to_string(),
        outcome: match (&facts.agent, &facts.agent_failure) {
            (_, Some(f)) => f.describe(),
            (Some(a), None) => format!(
                "agent {} in {:.0}s ({}); {per_scenario}",
                a.outcome,
                a.duration_secs,
                a.usage.describe(),
            ),
            (None, None) => format!(
                "agent {}; {per_scenario}",
                facts.progress.agent_outcome.as_deref().unwrap_or("unknown"),
            ),
        },
    }
}

/// The source-idea ledger's rows: each `IDEA:` line of the agent's summary.
fn source_idea_rows(facts: &RoundFacts) -> Vec<SourceIdeaRow> {
    summary_field(facts.summary_text(), "IDEA")
        .into_iter()
        .map(|idea| SourceIdeaRow {
            round: facts.round,
            idea,
            evidence: "analysis/root-cause.md, analysis/layer-pipeline.md".into(),
            provenance: format!("agent summary, round {}", facts.round),
            status: if facts.changed_sources.is_empty() {
                "not tried"
            } else {
                "tried"
            }
            .into(),
        })
        .collect()
}

/// The checkpoint's record of the round (its commit is filled in once made).
fn round_record(facts: &RoundFacts, outcome: &GateOutcome) -> RoundRecord {
    RoundRecord {
        round: facts.round,
        title: facts.title.clone(),
        commit: None,
        measured_commit: facts.measured_commit(),
        accepted: outcome.accepted,
        verdict: outcome.verdict,
        decision: outcome.decision.label().into(),
        reason: outcome.reason.clone(),
        geomean_pct: facts.geomean,
        gaps: facts.gaps_after.clone(),
        changed_files: facts.changed_sources.clone(),
        agent_failed: facts.agent_failure.is_some(),
        agent_cost_usd: facts.agent.as_ref().and_then(|a| a.usage.cost_usd),
    }
}

/// The stop a gate decision records, if it stops the campaign.
fn stop_record(round: u32, decision: &Decision) -> Option<StopRecord> {
    let Decision::Stop { reason } = decision else {
        return None;
    };
    Some(StopRecord {
        after_round: round,
        reason: reason.to_string(),
        reached_sota: matches!(
            reason,
            StopReason::SglangAhead | StopReason::TiedWithinNoise
        ),
        unmeasurable: false,
    })
}

/// The round commit's message: its title, the measured SGLang commit, why nothing was
/// measured when the agent failed, and the agent's own commits folded into it.
fn round_commit_message(facts: &RoundFacts) -> String {
    let mut message = format!("sota round {}: {}\n", facts.round, facts.title);
    if let Some(m) = &facts.progress.measured_commit {
        message.push_str(&format!(
            "\nMeasured SGLang source: {m} (this commit's tree outside the run directory).\n"
        ));
    }
    if let Some(f) = &facts.agent_failure {
        message.push_str(&format!("\nNothing measured: {}.\n", f.describe()));
    }
    let folded = facts
        .agent
        .as_ref()
        .map(|a| a.commits.as_slice())
        .unwrap_or_default();
    if !folded.is_empty() {
        message.push_str("\nAgent commits folded into this round:\n");
        for c in folded {
            message.push_str(&format!("\n{c}\n"));
        }
    }
    message.trim_end().to_string()
}
