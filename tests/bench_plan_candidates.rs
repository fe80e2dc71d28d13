//! Candidate generation, launch grouping and command rendering from benchmark plans.

use sota_bot::bench::candidates::generate;
use sota_bot::bench::command::{render_benchmark_command, render_server_command, BenchTarget};
use sota_bot::bench::plan::{parse_plan, BenchClient, FlagValue, Flags};
use sota_bot::framework::Framework;

const EXAMPLE: &str = include_str!("../examples/plans/llama8b-h100-tp1.yaml");

fn ids(plan: &str, fw: Framework) -> Vec<(String, String)> {
    let plan = parse_plan(plan).unwrap();
    let set = generate(&plan).unwrap();
    set.candidates()
        .filter(|c| c.framework == fw)
        .map(|c| {
            let flags: Vec<String> = c
                .server_flags
                .iter()
                .chain(c.benchmark_flags.iter())
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            (c.id.clone(), flags.join(" "))
        })
        .collect()
}

#[test]
fn baseline_first_then_product_with_last_key_fastest() {
    let plan = "model: m\nframeworks:\n  sglang:\n    base_server_flags: {a: 1}\n    search_space:\n      a: [1, 2]\n      b: [x, y]\n";
    let got = ids(plan, Framework::Sglang);
    let want = [
        ("sglang-00", "a=1"),
        // a=1,b=x differs from baseline (b added), so it is kept.
        ("sglang-01", "a=1 b=x"),
        ("sglang-02", "a=1 b=y"),
        ("sglang-03", "a=2 b=x"),
        ("sglang-04", "a=2 b=y"),
    ];
    let got_ref: Vec<(&str, &str)> = got.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(got_ref, want);
}

#[test]
fn duplicates_of_baseline_or_earlier_are_skipped_and_cap_includes_baseline() {
    // a=1 equals the baseline; `null` equals absent; the cap of 3 includes the baseline.
    let plan = "model: m\nframeworks:\n  vllm:\n    max_candidates: 3\n    base_server_flags: {a: 1}\n    search_space:\n      a: [1, 1, 2, 3, 4]\n";
    let p = parse_plan(plan).unwrap();
    let set = generate(&p).unwrap();
    let fc = &set.frameworks[0];
    let flags: Vec<String> = fc
        .candidates
        .iter()
        .map(|c| c.server_flags["a"].to_string())
        .collect();
    assert_eq!(flags, ["1", "2", "3"]);
    assert_eq!(fc.duplicates_skipped, 2);
    assert!(fc.capped);
    assert_eq!(fc.combinations_total, 6);

    let nulls = "model: m\nframeworks:\n  vllm:\n    search_space:\n      x: [null, false, true]\n";
    let p = parse_plan(nulls).unwrap();
    let fc = &generate(&p).unwrap().frameworks[0];
    assert_eq!(
        fc.candidates.len(),
        2,
        "null and false both equal the empty baseline"
    );
    assert_eq!(fc.duplicates_skipped, 2);
    assert!(!fc.capped);
}

#[test]
fn sequence_limits_skip_scenarios_with_reasons() {
    let plan = parse_plan(EXAMPLE).unwrap();
    let set = generate(&plan).unwrap();
    let trt: Vec<_> = set
        .candidates()
        .filter(|c| c.framework == Framework::TensorrtLlm)
        .collect();
    assert!(!trt.is_empty());
    for c in &trt {
        assert_eq!(c.skipped.len(), 1, "{c:?}");
        assert_eq!(c.skipped[0].scenario, "summarization");
        assert!(
            c.skipped[0].reason.contains("max_seq_len=4096"),
            "{}",
            c.skipped[0].reason
        );
        assert!(c.skipped[0].reason.contains("9000"));
    }
    for c in set
        .candidates()
        .filter(|c| c.framework != Framework::TensorrtLlm)
    {
        assert!(c.skipped.is_empty(), "{c:?}");
    }
    let rows = set.skipped_rows(&plan);
    assert_eq!(rows.len(), trt.len());
    assert!(rows
        .iter()
        .all(|r| r.status == sota_bot::bench::RunStatus::Skipped
            && r.failure_reason.is_some()
            && r.workload.scenario.as_deref() == Some("summarization")));

    // TensorRT-LLM max_num_tokens bounds the prompt unless chunked prefill is on.
    let p = "model: m\nscenarios: [{name: s, input_len: 8000, output_len: 10}]\nframeworks:\n  trt:\n    base_server_flags: {max_num_tokens: 4096}\n    search_space: {enable_chunked_prefill: [true]}\n";
    let set = generate(&parse_plan(p).unwrap()).unwrap();
    let c: Vec<_> = set.candidates().collect();
    assert_eq!(c[0].skipped.len(), 1);
    assert!(c[1].skipped.is_empty());
}

#[test]
fn benchmark_knobs_share_one_server_launch() {
    let plan = parse_plan(EXAMPLE).unwrap();
    let set = generate(&plan).unwrap();
    // SGLang: 1 baseline + 2*2 server combos x 2 concurrency knobs = 9 candidates.
    let sg = &set.frameworks[0];
    assert_eq!(sg.candidates.len(), 9);
    assert!(!sg.capped);
    let sg_launches: Vec<_> = set
        .launches
        .iter()
        .filter(|l| l.framework == Framework::Sglang)
        .collect();
    // Distinct server configs: baseline + 4 combos = 5 launches for 9 candidates.
    assert_eq!(sg_launches.len(), 5);
    let runs: usize = sg_launches.iter().map(|l| l.candidates.len()).sum();
    assert_eq!(runs, 9 * 2);
    for l in &sg_launches {
        let ids: std::collections::BTreeSet<_> =
            l.candidates.iter().map(|r| &r.candidate_id).collect();
        let scenarios: std::collections::BTreeSet<_> =
            l.candidates.iter().map(|r| &r.scenario).collect();
        assert_eq!(
            scenarios.len(),
            2,
            "every scenario runs against each launch"
        );
        assert!(!ids.is_empty());
    }
    assert!(set.launch_count() < set.naive_launch_count());
    assert_eq!(set.naive_launch_count(), set.candidate_count() * 2);
    // TokenSpeed is capped at 3 by its own max_candidates.
    let ts = set
        .frameworks
        .iter()
        .find(|f| f.framework == Framework::Tokenspeed)
        .unwrap();
    assert_eq!(ts.candidates.len(), 3);
}

#[test]
fn candidate_list_snapshot() {
    let plan = parse_plan(EXAMPLE).unwrap();
    let set = generate(&plan).unwrap();
    let mut lines = Vec::new();
    for c in set.candidates() {
        lines.push(format!("{} | {}", c.id, c.server_command));
        let knobs: Vec<String> = c
            .benchmark_flags
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !knobs.is_empty() {
            lines.push(format!("    bench: {}", knobs.join(" ")));
        }
        for s in &c.skipped {
            lines.push(format!("    skipped {}: {}", s.scenario, s.reason));
        }
    }
    lines.push(format!(
        "launches={} runs={} candidates={} naive={}",
        set.launch_count(),
        set.run_count(),
        set.candidate_count(),
        set.naive_launch_count()
    ));
    insta::assert_snapshot!("candidate_list", lines.join("\n"));
}

#[test]
fn rendered_commands_snapshot() {
    let plan = parse_plan(
        "model: org/My Model\ntp_size: 2\nport: 8000\nframeworks:\n  sglang: {}\n  vllm: {}\n  trtllm: {}\n  tokenspeed: {server_binary: ts-serve}\n",
    )
    .unwrap();
    let mut flags = Flags::new();
    flags.insert("enable_prefix_caching".into(), FlagValue::Bool(true));
    flags.insert("disable_log_stats".into(), FlagValue::Bool(false));
    flags.insert("max_loras".into(), FlagValue::Null);
    flags.insert("num_scheduler_steps".into(), FlagValue::Int(0));
    flags.insert("gpu_memory_utilization".into(), FlagValue::Float(0.9));
    flags.insert(
        "cuda_graph_batch_sizes".into(),
        FlagValue::List(vec![
            FlagValue::Int(1),
            FlagValue::Int(8),
            FlagValue::Int(64),
        ]),
    );
    flags.insert("chat_template".into(), FlagValue::Str("{% x %}".into()));
    let mut knobs = Flags::new();
    knobs.insert("max_concurrency".into(), FlagValue::Int(32));
    knobs.insert("request_rate".into(), FlagValue::Str("inf".into()));
    let scenario = &plan.scenarios[0];
    let (i, o, n) = (
        scenario.input_len.to_string(),
        scenario.output_len.to_string(),
        scenario.num_prompts.to_string(),
    );
    let port = plan.port.to_string();
    let target = BenchTarget {
        sota_bot: "sota-bot",
        host: "127.0.0.1",
        port: &port,
        tokenizer: "meta-llama/Llama-3.1-8B-Instruct",
        candidate_id: "x-00",
        scenario: &scenario.name,
        input_len: &i,
        output_len: &o,
        num_prompts: &n,
        result_file: "out/r.json",
    };
    let mut out = Vec::new();
    for fw in Framework::ALL {
        out.push(format!(
            "{fw} server:    {}",
            render_server_command(&plan, fw, &flags).unwrap()
        ));
        out.push(format!(
            "{fw} native:    {}",
            render_benchmark_command(&plan, fw, BenchClient::Native, &knobs, &target)
        ));
        out.push(format!(
            "{fw} builtin:   {}",
            render_benchmark_command(&plan, fw, BenchClient::Builtin, &knobs, &target)
        ));
    }
    insta::assert_snapshot!("rendered_commands", out.join("\n"));
}

#[test]
fn trtllm_server_uses_snake_case_and_pytorch_backend() {
    let plan = parse_plan("model: m\nframeworks:\n  trt: {}\n").unwrap();
    let mut flags = Flags::new();
    flags.insert(
        "kv_cache_free_gpu_memory_fraction".into(),
        FlagValue::Float(0.9),
    );
    let cmd = render_server_command(&plan, Framework::TensorrtLlm, &flags).unwrap();
    assert_eq!(
        cmd.to_shell(),
        "trtllm-serve serve m --backend pytorch --tp_size 1 --port 30000 --kv_cache_free_gpu_memory_fraction 0.9"
    );
}
