//! The gap-over-rounds chart: a hand-written SVG committed with each round report, and a
//! Mermaid `xychart-beta` block for PR comments (GitHub renders Mermaid, not SVG files).

use crate::campaign::resolve::DEFAULT_NOISE_THRESHOLD_PCT;
use crate::campaign::state::{CampaignState, WinnerRef};
use crate::framework::Framework;
use crate::gate::ScenarioGapView;
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// One scenario's gap (percent, positive = SGLang ahead) per round; round 0 is the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GapSeries {
    pub scenario: String,
    pub points: Vec<(u32, Option<f64>)>,
}

/// Gap per scenario over rounds, from the checkpoint alone, so the committed SVG, the App's
/// Mermaid chart and the dashboard draw the same numbers the round reports print: the
/// baseline is the gate's decision over the fixed benchmark (the first round report's
/// "before"), each round its recorded gap after (the report's "after"). A scenario or round
/// without a measured gap (no SLA-passing SGLang and competitor pair) is `None`.
pub fn gap_series(state: &CampaignState) -> Vec<GapSeries> {
    let baseline = Baseline::of(state);
    let mut scenarios: Vec<&str> = Vec::new();
    let named = baseline
        .decided()
        .iter()
        .chain(state.rounds.iter().flat_map(|r| r.gaps.iter()))
        .chain(state.gaps.iter())
        .map(|g| g.scenario.as_str())
        .chain(baseline.winners(state).iter().map(|w| w.scenario.as_str()));
    for s in named {
        if !scenarios.contains(&s) {
            scenarios.push(s);
        }
    }
    scenarios
        .into_iter()
        .map(|s| GapSeries {
            scenario: s.to_string(),
            points: std::iter::once((0, baseline.gap(state, s)))
                .chain(state.rounds.iter().map(|r| (r.round, gap_in(&r.gaps, s))))
                .collect(),
        })
        .collect()
}

fn gap_in(gaps: &[ScenarioGapView], scenario: &str) -> Option<f64> {
    gaps.iter()
        .find(|g| g.scenario == scenario)
        .and_then(|g| g.status.gap_pct())
}

/// Where a checkpoint keeps its baseline gaps.
enum Baseline<'a> {
    /// The gate's decision over the fixed benchmark.
    Decided(&'a [ScenarioGapView]),
    /// A checkpoint written before the decision was kept, rounds already run: the ratio of
    /// the best single SLA-passing runs (the winners), which is the decision whenever the
    /// baseline ran each candidate once. The engine records the decision at its next run.
    Winners,
}

impl<'a> Baseline<'a> {
    fn of(state: &'a CampaignState) -> Self {
        if !state.baseline_gaps.is_empty() {
            Baseline::Decided(&state.baseline_gaps)
        } else if state.rounds.is_empty() {
            // Before the first round the latest gaps are the baseline's.
            Baseline::Decided(&state.gaps)
        } else {
            Baseline::Winners
        }
    }

    fn decided(&self) -> &'a [ScenarioGapView] {
        match self {
            Baseline::Decided(g) => g,
            Baseline::Winners => &[],
        }
    }

    fn winners(&self, state: &'a CampaignState) -> &'a [WinnerRef] {
        match self {
            Baseline::Decided(_) => &[],
            Baseline::Winners => &state.winners,
        }
    }

    fn gap(&self, state: &CampaignState, scenario: &str) -> Option<f64> {
        match self {
            Baseline::Decided(g) => gap_in(g, scenario),
            Baseline::Winners => winners_gap(state, scenario),
        }
    }
}

/// SGLang's best baseline run against the best competitor's, in percent.
fn winners_gap(state: &CampaignState, scenario: &str) -> Option<f64> {
    let best = |frameworks: &[Framework]| {
        state
            .winners
            .iter()
            .filter(|w| w.scenario == scenario)
            .filter(|w| frameworks.iter().any(|f| f.canonical() == w.framework))
            .filter_map(|w| w.value)
            .reduce(f64::max)
    };
    match (best(&[Framework::Sglang]), best(&Framework::COMPETITORS)) {
        (Some(a), Some(b)) if b > 0.0 => Some((a / b - 1.0) * 100.0),
        _ => None,
    }
}

/// Half-width (percent) of the chart's noise band: the threshold the campaign's gate calls a
/// tie within, as the checkpoint records it; the campaign default for a checkpoint that
/// predates the record or holds no usable number.
pub fn noise_band(state: &CampaignState) -> f64 {
    state
        .noise_threshold_pct
        .filter(|v| v.is_finite() && *v > 0.0)
        .unwrap_or(DEFAULT_NOISE_THRESHOLD_PCT)
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 320.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 140.0;
const TOP: f64 = 32.0;
const BOTTOM: f64 = 40.0;
const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
];

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn bounds(series: &[GapSeries], noise_pct: f64) -> (u32, f64, f64) {
    let max_round = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .max()
        .unwrap_or(0)
        .max(1);
    let values: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|p| p.1))
        .filter(|v| v.is_finite())
        .collect();
    let lo = values.iter().copied().fold(-noise_pct, f64::min);
    let hi = values.iter().copied().fold(noise_pct, f64::max);
    let pad = ((hi - lo) * 0.1).max(0.5);
    (max_round, (lo - pad).floor(), (hi + pad).ceil())
}

/// Renders the chart as a standalone SVG document (no scripts, no external references).
pub fn render_gap_svg(series: &[GapSeries], noise_pct: f64) -> String {
    let (max_round, y_lo, y_hi) = bounds(series, noise_pct);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |r: u32| LEFT + plot_w * f64::from(r) / f64::from(max_round);
    let y = |v: f64| TOP + plot_h * (y_hi - v) / (y_hi - y_lo);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="18" font-size="13" font-weight="bold">SGLang gap vs best SLA-passing competitor (%), by round</text>"#
    );
    // Noise band and zero line.
    let (band_top, band_bottom) = (y(noise_pct), y(-noise_pct));
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{band_top:.1}" width="{plot_w}" height="{:.1}" fill="#eeeeee"><title>noise band ±{noise_pct}%</title></rect>"##,
        band_bottom - band_top
    );
    let _ = writeln!(
        s,
        r##"<line x1="{LEFT}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="#888888" stroke-dasharray="4 3"/>"##,
        y(0.0),
        LEFT + plot_w
    );
    // Axes.
    let _ = writeln!(
        s,
        r##"<path d="M{LEFT} {TOP} V{:.1} H{:.1}" fill="none" stroke="#333333"/>"##,
        TOP + plot_h,
        LEFT + plot_w
    );
    let ticks = 5;
    for i in 0..=ticks {
        let v = y_lo + (y_hi - y_lo) * f64::from(i) / f64::from(ticks);
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{v:.1}</text>"#,
            LEFT - 6.0,
            y(v) + 4.0
        );
    }
    let step = (max_round / 10).max(1);
    let mut r = 0;
    while r <= max_round {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x(r),
            TOP + plot_h + 16.0,
            if r == 0 {
                "base".to_string()
            } else {
                r.to_string()
            }
        );
        r += step;
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">round</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 6.0
    );
    for (i, serie) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<(f64, f64, u32, f64)> = serie
            .points
            .iter()
            .filter_map(|(r, v)| v.filter(|v| v.is_finite()).map(|v| (x(*r), y(v), *r, v)))
            .collect();
        if pts.len() > 1 {
            let path: Vec<String> = pts
                .iter()
                .map(|p| format!("{:.1},{:.1}", p.0, p.1))
                .collect();
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
                path.join(" ")
            );
        }
        for (px, py, r, v) in &pts {
            let _ = writeln!(
                s,
                r#"<circle cx="{px:.1}" cy="{py:.1}" r="3" fill="{color}"><title>{} round {r}: {v:+.2}%</title></circle>"#,
                xml_escape(&serie.scenario)
            );
        }
        let ly = TOP + 14.0 + 16.0 * i as f64;
        let lx = LEFT + plot_w + 12.0;
        let _ = writeln!(
            s,
            r#"<rect x="{lx:.1}" y="{:.1}" width="10" height="10" fill="{color}"/><text x="{:.1}" y="{ly:.1}">{}</text>"#,
            ly - 9.0,
            lx + 14.0,
            xml_escape(&serie.scenario)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// The gap chart as Markdown GitHub renders: one Mermaid `xychart-beta` per scenario, titled
/// with the scenario (Mermaid's xychart draws no legend, so one line per chart is the only
/// way to label it). A round without a measured gap is left off that chart's axis rather
/// than drawn as a value, and a scenario with no measured gap at all gets a sentence, not a
/// flat line at zero that would read as parity.
pub fn render_gap_mermaid(series: &[GapSeries], noise_pct: f64) -> String {
    let mut charts = String::new();
    let mut unmeasured = Vec::new();
    for serie in series {
        let name = serie.scenario.replace('"', "'");
        let points: Vec<(u32, f64)> = serie
            .points
            .iter()
            .filter_map(|&(r, v)| v.filter(|v| v.is_finite()).map(|v| (r, v)))
            .collect();
        if points.is_empty() {
            unmeasured.push(serie.scenario.clone());
            continue;
        }
        let (_, y_lo, y_hi) = bounds(std::slice::from_ref(serie), noise_pct);
        let axis: Vec<String> = points
            .iter()
            .map(|(r, _)| {
                if *r == 0 {
                    "\"base\"".to_string()
                } else {
                    format!("\"round {r}\"")
                }
            })
            .collect();
        let values: Vec<String> = points.iter().map(|(_, v)| format!("{v:.2}")).collect();
        let _ = writeln!(charts, "```mermaid\nxychart-beta");
        let _ = writeln!(
            charts,
            "    title \"{name}: SGLang gap to the best competitor (%)\""
        );
        let _ = writeln!(charts, "    x-axis [{}]", axis.join(", "));
        let _ = writeln!(charts, "    y-axis \"gap %\" {y_lo} --> {y_hi}");
        let _ = writeln!(charts, "    line [{}]", values.join(", "));
        let _ = writeln!(charts, "```\n");
        let missing: Vec<String> = serie
            .points
            .iter()
            .filter(|(_, v)| !v.is_some_and(f64::is_finite))
            .map(|(r, _)| {
                if *r == 0 {
                    "the baseline".to_string()
                } else {
                    format!("round {r}")
                }
            })
            .collect();
        if !missing.is_empty() {
            let _ = writeln!(
                charts,
                "_{}: no gap measured in {} (left off the chart)._\n",
                serie.scenario,
                missing.join(", ")
            );
        }
    }
    if !unmeasured.is_empty() {
        let _ = writeln!(
            charts,
            "_No gap measured yet for {}: no SGLang and competitor pair passed the SLA there._\n",
            unmeasured.join(", ")
        );
    }
    charts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::state::RoundRecord;
    use crate::gate::{GapStatus, Verdict};

    fn data() -> Vec<GapSeries> {
        vec![
            GapSeries {
                scenario: "chat".into(),
                points: vec![(0, Some(-12.0)), (1, Some(-6.5)), (2, Some(0.4))],
            },
            GapSeries {
                scenario: "summarization <8k>".into(),
                points: vec![(0, Some(-8.0)), (1, None), (2, Some(2.0))],
            },
        ]
    }

    #[test]
    fn svg_is_well_formed_and_escaped() {
        let svg = render_gap_svg(&data(), 1.0);
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("summarization &lt;8k&gt;"));
        assert_eq!(svg.matches("<circle").count(), 5);
        assert_eq!(svg.matches("<polyline").count(), 2);
    }

    #[test]
    fn mermaid_labels_each_scenario_and_leaves_missing_rounds_out() {
        let m = render_gap_mermaid(&data(), 1.0);
        assert_eq!(m.matches("```mermaid").count(), 2, "{m}");
        assert!(m.contains("title \"chat: SGLang gap"), "{m}");
        assert!(m.contains("line [-12.00, -6.50, 0.40]"), "{m}");
        assert!(m.contains("x-axis [\"base\", \"round 1\", \"round 2\"]"));
        // Round 1 of the second scenario has no gap: off its axis, never drawn as a value.
        assert!(m.contains("x-axis [\"base\", \"round 2\"]"), "{m}");
        assert!(m.contains("line [-8.00, 2.00]"), "{m}");
        assert!(
            m.contains("summarization <8k>: no gap measured in round 1"),
            "{m}"
        );
    }

    #[test]
    fn mermaid_never_draws_a_scenario_without_data_as_parity() {
        let none = vec![GapSeries {
            scenario: "long".into(),
            points: vec![(0, None), (1, None)],
        }];
        let m = render_gap_mermaid(&none, 1.0);
        assert!(!m.contains("```mermaid"), "{m}");
        assert!(!m.contains("0.00"), "{m}");
        assert!(m.contains("No gap measured yet for long"), "{m}");
    }

    fn view(scenario: &str, status: GapStatus) -> ScenarioGapView {
        ScenarioGapView {
            scenario: scenario.into(),
            leader: None,
            sglang_value: None,
            leader_value: None,
            status,
        }
    }

    fn behind(scenario: &str, gap_pct: f64) -> ScenarioGapView {
        view(scenario, GapStatus::Behind { gap_pct })
    }

    fn round(n: u32, gaps: Vec<ScenarioGapView>) -> RoundRecord {
        RoundRecord {
            round: n,
            title: format!("round {n}"),
            commit: None,
            measured_commit: None,
            accepted: true,
            verdict: Verdict::Advanced,
            decision: "continue".into(),
            reason: String::new(),
            geomean_pct: None,
            gaps,
            changed_files: vec![],
            agent_failed: false,
            agent_cost_usd: None,
        }
    }

    /// A campaign two rounds in whose best single runs (the winners) say -10% while the
    /// gate's decision over the baseline (medians over repeats) said -12%.
    fn two_rounds() -> CampaignState {
        let mut s = CampaignState::new("c", "m", "b", "runs/x", "abc");
        for (fw, v) in [("sglang", 90.0), ("vllm", 100.0)] {
            s.winners.push(WinnerRef {
                framework: fw.into(),
                scenario: "chat".into(),
                candidate_id: format!("{fw}-a"),
                value: Some(v),
                server_command: None,
                benchmark_command: None,
            });
        }
        s.baseline_gaps = vec![behind("chat", -12.0), view("long", GapStatus::NoCompetitor)];
        s.rounds = vec![
            round(
                1,
                vec![behind("chat", -7.0), view("long", GapStatus::NoCompetitor)],
            ),
            round(
                2,
                vec![behind("chat", -3.0), view("long", GapStatus::SlaFail)],
            ),
        ];
        s.gaps = s.rounds[1].gaps.clone();
        s
    }

    #[test]
    fn the_baseline_point_is_the_gates_baseline_decision_not_the_winners_ratio() {
        assert_eq!(
            gap_series(&two_rounds()),
            vec![
                GapSeries {
                    scenario: "chat".into(),
                    points: vec![(0, Some(-12.0)), (1, Some(-7.0)), (2, Some(-3.0))],
                },
                GapSeries {
                    scenario: "long".into(),
                    points: vec![(0, None), (1, None), (2, None)],
                },
            ]
        );
    }

    #[test]
    fn before_the_first_round_the_latest_gaps_are_the_baseline() {
        let mut s = two_rounds();
        s.rounds.clear();
        s.baseline_gaps.clear();
        s.gaps = vec![behind("chat", -12.0)];
        assert_eq!(
            gap_series(&s),
            vec![GapSeries {
                scenario: "chat".into(),
                points: vec![(0, Some(-12.0))],
            }]
        );
        // Nothing measured yet: no series at all.
        s.gaps.clear();
        assert!(gap_series(&s).is_empty());
    }

    #[test]
    fn an_older_checkpoint_without_the_baseline_gaps_falls_back_on_the_winners() {
        let mut s = two_rounds();
        s.baseline_gaps.clear();
        let series = gap_series(&s);
        assert_eq!(series[0].scenario, "chat");
        let (r, base) = series[0].points[0];
        assert_eq!(r, 0);
        assert!((base.unwrap() + 10.0).abs() < 1e-9, "{base:?}");
        assert_eq!(series[0].points[1..], [(1, Some(-7.0)), (2, Some(-3.0))]);
        // No competitor winner in `long`: its baseline is missing, never parity.
        assert_eq!(series[1].points, vec![(0, None), (1, None), (2, None)]);
    }

    #[test]
    fn the_noise_band_is_the_recorded_threshold_else_the_default() {
        let mut s = two_rounds();
        assert_eq!(noise_band(&s), DEFAULT_NOISE_THRESHOLD_PCT);
        s.noise_threshold_pct = Some(2.5);
        assert_eq!(noise_band(&s), 2.5);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            s.noise_threshold_pct = Some(bad);
            assert_eq!(noise_band(&s), DEFAULT_NOISE_THRESHOLD_PCT, "{bad}");
        }
    }

    #[test]
    fn empty_chart_still_renders() {
        let svg = render_gap_svg(&[], 1.0);
        assert!(svg.contains("</svg>"));
    }
}
