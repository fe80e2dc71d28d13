//! Gap per scenario between SGLang's best row and the best SLA-passing competitor row,
//! and the geomean improvement of SGLang between two sets of best rows.

use crate::bench::{BenchRow, RunStatus};
use crate::campaign::Framework;
use crate::gate::{GapStatus, ScenarioGapView};

/// The metric a campaign optimises (higher is better).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    OutputTokenThroughput,
    RequestThroughput,
    TotalTokenThroughput,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::OutputTokenThroughput => "output token throughput (tok/s)",
            Metric::RequestThroughput => "request throughput (req/s)",
            Metric::TotalTokenThroughput => "total token throughput (tok/s)",
        }
    }

    pub fn value(self, row: &BenchRow) -> Option<f64> {
        match self {
            Metric::OutputTokenThroughput => row.metrics.output_token_throughput,
            Metric::RequestThroughput => row.metrics.request_throughput,
            Metric::TotalTokenThroughput => row.metrics.total_token_throughput,
        }
        .filter(|v| v.is_finite())
    }
}

fn passing(row: &BenchRow) -> bool {
    row.status == RunStatus::Ok && row.sla.passed == Some(true) && !row.smoke
}

/// The best SLA-passing row of `framework` in `scenario` among `rows`.
pub fn best_row<'a>(
    rows: &'a [BenchRow],
    framework: Framework,
    scenario: &str,
    metric: Metric,
) -> Option<&'a BenchRow> {
    rows.iter()
        .filter(|r| r.framework == framework && r.scenario() == scenario && passing(r))
        .filter(|r| metric.value(r).is_some())
        .max_by(|a, b| {
            metric
                .value(a)
                .partial_cmp(&metric.value(b))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
}

/// Gap of SGLang (rows in `sglang_rows`) against competitors (rows in `competitor_rows`).
/// `repeats_done` marks scenarios whose tie was confirmed by repeat runs.
pub fn compute_gaps(
    scenarios: &[String],
    sglang_rows: &[BenchRow],
    competitor_rows: &[BenchRow],
    competitors: &[Framework],
    metric: Metric,
    noise_pct: f64,
    repeats_done: &dyn Fn(&str) -> bool,
) -> Vec<ScenarioGapView> {
    scenarios
        .iter()
        .map(|s| {
            let leader = competitors
                .iter()
                .filter_map(|f| best_row(competitor_rows, *f, s, metric))
                .max_by(|a, b| {
                    metric
                        .value(a)
                        .partial_cmp(&metric.value(b))
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
            let sg = best_row(sglang_rows, Framework::Sglang, s, metric);
            let sglang_value = sg.and_then(|r| metric.value(r));
            let leader_value = leader.and_then(|r| metric.value(r));
            let status = match (sglang_value, leader_value) {
                (_, None) => GapStatus::NoCompetitor,
                (None, Some(_)) => {
                    let sglang_ran = sglang_rows.iter().any(|r| {
                        r.framework == Framework::Sglang
                            && r.scenario() == s
                            && r.status == RunStatus::Ok
                    });
                    if sglang_ran {
                        GapStatus::SlaFail
                    } else {
                        GapStatus::NoSglang
                    }
                }
                (Some(a), Some(b)) if b > 0.0 => {
                    let gap_pct = (a / b - 1.0) * 100.0;
                    if gap_pct > noise_pct {
                        GapStatus::Ahead { gap_pct }
                    } else if gap_pct < -noise_pct {
                        GapStatus::Behind { gap_pct }
                    } else {
                        GapStatus::Tied {
                            gap_pct,
                            repeats_done: repeats_done(s),
                        }
                    }
                }
                (Some(_), Some(_)) => GapStatus::NoCompetitor,
            };
            ScenarioGapView {
                scenario: s.clone(),
                leader: leader
                    .map(|r| format!("{} `{}`", r.framework.display_name(), r.candidate_id)),
                sglang_value,
                leader_value,
                status,
            }
        })
        .collect()
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

    fn row(f: Framework, s: &str, v: f64, pass: bool) -> BenchRow {
        let mut r = BenchRow::new(f, format!("{f}-{v}"), "m", RunStatus::Ok);
        r.workload.scenario = Some(s.into());
        r.metrics.output_token_throughput = Some(v);
        r.sla.passed = Some(pass);
        r
    }

    #[test]
    fn gaps_follow_the_threshold() {
        let rows = vec![
            row(Framework::Sglang, "chat", 90.0, true),
            row(Framework::Vllm, "chat", 100.0, true),
            row(Framework::Vllm, "chat", 200.0, false),
            row(Framework::Sglang, "sum", 100.5, true),
            row(Framework::Vllm, "sum", 100.0, true),
            row(Framework::Sglang, "x", 50.0, false),
            row(Framework::Vllm, "x", 10.0, true),
        ];
        let sc: Vec<String> = ["chat", "sum", "x", "none"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let g = compute_gaps(
            &sc,
            &rows,
            &rows,
            &[Framework::Vllm],
            Metric::OutputTokenThroughput,
            1.0,
            &|_| false,
        );
        assert!(
            matches!(g[0].status, GapStatus::Behind { gap_pct } if (gap_pct + 10.0).abs() < 1e-9)
        );
        assert!(matches!(
            g[1].status,
            GapStatus::Tied {
                repeats_done: false,
                ..
            }
        ));
        assert_eq!(g[2].status, GapStatus::SlaFail);
        assert_eq!(g[3].status, GapStatus::NoCompetitor);
    }

    #[test]
    fn geomean() {
        let g = geomean_improvement_pct(&[(100.0, 110.0), (100.0, 110.0)]).unwrap();
        assert!((g - 10.0).abs() < 1e-9);
        assert_eq!(geomean_improvement_pct(&[(0.0, 1.0)]), None);
    }
}
