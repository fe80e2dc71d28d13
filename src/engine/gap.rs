//! The engine's view of the gap: the shared decision of [`crate::bench::gap`] (medians over
//! repeats, the stability rule) applied to the rows a campaign step compares, and mapped
//! into the plain [`ScenarioGapView`] the gate and the reports read.

use crate::bench::gap::{decide_gaps, GapDecision, GapOptions, ScenarioGap};
use crate::bench::{BenchRow, RankMetric};
use crate::framework::Framework;
use crate::gate::{GapStatus, ScenarioGapView};

/// The metric a campaign optimises (higher is better); the bench ranking's metric.
pub type Metric = RankMetric;

/// What a gap decision compares, fixed for a campaign.
#[derive(Debug, Clone)]
pub struct GapRule<'a> {
    pub scenarios: &'a [String],
    pub competitors: &'a [Framework],
    pub metric: Metric,
    pub threshold_pct: f64,
    /// OK runs per side before a near-tie is decided (the shared stability rule).
    pub required_repeats: u32,
}

impl GapRule<'_> {
    /// Gap decisions for SGLang's rows of `round` against the competitors' rows of the
    /// baseline and of `round` (a competitor's rerun in the round supersedes its baseline
    /// run). One entry per campaign scenario, in campaign order.
    pub fn decide(&self, rows: &[BenchRow], round: u32) -> Vec<ScenarioGap> {
        let compared: Vec<BenchRow> = rows
            .iter()
            .filter(|r| {
                if r.framework == Framework::Sglang {
                    r.round == round
                } else {
                    r.round == 0 || r.round == round
                }
            })
            .cloned()
            .collect();
        let opts = GapOptions {
            threshold_pct: self.threshold_pct,
            metric: self.metric,
            sglang_round: Some(round),
            selected_competitors: self.competitors,
            required_repeats: self.required_repeats,
        };
        let decided = decide_gaps(&compared, &opts);
        self.scenarios
            .iter()
            .map(|s| {
                decided
                    .iter()
                    .find(|g| &g.scenario == s)
                    .cloned()
                    .unwrap_or_else(|| ScenarioGap {
                        scenario: s.clone(),
                        metric: self.metric,
                        threshold_pct: self.threshold_pct,
                        required_repeats: self.required_repeats,
                        sglang: None,
                        leader: None,
                        gap_pct: None,
                        ttft_delta_ms: None,
                        tpot_delta_ms: None,
                        decision: GapDecision::NoSglangResult,
                    })
            })
            .collect()
    }

    /// As [`GapRule::decide`], mapped for the gate.
    pub fn views(&self, rows: &[BenchRow], round: u32) -> Vec<ScenarioGapView> {
        self.decide(rows, round).iter().map(view).collect()
    }
}

/// SGLang's SLA-passing value in a decided scenario, with its candidate.
pub fn sglang_passing(gap: &ScenarioGap) -> Option<(&str, f64)> {
    let s = gap.sglang.as_ref().filter(|s| s.sla_passed)?;
    Some((s.candidate_id.as_str(), s.value?))
}

/// Maps a shared gap decision onto the gate's status. A near-tie that still needs repeats
/// is a tie whose repeats are not done.
pub fn view(gap: &ScenarioGap) -> ScenarioGapView {
    let pct = gap.gap_pct.unwrap_or(0.0);
    let status = match &gap.decision {
        GapDecision::Ahead { gap_pct, .. } => GapStatus::Ahead { gap_pct: *gap_pct },
        GapDecision::Behind { gap_pct, .. } => GapStatus::Behind { gap_pct: *gap_pct },
        GapDecision::TiedWithinNoise { gap_pct, .. } => GapStatus::Tied {
            gap_pct: *gap_pct,
            repeats_done: true,
        },
        GapDecision::NeedsRepeats { .. } => GapStatus::Tied {
            gap_pct: pct,
            repeats_done: false,
        },
        GapDecision::SlaFailWhileCompetitorPasses { .. } => GapStatus::SlaFail,
        GapDecision::NoCompetitorResult => GapStatus::NoCompetitor,
        GapDecision::NoSglangResult => GapStatus::NoSglang,
    };
    ScenarioGapView {
        scenario: gap.scenario.clone(),
        leader: gap
            .leader
            .as_ref()
            .map(|l| format!("{} `{}`", l.framework.display_name(), l.candidate_id)),
        sglang_value: sglang_passing(gap).map(|(_, v)| v),
        leader_value: gap.leader.as_ref().and_then(|l| l.value),
        status,
    }
}

/// Geomean of `new / old` across scenarios, as a percent change. `None` when no scenario
/// has both values.
pub fn geomean_improvement_pct(pairs: &[(f64, f64)]) -> Option<f64> {
    let logs: Vec<f64> = pairs
        .iter()
        .filter(|(old, new)| *old > 0.0 && *new > 0.0 && old.is_finite() && new.is_finite())
        .map(|(old, new)| (new / old).ln())
        .collect();
    if logs.is_empty() {
        return None;
    }
    let mean = logs.iter().sum::<f64>() / logs.len() as f64;
    Some((mean.exp() - 1.0) * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::RunStatus;

    fn row(f: Framework, s: &str, v: f64, pass: bool, round: u32, repeat: u32) -> BenchRow {
        let mut r = BenchRow::new(f, format!("{f}-a"), "m", RunStatus::Ok);
        r.workload.scenario = Some(s.into());
        r.metrics.output_token_throughput = Some(v);
        r.metrics.p50_ttft_ms = Some(if pass { 100.0 } else { 900.0 });
        crate::bench::Sla {
            max_p50_ttft_ms: Some(500.0),
            ..Default::default()
        }
        .apply(&mut r);
        r.round = round;
        r.repeat = repeat;
        r
    }

    fn rule(scenarios: &[String]) -> GapRule<'_> {
        GapRule {
            scenarios,
            competitors: &[Framework::Vllm],
            metric: Metric::OutputTokenThroughput,
            threshold_pct: 1.0,
            required_repeats: 3,
        }
    }

    #[test]
    fn statuses_follow_the_shared_rule() {
        let rows = vec![
            row(Framework::Sglang, "chat", 90.0, true, 0, 0),
            row(Framework::Vllm, "chat", 100.0, true, 0, 0),
            row(Framework::Sglang, "sum", 100.5, true, 0, 0),
            row(Framework::Vllm, "sum", 100.0, true, 0, 0),
            row(Framework::Sglang, "x", 50.0, false, 0, 0),
            row(Framework::Vllm, "x", 10.0, true, 0, 0),
        ];
        let sc: Vec<String> = ["chat", "sum", "x", "none"].map(String::from).to_vec();
        let g = rule(&sc).views(&rows, 0);
        assert!(
            matches!(g[0].status, GapStatus::Behind { gap_pct } if (gap_pct + 10.0).abs() < 1e-9)
        );
        assert_eq!(g[0].leader.as_deref(), Some("vLLM `vllm-a`"));
        assert!(matches!(
            g[1].status,
            GapStatus::Tied {
                repeats_done: false,
                ..
            }
        ));
        assert_eq!(g[2].status, GapStatus::SlaFail);
        assert_eq!(g[2].sglang_value, None);
        assert_eq!(g[3].status, GapStatus::NoSglang);
    }

    #[test]
    fn a_tie_is_decided_once_both_sides_have_the_repeats() {
        let mut rows = vec![row(Framework::Vllm, "chat", 100.0, true, 0, 0)];
        for rep in 0..3 {
            rows.push(row(Framework::Sglang, "chat", 100.2, true, 2, rep));
            rows.push(row(Framework::Vllm, "chat", 100.0, true, 2, rep));
        }
        let sc = vec!["chat".to_string()];
        let g = rule(&sc).views(&rows, 2);
        assert!(matches!(
            g[0].status,
            GapStatus::Tied {
                repeats_done: true,
                ..
            }
        ));
        // Round 1 rows are not compared when deciding round 2.
        rows.push(row(Framework::Vllm, "chat", 500.0, true, 1, 0));
        assert_eq!(rule(&sc).views(&rows, 2), g);
    }

    #[test]
    fn geomean() {
        let g = geomean_improvement_pct(&[(100.0, 110.0), (100.0, 110.0)]).unwrap();
        assert!((g - 10.0).abs() < 1e-9);
        assert_eq!(geomean_improvement_pct(&[(0.0, 1.0)]), None);
    }
}
