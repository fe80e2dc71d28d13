//! The workload a row actually measured, against the plan (pure).
//!
//! Every row records the input and output token counts its requests really had (from the
//! server's usage or the client's own counts): p50, p95, min, max and mean. A row whose
//! measured lengths are off the planned lengths by more than [`LENGTH_TOLERANCE_PCT`] did
//! not run the fixed workload: it is not comparable, never a winner, and the reports name it.

use super::row::{BenchRow, RunStatus, Workload};

/// How far a measured length may be from the plan, in percent.
pub const LENGTH_TOLERANCE_PCT: f64 = 1.0;

/// p50, p95, min, max and mean of per-request lengths.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LengthStats {
    pub p50: f64,
    pub p95: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
}

/// Percentile with linear interpolation between closest ranks (numpy's default).
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q / 100.0).clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let (a, b) = (sorted.get(lo)?, sorted.get(hi)?);
    Some(a + (b - a) * (rank - lo as f64))
}

/// Statistics of per-request lengths; `None` when there are none.
pub fn length_stats(lengths: &[u64]) -> Option<LengthStats> {
    let mut sorted: Vec<f64> = lengths.iter().map(|x| *x as f64).collect();
    sorted.sort_by(f64::total_cmp);
    Some(LengthStats {
        p50: percentile(&sorted, 50.0)?,
        p95: percentile(&sorted, 95.0)?,
        min: *sorted.first()?,
        max: *sorted.last()?,
        mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
    })
}

/// Records per-request input and output lengths (of the requests that completed) in `w`,
/// and who counted them (`server` or `client`).
pub fn record_lengths(w: &mut Workload, input: &[u64], output: &[u64], counted_by: &str) {
    if let Some(s) = length_stats(input) {
        (w.input_len_p50, w.input_len_p95) = (Some(s.p50), Some(s.p95));
        (w.input_len_min, w.input_len_max) = (Some(s.min), Some(s.max));
        w.input_len_mean = Some(s.mean);
    }
    if let Some(s) = length_stats(output) {
        (w.output_len_p50, w.output_len_p95) = (Some(s.p50), Some(s.p95));
        (w.output_len_min, w.output_len_max) = (Some(s.min), Some(s.max));
        w.output_len_mean = Some(s.mean);
    }
    if !input.is_empty() || !output.is_empty() {
        w.token_counts = Some(counted_by.to_string());
    }
}

fn off(name: &str, stat: &str, value: Option<f64>, planned: u64) -> Option<String> {
    let v = value?;
    let planned_f = planned as f64;
    let pct = (v - planned_f) / planned_f * 100.0;
    (pct.abs() > LENGTH_TOLERANCE_PCT)
        .then(|| format!("measured {name} {stat} {v:.0} tokens vs {planned} planned ({pct:+.1}%)"))
}

/// Why an OK row did not run the planned workload: each measured length (p50, min, max, or
/// the mean when nothing finer was recorded) more than 1% off the plan. `None` when the
/// row matches the plan or recorded nothing to compare.
pub fn off_plan(row: &BenchRow) -> Option<String> {
    if row.status != RunStatus::Ok {
        return None;
    }
    let w = &row.workload;
    let mut found = Vec::new();
    for (name, planned, p50, min, max, mean) in [
        (
            "input",
            w.input_len,
            w.input_len_p50,
            w.input_len_min,
            w.input_len_max,
            w.input_len_mean,
        ),
        (
            "output",
            w.output_len,
            w.output_len_p50,
            w.output_len_min,
            w.output_len_max,
            w.output_len_mean,
        ),
    ] {
        let Some(planned) = planned.filter(|p| *p > 0) else {
            continue;
        };
        let checks = if p50.is_some() || min.is_some() || max.is_some() {
            vec![("p50", p50), ("min", min), ("max", max)]
        } else {
            vec![("mean", mean)]
        };
        found.extend(
            checks
                .into_iter()
                .filter_map(|(stat, v)| off(name, stat, v, planned)),
        );
    }
    (!found.is_empty()).then(|| found.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Framework;
    use proptest::prelude::*;

    fn row(input: &[u64], output: &[u64]) -> BenchRow {
        let mut r = BenchRow::new(Framework::Sglang, "sglang-00", "m", RunStatus::Ok);
        r.workload.input_len = Some(1000);
        r.workload.output_len = Some(100);
        record_lengths(&mut r.workload, input, output, "client");
        r
    }

    #[test]
    fn exact_and_special_token_lengths_match_the_plan() {
        assert_eq!(off_plan(&row(&[1000; 8], &[100; 8])), None);
        // A server that adds a beginning-of-text token: 0.1% off, within tolerance.
        assert_eq!(off_plan(&row(&[1001; 8], &[100; 8])), None);
    }

    #[test]
    fn lengths_drawn_from_one_to_the_plan_are_named() {
        // What a range ratio of 0.0 does to SGLang's random lengths.
        let why = off_plan(&row(&[12, 700, 320, 990], &[100; 4])).unwrap();
        assert!(
            why.contains("measured input p50 510 tokens vs 1000 planned (-49.0%)"),
            "{why}"
        );
        assert!(why.contains("input min 12"), "{why}");
        // Outputs cut short by EOS.
        let why = off_plan(&row(&[1000; 3], &[17, 100, 100])).unwrap();
        assert!(why.contains("output min 17"), "{why}");
        assert!(!why.contains("input"), "{why}");
    }

    #[test]
    fn a_mean_is_used_only_when_nothing_finer_was_recorded() {
        let mut r = BenchRow::new(Framework::Vllm, "vllm-00", "m", RunStatus::Ok);
        r.workload.input_len = Some(1000);
        r.workload.input_len_mean = Some(320.5);
        assert!(off_plan(&r).unwrap().contains("input mean 320"));
        r.workload.input_len_mean = None;
        assert_eq!(off_plan(&r), None, "nothing recorded, nothing to judge");
        r.status = RunStatus::Failed;
        r.workload.input_len_mean = Some(1.0);
        assert_eq!(off_plan(&r), None, "failed rows have their own reason");
    }

    proptest! {
        #[test]
        fn stats_are_ordered(v in proptest::collection::vec(0u64..100_000, 1..50)) {
            let s = length_stats(&v).unwrap();
            prop_assert!(s.min <= s.p50 && s.p50 <= s.p95 && s.p95 <= s.max);
            prop_assert!(s.min <= s.mean && s.mean <= s.max);
        }
    }
}
