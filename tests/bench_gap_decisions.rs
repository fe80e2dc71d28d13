//! Gap decision rules (ARCHITECTURE.md, *Gap decision, fairness and stagnation*) and the stagnation
//! rule (step 8).

use proptest::prelude::*;
use sota_bot::bench::gap::{
    decide_gaps, geomean_improvement, is_stagnating, render_gap_table_md, GapDecision, GapOptions,
    ScenarioGap,
};
use sota_bot::bench::rank::{apply_sla, RankMetric};
use sota_bot::bench::row::{parse_jsonl, BenchRow, RunStatus};
use sota_bot::framework::Framework;

fn run(fw: Framework, cand: &str, rps: f64, round: u32, repeat: u32) -> BenchRow {
    let mut r = BenchRow::new(fw, cand, "m", RunStatus::Ok);
    r.workload.scenario = Some("chat".into());
    r.metrics.request_throughput = Some(rps);
    r.metrics.output_token_throughput = Some(rps * 1000.0);
    r.metrics.p50_ttft_ms = Some(100.0);
    r.metrics.p50_tpot_ms = Some(10.0);
    r.metrics.success_rate = Some(1.0);
    r.sla.max_p50_ttft_ms = Some(2000.0);
    r.round = round;
    r.repeat = repeat;
    r
}

fn repeats(fw: Framework, cand: &str, values: &[f64], round: u32) -> Vec<BenchRow> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| run(fw, cand, *v, round, i as u32))
        .collect()
}

fn decide(rows: &[BenchRow]) -> ScenarioGap {
    let gaps = decide_gaps(rows, &GapOptions::default());
    assert_eq!(gaps.len(), 1);
    gaps.into_iter().next().unwrap()
}

#[test]
fn behind_by_more_than_the_threshold_on_single_runs_is_unstable() {
    let g = decide(&[
        run(Framework::Sglang, "s", 2.0, 0, 0),
        run(Framework::Vllm, "v", 2.2, 0, 0),
    ]);
    match g.decision {
        GapDecision::Behind { gap_pct, stable } => {
            assert!((gap_pct - (-9.0909)).abs() < 1e-3, "{gap_pct}");
            assert!(!stable, "one run per side cannot show stability");
        }
        other => panic!("{other:?}"),
    }
    assert!(g.decision.patch_warranted());
    assert_eq!(g.leader.unwrap().framework, Framework::Vllm);
}

#[test]
fn repeated_runs_use_medians_and_stability_needs_small_spread() {
    let mut rows = repeats(Framework::Sglang, "s", &[2.0, 2.01, 1.99], 1);
    rows.extend(repeats(Framework::Vllm, "v", &[2.2, 2.21, 2.19], 1));
    let g = decide(&rows);
    assert_eq!(g.sglang.as_ref().unwrap().runs, 3);
    assert_eq!(g.sglang.as_ref().unwrap().value, Some(2.0));
    assert!(
        matches!(g.decision, GapDecision::Behind { stable: true, .. }),
        "{:?}",
        g.decision
    );

    // A noisy competitor (spread ~36%) makes a 9% gap unstable.
    let mut rows = repeats(Framework::Sglang, "s", &[2.0, 2.01, 1.99], 1);
    rows.extend(repeats(Framework::Vllm, "v", &[2.2, 2.6, 1.8], 1));
    assert!(matches!(
        decide(&rows).decision,
        GapDecision::Behind { stable: false, .. }
    ));
}

#[test]
fn near_ties_need_repeats_then_resolve_to_a_tie() {
    let g = decide(&[
        run(Framework::Sglang, "s", 2.0, 0, 0),
        run(Framework::Vllm, "v", 2.01, 0, 0),
    ]);
    assert_eq!(g.decision, GapDecision::NeedsRepeats { runs: 3 });
    assert!(!g.decision.at_sota());

    let mut rows = repeats(Framework::Sglang, "s", &[2.0, 2.0, 2.0], 0);
    rows.extend(repeats(Framework::Vllm, "v", &[2.01, 2.0, 2.02], 0));
    let g = decide(&rows);
    assert!(
        matches!(g.decision, GapDecision::TiedWithinNoise { runs: 3, .. }),
        "{:?}",
        g.decision
    );
    assert!(g.decision.at_sota());
}

#[test]
fn ahead_when_sglang_leads() {
    let g = decide(&[
        run(Framework::Sglang, "s", 2.5, 0, 0),
        run(Framework::Tokenspeed, "t", 2.0, 0, 0),
    ]);
    assert!(matches!(
        g.decision,
        GapDecision::Ahead { stable: false, .. }
    ));
    assert!((g.gap_pct.unwrap() - 25.0).abs() < 1e-9);
}

#[test]
fn sla_failure_while_competitor_passes() {
    let mut s = run(Framework::Sglang, "s", 3.0, 0, 0);
    s.metrics.p50_ttft_ms = Some(2345.0);
    s.sla.passed = Some(true); // input verdict is ignored
    let g = decide(&[s, run(Framework::Vllm, "v", 2.0, 0, 0)]);
    match &g.decision {
        GapDecision::SlaFailWhileCompetitorPasses { reason } => {
            assert!(reason.contains("p50 TTFT 2345.0 ms > 2000 ms"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(g.decision.patch_warranted());
}

#[test]
fn missing_sides() {
    let g = decide(&[run(Framework::Sglang, "s", 2.0, 0, 0)]);
    assert_eq!(g.decision, GapDecision::NoCompetitorResult);
    let g = decide(&[run(Framework::Vllm, "v", 2.0, 0, 0)]);
    assert_eq!(g.decision, GapDecision::NoSglangResult);
    let mut oom = run(Framework::Vllm, "v", 2.0, 0, 0);
    oom.status = RunStatus::Oom;
    let g = decide(&[run(Framework::Sglang, "s", 2.0, 0, 0), oom]);
    assert_eq!(g.decision, GapDecision::NoCompetitorResult);
}

#[test]
fn unselected_competitors_and_smoke_rows_are_ignored() {
    let mut smoke = run(Framework::Vllm, "v-smoke", 9.0, 0, 0);
    smoke.smoke = true;
    let rows = [
        run(Framework::Sglang, "s", 2.0, 0, 0),
        run(Framework::Vllm, "v", 1.5, 0, 0),
        run(Framework::TensorrtLlm, "t", 5.0, 0, 0),
        smoke,
    ];
    let opts = GapOptions {
        selected_competitors: &[Framework::Vllm],
        ..GapOptions::default()
    };
    let g = &decide_gaps(&rows, &opts)[0];
    assert_eq!(g.leader.as_ref().unwrap().candidate_id, "v");
    assert!(matches!(g.decision, GapDecision::Ahead { .. }));
}

#[test]
fn sglang_round_selection() {
    let rows = [
        run(Framework::Sglang, "s", 1.0, 0, 0),
        run(Framework::Sglang, "s", 3.0, 2, 0),
        run(Framework::Vllm, "v", 2.0, 0, 0),
    ];
    // Latest round by default.
    assert!(matches!(decide(&rows).decision, GapDecision::Ahead { .. }));
    let opts = GapOptions {
        sglang_round: Some(0),
        ..GapOptions::default()
    };
    let g = &decide_gaps(&rows, &opts)[0];
    assert!(matches!(g.decision, GapDecision::Behind { .. }));
    let opts = GapOptions {
        sglang_round: Some(7),
        ..GapOptions::default()
    };
    assert_eq!(
        decide_gaps(&rows, &opts)[0].decision,
        GapDecision::NoSglangResult
    );
}

#[test]
fn competitor_reruns_supersede_the_baseline_run() {
    let mut rows = vec![
        run(Framework::Sglang, "s", 2.0, 1, 0),
        run(Framework::Vllm, "v", 3.0, 0, 0),
    ];
    rows.extend(repeats(Framework::Vllm, "v", &[2.0, 2.0, 2.0], 1));
    let g = decide(&rows);
    assert_eq!(g.leader.as_ref().unwrap().round, 1);
    assert_eq!(g.leader.as_ref().unwrap().value, Some(2.0));
}

#[test]
fn output_token_metric_and_latency_deltas() {
    let mut s = run(Framework::Sglang, "s", 2.0, 0, 0);
    s.metrics.output_token_throughput = Some(1800.0);
    s.metrics.p50_ttft_ms = None;
    s.metrics.mean_ttft_ms = Some(130.0);
    s.sla.max_p50_ttft_ms = None; // an unmeasured p50 would fail a p50 TTFT limit
    let mut v = run(Framework::Vllm, "v", 2.0, 0, 0);
    v.metrics.output_token_throughput = Some(2000.0);
    v.metrics.p50_tpot_ms = Some(8.5);
    let opts = GapOptions {
        metric: RankMetric::OutputTokenThroughput,
        ..GapOptions::default()
    };
    let g = &decide_gaps(&[s, v], &opts)[0];
    assert!((g.gap_pct.unwrap() + 10.0).abs() < 1e-9);
    assert_eq!(
        g.ttft_delta_ms,
        Some(30.0),
        "mean TTFT stands in for a missing p50"
    );
    assert_eq!(g.tpot_delta_ms, Some(1.5));
}

#[test]
fn threshold_is_configurable() {
    let rows = [
        run(Framework::Sglang, "s", 2.0, 0, 0),
        run(Framework::Vllm, "v", 2.06, 0, 0),
    ];
    assert!(matches!(decide(&rows).decision, GapDecision::Behind { .. }));
    let opts = GapOptions {
        threshold_pct: 5.0,
        ..GapOptions::default()
    };
    assert_eq!(
        decide_gaps(&rows, &opts)[0].decision,
        GapDecision::NeedsRepeats { runs: 3 }
    );
}

fn example(name: &str) -> Vec<BenchRow> {
    let path = format!("{}/examples/candidates/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut rows = parse_jsonl(&std::fs::read_to_string(path).unwrap()).unwrap();
    apply_sla(&mut rows, None);
    rows
}

#[test]
fn example_gap_tables() {
    let base = example("llama8b-h100-baseline.jsonl");
    let gaps = decide_gaps(&base, &GapOptions::default());
    assert_eq!(gaps[0].scenario, "chat");
    assert_eq!(
        gaps[0].leader.as_ref().unwrap().framework,
        Framework::Tokenspeed
    );
    assert!(
        matches!(gaps[1].decision, GapDecision::Ahead { .. }),
        "{:?}",
        gaps[1].decision
    );
    insta::assert_snapshot!("gap_baseline_md", render_gap_table_md(&gaps));

    let mut all = base.clone();
    all.extend(example("llama8b-h100-round1-repeats.jsonl"));
    let opts = GapOptions {
        selected_competitors: &[Framework::Vllm],
        ..GapOptions::default()
    };
    let round1 = decide_gaps(&all, &opts);
    assert!(
        matches!(round1[0].decision, GapDecision::TiedWithinNoise { .. }),
        "{:?}",
        round1[0].decision
    );
    insta::assert_snapshot!("gap_round1_vllm_md", render_gap_table_md(&round1));

    let before = decide_gaps(&base, &opts);
    let improvement = geomean_improvement(&before, &round1).unwrap();
    // chat 2.52 -> 2.575, summarization 1.27 -> 1.290.
    let expected = ((2.575f64 / 2.52 * (1.290 / 1.27)).sqrt() - 1.0) * 100.0;
    assert!(
        (improvement - expected).abs() < 1e-9,
        "{improvement} vs {expected}"
    );
}

#[test]
fn geomean_needs_common_scenarios() {
    let a = decide_gaps(
        &[run(Framework::Sglang, "s", 2.0, 0, 0)],
        &GapOptions::default(),
    );
    assert_eq!(geomean_improvement(&a, &[]), None);
    let b = decide_gaps(
        &[run(Framework::Sglang, "s", 2.02, 0, 0)],
        &GapOptions::default(),
    );
    assert!((geomean_improvement(&a, &b).unwrap() - 1.0).abs() < 1e-9);
}

#[test]
fn stagnation_needs_two_consecutive_small_rounds() {
    assert!(!is_stagnating(&[0.5], 1.0));
    assert!(!is_stagnating(&[0.5, 3.0], 1.0));
    assert!(is_stagnating(&[3.0, 0.5, 0.9], 1.0));
    assert!(!is_stagnating(&[0.5, 0.9, 1.5], 1.0));
}

proptest! {
    #[test]
    fn decisions_are_consistent_with_the_gap(
        s in prop::collection::vec(0.5f64..3.0, 1..5),
        v in prop::collection::vec(0.5f64..3.0, 1..5),
        threshold in 0.0f64..5.0,
    ) {
        let mut rows = repeats(Framework::Sglang, "s", &s, 0);
        rows.extend(repeats(Framework::Vllm, "v", &v, 0));
        let opts = GapOptions { threshold_pct: threshold, ..GapOptions::default() };
        let g = &decide_gaps(&rows, &opts)[0];
        let gap = g.gap_pct.unwrap();
        let runs = s.len().min(v.len()) as u32;
        match g.decision {
            GapDecision::Ahead { gap_pct, stable } => {
                prop_assert!(gap_pct > threshold && gap_pct == gap);
                prop_assert!(!stable || runs >= 3);
            }
            GapDecision::Behind { gap_pct, stable } => {
                prop_assert!(gap_pct < -threshold && gap_pct == gap);
                prop_assert!(!stable || runs >= 3);
            }
            GapDecision::TiedWithinNoise { .. } => prop_assert!(gap.abs() <= threshold && runs >= 3),
            GapDecision::NeedsRepeats { runs: needed } => {
                prop_assert!(gap.abs() <= threshold && runs < 3 && needed == 3)
            }
            ref other => prop_assert!(false, "unexpected {:?}", other),
        }
    }
}
