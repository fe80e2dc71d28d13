//! Malformed, truncated and odd traces give errors with byte offsets, never panics.

mod profile_support;

use std::io::Write;

use profile_support::{trace_text, traces_dir};
use proptest::prelude::*;
use sota_bot::profile::{analyze_path, ingest, ncu::NcuReport, AnalyzeOptions, ProfileError};

fn write_tmp(bytes: &[u8], suffix: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(suffix).tempfile().unwrap();
    f.write_all(bytes).unwrap();
    f
}

#[test]
fn truncated_plain_trace_reports_offset() {
    let text = trace_text("llama8b_prefill_b4_in1000.trace.json.gz");
    let cut = 1_000_000;
    let f = write_tmp(&text[..cut], ".json");
    match analyze_path(f.path(), &AnalyzeOptions::default()) {
        Err(ProfileError::Malformed {
            offset, message, ..
        }) => {
            assert_eq!(offset, cut as u64, "{message}");
            assert!(message.contains("truncated"), "{message}");
        }
        other => panic!("expected a malformed-trace error, got {other:?}"),
    }
}

#[test]
fn truncated_gzip_trace_is_an_error() {
    let gz = std::fs::read(traces_dir().join("llama8b_prefill_b4_in1000.trace.json.gz")).unwrap();
    let f = write_tmp(&gz[..gz.len() / 2], ".json.gz");
    let err = analyze_path(f.path(), &AnalyzeOptions::default()).unwrap_err();
    assert!(matches!(err, ProfileError::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("byte offset"), "{err}");
}

#[test]
fn bare_array_trace_gives_the_same_totals() {
    let text = trace_text("mixtral8l_prefill_b4_in1000.trace.json.gz");
    let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
    let bare = serde_json::to_vec(&v["traceEvents"]).unwrap();
    let f = write_tmp(&bare, ".json");
    let opts = AnalyzeOptions::default();
    let a = analyze_path(f.path(), &opts).unwrap();
    let b = analyze_path(
        &traces_dir().join("mixtral8l_prefill_b4_in1000.trace.json.gz"),
        &opts,
    )
    .unwrap();
    let total =
        |x: &sota_bot::profile::TraceAnalysis| x.stages.iter().map(|s| s.total_gpu_us).sum::<f64>();
    assert!((total(&a) - total(&b)).abs() < 1e-6);
}

#[test]
fn trace_without_gpu_work_is_an_error() {
    let f = write_tmp(
        br#"{"traceEvents": [{"ph":"X","cat":"cpu_op","name":"a","ts":1,"dur":1}]}"#,
        ".json",
    );
    assert!(matches!(
        analyze_path(f.path(), &AnalyzeOptions::default()),
        Err(ProfileError::NoGpuWork { .. })
    ));
}

#[test]
fn times_past_what_a_trace_holds_name_the_event() {
    let text = br#"{"traceEvents":[{"ph":"X","cat":"kernel","name":"gemm_big","pid":0,"tid":7,"ts":9.2e15,"dur":9.2e15,"args":{"stream":7,"correlation":1}}]}"#;
    let f = write_tmp(text, ".json");
    let err = analyze_path(f.path(), &AnalyzeOptions::default()).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("event `gemm_big`") && message.contains("2^61"),
        "{message}"
    );
    // Bounded times whose sum is past i64: the tables saturate, nothing wraps or panics.
    let events: Vec<String> = (0..10)
        .map(|i| format!(r#"{{"ph":"X","cat":"kernel","name":"gemm","pid":0,"tid":7,"ts":{},"dur":2.0e15,"args":{{"stream":7,"correlation":{i}}}}}"#, 1e15 + f64::from(i)))
        .collect();
    let f = write_tmp(
        format!(r#"{{"traceEvents":[{}]}}"#, events.join(",")).as_bytes(),
        ".json",
    );
    let analysis = analyze_path(f.path(), &AnalyzeOptions::default()).unwrap();
    assert!(format!("{analysis:?}").contains("gemm"));
}

#[test]
fn small_read_buffers_do_not_change_results() {
    let text = trace_text("llama8b_prefill_b4_in1000.trace.json.gz");
    let big = ingest::read_trace(std::io::BufReader::new(&text[..]))
        .map_err(|_| ())
        .unwrap();
    let small = ingest::read_trace(std::io::BufReader::with_capacity(7, &text[..]))
        .map_err(|_| ())
        .unwrap();
    assert_eq!(big.gpu_ops, small.gpu_ops);
    assert_eq!(big.events, small.events);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn reader_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = ingest::read_trace_bytes(&bytes);
    }

    #[test]
    fn reader_never_panics_on_corrupted_traces(
        cut in 0usize..4000,
        flips in proptest::collection::vec((0usize..4000, any::<u8>()), 0..8),
    ) {
        let mut t = br#"{"schemaVersion":1,"distributedInfo":{"rank":0},"traceEvents":[{"ph":"X","cat":"kernel","name":"k<1>(x)","pid":0,"tid":7,"ts":1.5,"dur":2,"args":{"stream":7,"correlation":3,"External id":4}},{"ph":"X","cat":"cuda_runtime","name":"cudaLaunchKernel","pid":1,"tid":1,"ts":1,"dur":1,"args":{"correlation":3,"External id":4}},{"ph":"X","cat":"cpu_op","name":"aten::mm","pid":1,"tid":1,"ts":0.5,"dur":3,"args":{"External id":4}},{"ph":"X","cat":"python_function","name":"a.py(1): f","pid":1,"tid":1,"ts":0.1,"dur":5},{"ph":"X","cat":"gpu_user_annotation","name":"decode_step_0","pid":0,"tid":7,"ts":1,"dur":5}],"traceName":"x"}"#.to_vec();
        for (at, b) in flips {
            if let Some(x) = t.get_mut(at % 600) { *x = b; }
        }
        t.truncate(cut.min(t.len()));
        if let Ok(rec) = ingest::read_trace_bytes(&t) {
            let tl = sota_bot::profile::Timeline::from_records(rec, None, "prop");
            let _ = sota_bot::profile::analyze_timeline(&tl, &AnalyzeOptions::default());
            let _ = sota_bot::profile::layer_pipeline(&tl, None);
        }
    }

    /// Any `ts` and `dur` (huge, negative, at the edge of what a trace holds): the tables or
    /// a clear error naming the event, never an overflow.
    #[test]
    fn extreme_times_give_tables_or_a_named_error(
        times in proptest::collection::vec(
            (prop_oneof![any::<i64>().prop_map(|v| v as f64), -3e15f64..3e15, Just(2.3e15), Just(1e30), Just(-1e30)],
             prop_oneof![any::<u32>().prop_map(f64::from), 0f64..2.3e15, Just(2.3e15), Just(1e30)]),
            1..12,
        ),
    ) {
        let events: Vec<String> = times
            .iter()
            .enumerate()
            .flat_map(|(i, (ts, dur))| {
                [
                    format!(r#"{{"ph":"X","cat":"kernel","name":"gemm_{i}","pid":0,"tid":7,"ts":{ts:?},"dur":{dur:?},"args":{{"stream":7,"correlation":{i},"External id":{i}}}}}"#),
                    format!(r#"{{"ph":"X","cat":"cuda_runtime","name":"cudaLaunchKernel","pid":1,"tid":1,"ts":{ts:?},"dur":1,"args":{{"correlation":{i},"External id":{i}}}}}"#),
                    format!(r#"{{"ph":"X","cat":"gpu_user_annotation","name":"decode_step_{i}","pid":0,"tid":7,"ts":{ts:?},"dur":{dur:?}}}"#),
                ]
            })
            .collect();
        let text = format!(r#"{{"traceEvents":[{}]}}"#, events.join(","));
        match ingest::read_trace_bytes(text.as_bytes()) {
            Ok(rec) => {
                let tl = sota_bot::profile::Timeline::from_records(rec, None, "prop");
                let _ = sota_bot::profile::analyze_timeline(&tl, &AnalyzeOptions::default());
                let _ = sota_bot::profile::layer_pipeline(&tl, None);
            }
            Err(e) => {
                let message = format!("{e:?}");
                prop_assert!(message.contains("2^61") || message.contains("invalid"), "{message}");
            }
        }
    }

    #[test]
    fn ncu_parser_never_panics(text in "[\"a-zA-Z0-9,. \n%()/_-]{0,400}") {
        let _ = NcuReport::parse(&text, "prop");
        let header = "\"ID\",\"Kernel Name\",\"Section Name\",\"Metric Name\",\"Metric Unit\",\"Metric Value\"\n";
        let _ = NcuReport::parse(&format!("{header}{text}"), "prop");
    }
}
