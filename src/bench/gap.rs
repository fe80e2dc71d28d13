//! The per-scenario gap decision of every RLCR round (ARCHITECTURE.md, *Gap decision, fairness and
//! stagnation*).
//!
//! For each scenario, SGLang's best result is compared with the best ok + SLA-passing
//! result of the selected competitors, on the ranking's primary metric.
//!
//! **Repeats.** Rows with the same framework, candidate, scenario and round but different
//! `repeat` are one *run group*. A group's metrics are the per-field medians of its OK runs
//! and its SLA verdict is computed on those medians. Its *spread* is
//! `(max - min) / median` of the primary metric over its OK runs (unknown with one run).
//!
//! **Rows compared.** SGLang: the given round, else the latest round with SGLang rows in the
//! scenario. Competitors: for each candidate, its latest round (reruns of a winning command
//! supersede the baseline run). Smoke rows are ignored.
//!
//! **Stability rule.** With `gap = (sglang - leader) / leader * 100` (positive: SGLang ahead)
//! and threshold `t` (default 1%):
//! - `|gap| <= t` and either side has fewer than `required_repeats` (default 3) OK runs:
//!   [`GapDecision::NeedsRepeats`]; with enough runs: [`GapDecision::TiedWithinNoise`].
//! - `|gap| > t`: [`GapDecision::Ahead`] or [`GapDecision::Behind`], *stable* when both sides
//!   have `required_repeats` OK runs and each side's spread is smaller than `|gap|`.

use super::md::{self, cell, code_cell, num, signed_ms, signed_pct, MISSING};
use super::rank::{
    compare_rows, is_eligible_winner, scenarios_in_order, tpot_ms, ttft_ms, RankMetric,
};
use super::row::{BenchRow, Metrics, RunStatus};
use super::summary::rejection_reason;
use crate::framework::Framework;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Default stable-noise threshold in percent.
pub const DEFAULT_THRESHOLD_PCT: f64 = 1.0;
/// OK runs each side needs before a near-tie or a stability claim is decided.
pub const DEFAULT_REQUIRED_REPEATS: u32 = 3;

/// How gaps are decided.
#[derive(Debug, Clone, PartialEq)]
pub struct GapOptions<'a> {
    /// Stable-noise threshold in percent (default 1).
    pub threshold_pct: f64,
    /// The primary metric the gap is measured on.
    pub metric: RankMetric,
    /// SGLang round to compare; `None` takes the latest round per scenario.
    pub sglang_round: Option<u32>,
    /// The campaign's selected competitors; other frameworks' rows are ignored.
    pub selected_competitors: &'a [Framework],
    /// OK runs per side needed to decide a near-tie or call a gap stable (default 3).
    pub required_repeats: u32,
}

impl Default for GapOptions<'static> {
    fn default() -> Self {
        GapOptions {
            threshold_pct: DEFAULT_THRESHOLD_PCT,
            metric: RankMetric::RequestThroughput,
            sglang_round: None,
            selected_competitors: &Framework::COMPETITORS,
            required_repeats: DEFAULT_REQUIRED_REPEATS,
        }
    }
}

/// One side of a comparison: a run group reduced to the values the decision uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GapSide {
    pub framework: Framework,
    pub candidate_id: String,
    pub round: u32,
    /// OK runs in the group.
    pub runs: u32,
    /// Median of the primary metric over the OK runs.
    pub value: Option<f64>,
    /// `(max - min) / median * 100` of the primary metric; `None` with fewer than 2 runs.
    pub spread_pct: Option<f64>,
    /// Median p50 TTFT (mean when p50 is absent).
    pub ttft_ms: Option<f64>,
    /// Median p50 TPOT (mean when p50 is absent).
    pub tpot_ms: Option<f64>,
    /// Whether the group is OK and its median metrics meet the SLA.
    pub sla_passed: bool,
}

/// What the round should do about a scenario. `gap_pct` is signed: positive when SGLang
/// is ahead, negative when it is behind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum GapDecision {
    /// SGLang leads by more than the threshold.
    Ahead { gap_pct: f64, stable: bool },
    /// Within the threshold with enough repeats on both sides: a tie.
    TiedWithinNoise { gap_pct: f64, runs: u32 },
    /// Within the threshold but too few repeats: rerun both winning commands until each
    /// side has `runs` OK runs.
    NeedsRepeats { runs: u32 },
    /// SGLang trails by more than the threshold; patch (profile when `stable`).
    Behind { gap_pct: f64, stable: bool },
    /// SGLang has no ok + SLA-passing result while a selected competitor has one.
    SlaFailWhileCompetitorPasses { reason: String },
    /// No selected competitor has an ok + SLA-passing result with the metric.
    NoCompetitorResult,
    /// SGLang has no result with the metric in the compared round.
    NoSglangResult,
}

impl GapDecision {
    /// Short name for tables.
    pub fn label(&self) -> &'static str {
        match self {
            GapDecision::Ahead { .. } => "ahead",
            GapDecision::TiedWithinNoise { .. } => "tied within noise",
            GapDecision::NeedsRepeats { .. } => "needs repeats",
            GapDecision::Behind { .. } => "behind",
            GapDecision::SlaFailWhileCompetitorPasses { .. } => "SLA fail while competitor passes",
            GapDecision::NoCompetitorResult => "no competitor result",
            GapDecision::NoSglangResult => "no SGLang result",
        }
    }

    /// Whether the spec allows a patch for this scenario (behind by more than the threshold,
    /// or failing the SLA while a competitor passes). The fairness gate still applies.
    pub fn patch_warranted(&self) -> bool {
        matches!(
            self,
            GapDecision::Behind { .. } | GapDecision::SlaFailWhileCompetitorPasses { .. }
        )
    }

    /// Whether SGLang matches or beats the leader here (a stop condition when it holds for
    /// every scenario).
    pub fn at_sota(&self) -> bool {
        matches!(
            self,
            GapDecision::Ahead { .. } | GapDecision::TiedWithinNoise { .. }
        )
    }
}

/// The gap decision for one scenario with the evidence behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioGap {
    pub scenario: String,
    pub metric: RankMetric,
    pub threshold_pct: f64,
    /// OK runs per side the stability rule asked for.
    pub required_repeats: u32,
    /// SGLang's best run group in the compared round.
    pub sglang: Option<GapSide>,
    /// The best ok + SLA-passing selected competitor.
    pub leader: Option<GapSide>,
    /// `(sglang - leader) / leader * 100` on the metric; positive: SGLang ahead.
    pub gap_pct: Option<f64>,
    /// SGLang minus leader p50 TTFT in ms (positive: SGLang slower).
    pub ttft_delta_ms: Option<f64>,
    /// SGLang minus leader p50 TPOT in ms (positive: SGLang slower).
    pub tpot_delta_ms: Option<f64>,
    pub decision: GapDecision,
}

/// A run group: its identity, a representative row carrying the median metrics, and facts
/// about its repeats.
struct RunGroup {
    row: BenchRow,
    runs: u32,
    spread_pct: Option<f64>,
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    let upper = *values.get(mid)?;
    if values.len() % 2 == 1 {
        Some(upper)
    } else {
        values.get(mid - 1).map(|lower| (lower + upper) / 2.0)
    }
}

fn median_of(rows: &[&BenchRow], field: impl Fn(&Metrics) -> Option<f64>) -> Option<f64> {
    let mut values: Vec<f64> = rows
        .iter()
        .filter_map(|r| field(&r.metrics))
        .filter(|v| v.is_finite())
        .collect();
    median(&mut values)
}

/// Median metrics of the OK runs, field by field.
fn median_metrics(ok: &[&BenchRow]) -> Metrics {
    let mut m = ok.first().map(|r| r.metrics.clone()).unwrap_or_default();
    m.request_throughput = median_of(ok, |m| m.request_throughput);
    m.output_token_throughput = median_of(ok, |m| m.output_token_throughput);
    m.total_token_throughput = median_of(ok, |m| m.total_token_throughput);
    m.p50_ttft_ms = median_of(ok, |m| m.p50_ttft_ms);
    m.mean_ttft_ms = median_of(ok, |m| m.mean_ttft_ms);
    m.p99_ttft_ms = median_of(ok, |m| m.p99_ttft_ms);
    m.p50_tpot_ms = median_of(ok, |m| m.p50_tpot_ms);
    m.mean_tpot_ms = median_of(ok, |m| m.mean_tpot_ms);
    m.p99_tpot_ms = median_of(ok, |m| m.p99_tpot_ms);
    m.p50_e2e_ms = median_of(ok, |m| m.p50_e2e_ms);
    m.mean_e2e_ms = median_of(ok, |m| m.mean_e2e_ms);
    m.p99_e2e_ms = median_of(ok, |m| m.p99_e2e_ms);
    m.success_rate = median_of(ok, |m| m.success_rate);
    m
}

fn spread_pct(ok: &[&BenchRow], metric: RankMetric) -> Option<f64> {
    let mut values: Vec<f64> = ok.iter().filter_map(|r| metric.value(&r.metrics)).collect();
    if values.len() < 2 {
        return None;
    }
    let med = median(&mut values)?;
    let (min, max) = (values.first()?, values.last()?);
    (med > 0.0).then(|| (max - min) / med * 100.0)
}

/// Groups non-smoke rows of one scenario by (framework, candidate, round).
fn run_groups(rows: &[BenchRow], scenario: &str, metric: RankMetric) -> Vec<RunGroup> {
    let mut by_key: BTreeMap<(Framework, &str, u32), Vec<&BenchRow>> = BTreeMap::new();
    for row in rows.iter().filter(|r| !r.smoke && r.scenario() == scenario) {
        by_key
            .entry((row.framework, row.candidate_id.as_str(), row.round))
            .or_default()
            .push(row);
    }
    by_key
        .into_values()
        .filter_map(|mut members| {
            members.sort_by_key(|r| r.repeat);
            let ok: Vec<&BenchRow> = members
                .iter()
                .copied()
                .filter(|r| r.status == RunStatus::Ok)
                .collect();
            let first = ok.first().or(members.first())?;
            let mut row = (*first).clone();
            if !ok.is_empty() {
                row.metrics = median_metrics(&ok);
            }
            Some(RunGroup {
                row,
                runs: u32::try_from(ok.len()).unwrap_or(u32::MAX),
                spread_pct: spread_pct(&ok, metric),
            })
        })
        .collect()
}

fn side(group: &RunGroup, metric: RankMetric) -> GapSide {
    GapSide {
        framework: group.row.framework,
        candidate_id: group.row.candidate_id.clone(),
        round: group.row.round,
        runs: group.runs,
        value: metric.value(&group.row.metrics),
        spread_pct: group.spread_pct,
        ttft_ms: ttft_ms(&group.row.metrics),
        tpot_ms: tpot_ms(&group.row.metrics),
        sla_passed: is_eligible_winner(&group.row),
    }
}

fn best<'g>(
    groups: impl Iterator<Item = &'g RunGroup>,
    metric: RankMetric,
) -> Option<&'g RunGroup> {
    groups.min_by(|a, b| compare_rows(&a.row, &b.row, metric))
}

fn decide_scenario(rows: &[BenchRow], scenario: &str, opts: &GapOptions) -> ScenarioGap {
    let metric = opts.metric;
    let groups = run_groups(rows, scenario, metric);
    let sglang_groups: Vec<&RunGroup> = groups
        .iter()
        .filter(|g| g.row.framework == Framework::Sglang)
        .collect();
    let round = opts
        .sglang_round
        .or_else(|| sglang_groups.iter().map(|g| g.row.round).max());
    let sglang_best = best(
        sglang_groups
            .iter()
            .copied()
            .filter(|g| Some(g.row.round) == round),
        metric,
    );

    // Each competitor candidate's latest round supersedes its earlier runs.
    let mut latest: BTreeMap<(Framework, &str), &RunGroup> = BTreeMap::new();
    for g in groups.iter().filter(|g| {
        g.row.framework != Framework::Sglang && opts.selected_competitors.contains(&g.row.framework)
    }) {
        let key = (g.row.framework, g.row.candidate_id.as_str());
        if latest
            .get(&key)
            .is_none_or(|cur| cur.row.round < g.row.round)
        {
            latest.insert(key, g);
        }
    }
    let leader = best(
        latest
            .values()
            .copied()
            .filter(|g| is_eligible_winner(&g.row) && metric.value(&g.row.metrics).is_some()),
        metric,
    );

    let sglang = sglang_best.map(|g| side(g, metric));
    let leader_side = leader.map(|g| side(g, metric));
    let gap_pct = match (&sglang, &leader_side) {
        (Some(s), Some(l)) if s.sla_passed => match (s.value, l.value) {
            (Some(sv), Some(lv)) if lv > 0.0 => Some((sv - lv) / lv * 100.0),
            _ => None,
        },
        _ => None,
    };
    let delta = |f: fn(&GapSide) -> Option<f64>| match (&sglang, &leader_side) {
        (Some(s), Some(l)) => f(s).zip(f(l)).map(|(a, b)| a - b),
        _ => None,
    };
    let ttft_delta_ms = delta(|s| s.ttft_ms);
    let tpot_delta_ms = delta(|s| s.tpot_ms);

    let decision = match (sglang_best, &sglang, &leader_side) {
        (None, _, _) | (_, None, _) => GapDecision::NoSglangResult,
        (_, _, None) => GapDecision::NoCompetitorResult,
        (Some(g), Some(s), Some(l)) if !s.sla_passed => GapDecision::SlaFailWhileCompetitorPasses {
            reason: format!(
                "SGLang `{}`: {}; {} `{}` passes",
                s.candidate_id,
                rejection_reason(&g.row).unwrap_or_else(|| "not eligible".to_string()),
                l.framework.display_name(),
                l.candidate_id
            ),
        },
        (_, Some(s), Some(l)) => match gap_pct {
            None => GapDecision::NoSglangResult,
            Some(gap) => {
                let runs = s.runs.min(l.runs);
                let enough = runs >= opts.required_repeats;
                if gap.abs() <= opts.threshold_pct {
                    if enough {
                        GapDecision::TiedWithinNoise { gap_pct: gap, runs }
                    } else {
                        GapDecision::NeedsRepeats {
                            runs: opts.required_repeats,
                        }
                    }
                } else {
                    let within = |spread: Option<f64>| spread.is_some_and(|sp| sp < gap.abs());
                    let stable = enough && within(s.spread_pct) && within(l.spread_pct);
                    if gap > 0.0 {
                        GapDecision::Ahead {
                            gap_pct: gap,
                            stable,
                        }
                    } else {
                        GapDecision::Behind {
                            gap_pct: gap,
                            stable,
                        }
                    }
                }
            }
        },
    };

    ScenarioGap {
        scenario: scenario.to_string(),
        metric,
        threshold_pct: opts.threshold_pct,
        required_repeats: opts.required_repeats,
        sglang,
        leader: leader_side,
        gap_pct,
        ttft_delta_ms,
        tpot_delta_ms,
        decision,
    }
}

/// Decides the gap for every scenario present in `rows`, in first-seen scenario order.
pub fn decide_gaps(rows: &[BenchRow], opts: &GapOptions) -> Vec<ScenarioGap> {
    scenarios_in_order(rows)
        .iter()
        .map(|s| decide_scenario(rows, s, opts))
        .collect()
}

/// Geometric-mean improvement in percent of SGLang's per-scenario value from `before`
/// (the prior best result) to `after`, over scenarios where both have a positive value.
/// `None` when no scenario can be compared. Feeds the stagnation rule ([`is_stagnating`]).
pub fn geomean_improvement(before: &[ScenarioGap], after: &[ScenarioGap]) -> Option<f64> {
    let value = |g: &ScenarioGap| {
        g.sglang
            .as_ref()
            .and_then(|s| s.value)
            .filter(|v| *v > 0.0 && v.is_finite())
    };
    let logs: Vec<f64> = after
        .iter()
        .filter_map(|a| {
            let b = before.iter().find(|b| b.scenario == a.scenario)?;
            Some((value(a)? / value(b)?).ln())
        })
        .collect();
    if logs.is_empty() {
        return None;
    }
    let mean = logs.iter().sum::<f64>() / logs.len() as f64;
    Some((mean.exp() - 1.0) * 100.0)
}

/// The stagnation rule (ARCHITECTURE.md, *Gap decision, fairness and stagnation*): the last two
/// rounds each improved the geomean over the prior best SGLang result by less than `threshold_pct`.
/// `history_pct` holds one improvement per round, oldest first.
pub fn is_stagnating(history_pct: &[f64], threshold_pct: f64) -> bool {
    match history_pct {
        [.., a, b] => *a < threshold_pct && *b < threshold_pct,
        _ => false,
    }
}

fn unit(metric: RankMetric) -> &'static str {
    match metric {
        RankMetric::RequestThroughput => "req/s",
        RankMetric::OutputTokenThroughput => "tok/s",
    }
}

fn side_cell(side: Option<&GapSide>, metric: RankMetric, with_framework: bool) -> String {
    let Some(s) = side else {
        return MISSING.to_string();
    };
    let spread = match s.spread_pct {
        Some(sp) => format!(", spread {sp:.2}%"),
        None => String::new(),
    };
    let runs = if s.runs == 1 { "run" } else { "runs" };
    let who = if with_framework {
        format!(
            "{} {}",
            s.framework.display_name(),
            code_cell(&s.candidate_id)
        )
    } else {
        code_cell(&s.candidate_id)
    };
    let decimals = match metric {
        RankMetric::RequestThroughput => 3,
        RankMetric::OutputTokenThroughput => 1,
    };
    format!(
        "{who} {} {} (round {}, {} {runs}{spread})",
        num(s.value, decimals),
        unit(metric),
        s.round,
        s.runs
    )
}

/// A sentence for the decision column.
pub fn explain(gap: &ScenarioGap) -> String {
    let t = gap.threshold_pct;
    match &gap.decision {
        GapDecision::Ahead { gap_pct, stable } => format!(
            "ahead by {gap_pct:.2}% ({})",
            if *stable {
                "stable"
            } else {
                "not yet shown stable"
            }
        ),
        GapDecision::TiedWithinNoise { gap_pct, runs } => {
            format!("tied: {gap_pct:+.2}% within ±{t}% after {runs} runs each")
        }
        GapDecision::NeedsRepeats { runs } => {
            format!("within ±{t}%: rerun both winning commands until each side has {runs} ok runs")
        }
        GapDecision::Behind { gap_pct, stable } => format!(
            "behind by {:.2}% ({}): patch after the fairness gate",
            gap_pct.abs(),
            if *stable {
                "stable, profile"
            } else {
                "not yet shown stable"
            }
        ),
        GapDecision::SlaFailWhileCompetitorPasses { reason } => {
            format!("SLA fail while competitor passes: {reason}")
        }
        GapDecision::NoCompetitorResult => {
            "no ok + SLA-passing selected competitor result".to_string()
        }
        GapDecision::NoSglangResult => "no SGLang result with the metric in this round".to_string(),
    }
}

/// The stability rule as stated in reports.
pub fn rule_text(threshold_pct: f64, required_repeats: u32) -> String {
    format!(
        "Gap = (SGLang − leader) / leader on the primary metric; repeated runs are reduced to \
         their median. Within ±{threshold_pct}%: each side needs {required_repeats} ok runs \
         before the tie is accepted. Beyond ±{threshold_pct}%: the gap is stable when both \
         sides have {required_repeats} ok runs and each side's spread ((max − min) / median) \
         is smaller than |gap|. Latency deltas are SGLang minus leader (positive: SGLang slower)."
    )
}

/// Renders the gap table (scenario, SGLang best, leader, gap %, TTFT/TPOT deltas, decision)
/// followed by the stability rule.
pub fn render_gap_table_md(gaps: &[ScenarioGap]) -> String {
    let mut out = String::new();
    out.push_str(&md::header(&[
        "scenario",
        "SGLang best",
        "leader",
        "gap %",
        "p50 TTFT Δ",
        "p50 TPOT Δ",
        "decision",
    ]));
    for g in gaps {
        out.push_str(&md::row(&[
            cell(&g.scenario),
            side_cell(g.sglang.as_ref(), g.metric, false),
            side_cell(g.leader.as_ref(), g.metric, true),
            signed_pct(g.gap_pct),
            signed_ms(g.ttft_delta_ms),
            signed_ms(g.tpot_delta_ms),
            cell(&explain(g)),
        ]));
    }
    let (metric, threshold, repeats) = gaps.first().map_or(
        (
            RankMetric::default(),
            DEFAULT_THRESHOLD_PCT,
            DEFAULT_REQUIRED_REPEATS,
        ),
        |g| (g.metric, g.threshold_pct, g.required_repeats),
    );
    let _ = write!(
        out,
        "\nMetric: {}. {}\n",
        metric.label(),
        rule_text(threshold, repeats)
    );
    out
}
