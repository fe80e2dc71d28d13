//! Joins the raw records into one GPU timeline: each op gets its kernel family, category,
//! launching host op, Python location and stage.

use std::path::Path;

use super::names::{canonical_name, classify, Category};
use super::op::{Op, NOT_GRAPH};
use super::passes::{find_passes, PassSpan};
use super::records::{
    Annotation, FxMap, GpuKind, Interner, NameId, PyFrame, TraceMeta, TraceRecords, NO_NAME,
};
use super::stage::stage_from_text;

/// Stage of an op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageInfo {
    pub name: String,
    /// How the stage was decided (`annotation`, `path`, `whole trace`).
    pub source: &'static str,
}

/// The joined GPU timeline of one or more trace files.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    pub names: Interner,
    /// Sorted by (segment, ts).
    pub ops: Vec<Op>,
    pub stages: Vec<StageInfo>,
    pub annotations: Vec<(u16, Annotation)>,
    pub py_frames: Vec<(u16, PyFrame)>,
    /// Forward passes found from each file's kernel sequence, in time order per file.
    pub passes: Vec<PassSpan>,
    pub meta: TraceMeta,
    pub sources: Vec<String>,
}

/// Is `file` a Python location worth reporting (user or framework code, not torch
/// internals or builtins)?
fn is_user_frame(name: &str) -> bool {
    if !name.contains(".py(") {
        return false;
    }
    let skip = [
        "torch/",
        "<built-in",
        "typing.py",
        "contextlib.py",
        "threading.py",
        "functools.py",
        "abc.py",
        "<frozen",
        "/profiler/",
    ];
    !skip
        .iter()
        .any(|s| name.starts_with(s) || name.contains(&format!("/{s}")))
}

impl Timeline {
    /// Builds the timeline of one trace file; `path_stage` is the stage its path names.
    pub fn from_records(mut rec: TraceRecords, path_stage: Option<&str>, source: &str) -> Self {
        rec.gpu_ops.sort_by_key(|o| o.ts_ns);
        let mut names = std::mem::take(&mut rec.names);

        let mut launch_by_corr: FxMap<u64, usize> = FxMap::default();
        launch_by_corr.reserve(rec.launches.len());
        for (i, l) in rec.launches.iter().enumerate() {
            launch_by_corr.insert(l.correlation, i);
        }

        let mut family_of: FxMap<NameId, NameId> = FxMap::default();
        let mut category_of: FxMap<(NameId, NameId), Category> = FxMap::default();
        let mut ops = Vec::with_capacity(rec.gpu_ops.len());
        for g in &rec.gpu_ops {
            let launch_idx = launch_by_corr.get(&g.correlation).copied();
            let launch = launch_idx.and_then(|i| rec.launches.get(i));
            let ext = if g.external_id != u64::MAX {
                g.external_id
            } else {
                launch.map(|l| l.external_id).unwrap_or(u64::MAX)
            };
            let cpu_op = rec.cpu_ops.get(&ext).copied().unwrap_or(NO_NAME);
            let family = match family_of.get(&g.name) {
                Some(&f) => f,
                None => {
                    let canon = canonical_name(names.name(g.name));
                    let f = names.intern(&canon);
                    family_of.insert(g.name, f);
                    f
                }
            };
            let category = *category_of.entry((g.name, cpu_op)).or_insert_with(|| {
                let op = (cpu_op != NO_NAME).then(|| names.name(cpu_op));
                match g.kind {
                    GpuKind::Kernel => classify(names.name(g.name), op),
                    _ => Category::Memory,
                }
            });
            ops.push(Op {
                family,
                raw: g.name,
                category,
                kind: g.kind,
                stream: g.stream,
                ts_ns: g.ts_ns,
                dur_ns: g.dur_ns,
                cpu_op,
                py_loc: NO_NAME,
                launch_ns: launch.map(|l| l.ts_ns).unwrap_or(i64::MIN),
                launch_thread: launch.map(|l| l.thread).unwrap_or(u32::MAX),
                blocks: g.blocks,
                graph: match (launch_idx, launch) {
                    (Some(i), Some(l)) if l.graph => i as u32,
                    _ => NOT_GRAPH,
                },
                stage: 0,
                segment: 0,
            });
        }
        // Free what the ops were built from before finding passes (peak memory).
        drop(launch_by_corr);
        drop(std::mem::take(&mut rec.gpu_ops));
        drop(std::mem::take(&mut rec.launches));
        attribute_python(&mut ops, &mut rec.py_frames, &names);

        let mut tl = Timeline {
            names,
            ops,
            stages: Vec::new(),
            annotations: rec.annotations.iter().map(|a| (0, *a)).collect(),
            py_frames: rec.py_frames.iter().map(|f| (0, *f)).collect(),
            passes: Vec::new(),
            meta: rec.meta,
            sources: vec![source.to_string()],
        };
        tl.assign_stages(path_stage);
        let name = Path::new(source).file_name().map(|n| n.to_string_lossy());
        let hint = name.as_deref().and_then(stage_from_text);
        tl.passes = find_passes(&tl.names, &tl.ops, 0..tl.ops.len(), path_stage, hint);
        tl.stage_by_passes();
        tl
    }

    /// A file with neither stage annotations nor a stage in its name takes its stages from
    /// the classified passes, so a mixed trace gives prefill and decode tables apart.
    fn stage_by_passes(&mut self) {
        let whole = self.stages.len() == 1 && self.stages[0].source == "whole trace";
        if !whole
            || self
                .passes
                .iter()
                .all(|p| p.uncertain.is_some() || p.stage_guessed)
        {
            return;
        }
        self.stages.clear();
        let mut of_pass = Vec::with_capacity(self.passes.len());
        for k in 0..self.passes.len() {
            let name = self.passes[k].stage;
            of_pass.push(self.stage_index(name, "kernel sequence"));
        }
        for (p, &st) in self.passes.iter().zip(&of_pass) {
            for op in &mut self.ops[p.ops.clone()] {
                op.stage = st;
            }
        }
    }

    fn stage_index(&mut self, name: &str, source: &'static str) -> u16 {
        if let Some(i) = self.stages.iter().position(|s| s.name == name) {
            return i as u16;
        }
        self.stages.push(StageInfo {
            name: name.to_string(),
            source,
        });
        (self.stages.len() - 1) as u16
    }

    fn assign_stages(&mut self, path_stage: Option<&str>) {
        let stage_ranges = |on_gpu: bool| -> Vec<(i64, i64, &'static str)> {
            let mut v: Vec<_> = self
                .annotations
                .iter()
                .filter(|(_, a)| a.on_gpu == on_gpu)
                .filter_map(|(_, a)| {
                    stage_from_text(self.names.name(a.name)).map(|s| (a.ts_ns, a.end_ns, s))
                })
                .collect();
            v.sort_by_key(|r| r.0);
            v
        };
        let gpu_ranges = stage_ranges(true);
        let (ranges, on_gpu) = if gpu_ranges.is_empty() {
            (stage_ranges(false), false)
        } else {
            (gpu_ranges, true)
        };
        if ranges.is_empty() {
            let (name, source) = match path_stage {
                Some(s) => (s.to_string(), "path"),
                None => ("all".to_string(), "whole trace"),
            };
            let idx = self.stage_index(&name, source);
            for op in &mut self.ops {
                op.stage = idx;
            }
            return;
        }
        let mut stage_of = Vec::with_capacity(self.ops.len());
        for op in &self.ops {
            let t = if on_gpu { op.ts_ns } else { op.launch_ns };
            let upto = ranges.partition_point(|r| r.0 <= t);
            let hit = ranges[..upto]
                .iter()
                .rev()
                .take(8)
                .find(|r| t >= r.0 && t < r.1.max(r.0 + 1))
                .map(|r| r.2);
            stage_of.push(hit);
        }
        let mut out = Vec::with_capacity(stage_of.len());
        for hit in stage_of {
            out.push(match hit {
                Some(s) => self.stage_index(s, "annotation"),
                None => self.stage_index("unannotated", "annotation"),
            });
        }
        for (op, s) in self.ops.iter_mut().zip(out) {
            op.stage = s;
        }
    }

    /// Appends another file's timeline as a new segment (names re-interned).
    pub fn append(&mut self, other: Timeline) {
        let seg = self.sources.len() as u16;
        let base = self.ops.len();
        let mut remap: FxMap<NameId, NameId> = FxMap::default();
        let mut map = |id: NameId, names: &mut Interner| -> NameId {
            if id == NO_NAME {
                return NO_NAME;
            }
            *remap
                .entry(id)
                .or_insert_with(|| names.intern(other.names.name(id)))
        };
        let stage_map: Vec<u16> = other
            .stages
            .iter()
            .map(|s| self.stage_index(&s.name, s.source))
            .collect();
        for op in &other.ops {
            let mut o = *op;
            o.family = map(o.family, &mut self.names);
            o.raw = map(o.raw, &mut self.names);
            o.cpu_op = map(o.cpu_op, &mut self.names);
            o.py_loc = map(o.py_loc, &mut self.names);
            o.stage = stage_map.get(o.stage as usize).copied().unwrap_or(0);
            o.segment = seg;
            self.ops.push(o);
        }
        for (_, a) in &other.annotations {
            let mut a = *a;
            a.name = map(a.name, &mut self.names);
            self.annotations.push((seg, a));
        }
        for (_, f) in &other.py_frames {
            let mut f = *f;
            f.name = map(f.name, &mut self.names);
            self.py_frames.push((seg, f));
        }
        for p in &other.passes {
            let mut p = p.clone();
            p.segment = seg;
            p.ops = p.ops.start + base..p.ops.end + base;
            self.passes.push(p);
        }
        if self.meta.device_name.is_none() {
            self.meta.device_name = other.meta.device_name.clone();
        }
        self.sources.extend(other.sources);
    }

    /// Indices of the ops of stage `stage`, in time order within each segment.
    pub fn stage_ops(&self, stage: u16) -> Vec<usize> {
        (0..self.ops.len())
            .filter(|&i| self.ops[i].stage == stage)
            .collect()
    }

    /// Earliest op timestamp (ns) of segment `seg`.
    pub fn segment_start_ns(&self, seg: u16) -> i64 {
        self.ops
            .iter()
            .filter(|o| o.segment == seg)
            .map(|o| o.ts_ns)
            .min()
            .unwrap_or(0)
    }
}

/// Sets `py_loc` of each op to the innermost user-code Python frame active at its launch.
fn attribute_python(ops: &mut [Op], frames: &mut [PyFrame], names: &Interner) {
    if frames.is_empty() {
        return;
    }
    frames.sort_by_key(|a| (a.thread, a.ts_ns, -a.end_ns));
    let eligible: FxMap<NameId, bool> = frames
        .iter()
        .map(|f| (f.name, is_user_frame(names.name(f.name))))
        .collect();
    let mut queries: Vec<(u32, i64, usize)> = ops
        .iter()
        .enumerate()
        .filter(|(_, o)| o.launch_ns != i64::MIN)
        .map(|(i, o)| (o.launch_thread, o.launch_ns, i))
        .collect();
    queries.sort_unstable();
    // Stack of (end_ns, nearest eligible frame name at or below this entry).
    let mut stack: Vec<(i64, NameId)> = Vec::new();
    let mut fi = 0;
    let mut cur_thread = u32::MAX;
    for (thread, t, op_idx) in queries {
        if thread != cur_thread {
            cur_thread = thread;
            stack.clear();
            fi = frames.partition_point(|f| f.thread < thread);
        }
        while fi < frames.len() && frames[fi].thread == thread && frames[fi].ts_ns <= t {
            let f = frames[fi];
            while stack.last().is_some_and(|s| s.0 <= f.ts_ns) {
                stack.pop();
            }
            let below = stack.last().map(|s| s.1).unwrap_or(NO_NAME);
            let here = if eligible.get(&f.name).copied().unwrap_or(false) {
                f.name
            } else {
                below
            };
            stack.push((f.end_ns, here));
            fi += 1;
        }
        while stack.last().is_some_and(|s| s.0 < t) {
            stack.pop();
        }
        if let Some(op) = ops.get_mut(op_idx) {
            op.py_loc = stack.last().map(|s| s.1).unwrap_or(NO_NAME);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_frames() {
        assert!(is_user_frame("gen_tp_traces.py(36): forward"));
        assert!(is_user_frame(
            "sglang/srt/layers/layernorm.py(70): forward_cuda"
        ));
        assert!(!is_user_frame("torch/nn/modules/linear.py(130): forward"));
        assert!(!is_user_frame("<built-in function linear>"));
        assert!(!is_user_frame(
            "/usr/lib/python3/site-packages/torch/nn/modules/module.py(1): x"
        ));
    }
}
