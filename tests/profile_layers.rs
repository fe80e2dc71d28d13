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
    assert_eq!(pass.layers.len(), 32, "{}", pass.boundary_method);
    assert!(
        pass.boundary_method.contains("anchor"),
        "{}",
        pass.boundary_method
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
fn decode_steps_are_16_passes_of_8_moe_layers() {
    let p = pipeline("mixtral8l_decode_b8_ctx512_16steps.trace.json.gz");
    assert_eq!(
        p.passes.len(),
        16,
        "{:?}",
        p.passes.iter().map(|x| &x.name).collect::<Vec<_>>()
    );
    for (i, pass) in p.passes.iter().enumerate() {
        assert_eq!(pass.stage, "decode");
        assert_eq!(pass.name, format!("decode_step_{i}"));
        assert_eq!(pass.layers.len(), 8, "pass {i}: {}", pass.boundary_method);
        assert!(pass.layers.iter().all(|l| l.kind == "moe"));
    }
    assert!(p.passes.windows(2).all(|w| w[0].end_us <= w[1].start_us));
    let chosen = &p.chosen[0];
    assert!(chosen.reason.contains("median"), "{}", chosen.reason);
    assert_ne!(chosen.pass_index, 0, "first pass is warm-up");
    let json = serde_json::to_value(&p).unwrap();
    let l = &json["passes"][3]["layers"][2];
    assert_eq!(l["type"], "moe");
    assert!(l["wall_us"].as_f64().unwrap() > 0.0);
    for k in ["index", "start_us", "end_us", "layers"] {
        assert!(json["passes"][3].get(k).is_some(), "{k}");
    }
}

#[test]
fn without_step_annotations_decode_passes_come_from_the_periodic_kernel_sequence() {
    let mut tl = load_timeline(&trace("mixtral8l_decode_b8_ctx512_16steps.trace.json.gz")).unwrap();
    let annotated = layer_pipeline(&tl, None);
    // Drop the per-step annotations (stage annotations stay): the same 16 passes must be
    // found from the kernel sequence alone.
    tl.annotations
        .retain(|(_, a)| !tl.names.name(a.name).starts_with("decode_step"));
    let p = layer_pipeline(&tl, None);
    assert_eq!(
        p.passes.len(),
        16,
        "{:?}",
        p.passes.iter().map(|x| &x.name).collect::<Vec<_>>()
    );
    for (pass, reference) in p.passes.iter().zip(&annotated.passes) {
        assert!(
            pass.name.contains("periodic kernel sequence"),
            "{}",
            pass.name
        );
        assert_eq!(pass.layers.len(), 8, "{}", pass.boundary_method);
        assert_eq!(pass.layers.len(), reference.layers.len());
        // Same work: each pass holds the kernels its annotated twin holds.
        let kernels =
            |x: &sota_bot::profile::layers::Pass| x.layers.iter().map(|l| l.kernels).sum::<u32>();
        assert_eq!(kernels(pass), kernels(reference));
    }
}

#[test]
fn a_single_unannotated_pass_is_not_cut_into_layers() {
    let mut tl = load_timeline(&trace("llama8b_prefill_b4_in1000.trace.json.gz")).unwrap();
    tl.annotations
        .retain(|(_, a)| tl.names.name(a.name) != "prefill_forward");
    let p = layer_pipeline(&tl, None);
    assert_eq!(
        p.passes.len(),
        1,
        "{:?}",
        p.passes.iter().map(|x| &x.name).collect::<Vec<_>>()
    );
    assert_eq!(
        p.passes[0].layers.len(),
        32,
        "{}",
        p.passes[0].boundary_method
    );
}

#[test]
fn tp2_layers_from_module_frames() {
    let p = pipeline("tp2/llama8b_tp2_prefill_b4_in1000_rank0.trace.json.gz");
    assert_eq!(p.passes.len(), 1);
    let pass = &p.passes[0];
    assert_eq!(pass.layers.len(), 16, "{}", pass.boundary_method);
    assert!(
        pass.boundary_method.starts_with("module hierarchy"),
        "{}",
        pass.boundary_method
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
