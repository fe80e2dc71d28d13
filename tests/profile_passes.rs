//! Forward passes found from the kernel sequence of real traces: every fixture with its
//! annotations removed from the JSON text, and traces captured as SGLang writes them (no
//! annotations, decode as CUDA-graph replays, prefill and decode interleaved, per-stage
//! files), checked against how they were captured (`sglang_like/captures.json`).

mod profile_support;

use profile_support::{
    all_trace_fixtures, events, gpu_ranges, stripped_text, timeline_of, trace, trace_text,
};
use sota_bot::profile::layers::Pass;
use sota_bot::profile::{
    analyze_timeline, layer_pipeline, load_timeline, render_layer_pipeline_md, AnalyzeOptions,
    LayerPipeline,
};

const GRAPHS: &str = "sglang_like/llama8b_graphs_prefill_b8_in512_16decode.trace.json.gz";
const CB: &str = "sglang_like/llama8l_cb_interleaved.trace.json.gz";

/// (stage, how it was identified) of each stage of an analysis.
fn stage_names(a: &sota_bot::profile::TraceAnalysis) -> Vec<(&str, &str)> {
    a.stages
        .iter()
        .map(|s| (s.stage.as_str(), s.stage_source.as_str()))
        .collect()
}

fn pipeline_of(text: &[u8], name: &str) -> LayerPipeline {
    layer_pipeline(&timeline_of(text, name), None)
}

fn layer_kernels(p: &Pass) -> u32 {
    p.layers.iter().map(|l| l.kernels).sum()
}

/// What must not change when annotations go: count, stage, layers and kernels per pass.
fn shape(p: &LayerPipeline) -> Vec<(String, usize, u32, u32, bool)> {
    p.passes
        .iter()
        .map(|x| {
            (
                x.stage.clone(),
                x.layers.len(),
                x.kernels,
                layer_kernels(x),
                x.cuda_graph,
            )
        })
        .collect()
}

#[test]
fn every_fixture_gives_the_same_passes_with_its_annotations_removed_from_the_json() {
    let names = all_trace_fixtures();
    assert!(names.len() >= 9, "{names:?}");
    let mut annotated_files = 0;
    for name in &names {
        let with = trace_text(name);
        let without = stripped_text(name);
        let tl = timeline_of(&without, name);
        assert!(tl.annotations.is_empty(), "{name}: annotations left");
        let tl_with = timeline_of(&with, name);
        annotated_files += usize::from(!tl_with.annotations.is_empty());
        let (a, b) = (layer_pipeline(&tl_with, None), layer_pipeline(&tl, None));
        assert!(!b.passes.is_empty(), "{name}");
        assert_eq!(shape(&a), shape(&b), "{name}");
        for p in &b.passes {
            assert!(
                p.uncertain.is_none(),
                "{name} pass {}: {:?}",
                p.index,
                p.uncertain
            );
            assert!(
                p.layers.len() >= 8,
                "{name} pass {}: {}",
                p.index,
                p.layer_boundaries
            );
            assert!(!p.pass_boundaries.is_empty() && !p.stage_evidence.is_empty());
        }
    }
    assert!(annotated_files >= 5, "the older fixtures carry annotations");
}

#[test]
fn mixtral_decode_without_annotations_is_a_prefill_and_16_decode_steps_inside_their_ranges() {
    let name = "mixtral8l_decode_b8_ctx512_16steps.trace.json.gz";
    let p = pipeline_of(&stripped_text(name), name);
    let stages: Vec<&str> = p.passes.iter().map(|x| x.stage.as_str()).collect();
    assert_eq!(stages.len(), 17, "{stages:?}");
    assert_eq!(stages[0], "prefill");
    assert!(stages[1..].iter().all(|s| *s == "decode"), "{stages:?}");
    assert!(p
        .passes
        .iter()
        .all(|x| x.layers.len() == 8 && x.layers.iter().all(|l| l.kind == "moe")));
    // The captured truth: each decode_step_<i> GPU range holds exactly the layers of pass i+1.
    let evs = events(name);
    for (i, pass) in p.passes[1..].iter().enumerate() {
        let step = format!("decode_step_{i}");
        let r: Vec<(f64, f64)> = evs
            .iter()
            .filter(|e| e["cat"] == "gpu_user_annotation" && e["name"] == step.as_str())
            .map(|e| {
                let ts = e["ts"].as_f64().unwrap();
                (ts, ts + e["dur"].as_f64().unwrap())
            })
            .collect();
        assert_eq!(r.len(), 1, "{step}");
        let (lo, hi) = r[0];
        for l in &pass.layers {
            assert!(
                l.start_us >= lo - 1e-3 && l.end_us <= hi + 1e-3,
                "step {i} layer {}: {}..{} outside {lo}..{hi}",
                l.index,
                l.start_us,
                l.end_us
            );
        }
        assert!(
            p.passes
                .iter()
                .filter(|o| o.index != pass.index)
                .flat_map(|o| &o.layers)
                .all(|l| l.end_us <= lo + 1e-3 || l.start_us >= hi - 1e-3),
            "decode_step_{i} holds another pass's layer"
        );
    }
    assert!(p.passes[1..]
        .iter()
        .all(|x| x.stage_evidence.contains("thread blocks")));
    assert!(p.passes[0].stage_evidence.contains("thread blocks"));
    // With the annotations the same passes are named after them and confirmed.
    let a = pipeline_of(&trace_text(name), name);
    for (i, pass) in a.passes[1..].iter().enumerate() {
        assert_eq!(pass.name, format!("decode_step_{i}"));
        assert_eq!(pass.annotation_agrees, Some(true));
    }
    assert_eq!(
        a.passes[0].annotation, None,
        "the prefill has no annotation"
    );
    assert_eq!(a.passes[0].name, "prefill pass 0");
}

#[test]
fn prefill_fixtures_without_annotations_are_one_pass_inside_the_prefill_range() {
    for (name, layers) in [
        ("llama8b_prefill_b4_in1000.trace.json.gz", 32),
        ("mixtral8l_prefill_b4_in1000.trace.json.gz", 8),
        ("tp2/llama8b_tp2_prefill_b4_in1000_rank0.trace.json.gz", 16),
        ("tp2/llama8b_tp2_prefill_b4_in1000_rank1.trace.json.gz", 16),
    ] {
        let p = pipeline_of(&stripped_text(name), name);
        assert_eq!(p.passes.len(), 1, "{name}");
        let pass = &p.passes[0];
        assert_eq!(
            (pass.stage.as_str(), pass.layers.len()),
            ("prefill", layers),
            "{name}"
        );
        let ranges = gpu_ranges(&events(name), "prefill_forward");
        assert_eq!(ranges.len(), 1, "{name}");
        let (lo, hi) = ranges[0];
        assert!(pass
            .layers
            .iter()
            .all(|l| l.start_us >= lo - 1e-3 && l.end_us <= hi + 1e-3));
    }
}

/// The pass schedule the capture script recorded (`benches/capture/sglang_like.py`).
fn captured(key: &str, file: Option<&str>) -> (usize, Vec<serde_json::Value>) {
    let text = std::fs::read(trace("sglang_like/captures.json")).unwrap();
    let m: serde_json::Value = serde_json::from_slice(&text).unwrap();
    let c = &m["captures"][key];
    let passes = match file {
        Some(f) => c["files"][f]["passes"].clone(),
        None => c["passes"].clone(),
    };
    (
        c["layers"].as_u64().unwrap() as usize,
        passes.as_array().unwrap().clone(),
    )
}

fn assert_matches_capture(
    p: &LayerPipeline,
    layers: usize,
    schedule: &[serde_json::Value],
    what: &str,
) {
    let found: Vec<(&str, bool)> = p
        .passes
        .iter()
        .map(|x| (x.stage.as_str(), x.cuda_graph))
        .collect();
    let want: Vec<(&str, bool)> = schedule
        .iter()
        .map(|s| (s["stage"].as_str().unwrap(), s["graph"].as_bool().unwrap()))
        .collect();
    assert_eq!(found, want, "{what}");
    for (x, s) in p.passes.iter().zip(schedule) {
        assert_eq!(
            x.layers.len(),
            layers,
            "{what} pass {}: {}",
            x.index,
            x.layer_boundaries
        );
        assert!(x
            .layers
            .iter()
            .all(|l| l.kind == "dense" && l.attention.is_some()));
        if s["graph"] == true {
            assert_eq!(x.graph_replays, 1, "{what} pass {}", x.index);
        }
    }
    // Passes of the same stage and batch launch the same layer kernels.
    for (a, sa) in p.passes.iter().zip(schedule) {
        for (b, sb) in p.passes.iter().zip(schedule) {
            if sa == sb {
                assert_eq!(layer_kernels(a), layer_kernels(b), "{what}: {sa}");
            }
        }
    }
}

#[test]
fn graph_decode_trace_is_one_eager_prefill_and_16_graph_replays_of_32_layers() {
    let (layers, schedule) = captured("llama8b_graphs", None);
    assert_eq!((layers, schedule.len()), (32, 17));
    let tl = load_timeline(&trace(GRAPHS)).unwrap();
    assert!(tl.annotations.is_empty(), "captured without annotations");
    let p = layer_pipeline(&tl, None);
    assert_matches_capture(&p, layers, &schedule, GRAPHS);
    for x in &p.passes[1..] {
        assert!(
            x.pass_boundaries.contains("CUDA-graph replay"),
            "{}",
            x.pass_boundaries
        );
        assert!(
            x.stage_evidence.contains("CUDA-graph replay"),
            "{}",
            x.stage_evidence
        );
        // Graph replays attributed to layers like eager kernels: every layer has its
        // attention kernel and its GEMMs.
        assert!(x.layers.iter().all(|l| l.kernels == x.layers[1].kernels));
    }
    assert!(!p.passes[0].cuda_graph);
    let md = render_layer_pipeline_md(&p);
    assert!(md.contains("17 passes found from the kernel sequence: 1 prefill, 16 decode; 16 ran as CUDA-graph replays"), "{md}");
    assert!(md.contains("| yes (1 replay) |"), "{md}");
    let rep = p
        .representatives
        .iter()
        .find(|r| r.stage == "decode")
        .unwrap();
    assert!(rep
        .hot_kernels
        .iter()
        .any(|k| k.category == sota_bot::profile::Category::Gemm));
}

#[test]
fn continuous_batching_trace_interleaves_prefill_and_decode_passes() {
    let (layers, schedule) = captured("llama8l_cb", None);
    assert_eq!((layers, schedule.len()), (8, 15));
    let tl = load_timeline(&trace(CB)).unwrap();
    assert!(tl.annotations.is_empty());
    let p = layer_pipeline(&tl, None);
    assert_matches_capture(&p, layers, &schedule, CB);
    // The eager decode steps (batch 5, above the largest graph) share prefill's attention
    // kernel: their boundaries come from the kernels between layer runs.
    let eager_decode: Vec<&Pass> = p
        .passes
        .iter()
        .filter(|x| x.stage == "decode" && !x.cuda_graph)
        .collect();
    assert_eq!(eager_decode.len(), 4);
    assert!(eager_decode
        .iter()
        .all(|x| x.pass_boundaries.contains("no layer launches")));
    // Stage tables of the analysis come apart too.
    let a = analyze_timeline(&tl, &AnalyzeOptions::default()).unwrap();
    let names = stage_names(&a);
    assert_eq!(
        names,
        [
            ("prefill", "kernel sequence"),
            ("decode", "kernel sequence")
        ]
    );
    let ops: u64 = a.stages.iter().map(|s| s.launches).sum();
    assert_eq!(ops as usize, tl.ops.len());
    let of = |st: &str| {
        p.passes
            .iter()
            .filter(|x| x.stage == st)
            .map(|x| x.kernels as u64)
            .sum::<u64>()
    };
    assert_eq!(a.stages[0].launches, of("prefill"));
    assert_eq!(a.stages[1].launches, of("decode"));
    // GPU ops replayed from graphs, counted from the JSON: all in decode.
    let evs = events(CB);
    let graph_corr: std::collections::HashSet<i64> = evs
        .iter()
        .filter(|e| e["cat"] == "cuda_runtime" && e["name"] == "cudaGraphLaunch")
        .filter_map(|e| e["args"]["correlation"].as_i64())
        .collect();
    assert_eq!(graph_corr.len(), 8);
    let replayed = evs
        .iter()
        .filter(|e| {
            matches!(
                e["cat"].as_str(),
                Some("kernel" | "gpu_memset" | "gpu_memcpy")
            )
        })
        .filter(|e| {
            e["args"]["correlation"]
                .as_i64()
                .is_some_and(|c| graph_corr.contains(&c))
        })
        .count() as u64;
    assert_eq!(
        (a.stages[0].graph_launches, a.stages[1].graph_launches),
        (0, replayed)
    );
    let md = sota_bot::profile::render_analysis_md(&a);
    assert!(
        md.contains(&format!("({replayed} replayed from CUDA graphs)")),
        "{md}"
    );
    // Layer types and representatives per stage.
    for st in ["prefill", "decode"] {
        assert!(p.layer_types.iter().any(|r| r.stage == st));
        assert!(p.representatives.iter().any(|r| r.stage == st));
        assert!(p.chosen.iter().any(|c| c.stage == st));
    }
}

#[test]
fn profile_by_stage_files_are_recognised_from_their_names() {
    let dir = trace("sglang_like/by_stage");
    let tl = load_timeline(&dir).unwrap();
    assert_eq!(tl.sources.len(), 2);
    let p = layer_pipeline(&tl, None);
    let files: Vec<String> = all_trace_fixtures()
        .into_iter()
        .filter(|n| n.starts_with("sglang_like/by_stage/"))
        .collect();
    let mut schedule = Vec::new();
    for f in &files {
        let base = f.rsplit('/').next().unwrap();
        let (layers, s) = captured("by_stage", Some(base));
        assert_eq!(layers, 8);
        schedule.extend(s);
    }
    // Files are read in name order: DECODE before EXTEND.
    assert_matches_capture(&p, 8, &schedule, "by_stage");
    assert!(p
        .passes
        .iter()
        .all(|x| x.stage_evidence.contains("file name")));
    let a = analyze_timeline(&tl, &AnalyzeOptions::default()).unwrap();
    let names = stage_names(&a);
    assert_eq!(names, [("decode", "path"), ("prefill", "path")]);
}

#[test]
fn without_attention_kernels_or_annotations_the_report_says_segmentation_is_uncertain() {
    // The Llama prefill with its attention kernels removed from the JSON: no layer anchor.
    let name = "llama8b_prefill_b4_in1000.trace.json.gz";
    let drop_attention = |text: &[u8]| {
        let mut v: serde_json::Value = serde_json::from_slice(text).unwrap();
        let evs = v["traceEvents"].as_array_mut().unwrap();
        let before = evs.len();
        evs.retain(|e| {
            !(e["cat"] == "kernel" && e["name"].as_str().is_some_and(|n| n.contains("sdpa")))
        });
        assert_eq!(before - evs.len(), 32);
        serde_json::to_vec(&v).unwrap()
    };
    let p = pipeline_of(&drop_attention(&stripped_text(name)), name);
    assert_eq!(p.passes.len(), 1);
    assert!(p.passes[0].uncertain.is_some());
    assert!(
        p.passes[0].pass_boundaries.contains("uncertain"),
        "{}",
        p.passes[0].pass_boundaries
    );
    let md = render_layer_pipeline_md(&p);
    assert!(md.contains("### Uncertain segmentation"), "{md}");
    // With its annotation the pass comes from the annotated range, and says so.
    let a = pipeline_of(&drop_attention(&trace_text(name)), name);
    assert_eq!(a.passes.len(), 1);
    assert_eq!(a.passes[0].name, "prefill_forward");
    assert!(a.passes[0].pass_boundaries.contains("annotated range"));
    assert!(a.passes[0]
        .uncertain
        .as_deref()
        .is_some_and(|u| u.contains("annotations only")));
}
