//! Plain facts about one finished round, gathered by the engine (or the App) from the run
//! directory and git. The gate reads nothing else.

use crate::bench::BenchRow;
use serde::{Deserialize, Serialize};

/// Text a round added to one file (for the secret scan).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangedText {
    pub path: String,
    pub text: String,
}

/// Where SGLang stands in one scenario after the round.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum GapStatus {
    /// SGLang is ahead of the best SLA-passing competitor by more than the noise threshold.
    Ahead { gap_pct: f64 },
    /// Within the noise threshold; `repeats_done` says whether repeat runs confirmed it.
    Tied { gap_pct: f64, repeats_done: bool },
    /// SGLang is slower by more than the threshold.
    Behind { gap_pct: f64 },
    /// SGLang fails the SLA while a competitor passes.
    SlaFail,
    /// No competitor produced an SLA-passing row: nothing to beat.
    NoCompetitor,
    /// SGLang produced no SLA-passing row.
    NoSglang,
}

impl GapStatus {
    /// Whether this scenario needs SGLang work.
    pub fn is_behind(self) -> bool {
        matches!(
            self,
            GapStatus::Behind { .. } | GapStatus::SlaFail | GapStatus::NoSglang
        )
    }

    /// Signed gap in percent (positive: SGLang ahead), when one was measured.
    pub fn gap_pct(self) -> Option<f64> {
        match self {
            GapStatus::Ahead { gap_pct }
            | GapStatus::Tied { gap_pct, .. }
            | GapStatus::Behind { gap_pct } => Some(gap_pct),
            _ => None,
        }
    }

    /// Short label for tables.
    pub fn label(self) -> String {
        match self {
            GapStatus::Ahead { gap_pct } => format!("ahead ({gap_pct:+.2}%)"),
            GapStatus::Tied {
                gap_pct,
                repeats_done: true,
            } => format!("tied within noise after repeats ({gap_pct:+.2}%)"),
            GapStatus::Tied { gap_pct, .. } => format!("tied, needs repeats ({gap_pct:+.2}%)"),
            GapStatus::Behind { gap_pct } => format!("behind ({gap_pct:+.2}%)"),
            GapStatus::SlaFail => "SGLang fails SLA while a competitor passes".into(),
            GapStatus::NoCompetitor => "no SLA-passing competitor".into(),
            GapStatus::NoSglang => "no SLA-passing SGLang result".into(),
        }
    }
}

/// One scenario's gap, with the leader it was measured against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioGapView {
    pub scenario: String,
    pub leader: Option<String>,
    pub sglang_value: Option<f64>,
    pub leader_value: Option<f64>,
    #[serde(flatten)]
    pub status: GapStatus,
}

/// A stop the agent claims in its summary (`STOP-CLAIM: external: <why>` or
/// `STOP-CLAIM: near-limit: <why>`); accepted only with cited evidence paths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StopClaim {
    External {
        reason: String,
        evidence: Vec<String>,
    },
    NearLimit {
        reason: String,
        evidence: Vec<String>,
    },
}

/// The Phase 0.5 history notes as the round commit holds them, their citations checked
/// again against the checkout.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HistoryEvidence {
    /// Whether `history/model-pr-history.json` is at the round commit.
    pub notes_present: bool,
    /// Commits, paths and PR numbers checked.
    pub citations: usize,
    /// Citations that no longer check out (or a note that the file does not parse).
    pub unverified: Vec<String>,
}

/// Everything the gate needs to judge one round.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RoundEvidence {
    /// RLCR round number (1-based; rows of round 0 are the fixed baseline).
    pub round: u32,
    /// Run directory relative to the repository root (`runs/YYYYMMDD_<slug>_sota_humanize`).
    pub run_dir: String,
    pub campaign_branch: String,
    /// Branch checked out when the round ended (`None`: detached HEAD).
    pub current_branch: Option<String>,
    /// The commit that closes the round (holds its artifacts).
    pub round_commit: Option<String>,
    /// The SGLang source commit the revalidation measured.
    pub measured_commit: Option<String>,
    /// Paths not committed when the round ended.
    pub uncommitted_paths: Vec<String>,
    /// Repository paths changed between the previous round's commit and this one.
    pub changed_paths: Vec<String>,
    /// Every path tracked at the round commit (for the runtime-state check).
    pub tracked_paths: Vec<String>,
    /// Text the round added, per file (for the secret scan).
    pub added_text: Vec<ChangedText>,
    /// Fingerprint of the fixed workload, SLA and competitor commands at the baseline.
    pub baseline_contract: Option<String>,
    /// The same fingerprint as the round left it.
    pub current_contract: Option<String>,
    /// Baseline rows (round 0) of the fixed benchmark.
    pub baseline_rows: Vec<BenchRow>,
    /// Rows this round appended (its revalidation).
    pub round_rows: Vec<BenchRow>,
    /// Whether SGLang was behind in any scenario when the round started.
    pub behind_at_start: bool,
    /// Whether the round's summary says it patched SGLang.
    pub claims_patch: bool,
    pub attempt_rows_before: usize,
    pub attempt_rows_after: usize,
    pub optimization_rows_before: usize,
    pub optimization_rows_after: usize,
    /// Plan file digest when the loop started and now.
    pub plan_digest_at_start: Option<String>,
    pub plan_digest_now: Option<String>,
    /// The agent's round summary.
    pub summary: Option<String>,
    /// Geomean improvement of SGLang over the prior best (percent), measured this round.
    pub geomean_improvement_pct: Option<f64>,
    /// Gap per scenario after the round's revalidation.
    pub gaps_after: Vec<ScenarioGapView>,
    /// Verdicts of the earlier rounds, oldest first.
    pub prior_verdicts: Vec<super::verdict::Verdict>,
    /// Geomean improvements of the earlier rounds, oldest first.
    pub prior_improvements_pct: Vec<f64>,
    pub stop_claim: Option<StopClaim>,
    /// Raw reviewer answer, when an LLM reviewer ran.
    pub reviewer_response: Option<String>,
    /// Why the reviewer could not answer, when it failed.
    pub reviewer_error: Option<String>,
    /// What the round's agent did (absent in rounds recorded before agents were recorded).
    #[serde(default)]
    pub agent: Option<crate::gate::agent::AgentReport>,
    /// Failed agent rounds right before this one.
    #[serde(default)]
    pub prior_agent_failures: u32,
    /// Agent cost of the whole campaign so far, this round included (USD, as reported).
    #[serde(default)]
    pub agent_cost_usd_total: Option<f64>,
    /// The round's SGLang source diff (capped), for the reviewer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_diff: Option<String>,
    /// The history notes, when the engine gathered them.
    #[serde(default)]
    pub history: Option<HistoryEvidence>,
}

impl RoundEvidence {
    /// A run-directory path as the repository sees it.
    pub fn run_path(&self, rel: &str) -> String {
        if self.run_dir.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{}", self.run_dir.trim_end_matches('/'), rel)
        }
    }

    /// The agent's failure, when the round ended before revalidation.
    pub fn agent_failure(&self) -> Option<&crate::gate::agent::AgentFailure> {
        self.agent.as_ref().and_then(|a| a.failure.as_ref())
    }

    /// Paths the round changed outside the run directory (SGLang sources).
    pub fn source_changes(&self) -> Vec<&str> {
        let prefix = format!("{}/", self.run_dir.trim_end_matches('/'));
        self.changed_paths
            .iter()
            .map(String::as_str)
            .filter(|p| self.run_dir.is_empty() || !p.starts_with(&prefix))
            .collect()
    }
}

/// Reads a `STOP-CLAIM:` line from an agent summary. Evidence paths are the backticked
/// tokens on that line.
pub fn parse_stop_claim(summary: &str) -> Option<StopClaim> {
    for line in summary.lines() {
        let Some(rest) = line.trim().strip_prefix("STOP-CLAIM:") else {
            continue;
        };
        let rest = rest.trim();
        let (kind, reason) = rest.split_once(':').unwrap_or((rest, ""));
        let evidence: Vec<String> = reason
            .split('`')
            .enumerate()
            .filter(|(i, s)| i % 2 == 1 && !s.trim().is_empty())
            .map(|(_, s)| s.trim().to_string())
            .collect();
        let reason = reason.trim().to_string();
        return match kind.trim().to_ascii_lowercase().as_str() {
            "external" => Some(StopClaim::External { reason, evidence }),
            "near-limit" | "near_limit" | "nearlimit" => {
                Some(StopClaim::NearLimit { reason, evidence })
            }
            _ => None,
        };
    }
    None
}

/// Whether the summary claims a patch: a `PATCH:` line naming what changed (or `Patched:`).
/// `PATCH: none` is an explicit no-patch round.
pub fn summary_claims_patch(summary: &str) -> bool {
    summary.lines().any(|l| {
        let l = l.trim();
        let rest = l
            .strip_prefix("PATCH:")
            .or_else(|| l.strip_prefix("Patch:"))
            .or_else(|| l.strip_prefix("Patched:"));
        matches!(rest, Some(r) if !r.trim().is_empty() && !r.trim().eq_ignore_ascii_case("none"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_claim_needs_known_kind_and_collects_evidence() {
        let s =
            "x\nSTOP-CLAIM: external: no FP8 support on this GPU, see `analysis/root-cause.md`\n";
        match parse_stop_claim(s) {
            Some(StopClaim::External { evidence, .. }) => {
                assert_eq!(evidence, vec!["analysis/root-cause.md".to_string()])
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(parse_stop_claim("STOP-CLAIM: bored: yes"), None);
        assert_eq!(parse_stop_claim("no claim"), None);
    }

    #[test]
    fn patch_claims() {
        assert!(summary_claims_patch("PATCH: faster decode kernel"));
        assert!(!summary_claims_patch("PATCH: none"));
        assert!(!summary_claims_patch("nothing"));
    }

    #[test]
    fn source_changes_exclude_run_dir() {
        let ev = RoundEvidence {
            run_dir: "runs/x".into(),
            changed_paths: vec!["runs/x/a.md".into(), "python/sglang/a.py".into()],
            ..Default::default()
        };
        assert_eq!(ev.source_changes(), vec!["python/sglang/a.py"]);
    }
}
