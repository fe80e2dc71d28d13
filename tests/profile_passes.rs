//! Forward passes from the kernel sequence of real traces with every annotation removed.

mod profile_support;

use profile_support::{stripped_text, timeline_of, trace_text};

#[test]
fn dump() {
    for name in [
        "llama8b_prefill_b4_in1000.trace.json.gz",
        "mixtral8l_prefill_b4_in1000.trace.json.gz",
        "mixtral8l_decode_b8_ctx512_16steps.trace.json.gz",
        "tp2/llama8b_tp2_prefill_b4_in1000_rank0.trace.json.gz",
        "sglang_like/llama8b_graphs_prefill_b8_in512_16decode.trace.json.gz",
        "sglang_like/llama8l_cb_interleaved.trace.json.gz",
        "sglang_like/by_stage/1796609094.4917507-TP-0-EXTEND.trace.json.gz",
        "sglang_like/by_stage/1796609094.4917507-TP-0-DECODE.trace.json.gz",
    ] {
        if !name.starts_with("sglang") {
            continue;
        }
        for (what, text) in [
            ("annotated", trace_text(name)),
            ("stripped", stripped_text(name)),
        ] {
            let tl = timeline_of(&text, name);
            println!("== {name} {what}: stages {:?}", tl.stages);
            for p in &tl.passes {
                println!(
                    "  {} layers={} ops={} graph={} blocks={} | {} | {} | {:?}",
                    p.stage,
                    p.layers,
                    p.ops.len(),
                    p.graph,
                    p.token_blocks,
                    p.boundaries,
                    p.stage_evidence,
                    p.uncertain
                );
            }
        }
    }
}
