//! Raw benchmark-client outputs (real files from public repositories) -> normalized rows.

use proptest::prelude::*;
use sota_bot::bench::parse::{parse_raw, ParseContext, ParseErrorKind, RawFormat};
use sota_bot::bench::row::{parse_jsonl, to_jsonl_line, RequestRate};
use sota_bot::bench::RunStatus;
use sota_bot::framework::Framework;

macro_rules! ours {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/bench-outputs/",
            $name
        ))
    };
}

#[allow(non_snake_case)]
fn SGLANG_OLD() -> &'static str {
    ours!("sglang_old_2024_llama70b_online.jsonl")
}
#[allow(non_snake_case)]
fn VLLM_APPENDED() -> &'static str {
    ours!("vllm_benchmark_serving_2025-05_appended_results.json")
}
#[allow(non_snake_case)]
fn VLLM_ALL_FAILED() -> &'static str {
    ours!("vllm_bench_serve_v0.25.1_all_requests_failed.json")
}
#[allow(non_snake_case)]
fn TRT_STDOUT() -> &'static str {
    ours!("trtllm_benchmark_serving_stdout_docs_example.txt")
}
const SGLANG_STDOUT: &str = ours!("sglang_bench_serving_stdout_2024_lora_rate2.txt");
const VLLM_STDOUT_COMMENTED: &str = ours!("vllm_benchmark_serving_stdout_commented_two_blocks.txt");

const SGLANG_0523_RANGE0: &str = ours!("sglang_0.5.23_bench_serving_random-ids_range0.jsonl");
const VLLM_0340: &str = ours!("vllm_0.34.0_bench_serve_random.json");

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-6 * b.abs().max(1.0))
}

fn ctx() -> ParseContext {
    ParseContext::default()
}

#[test]
fn sglang_2024_jsonl_rows() {
    let rows = parse_raw(Framework::Sglang, RawFormat::Auto, SGLANG_OLD(), &ctx()).unwrap();
    assert_eq!(rows.len(), 7);
    let r = &rows[0];
    assert_eq!(r.status, RunStatus::Ok);
    assert_eq!(r.candidate_id, "sglang-raw.1");
    assert_eq!(r.workload.request_rate, Some(RequestRate::PerSecond(1.0)));
    assert_eq!(r.workload.kind.as_deref(), Some("random"));
    assert_eq!(r.workload.input_len, Some(1024));
    assert!(close(r.metrics.mean_e2e_ms, 7840.616212638561));
    assert!(close(r.metrics.p50_e2e_ms, 7819.046192569658));
    assert!(close(r.metrics.p50_ttft_ms, 85.74514742940664));
    assert!(close(r.metrics.output_token_throughput, 537.4142851849319));
    // The 18-key format has no request_throughput: derived as completed / duration.
    assert!(close(
        r.metrics.request_throughput,
        300.0 / 298.3675805060193
    ));
    assert_eq!(r.metrics.extra["derived"][0], "request_throughput");
    // No p99, no mean TTFT, no `failed`, no num_prompts: absent, never 0.
    assert_eq!(r.metrics.p99_ttft_ms, None);
    assert_eq!(r.metrics.mean_ttft_ms, None);
    assert_eq!(r.metrics.success_rate, None);
    assert_eq!(rows[6].workload.kind.as_deref(), Some("sharegpt"));

    // With the prompts known, failures are num_prompts - completed.
    let c = ParseContext {
        num_prompts: Some(300),
        candidate_id: Some("sglang-03".into()),
        ..ctx()
    };
    let one = SGLANG_OLD().lines().next().unwrap();
    let rows = parse_raw(Framework::Sglang, RawFormat::Jsonl, one, &c).unwrap();
    assert_eq!(rows[0].candidate_id, "sglang-03");
    assert_eq!(rows[0].metrics.success_rate, Some(1.0));
}

#[test]
fn vllm_appended_results_with_colon_key_and_inf_rate() {
    let rows = parse_raw(Framework::Vllm, RawFormat::Auto, VLLM_APPENDED(), &ctx()).unwrap();
    assert_eq!(rows.len(), 9);
    let r = &rows[0];
    assert_eq!(r.model, "meta-llama/Llama-3.2-3B-Instruct");
    assert_eq!(r.workload.num_prompts, Some(300));
    // Metadata values are strings: "1000".
    assert_eq!(r.workload.input_len, Some(1000));
    assert_eq!(r.workload.output_len, Some(500));
    assert_eq!(r.metrics.success_rate, Some(1.0));
    assert!(close(r.metrics.p50_ttft_ms, 52.868896000063614));
    assert!(close(r.metrics.total_token_throughput, 10619.275253401978));
    assert!(close(r.metrics.request_throughput, 8.369432347779671));
    assert!(r.metrics.p50_e2e_ms.is_none(), "this version saved no e2el");
    assert_eq!(rows[2].workload.request_rate, Some(RequestRate::Unbounded));
    assert!(close(rows[2].metrics.p50_ttft_ms, 4066.1594384998807));
    // The raw record survives, including the misspelt key.
    assert!(r.extra["raw_result"].get("request_goodput:").is_some());
    assert_eq!(r.extra["raw_result"]["gpu"], "4xNVIDIA_L40S");
}

#[test]
fn vllm_all_requests_failed_is_a_failed_row_without_zero_latencies() {
    let rows = parse_raw(Framework::Vllm, RawFormat::Json, VLLM_ALL_FAILED(), &ctx()).unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r.status, RunStatus::Failed);
    let reason = r.failure_reason.as_deref().unwrap();
    assert!(reason.contains("all 8 requests failed"), "{reason}");
    assert_eq!(r.metrics.success_rate, Some(0.0));
    for v in [
        r.metrics.p50_ttft_ms,
        r.metrics.mean_ttft_ms,
        r.metrics.p99_tpot_ms,
        r.metrics.request_throughput,
        r.metrics.output_token_throughput,
        r.metrics.total_token_throughput,
    ] {
        assert_eq!(v, None);
    }
    assert_eq!(r.workload.request_rate, Some(RequestRate::Unbounded));
    assert_eq!(r.model, "facebook/opt-125m");
    let line = to_jsonl_line(r);
    assert!(line.contains("\"p50_ttft_ms\":null"), "{line}");
}

#[test]
fn trtllm_stdout_block_with_request_ar() {
    let c = ParseContext {
        num_prompts: Some(1),
        scenario: Some("chat".into()),
        ..ctx()
    };
    let rows = parse_raw(Framework::TensorrtLlm, RawFormat::Auto, TRT_STDOUT(), &c).unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r.status, RunStatus::Ok);
    assert_eq!(r.metrics.success_rate, Some(1.0));
    assert_eq!(r.metrics.request_throughput, Some(0.61));
    assert_eq!(r.metrics.output_token_throughput, Some(622.56));
    assert_eq!(r.metrics.total_token_throughput, Some(1245.12));
    assert_eq!(r.metrics.p50_ttft_ms, Some(12.83));
    assert_eq!(r.metrics.p99_tpot_ms, Some(1.59));
    assert_eq!(r.metrics.p99_e2e_ms, Some(1643.44));
    assert_eq!(r.metrics.extra["p99_itl_ms"], 1.77);
    let sd = r.spec_decode.as_ref().unwrap();
    assert_eq!(sd.acceptance_rate, Some(0.998));
    assert_eq!(r.extra["spec_decode_acceptance_rate_unit"], "fraction");
    assert_eq!(r.workload.scenario.as_deref(), Some("chat"));
}

#[test]
fn sglang_stdout_block_2024() {
    let c = ParseContext {
        num_prompts: Some(1000),
        ..ctx()
    };
    let rows = parse_raw(Framework::Sglang, RawFormat::Stdout, SGLANG_STDOUT, &c).unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r.workload.request_rate, Some(RequestRate::PerSecond(2.0)));
    assert_eq!(r.metrics.success_rate, Some(0.996));
    assert_eq!(r.metrics.extra["failed"], 4);
    assert_eq!(r.metrics.total_token_throughput, Some(2137.04));
    assert_eq!(r.metrics.mean_e2e_ms, Some(1979.33));
    assert_eq!(r.metrics.p50_e2e_ms, Some(576.03));
    // `-0.00` is printed for a zero median TPOT.
    assert_eq!(r.metrics.p50_tpot_ms, Some(0.0));
    assert_eq!(r.metrics.p99_e2e_ms, None);
}

#[test]
fn vllm_stdout_blocks_pasted_as_comments() {
    let c = ParseContext {
        num_prompts: Some(32),
        candidate_id: Some("vllm-01".into()),
        ..ctx()
    };
    let rows = parse_raw(Framework::Vllm, RawFormat::Auto, VLLM_STDOUT_COMMENTED, &c).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].candidate_id, "vllm-01.1");
    assert_eq!(rows[1].candidate_id, "vllm-01.2");
    for r in &rows {
        assert_eq!(r.workload.request_rate, Some(RequestRate::Unbounded));
        assert_eq!(r.workload.max_concurrency, Some(32));
        assert_eq!(r.metrics.success_rate, Some(1.0));
    }
    assert_eq!(rows[0].metrics.p50_ttft_ms, Some(7099.88));
    assert_eq!(rows[1].metrics.total_token_throughput, Some(659.72));
    assert_eq!(rows[1].metrics.p99_tpot_ms, Some(96.35));
    assert_eq!(rows[1].metrics.p50_e2e_ms, None);
}

/// The current SGLang `--output-file` shape (keys from `bench_serving.py`): bare
/// `Infinity`, e2e_latency keys, p90/p95, accept_length and cache_report.
#[test]
fn sglang_current_format_with_infinity_cache_and_accept_length() {
    let text = r#"{"backend": "sglang-oai", "dataset_name": "random", "request_rate": Infinity, "max_concurrency": 64, "duration": 50.0, "completed": 78, "total_input_tokens": 78000, "total_output_tokens": 78000, "request_throughput": 1.56, "input_throughput": 1560.0, "output_throughput": 1560.0, "total_throughput": 3120.0, "mean_e2e_latency_ms": 900.0, "median_e2e_latency_ms": 880.0, "std_e2e_latency_ms": 10.0, "p90_e2e_latency_ms": 950.0, "p99_e2e_latency_ms": 990.0, "mean_ttft_ms": 50.0, "median_ttft_ms": 45.0, "p99_ttft_ms": 120.0, "mean_tpot_ms": 8.0, "median_tpot_ms": 7.5, "p99_tpot_ms": 12.0, "mean_itl_ms": 8.0, "median_itl_ms": 7.0, "p95_itl_ms": 11.0, "p99_itl_ms": 13.0, "concurrency": 60.1, "accept_length": 2.7, "cache_report": {"cache_hit_rate_pct": 12.5}}"#;
    let c = ParseContext {
        num_prompts: Some(80),
        ..ctx()
    };
    let rows = parse_raw(Framework::Sglang, RawFormat::Auto, text, &c).unwrap();
    let r = &rows[0];
    assert_eq!(r.workload.request_rate, Some(RequestRate::Unbounded));
    assert_eq!(r.workload.max_concurrency, Some(64));
    assert_eq!(r.metrics.success_rate, Some(78.0 / 80.0));
    assert_eq!(r.metrics.total_token_throughput, Some(3120.0));
    assert_eq!(r.metrics.p50_e2e_ms, Some(880.0));
    assert_eq!(r.metrics.p99_e2e_ms, Some(990.0));
    assert_eq!(r.metrics.extra["p90_e2e_ms"], 950.0);
    assert_eq!(
        r.spec_decode.as_ref().unwrap().mean_accept_length,
        Some(2.7)
    );
    assert_eq!(r.cache.as_ref().unwrap().prefix_cache_hit_rate, Some(0.125));
    assert!(r.metrics.extra.get("derived").is_none());
}

/// vLLM with spec decode (a percentage), p50 keys and the `output_token_throughput` name;
/// TokenSpeed with `failed` and `mean_accept_length`; TRT-LLM JSON without `failed`.
#[test]
fn key_variants_across_tools_and_versions() {
    let vllm = r#"{"num_prompts": 10, "completed": 9, "failed": 1, "request_throughput": 2.0, "output_token_throughput": 100.0, "total_token_throughput": 300.0, "p50_ttft_ms": 20.0, "mean_ttft_ms": 21.0, "p50_tpot_ms": 5.0, "p50_e2el_ms": 500.0, "spec_decode_acceptance_length": 2.5, "spec_decode_acceptance_rate": 75.0}"#;
    let r = &parse_raw(Framework::Vllm, RawFormat::Json, vllm, &ctx()).unwrap()[0];
    assert_eq!(r.metrics.success_rate, Some(0.9));
    assert_eq!(r.metrics.output_token_throughput, Some(100.0));
    assert_eq!(r.metrics.p50_ttft_ms, Some(20.0));
    assert_eq!(r.metrics.p50_e2e_ms, Some(500.0));
    let sd = r.spec_decode.as_ref().unwrap();
    assert_eq!(sd.acceptance_rate, Some(75.0));
    assert_eq!(r.extra["spec_decode_acceptance_rate_unit"], "percent");

    let ts = r#"{"duration": 10.0, "completed": 80, "failed": 0, "total_input_tokens": 80000, "total_output_tokens": 80000, "request_throughput": 8.0, "request_goodput": null, "output_throughput": 8000.0, "total_token_throughput": 16000.0, "mean_accept_length": 1.0, "max_output_tokens_per_s": 9000.0, "mean_ttft_ms": 30.0, "median_ttft_ms": 28.0, "std_ttft_ms": 1.0, "p99_ttft_ms": 40.0, "input_lens": [1000, 1000], "ttfts": [0.1, 0.2]}"#;
    let r = &parse_raw(Framework::Tokenspeed, RawFormat::Json, ts, &ctx()).unwrap()[0];
    assert_eq!(r.metrics.success_rate, Some(1.0));
    assert_eq!(
        r.spec_decode.as_ref().unwrap().mean_accept_length,
        Some(1.0)
    );
    assert!(
        r.extra["raw_result"].get("ttfts").is_none(),
        "per-request arrays are dropped"
    );

    let trt = r#"{"backend": "openai", "num_prompts": 80, "completed": 76, "request_throughput": 3.0, "output_throughput": 300.0, "total_token_throughput": 900.0, "median_ttft_ms": 70.0}"#;
    let r = &parse_raw(Framework::TensorrtLlm, RawFormat::Json, trt, &ctx()).unwrap()[0];
    assert_eq!(r.metrics.success_rate, Some(0.95));
    assert_eq!(r.metrics.extra["failed"], 4);
}

#[test]
fn all_failed_without_failed_key_uses_num_prompts() {
    let text = r#"{"completed": 0, "duration": 1.0, "request_throughput": 0.0, "output_throughput": 0.0, "mean_ttft_ms": 0.0, "median_ttft_ms": 0.0}"#;
    let c = ParseContext {
        num_prompts: Some(80),
        ..ctx()
    };
    let r = &parse_raw(Framework::Sglang, RawFormat::Json, text, &c).unwrap()[0];
    assert_eq!(r.status, RunStatus::Failed);
    assert!(r.failure_reason.as_deref().unwrap().contains("80"));
    assert_eq!(r.metrics.success_rate, Some(0.0));
    assert_eq!(r.metrics.p50_ttft_ms, None);
    assert_eq!(r.metrics.request_throughput, None);
    // Without num_prompts nothing says how many were asked: success rate stays absent.
    let r = &parse_raw(Framework::Sglang, RawFormat::Json, text, &ctx()).unwrap()[0];
    assert_eq!(r.status, RunStatus::Failed);
    assert_eq!(r.metrics.success_rate, None);
}

#[test]
fn errors_name_line_record_and_key() {
    let bad = "{\"completed\": 1, \"request_throughput\": 1.0}\n\n{\"completed\": \"many\"}\n";
    let e = parse_raw(Framework::Sglang, RawFormat::Jsonl, bad, &ctx()).unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::WrongType);
    assert_eq!(e.line, Some(3));
    assert_eq!(e.record, Some(2));
    assert_eq!(e.key.as_deref(), Some("completed"));
    assert!(e.to_string().contains("line 3"), "{e}");

    let e = parse_raw(
        Framework::Vllm,
        RawFormat::Jsonl,
        "{\"a\":1}\n{oops}\n",
        &ctx(),
    )
    .unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::InvalidJson);
    assert_eq!(e.line, Some(2));

    let e = parse_raw(
        Framework::Vllm,
        RawFormat::Json,
        "{\"date\": \"x\"}",
        &ctx(),
    )
    .unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::NoMetrics);

    let e = parse_raw(Framework::Vllm, RawFormat::Auto, "hello", &ctx()).unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::NoRecords);
    let e = parse_raw(Framework::Vllm, RawFormat::Stdout, "no block", &ctx()).unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::NoRecords);

    let c = ParseContext {
        num_prompts: Some(10),
        ..ctx()
    };
    let e = parse_raw(
        Framework::Sglang,
        RawFormat::Json,
        "{\"completed\": 11}",
        &c,
    )
    .unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::Inconsistent);
}

/// SGLang 0.5.23's client with `--random-range-ratio` left at 0.0 drew each length from 1
/// to the planned one: the row measured a quarter of the planned input and is named as not
/// comparable, so it can never win.
#[test]
fn sglang_0_5_23_with_the_default_range_ratio_is_off_the_plan() {
    let rows = parse_raw(
        Framework::Sglang,
        RawFormat::Auto,
        SGLANG_0523_RANGE0,
        &ctx(),
    )
    .unwrap();
    let r = &rows[0];
    assert_eq!(r.status, RunStatus::Ok);
    assert_eq!(
        (r.workload.input_len, r.workload.output_len),
        (Some(1000), Some(100))
    );
    assert!(close(r.workload.input_len_mean, 320.5), "{:?}", r.workload);
    assert!(
        close(r.workload.output_len_mean, 66.875),
        "{:?}",
        r.workload
    );
    let why = sota_bot::bench::measured::off_plan(r).unwrap();
    assert!(
        why.contains("measured input mean 320 tokens vs 1000 planned"),
        "{why}"
    );
    assert!(
        why.contains("measured output mean 67 tokens vs 100 planned"),
        "{why}"
    );
    assert!(!sota_bot::bench::rank::is_eligible_winner(r));
}

/// vLLM 0.34.0's client run against the simulator as it counted words (before prompts were
/// built from the model's tokenizer): its own token counts show the mismatch.
#[test]
fn vllm_0_34_0_rows_record_the_measured_means() {
    let c = ParseContext {
        input_len: Some(1000),
        output_len: Some(100),
        ..ctx()
    };
    let rows = parse_raw(Framework::Vllm, RawFormat::Auto, VLLM_0340, &c).unwrap();
    let r = &rows[0];
    assert!(close(r.workload.output_len_mean, 100.0), "{:?}", r.workload);
    assert!(close(r.workload.input_len_mean, 802.25), "{:?}", r.workload);
    let why = sota_bot::bench::measured::off_plan(r).unwrap();
    assert!(why.contains("input mean 802"), "{why}");
    assert!(!why.contains("output"), "{why}");
}

#[test]
fn rows_round_trip_through_candidates_jsonl() {
    for (fw, text) in [
        (Framework::Sglang, SGLANG_OLD()),
        (Framework::Vllm, VLLM_APPENDED()),
        (Framework::Vllm, VLLM_ALL_FAILED()),
        (Framework::TensorrtLlm, TRT_STDOUT()),
        (Framework::Sglang, SGLANG_STDOUT),
        (Framework::Vllm, VLLM_STDOUT_COMMENTED),
    ] {
        let rows = parse_raw(fw, RawFormat::Auto, text, &ctx()).unwrap();
        let jsonl: String = rows.iter().map(to_jsonl_line).collect();
        let back = parse_jsonl(&jsonl).unwrap();
        assert_eq!(back, rows);
    }
}

fn any_framework() -> impl Strategy<Value = Framework> {
    prop::sample::select(Framework::ALL.to_vec())
}

fn any_format() -> impl Strategy<Value = RawFormat> {
    prop::sample::select(vec![
        RawFormat::Auto,
        RawFormat::Jsonl,
        RawFormat::Json,
        RawFormat::Stdout,
    ])
}

/// JSON-ish fragments built from the real keys and awkward values.
fn json_fragment() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "completed",
        "failed",
        "num_prompts",
        "duration",
        "request_throughput",
        "output_throughput",
        "total_throughput",
        "median_ttft_ms",
        "p99_e2el_ms",
        "request_rate",
        "cache_report",
        "accept_length",
        "spec_decode_acceptance_rate",
        "max_concurrency",
        "random_input_len",
        "request_goodput:",
    ]);
    let value = prop::sample::select(vec![
        "0",
        "-1",
        "1.5",
        "1e400",
        "Infinity",
        "-Infinity",
        "NaN",
        "\"inf\"",
        "\"12\"",
        "\"x\"",
        "null",
        "true",
        "[]",
        "{}",
        "{\"cache_hit_rate_pct\": \"a\"}",
        "18446744073709551615",
        "-0.0",
        "3",
        "\"None\"",
    ]);
    prop::collection::vec((key, value), 0..8).prop_map(|kv| {
        let body: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
        format!("{{{}}}", body.join(", "))
    })
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_text(text in ".{0,400}", fw in any_framework(), format in any_format()) {
        let _ = parse_raw(fw, format, &text, &ParseContext::default());
    }

    #[test]
    fn never_panics_on_json_like_records(
        objs in prop::collection::vec(json_fragment(), 1..4),
        fw in any_framework(),
        format in any_format(),
        prompts in prop::option::of(0u64..100),
    ) {
        let text = objs.join("\n");
        let c = ParseContext { num_prompts: prompts, ..ParseContext::default() };
        if let Ok(rows) = parse_raw(fw, format, &text, &c) {
            for r in rows {
                if let Some(s) = r.metrics.success_rate {
                    prop_assert!((0.0..=1.0).contains(&s), "success_rate {s}");
                }
            }
        }
    }

    #[test]
    fn never_panics_on_mutated_fixtures(
        idx in 0usize..6,
        cut in 0usize..12000,
        insert in "[{}\\[\\]\":,0-9a-zA-Z =\\-\n]{0,8}",
        fw in any_framework(),
        format in any_format(),
    ) {
        let sources = [SGLANG_OLD(), VLLM_APPENDED(), VLLM_ALL_FAILED(), TRT_STDOUT(), SGLANG_STDOUT, VLLM_STDOUT_COMMENTED];
        let src = sources[idx];
        let mut at = cut.min(src.len());
        while !src.is_char_boundary(at) { at -= 1; }
        let text = format!("{}{}{}", &src[..at], insert, &src[at..]);
        let _ = parse_raw(fw, format, &text, &ParseContext::default());
        let truncated = &src[..at];
        let _ = parse_raw(fw, format, truncated, &ParseContext::default());
    }
}
