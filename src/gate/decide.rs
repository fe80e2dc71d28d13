//! Verdicts and decisions: the pure heart of the gate.

use super::checks::{contract_checks, CheckResult};
use super::config::GateConfig;
use super::evidence::{GapStatus, RoundEvidence, StopClaim};
use super::verdict::{parse_review, ParsedReview, Verdict};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Who produced the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictSource {
    /// The LLM reviewer's verdict line.
    Reviewer,
    /// Derived from the measured geomean improvement.
    Measured,
    /// Nothing was measured: the round's agent failed before revalidation.
    AgentFailed,
}

/// Why a campaign stops.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum StopReason {
    /// SGLang beats the best SLA-passing competitor in every scenario.
    SglangAhead,
    /// Ahead or tied within the noise threshold after repeat runs in every scenario.
    TiedWithinNoise,
    /// The remaining gap is external to SGLang.
    ProvenExternal(String),
    /// The hot path is near the hardware or algorithmic limit.
    NearHardwareLimit(String),
    /// Three consecutive rounds without progress.
    DriftStop,
    /// The round budget is spent.
    MaxRounds(u32),
    /// The reviewer ended the loop (`COMPLETE` or `STOP`).
    Reviewer(String),
    /// The campaign's agent cost budget (USD) is spent.
    AgentBudget(f64),
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::SglangAhead => f.write_str(
                "SGLang beats the best SLA-passing selected competitor in every scenario",
            ),
            StopReason::TiedWithinNoise => f.write_str(
                "SGLang is ahead or tied within the stable noise threshold after repeat runs",
            ),
            StopReason::ProvenExternal(r) => write!(f, "remaining gap proven external: {r}"),
            StopReason::NearHardwareLimit(r) => {
                write!(f, "hot path near the hardware/algorithmic limit: {r}")
            }
            StopReason::DriftStop => {
                f.write_str("drift stop: three consecutive STALLED/REGRESSED rounds")
            }
            StopReason::MaxRounds(n) => write!(f, "maximum of {n} rounds reached"),
            StopReason::Reviewer(word) => write!(f, "the reviewer ended the loop with `{word}`"),
            StopReason::AgentBudget(usd) => {
                write!(f, "the agent cost budget of ${usd:.2} is spent")
            }
        }
    }
}

/// What happens after the round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Continue,
    WaitForHuman,
    Replan,
    Stop { reason: StopReason },
}

impl Decision {
    pub fn label(&self) -> &'static str {
        match self {
            Decision::Continue => "continue",
            Decision::WaitForHuman => "wait for a human",
            Decision::Replan => "replan",
            Decision::Stop { .. } => "stop",
        }
    }
}

/// The gate's answer for one round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateOutcome {
    pub round: u32,
    pub checks: Vec<CheckResult>,
    /// Every contract check passed; a rejected round's measurements do not count.
    pub accepted: bool,
    pub verdict: Verdict,
    pub verdict_source: VerdictSource,
    pub decision: Decision,
    /// One sentence explaining the decision.
    pub reason: String,
    /// This round was a full alignment review (round % 5 == 4).
    pub full_alignment_review: bool,
    /// The next prompt must first expand code-first research (the stagnation rule).
    pub research_first: bool,
    /// The reviewer's answer, verbatim, when one ran.
    pub reviewer_text: Option<String>,
}

/// Verdict from the measured improvement: ADVANCED at or above the threshold, REGRESSED at
/// or below minus the threshold, STALLED otherwise (and when nothing was measured).
pub fn derive_measured_verdict(improvement_pct: Option<f64>, threshold_pct: f64) -> Verdict {
    match improvement_pct {
        Some(g) if g >= threshold_pct => Verdict::Advanced,
        Some(g) if g <= -threshold_pct => Verdict::Regressed,
        _ => Verdict::Stalled,
    }
}

/// The stagnation rule: two consecutive rounds under the threshold of geomean improvement.
pub fn stagnation_required(improvements_pct: &[f64], threshold_pct: f64) -> bool {
    improvements_pct.len() >= 2
        && improvements_pct
            .iter()
            .rev()
            .take(2)
            .all(|g| *g < threshold_pct)
}

/// Whether `round` is a full alignment review (every 5th round).
pub fn is_full_alignment(round: u32) -> bool {
    round % 5 == 4
}

/// Judges a round from its evidence. Pure: same evidence, same outcome.
pub fn review_round(ev: &RoundEvidence, cfg: &GateConfig) -> GateOutcome {
    let mut checks = contract_checks(ev, cfg);
    let parsed = ev.reviewer_response.as_deref().map(parse_review);
    if let Some(err) = &ev.reviewer_error {
        checks.push(CheckResult {
            id: "reviewer.answered".into(),
            passed: false,
            reason: format!("the LLM reviewer did not answer: {err}"),
        });
    }
    if let Some(p) = &parsed {
        checks.push(CheckResult {
            id: "reviewer.verdict_line".into(),
            passed: p.verdict.is_some(),
            reason: match p.verdict {
                Some(v) => format!("reviewer verdict line present: {v}"),
                None => "the reviewer answer lacks `Mainline Progress Verdict: ADVANCED | STALLED | REGRESSED`".into(),
            },
        });
    }
    let accepted = checks.iter().all(|c| c.passed);
    let measured = derive_measured_verdict(ev.geomean_improvement_pct, cfg.noise_threshold_pct);
    let (mut verdict, verdict_source) = match parsed.as_ref().and_then(|p| p.verdict) {
        _ if ev.agent_failure().is_some() => (Verdict::Stalled, VerdictSource::AgentFailed),
        Some(v) => (v, VerdictSource::Reviewer),
        None => (measured, VerdictSource::Measured),
    };
    if !accepted && verdict == Verdict::Advanced {
        // A round that broke the contract cannot count as progress.
        verdict = Verdict::Stalled;
    }
    let mut improvements = ev.prior_improvements_pct.clone();
    if ev.agent_failure().is_none() {
        improvements.push(if accepted {
            ev.geomean_improvement_pct.unwrap_or(0.0)
        } else {
            0.0
        });
    }
    let research_first = stagnation_required(&improvements, cfg.noise_threshold_pct);
    let non_advanced = ev
        .prior_verdicts
        .iter()
        .copied()
        .chain(std::iter::once(verdict))
        .rev()
        .take_while(|v| *v != Verdict::Advanced)
        .count() as u32;

    let (decision, reason) = decide(ev, cfg, accepted, &checks, parsed.as_ref(), non_advanced);
    GateOutcome {
        round: ev.round,
        checks,
        accepted,
        verdict,
        verdict_source,
        decision,
        reason,
        full_alignment_review: is_full_alignment(ev.round),
        research_first,
        reviewer_text: ev.reviewer_response.clone(),
    }
}

fn decide(
    ev: &RoundEvidence,
    cfg: &GateConfig,
    accepted: bool,
    checks: &[CheckResult],
    parsed: Option<&ParsedReview>,
    non_advanced: u32,
) -> (Decision, String) {
    let stop = |reason: StopReason| {
        let text = reason.to_string();
        (Decision::Stop { reason }, text)
    };
    if let (Some(max), Some(spent)) = (cfg.max_agent_cost_usd, ev.agent_cost_usd_total) {
        if spent >= max {
            return stop(StopReason::AgentBudget(max));
        }
    }
    if let Some(failure) = ev.agent_failure() {
        // A failed agent round measured nothing: it neither advances nor drifts the loop.
        let in_a_row = ev.prior_agent_failures + 1;
        if in_a_row >= cfg.agent_hold_after.max(1) {
            return (
                Decision::WaitForHuman,
                super::agent::hold_reason(failure, in_a_row),
            );
        }
        if ev.round >= cfg.max_rounds {
            return stop(StopReason::MaxRounds(cfg.max_rounds));
        }
        return (
            Decision::Continue,
            format!(
                "{}; nothing was measured and the next round runs the agent again",
                failure.describe()
            ),
        );
    }
    if accepted {
        if let Some(reason) = stop_condition(ev, cfg) {
            return stop(reason);
        }
        if let Some(word) = parsed.and_then(|p| p.end_word.clone()) {
            return stop(StopReason::Reviewer(word));
        }
    }
    if non_advanced >= cfg.drift_stop_after {
        return stop(StopReason::DriftStop);
    }
    if ev.round >= cfg.max_rounds {
        return stop(StopReason::MaxRounds(cfg.max_rounds));
    }
    if non_advanced >= cfg.replan_after {
        return (
            Decision::Replan,
            format!(
                "{non_advanced} consecutive STALLED/REGRESSED rounds: replan before the next patch"
            ),
        );
    }
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.id.as_str())
        .collect();
    let why = if accepted {
        "contract holds and the gap remains".to_string()
    } else {
        format!(
            "round rejected by contract check(s) {}: the next round must repair them",
            failed.join(", ")
        )
    };
    if cfg.wait_for_human {
        (
            Decision::WaitForHuman,
            format!("{why}; waiting for a human to continue"),
        )
    } else {
        (Decision::Continue, why)
    }
}

/// The stop conditions (ARCHITECTURE.md, *Stop conditions and the final report*) over the
/// post-round gaps and the agent's stop claim.
fn stop_condition(ev: &RoundEvidence, cfg: &GateConfig) -> Option<StopReason> {
    let _ = cfg;
    let gaps: Vec<GapStatus> = ev.gaps_after.iter().map(|g| g.status).collect();
    let decisive = !gaps.is_empty()
        && gaps
            .iter()
            .any(|g| !matches!(g, GapStatus::NoCompetitor | GapStatus::NoSglang));
    if decisive
        && gaps
            .iter()
            .all(|g| matches!(g, GapStatus::Ahead { .. } | GapStatus::NoCompetitor))
    {
        return Some(StopReason::SglangAhead);
    }
    if decisive
        && gaps.iter().all(|g| {
            matches!(
                g,
                GapStatus::Ahead { .. }
                    | GapStatus::NoCompetitor
                    | GapStatus::Tied {
                        repeats_done: true,
                        ..
                    }
            )
        })
    {
        return Some(StopReason::TiedWithinNoise);
    }
    match &ev.stop_claim {
        Some(StopClaim::External { reason, evidence }) if !evidence.is_empty() => {
            Some(StopReason::ProvenExternal(reason.clone()))
        }
        Some(StopClaim::NearLimit { reason, evidence }) if !evidence.is_empty() => {
            Some(StopReason::NearHardwareLimit(reason.clone()))
        }
        _ => None,
    }
}

/// Why a fixed baseline cannot support any round: no SGLang candidate produced a result, or
/// no candidate of any selected competitor did. Names each failed candidate and its reason.
pub fn unmeasurable_baseline(
    rows: &[crate::bench::BenchRow],
    competitors: &[crate::framework::Framework],
) -> Option<String> {
    use crate::bench::RunStatus;
    use crate::framework::Framework;
    let failures = |fws: &[Framework]| -> Option<String> {
        let of: Vec<&crate::bench::BenchRow> =
            rows.iter().filter(|r| fws.contains(&r.framework)).collect();
        if of.iter().any(|r| r.status == RunStatus::Ok) {
            return None;
        }
        let mut seen: Vec<String> = Vec::new();
        for r in &of {
            let line = format!(
                "`{}` {}: {}",
                r.candidate_id,
                r.status,
                r.failure_reason.as_deref().unwrap_or("no reason recorded")
            );
            if !seen.contains(&line) {
                seen.push(line);
            }
        }
        Some(if seen.is_empty() {
            "no candidate ran".to_string()
        } else {
            seen.join("; ")
        })
    };
    if let Some(why) = failures(&[Framework::Sglang]) {
        return Some(format!(
            "the fixed baseline has no SGLang result, so no gap can be measured ({why})"
        ));
    }
    if competitors.is_empty() {
        return None;
    }
    failures(competitors).map(|why| {
        let names: Vec<&str> = competitors.iter().map(|f| f.display_name()).collect();
        format!(
            "the fixed baseline has no result of any selected competitor ({}), so there is nothing to match ({why})",
            names.join(", ")
        )
    })
}

/// The decision for a campaign that has only its baseline: stop when the fixed benchmark
/// already shows SGLang ahead (or tied after repeats) everywhere.
pub fn baseline_stop(gaps: &[super::evidence::ScenarioGapView]) -> Option<StopReason> {
    let ev = RoundEvidence {
        gaps_after: gaps.to_vec(),
        ..Default::default()
    };
    stop_condition(&ev, &GateConfig::default())
}
