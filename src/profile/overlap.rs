//! Overlap-opportunity table of one stage from a single trace.
//!
//! A sweep over kernel intervals across streams splits each kernel's time into exclusive
//! (no other stream busy: it sits on the critical path) and hidden (another stream runs
//! meanwhile). Idle stretches with no GPU work at all become their own rows. Adjacent
//! kernels on the same stream give a rough dependency risk: a kernel whose output is read
//! at once by a small pointwise kernel is a fusion target more than an overlap target.

use serde::Serialize;

use super::kernels::ratio;
use super::names::Category;
use super::records::{add_ns, sum_ns, FxMap, NameId};
use super::timeline::Timeline;

/// How likely moving a kernel off the critical path runs into a data dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    Low,
    Medium,
    High,
}

/// How urgent a row is (from its exposed share of the stage's wall time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    High,
    Medium,
    Low,
}

/// What to try for a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Recommendation {
    TryOverlap,
    TryFusion,
    CheckDependencies,
    Skip,
}

impl Recommendation {
    /// Label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Recommendation::TryOverlap => "try overlap",
            Recommendation::TryFusion => "try fusion",
            Recommendation::CheckDependencies => "check dependencies",
            Recommendation::Skip => "skip",
        }
    }
}

/// A kernel family or an idle-gap bucket.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverlapRow {
    /// Kernel family, or `idle: ...` for GPU gaps.
    pub name: String,
    /// `None` for idle rows.
    pub category: Option<Category>,
    pub gpu_us: f64,
    pub exclusive_us: f64,
    pub hidden_us: f64,
    /// Exclusive time over the stage's GPU wall time (0..1).
    pub exposed_share: f64,
    pub count: u64,
    pub dependency_risk: Risk,
    pub priority: Priority,
    pub recommendation: Recommendation,
}

#[derive(Default)]
struct FamAcc {
    category: Option<Category>,
    dur: f64,
    excl: f64,
    hidden: f64,
    count: u64,
    risk_sum: f64,
}

const TIGHT_NS: i64 = 2_000;

/// Builds the overlap table of the given ops (indices into `tl.ops`). Returns the stage's
/// GPU wall time in µs (sum over input segments) and the rows.
pub fn overlap_table(tl: &Timeline, ops: &[usize], min_share: f64) -> (f64, Vec<OverlapRow>) {
    let mut fam: FxMap<NameId, FamAcc> = FxMap::default();
    let mut gaps: Vec<i64> = Vec::new();
    let mut wall_ns: i64 = 0;
    let mut by_segment: FxMap<u16, Vec<usize>> = FxMap::default();
    for &i in ops {
        if let Some(op) = tl.ops.get(i) {
            by_segment.entry(op.segment).or_default().push(i);
        }
    }
    let mut segs: Vec<_> = by_segment.into_iter().collect();
    segs.sort_by_key(|s| s.0);
    for (_, idx) in &segs {
        add_ns(&mut wall_ns, sweep(tl, idx, &mut fam, &mut gaps));
        dependency_risk(tl, idx, &mut fam);
    }
    let wall_us = wall_ns as f64 / 1000.0;
    let mut rows: Vec<OverlapRow> = fam
        .into_iter()
        .map(|(family, a)| {
            let exposed = ratio(a.excl, wall_us);
            let risk = match ratio(a.risk_sum, a.count as f64) {
                r if r < 0.34 => Risk::Low,
                r if r < 0.67 => Risk::Medium,
                _ => Risk::High,
            };
            let category = a.category.unwrap_or(Category::Other);
            OverlapRow {
                name: tl.names.name(family).to_string(),
                category: Some(category),
                gpu_us: a.dur,
                exclusive_us: a.excl,
                hidden_us: a.hidden,
                exposed_share: exposed,
                count: a.count,
                dependency_risk: risk,
                priority: priority(exposed),
                recommendation: recommend(category, risk, exposed, min_share),
            }
        })
        .collect();
    let buckets: [(&str, i64, i64, Recommendation); 3] = [
        (
            "idle: gaps < 10 µs (launch latency)",
            0,
            10_000,
            Recommendation::TryFusion,
        ),
        (
            "idle: gaps 10-100 µs (launch-bound stretches)",
            10_000,
            100_000,
            Recommendation::TryFusion,
        ),
        (
            "idle: gaps >= 100 µs (host stalls or syncs)",
            100_000,
            i64::MAX,
            Recommendation::CheckDependencies,
        ),
    ];
    for (name, lo, hi, rec) in buckets {
        let in_bucket: Vec<i64> = gaps
            .iter()
            .copied()
            .filter(|&g| g >= lo && g < hi)
            .collect();
        if in_bucket.is_empty() {
            continue;
        }
        let us = sum_ns(in_bucket.iter().copied()) as f64 / 1000.0;
        let exposed = ratio(us, wall_us);
        rows.push(OverlapRow {
            name: name.to_string(),
            category: None,
            gpu_us: 0.0,
            exclusive_us: us,
            hidden_us: 0.0,
            exposed_share: exposed,
            count: in_bucket.len() as u64,
            dependency_risk: Risk::Low,
            priority: priority(exposed),
            recommendation: if exposed < min_share {
                Recommendation::Skip
            } else {
                rec
            },
        });
    }
    let exposed_comm = |r: &OverlapRow| {
        r.category == Some(Category::Communication) && r.exposed_share >= min_share
    };
    rows.sort_by(|a, b| {
        exposed_comm(b)
            .cmp(&exposed_comm(a))
            .then(b.exclusive_us.total_cmp(&a.exclusive_us))
            .then(a.name.cmp(&b.name))
    });
    let (mut keep, fold): (Vec<_>, Vec<_>) = rows
        .into_iter()
        .partition(|r| r.exposed_share >= min_share || r.category.is_none() || exposed_comm(r));
    if !fold.is_empty() {
        let excl: f64 = fold.iter().map(|r| r.exclusive_us).sum();
        let exposed = ratio(excl, wall_us);
        keep.push(OverlapRow {
            name: format!(
                "(remainder: {} families under {:.1}% exposed)",
                fold.len(),
                min_share * 100.0
            ),
            category: None,
            gpu_us: fold.iter().map(|r| r.gpu_us).sum(),
            exclusive_us: excl,
            hidden_us: fold.iter().map(|r| r.hidden_us).sum(),
            exposed_share: exposed,
            count: fold.iter().map(|r| r.count).sum(),
            dependency_risk: Risk::Low,
            priority: Priority::Low,
            recommendation: Recommendation::Skip,
        });
    }
    (wall_us, keep)
}

fn priority(exposed: f64) -> Priority {
    if exposed >= 0.05 {
        Priority::High
    } else if exposed >= 0.01 {
        Priority::Medium
    } else {
        Priority::Low
    }
}

fn recommend(cat: Category, risk: Risk, exposed: f64, min_share: f64) -> Recommendation {
    if exposed < min_share {
        return Recommendation::Skip;
    }
    match cat {
        Category::Communication => match risk {
            Risk::High => Recommendation::CheckDependencies,
            _ => Recommendation::TryOverlap,
        },
        c if c.is_pointwise() || c == Category::Memory => match risk {
            Risk::Low => Recommendation::TryOverlap,
            _ => Recommendation::TryFusion,
        },
        _ => match risk {
            Risk::High => Recommendation::CheckDependencies,
            _ => Recommendation::TryOverlap,
        },
    }
}

/// Sweeps one segment's ops; accumulates exclusive/hidden time and idle gaps. Returns the
/// segment's wall span in ns.
fn sweep(
    tl: &Timeline,
    idx: &[usize],
    fam: &mut FxMap<NameId, FamAcc>,
    gaps: &mut Vec<i64>,
) -> i64 {
    // (time, is_start, op index); ends sort before starts at the same time.
    let mut events: Vec<(i64, bool, usize)> = Vec::with_capacity(idx.len() * 2);
    for &i in idx {
        let op = &tl.ops[i];
        events.push((op.ts_ns, true, i));
        events.push((op.end_ns(), false, i));
        let a = fam.entry(op.family).or_default();
        a.category.get_or_insert(op.category);
        a.dur += op.dur_ns as f64 / 1000.0;
        a.count += 1;
    }
    events.sort_unstable_by_key(|e| (e.0, e.1, e.2));
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return 0;
    };
    let span = last.0 - first.0;
    // stream -> active op indices
    let mut active: FxMap<u32, Vec<usize>> = FxMap::default();
    let mut streams_busy = 0usize;
    let mut prev_t = first.0;
    let mut excl_ns: FxMap<usize, f64> = FxMap::default();
    let mut hidden_ns: FxMap<usize, f64> = FxMap::default();
    for &(t, is_start, i) in &events {
        let len = t - prev_t;
        if len > 0 {
            if streams_busy == 0 {
                gaps.push(len);
            } else {
                for ops_on in active.values() {
                    if ops_on.is_empty() {
                        continue;
                    }
                    let part = len as f64 / ops_on.len() as f64;
                    for &o in ops_on {
                        let slot = if streams_busy == 1 {
                            &mut excl_ns
                        } else {
                            &mut hidden_ns
                        };
                        *slot.entry(o).or_default() += part;
                    }
                }
            }
        }
        prev_t = t;
        let stream = tl.ops[i].stream;
        let list = active.entry(stream).or_default();
        if is_start {
            if list.is_empty() {
                streams_busy += 1;
            }
            list.push(i);
        } else if let Some(p) = list.iter().position(|&x| x == i) {
            list.swap_remove(p);
            if list.is_empty() {
                streams_busy -= 1;
            }
        }
    }
    for (o, ns) in excl_ns {
        fam.entry(tl.ops[o].family).or_default().excl += ns / 1000.0;
    }
    for (o, ns) in hidden_ns {
        fam.entry(tl.ops[o].family).or_default().hidden += ns / 1000.0;
    }
    span
}

/// Per launch: high (1.0) when the next kernel on the stream starts within 2 µs and is a
/// pointwise consumer, medium (0.5) when a neighbour is that tight otherwise, low (0).
fn dependency_risk(tl: &Timeline, idx: &[usize], fam: &mut FxMap<NameId, FamAcc>) {
    let mut by_stream: Vec<usize> = idx.to_vec();
    by_stream.sort_by_key(|&i| (tl.ops[i].stream, tl.ops[i].ts_ns));
    for (k, &i) in by_stream.iter().enumerate() {
        let op = &tl.ops[i];
        let prev = k
            .checked_sub(1)
            .and_then(|p| by_stream.get(p))
            .map(|&p| &tl.ops[p])
            .filter(|p| p.stream == op.stream);
        let next = by_stream
            .get(k + 1)
            .map(|&n| &tl.ops[n])
            .filter(|n| n.stream == op.stream);
        let tight_prev = prev.is_some_and(|p| op.ts_ns - p.end_ns() < TIGHT_NS);
        let tight_next = next.is_some_and(|n| n.ts_ns - op.end_ns() < TIGHT_NS);
        let consumer = tight_next && next.is_some_and(|n| n.category.is_pointwise());
        let r = if consumer {
            1.0
        } else if tight_prev || tight_next {
            0.5
        } else {
            0.0
        };
        fam.entry(op.family).or_default().risk_sum += r;
    }
}
