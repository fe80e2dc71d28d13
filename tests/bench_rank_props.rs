//! Property tests of the ranking rule (ARCHITECTURE.md, *Benchmark rows, SLA and ranking*).

use proptest::prelude::*;
use sota_bot::bench::rank::{compare_rows, rank_rows, sla_passed, winners, RankMetric};
use sota_bot::bench::row::{to_jsonl_line, BenchRow, RunStatus};
use sota_bot::framework::Framework;
use std::cmp::Ordering;

fn status() -> impl Strategy<Value = RunStatus> {
    prop_oneof![
        4 => Just(RunStatus::Ok),
        1 => Just(RunStatus::Failed),
        1 => Just(RunStatus::Oom),
        1 => Just(RunStatus::Timeout),
        1 => Just(RunStatus::Skipped),
    ]
}

fn maybe(range: std::ops::Range<f64>) -> impl Strategy<Value = Option<f64>> {
    // Few distinct values so ties on every key happen often.
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(f64::NAN)),
        6 => (0u8..6).prop_map(move |k| Some(range.start + f64::from(k) * (range.end - range.start) / 6.0)),
    ]
}

prop_compose! {
    fn arb_row()(
        fw in prop::sample::select(Framework::ALL.to_vec()),
        cand in 0u8..3,
        scenario in prop::sample::select(vec!["chat", "summarization"]),
        st in status(),
        smoke in prop::bool::weighted(0.2),
        rps in maybe(0.5..3.0),
        tok in maybe(500.0..3000.0),
        ttft in maybe(100.0..3000.0),
        mean_ttft in maybe(100.0..3000.0),
        tpot in maybe(5.0..60.0),
        success in maybe(0.9..1.0),
        max_ttft in prop::option::of(Just(2000.0)),
        min_success in prop::option::of(Just(0.99)),
        claimed in prop::option::of(any::<bool>()),
        gpus in prop::option::of(1u32..3),
        round in 0u32..2,
        repeat in 0u32..2,
    ) -> BenchRow {
        let mut r = BenchRow::new(fw, format!("{}-{cand}", fw.canonical()), "m", st);
        r.smoke = smoke;
        r.workload.scenario = Some(scenario.to_string());
        r.metrics.request_throughput = rps;
        r.metrics.output_token_throughput = tok;
        r.metrics.p50_ttft_ms = ttft;
        r.metrics.mean_ttft_ms = mean_ttft;
        r.metrics.p50_tpot_ms = tpot;
        r.metrics.success_rate = success;
        r.sla.max_p50_ttft_ms = max_ttft;
        r.sla.min_success_rate = min_success;
        r.sla.passed = claimed;
        r.hardware.gpu_count = gpus;
        r.round = round;
        r.repeat = repeat;
        r
    }
}

/// Rows compared by their serialized form (NaN metrics are not `==` to themselves).
fn json(rows: Vec<BenchRow>) -> Vec<String> {
    rows.iter().map(to_jsonl_line).collect()
}

fn metric() -> impl Strategy<Value = RankMetric> {
    prop_oneof![
        Just(RankMetric::RequestThroughput),
        Just(RankMetric::OutputTokenThroughput)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn sorting_is_permutation_invariant(
        (rows, shuffled) in prop::collection::vec(arb_row(), 0..24)
            .prop_flat_map(|rows| (Just(rows.clone()), Just(rows).prop_shuffle())),
        metric in metric(),
    ) {
        prop_assert_eq!(json(rank_rows(&rows, metric)), json(rank_rows(&shuffled, metric)));
    }

    #[test]
    fn compare_is_a_total_order(a in arb_row(), b in arb_row(), c in arb_row(), metric in metric()) {
        prop_assert_eq!(compare_rows(&a, &a, metric), Ordering::Equal);
        prop_assert_eq!(compare_rows(&a, &b, metric), compare_rows(&b, &a, metric).reverse());
        if compare_rows(&a, &b, metric) != Ordering::Greater
            && compare_rows(&b, &c, metric) != Ordering::Greater
        {
            prop_assert_ne!(compare_rows(&a, &c, metric), Ordering::Greater);
        }
        if compare_rows(&a, &b, metric) == Ordering::Equal {
            prop_assert_eq!(to_jsonl_line(&a), to_jsonl_line(&b), "only identical rows compare equal");
        }
    }

    #[test]
    fn sorted_output_respects_the_rule_keys(rows in prop::collection::vec(arb_row(), 0..24), metric in metric()) {
        let ranked = rank_rows(&rows, metric);
        for pair in ranked.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            // Earlier rows never lose on the leading keys.
            let key = |r: &BenchRow| (!r.smoke, r.status == RunStatus::Ok, sla_passed(r));
            prop_assert!(key(a) >= key(b), "{:?} before {:?}", key(a), key(b));
            if key(a) == key(b) {
                let (va, vb) = (metric.value(&a.metrics), metric.value(&b.metrics));
                prop_assert!(!(va.is_none() && vb.is_some()), "missing throughput ranked above a real one");
                if let (Some(x), Some(y)) = (va, vb) {
                    prop_assert!(x >= y);
                }
            }
        }
    }

    #[test]
    fn missing_throughput_never_outranks_a_real_value(a in arb_row(), metric in metric()) {
        let mut real = a.clone();
        let mut missing = a;
        real.candidate_id = "real".into();
        missing.candidate_id = "missing".into();
        if metric.value(&real.metrics).is_none() {
            match metric {
                RankMetric::RequestThroughput => real.metrics.request_throughput = Some(0.001),
                RankMetric::OutputTokenThroughput => real.metrics.output_token_throughput = Some(0.001),
            }
        }
        match metric {
            RankMetric::RequestThroughput => missing.metrics.request_throughput = None,
            RankMetric::OutputTokenThroughput => missing.metrics.output_token_throughput = None,
        }
        prop_assert_eq!(compare_rows(&real, &missing, metric), Ordering::Less);
    }

    #[test]
    fn smoke_never_wins(rows in prop::collection::vec(arb_row(), 0..24)) {
        for (key, w) in winners(&rows) {
            prop_assert!(!w.smoke);
            prop_assert_eq!(w.status, RunStatus::Ok);
            prop_assert!(sla_passed(&w));
            prop_assert_eq!(key, (w.framework, w.scenario().to_string()));
        }
    }

    #[test]
    fn winner_is_the_first_eligible_ranked_row(rows in prop::collection::vec(arb_row(), 0..24)) {
        let ranked = rank_rows(&rows, RankMetric::RequestThroughput);
        for ((fw, scenario), w) in winners(&rows) {
            let first = ranked.iter().find(|r| {
                r.framework == fw && r.scenario() == scenario && !r.smoke
                    && r.status == RunStatus::Ok && sla_passed(r)
            });
            prop_assert_eq!(first.map(to_jsonl_line), Some(to_jsonl_line(&w)));
        }
    }

    #[test]
    fn input_sla_verdict_is_ignored(rows in prop::collection::vec(arb_row(), 0..16), flip in any::<bool>()) {
        let mut tampered = rows.clone();
        for r in &mut tampered {
            r.sla.passed = Some(flip);
        }
        let w1: Vec<_> = winners(&rows).into_values().map(|r| (r.candidate_id, r.round, r.repeat)).collect();
        let w2: Vec<_> = winners(&tampered).into_values().map(|r| (r.candidate_id, r.round, r.repeat)).collect();
        prop_assert_eq!(w1, w2);
        let ranked_without_verdict = |rows: &[BenchRow]| -> Vec<BenchRow> {
            rank_rows(rows, RankMetric::RequestThroughput)
                .into_iter()
                .map(|mut r| { r.sla.passed = None; r })
                .collect()
        };
        prop_assert_eq!(json(ranked_without_verdict(&rows)), json(ranked_without_verdict(&tampered)));
        for (r, t) in rows.iter().zip(&tampered) {
            prop_assert_eq!(sla_passed(r), sla_passed(t));
        }
    }
}

/// Every Markdown table block has the same number of unescaped `|` on each line.
fn tables_are_rectangular(md: &str) -> bool {
    md.split("\n\n")
        .filter(|b| b.starts_with('|'))
        .all(|table| {
            let counts: Vec<usize> = table
                .lines()
                .map(|l| l.replace("\\|", "").matches('|').count())
                .collect();
            counts.windows(2).all(|w| w[0] == w[1])
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn reports_never_break_tables(
        rows in prop::collection::vec(arb_row(), 0..12),
        texts in prop::collection::vec("[a-z|`\\\\\n\r ]{0,12}", 12),
    ) {
        let mut rows = rows;
        for (i, r) in rows.iter_mut().enumerate() {
            r.candidate_id = texts[i % texts.len()].clone();
            r.server_command = Some(texts[(i + 1) % texts.len()].clone());
            r.failure_reason = Some(texts[(i + 2) % texts.len()].clone());
            r.workload.scenario = Some(texts[(i + 3) % texts.len()].clone());
        }
        let md = sota_bot::bench::summary::render_summary_md(&rows, RankMetric::RequestThroughput);
        prop_assert!(tables_are_rectangular(&md), "{}", md);
        let gaps = sota_bot::bench::gap::decide_gaps(&rows, &sota_bot::bench::gap::GapOptions::default());
        prop_assert!(tables_are_rectangular(&sota_bot::bench::gap::render_gap_table_md(&gaps)));
        let report = sota_bot::bench::fairness::diagnose(&rows, &Framework::COMPETITORS, RankMetric::RequestThroughput);
        prop_assert!(tables_are_rectangular(&sota_bot::bench::fairness::render_fairness_md(&report)));
        let _ = sota_bot::bench::summary::render_winning_commands_md(&rows, RankMetric::RequestThroughput);
    }

    #[test]
    fn metric_names_never_panic(s in "\\PC{0,20}") {
        let _ = s.parse::<RankMetric>();
    }
}
