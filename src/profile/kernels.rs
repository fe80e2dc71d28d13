//! Kernel table of one stage: GPU time per kernel family with attribution.

use serde::Serialize;

use super::names::Category;
use super::records::{add_ns, FxMap, NameId, NO_NAME};
use super::timeline::Timeline;

/// A Python location and its share of the row's GPU time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocationShare {
    pub location: String,
    pub share: f64,
}

/// One kernel family (or the folded remainder).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KernelRow {
    pub name: String,
    pub category: Category,
    pub gpu_us: f64,
    /// Fraction of the stage's GPU time (0..1).
    pub share: f64,
    pub launches: u64,
    pub avg_us: f64,
    /// Most common launching host op.
    pub cpu_op: Option<String>,
    pub python_locations: Vec<LocationShare>,
    /// For the remainder row: how many families were folded into it (0 otherwise).
    pub folded_rows: u32,
}

/// GPU time per category within a stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategoryRow {
    pub category: Category,
    pub gpu_us: f64,
    pub share: f64,
    pub launches: u64,
}

#[derive(Default)]
struct Acc {
    dur_ns: i64,
    launches: u64,
    by_cat: FxMap<Category, i64>,
    by_op: FxMap<NameId, i64>,
    by_loc: FxMap<NameId, i64>,
}

/// Builds the kernel table of the given ops; rows under `min_share` fold into one
/// remainder row so the table still sums to the stage total.
pub fn kernel_table(tl: &Timeline, ops: &[usize], min_share: f64) -> (f64, Vec<KernelRow>) {
    let mut acc: FxMap<NameId, Acc> = FxMap::default();
    let mut total_ns: i64 = 0;
    for &i in ops {
        let Some(op) = tl.ops.get(i) else { continue };
        add_ns(&mut total_ns, op.dur_ns);
        let a = acc.entry(op.family).or_default();
        add_ns(&mut a.dur_ns, op.dur_ns);
        a.launches += 1;
        add_ns(a.by_cat.entry(op.category).or_default(), op.dur_ns);
        add_ns(a.by_op.entry(op.cpu_op).or_default(), op.dur_ns);
        if op.py_loc != NO_NAME {
            add_ns(a.by_loc.entry(op.py_loc).or_default(), op.dur_ns);
        }
    }
    let total_us = total_ns as f64 / 1000.0;
    let mut rows: Vec<KernelRow> = acc
        .into_iter()
        .map(|(family, a)| {
            let gpu_us = a.dur_ns as f64 / 1000.0;
            let category = top_key(&a.by_cat).unwrap_or(Category::Other);
            let cpu_op = top_key(&a.by_op)
                .filter(|&id| id != NO_NAME)
                .map(|id| tl.names.name(id).to_string());
            let mut locs: Vec<(NameId, i64)> = a.by_loc.into_iter().collect();
            locs.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
            let python_locations = locs
                .into_iter()
                .take(3)
                .map(|(id, ns)| LocationShare {
                    location: tl.names.name(id).to_string(),
                    share: ratio(ns as f64, a.dur_ns as f64),
                })
                .collect();
            KernelRow {
                name: tl.names.name(family).to_string(),
                category,
                gpu_us,
                share: ratio(gpu_us, total_us),
                launches: a.launches,
                avg_us: ratio(gpu_us, a.launches as f64),
                cpu_op,
                python_locations,
                folded_rows: 0,
            }
        })
        .collect();
    rows.sort_by(|a, b| b.gpu_us.total_cmp(&a.gpu_us).then(a.name.cmp(&b.name)));
    let (mut keep, fold): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.share >= min_share);
    if !fold.is_empty() {
        let gpu_us: f64 = fold.iter().map(|r| r.gpu_us).sum();
        let launches: u64 = fold.iter().map(|r| r.launches).sum();
        keep.push(KernelRow {
            name: format!(
                "(remainder: {} kernels under {:.1}%)",
                fold.len(),
                min_share * 100.0
            ),
            category: Category::Other,
            gpu_us,
            share: ratio(gpu_us, total_us),
            launches,
            avg_us: ratio(gpu_us, launches as f64),
            cpu_op: None,
            python_locations: Vec::new(),
            folded_rows: fold.len() as u32,
        });
    }
    (total_us, keep)
}

/// GPU time per category (unfolded, all families).
pub fn category_table(tl: &Timeline, ops: &[usize]) -> Vec<CategoryRow> {
    let mut acc: FxMap<Category, (i64, u64)> = FxMap::default();
    let mut total: i64 = 0;
    for &i in ops {
        let Some(op) = tl.ops.get(i) else { continue };
        let e = acc.entry(op.category).or_default();
        add_ns(&mut e.0, op.dur_ns);
        e.1 += 1;
        add_ns(&mut total, op.dur_ns);
    }
    let mut rows: Vec<CategoryRow> = acc
        .into_iter()
        .map(|(category, (ns, n))| CategoryRow {
            category,
            gpu_us: ns as f64 / 1000.0,
            share: ratio(ns as f64, total as f64),
            launches: n,
        })
        .collect();
    rows.sort_by(|a, b| {
        b.gpu_us
            .total_cmp(&a.gpu_us)
            .then(a.category.cmp(&b.category))
    });
    rows
}

fn top_key<K: Copy + Ord>(m: &FxMap<K, i64>) -> Option<K> {
    m.iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(k, _)| *k)
}

/// `a / b`, 0 when `b` is 0.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}
