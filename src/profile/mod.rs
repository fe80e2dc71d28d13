//! Torch-profiler trace analysis: kernel, overlap-opportunity and fuse-pattern tables per
//! stage, the layer pipeline, side-by-side comparison, and Nsight Compute digests.
//!
//! I/O stays in [`load_timeline`] / [`analyze_path`] (streaming reads of plain or gzip
//! Chrome traces); everything else is pure functions over the compact [`timeline::Timeline`].

use std::path::{Path, PathBuf};

use serde::Serialize;

pub mod compare;
mod event;
pub mod fuse;
pub mod ingest;
pub mod kernels;
pub mod layers;
pub mod names;
pub mod ncu;
pub mod op;
pub mod overlap;
pub mod passes;
pub mod records;
pub mod render;
pub mod scan;
mod simd;
pub mod stage;
pub mod timeline;

pub use compare::{compare, TraceComparison};
pub use fuse::{FuseCatalog, FuseContext, FuseRow, ModelInfo};
pub use kernels::{CategoryRow, KernelRow};
pub use layers::{layer_pipeline, LayerPipeline};
pub use names::{canonical_name, classify, Category};
pub use overlap::OverlapRow;
pub use render::{
    render_analysis_md, render_comparison_md, render_fuse_table_md, render_kernel_table_md,
    render_layer_pipeline_md, render_overlap_table_md,
};
pub use timeline::Timeline;

/// Errors of trace analysis; each says which file and where.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file could not be read.
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    /// The trace text is not a valid Chrome trace.
    #[error("{path}: {message} (byte offset {offset} of the JSON text)")]
    Malformed {
        path: PathBuf,
        offset: u64,
        message: String,
    },
    /// A directory without trace files.
    #[error("{path}: no trace files (*.json, *.json.gz) found")]
    NoTraces { path: PathBuf },
    /// The trace has no GPU kernels at all.
    #[error(
        "{path}: the trace has no GPU kernels, memsets or memcpys (was CUDA activity profiled?)"
    )]
    NoGpuWork { path: PathBuf },
    /// `--stage` named a stage the trace does not have.
    #[error("stage `{stage}` not found; the trace has: {available}")]
    UnknownStage { stage: String, available: String },
    /// The fuse-pattern catalog is invalid.
    #[error("fuse-pattern catalog {origin}: {message}")]
    Catalog { origin: String, message: String },
}

/// Options of [`analyze_path`].
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    /// Only this stage (`prefill`, `decode`, ...); all stages when `None`.
    pub stage: Option<String>,
    /// Rows under this share of the stage (0..1) fold into a remainder row.
    pub min_share: f64,
    /// Model facts for the fuse catalog's gates (from `--model-config`).
    pub model: Option<ModelInfo>,
    /// Tensor-parallel size when known (else taken from the trace).
    pub tp: Option<u32>,
    /// Fuse catalog; the built-in one when `None`.
    pub catalog: Option<FuseCatalog>,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        Self {
            stage: None,
            min_share: 0.01,
            model: None,
            tp: None,
            catalog: None,
        }
    }
}

/// The three tables (plus a category roll-up) of one stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageAnalysis {
    pub stage: String,
    /// How the stage was identified (`annotation`, `path`, `whole trace`).
    pub stage_source: String,
    pub total_gpu_us: f64,
    /// Sum over input files of the span from the first to the last GPU op.
    pub wall_us: f64,
    pub launches: u64,
    /// Of `launches`, the ops replayed from CUDA graphs.
    pub graph_launches: u64,
    #[serde(rename = "kernels")]
    pub kernel_table: Vec<KernelRow>,
    pub categories: Vec<CategoryRow>,
    #[serde(rename = "overlap")]
    pub overlap_table: Vec<OverlapRow>,
    #[serde(rename = "fuse")]
    pub fuse_table: Vec<FuseRow>,
}

/// Analysis of one trace (or one rank's traces of a directory).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceAnalysis {
    /// Files analysed.
    pub sources: Vec<String>,
    pub device: Option<String>,
    pub rank: Option<u32>,
    pub world_size: Option<u32>,
    pub min_share: f64,
    pub stages: Vec<StageAnalysis>,
}

/// Reads a trace file, or the lowest rank's traces of a directory, into one timeline.
pub fn load_timeline(path: &Path) -> Result<Timeline, ProfileError> {
    let files = trace_files(path)?;
    let mut tl: Option<Timeline> = None;
    for f in files {
        let rec = ingest::read_trace_file(&f)?;
        let stage = stage::stage_from_path(f.strip_prefix(path).unwrap_or(&f))
            .or_else(|| stage::stage_from_path(&f));
        let one = Timeline::from_records(rec, stage, &f.display().to_string());
        match &mut tl {
            None => tl = Some(one),
            Some(t) => t.append(one),
        }
    }
    let tl = tl.ok_or_else(|| ProfileError::NoTraces {
        path: path.to_path_buf(),
    })?;
    if tl.ops.is_empty() {
        return Err(ProfileError::NoGpuWork {
            path: path.to_path_buf(),
        });
    }
    Ok(tl)
}

/// Rank named in a trace file name (`rank0`, `rank-1`, `rank_2`, SGLang's `TP-0`), if any.
pub fn rank_from_name(name: &str) -> Option<u32> {
    let l = name.to_ascii_lowercase();
    for key in ["rank", "tp-"] {
        let mut from = 0;
        while let Some(p) = l[from..].find(key) {
            let rest = &l[from + p + key.len()..];
            let rest = rest.trim_start_matches(['-', '_']);
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            if !digits.is_empty() {
                return digits.parse().ok();
            }
            from += p + key.len();
        }
    }
    None
}

fn is_trace_file(p: &Path) -> bool {
    let n = p
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    n.ends_with(".json") || n.ends_with(".json.gz")
}

/// The files to analyse: the file itself, or a directory's trace files (recursively) of
/// the lowest rank present (files without a rank count as rank 0).
pub fn trace_files(path: &Path) -> Result<Vec<PathBuf>, ProfileError> {
    if !path.is_dir() {
        if !path.exists() {
            return Err(ProfileError::Io {
                path: path.to_path_buf(),
                message: "no such file or directory".into(),
            });
        }
        return Ok(vec![path.to_path_buf()]);
    }
    let mut found = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| ProfileError::Io {
            path: dir.clone(),
            message: e.to_string(),
        })?;
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if is_trace_file(&p) {
                found.push(p);
            }
        }
    }
    let rank_of = |p: &PathBuf| {
        rank_from_name(
            &p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        )
        .unwrap_or(0)
    };
    let Some(lowest) = found.iter().map(rank_of).min() else {
        return Err(ProfileError::NoTraces {
            path: path.to_path_buf(),
        });
    };
    found.retain(|p| rank_of(p) == lowest);
    found.sort();
    Ok(found)
}

/// Analyses a trace file or directory: the three tables per stage.
pub fn analyze_path(path: &Path, opts: &AnalyzeOptions) -> Result<TraceAnalysis, ProfileError> {
    let tl = load_timeline(path)?;
    analyze_timeline(&tl, opts)
}

/// Pure analysis of a loaded timeline.
pub fn analyze_timeline(
    tl: &Timeline,
    opts: &AnalyzeOptions,
) -> Result<TraceAnalysis, ProfileError> {
    let builtin;
    let catalog = match &opts.catalog {
        Some(c) => c,
        None => {
            builtin = FuseCatalog::builtin()?;
            &builtin
        }
    };
    if let Some(s) = &opts.stage {
        if !tl.stages.iter().any(|st| &st.name == s) {
            return Err(ProfileError::UnknownStage {
                stage: s.clone(),
                available: tl
                    .stages
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    let ctx = FuseContext {
        model: opts.model.clone(),
        tp: opts.tp.or(tl.meta.world_size),
    };
    let mut by_stage: Vec<Vec<usize>> = vec![Vec::new(); tl.stages.len()];
    for (i, op) in tl.ops.iter().enumerate() {
        if let Some(v) = by_stage.get_mut(op.stage as usize) {
            v.push(i);
        }
    }
    let mut stages = Vec::new();
    for (si, st) in tl.stages.iter().enumerate() {
        if opts.stage.as_ref().is_some_and(|s| s != &st.name) {
            continue;
        }
        let ops = &by_stage[si];
        let (total_gpu_us, kernel_table) = kernels::kernel_table(tl, ops, opts.min_share);
        let (wall_us, overlap_table) = overlap::overlap_table(tl, ops, opts.min_share);
        stages.push(StageAnalysis {
            stage: st.name.clone(),
            stage_source: st.source.to_string(),
            total_gpu_us,
            wall_us,
            launches: ops.len() as u64,
            graph_launches: ops
                .iter()
                .filter(|&&i| tl.ops[i].graph != op::NOT_GRAPH)
                .count() as u64,
            kernel_table,
            categories: kernels::category_table(tl, ops),
            overlap_table,
            fuse_table: fuse::fuse_table(tl, ops, catalog, &ctx),
        });
    }
    Ok(TraceAnalysis {
        sources: tl.sources.clone(),
        device: tl.meta.device_name.clone(),
        rank: tl.meta.rank,
        world_size: tl.meta.world_size,
        min_share: opts.min_share,
        stages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_from_names() {
        assert_eq!(rank_from_name("llama_rank0.trace.json.gz"), Some(0));
        assert_eq!(rank_from_name("x-TP-3-DECODE.trace.json.gz"), Some(3));
        assert_eq!(rank_from_name("rank_12.json"), Some(12));
        assert_eq!(rank_from_name("llama8b_prefill.json"), None);
        assert_eq!(rank_from_name("llama8b_tp2_prefill.json"), None);
    }
}
