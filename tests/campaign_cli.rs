//! `sota-bot request check` as a user runs it.

use assert_cmd::Command;
use predicates::prelude::*;
use std::io::Write;

fn sota() -> Command {
    Command::cargo_bin("sota-bot").unwrap()
}

#[test]
fn check_restates_a_valid_yaml_request() {
    let out = sota()
        .args([
            "request",
            "check",
            "examples/requests/llama-3.1-8b-h100.yml",
            "--date",
            "20250307",
        ])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    insta::assert_snapshot!("request_check_yaml_example", text);
}

#[test]
fn check_reads_issue_forms_and_prints_json() {
    let out = sota()
        .args([
            "request",
            "check",
            "examples/requests/llama-3.1-8b-h100.issue.md",
            "--date",
            "20250307",
            "--format",
            "json",
        ])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["input_format"], "issue_form");
    assert_eq!(
        json["run_dir"],
        "runs/20250307_llama_3_1_8b_instruct_sota_humanize"
    );
    assert_eq!(
        json["campaign"]["selection"]["selected"],
        serde_json::json!(["vllm", "tokenspeed"])
    );
    assert_eq!(json["campaign"]["gpu_count"], 2);
}

fn temp_file(name: &str, body: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    (dir, path)
}

#[test]
fn check_lists_all_problems_with_file_and_line_and_exits_2() {
    let (_dir, path) = temp_file(
        "bad.yml",
        "modle: org/m\ngpu:\n  count: lots\nframeworks: [vllm, llama.cpp]\n",
    );
    let shown = path.display().to_string();
    sota()
        .args(["request", "check"])
        .arg(&path)
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains(format!(
            "{shown}:1: modle (invalid): unknown key `modle` (did you mean `model`?)"
        )))
        .stderr(predicate::str::contains(format!(
            "{shown}:3: gpu.count (invalid)"
        )))
        .stderr(predicate::str::contains(format!(
            "{shown}:4: frameworks[1] (invalid): unknown framework `llama.cpp`"
        )))
        .stderr(predicate::str::contains("3 problems found"));
}

#[test]
fn missing_fields_are_asked_for() {
    let (_dir, path) = temp_file(
        "req.md",
        "### Model\n\n_No response_\n\n### Notes\n\nplease\n",
    );
    sota()
        .args(["request", "check"])
        .arg(&path)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "model (missing): please provide the model",
        ))
        .stderr(predicate::str::contains("gpu.model (missing)"))
        .stderr(predicate::str::contains("precision (missing)"));
}

#[test]
fn repo_config_defaults_apply_and_config_errors_name_the_config_file() {
    let (_d1, req) = temp_file("req.yaml", "model: org/m\n");
    let (_d2, cfg) = temp_file(
        "sota-bot.yml",
        "defaults: {gpu_model: H200, precision: bf16}\n",
    );
    sota()
        .args(["request", "check", "--date", "20250101"])
        .arg(&req)
        .arg("--repo-config")
        .arg(&cfg)
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "Run directory: runs/20250101_m_sota_humanize/",
        ))
        .stdout(predicate::str::contains(
            "precision             bf16 [repository config]",
        ))
        .stdout(predicate::str::contains("1 x H200 (h200)"));
    let (_d3, bad_cfg) = temp_file("sota-bot.yml", "budget:\n  max_round: 3\n");
    sota()
        .args(["request", "check"])
        .arg(&req)
        .arg("--repo-config")
        .arg(&bad_cfg)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!("{}:2: budget.max_round (invalid): unknown key `max_round` (did you mean `max_rounds`?)", bad_cfg.display())));
}

#[test]
fn help_documents_the_defaults() {
    sota()
        .args(["request", "check", "--help"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("max_rounds            42"))
        .stdout(predicate::str::contains("Only the model, the GPU model and the precision/quantization are ever reported as missing"));
}

#[test]
fn bad_arguments_and_unreadable_files() {
    sota()
        .args(["request", "check", "x.yml", "--date", "2025-01-01"])
        .assert()
        .code(2);
    sota()
        .args(["request", "check", "/nonexistent/request.yml"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "cannot read /nonexistent/request.yml",
        ));
    // Readable but not UTF-8 (a request or a repo config): invalid input, not a failure.
    let dir = tempfile::tempdir().unwrap();
    let latin1 = dir.path().join("request.yml");
    std::fs::write(&latin1, b"model: caf\xe9/llama\n").unwrap();
    sota()
        .args(["request", "check"])
        .arg(&latin1)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "not UTF-8 text (invalid byte at offset 10)",
        ));
    let good = dir.path().join("good.yml");
    std::fs::write(&good, "model: meta-llama/Llama-3.1-8B-Instruct\n").unwrap();
    sota()
        .args(["request", "check"])
        .arg(&good)
        .arg("--repo-config")
        .arg(&latin1)
        .assert()
        .code(2);
}
