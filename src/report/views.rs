//! View data for each template and the functions that render them.

use super::{render, RenderError};
use crate::campaign::ledger::{md_cell, tail_rows};
use crate::campaign::state::{CampaignState, Phase};
use crate::gate::{GateOutcome, ScenarioGapView, VerdictSource};
use serde::Serialize;

fn fmt_value(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "n/a".into())
}

fn fmt_pct(v: Option<f64>) -> String {
    v.map(|v| format!("{v:+.2}%"))
        .unwrap_or_else(|| "n/a".into())
}

fn short_sha(c: Option<&str>) -> String {
    c.map(|c| c.get(..10).unwrap_or(c).to_string())
        .unwrap_or_else(|| "-".into())
}

/// One scenario row of the round report's gap table.
#[derive(Debug, Clone, Serialize)]
pub struct GapRowView {
    pub scenario: String,
    pub leader: String,
    pub before: String,
    pub after: String,
    pub delta: String,
    pub status: String,
}

/// Gap rows before vs after a round, matched by scenario.
pub fn gap_rows(before: &[ScenarioGapView], after: &[ScenarioGapView]) -> Vec<GapRowView> {
    after
        .iter()
        .map(|a| {
            let b = before.iter().find(|b| b.scenario == a.scenario);
            let bg = b.and_then(|b| b.status.gap_pct());
            let ag = a.status.gap_pct();
            GapRowView {
                scenario: md_cell(&a.scenario),
                leader: md_cell(a.leader.as_deref().unwrap_or("none")),
                before: fmt_pct(bg),
                after: fmt_pct(ag),
                delta: match (bg, ag) {
                    (Some(b), Some(a)) => format!("{:+.2} pp", a - b),
                    _ => "n/a".into(),
                },
                status: md_cell(&a.status.label()),
            }
        })
        .collect()
}

/// A contract check row.
#[derive(Debug, Clone, Serialize)]
pub struct CheckView {
    pub id: String,
    pub passed: bool,
    pub result: String,
    pub reason: String,
}

/// Everything the round report shows.
#[derive(Debug, Clone, Serialize)]
pub struct RoundReportView {
    pub campaign_id: String,
    pub round: u32,
    pub title: String,
    pub decision: String,
    pub reason: String,
    pub verdict: String,
    pub verdict_source: String,
    pub full_alignment: bool,
    pub accepted: bool,
    pub research_first: bool,
    pub metric: String,
    pub gap_rows: Vec<GapRowView>,
    pub geomean: String,
    pub chart_path: String,
    pub checks: Vec<CheckView>,
    pub ledger_header: String,
    pub ledger_excerpt: Vec<String>,
    pub artifacts: Vec<String>,
    pub agent: Option<AgentView>,
}

/// The round report's agent section.
#[derive(Debug, Clone, Serialize)]
pub struct AgentView {
    pub agent: String,
    pub outcome: String,
    pub duration: String,
    pub turns: String,
    pub tokens: String,
    pub cost: String,
    pub failure: Option<String>,
    pub fix: Option<String>,
    pub commits: Vec<String>,
    pub log_tail: String,
}

fn agent_view(a: &crate::gate::AgentReport) -> AgentView {
    let u = &a.usage;
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "not reported".into());
    AgentView {
        agent: md_cell(&a.agent),
        outcome: md_cell(&a.outcome),
        duration: format!("{:.1}s", a.duration_secs),
        turns: or_dash(u.turns.map(|t| t.to_string())),
        tokens: or_dash(match (u.input_tokens, u.output_tokens) {
            (None, None) => None,
            (i, o) => Some(format!(
                "{} in / {} out",
                i.map(|v| v.to_string()).unwrap_or_else(|| "?".into()),
                o.map(|v| v.to_string()).unwrap_or_else(|| "?".into())
            )),
        }),
        cost: or_dash(u.cost_usd.map(|c| format!("${c:.4}"))),
        failure: a.failure.as_ref().map(|f| f.describe()),
        fix: a.failure.as_ref().map(|f| f.fix_hint().to_string()),
        commits: a
            .commits
            .iter()
            .map(|m| md_cell(m.lines().next().unwrap_or("")))
            .collect(),
        // A fence inside the tail would end the report's code block early.
        log_tail: a.log_tail.replace("```", "` ` `"),
    }
}

/// Inputs of a round report.
pub struct RoundReportInput<'a> {
    pub campaign_id: &'a str,
    pub title: &'a str,
    pub metric: &'a str,
    pub gaps_before: &'a [ScenarioGapView],
    pub gaps_after: &'a [ScenarioGapView],
    pub outcome: &'a GateOutcome,
    pub geomean_pct: Option<f64>,
    pub attempt_ledger_md: &'a str,
    pub chart_path: &'a str,
    pub artifacts: Vec<String>,
    /// What the round's agent did.
    pub agent: Option<&'a crate::gate::AgentReport>,
}

fn check_views(outcome: &GateOutcome) -> Vec<CheckView> {
    outcome
        .checks
        .iter()
        .map(|c| CheckView {
            id: c.id.clone(),
            passed: c.passed,
            result: if c.passed { "pass" } else { "**FAIL**" }.into(),
            reason: md_cell(&c.reason),
        })
        .collect()
}

fn decision_text(outcome: &GateOutcome) -> String {
    outcome.decision.label().to_string()
}

fn source_text(s: VerdictSource) -> &'static str {
    match s {
        VerdictSource::Reviewer => "from the LLM reviewer",
        VerdictSource::Measured => "derived from the measured geomean improvement",
        VerdictSource::AgentFailed => "nothing measured: the agent failed before revalidation",
    }
}

/// Renders the per-round report (markdown).
pub fn render_round_report(input: &RoundReportInput<'_>) -> Result<String, RenderError> {
    let o = input.outcome;
    let view = RoundReportView {
        campaign_id: input.campaign_id.into(),
        round: o.round,
        title: input.title.into(),
        decision: decision_text(o),
        reason: o.reason.clone(),
        verdict: o.verdict.to_string(),
        verdict_source: source_text(o.verdict_source).into(),
        full_alignment: o.full_alignment_review,
        accepted: o.accepted,
        research_first: o.research_first,
        metric: input.metric.into(),
        gap_rows: gap_rows(input.gaps_before, input.gaps_after),
        geomean: fmt_pct(input.geomean_pct),
        chart_path: input.chart_path.into(),
        checks: check_views(o),
        ledger_header: input
            .attempt_ledger_md
            .lines()
            .filter(|l| l.trim().starts_with('|'))
            .take(2)
            .collect::<Vec<_>>()
            .join("\n"),
        ledger_excerpt: tail_rows(input.attempt_ledger_md, 5),
        artifacts: input.artifacts.clone(),
        agent: input.agent.map(agent_view),
    };
    render("round-report", &view)
}

#[derive(Serialize)]
struct ReviewView {
    round: u32,
    verdict: String,
    verdict_source: String,
    accepted: bool,
    decision: String,
    reason: String,
    full_alignment: bool,
    checks: Vec<CheckView>,
    reviewer_text: Option<String>,
}

/// Renders the review result that the next round's prompt embeds verbatim.
pub fn render_review(outcome: &GateOutcome) -> Result<String, RenderError> {
    render(
        "review",
        &ReviewView {
            round: outcome.round,
            verdict: outcome.verdict.to_string(),
            verdict_source: source_text(outcome.verdict_source).into(),
            accepted: outcome.accepted,
            decision: decision_text(outcome),
            reason: outcome.reason.clone(),
            full_alignment: outcome.full_alignment_review,
            checks: check_views(outcome),
            reviewer_text: outcome.reviewer_text.clone(),
        },
    )
}

/// One row of the prompt's current-gap table.
#[derive(Debug, Clone, Serialize)]
pub struct PromptGapView {
    pub scenario: String,
    pub leader: String,
    pub sglang: String,
    pub leader_value: String,
    pub status: String,
}

/// Converts gap views for the prompt and plan tables.
pub fn prompt_gaps(gaps: &[ScenarioGapView]) -> Vec<PromptGapView> {
    gaps.iter()
        .map(|g| PromptGapView {
            scenario: md_cell(&g.scenario),
            leader: md_cell(g.leader.as_deref().unwrap_or("none")),
            sglang: fmt_value(g.sglang_value),
            leader_value: fmt_value(g.leader_value),
            status: md_cell(&g.status.label()),
        })
        .collect()
}

/// Everything a round prompt says.
#[derive(Debug, Clone, Serialize)]
pub struct RoundPromptView {
    pub round: u32,
    pub model: String,
    pub hardware: String,
    pub competitors: String,
    pub checkout: String,
    pub branch: String,
    pub run_dir: String,
    pub plan_path: String,
    pub summary_path: String,
    pub workload: String,
    pub sla: String,
    pub noise_threshold: String,
    pub metric: String,
    pub gaps: Vec<PromptGapView>,
    pub evidence: Vec<String>,
    pub research_first: bool,
    pub replan: bool,
    pub full_alignment: bool,
    pub last_review: Option<String>,
    /// The maintainer's `/sota continue` note for this round, verbatim.
    pub maintainer_note: Option<String>,
    /// The head of the Phase 0.5 history notes (summary, blockers, upstream PRs in flight,
    /// latest performance work), verbatim.
    pub history_quote: Option<String>,
}

/// Renders a round prompt.
pub fn render_round_prompt(view: &RoundPromptView) -> Result<String, RenderError> {
    render("round-prompt", view)
}

/// A fixed-baseline winner row of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlanWinnerView {
    pub scenario: String,
    pub framework: String,
    pub candidate: String,
    pub value: String,
    pub command: String,
}

/// Everything the plan says.
#[derive(Debug, Clone, Serialize)]
pub struct PlanView {
    pub campaign_id: String,
    pub model: String,
    pub hardware: String,
    pub branch: String,
    pub run_dir: String,
    pub checkout: String,
    pub workload: String,
    pub sla: String,
    pub metric: String,
    pub noise_threshold: String,
    pub selected: String,
    pub excluded: String,
    pub unsupported: String,
    pub max_rounds: u32,
    pub winners: Vec<PlanWinnerView>,
    pub gaps: Vec<PromptGapView>,
}

/// Renders the refined campaign plan (Phase 2).
pub fn render_plan(view: &PlanView) -> Result<String, RenderError> {
    render("plan", view)
}

/// A row of the final report's fixed benchmark table.
#[derive(Debug, Clone, Serialize)]
pub struct FixedRowView {
    pub scenario: String,
    pub framework: String,
    pub candidate: String,
    pub status: String,
    pub sla: String,
    pub value: String,
    pub ttft: String,
    pub tpot: String,
}

/// A row of the post-patch table.
#[derive(Debug, Clone, Serialize)]
pub struct PostRowView {
    pub scenario: String,
    pub sglang: String,
    pub round: String,
    pub commit: String,
    pub leader: String,
    pub leader_value: String,
    pub gap: String,
}

/// A round line of the final report.
#[derive(Debug, Clone, Serialize)]
pub struct RoundLineView {
    pub round: u32,
    pub title: String,
    pub accepted: String,
    pub verdict: String,
    pub geomean: String,
    pub decision: String,
}

/// A winner command block.
#[derive(Debug, Clone, Serialize)]
pub struct WinnerCommandView {
    pub framework: String,
    pub scenario: String,
    pub candidate: String,
    pub server_command: String,
    pub benchmark_command: String,
}

/// Everything the final report holds (ARCHITECTURE.md, *Stop conditions and the final
/// report*).
#[derive(Debug, Clone, Serialize)]
pub struct FinalReportView {
    pub campaign_id: String,
    pub model: String,
    pub hardware: String,
    pub reached_sota: bool,
    pub stop_reason: String,
    pub last_round: u32,
    pub branch: String,
    pub final_commit: String,
    pub workload: String,
    pub sla: String,
    pub selected: String,
    pub excluded: String,
    pub unsupported: String,
    pub metric: String,
    pub fixed_rows: Vec<FixedRowView>,
    pub post_rows: Vec<PostRowView>,
    pub rounds: Vec<RoundLineView>,
    pub winners: Vec<WinnerCommandView>,
    pub history_paths: Vec<String>,
    pub profile_paths: Vec<String>,
    pub layer_paths: Vec<String>,
    pub ncu_paths: Vec<String>,
    pub changed_files: Vec<String>,
    pub tests: Vec<String>,
}

/// Renders the final report.
pub fn render_final_report(view: &FinalReportView) -> Result<String, RenderError> {
    render("final-report", view)
}

/// Builds the round lines of the final report from the state.
pub fn round_lines(state: &CampaignState) -> Vec<RoundLineView> {
    state
        .rounds
        .iter()
        .map(|r| RoundLineView {
            round: r.round,
            title: md_cell(&r.title),
            accepted: if r.accepted { "yes" } else { "no" }.into(),
            verdict: r.verdict.to_string(),
            geomean: fmt_pct(r.geomean_pct),
            decision: md_cell(&r.decision),
        })
        .collect()
}

#[derive(Serialize)]
struct CheckpointWinner {
    framework: String,
    scenario: String,
    candidate: String,
    value: String,
}

#[derive(Serialize)]
struct CheckpointBest {
    scenario: String,
    candidate: String,
    value: String,
    round: u32,
    commit: String,
}

#[derive(Serialize)]
struct CheckpointGap {
    scenario: String,
    status: String,
}

#[derive(Serialize)]
struct CheckpointView<'a> {
    state: &'a CampaignState,
    tokenizer: String,
    precision: String,
    quantization: String,
    phase: String,
    baseline_commit: String,
    plan_commit: String,
    in_progress: Option<String>,
    winners: Vec<CheckpointWinner>,
    best: Vec<CheckpointBest>,
    gaps: Vec<CheckpointGap>,
    patches: Vec<String>,
    tests: Vec<String>,
    next: String,
    stop: Option<String>,
    json: String,
}

/// Renders `humanize/model-loop-checkpoint.md` with its machine-readable block.
pub fn render_checkpoint(state: &CampaignState) -> Result<String, RenderError> {
    let opt = |s: &Option<String>| s.clone().unwrap_or_else(|| "default".into());
    let view = CheckpointView {
        state,
        tokenizer: opt(&state.tokenizer),
        precision: opt(&state.precision),
        quantization: opt(&state.quantization),
        phase: format!("{:?}", state.phase).to_lowercase(),
        baseline_commit: short_sha(state.baseline_commit.as_deref()),
        plan_commit: short_sha(state.plan_commit.as_deref()),
        in_progress: state.in_progress.as_ref().map(|p| {
            format!(
                "round {} at step {:?} (started from {})",
                p.round,
                p.step,
                short_sha(Some(&p.start_commit))
            )
        }),
        winners: state
            .winners
            .iter()
            .map(|w| CheckpointWinner {
                framework: w.framework.clone(),
                scenario: md_cell(&w.scenario),
                candidate: w.candidate_id.clone(),
                value: fmt_value(w.value),
            })
            .collect(),
        best: state
            .best_sglang
            .iter()
            .map(|b| CheckpointBest {
                scenario: md_cell(&b.scenario),
                candidate: b.candidate_id.clone(),
                value: fmt_value(Some(b.value)),
                round: b.round,
                commit: short_sha(b.commit.as_deref()),
            })
            .collect(),
        gaps: state
            .gaps
            .iter()
            .map(|g| CheckpointGap {
                scenario: g.scenario.clone(),
                status: g.status.label(),
            })
            .collect(),
        patches: state
            .rounds
            .iter()
            .filter(|r| r.accepted && !r.changed_files.is_empty())
            .map(|r| {
                format!(
                    "round {}: {} ({}; {})",
                    r.round,
                    r.title,
                    short_sha(r.measured_commit.as_deref()),
                    fmt_pct(r.geomean_pct)
                )
            })
            .collect(),
        tests: state.tests.clone(),
        next: state
            .next_planned_patch
            .clone()
            .unwrap_or_else(|| "(not decided yet)".into()),
        stop: state.stop.as_ref().map(|s| {
            format!(
                "After round {}: {} (SOTA reached: {})",
                s.after_round,
                s.reason,
                if s.reached_sota { "yes" } else { "no" }
            )
        }),
        json: state.to_fenced_json(),
    };
    let _ = Phase::Started;
    render("checkpoint", &view)
}

/// One cited commit, as a notes line.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryCommitLine {
    pub sha: String,
    pub date: String,
    /// `#1234`, or empty.
    pub pr: String,
    pub subject: String,
    /// Backticked paths, comma separated.
    pub paths: String,
    /// `perf`, `revert`, `merge`, `renamed` markers, or empty.
    pub flags: String,
}

/// One area of the notes.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryAreaView {
    pub title: String,
    pub total: usize,
    pub shown: Vec<HistoryCommitLine>,
    /// Older commits left to the JSON notes.
    pub more: usize,
}

/// One upstream PR.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryPrLine {
    pub number: u64,
    pub title: String,
    pub url: String,
    pub state: String,
}

/// One curated knowledge file with its verified citations.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryKnowledgeView {
    pub path: String,
    pub framework: String,
    /// `#N` with its proving commit or API title, one per entry.
    pub prs: Vec<String>,
    pub sources: Vec<String>,
    pub symbols: Vec<String>,
    pub risks: Vec<String>,
}

/// Everything `history/model-pr-history-notes.md` says.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryNotesView {
    pub model: String,
    pub family: String,
    pub family_keys: String,
    /// Other models' keys that extend a family key, backticked, or empty.
    pub other_models: String,
    pub architectures: String,
    pub architecture_source: String,
    pub head: String,
    pub commits_read: usize,
    pub relevant: usize,
    pub model_files: Vec<String>,
    pub layer_files: Vec<String>,
    pub kernel_files: Vec<String>,
    pub json_path: String,
    /// `owner/name`, or empty when no search ran.
    pub upstream: String,
    pub in_flight: Vec<HistoryPrLine>,
    pub upstream_in_checkout: usize,
    pub latest_perf: Vec<HistoryCommitLine>,
    pub areas: Vec<HistoryAreaView>,
    pub knowledge: Vec<HistoryKnowledgeView>,
    pub blockers: Vec<String>,
}

/// Renders the Phase 0.5 history notes.
pub fn render_history_notes(view: &HistoryNotesView) -> Result<String, RenderError> {
    render("history-notes", view)
}
