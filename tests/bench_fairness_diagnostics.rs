//! Fairness gate (ARCHITECTURE.md, *Gap decision, fairness and stagnation*): field-by-field
//! comparison of winners and blockers.

use sota_bot::bench::fairness::{diagnose, render_fairness_md, Equivalence, FairnessReport};
use sota_bot::bench::rank::{apply_sla, RankMetric};
use sota_bot::bench::row::{
    parse_jsonl, BenchRow, CacheBlock, MemoryBlock, RequestRate, RunStatus, Sampling, SpecDecode,
};
use sota_bot::framework::Framework;

/// Two fully equivalent winners (SGLang slower) to perturb one field at a time.
fn pair() -> (BenchRow, BenchRow) {
    let mut s = BenchRow::new(Framework::Sglang, "s", "org/model", RunStatus::Ok);
    s.workload.scenario = Some("chat".into());
    s.workload.kind = Some("random".into());
    s.workload.input_len = Some(1000);
    s.workload.output_len = Some(1000);
    s.workload.input_len_p50 = Some(1000.0);
    s.workload.output_len_p50 = Some(1000.0);
    s.workload.num_prompts = Some(80);
    s.workload.request_rate = Some(RequestRate::Unbounded);
    s.workload.max_concurrency = Some(32);
    s.workload.endpoint = Some("/v1/completions".into());
    s.workload.sampling = Some(Sampling {
        temperature: Some(0.0),
        top_p: Some(1.0),
        ignore_eos: Some(true),
    });
    s.hardware.gpu_model = Some("H100".into());
    s.hardware.gpu_count = Some(1);
    s.hardware.visible_devices = Some("0".into());
    s.precision = Some("bfloat16".into());
    s.quantization = Some("none".into());
    s.tokenizer = Some("org/model".into());
    s.memory = Some(MemoryBlock {
        gpu_memory_utilization: Some(0.88),
        kv_cache_dtype: Some("auto".into()),
        cpu_offload_gb: Some(0.0),
        gpu_resident_weight_gb: Some(15.0),
    });
    s.cache = Some(CacheBlock {
        prefix_cache_enabled: Some(true),
        prefix_cache_hit_rate: Some(0.01),
        ..CacheBlock::default()
    });
    s.spec_decode = Some(SpecDecode {
        enabled: Some(false),
        ..SpecDecode::default()
    });
    s.metrics.request_throughput = Some(2.0);
    s.metrics.success_rate = Some(1.0);
    let mut v = s.clone();
    v.framework = Framework::Vllm;
    v.candidate_id = "v".into();
    v.precision = Some("bf16".into());
    v.metrics.request_throughput = Some(2.4);
    (s, v)
}

fn report(s: &BenchRow, v: &BenchRow) -> FairnessReport {
    diagnose(
        &[s.clone(), v.clone()],
        &[Framework::Vllm],
        RankMetric::RequestThroughput,
    )
}

fn blocked_fields(r: &FairnessReport) -> Vec<&str> {
    r.blockers.iter().map(|b| b.field.as_str()).collect()
}

#[test]
fn equivalent_settings_raise_no_blocker() {
    let (s, v) = pair();
    let r = report(&s, &v);
    assert!(r.is_fair(), "{:?}", r.blockers);
    let checks = &r.scenarios[0].pairs[0].checks;
    let precision = checks.iter().find(|c| c.field == "precision").unwrap();
    assert_eq!(
        precision.equivalence,
        Equivalence::Equivalent,
        "bfloat16 == bf16"
    );
    assert_eq!(r.scenarios[0].pairs[0].leader, Framework::Vllm);
}

/// Changes one field of the competitor's winner.
type Perturb = Box<dyn Fn(&mut BenchRow)>;

#[test]
fn symmetric_mismatches_block() {
    let cases: Vec<(&str, Perturb)> = vec![
        ("GPU count", Box::new(|r| r.hardware.gpu_count = Some(2))),
        ("weights", Box::new(|r| r.model = "org/model-fp8".into())),
        (
            "tokenizer",
            Box::new(|r| r.tokenizer = Some("other".into())),
        ),
        ("precision", Box::new(|r| r.precision = Some("fp8".into()))),
        (
            "quantization",
            Box::new(|r| r.quantization = Some("awq".into())),
        ),
        (
            "endpoint",
            Box::new(|r| r.workload.endpoint = Some("/v1/chat/completions".into())),
        ),
        (
            "max concurrency",
            Box::new(|r| r.workload.max_concurrency = Some(64)),
        ),
        (
            "request rate",
            Box::new(|r| r.workload.request_rate = Some(RequestRate::PerSecond(4.0))),
        ),
        (
            "sampling",
            Box::new(|r| r.workload.sampling.as_mut().unwrap().ignore_eos = Some(false)),
        ),
        (
            "KV cache dtype",
            Box::new(|r| r.memory.as_mut().unwrap().kv_cache_dtype = Some("fp8_e4m3".into())),
        ),
        (
            "CPU offload GB",
            Box::new(|r| r.memory.as_mut().unwrap().cpu_offload_gb = Some(4.0)),
        ),
    ];
    for (field, perturb) in cases {
        let (s, mut v) = pair();
        perturb(&mut v);
        let r = report(&s, &v);
        assert_eq!(blocked_fields(&r), vec![field], "perturbing {field}");
        assert_eq!(r.blockers[0].leader, Framework::Vllm);
        assert_eq!(r.blockers[0].scenario, "chat");
    }
}

#[test]
fn rows_off_the_planned_lengths_are_named_and_never_compared() {
    let (s, mut v) = pair();
    // vLLM's outputs stopped at EOS: 850 of the 1000 planned tokens.
    v.workload.output_len_p50 = Some(850.0);
    let r = report(&s, &v);
    assert!(r.blockers.is_empty(), "{:?}", r.blockers);
    assert_eq!(r.off_plan.len(), 1, "{:?}", r.off_plan);
    assert_eq!(r.off_plan[0].framework, Framework::Vllm);
    assert!(
        r.off_plan[0]
            .detail
            .contains("measured output p50 850 tokens vs 1000 planned (-15.0%)"),
        "{}",
        r.off_plan[0].detail
    );
    let md = render_fairness_md(&r);
    assert!(md.contains("## Rows off the planned workload"), "{md}");
    assert!(md.contains("No ok + SLA-passing candidate: vLLM"), "{md}");
}

#[test]
fn different_request_prompts_block() {
    let (mut s, mut v) = pair();
    s.workload.prompt_digest = Some("aaaa".into());
    v.workload.prompt_digest = Some("bbbb".into());
    let r = report(&s, &v);
    assert_eq!(blocked_fields(&r), vec!["request prompts"]);
    v.workload.prompt_digest = Some("aaaa".into());
    assert!(report(&s, &v).blockers.is_empty());
}

#[test]
fn small_length_differences_and_gpu_ids_do_not_block() {
    let (s, mut v) = pair();
    v.workload.output_len_p50 = Some(1010.0);
    v.hardware.visible_devices = Some("1".into());
    let r = report(&s, &v);
    assert!(r.is_fair(), "{:?}", r.blockers);
    let ids = r.scenarios[0].pairs[0]
        .checks
        .iter()
        .find(|c| c.field == "GPU ids")
        .unwrap();
    assert_eq!(ids.equivalence, Equivalence::Different);
}

#[test]
fn speculative_decoding_blocks_only_when_the_leader_has_it() {
    let (s, mut v) = pair();
    v.spec_decode = Some(SpecDecode {
        enabled: Some(true),
        algorithm: Some("eagle3".into()),
        num_steps: Some(3),
        mean_accept_length: Some(2.6),
        ..SpecDecode::default()
    });
    let r = report(&s, &v);
    assert_eq!(blocked_fields(&r), vec!["spec decoding"]);

    // The trailing side using it explains nothing in the leader's favour.
    let (mut s, mut v) = pair();
    s.spec_decode = v.spec_decode.take().map(|mut sd| {
        sd.enabled = Some(true);
        sd
    });
    v.spec_decode = Some(SpecDecode {
        enabled: Some(false),
        ..SpecDecode::default()
    });
    assert!(report(&s, &v).is_fair());
}

#[test]
fn much_higher_cache_hit_rate_on_the_leader_blocks() {
    let (s, mut v) = pair();
    v.cache.as_mut().unwrap().prefix_cache_hit_rate = Some(0.40);
    assert_eq!(
        blocked_fields(&report(&s, &v)),
        vec!["prefix cache hit rate"]
    );
    let (mut s, v) = pair();
    s.cache.as_mut().unwrap().prefix_cache_hit_rate = Some(0.40);
    assert!(
        report(&s, &v).is_fair(),
        "SGLang trails despite the higher hit rate"
    );
}

#[test]
fn fields_recorded_on_one_side_are_unknown_not_blockers() {
    let (s, mut v) = pair();
    v.quantization = None;
    v.memory = None;
    let r = report(&s, &v);
    assert!(r.is_fair());
    let q = r.scenarios[0].pairs[0]
        .checks
        .iter()
        .find(|c| c.field == "quantization")
        .unwrap();
    assert_eq!(q.equivalence, Equivalence::Unknown);
}

#[test]
fn no_winner_means_no_pair() {
    let (s, mut v) = pair();
    v.status = RunStatus::Failed;
    let r = report(&s, &v);
    assert!(r.scenarios[0].pairs.is_empty());
    assert_eq!(
        r.scenarios[0].competitors_without_winner,
        vec![Framework::Vllm]
    );
    assert!(render_fairness_md(&r).contains("No ok + SLA-passing candidate: vLLM."));
}

#[test]
fn example_diagnostics() {
    let text = include_str!("../examples/candidates/llama8b-h100-baseline.jsonl");
    let mut rows = parse_jsonl(text).unwrap();
    apply_sla(&mut rows, None);
    let r = diagnose(
        &rows,
        &Framework::COMPETITORS,
        RankMetric::RequestThroughput,
    );
    // TokenSpeed leads chat with EAGLE-3 speculative decoding; SGLang runs without.
    let b: Vec<(&str, &str, Framework)> = r
        .blockers
        .iter()
        .map(|b| (b.scenario.as_str(), b.field.as_str(), b.leader))
        .collect();
    assert_eq!(b, vec![("chat", "spec decoding", Framework::Tokenspeed)]);
    let md = render_fairness_md(&r);
    assert!(md.contains("fix normalisation and rerun; no patch"));
    insta::assert_snapshot!("fairness_baseline_md", md);
}
