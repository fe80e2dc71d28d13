//! `sota-bot profile ...` end to end on the real fixtures.

mod profile_support;

use assert_cmd::Command;
use profile_support::{ncu_fixture, trace};

fn bot() -> Command {
    Command::cargo_bin("sota-bot").unwrap()
}

#[test]
fn analyze_json_has_the_documented_shape() {
    let out = bot()
        .args(["profile", "analyze", "--format", "json"])
        .arg(trace("llama8b_prefill_b4_in1000.trace.json.gz"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let st = v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "prefill")
        .unwrap();
    assert!(st["total_gpu_us"].as_f64().unwrap() > 100_000.0);
    let k = &st["kernels"][0];
    assert_eq!(k["category"], "gemm");
    assert!(k["launches"].as_u64().unwrap() > 0);
}

#[test]
fn analyze_markdown_to_file_and_stage_filter() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("profiles/sglang-decode.md");
    bot()
        .args(["profile", "analyze", "--stage", "decode", "-o"])
        .arg(&out)
        .arg(trace("mixtral8l_decode_b8_ctx512_16steps.trace.json.gz"))
        .assert()
        .success();
    let md = std::fs::read_to_string(&out).unwrap();
    assert!(md.contains("### Stage `decode`"));
    assert!(!md.contains("### Stage `unannotated`"));
}

#[test]
fn layers_json_has_passes() {
    let out = bot()
        .args(["profile", "layers", "--format", "json"])
        .arg(trace("mixtral8l_decode_b8_ctx512_16steps.trace.json.gz"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    // The prefill before the annotated decode steps is a pass too.
    assert_eq!(v["passes"].as_array().unwrap().len(), 17);
    assert_eq!(v["passes"][0]["stage"], "prefill");
    assert_eq!(v["passes"][1]["name"], "decode_step_0");
    assert_eq!(v["passes"][0]["layers"].as_array().unwrap().len(), 8);
}

#[test]
fn compare_and_ncu_commands() {
    bot()
        .args(["profile", "compare"])
        .arg(trace("llama8b_prefill_b4_in1000.trace.json.gz"))
        .arg(trace(
            "tp2/llama8b_tp2_prefill_b4_in1000_rank0.trace.json.gz",
        ))
        .assert()
        .success()
        .stdout(predicates::str::contains("## Profile comparison"));
    bot()
        .args(["profile", "ncu"])
        .arg(ncu_fixture("baseline_details.csv"))
        .arg(ncu_fixture("candidate_details.csv"))
        .arg("--candidate-raw")
        .arg(ncu_fixture("candidate_raw.csv"))
        .assert()
        .success()
        .stdout(predicates::str::contains("## Next edit"));
}

#[test]
fn invalid_input_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"traceEvents\": [{\"ph\": ").unwrap();
    bot()
        .args(["profile", "analyze"])
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("byte offset"));
    bot()
        .args(["profile", "analyze", "--stage", "nope"])
        .arg(trace("llama8b_prefill_b4_in1000.trace.json.gz"))
        .assert()
        .code(2);
    bot()
        .args(["profile", "analyze"])
        .arg(dir.path().join("missing.json"))
        .assert()
        .code(1);
}
