//! Forward passes from the kernel sequence alone, and the stage of each pass.
//!
//! SGLang wraps no annotation around a forward pass, runs decode under CUDA graphs and,
//! under continuous batching, interleaves prefill/extend and decode passes in one trace. So
//! passes are found from what every forward launches: one attention launch per decoder
//! layer (the layer anchor), the same number of layers in every pass, and between the last
//! layer of one pass and the first of the next the work no layer does (final norm, LM head,
//! sampling, the scheduler's copies, embedding). Annotations, where present, only confirm.
//!
//! Boundaries, strongest first:
//! 1. a change of CUDA-graph replay (or between a replay and eager launches): one replay is
//!    one pass;
//! 2. a change of attention kernel (prefill and decode attention are different kernels);
//! 3. a gap between two anchors that holds kernels the other gaps of the run rarely hold,
//!    and more kernels than a typical layer;
//! 4. the layer count: every pass runs all L layers, so a run of k·L layers is k passes
//!    and two neighbours of a + b = L layers are one.
//!
//! The cut between two passes is the longest GPU idle time between the end of the last
//! layer of one and the start of the first layer of the next (where the host schedules).

use super::names::Category;
use super::op::{Op, NOT_GRAPH};
use super::records::Interner;
use super::records::{sum_ns, FxMap, NameId};
use super::stage::stage_from_text;
use std::ops::Range;

/// One forward pass found in a file.
#[derive(Debug, Clone, PartialEq)]
pub struct PassSpan {
    pub segment: u16,
    /// Ops of the pass: indices into the timeline's ops (a file's ops are in time order).
    pub ops: Range<usize>,
    /// Attention anchors (one per layer) in the pass.
    pub layers: u32,
    /// `prefill` or `decode`.
    pub stage: &'static str,
    /// Why the pass has that stage.
    pub stage_evidence: String,
    /// Nothing told the stage: `stage` is a default.
    pub stage_guessed: bool,
    /// How the pass's boundaries were found.
    pub boundaries: String,
    /// Most of the pass's layer kernels ran as CUDA-graph replays.
    pub graph: bool,
    /// Distinct graph replays among the pass's ops.
    pub graph_replays: u32,
    /// Largest thread-block count of a pointwise kernel in the pass's layers: grows with
    /// the tokens of the pass (0 when the trace has no grids).
    pub token_blocks: u32,
    /// Set when the segmentation is not sure of this pass, saying why.
    pub uncertain: Option<String>,
}

/// Attention anchors in `ops` (time order): positions of attention kernels, where
/// attention kernels separated only by memory ops (split-KV + merge, ragged + paged) count
/// as one launch.
fn anchors(ops: &[Op]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut last_att: Option<usize> = None;
    for (k, op) in ops.iter().enumerate() {
        if op.category == Category::Attention {
            let joined = last_att
                .is_some_and(|p| ops[p + 1..k].iter().all(|o| o.category == Category::Memory));
            if !joined {
                out.push(k);
            }
            last_att = Some(k);
        }
    }
    out
}

/// GPU idle time before each op: its start minus the latest end of the ops before it.
fn idle_before(ops: &[Op]) -> Vec<i64> {
    let mut idle = vec![0i64; ops.len()];
    let mut latest = i64::MIN;
    for (k, op) in ops.iter().enumerate() {
        if k > 0 {
            idle[k] = (op.ts_ns - latest).max(0);
        }
        latest = latest.max(op.end_ns());
    }
    idle
}

fn median(mut v: Vec<usize>) -> usize {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[v.len() / 2]
}

/// Boundary decision for the gap after anchor `k`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gap {
    Layer,
    /// Different graph replay, or graph vs eager.
    Graph,
    /// Different attention kernel.
    Attention,
    /// Kernels no layer launches, and more of them.
    Kernels,
    /// Cut by the layer count of the other passes.
    Count,
}

impl Gap {
    fn how(self) -> &'static str {
        match self {
            Gap::Layer => "",
            Gap::Graph => "CUDA-graph replay",
            Gap::Attention => "change of attention kernel",
            Gap::Kernels => "kernels between layer runs that no layer launches",
            Gap::Count => "layer count of the other passes",
        }
    }
}

/// Passes of one file's ops: `all_ops[file]`, in time order, their names interned in
/// `names`. `path_stage` is the stage its path gives (SGLang's profile-by-stage files), if
/// any; `hint` a stage word elsewhere in its name, used only where the kernels tell nothing.
pub fn find_passes(
    names: &Interner,
    all_ops: &[Op],
    file: Range<usize>,
    path_stage: Option<&str>,
    hint: Option<&'static str>,
) -> Vec<PassSpan> {
    let Some(ops) = all_ops.get(file.clone()).filter(|o| !o.is_empty()) else {
        return Vec::new();
    };
    let anchors = anchors(ops);
    let mut spans = if anchors.len() < 2 {
        no_anchor_spans(ops, anchors.len())
    } else {
        anchored_spans(ops, &anchors)
    };
    classify(names, ops, &mut spans, path_stage, hint);
    for s in &mut spans {
        s.segment = ops[0].segment;
        s.ops = s.ops.start + file.start..s.ops.end + file.start;
    }
    spans
}

/// A pass before classification.
fn span(ops: Range<usize>, layers: u32, boundaries: String, uncertain: Option<String>) -> PassSpan {
    PassSpan {
        segment: 0,
        ops,
        layers,
        stage: "prefill",
        stage_evidence: String::new(),
        stage_guessed: false,
        boundaries,
        graph: false,
        graph_replays: 0,
        token_blocks: 0,
        uncertain,
    }
}

fn no_anchor_spans(ops: &[Op], anchors: usize) -> Vec<PassSpan> {
    if anchors == 0 {
        if let Some(parts) = passes_from_periodic_sequence(ops) {
            let n = parts.len();
            return parts
                .into_iter()
                .map(|p| {
                    span(
                        p,
                        0,
                        format!("periodic kernel sequence ({n} repeats; no attention kernel to anchor layers)"),
                        None,
                    )
                })
                .collect();
        }
    }
    let why = if anchors == 0 {
        "no attention kernel and no repeating kernel sequence: the file is one span, not a \
         forward pass found from its kernels"
    } else {
        "one attention launch in the file: one pass of one layer, or not a forward pass"
    };
    vec![span(
        0..ops.len(),
        anchors as u32,
        "whole file (segmentation uncertain)".to_string(),
        Some(why.to_string()),
    )]
}

fn anchored_spans(ops: &[Op], anchors: &[usize]) -> Vec<PassSpan> {
    let fam = |k: usize| ops[anchors[k]].family;
    let replay = |k: usize| ops[anchors[k]].graph;
    // One replay is one pass only where replays hold several layers (not per-layer or
    // piecewise graphs).
    let mut per_replay: FxMap<u32, u32> = FxMap::default();
    for k in 0..anchors.len() {
        if replay(k) != NOT_GRAPH {
            *per_replay.entry(replay(k)).or_default() += 1;
        }
    }
    let multi = per_replay.values().filter(|&&c| c >= 2).count();
    let replays_are_passes = multi * 2 > per_replay.len();
    let mut gaps: Vec<Gap> = (0..anchors.len() - 1)
        .map(|k| {
            if replays_are_passes && replay(k) != replay(k + 1) {
                Gap::Graph
            } else if fam(k) != fam(k + 1) {
                Gap::Attention
            } else {
                Gap::Layer
            }
        })
        .collect();
    // Soft boundaries inside each run between hard ones.
    let mut from = 0;
    for k in 0..=gaps.len() {
        if k == gaps.len() || gaps[k] != Gap::Layer {
            soft_boundaries(ops, anchors, from, k, &mut gaps);
            from = k + 1;
        }
    }
    let groups = repair_by_layer_count(&mut gaps);
    cut_passes(ops, anchors, &gaps, groups)
}

/// Marks gaps `from..to` (one run between hard boundaries) that hold kernel families fewer
/// than half the run's gaps hold, and more kernels than the run's median gap.
fn soft_boundaries(ops: &[Op], anchors: &[usize], from: usize, to: usize, gaps: &mut [Gap]) {
    let n = to.saturating_sub(from);
    if n < 3 {
        return;
    }
    let members = |k: usize| &ops[anchors[k] + 1..anchors[k + 1]];
    let mut seen_in: FxMap<NameId, (u32, usize)> = FxMap::default();
    for k in from..to {
        for o in members(k) {
            let e = seen_in.entry(o.family).or_insert((0, usize::MAX));
            if e.1 != k {
                *e = (e.0 + 1, k);
            }
        }
    }
    let lens: Vec<usize> = (from..to).map(|k| members(k).len()).collect();
    let typical = median(lens.clone());
    for k in from..to {
        let rare = lens[k - from] > typical
            && members(k).iter().any(|o| {
                seen_in
                    .get(&o.family)
                    .is_some_and(|e| (e.0 as usize) * 2 < n)
            });
        if rare {
            gaps[k] = Gap::Kernels;
        }
    }
}

/// Every pass runs all L layers. L is the layer count that explains the most layers (a
/// count explains the groups it divides); groups of k·L layers are split every L layers,
/// and neighbours of a + b = L layers split only by a soft boundary are merged. Returns
/// the groups as ranges of anchor indices.
fn repair_by_layer_count(gaps: &mut [Gap]) -> Vec<std::ops::Range<usize>> {
    let groups = |gaps: &[Gap]| {
        let mut out = Vec::new();
        let mut from = 0;
        for (k, g) in gaps.iter().enumerate() {
            if *g != Gap::Layer {
                out.push(from..k + 1);
                from = k + 1;
            }
        }
        out.push(from..gaps.len() + 1);
        out
    };
    let first = groups(gaps);
    let mut counts: Vec<usize> = first.iter().map(|g| g.len()).collect();
    counts.sort_unstable();
    counts.dedup();
    let explained =
        |c: usize| -> usize { first.iter().map(|g| g.len()).filter(|l| l % c == 0).sum() };
    let Some(l) = counts
        .iter()
        .copied()
        .filter(|&c| c >= 2)
        .max_by_key(|&c| (explained(c), c))
    else {
        return first;
    };
    // Merge soft-split neighbours that together make one pass (each group at most once).
    let mut w = 0;
    while w + 1 < first.len() {
        let (a, b) = (&first[w], &first[w + 1]);
        if a.len() + b.len() == l && gaps[a.end - 1] == Gap::Kernels {
            gaps[a.end - 1] = Gap::Layer;
            w += 2;
        } else {
            w += 1;
        }
    }
    // Split multiples.
    for g in groups(gaps) {
        if g.len() > l && g.len() % l == 0 {
            let mut k = g.start + l;
            while k < g.end {
                gaps[k - 1] = Gap::Count;
                k += l;
            }
        }
    }
    groups(gaps)
}

/// Layer length (ops from one anchor to the next) and the ops of a layer before its
/// anchor, from a group's first two anchors; `None` for a group of one layer.
fn layer_shape(ops: &[Op], anchors: &[usize]) -> Option<(usize, usize)> {
    let spacing: Vec<usize> = anchors.windows(2).map(|w| w[1] - w[0]).collect();
    let typ = median(spacing);
    let (a0, a1) = (*anchors.first()?, *anchors.get(1)?);
    let fam = |k: usize| ops[k].family;
    let mut off = 0;
    while off + 1 < a1 - a0 && off < a0 && fam(a0 - off - 1) == fam(a1 - off - 1) {
        off += 1;
    }
    Some((typ, off.min(typ.saturating_sub(1))))
}

fn cut_passes(
    ops: &[Op],
    anchors: &[usize],
    gaps: &[Gap],
    groups: Vec<std::ops::Range<usize>>,
) -> Vec<PassSpan> {
    let idle = idle_before(ops);
    let shapes: Vec<Option<(usize, usize)>> = groups
        .iter()
        .map(|g| layer_shape(ops, &anchors[g.clone()]))
        .collect();
    let fallback = shapes.iter().flatten().copied().next().unwrap_or((1, 0));
    let shape = |w: usize| shapes[w].unwrap_or(fallback);
    // cuts[w]: first op position of group w's pass.
    let mut cuts = vec![0usize];
    for w in 1..groups.len() {
        let last = anchors[groups[w - 1].end - 1];
        let next = anchors[groups[w].start];
        let (typ, off) = shape(w - 1);
        let (_, next_off) = shape(w);
        let lo = (last + typ.saturating_sub(off)).min(next);
        let hi = next.saturating_sub(next_off).max(last + 1);
        let (lo, hi) = if lo < hi { (lo, hi) } else { (last + 1, next) };
        let cut = (lo..=hi)
            .max_by_key(|&j| (idle[j], std::cmp::Reverse(j)))
            .unwrap_or(next);
        cuts.push(cut);
    }
    cuts.push(ops.len());
    let l_mode = {
        let mut c: FxMap<usize, usize> = FxMap::default();
        for g in &groups {
            *c.entry(g.len()).or_default() += g.len();
        }
        c.into_iter()
            .max_by_key(|&(len, n)| (n, len))
            .map_or(0, |x| x.0)
    };
    groups
        .iter()
        .enumerate()
        .map(|(w, g)| {
            let before = if w == 0 {
                None
            } else {
                Some(gaps[g.start - 1])
            };
            let after = gaps.get(g.end - 1).copied();
            let mut how: Vec<&str> = Vec::new();
            for b in [before, after].into_iter().flatten() {
                if !how.contains(&b.how()) {
                    how.push(b.how());
                }
            }
            let boundaries = if how.is_empty() {
                "the whole file is one run of layers (no boundary between passes)".to_string()
            } else {
                format!("{}; cut at the longest GPU idle time", how.join(" / "))
            };
            let uncertain = (g.len() != l_mode).then(|| {
                format!(
                    "{} layers where the other passes have {l_mode} (a pass cut by the trace's \
                     start or end, or boundaries found wrongly)",
                    g.len()
                )
            });
            span(cuts[w]..cuts[w + 1], g.len() as u32, boundaries, uncertain)
        })
        .collect()
}

/// Positions compared per candidate period (a sample keeps long files cheap).
const PERIOD_SAMPLES: usize = 4000;

/// Passes without attention kernels, from the periodicity of the kernel sequence: every
/// pass launches the same kernel-family sequence, so the sequence repeats with the pass
/// length as its period (the smallest period under which at least 99% of sampled
/// positions match; a layer period matches less because of each pass's prologue and
/// epilogue). Passes are cut at the largest idle gaps. `None` when the sequence does not
/// repeat at least twice.
fn passes_from_periodic_sequence(ops: &[Op]) -> Option<Vec<Range<usize>>> {
    let n = ops.len();
    if n < 8 {
        return None;
    }
    let fams: Vec<NameId> = ops.iter().map(|o| o.family).collect();
    let step = (n / PERIOD_SAMPLES).max(1);
    let period = (2..=n / 2).find(|&p| {
        if fams[p] != fams[0] {
            return false;
        }
        let (mut same, mut total) = (0usize, 0usize);
        for i in (0..n - p).step_by(step) {
            total += 1;
            same += usize::from(fams[i] == fams[i + p]);
        }
        total > 0 && same * 100 >= total * 99
    })?;
    let idle = idle_before(ops);
    let phase = (0..period)
        .max_by_key(|&k| sum_ns((k..n).step_by(period).map(|j| idle[j])))
        .unwrap_or(0);
    let mut cuts: Vec<usize> = (phase..n).step_by(period).filter(|&c| c > 0).collect();
    // A piece shorter than half a pass joins its neighbour.
    if cuts.first().is_some_and(|&c| c < period / 2) {
        cuts.remove(0);
    }
    if cuts.last().is_some_and(|&c| n - c < period / 2) {
        cuts.pop();
    }
    if cuts.is_empty() {
        return None;
    }
    let mut parts = Vec::with_capacity(cuts.len() + 1);
    let mut from = 0;
    for c in cuts {
        parts.push(from..c);
        from = c;
    }
    parts.push(from..n);
    Some(parts)
}

/// Ratio of thread blocks above which a pass holds clearly more tokens than another.
const TOKEN_RATIO: u64 = 4;

/// The stage of each pass, and why: the file name of a per-stage trace; else a stage word
/// in the attention kernel's name (FlashInfer's `BatchDecode...`, Triton's `decode_kernel`,
/// `extend_kernel`, ...); else a CUDA-graph replay (SGLang captures decode, runs
/// prefill eagerly); else tokens (thread blocks of the layers' pointwise kernels) against
/// the other passes; else a lone pass is taken as prefill and identical repeated passes as
/// decode steps.
fn classify(
    names: &Interner,
    ops: &[Op],
    spans: &mut [PassSpan],
    path_stage: Option<&str>,
    hint: Option<&'static str>,
) {
    let mut attention: Vec<Option<NameId>> = Vec::with_capacity(spans.len());
    for s in spans.iter_mut() {
        let mine = &ops[s.ops.clone()];
        let graph_ops = mine.iter().filter(|o| o.graph != NOT_GRAPH).count();
        let mut replays: Vec<u32> = mine
            .iter()
            .map(|o| o.graph)
            .filter(|&g| g != NOT_GRAPH)
            .collect();
        replays.sort_unstable();
        replays.dedup();
        s.graph_replays = replays.len() as u32;
        s.graph = graph_ops * 2 > s.ops.len();
        let anchors = anchors(mine);
        let inner = match (anchors.first(), anchors.last()) {
            (Some(&a), Some(&b)) => &mine[a..=b],
            _ => mine,
        };
        s.token_blocks = inner
            .iter()
            .filter(|o| o.category.is_pointwise() && o.category != Category::Softmax)
            .map(|o| o.blocks)
            .max()
            .unwrap_or(0);
        attention.push(anchors.first().map(|&a| mine[a].family));
    }
    let mut decided = vec![false; spans.len()];
    for (k, s) in spans.iter_mut().enumerate() {
        if let Some(st) = path_stage.and_then(stage_from_text) {
            s.stage = st;
            s.stage_evidence = "the file name (a per-stage trace, as SGLang's profile-by-stage \
                                mode writes)"
                .to_string();
        } else if let Some((st, name)) = attention[k]
            .map(|f| names.name(f))
            .and_then(|n| stage_from_text(n).map(|st| (st, n)))
        {
            s.stage = st;
            s.stage_evidence = format!("attention kernel `{name}` is a {st} kernel");
        } else if s.graph {
            s.stage = "decode";
            s.stage_evidence = "ran as a CUDA-graph replay (SGLang captures decode steps as \
                                graphs and runs prefill eagerly)"
                .to_string();
        } else {
            continue;
        }
        decided[k] = true;
    }
    let min_blocks = spans
        .iter()
        .map(|s| s.token_blocks)
        .filter(|&b| b > 0)
        .min();
    for k in 0..spans.len() {
        if decided[k] {
            continue;
        }
        let b = u64::from(spans[k].token_blocks);
        // A decided pass with the same attention kernel and about the same tokens.
        let like = (0..spans.len()).find(|&j| {
            decided[j]
                && attention[j] == attention[k]
                && b > 0
                && u64::from(spans[j].token_blocks) * 2 >= b
                && b * 2 >= u64::from(spans[j].token_blocks)
        });
        let (stage, why) = if let Some(j) = like {
            (
                spans[j].stage,
                format!(
                    "same attention kernel and about the same tokens as pass {j} ({})",
                    spans[j].stage
                ),
            )
        } else if let Some(m) = min_blocks.filter(|&m| b >= TOKEN_RATIO * u64::from(m)) {
            (
                "prefill",
                format!(
                    "its layers' pointwise kernels launch {}x the thread blocks of the \
                     smallest pass (many more tokens)",
                    b / u64::from(m)
                ),
            )
        } else if b > 0
            && spans
                .iter()
                .any(|o| u64::from(o.token_blocks) >= TOKEN_RATIO * b)
        {
            (
                "decode",
                "another pass launches at least 4x its thread blocks (it holds few tokens)"
                    .to_string(),
            )
        } else {
            let twins = (0..spans.len())
                .filter(|&j| {
                    attention[j] == attention[k] && spans[j].token_blocks == spans[k].token_blocks
                })
                .count();
            if twins >= 3 {
                (
                    "decode",
                    format!(
                        "{twins} passes with the same kernels and tokens (repeated decode steps)"
                    ),
                )
            } else if let Some(h) = hint {
                (
                    h,
                    format!("nothing in the kernels tells; the file name says {h}"),
                )
            } else {
                spans[k].stage_guessed = true;
                (
                    "prefill",
                    "nothing in its kernels or file name tells; a lone pass, not repeated, is \
                     taken as prefill"
                        .to_string(),
                )
            }
        };
        spans[k].stage = stage;
        spans[k].stage_evidence = why;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lens(groups: &[std::ops::Range<usize>]) -> Vec<usize> {
        groups.iter().map(|g| g.len()).collect()
    }

    #[test]
    fn a_run_of_three_passes_is_cut_every_l_layers() {
        // A prefill of 4 layers (ended by an attention change), then 12 decode layers with
        // no visible boundary: 3 passes of 4.
        let mut gaps = vec![Gap::Layer; 15];
        gaps[3] = Gap::Attention;
        let groups = repair_by_layer_count(&mut gaps);
        assert_eq!(lens(&groups), [4, 4, 4, 4]);
        assert_eq!(gaps[7], Gap::Count);
        assert_eq!(gaps[11], Gap::Count);
    }

    #[test]
    fn a_soft_boundary_inside_a_pass_is_merged_away() {
        // Passes of 4 layers; a false soft boundary cuts the second into 1 + 3.
        let mut gaps = vec![Gap::Layer; 11];
        gaps[3] = Gap::Graph;
        gaps[4] = Gap::Kernels;
        gaps[7] = Gap::Graph;
        let groups = repair_by_layer_count(&mut gaps);
        assert_eq!(lens(&groups), [4, 4, 4]);
        assert_eq!(gaps[4], Gap::Layer);
    }

    #[test]
    fn a_group_is_merged_with_one_neighbour_only() {
        // 4 | 3 | 1 | 3 | 4 with soft cuts around the 1 and L = 4: 3 + 1 merge, the
        // second 3 stays a pass of its own (reported as uncertain by its count).
        let mut gaps = vec![Gap::Layer; 14];
        gaps[3] = Gap::Graph;
        gaps[6] = Gap::Kernels;
        gaps[7] = Gap::Kernels;
        gaps[10] = Gap::Graph;
        let groups = repair_by_layer_count(&mut gaps);
        assert_eq!(lens(&groups), [4, 4, 3, 4]);
    }

    #[test]
    fn hard_boundaries_are_kept_even_when_counts_differ() {
        let mut gaps = vec![Gap::Layer; 6];
        gaps[1] = Gap::Graph;
        let groups = repair_by_layer_count(&mut gaps);
        assert_eq!(lens(&groups), [2, 5]);
    }

    #[test]
    fn stage_words_in_attention_kernels() {
        // The attention kernels' stage words are read as a file name's are.
        for (name, st) in [
            ("BatchDecodeWithPagedKVCacheKernel<...>", Some("decode")),
            (
                "flashinfer::BatchPrefillWithRaggedKVCacheKernel",
                Some("prefill"),
            ),
            ("_fwd_kernel_extend", Some("prefill")),
            ("cudnn_generated_fort_native_sdpa", None),
        ] {
            assert_eq!(stage_from_text(name), st, "{name}");
        }
    }
}
