//! Layer pipeline: forward passes, layer boundaries, layer types and representative layers.
//!
//! Passes and their stages come from the kernel sequence ([`super::passes`]); forward-like
//! annotations (`prefill_forward`, `decode_step_3`, ...) only name and confirm them, and give
//! the passes of a file whose kernels show no pass structure. Layer boundaries come, in
//! order of preference, from a
//! repeated Python frame that launches most of the pass's GPU work (module hierarchy), from
//! a repeating anchor kernel (one attention launch per layer), or from the most regular
//! repeating kernel family (periodicity of the kernel sequence).

use serde::Serialize;

use super::kernels::ratio;
use super::names::Category;
use super::passes::PassSpan;
use super::records::{add_ns, sum_ns, FxMap, NameId};
use super::stage::stage_from_text;
use super::timeline::Timeline;

/// One decoder layer inside a pass.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Layer {
    pub index: u32,
    /// `dense` or `moe`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Attention kernel variant of the layer (`cudnn-sdpa`, `flashinfer`, ...), if any.
    pub attention: Option<String>,
    /// `first`, `middle` or `last`.
    pub position: &'static str,
    pub start_us: f64,
    pub end_us: f64,
    pub wall_us: f64,
    pub gpu_us: f64,
    pub kernels: u32,
    #[serde(skip)]
    ops: Vec<usize>,
}

/// One forward pass.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pass {
    pub index: u32,
    /// `prefill` or `decode`, from the pass's kernels (see `stage_evidence`).
    pub stage: String,
    /// The forward annotation covering the pass, else `<stage> pass <n>`.
    pub name: String,
    pub start_us: f64,
    pub end_us: f64,
    pub wall_us: f64,
    pub gpu_us: f64,
    /// GPU ops (kernels, memsets, memcpys) of the pass.
    pub kernels: u32,
    /// How the pass's boundaries were found.
    pub pass_boundaries: String,
    /// Why the pass has its stage.
    pub stage_evidence: String,
    /// Most of the pass's kernels ran as CUDA-graph replays.
    pub cuda_graph: bool,
    pub graph_replays: u32,
    /// The forward/step annotation covering the pass's layers, where the trace has one.
    pub annotation: Option<String>,
    /// Whether the stage word of that annotation agrees with `stage` (`None`: no word).
    pub annotation_agrees: Option<bool>,
    /// Set when the pass may not be one forward pass, saying why.
    pub uncertain: Option<String>,
    /// How layer boundaries were found.
    pub layer_boundaries: String,
    pub layers: Vec<Layer>,
    /// GPU time before the first layer (embedding) and after the last (final norm, head).
    pub prologue_gpu_us: f64,
    pub epilogue_gpu_us: f64,
    #[serde(skip)]
    segment: u16,
}

/// Timing of one layer type in one stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerTypeRow {
    pub stage: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub attention: Option<String>,
    pub position: &'static str,
    pub layers: u32,
    pub mean_wall_us: f64,
    pub min_wall_us: f64,
    pub max_wall_us: f64,
    pub mean_gpu_us: f64,
    /// Share of the pass wall time spent in layers of this row (mean over passes).
    pub share_of_pass: f64,
}

/// A kernel family inside a representative layer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HotKernel {
    pub name: String,
    pub category: Category,
    pub gpu_us: f64,
    pub share: f64,
}

/// The layer picked to stand for a layer type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepresentativeLayer {
    pub stage: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub attention: Option<String>,
    pub pass_index: u32,
    pub layer_index: u32,
    pub wall_us: f64,
    pub median_wall_us: f64,
    pub hot_kernels: Vec<HotKernel>,
    /// Absolute trace timestamps (µs), as shown in the event's `ts`.
    pub start_us: f64,
    pub end_us: f64,
    /// Offsets from the stage's first GPU op (ms), for navigating in Perfetto.
    pub offset_start_ms: f64,
    pub offset_end_ms: f64,
}

/// The pass chosen for inspection in a stage, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChosenPass {
    pub stage: String,
    pub pass_index: u32,
    pub reason: String,
}

/// The whole layer pipeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerPipeline {
    pub passes: Vec<Pass>,
    pub chosen: Vec<ChosenPass>,
    pub layer_types: Vec<LayerTypeRow>,
    pub representatives: Vec<RepresentativeLayer>,
    /// How representatives are chosen.
    pub rule: String,
}

/// The representative-layer rule, stated in the report.
pub const REPRESENTATIVE_RULE: &str = "for each layer type, in the chosen pass, the middle \
layer (not first or last) whose wall time is closest to the median wall time of that type's \
middle layers; ties go to the lower index";

/// Builds the layer pipeline of every stage (or only `stage` when given).
pub fn layer_pipeline(tl: &Timeline, stage: Option<&str>) -> LayerPipeline {
    let mut passes: Vec<Pass> = Vec::new();
    let mut per_stage: FxMap<&str, u32> = FxMap::default();
    for seg in 0..tl.sources.len() as u16 {
        for mut p in passes_of_segment(tl, seg) {
            if stage.is_some_and(|s| s != p.stage) {
                continue;
            }
            p.index = passes.len() as u32;
            if p.annotation.is_none() {
                let n = per_stage.entry(stage_key(&p.stage)).or_default();
                p.name = format!("{} pass {n}", p.stage);
                *n += 1;
            }
            passes.push(p);
        }
    }
    let mut chosen = Vec::new();
    let mut layer_types = Vec::new();
    let mut representatives = Vec::new();
    let mut stage_names: Vec<String> = Vec::new();
    for p in &passes {
        if !stage_names.contains(&p.stage) {
            stage_names.push(p.stage.clone());
        }
    }
    for st in &stage_names {
        let sp: Vec<&Pass> = passes
            .iter()
            .filter(|p| &p.stage == st && !p.layers.is_empty())
            .collect();
        if sp.is_empty() {
            continue;
        }
        layer_types.extend(type_rows(st, &sp));
        let (pick, reason) = choose_pass(&sp);
        chosen.push(ChosenPass {
            stage: st.clone(),
            pass_index: pick.index,
            reason,
        });
        representatives.extend(representatives_of(tl, pick, &passes));
    }
    LayerPipeline {
        passes,
        chosen,
        layer_types,
        representatives,
        rule: REPRESENTATIVE_RULE.to_string(),
    }
}

/// The interned-free key of a stage name (stages are `prefill` / `decode`).
fn stage_key(stage: &str) -> &'static str {
    if stage == "decode" {
        "decode"
    } else {
        "prefill"
    }
}

fn is_forward_like(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    !l.starts_with("nccl:")
        && (stage_from_text(&l).is_some()
            || l.contains("forward")
            || l.contains("step")
            || l.contains("iteration"))
}

/// Forward-like annotation ranges of a segment (GPU ranges when there are any), innermost
/// first: (start, end, name, on_gpu).
fn forward_ranges(tl: &Timeline, seg: u16) -> Vec<(i64, i64, NameId, bool)> {
    let mut ranges: Vec<(i64, i64, NameId, bool)> = tl
        .annotations
        .iter()
        .filter(|(s, a)| *s == seg && is_forward_like(tl.names.name(a.name)))
        .map(|(_, a)| (a.ts_ns, a.end_ns, a.name, a.on_gpu))
        .collect();
    let any_gpu = ranges.iter().any(|r| r.3);
    ranges.retain(|r| r.3 == any_gpu);
    ranges.sort_by_key(|r| (r.1 - r.0, r.0));
    ranges
}

/// The passes of one input file: those found from its kernel sequence; where that found
/// no pass structure and the file has forward annotations, the annotated ranges.
fn passes_of_segment(tl: &Timeline, seg: u16) -> Vec<Pass> {
    let spans: Vec<&PassSpan> = tl.passes.iter().filter(|p| p.segment == seg).collect();
    let ranges = forward_ranges(tl, seg);
    let structureless = spans.len() == 1 && spans[0].uncertain.is_some() && spans[0].layers < 2;
    if structureless && !ranges.is_empty() {
        let ops: Vec<usize> = spans[0].ops.clone().collect();
        return annotated_passes(tl, seg, &ops, &ranges);
    }
    spans
        .into_iter()
        .map(|sp| {
            let mut p = build_pass(tl, seg, sp.stage, sp.ops.clone().collect());
            p.pass_boundaries = sp.boundaries.clone();
            p.stage_evidence = sp.stage_evidence.clone();
            p.cuda_graph = sp.graph;
            p.graph_replays = sp.graph_replays;
            p.uncertain = sp.uncertain.clone();
            confirm(tl, &mut p, &ranges);
            p
        })
        .collect()
}

/// Names the pass after the innermost forward annotation that holds all its layers (the
/// middle of its layers when only on the host), and says whether their stages agree.
fn confirm(tl: &Timeline, p: &mut Pass, ranges: &[(i64, i64, NameId, bool)]) {
    let (Some(first), Some(last)) = (p.layers.first(), p.layers.last()) else {
        return;
    };
    let on_gpu = ranges.first().is_some_and(|r| r.3);
    let (lo, hi) = if on_gpu {
        (
            (first.start_us * 1000.0).round() as i64,
            (last.end_us * 1000.0).round() as i64,
        )
    } else {
        let launches: Vec<i64> = p
            .layers
            .iter()
            .flat_map(|l| l.ops.iter().map(|&i| tl.ops[i].launch_ns))
            .filter(|&t| t != i64::MIN)
            .collect();
        match (launches.iter().min(), launches.iter().max()) {
            (Some(&a), Some(&b)) => (a, b),
            _ => return,
        }
    };
    if let Some(r) = ranges.iter().find(|r| r.0 <= lo && hi <= r.1) {
        let name = tl.names.name(r.2);
        p.annotation = Some(name.to_string());
        p.annotation_agrees = stage_from_text(name).map(|s| s == p.stage);
        p.name = name.to_string();
    }
}

/// Passes from annotated ranges, for a file whose kernel sequence showed no structure.
fn annotated_passes(
    tl: &Timeline,
    seg: u16,
    ops: &[usize],
    ranges: &[(i64, i64, NameId, bool)],
) -> Vec<Pass> {
    let any_gpu = ranges.first().is_some_and(|r| r.3);
    // Innermost ranges only: drop a range that contains another one.
    let mut inner: Vec<(i64, i64, NameId, bool)> = ranges
        .iter()
        .copied()
        .filter(|r| {
            !ranges
                .iter()
                .any(|q| q != r && q.0 >= r.0 && q.1 <= r.1 && (q.0, q.1) != (r.0, r.1))
        })
        .collect();
    inner.sort_by_key(|r| (r.0, -r.1));
    let mut per: Vec<Vec<usize>> = vec![Vec::new(); inner.len()];
    for &i in ops {
        let op = &tl.ops[i];
        let t = if any_gpu { op.ts_ns } else { op.launch_ns };
        let upto = inner.partition_point(|r| r.0 <= t);
        if let Some(k) = (0..upto)
            .rev()
            .take(4)
            .find(|&k| t < inner[k].1.max(inner[k].0 + 1))
        {
            per[k].push(i);
        }
    }
    let mut out = Vec::new();
    for (r, mut v) in inner.iter().zip(per) {
        if v.is_empty() {
            continue;
        }
        v.sort_by_key(|&i| tl.ops[i].ts_ns);
        let name = tl.names.name(r.2);
        let stage = stage_from_text(name).unwrap_or("prefill");
        let mut p = build_pass(tl, seg, stage, v);
        p.name = name.to_string();
        p.annotation = Some(name.to_string());
        p.annotation_agrees = stage_from_text(name).map(|_| true);
        p.pass_boundaries = "annotated range (the kernel sequence showed no pass structure)".into();
        p.stage_evidence = match stage_from_text(name) {
            Some(_) => format!("the annotation `{name}`"),
            None => "no stage word anywhere; taken as prefill".into(),
        };
        p.uncertain = Some(
            "found from annotations only: without them this file has no pass structure".into(),
        );
        out.push(p);
    }
    out
}

fn span(tl: &Timeline, ops: &[usize]) -> (i64, i64, i64) {
    let start = ops.iter().map(|&i| tl.ops[i].ts_ns).min().unwrap_or(0);
    let end = ops.iter().map(|&i| tl.ops[i].end_ns()).max().unwrap_or(0);
    let gpu = sum_ns(ops.iter().map(|&i| tl.ops[i].dur_ns));
    (start, end, gpu)
}

fn us(ns: i64) -> f64 {
    ns as f64 / 1000.0
}

fn build_pass(tl: &Timeline, seg: u16, stage: &str, ops: Vec<usize>) -> Pass {
    let (start, end, gpu) = span(tl, &ops);
    let (method, layer_ops) = match layers_from_frames(tl, seg, &ops) {
        Some(l) => ("module hierarchy (repeated Python frame)".to_string(), l),
        None => match layers_from_anchor(tl, &ops) {
            Some((how, l)) => (how, l),
            None => (
                "none found (whole pass as one layer)".to_string(),
                vec![ops.clone()],
            ),
        },
    };
    let n = layer_ops.len();
    let in_layers: std::collections::HashSet<usize> = layer_ops.iter().flatten().copied().collect();
    let first_layer_start = layer_ops
        .first()
        .and_then(|l| l.iter().map(|&i| tl.ops[i].ts_ns).min())
        .unwrap_or(start);
    let (mut pro, mut epi) = (0i64, 0i64);
    for &i in &ops {
        if !in_layers.contains(&i) {
            if tl.ops[i].ts_ns < first_layer_start {
                add_ns(&mut pro, tl.ops[i].dur_ns);
            } else {
                add_ns(&mut epi, tl.ops[i].dur_ns);
            }
        }
    }
    let layers = layer_ops
        .into_iter()
        .enumerate()
        .map(|(k, lops)| {
            let (s, e, g) = span(tl, &lops);
            let moe = lops.iter().any(|&i| tl.ops[i].category == Category::MoE);
            Layer {
                index: k as u32,
                kind: if moe { "moe" } else { "dense" }.to_string(),
                attention: attention_variant(tl, &lops),
                position: if n > 1 && k == 0 {
                    "first"
                } else if n > 1 && k == n - 1 {
                    "last"
                } else {
                    "middle"
                },
                start_us: us(s),
                end_us: us(e),
                wall_us: us(e - s),
                gpu_us: us(g),
                kernels: lops.len() as u32,
                ops: lops,
            }
        })
        .collect();
    Pass {
        index: 0,
        stage: stage.to_string(),
        name: String::new(),
        start_us: us(start),
        end_us: us(end),
        wall_us: us(end - start),
        gpu_us: us(gpu),
        kernels: ops.len() as u32,
        pass_boundaries: String::new(),
        stage_evidence: String::new(),
        cuda_graph: false,
        graph_replays: 0,
        annotation: None,
        annotation_agrees: None,
        uncertain: None,
        layer_boundaries: method,
        layers,
        prologue_gpu_us: us(pro),
        epilogue_gpu_us: us(epi),
        segment: seg,
    }
}

fn attention_variant(tl: &Timeline, ops: &[usize]) -> Option<String> {
    let mut best: Option<(i64, NameId)> = None;
    for &i in ops {
        let o = &tl.ops[i];
        if o.category == Category::Attention && best.is_none_or(|b| o.dur_ns > b.0) {
            best = Some((o.dur_ns, o.family));
        }
    }
    let (_, fam) = best?;
    let l = tl.names.name(fam).to_ascii_lowercase();
    let v = if l.contains("cudnn") && l.contains("sdpa") {
        "cudnn-sdpa"
    } else if l.contains("mla") {
        "mla"
    } else if l.contains("batchprefill") || l.contains("batchdecode") || l.contains("flashinfer") {
        "flashinfer"
    } else if l.contains("flash") || l.contains("fmha") {
        "flash"
    } else if l.contains("efficient") {
        "mem-efficient-sdpa"
    } else {
        return Some(tl.names.name(fam).chars().take(40).collect());
    };
    Some(v.to_string())
}

/// Layers from a Python frame name repeated ≥ 2 times in the pass, whose instances do not
/// nest and together launch at least half of the pass's GPU time.
fn layers_from_frames(tl: &Timeline, seg: u16, ops: &[usize]) -> Option<Vec<Vec<usize>>> {
    let launches: Vec<i64> = ops
        .iter()
        .map(|&i| tl.ops[i].launch_ns)
        .filter(|&t| t != i64::MIN)
        .collect();
    let (lo, hi) = (*launches.iter().min()?, *launches.iter().max()?);
    let mut by_name: FxMap<NameId, Vec<(i64, i64)>> = FxMap::default();
    for (s, f) in &tl.py_frames {
        if *s == seg && f.ts_ns <= hi && f.end_ns >= lo && f.ts_ns >= lo - 1 {
            by_name.entry(f.name).or_default().push((f.ts_ns, f.end_ns));
        }
    }
    let total = sum_ns(ops.iter().map(|&i| tl.ops[i].dur_ns));
    let mut best: Option<(i64, bool, Vec<Vec<usize>>)> = None;
    let mut names: Vec<_> = by_name.into_iter().collect();
    names.sort_by_key(|n| n.0);
    for (name, mut inst) in names {
        if inst.len() < 2 || tl.names.name(name).starts_with("<built-in") {
            continue;
        }
        inst.sort_unstable();
        if inst.windows(2).any(|w| w[1].0 < w[0].1) {
            continue; // nested or overlapping instances: not a layer
        }
        let mut per: Vec<Vec<usize>> = vec![Vec::new(); inst.len()];
        let mut covered = 0i64;
        for &i in ops {
            let t = tl.ops[i].launch_ns;
            let k = inst.partition_point(|r| r.0 <= t);
            if k > 0 && t <= inst[k - 1].1 {
                per[k - 1].push(i);
                add_ns(&mut covered, tl.ops[i].dur_ns);
            }
        }
        per.retain(|p| !p.is_empty());
        let launched: usize = per.iter().map(|p| p.len()).sum();
        // A layer launches many kernels; a frame around one op (`linear`) is no layer.
        if per.len() < 2 || covered * 2 < total || launched < 4 * per.len() {
            continue;
        }
        let module = tl.names.name(name).starts_with("nn.Module");
        let better = match &best {
            None => true,
            Some((c, m, _)) => (module, covered) > (*m, *c),
        };
        if better {
            best = Some((covered, module, per));
        }
    }
    best.map(|b| b.2)
}

/// Layers from an anchor kernel family repeated once per layer.
fn layers_from_anchor(tl: &Timeline, ops: &[usize]) -> Option<(String, Vec<Vec<usize>>)> {
    let fams: Vec<NameId> = ops.iter().map(|&i| tl.ops[i].family).collect();
    let mut positions: FxMap<NameId, Vec<usize>> = FxMap::default();
    for (k, f) in fams.iter().enumerate() {
        positions.entry(*f).or_default().push(k);
    }
    // Score candidates: (category rank, regularity, count).
    let mut best: Option<(u8, f64, usize, NameId)> = None;
    let mut cands: Vec<_> = positions.iter().collect();
    cands.sort_by_key(|c| *c.0);
    for (&fam, pos) in cands {
        if pos.len() < 2 {
            continue;
        }
        let cat = tl.ops[ops[pos[0]]].category;
        let rank = match cat {
            Category::Attention => 3,
            Category::MoE | Category::Gemm | Category::Norm => 1,
            Category::Memory | Category::Other => 0,
            _ => 1,
        };
        let reg = regularity(&fams, pos);
        if reg < if rank == 3 { 0.5 } else { 0.9 } {
            continue;
        }
        let key = (rank, reg, usize::MAX - pos.len(), fam);
        let better = match best {
            None => true,
            Some(b) => (key.0, key.1) > (b.0, b.1) || ((key.0, key.1) == (b.0, b.1) && key.2 > b.2),
        };
        if better {
            best = Some(key);
        }
    }
    let (rank, _, _, fam) = best?;
    let anchors = positions.get(&fam)?;
    let (a0, a1) = (anchors[0], anchors[1]);
    let mut offset = 0;
    while offset + 1 < a1 - a0 && offset < a0 && fams[a0 - offset - 1] == fams[a1 - offset - 1] {
        offset += 1;
    }
    let mut lens: Vec<usize> = anchors.windows(2).map(|w| w[1] - w[0]).collect();
    lens.sort_unstable();
    let typical = lens[lens.len() / 2];
    let mut layers = Vec::with_capacity(anchors.len());
    for (k, &a) in anchors.iter().enumerate() {
        let start = a - offset.min(a);
        let end = match anchors.get(k + 1) {
            Some(&n) => n - offset.min(n),
            None => (start + typical).min(ops.len()),
        };
        if end > start {
            layers.push(ops[start..end].to_vec());
        }
    }
    let how = if rank == 3 {
        format!(
            "anchor kernel `{}` (one attention launch per layer)",
            tl.names.name(fam)
        )
    } else {
        format!(
            "periodic kernel `{}` (most regular repeating family)",
            tl.names.name(fam)
        )
    };
    Some((how, layers))
}

/// Fraction of inter-anchor segments whose kernel sequence equals the most common one.
fn regularity(fams: &[NameId], pos: &[usize]) -> f64 {
    let segs: Vec<&[NameId]> = pos.windows(2).map(|w| &fams[w[0]..w[1]]).collect();
    if segs.is_empty() {
        return 0.0;
    }
    let mut counts: FxMap<&[NameId], usize> = FxMap::default();
    for s in &segs {
        *counts.entry(s).or_default() += 1;
    }
    let top = counts.values().copied().max().unwrap_or(0);
    top as f64 / segs.len() as f64
}

fn type_rows(stage: &str, passes: &[&Pass]) -> Vec<LayerTypeRow> {
    type Key = (String, Option<String>, &'static str);
    let mut acc: Vec<(Key, Vec<f64>, Vec<f64>)> = Vec::new();
    for p in passes {
        for l in &p.layers {
            let key = (l.kind.clone(), l.attention.clone(), l.position);
            match acc.iter_mut().find(|a| a.0 == key) {
                Some(a) => {
                    a.1.push(l.wall_us);
                    a.2.push(l.gpu_us);
                }
                None => acc.push((key, vec![l.wall_us], vec![l.gpu_us])),
            }
        }
    }
    let pass_wall: f64 = passes.iter().map(|p| p.wall_us).sum();
    let order = |p: &str| match p {
        "first" => 0,
        "middle" => 1,
        _ => 2,
    };
    acc.sort_by(|a, b| order(a.0 .2).cmp(&order(b.0 .2)).then(a.0 .0.cmp(&b.0 .0)));
    acc.into_iter()
        .map(|((kind, attention, position), walls, gpus)| {
            let n = walls.len() as f64;
            LayerTypeRow {
                stage: stage.to_string(),
                kind,
                attention,
                position,
                layers: walls.len() as u32,
                mean_wall_us: walls.iter().sum::<f64>() / n,
                min_wall_us: walls.iter().copied().fold(f64::INFINITY, f64::min),
                max_wall_us: walls.iter().copied().fold(0.0, f64::max),
                mean_gpu_us: gpus.iter().sum::<f64>() / n,
                share_of_pass: ratio(walls.iter().sum(), pass_wall),
            }
        })
        .collect()
}

fn choose_pass<'a>(passes: &[&'a Pass]) -> (&'a Pass, String) {
    let skip_first = passes.len() > 2;
    let pool: Vec<&Pass> = passes
        .iter()
        .skip(usize::from(skip_first))
        .copied()
        .collect();
    let mut sorted = pool.clone();
    sorted.sort_by(|a, b| a.wall_us.total_cmp(&b.wall_us).then(a.index.cmp(&b.index)));
    let pick = sorted[(sorted.len() - 1) / 2];
    let reason = if passes.len() == 1 {
        "the only forward pass of the stage".to_string()
    } else {
        format!(
            "median wall time ({:.1} µs) among {} passes of the stage{}",
            pick.wall_us,
            pool.len(),
            if skip_first {
                ", first pass skipped as warm-up"
            } else {
                ""
            }
        )
    };
    (pick, reason)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn representatives_of(tl: &Timeline, pass: &Pass, all: &[Pass]) -> Vec<RepresentativeLayer> {
    let stage_start = all
        .iter()
        .filter(|p| p.stage == pass.stage && p.segment == pass.segment)
        .map(|p| p.start_us)
        .fold(f64::INFINITY, f64::min);
    let mut types: Vec<(String, Option<String>)> = Vec::new();
    for l in &pass.layers {
        let k = (l.kind.clone(), l.attention.clone());
        if !types.contains(&k) {
            types.push(k);
        }
    }
    let mut out = Vec::new();
    for (kind, attention) in types {
        let of_type: Vec<&Layer> = pass
            .layers
            .iter()
            .filter(|l| l.kind == kind && l.attention == attention)
            .collect();
        let middle: Vec<&Layer> = of_type
            .iter()
            .copied()
            .filter(|l| l.position == "middle")
            .collect();
        let pool = if middle.is_empty() { of_type } else { middle };
        let med = median(pool.iter().map(|l| l.wall_us).collect());
        let Some(rep) = pool.iter().copied().min_by(|a, b| {
            (a.wall_us - med)
                .abs()
                .total_cmp(&(b.wall_us - med).abs())
                .then(a.index.cmp(&b.index))
        }) else {
            continue;
        };
        let mut fam: FxMap<NameId, (i64, Category)> = FxMap::default();
        let mut total = 0i64;
        for &i in &rep.ops {
            let o = &tl.ops[i];
            let e = fam.entry(o.family).or_insert((0, o.category));
            add_ns(&mut e.0, o.dur_ns);
            add_ns(&mut total, o.dur_ns);
        }
        let mut hot: Vec<(NameId, (i64, Category))> = fam.into_iter().collect();
        hot.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(&b.0)));
        out.push(RepresentativeLayer {
            stage: pass.stage.clone(),
            kind,
            attention,
            pass_index: pass.index,
            layer_index: rep.index,
            wall_us: rep.wall_us,
            median_wall_us: med,
            hot_kernels: hot
                .into_iter()
                .take(5)
                .map(|(f, (ns, category))| HotKernel {
                    name: tl.names.name(f).to_string(),
                    category,
                    gpu_us: us(ns),
                    share: ratio(ns as f64, total as f64),
                })
                .collect(),
            start_us: rep.start_us,
            end_us: rep.end_us,
            offset_start_ms: (rep.start_us - stage_start) / 1000.0,
            offset_end_ms: (rep.end_us - stage_start) / 1000.0,
        });
    }
    out
}
