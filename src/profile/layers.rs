//! Layer pipeline: forward passes, layer boundaries, layer types and representative layers.
//!
//! Passes come from forward-like annotations (`prefill_forward`, `decode_step_3`, ...), else
//! from the periodicity of the stage's kernel sequence (each pass launches the same
//! sequence), else the whole stage is one pass. Layer boundaries come, in order of preference, from a
//! repeated Python frame that launches most of the pass's GPU work (module hierarchy), from
//! a repeating anchor kernel (one attention launch per layer), or from the most regular
//! repeating kernel family (periodicity of the kernel sequence).

use serde::Serialize;

use super::kernels::ratio;
use super::names::Category;
use super::records::{FxMap, NameId};
use super::timeline::{stage_from_text, Timeline};

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
    pub stage: String,
    /// Annotation name, or `whole stage`.
    pub name: String,
    pub start_us: f64,
    pub end_us: f64,
    pub wall_us: f64,
    pub gpu_us: f64,
    /// How layer boundaries were found.
    pub boundary_method: String,
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
    let mut passes = Vec::new();
    for (si, st) in tl.stages.iter().enumerate() {
        if stage.is_some_and(|s| s != st.name) {
            continue;
        }
        if st.name == "unannotated" && stage.is_none() && tl.stages.len() > 1 {
            // Work outside every stage annotation (set-up, warm-up prefill) is no pass.
            continue;
        }
        let ops = tl.stage_ops(si as u16);
        let mut found = find_passes(tl, &ops, &st.name);
        for p in &mut found {
            p.index = passes.len() as u32;
            passes.push(p.clone());
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

fn is_forward_like(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    !l.starts_with("nccl:")
        && (stage_from_text(&l).is_some()
            || l.contains("forward")
            || l.contains("step")
            || l.contains("iteration"))
}

fn find_passes(tl: &Timeline, stage_ops: &[usize], stage: &str) -> Vec<Pass> {
    let mut by_seg: FxMap<u16, Vec<usize>> = FxMap::default();
    for &i in stage_ops {
        by_seg.entry(tl.ops[i].segment).or_default().push(i);
    }
    let mut segs: Vec<_> = by_seg.into_iter().collect();
    segs.sort_by_key(|s| s.0);
    let mut out = Vec::new();
    for (seg, ops) in segs {
        let mut ranges: Vec<(i64, i64, NameId, bool)> = tl
            .annotations
            .iter()
            .filter(|(s, a)| *s == seg && is_forward_like(tl.names.name(a.name)))
            .map(|(_, a)| (a.ts_ns, a.end_ns, a.name, a.on_gpu))
            .collect();
        let any_gpu = ranges.iter().any(|r| r.3);
        ranges.retain(|r| r.3 == any_gpu);
        ranges.sort_by_key(|r| (r.0, -r.1));
        // Keep innermost ranges: drop a range that contains another one.
        let inner: Vec<(i64, i64, NameId, bool)> = ranges
            .iter()
            .copied()
            .filter(|r| {
                !ranges
                    .iter()
                    .any(|q| q != r && q.0 >= r.0 && q.1 <= r.1 && (q.0, q.1) != (r.0, r.1))
            })
            .collect();
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        if inner.is_empty() {
            match passes_from_periodic_gaps(tl, &ops) {
                Some(split) => {
                    for (k, part) in split.into_iter().enumerate() {
                        groups.push((format!("{stage} pass {k} (periodic kernel sequence)"), part));
                    }
                }
                None => groups.push(("whole stage".to_string(), ops)),
            }
        } else {
            let mut per: Vec<Vec<usize>> = vec![Vec::new(); inner.len()];
            for &i in &ops {
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
            for (r, v) in inner.iter().zip(per) {
                if !v.is_empty() {
                    groups.push((tl.names.name(r.2).to_string(), v));
                }
            }
        }
        for (name, mut ops) in groups {
            ops.sort_by_key(|&i| tl.ops[i].ts_ns);
            out.push(build_pass(tl, seg, stage, name, ops));
        }
    }
    out
}

/// Positions compared per candidate period (a sample keeps long stages cheap).
const PERIOD_SAMPLES: usize = 4000;

/// Passes of a stage without forward annotations, from the periodicity of its kernel
/// sequence: every pass launches the same kernel-family sequence, so the sequence repeats
/// with the pass length as its period (the smallest period under which at least 99% of
/// sampled positions match; a layer period matches less because of each pass's prologue
/// and epilogue). Passes are then aligned on the largest idle gaps (sampling and
/// scheduling between passes). `None` when the stage does not repeat at least twice.
fn passes_from_periodic_gaps(tl: &Timeline, ops: &[usize]) -> Option<Vec<Vec<usize>>> {
    let n = ops.len();
    if n < 8 {
        return None;
    }
    let mut sorted = ops.to_vec();
    sorted.sort_by_key(|&i| tl.ops[i].ts_ns);
    let fams: Vec<NameId> = sorted.iter().map(|&i| tl.ops[i].family).collect();
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
    // Idle time before each op: its start minus the latest end of everything before it.
    let mut idle = vec![0i64; n];
    let mut latest = tl.ops[sorted[0]].end_ns();
    for (k, &i) in sorted.iter().enumerate().skip(1) {
        let op = &tl.ops[i];
        idle[k] = (op.ts_ns - latest).max(0);
        latest = latest.max(op.end_ns());
    }
    let phase = (0..period)
        .max_by_key(|&k| (k..n).step_by(period).map(|j| idle[j]).sum::<i64>())
        .unwrap_or(0);
    // A period holding one attention launch is a layer, not a pass (a stage of one pass
    // whose layers repeat exactly).
    let attention = |range: std::ops::Range<usize>| {
        sorted[range]
            .iter()
            .filter(|&&i| tl.ops[i].category == Category::Attention)
            .count()
    };
    if attention(0..n) > 0 && attention(phase..(phase + period).min(n)) < 2 {
        return None;
    }
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
        parts.push(sorted[from..c].to_vec());
        from = c;
    }
    parts.push(sorted[from..].to_vec());
    Some(parts)
}

fn span(tl: &Timeline, ops: &[usize]) -> (i64, i64, i64) {
    let start = ops.iter().map(|&i| tl.ops[i].ts_ns).min().unwrap_or(0);
    let end = ops.iter().map(|&i| tl.ops[i].end_ns()).max().unwrap_or(0);
    let gpu = ops.iter().map(|&i| tl.ops[i].dur_ns).sum();
    (start, end, gpu)
}

fn us(ns: i64) -> f64 {
    ns as f64 / 1000.0
}

fn build_pass(tl: &Timeline, seg: u16, stage: &str, name: String, ops: Vec<usize>) -> Pass {
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
                pro += tl.ops[i].dur_ns;
            } else {
                epi += tl.ops[i].dur_ns;
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
        name,
        start_us: us(start),
        end_us: us(end),
        wall_us: us(end - start),
        gpu_us: us(gpu),
        boundary_method: method,
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
    let total: i64 = ops.iter().map(|&i| tl.ops[i].dur_ns).sum();
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
                covered += tl.ops[i].dur_ns;
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
            e.0 += o.dur_ns;
            total += o.dur_ns;
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
