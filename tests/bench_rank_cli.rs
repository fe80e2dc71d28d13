//! `sota-bot bench summarize` and `sota-bot bench gap` end to end.

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::PathBuf;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples/candidates")
        .join(name)
}

fn bot() -> Command {
    Command::cargo_bin("sota-bot").unwrap()
}

#[test]
fn summarize_writes_all_reports() {
    let dir = tempfile::tempdir().unwrap();
    bot()
        .args(["bench", "summarize"])
        .arg(example("llama8b-h100-baseline.jsonl"))
        .arg("--out")
        .arg(dir.path())
        .assert()
        .success();
    let summary = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    assert!(summary.contains("SLA failed: p50 TTFT 2345.0 ms > 2000 ms"));
    let commands = std::fs::read_to_string(dir.path().join("winning-commands.md")).unwrap();
    assert!(commands.contains("vllm serve meta-llama/Llama-3.1-8B-Instruct"));
    let csv = std::fs::read_to_string(dir.path().join("candidates.csv")).unwrap();
    assert_eq!(csv.lines().count(), 23, "header + 22 rows");
    let fairness = std::fs::read_to_string(dir.path().join("fairness/diagnostics.md")).unwrap();
    assert!(fairness.contains("spec decoding"));
}

#[test]
fn summarize_applies_the_sla_file() {
    let dir = tempfile::tempdir().unwrap();
    let sla = dir.path().join("sla.yaml");
    std::fs::write(
        &sla,
        "sla:\n  max_p50_ttft_ms: 2500\n  min_success_rate: 0.99\n",
    )
    .unwrap();
    bot()
        .args(["bench", "summarize"])
        .arg(example("llama8b-h100-baseline.jsonl"))
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg("--sla")
        .arg(&sla)
        .assert()
        .success();
    let commands = std::fs::read_to_string(dir.path().join("out/winning-commands.md")).unwrap();
    // With a 2500 ms TTFT limit sglang-2 (2345 ms) now wins summarization.
    assert!(
        commands.contains("### summarization — `sglang-2`"),
        "{commands}"
    );
}

#[test]
fn summarize_rejects_deprecated_sla_keys() {
    let dir = tempfile::tempdir().unwrap();
    let sla = dir.path().join("sla.yaml");
    std::fs::write(&sla, "max_ttft_ms: 2000\n").unwrap();
    bot()
        .args(["bench", "summarize"])
        .arg(example("llama8b-h100-baseline.jsonl"))
        .arg("--out")
        .arg(dir.path())
        .arg("--sla")
        .arg(&sla)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("use `max_p50_ttft_ms`"));
}

#[test]
fn bad_rows_are_reported_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    let good = std::fs::read_to_string(example("llama8b-h100-baseline.jsonl")).unwrap();
    let first = good.lines().next().unwrap();
    std::fs::write(
        &bad,
        format!("{first}\n{{\"framework\":\"llama.cpp\"}}\n\nnot json\n"),
    )
    .unwrap();
    for sub in ["summarize", "gap"] {
        let mut cmd = bot();
        cmd.args(["bench", sub]).arg(&bad);
        if sub == "summarize" {
            cmd.arg("--out").arg(dir.path().join("o"));
        }
        cmd.assert()
            .code(2)
            .stderr(predicate::str::contains("bad.jsonl:2:"))
            .stderr(predicate::str::contains("bad.jsonl:4:"));
    }
    assert!(
        !dir.path().join("o").exists(),
        "nothing written on bad input"
    );
}

#[test]
fn gap_prints_the_table_and_json() {
    bot()
        .args(["bench", "gap"])
        .arg(example("llama8b-h100-baseline.jsonl"))
        .args(["--competitors", "vllm"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "| scenario | SGLang best | leader |",
        ))
        .stdout(predicate::str::contains("behind by 2.33%"))
        .stdout(predicate::str::contains("ahead by 2.42%"));
    let out = bot()
        .args(["bench", "gap"])
        .arg(example("llama8b-h100-baseline.jsonl"))
        .args([
            "--format",
            "json",
            "--metric",
            "output_token_throughput",
            "--threshold-pct",
            "3",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(json[0]["scenario"], "chat");
    assert_eq!(json[0]["metric"], "output_token_throughput");
    assert_eq!(json[0]["leader"]["framework"], "tokenspeed");
    assert_eq!(json[0]["decision"]["decision"], "behind");
    assert_eq!(json[1]["decision"]["decision"], "needs_repeats");
}

#[test]
fn gap_rejects_unknown_metric() {
    bot()
        .args(["bench", "gap"])
        .arg(example("llama8b-h100-baseline.jsonl"))
        .args(["--metric", "p99"])
        .assert()
        .code(2);
}
