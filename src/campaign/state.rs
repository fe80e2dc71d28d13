//! Campaign progress as plain data, persisted as a fenced JSON block inside
//! `humanize/model-loop-checkpoint.md` so that a campaign resumes from its committed run
//! directory alone.

use crate::bench::BenchRow;
use crate::gate::{ScenarioGapView, Verdict};
use serde::{Deserialize, Serialize};

/// Opening fence of the machine-readable block in the checkpoint.
pub const CHECKPOINT_FENCE: &str = "```json sota-checkpoint";

/// Where the campaign is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Branch and run directory exist.
    Started,
    /// Phase 0.5 notes written.
    HistoryDone,
    /// Phase 1 fixed benchmark complete and committed.
    BaselineDone,
    /// Phase 2 plan committed; rounds may run.
    PlanDone,
    /// The loop ended (see `stop`).
    Stopped,
}

/// Steps inside one round, recorded so a crash resumes at the right one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundStep {
    /// Evidence (profiles, analysis) and prompt written.
    Prepared,
    /// The agent finished (or timed out) and its work is committed.
    AgentDone,
    /// Revalidation rows are all recorded.
    Revalidated,
}

/// A round that has started but not been committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundProgress {
    pub round: u32,
    pub step: RoundStep,
    /// HEAD before the agent ran.
    pub start_commit: String,
    /// SGLang commit the revalidation measures (after the agent).
    pub measured_commit: Option<String>,
    /// How the agent run ended (`ok`, `timeout after 30s`, `exit 3`).
    pub agent_outcome: Option<String>,
    /// Paths the agent left uncommitted (the gate rejects such a round).
    #[serde(default)]
    pub agent_left_uncommitted: Vec<String>,
    /// What the agent did (set when it finished).
    #[serde(default)]
    pub agent: Option<crate::gate::AgentReport>,
}

/// A winning command (per framework and scenario) of the fixed benchmark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WinnerRef {
    pub framework: String,
    pub scenario: String,
    pub candidate_id: String,
    pub value: Option<f64>,
    pub server_command: Option<String>,
    pub benchmark_command: Option<String>,
}

/// The best SGLang result per scenario so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestRow {
    pub scenario: String,
    pub candidate_id: String,
    pub value: f64,
    pub round: u32,
    pub commit: Option<String>,
}

/// One finished round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundRecord {
    pub round: u32,
    pub title: String,
    /// The round's commit. A commit cannot hold its own id, so the branch records it with
    /// the next commit; until then readers find it from the history (the newest commit
    /// that changed the round's `gate.json`).
    pub commit: Option<String>,
    pub measured_commit: Option<String>,
    pub accepted: bool,
    pub verdict: Verdict,
    pub decision: String,
    pub reason: String,
    pub geomean_pct: Option<f64>,
    pub gaps: Vec<ScenarioGapView>,
    pub changed_files: Vec<String>,
    /// The agent failed before revalidation: nothing was measured this round.
    #[serde(default)]
    pub agent_failed: bool,
    /// The agent's reported cost this round (USD).
    #[serde(default)]
    pub agent_cost_usd: Option<f64>,
}

/// Why and when the loop ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StopRecord {
    pub after_round: u32,
    pub reason: String,
    pub reached_sota: bool,
    /// The fixed baseline could not measure SGLang or any selected competitor, so no
    /// round could ever decide anything.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unmeasurable: bool,
}

/// Everything needed to resume a campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignState {
    pub version: u32,
    pub campaign_id: String,
    pub model: String,
    pub tokenizer: Option<String>,
    pub precision: Option<String>,
    pub quantization: Option<String>,
    pub hardware: String,
    pub workload: String,
    pub sla: String,
    pub branch: String,
    /// Run directory relative to the checkout root.
    pub run_dir: String,
    /// Commit the campaign branch started from.
    pub base_commit: String,
    pub phase: Phase,
    pub baseline_commit: Option<String>,
    pub plan_commit: Option<String>,
    /// Digest of the plan file when the loop started.
    pub plan_digest: Option<String>,
    pub winners: Vec<WinnerRef>,
    pub best_sglang: Vec<BestRow>,
    /// The gap per scenario the fixed baseline decided (the gate's rule over round-0 rows):
    /// every chart's starting point and the first round report's "before". Kept apart from
    /// `gaps`, which each round overwrites. Empty in checkpoints written before it existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baseline_gaps: Vec<ScenarioGapView>,
    /// The gap after the latest round (the baseline's before any round).
    pub gaps: Vec<ScenarioGapView>,
    pub rounds: Vec<RoundRecord>,
    pub tests: Vec<String>,
    pub next_planned_patch: Option<String>,
    pub in_progress: Option<RoundProgress>,
    pub waiting_for_human: bool,
    pub replan_requested: bool,
    pub stop: Option<StopRecord>,
    /// What happened to the runs themselves: interruptions (signal and step) and a resume
    /// with another configuration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run_events: Vec<RunEvent>,
    /// The noise threshold (percent) the gate decides ties and stalls with, so readers of the
    /// checkpoint alone (the App's comments, the dashboard) draw the same noise band. Absent
    /// in checkpoints written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_threshold_pct: Option<f64>,
}

/// Something that happened to a run of the campaign rather than in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunEvent {
    /// Local time, `YYYY-MM-DD HH:MM:SS`.
    pub at: String,
    /// `interrupted` or `config_changed`.
    pub kind: String,
    pub detail: String,
}

impl CampaignState {
    /// Where the campaign stands, in words for an interruption record
    /// ("round 2 at the agent step", "the fixed baseline").
    pub fn position(&self) -> String {
        match (&self.in_progress, self.phase) {
            (Some(p), _) => format!("round {} after step {:?}", p.round, p.step),
            (None, Phase::Started) => "the model history step".into(),
            (None, Phase::HistoryDone) => "the fixed baseline".into(),
            (None, Phase::BaselineDone) => "the plan".into(),
            (None, Phase::PlanDone) => format!("the start of round {}", self.next_round()),
            (None, Phase::Stopped) => "the end of the campaign".into(),
        }
    }

    /// A campaign that has just started.
    pub fn new(campaign_id: &str, model: &str, branch: &str, run_dir: &str, base: &str) -> Self {
        CampaignState {
            version: 1,
            campaign_id: campaign_id.into(),
            model: model.into(),
            tokenizer: None,
            precision: None,
            quantization: None,
            hardware: String::new(),
            workload: String::new(),
            sla: String::new(),
            branch: branch.into(),
            run_dir: run_dir.into(),
            base_commit: base.into(),
            phase: Phase::Started,
            baseline_commit: None,
            plan_commit: None,
            plan_digest: None,
            winners: Vec::new(),
            best_sglang: Vec::new(),
            baseline_gaps: Vec::new(),
            gaps: Vec::new(),
            rounds: Vec::new(),
            tests: Vec::new(),
            next_planned_patch: None,
            in_progress: None,
            waiting_for_human: false,
            replan_requested: false,
            stop: None,
            run_events: Vec::new(),
            noise_threshold_pct: None,
        }
    }

    /// The next round number to run (1-based).
    pub fn next_round(&self) -> u32 {
        match &self.in_progress {
            Some(p) => p.round,
            None => self.rounds.last().map(|r| r.round + 1).unwrap_or(1),
        }
    }

    /// Verdicts of finished rounds, oldest first.
    /// Verdicts of measured rounds (failed agent rounds measured nothing and are left out).
    pub fn verdicts(&self) -> Vec<Verdict> {
        self.rounds
            .iter()
            .filter(|r| !r.agent_failed)
            .map(|r| r.verdict)
            .collect()
    }

    /// Failed agent rounds at the end of the campaign so far.
    pub fn trailing_agent_failures(&self) -> u32 {
        self.rounds
            .iter()
            .rev()
            .take_while(|r| r.agent_failed)
            .count() as u32
    }

    /// The agent cost reported over all rounds (USD), `None` when no round reported any.
    pub fn agent_cost_usd(&self) -> Option<f64> {
        self.rounds
            .iter()
            .filter_map(|r| r.agent_cost_usd)
            .reduce(|a, b| a + b)
    }

    /// Geomean improvements of finished rounds (rejected rounds count as 0).
    pub fn improvements(&self) -> Vec<f64> {
        self.rounds
            .iter()
            .filter(|r| !r.agent_failed)
            .map(|r| {
                if r.accepted {
                    r.geomean_pct.unwrap_or(0.0)
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// The best SGLang row value for a scenario.
    pub fn best_value(&self, scenario: &str) -> Option<f64> {
        self.best_sglang
            .iter()
            .find(|b| b.scenario == scenario)
            .map(|b| b.value)
    }

    /// Renders the machine-readable fenced block.
    pub fn to_fenced_json(&self) -> String {
        let json = serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"serialization_error\":{:?}}}", e.to_string()));
        format!("{CHECKPOINT_FENCE}\n{json}\n```\n")
    }
}

/// A checkpoint that could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StateError {
    #[error("checkpoint has no `{CHECKPOINT_FENCE}` block")]
    NoBlock,
    #[error("checkpoint block starting at line {line} is not closed with ```")]
    Unclosed { line: usize },
    #[error("checkpoint block at line {line}: {message}")]
    Json { line: usize, message: String },
}

/// Reads the state from checkpoint markdown.
pub fn parse_checkpoint(markdown: &str) -> Result<CampaignState, StateError> {
    let lines: Vec<&str> = markdown.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim() == CHECKPOINT_FENCE)
        .ok_or(StateError::NoBlock)?;
    let body_start = start + 1;
    let end = lines
        .iter()
        .skip(body_start)
        .position(|l| l.trim() == "```")
        .map(|p| p + body_start)
        .ok_or(StateError::Unclosed { line: start + 1 })?;
    let body = lines.get(body_start..end).unwrap_or_default().join("\n");
    serde_json::from_str(&body).map_err(|e| StateError::Json {
        line: body_start + e.line(),
        message: e.to_string(),
    })
}

/// Key identifying a row's run, so a resumed search never records the same run twice.
pub fn row_key(row: &BenchRow) -> String {
    format!(
        "{}|{}|{}|{}|{}",
        row.framework.canonical(),
        row.candidate_id,
        row.scenario(),
        row.round,
        row.repeat
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_through_markdown() {
        let mut s = CampaignState::new("c1", "m", "sota/x", "runs/x", "abc");
        s.phase = Phase::PlanDone;
        s.in_progress = Some(RoundProgress {
            round: 2,
            step: RoundStep::AgentDone,
            start_commit: "abc".into(),
            measured_commit: Some("def".into()),
            agent_outcome: Some("ok".into()),
            agent_left_uncommitted: vec![],
            agent: None,
        });
        let md = format!("# Checkpoint\n\ntext\n\n{}\nmore\n", s.to_fenced_json());
        assert_eq!(parse_checkpoint(&md).unwrap(), s);
        assert_eq!(s.next_round(), 2);
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(parse_checkpoint("x"), Err(StateError::NoBlock));
        assert!(matches!(
            parse_checkpoint(&format!("{CHECKPOINT_FENCE}\n{{}}\n")),
            Err(StateError::Unclosed { line: 1 })
        ));
        assert!(matches!(
            parse_checkpoint(&format!("{CHECKPOINT_FENCE}\n{{\"version\":1}}\n```")),
            Err(StateError::Json { .. })
        ));
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = parse_checkpoint(&s);
            let _ = parse_checkpoint(&format!("{CHECKPOINT_FENCE}\n{s}\n```"));
        }
    }
}
