//! NCU digests on the real H200 capture pair (tests/fixtures/ncu).

mod profile_support;

use profile_support::ncu_fixture;
use sota_bot::profile::ncu::{digest, render_md, summarize, Limiter, NcuReport};

fn report(name: &str) -> NcuReport {
    let text = std::fs::read_to_string(ncu_fixture(name)).unwrap();
    NcuReport::parse(&text, name).unwrap()
}

fn with_raw(details: &str, raw: &str) -> NcuReport {
    let mut r = report(details);
    r.merge(report(raw));
    r
}

#[test]
fn details_page_is_parsed_per_launch() {
    let b = report("baseline_details.csv");
    assert_eq!(b.launches.len(), 4);
    assert_eq!(b.launches[0].kernel, "rmsnorm_kernel");
    assert_eq!(b.launches[0].block, "(32, 1, 1)");
    let s = summarize(&b);
    assert_eq!(s.len(), 2, "rmsnorm + add");
    let (name, rms) = &s[0];
    assert_eq!(name, "rmsnorm_kernel");
    assert_eq!(rms.launches, 2);
    assert!(
        (rms.duration_us.unwrap() - 19.71).abs() < 0.5,
        "{:?}",
        rms.duration_us
    );
    assert!(rms.achieved_occupancy_pct.unwrap() < 15.0);
    assert_eq!(rms.theoretical_occupancy_pct, Some(12.5));
    assert_eq!(rms.registers_per_thread, Some(210.0));
    assert_eq!(rms.occupancy_limiter.as_deref(), Some("registers"));
    // Thousands separators are parsed ("28,986" cycles).
    let cycles = b.launches[0].metrics["GPU Speed Of Light Throughput/Elapsed Cycles"]
        .value
        .unwrap();
    assert!(cycles > 1000.0);
}

#[test]
fn raw_page_is_parsed_with_units_and_stalls() {
    let r = report("candidate_raw.csv");
    assert_eq!(r.launches.len(), 4);
    let d = &r.launches[0].metrics["gpu__time_duration.sum"];
    assert_eq!(d.unit, "us");
    let s = summarize(&r);
    let rms = &s.iter().find(|(n, _)| n == "rmsnorm_kernel").unwrap().1;
    assert_eq!(rms.stalls[0].0, "long_scoreboard");
    assert!(rms.stalls.iter().all(|(r, _)| r != "selected"));
}

#[test]
fn digest_compares_and_ends_with_one_next_edit() {
    let b = with_raw("baseline_details.csv", "baseline_raw.csv");
    let c = with_raw("candidate_details.csv", "candidate_raw.csv");
    let d = digest(&b, &c);
    assert_eq!(d.kernels.len(), 2);
    assert!(d.baseline_only.is_empty() && d.candidate_only.is_empty());
    let rms = d
        .kernels
        .iter()
        .find(|k| k.kernel == "rmsnorm_kernel")
        .unwrap();
    assert!(
        rms.duration_change.unwrap() < 0.0,
        "8 warps per row is faster"
    );
    assert!(
        rms.candidate.achieved_occupancy_pct.unwrap()
            > 5.0 * rms.baseline.achieved_occupancy_pct.unwrap()
    );
    // The candidate's hottest kernel is the residual add (memory-bound streaming kernel)
    // or the norm; either way exactly one next edit names it.
    assert!(!d.focus_kernel.is_empty());
    assert!(
        d.next_edit.contains(&format!("`{}`", d.focus_kernel)),
        "{}",
        d.next_edit
    );
    assert_ne!(d.limiter, Limiter::Unknown);
    let md = render_md(&d);
    assert_eq!(md.matches("## Next edit").count(), 1);
    assert!(md.contains("rmsnorm_kernel"));

    // Baseline alone: the 1-warp RMSNorm is capped by registers.
    let only_norm = NcuReport {
        launches: b
            .launches
            .iter()
            .filter(|l| l.kernel == "rmsnorm_kernel")
            .cloned()
            .collect(),
    };
    let d2 = digest(&only_norm, &only_norm);
    assert_eq!(d2.limiter, Limiter::Occupancy);
    assert!(d2.next_edit.contains("registers"), "{}", d2.next_edit);

    // Candidate norm alone: latency-bound on long scoreboard (global loads).
    let cand_norm = NcuReport {
        launches: c
            .launches
            .iter()
            .filter(|l| l.kernel == "rmsnorm_kernel")
            .cloned()
            .collect(),
    };
    let d3 = digest(&only_norm, &cand_norm);
    assert_eq!(d3.limiter, Limiter::Latency, "{}", d3.evidence);
    assert!(d3.evidence.contains("long_scoreboard"), "{}", d3.evidence);
}

#[test]
fn details_only_infers_stall_from_rule_text() {
    let c = report("candidate_details.csv");
    let s = summarize(&c);
    let rms = &s.iter().find(|(n, _)| n == "rmsnorm_kernel").unwrap().1;
    assert_eq!(
        rms.stalls.first().map(|s| s.0.as_str()),
        Some("long_scoreboard")
    );
}
