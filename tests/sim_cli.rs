//! `sota-bot sim trace` and `sota-bot sim agent` as a user runs them.

use assert_cmd::Command;
use serde_json::Value;
use std::path::Path;

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("examples/sim/{name}.yaml"))
        .display()
        .to_string()
}

fn bin() -> Command {
    Command::cargo_bin("sota-bot").unwrap()
}

#[test]
fn sim_trace_writes_a_torch_profiler_shaped_gzip_trace() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("decode.trace.json.gz");
    bin()
        .args([
            "sim",
            "trace",
            "--profile",
            &example("sglang"),
            "--stage",
            "decode",
            "--batch",
            "8",
            "--input-len",
            "512",
            "--output-len",
            "4",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let doc: Value = serde_json::from_reader(flate2::read::GzDecoder::new(
        std::fs::File::open(&out).unwrap(),
    ))
    .unwrap();
    let events = doc["traceEvents"].as_array().unwrap();
    let names: Vec<&str> = events
        .iter()
        .filter(|e| e["cat"] == "user_annotation")
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "decode_step_0",
            "decode_step_1",
            "decode_step_2",
            "decode_step_3"
        ]
    );
    assert!(events.iter().any(|e| e["cat"] == "kernel"
        && e["name"] == "flash_fwd_kernel"
        && e["args"]["stream"] == 7));
    bin()
        .args([
            "sim",
            "trace",
            "--profile",
            &example("sglang"),
            "--stage",
            "sideways",
            "--input-len",
            "1",
            "--out",
            "x.json",
        ])
        .assert()
        .code(2);
}

#[test]
fn sim_agent_rounds_patch_stall_change_workload_and_crash() {
    let dir = tempfile::tempdir().unwrap();
    let checkout = dir.path().join("sglang");
    std::fs::create_dir_all(checkout.join("sim")).unwrap();
    std::fs::copy(example("sglang"), checkout.join("sim/engine.yaml")).unwrap();
    let prompt = dir.path().join("prompt.md");
    std::fs::write(&prompt, "# Round prompt\nRecord every attempt in the attempt ledger: `runs/r/humanize/attempt-ledger.md`.\n").unwrap();
    let script = dir.path().join("script.yaml");
    std::fs::write(
        &script,
        "- action: patch\n  title: fuse add+norm\n  edits:\n    - edit: fuse\n      kernels: [add_kernel, rmsnorm_kernel]\n      into: {name: fused_add_rms_norm_kernel, decode_us_per_step: 9}\n- action: noop\n- action: change-workload\n- action: crash\n  exit_code: 7\n",
    )
    .unwrap();
    let round = |n: u32| {
        let mut c = bin();
        c.args(["sim", "agent", "--round", &n.to_string(), "--checkout"])
            .arg(&checkout)
            .arg("--prompt")
            .arg(&prompt)
            .arg("--summary-out")
            .arg(dir.path().join(format!("r{n}.md")))
            .arg("--script")
            .arg(&script);
        c
    };
    round(1).assert().success();
    let engine = std::fs::read_to_string(checkout.join("sim/engine.yaml")).unwrap();
    assert!(engine.contains("fused_add_rms_norm_kernel"));
    let p = sota_bot::sim::profile::load_profile(&checkout.join("sim/engine.yaml")).unwrap();
    assert_eq!(
        p.layer_kernels
            .iter()
            .filter(|k| k.name == "add_kernel")
            .count(),
        1
    );
    let summary = std::fs::read_to_string(dir.path().join("r1.md")).unwrap();
    assert!(
        summary.contains("fused `add_kernel` + `rmsnorm_kernel` into `fused_add_rms_norm_kernel`"),
        "{summary}"
    );
    round(2).assert().success();
    assert_eq!(
        std::fs::read_to_string(checkout.join("sim/engine.yaml")).unwrap(),
        engine,
        "noop must not edit"
    );
    round(3).assert().success();
    assert!(checkout.join("benchmark/workload.yaml").exists());
    round(4).assert().code(7);
    // The ledgers are sota-bot's: the agent simulator leaves the run directory alone.
    assert!(!checkout.join("runs/r/humanize/attempt-ledger.md").exists());
}

#[test]
fn sim_serve_rejects_unknown_flags_like_argparse() {
    let out = bin()
        .args([
            "sim",
            "serve",
            "--framework",
            "sglang",
            "--profile",
            &example("sglang"),
            "--model",
            "m",
            "--max-num-seqs",
            "4",
        ])
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("error: unrecognized arguments: --max-num-seqs 4"),
        "{stderr}"
    );
    let help = bin()
        .args(["sim", "serve", "--framework", "trtllm", "--help"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&help.get_output().stdout).into_owned();
    assert!(
        text.contains("--max_batch_size MAX_BATCH_SIZE") && text.contains("SIMULATED"),
        "{text}"
    );
}
