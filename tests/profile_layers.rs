//! Layer pipeline on the real fixtures.

mod profile_support;

use profile_support::trace;
use sota_bot::profile::{layer_pipeline, load_timeline, render_layer_pipeline_md, LayerPipeline};

fn pipeline(name: &str) -> LayerPipeline {
    layer_pipeline(&load_timeline(&trace(name)).unwrap(), None)
}

#[test]
fn llama_has_32_dense_layers() {
    let p = pipeline("llama8b_prefill_b4_in1000.trace.json.gz");
    assert_eq!(p.passes.len(), 1);
    let pass = &p.passes[0];
    assert_eq!(pass.name, "prefill_forward");
    assert_eq!(pass.layers.len(), 32, "{}", pass.layer_boundaries);
    assert!(
        pass.layer_boundaries.contains("anchor"),
        "{}",
        pass.layer_boundaries
    );
    assert!(pass
        .layers
        .iter()
        .all(|l| l.kind == "dense" && l.attention.as_deref() == Some("cudnn-sdpa")));
    assert_eq!(pass.layers[0].position, "first");
    assert_eq!(pass.layers[31].position, "last");
    // Every layer has the same kernel count and layers do not overlap.
    assert!(pass
        .layers
        .iter()
        .all(|l| l.kernels == pass.layers[1].kernels));
    assert!(pass
        .layers
        .windows(2)
        .all(|w| w[0].end_us <= w[1].start_us + 1e-6));
    assert!(pass.prologue_gpu_us > 0.0 && pass.epilogue_gpu_us > 0.0);
}

#[test]
fn mixtral_prefill_has_8_moe_layers() {
    let p = pipeline("mixtral8l_prefill_b4_in1000.trace.json.gz");
    assert_eq!(p.passes.len(), 1);
    assert_eq!(p.passes[0].layers.len(), 8);
    assert!(p.passes[0].layers.iter().all(|l| l.kind == "moe"));
    assert_eq!(p.representatives.len(), 1);
    let rep = &p.representatives[0];
    assert_eq!(rep.kind, "moe");
    assert!(rep.layer_index > 0 && rep.layer_index < 7, "middle layer");
    assert_eq!(
        rep.hot_kernels[0].category,
        sota_bot::profile::Category::MoE
    );
}

#[test]
fn decode_steps_are_16_passes_of_8_moe_layers_after_the_prefill() {
    let p = pipeline("mixtral8l_decode_b8_ctx512_16steps.trace.json.gz");
    assert_eq!(
        p.passes.len(),
        17,
        "{:?}",
        p.passes.iter().map(|x| &x.name).collect::<Vec<_>>()
    );
    assert_eq!(
        (p.passes[0].stage.as_str(), p.passes[0].name.as_str()),
        ("prefill", "prefill pass 0")
    );
    for (i, pass) in p.passes[1..].iter().enumerate() {
        assert_eq!(pass.stage, "decode");
        assert_eq!(pass.name, format!("decode_step_{i}"));
        assert_eq!(pass.layers.len(), 8, "pass {i}: {}", pass.layer_boundaries);
        assert!(pass.layers.iter().all(|l| l.kind == "moe"));
    }
    assert!(p.passes.windows(2).all(|w| w[0].end_us <= w[1].start_us));
    let chosen = p.chosen.iter().find(|c| c.stage == "decode").unwrap();
    assert!(chosen.reason.contains("median"), "{}", chosen.reason);
    assert_ne!(chosen.pass_index, 1, "first decode pass is warm-up");
    let json = serde_json::to_value(&p).unwrap();
    let l = &json["passes"][3]["layers"][2];
    assert_eq!(l["type"], "moe");
    assert!(l["wall_us"].as_f64().unwrap() > 0.0);
    for k in [
        "index",
        "start_us",
        "end_us",
        "layers",
        "kernels",
        "pass_boundaries",
        "stage_evidence",
        "cuda_graph",
        "annotation",
        "uncertain",
    ] {
        assert!(json["passes"][3].get(k).is_some(), "{k}");
    }
    // `--stage decode` keeps only the decode passes.
    let tl = load_timeline(&trace("mixtral8l_decode_b8_ctx512_16steps.trace.json.gz")).unwrap();
    let only = layer_pipeline(&tl, Some("decode"));
    assert_eq!(only.passes.len(), 16);
    assert_eq!(only.passes[0].name, "decode_step_0");
}

#[test]
fn tp2_layers_from_module_frames() {
    let p = pipeline("tp2/llama8b_tp2_prefill_b4_in1000_rank0.trace.json.gz");
    assert_eq!(p.passes.len(), 1);
    let pass = &p.passes[0];
    assert_eq!(pass.layers.len(), 16, "{}", pass.layer_boundaries);
    assert!(
        pass.layer_boundaries.starts_with("module hierarchy"),
        "{}",
        pass.layer_boundaries
    );
    // Each layer holds its two all-reduces.
    let md = render_layer_pipeline_md(&p);
    assert!(md.contains("# Layer pipeline") && md.contains("## Representative layers"));
    assert!(md.contains("Inspect in Perfetto"));
    assert!(
        md.contains("ncclDevKernel_AllReduce") || md.contains("nvjet"),
        "{md}"
    );
}
