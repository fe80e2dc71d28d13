//! Ranking of benchmark rows and winner selection (ARCHITECTURE.md, *Benchmark rows, SLA and
//! ranking*).
//!
//! The rule, best first: non-smoke before smoke (smoke rows are flow checks and never
//! decide anything); status `ok`; SLA passed; the primary metric (request throughput by
//! default); the other throughput; lower p50 TTFT (mean when p50 is absent; absent is
//! worst); lower p50 TPOT (same); fewer GPUs. A missing throughput ranks below any real
//! value. Remaining ties are broken by identity (framework, scenario, candidate, round,
//! repeat) and finally by the row's serialized form, so the order is total and sorting
//! does not depend on the input order.
//!
//! SLA verdicts used here are always recomputed from the thresholds recorded in the row
//! (see [`sla_passed`]); an input `sla.passed` is never trusted.

use super::row::{to_jsonl_line, BenchRow, Metrics, RunStatus};
use super::sla::Sla;
use crate::framework::Framework;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The throughput a campaign optimises. Named `RankMetric` (not `PrimaryMetric`) so it does
/// not clash with the campaign request's own setting, which converts into this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RankMetric {
    /// Completed requests per second (the default).
    #[default]
    RequestThroughput,
    /// Generated tokens per second.
    OutputTokenThroughput,
}

impl RankMetric {
    /// The metric's value in a row's metrics; non-finite values count as missing.
    pub fn value(self, metrics: &Metrics) -> Option<f64> {
        let v = match self {
            RankMetric::RequestThroughput => metrics.request_throughput,
            RankMetric::OutputTokenThroughput => metrics.output_token_throughput,
        };
        v.filter(|x| x.is_finite())
    }

    /// The throughput ranked right after this one.
    pub fn secondary(self) -> RankMetric {
        match self {
            RankMetric::RequestThroughput => RankMetric::OutputTokenThroughput,
            RankMetric::OutputTokenThroughput => RankMetric::RequestThroughput,
        }
    }

    /// The name used on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            RankMetric::RequestThroughput => "request_throughput",
            RankMetric::OutputTokenThroughput => "output_token_throughput",
        }
    }

    /// A label for reports.
    pub fn label(self) -> &'static str {
        match self {
            RankMetric::RequestThroughput => "request throughput (req/s)",
            RankMetric::OutputTokenThroughput => "output token throughput (tok/s)",
        }
    }
}

impl fmt::Display for RankMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A metric name that is not a ranking metric.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown ranking metric `{0}`: expected request_throughput or output_token_throughput")]
pub struct UnknownRankMetric(pub String);

impl FromStr for RankMetric {
    type Err = UnknownRankMetric;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "request_throughput" | "requests" | "req/s" => Ok(RankMetric::RequestThroughput),
            "output_token_throughput" | "output_tokens" | "tok/s" => {
                Ok(RankMetric::OutputTokenThroughput)
            }
            _ => Err(UnknownRankMetric(s.to_string())),
        }
    }
}

/// Whether the row meets the SLA recorded in it, recomputed from its metrics. Rows that did
/// not run OK never pass. The row's own `sla.passed` is ignored.
pub fn sla_passed(row: &BenchRow) -> bool {
    row.status == RunStatus::Ok && Sla::from_row(row).passes(&row.metrics)
}

/// Writes computed SLA verdicts into every row: with `campaign_sla` when given (the
/// campaign's thresholds replace whatever the rows carried), else with each row's own
/// recorded thresholds. Any `passed` value that came with the input is overwritten.
pub fn apply_sla(rows: &mut [BenchRow], campaign_sla: Option<&Sla>) {
    for row in rows {
        match campaign_sla {
            Some(sla) => sla.apply(row),
            None => Sla::from_row(row).apply(row),
        }
    }
}

/// p50 TTFT, falling back to the mean when p50 was not reported.
pub fn ttft_ms(metrics: &Metrics) -> Option<f64> {
    metrics
        .p50_ttft_ms
        .filter(|v| v.is_finite())
        .or(metrics.mean_ttft_ms.filter(|v| v.is_finite()))
}

/// p50 TPOT, falling back to the mean when p50 was not reported.
pub fn tpot_ms(metrics: &Metrics) -> Option<f64> {
    metrics
        .p50_tpot_ms
        .filter(|v| v.is_finite())
        .or(metrics.mean_tpot_ms.filter(|v| v.is_finite()))
}

/// Higher is better; a missing value is worse than any real one.
fn higher_first(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => y.total_cmp(&x),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Lower is better; a missing value is worse than any real one.
fn lower_first<T: PartialOrd + Copy>(
    a: Option<T>,
    b: Option<T>,
    cmp: fn(&T, &T) -> Ordering,
) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => cmp(&x, &y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// `true` first.
fn true_first(a: bool, b: bool) -> Ordering {
    b.cmp(&a)
}

/// Compares two rows by the ranking rule alone (no identity tie-breaks): `Less` means `a`
/// ranks ahead of `b`. Rows that compare `Equal` here are equally good.
pub fn compare_by_rule(a: &BenchRow, b: &BenchRow, metric: RankMetric) -> Ordering {
    true_first(!a.smoke, !b.smoke)
        .then_with(|| true_first(a.status == RunStatus::Ok, b.status == RunStatus::Ok))
        .then_with(|| true_first(sla_passed(a), sla_passed(b)))
        .then_with(|| higher_first(metric.value(&a.metrics), metric.value(&b.metrics)))
        .then_with(|| {
            let s = metric.secondary();
            higher_first(s.value(&a.metrics), s.value(&b.metrics))
        })
        .then_with(|| lower_first(ttft_ms(&a.metrics), ttft_ms(&b.metrics), f64::total_cmp))
        .then_with(|| lower_first(tpot_ms(&a.metrics), tpot_ms(&b.metrics), f64::total_cmp))
        .then_with(|| lower_first(a.hardware.gpu_count, b.hardware.gpu_count, u32::cmp))
}

/// The total order used for sorting: the rule, then identity, then the serialized row.
pub fn compare_rows(a: &BenchRow, b: &BenchRow, metric: RankMetric) -> Ordering {
    compare_by_rule(a, b, metric)
        .then_with(|| a.framework.cmp(&b.framework))
        .then_with(|| a.scenario().cmp(b.scenario()))
        .then_with(|| a.candidate_id.cmp(&b.candidate_id))
        .then_with(|| a.round.cmp(&b.round))
        .then_with(|| a.repeat.cmp(&b.repeat))
        .then_with(|| to_jsonl_line(a).cmp(&to_jsonl_line(b)))
}

/// Rows sorted best first under `metric`.
pub fn rank_rows(rows: &[BenchRow], metric: RankMetric) -> Vec<BenchRow> {
    let mut sorted = rows.to_vec();
    sorted.sort_by(|a, b| compare_rows(a, b, metric));
    sorted
}

/// Whether a row may be a winner: a real (non-smoke) run that finished OK and met its SLA.
pub fn is_eligible_winner(row: &BenchRow) -> bool {
    !row.smoke
        && row.status == RunStatus::Ok
        && sla_passed(row)
        && super::measured::off_plan(row).is_none()
}

/// The best eligible row per (framework, scenario), ranked by request throughput.
pub fn winners(rows: &[BenchRow]) -> BTreeMap<(Framework, String), BenchRow> {
    winners_by(rows, RankMetric::RequestThroughput)
}

/// The best eligible row per (framework, scenario) under `metric`. Pairs with no eligible
/// row are absent.
pub fn winners_by(
    rows: &[BenchRow],
    metric: RankMetric,
) -> BTreeMap<(Framework, String), BenchRow> {
    let mut best: BTreeMap<(Framework, String), &BenchRow> = BTreeMap::new();
    for row in rows.iter().filter(|r| is_eligible_winner(r)) {
        let key = (row.framework, row.scenario().to_string());
        match best.get(&key) {
            Some(current) if compare_rows(current, row, metric) != Ordering::Greater => {}
            _ => {
                best.insert(key, row);
            }
        }
    }
    best.into_iter().map(|(k, v)| (k, v.clone())).collect()
}

/// Scenario names in first-seen order (the campaign's scenario order).
pub fn scenarios_in_order(rows: &[BenchRow]) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for row in rows {
        if !seen.iter().any(|s| s == row.scenario()) {
            seen.push(row.scenario().to_string());
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(fw: Framework, id: &str, rps: Option<f64>) -> BenchRow {
        let mut r = BenchRow::new(fw, id, "m", RunStatus::Ok);
        r.workload.scenario = Some("chat".into());
        r.metrics.request_throughput = rps;
        r.metrics.success_rate = Some(1.0);
        r
    }

    #[test]
    fn rule_order_is_status_sla_throughput_latency_gpus() {
        let mut failed = row(Framework::Vllm, "failed", Some(100.0));
        failed.status = RunStatus::Failed;
        let mut sla_fail = row(Framework::Vllm, "sla", Some(50.0));
        sla_fail.sla.max_p50_ttft_ms = Some(10.0);
        sla_fail.metrics.p50_ttft_ms = Some(20.0);
        let slow = row(Framework::Vllm, "slow", Some(5.0));
        let fast = row(Framework::Vllm, "fast", Some(6.0));
        let mut fast_more_gpus = row(Framework::Vllm, "fast2", Some(6.0));
        fast_more_gpus.hardware.gpu_count = Some(2);
        let mut fast_one_gpu = row(Framework::Vllm, "fast1", Some(6.0));
        fast_one_gpu.hardware.gpu_count = Some(1);
        let missing = row(Framework::Vllm, "missing", None);
        let ranked = rank_rows(
            &[
                failed,
                missing,
                sla_fail,
                slow,
                fast_more_gpus,
                fast,
                fast_one_gpu,
            ],
            RankMetric::RequestThroughput,
        );
        let ids: Vec<&str> = ranked.iter().map(|r| r.candidate_id.as_str()).collect();
        assert_eq!(
            ids,
            ["fast1", "fast2", "fast", "slow", "missing", "sla", "failed"]
        );
    }

    #[test]
    fn ttft_falls_back_to_mean_and_absent_is_worst() {
        let mut a = row(Framework::Vllm, "a", Some(1.0));
        a.metrics.mean_ttft_ms = Some(90.0);
        let mut b = row(Framework::Vllm, "b", Some(1.0));
        b.metrics.p50_ttft_ms = Some(100.0);
        let c = row(Framework::Vllm, "c", Some(1.0));
        let ranked = rank_rows(&[c, b, a], RankMetric::RequestThroughput);
        let ids: Vec<&str> = ranked.iter().map(|r| r.candidate_id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
    }

    #[test]
    fn output_token_metric_ranks_tokens_first() {
        let mut a = row(Framework::Vllm, "a", Some(2.0));
        a.metrics.output_token_throughput = Some(100.0);
        let mut b = row(Framework::Vllm, "b", Some(1.0));
        b.metrics.output_token_throughput = Some(200.0);
        let by_tokens = rank_rows(&[a.clone(), b.clone()], RankMetric::OutputTokenThroughput);
        assert_eq!(by_tokens[0].candidate_id, "b");
        let by_requests = rank_rows(&[a, b], RankMetric::RequestThroughput);
        assert_eq!(by_requests[0].candidate_id, "a");
    }

    #[test]
    fn winners_skip_smoke_failed_and_sla_failing_rows() {
        let mut smoke = row(Framework::Sglang, "smoke", Some(100.0));
        smoke.smoke = true;
        let mut sla_fail = row(Framework::Sglang, "sla", Some(50.0));
        sla_fail.sla.min_success_rate = Some(0.99);
        sla_fail.metrics.success_rate = Some(0.5);
        sla_fail.sla.passed = Some(true);
        let real = row(Framework::Sglang, "real", Some(10.0));
        let only_failed = {
            let mut r = row(Framework::Vllm, "x", Some(10.0));
            r.status = RunStatus::Oom;
            r
        };
        let w = winners(&[smoke, sla_fail, real, only_failed]);
        assert_eq!(w.len(), 1);
        assert_eq!(
            w[&(Framework::Sglang, "chat".to_string())].candidate_id,
            "real"
        );
    }

    #[test]
    fn metric_names_parse() {
        assert_eq!(
            "output-token-throughput".parse::<RankMetric>().unwrap(),
            RankMetric::OutputTokenThroughput
        );
        assert!("p99".parse::<RankMetric>().is_err());
    }
}
