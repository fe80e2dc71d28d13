//! Trace analysis on the real H200 torch-profiler fixtures.

mod profile_support;

use profile_support::{events, gpu_ops, gpu_ranges, trace, traces_dir};
use sota_bot::profile::{
    self, analyze_path, AnalyzeOptions, Category, StageAnalysis, TraceAnalysis,
};

fn all_rows(path: &str) -> TraceAnalysis {
    let opts = AnalyzeOptions {
        min_share: 0.0,
        ..Default::default()
    };
    analyze_path(&trace(path), &opts).unwrap()
}

fn stage<'a>(a: &'a TraceAnalysis, name: &str) -> &'a StageAnalysis {
    a.stages
        .iter()
        .find(|s| s.stage == name)
        .unwrap_or_else(|| panic!("no stage {name}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1.0)
}

fn in_ranges(ops: &[(f64, f64)], ranges: &[(f64, f64)]) -> f64 {
    ops.iter()
        .filter(|(ts, _)| ranges.iter().any(|(a, b)| ts >= a && ts < b))
        .map(|(_, d)| d)
        .sum()
}

#[test]
fn stage_sums_equal_trace_kernel_durations() {
    for (file, prefix, stage_name) in [
        (
            "llama8b_prefill_b4_in1000.trace.json.gz",
            "prefill_forward",
            "prefill",
        ),
        (
            "mixtral8l_prefill_b4_in1000.trace.json.gz",
            "prefill_forward",
            "prefill",
        ),
        (
            "mixtral8l_decode_b8_ctx512_16steps.trace.json.gz",
            "decode_step_",
            "decode",
        ),
    ] {
        let evs = events(file);
        let ops = gpu_ops(&evs);
        let a = all_rows(file);
        let total: f64 = ops.iter().map(|o| o.1).sum();
        let sum_stages: f64 = a.stages.iter().map(|s| s.total_gpu_us).sum();
        assert!(close(sum_stages, total), "{file}: {sum_stages} vs {total}");
        let expected = in_ranges(&ops, &gpu_ranges(&evs, prefix));
        let st = stage(&a, stage_name);
        assert!(
            close(st.total_gpu_us, expected),
            "{file}: {} vs {expected}",
            st.total_gpu_us
        );
        let rows: f64 = st.kernel_table.iter().map(|r| r.gpu_us).sum();
        assert!(close(rows, st.total_gpu_us), "{file}: rows {rows}");
        let shares: f64 = st.kernel_table.iter().map(|r| r.share).sum();
        assert!((shares - 1.0).abs() < 1e-9, "{file}: shares {shares}");
        let launches: u64 = st.kernel_table.iter().map(|r| r.launches).sum();
        assert_eq!(launches, st.launches);
    }
}

#[test]
fn default_table_folds_small_rows_and_still_sums_to_100() {
    let a = analyze_path(
        &trace("llama8b_prefill_b4_in1000.trace.json.gz"),
        &AnalyzeOptions::default(),
    )
    .unwrap();
    let st = stage(&a, "prefill");
    let rem = st.kernel_table.last().unwrap();
    assert!(
        rem.folded_rows > 0 && rem.name.starts_with("(remainder"),
        "{}",
        rem.name
    );
    assert!(st.kernel_table[..st.kernel_table.len() - 1]
        .iter()
        .all(|r| r.share >= 0.01));
    let shares: f64 = st.kernel_table.iter().map(|r| r.share).sum();
    assert!((shares - 1.0).abs() < 1e-9);
    // Repeated launches aggregate: the big GEMM family has all its launches in one row.
    let gemm = st
        .kernel_table
        .iter()
        .find(|r| r.name == "nvjet_sm90_tst_256x160_64x4_2x1_v_bz_coopA_TNT")
        .unwrap();
    assert_eq!(gemm.launches, 65);
    assert_eq!(gemm.cpu_op.as_deref(), Some("aten::mm"));
}

#[test]
fn categories_of_real_kernels() {
    let cat_of = |a: &TraceAnalysis, st: &str, needle: &str| -> Vec<Category> {
        stage(a, st)
            .kernel_table
            .iter()
            .filter(|r| r.name.contains(needle))
            .map(|r| r.category)
            .collect()
    };
    let llama = all_rows("llama8b_prefill_b4_in1000.trace.json.gz");
    for c in cat_of(&llama, "prefill", "nvjet_sm90") {
        assert_eq!(c, Category::Gemm);
    }
    assert_eq!(
        cat_of(&llama, "prefill", "cudnn_generated_fort_native_sdpa"),
        vec![Category::Attention]
    );
    assert_eq!(cat_of(&llama, "prefill", "MeanOps"), vec![Category::Norm]);
    assert_eq!(
        cat_of(&llama, "prefill", "rsqrt_kernel_cuda"),
        vec![Category::Norm]
    );
    assert_eq!(
        cat_of(&llama, "prefill", "silu_kernel"),
        vec![Category::Activation]
    );
    assert_eq!(
        cat_of(&llama, "prefill", "cutlass_80_simt_sgemm"),
        vec![Category::Gemm]
    );

    let mix = all_rows("mixtral8l_prefill_b4_in1000.trace.json.gz");
    let grouped = cat_of(&mix, "prefill", "GroupProblemShape");
    assert!(!grouped.is_empty());
    assert!(grouped.iter().all(|c| *c == Category::MoE));
    assert_eq!(
        cat_of(&mix, "prefill", "prepare_grouped_gemm_data"),
        vec![Category::MoE]
    );
    assert_eq!(
        cat_of(&mix, "prefill", "splitKreduce"),
        vec![Category::Gemm]
    );
    assert_eq!(
        cat_of(&mix, "prefill", "softmax_warp_forward"),
        vec![Category::Softmax]
    );

    let tp = all_rows("tp2/llama8b_tp2_prefill_b4_in1000_rank0.trace.json.gz");
    assert_eq!(
        cat_of(&tp, "prefill", "ncclDevKernel_AllReduce"),
        vec![Category::Communication]
    );
}

#[test]
fn python_locations_attributed_with_stack() {
    let tp = all_rows("tp2/llama8b_tp2_prefill_b4_in1000_rank0.trace.json.gz");
    let st = stage(&tp, "prefill");
    let sdpa = st
        .kernel_table
        .iter()
        .find(|r| r.category == Category::Attention)
        .unwrap();
    let top = &sdpa.python_locations[0];
    assert!(
        top.location.starts_with("gen_tp_traces.py("),
        "{}",
        top.location
    );
    assert!((top.share - 1.0).abs() < 1e-9);
    let ar = st
        .kernel_table
        .iter()
        .find(|r| r.category == Category::Communication)
        .unwrap();
    assert_eq!(ar.cpu_op.as_deref(), Some("record_param_comms"));
    assert!(ar.python_locations[0]
        .location
        .starts_with("gen_tp_traces.py("));
}

#[test]
fn tp2_exposed_communication_is_first() {
    let a = analyze_path(
        &trace("tp2/llama8b_tp2_prefill_b4_in1000_rank0.trace.json.gz"),
        &AnalyzeOptions::default(),
    )
    .unwrap();
    assert_eq!(a.world_size, Some(2));
    assert_eq!(a.rank, Some(0));
    let st = stage(&a, "prefill");
    let first = &st.overlap_table[0];
    assert_eq!(first.category, Some(Category::Communication), "{first:?}");
    assert!(first.name.starts_with("ncclDevKernel_AllReduce"));
    // One stream: the all-reduce is fully exposed, nothing hides it.
    assert!(first.exclusive_us > 0.99 * first.gpu_us, "{first:?}");
    assert_eq!(first.hidden_us, 0.0);
    assert!(first.exposed_share > 0.05);
    assert_ne!(first.recommendation, profile::overlap::Recommendation::Skip);
    // Exclusive + idle == the stage's wall time on a single stream.
    let excl: f64 = st.overlap_table.iter().map(|r| r.exclusive_us).sum();
    assert!(
        (excl - st.wall_us).abs() < 1e-3 * st.wall_us,
        "{excl} vs {}",
        st.wall_us
    );
    // The TP-only fuse pattern is confirmed here and absent without TP.
    let f = st
        .fuse_table
        .iter()
        .find(|r| r.id == "allreduce-add-rmsnorm")
        .unwrap();
    assert_eq!(f.confidence, profile::fuse::Confidence::Confirmed);
    assert_eq!(f.occurrences, 32);
    let llama = analyze_path(
        &trace("llama8b_prefill_b4_in1000.trace.json.gz"),
        &AnalyzeOptions::default(),
    )
    .unwrap();
    assert!(stage(&llama, "prefill")
        .fuse_table
        .iter()
        .all(|r| r.id != "allreduce-add-rmsnorm"));
}

#[test]
fn directory_input_picks_lowest_rank() {
    let a = analyze_path(&traces_dir().join("tp2"), &AnalyzeOptions::default()).unwrap();
    assert_eq!(a.sources.len(), 1);
    assert!(
        a.sources[0].ends_with("rank0.trace.json.gz"),
        "{:?}",
        a.sources
    );
}

#[test]
fn fuse_patterns_on_hf_traces() {
    let a = analyze_path(
        &trace("llama8b_prefill_b4_in1000.trace.json.gz"),
        &AnalyzeOptions::default(),
    )
    .unwrap();
    let st = stage(&a, "prefill");
    let ids: Vec<&str> = st.fuse_table.iter().map(|r| r.id.as_str()).collect();
    for id in ["add-rmsnorm", "rope-decomposed", "silu-and-mul"] {
        let r = st
            .fuse_table
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("{id} in {ids:?}"));
        assert_eq!(r.confidence, profile::fuse::Confidence::Confirmed, "{id}");
        assert!(r.share > 0.0 && !r.evidence.is_empty());
    }
    // add-rmsnorm subsumes the plain decomposed norm.
    assert!(!ids.contains(&"rmsnorm-decomposed"), "{ids:?}");
    assert!(st
        .fuse_table
        .iter()
        .find(|r| r.id == "add-rmsnorm")
        .unwrap()
        .subsumes
        .contains(&"rmsnorm-decomposed".to_string()));
    // MoE patterns only where experts run.
    assert!(!ids.iter().any(|i| i.starts_with("moe-")), "{ids:?}");
    let m = analyze_path(
        &trace("mixtral8l_prefill_b4_in1000.trace.json.gz"),
        &AnalyzeOptions::default(),
    )
    .unwrap();
    let mids: Vec<&str> = stage(&m, "prefill")
        .fuse_table
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    assert!(
        mids.contains(&"moe-expert-chain") && mids.contains(&"moe-router-topk"),
        "{mids:?}"
    );
    // A dense model config gates the MoE patterns out.
    let dense = profile::ModelInfo {
        model_type: Some("llama".into()),
        ..Default::default()
    };
    let g = analyze_path(
        &trace("mixtral8l_prefill_b4_in1000.trace.json.gz"),
        &AnalyzeOptions {
            model: Some(dense),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(stage(&g, "prefill")
        .fuse_table
        .iter()
        .all(|r| !r.id.starts_with("moe-")));
}

#[test]
fn decode_trace_has_decode_and_unannotated_prefill() {
    let a = all_rows("mixtral8l_decode_b8_ctx512_16steps.trace.json.gz");
    let names: Vec<&str> = a.stages.iter().map(|s| s.stage.as_str()).collect();
    assert!(
        names.contains(&"decode") && names.contains(&"unannotated"),
        "{names:?}"
    );
    let only = analyze_path(
        &trace("mixtral8l_decode_b8_ctx512_16steps.trace.json.gz"),
        &AnalyzeOptions {
            stage: Some("decode".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(only.stages.len(), 1);
    let bad = analyze_path(
        &trace("mixtral8l_decode_b8_ctx512_16steps.trace.json.gz"),
        &AnalyzeOptions {
            stage: Some("verify".into()),
            ..Default::default()
        },
    );
    assert!(matches!(
        bad,
        Err(profile::ProfileError::UnknownStage { .. })
    ));
}

#[test]
fn json_shape_for_machines() {
    let a = analyze_path(
        &trace("mixtral8l_prefill_b4_in1000.trace.json.gz"),
        &AnalyzeOptions::default(),
    )
    .unwrap();
    let v = serde_json::to_value(&a).unwrap();
    let st = v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "prefill")
        .unwrap();
    for k in ["stage", "total_gpu_us", "kernels", "overlap", "fuse"] {
        assert!(st.get(k).is_some(), "missing {k}");
    }
    let k = &st["kernels"][0];
    for key in ["name", "category", "gpu_us", "share", "launches"] {
        assert!(k.get(key).is_some(), "missing {key}");
    }
    assert_eq!(k["category"], "moe");
}

#[test]
fn markdown_tables_render() {
    let a = analyze_path(
        &trace("tp2/llama8b_tp2_prefill_b4_in1000_rank0.trace.json.gz"),
        &AnalyzeOptions::default(),
    )
    .unwrap();
    let md = profile::render_analysis_md(&a);
    assert!(md.contains("#### Kernel table: prefill"));
    assert!(md.contains("#### Overlap opportunities: prefill"));
    assert!(md.contains("#### Fuse patterns: prefill"));
    assert!(md.contains("| communication |"));
}

#[test]
fn compare_names_the_stage_and_rows() {
    let o = AnalyzeOptions {
        min_share: 0.0,
        ..Default::default()
    };
    let tp = analyze_path(
        &trace("tp2/llama8b_tp2_prefill_b4_in1000_rank0.trace.json.gz"),
        &o,
    )
    .unwrap();
    let llama = analyze_path(&trace("llama8b_prefill_b4_in1000.trace.json.gz"), &o).unwrap();
    // The 32-layer single-GPU run uses more GPU time than one TP rank of 16 layers.
    let c = profile::compare(&llama, &tp, "llama", "tp-rank0");
    assert_eq!(c.slowest_stage.as_deref(), Some("prefill"));
    let st = c.stages.iter().find(|s| s.stage == "prefill").unwrap();
    assert!(st.gap_us > 0.0);
    let gemm = st
        .categories
        .iter()
        .find(|r| r.category == Category::Gemm)
        .unwrap();
    assert!(gemm.delta_us > 0.0);
    let comm = st
        .categories
        .iter()
        .find(|r| r.category == Category::Communication)
        .unwrap();
    assert!(comm.delta_us < 0.0 && comm.left_us == 0.0);
    let sum: f64 = st.categories.iter().map(|r| r.delta_us).sum();
    assert!((sum - st.gap_us).abs() < 1e-6 * st.gap_us.abs().max(1.0));
    assert!(c.summary.contains("prefill"));
    assert!(profile::render_comparison_md(&c).contains("| gemm |"));
}
