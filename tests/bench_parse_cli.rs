//! `sota-bot bench parse` and `sota-bot bench candidates` end to end.

use assert_cmd::Command;
use predicates::prelude::*;

const PLAN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/plans/llama8b-h100-tp1.yaml"
);

/// Path of a real benchmark-client output under `tests/fixtures/bench-outputs`.
fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bench-outputs")
        .join(name)
}

fn bot() -> Command {
    Command::cargo_bin("sota-bot").unwrap()
}

#[test]
fn parse_prints_one_jsonl_row_per_run() {
    let out = bot()
        .args([
            "bench",
            "parse",
            "--framework",
            "vllm",
            "--candidate-id",
            "vllm-02",
            "--scenario",
            "chat",
        ])
        .arg(fixture(
            "vllm_benchmark_serving_2025-05_appended_results.json",
        ))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let rows = sota_bot::bench::row::parse_jsonl(&text).unwrap();
    assert_eq!(rows.len(), 9);
    assert_eq!(rows[0].candidate_id, "vllm-02.1");
    assert_eq!(rows[0].workload.scenario.as_deref(), Some("chat"));
    assert!(rows[0]
        .artifacts
        .as_ref()
        .and_then(|a| a.raw_result.as_deref())
        .is_some_and(|p| p.ends_with("results.json")));
}

#[test]
fn parse_stdout_with_alias_and_num_prompts() {
    bot()
        .args([
            "bench",
            "parse",
            "--framework",
            "trt",
            "--format",
            "stdout",
            "--num-prompts",
            "1",
            "--model",
            "m",
        ])
        .arg(fixture("trtllm_benchmark_serving_stdout_docs_example.txt"))
        .assert()
        .success()
        .stdout(predicate::str::contains("\"framework\":\"tensorrt_llm\""))
        .stdout(predicate::str::contains("\"success_rate\":1.0"));
}

#[test]
fn parse_bad_input_exits_2_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    std::fs::write(
        &path,
        "{\"completed\": 1, \"request_throughput\": 2.0}\n{\"completed\": [1]}\n",
    )
    .unwrap();
    bot()
        .args([
            "bench",
            "parse",
            "--framework",
            "sglang",
            "--format",
            "jsonl",
        ])
        .arg(&path)
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("bad.jsonl:2"))
        .stderr(predicate::str::contains("completed"));
    bot()
        .args(["bench", "parse", "--framework", "llama.cpp"])
        .arg(&path)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown framework"));
}

#[test]
fn candidates_text_and_json() {
    bot()
        .args(["bench", "candidates"])
        .arg(PLAN)
        .assert()
        .success()
        .stdout(predicate::str::contains("sglang-00 (baseline)"))
        .stdout(predicate::str::contains(
            "skipped summarization: max_seq_len=4096",
        ))
        .stdout(predicate::str::contains("server launches"));
    let out = bot()
        .args(["bench", "candidates", "--format", "json"])
        .arg(PLAN)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let launches = v["launch_count"].as_u64().unwrap();
    let naive = v["naive_launch_count"].as_u64().unwrap();
    assert!(launches < naive, "{launches} vs {naive}");
    assert_eq!(v["launches"].as_array().unwrap().len() as u64, launches);
}

#[test]
fn candidates_help_dir_reports_flags_missing_from_help() {
    let dir = tempfile::tempdir().unwrap();
    // vLLM 0.34.0's real help with --max-num-batched-tokens taken out (as if an older
    // release lacked it); an empty SGLang capture (nothing to judge).
    let real = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/help/vllm-server.txt"
    ))
    .unwrap();
    let older: String = real
        .lines()
        .filter(|l| !l.contains("--max-num-batched-tokens"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.path().join("vllm-server.txt"), older).unwrap();
    std::fs::write(dir.path().join("sglang-server.txt"), "").unwrap();
    let out = bot()
        .args(["bench", "candidates", "--format", "json", "--help-dir"])
        .arg(dir.path())
        .arg(PLAN)
        .assert()
        .code(3)
        .stderr(predicate::str::contains("--max-num-batched-tokens"))
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let vllm = v["flag_validation"]["vllm"].as_array().unwrap();
    assert_eq!(vllm[0]["validation"]["status"], "checked");
    assert_eq!(
        vllm[0]["validation"]["unknown"].as_array().unwrap().len(),
        0
    );
    assert!(vllm[1]["validation"]["unknown"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("--max-num-batched-tokens")));
    assert_eq!(
        vllm[1]["validation"]["problems"][0]["kind"], "unknown",
        "{}",
        vllm[1]["validation"]
    );
    assert_eq!(
        v["flag_validation"]["sglang"][0]["validation"]["status"],
        "not_validated"
    );
    assert!(
        v["flag_validation"]["tokenspeed"][0]["validation"]["reason"]
            .as_str()
            .unwrap()
            .contains("not found")
    );
}

#[test]
fn candidates_bad_plan_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.yaml");
    std::fs::write(
        &path,
        "model: m\nframeworks:\n  vllm:\n    search_space: {gpu_memory_utilization: [0.8, 0.9]}\n",
    )
    .unwrap();
    bot()
        .args(["bench", "candidates"])
        .arg(&path)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("plan.yaml"))
        .stderr(predicate::str::contains("allow_memory_search"));
}
