//! Side-by-side comparison of two analysed traces (SGLang vs a competitor): per stage, per
//! category and per matched kernel family, which rows explain the GPU-time gap.

use serde::Serialize;

use super::kernels::ratio;
use super::names::Category;
use super::TraceAnalysis;

/// Category delta within a stage (`delta_us` = left - right; positive: left slower).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategoryDelta {
    pub category: Category,
    pub left_us: f64,
    pub right_us: f64,
    pub delta_us: f64,
    pub share_of_gap: f64,
}

/// Kernel-family delta within a stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FamilyDelta {
    /// Family key (kernel name without tile/arch numbers).
    pub family: String,
    pub category: Category,
    pub left_us: f64,
    pub right_us: f64,
    pub delta_us: f64,
    pub share_of_gap: f64,
}

/// One stage present on both sides (or on one side, with zeros on the other).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageComparison {
    pub stage: String,
    pub left_gpu_us: f64,
    pub right_gpu_us: f64,
    pub gap_us: f64,
    pub categories: Vec<CategoryDelta>,
    pub families: Vec<FamilyDelta>,
}

/// The comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceComparison {
    pub left_label: String,
    pub right_label: String,
    /// Stage with the largest positive gap (left slower), if any.
    pub slowest_stage: Option<String>,
    pub summary: String,
    pub stages: Vec<StageComparison>,
}

/// Groups kernels of different tile configs/architectures (and across frameworks where the
/// library is the same): digits dropped, and for flat `a_b_c` names the first two tokens.
pub fn family_key(name: &str) -> String {
    let no_digits: String = name.chars().filter(|c| !c.is_ascii_digit()).collect();
    if name.contains("::") || name.contains('<') || name.contains(' ') {
        return no_digits;
    }
    let toks: Vec<&str> = no_digits
        .split('_')
        .filter(|t| !t.is_empty())
        .take(2)
        .collect();
    toks.join("_")
}

/// Compares `left` (e.g. SGLang) with `right` (e.g. the competitor).
pub fn compare(
    left: &TraceAnalysis,
    right: &TraceAnalysis,
    left_label: &str,
    right_label: &str,
) -> TraceComparison {
    let mut stage_names: Vec<String> = Vec::new();
    for s in left.stages.iter().chain(&right.stages) {
        if !stage_names.contains(&s.stage) {
            stage_names.push(s.stage.clone());
        }
    }
    let mut stages = Vec::new();
    for name in stage_names {
        let l = left.stages.iter().find(|s| s.stage == name);
        let r = right.stages.iter().find(|s| s.stage == name);
        let lt = l.map(|s| s.total_gpu_us).unwrap_or(0.0);
        let rt = r.map(|s| s.total_gpu_us).unwrap_or(0.0);
        let gap = lt - rt;
        let mut categories = Vec::new();
        for c in Category::ALL {
            let lu: f64 = l
                .map(|s| {
                    s.categories
                        .iter()
                        .filter(|x| x.category == c)
                        .map(|x| x.gpu_us)
                        .sum()
                })
                .unwrap_or(0.0);
            let ru: f64 = r
                .map(|s| {
                    s.categories
                        .iter()
                        .filter(|x| x.category == c)
                        .map(|x| x.gpu_us)
                        .sum()
                })
                .unwrap_or(0.0);
            if lu == 0.0 && ru == 0.0 {
                continue;
            }
            categories.push(CategoryDelta {
                category: c,
                left_us: lu,
                right_us: ru,
                delta_us: lu - ru,
                share_of_gap: signed_share(lu - ru, gap),
            });
        }
        categories.sort_by(|a, b| b.delta_us.abs().total_cmp(&a.delta_us.abs()));
        let mut fams: Vec<FamilyDelta> = Vec::new();
        for (side, st) in [(0, l), (1, r)] {
            let Some(st) = st else { continue };
            for k in &st.kernel_table {
                let key = if k.folded_rows > 0 {
                    "(remainder)".to_string()
                } else {
                    family_key(&k.name)
                };
                let idx = match fams.iter().position(|f| f.family == key) {
                    Some(i) => i,
                    None => {
                        fams.push(FamilyDelta {
                            family: key,
                            category: k.category,
                            left_us: 0.0,
                            right_us: 0.0,
                            delta_us: 0.0,
                            share_of_gap: 0.0,
                        });
                        fams.len() - 1
                    }
                };
                if side == 0 {
                    fams[idx].left_us += k.gpu_us;
                } else {
                    fams[idx].right_us += k.gpu_us;
                }
            }
        }
        for f in &mut fams {
            f.delta_us = f.left_us - f.right_us;
            f.share_of_gap = signed_share(f.delta_us, gap);
        }
        fams.sort_by(|a, b| {
            b.delta_us
                .abs()
                .total_cmp(&a.delta_us.abs())
                .then(a.family.cmp(&b.family))
        });
        fams.truncate(15);
        stages.push(StageComparison {
            stage: name,
            left_gpu_us: lt,
            right_gpu_us: rt,
            gap_us: gap,
            categories,
            families: fams,
        });
    }
    let slowest = stages
        .iter()
        .filter(|s| s.gap_us > 0.0)
        .max_by(|a, b| a.gap_us.total_cmp(&b.gap_us))
        .map(|s| s.stage.clone());
    let summary = match stages.iter().find(|s| Some(&s.stage) == slowest.as_ref()) {
        Some(s) => {
            let top: Vec<String> = s
                .categories
                .iter()
                .filter(|c| c.delta_us > 0.0)
                .take(3)
                .map(|c| {
                    format!(
                        "{} {:+.1} µs ({:.0}% of the gap)",
                        c.category.label(),
                        c.delta_us,
                        c.share_of_gap * 100.0
                    )
                })
                .collect();
            format!(
                "`{left_label}` is slower in stage `{}` by {:.1} µs of GPU time ({:.1}%); rows that explain it: {}.",
                s.stage,
                s.gap_us,
                ratio(s.gap_us, s.right_gpu_us) * 100.0,
                if top.is_empty() { "none".to_string() } else { top.join(", ") }
            )
        }
        None => format!("`{left_label}` uses no more GPU time than `{right_label}` in any stage."),
    };
    TraceComparison {
        left_label: left_label.to_string(),
        right_label: right_label.to_string(),
        slowest_stage: slowest,
        summary,
        stages,
    }
}

fn signed_share(delta: f64, gap: f64) -> f64 {
    if gap.abs() > 0.0 {
        delta / gap
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_keys_fold_configs() {
        assert_eq!(
            family_key("nvjet_sm90_tst_256x128_64x4_1x2_h_bz_coopA_TNT"),
            family_key("nvjet_sm90_tst_64x8_64x16_2x1_v_bz_splitK_TNT")
        );
        assert_eq!(
            family_key("ncclDevKernel_AllReduce_Sum_bf16_RING_LL"),
            "ncclDevKernel_AllReduce"
        );
        assert_ne!(
            family_key("at::native::elementwise_kernel<BinaryFunctor, MulFunctor>"),
            family_key("at::native::elementwise_kernel<silu_kernel>")
        );
    }
}
