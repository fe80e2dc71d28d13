//! The built-in benchmark client must never be the bottleneck it measures: requests per
//! second it sustains against a zero-work endpoint (`sota-bot sim serve` with its time scale
//! near zero, so every step costs nothing), side by side with SGLang's Python benchmark
//! client (`python -m sglang.bench_serving`, the pinned release under `tools/python/sglang`)
//! on the same endpoint and workload, in the same run. Both use the simulated model's
//! tokenizer, so both send prompts of exactly the same lengths; the token counts each
//! reports are compared.
//!
//! Each client's own measured duration is used (its start-up and prompt building are not
//! part of what it measures). Rounds alternate the two clients; medians are reported.
//!
//! Run: `cargo bench --bench client_throughput` (after `bash tools/install-python-tools.sh`).
//! `CLIENT_BENCH_PROMPTS` (default 2000), `CLIENT_BENCH_CONCURRENCY` (64),
//! `CLIENT_BENCH_ROUNDS` (3).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_sota-bot");
const INPUT_LEN: u64 = 128;
const OUTPUT_LEN: u64 = 16;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Measured {
    requests_per_s: f64,
    completed: u64,
    input_tokens: u64,
    output_tokens: u64,
}

fn builtin(port: u16, tokenizer: &Path, prompts: u64, conc: u64, dir: &Path) -> Measured {
    let (row, raw) = (dir.join("builtin.jsonl"), dir.join("builtin.raw.json"));
    let status = Command::new(BIN)
        .args(["bench", "run", "--base-url"])
        .arg(format!("http://127.0.0.1:{port}"))
        .args([
            "--model",
            "m",
            "--framework",
            "sglang",
            "--candidate-id",
            "bench",
        ])
        .args(["--scenario", "zero-work", "--input-len"])
        .arg(INPUT_LEN.to_string())
        .arg("--output-len")
        .arg(OUTPUT_LEN.to_string())
        .arg("--num-prompts")
        .arg(prompts.to_string())
        .arg("--max-concurrency")
        .arg(conc.to_string())
        .arg("--tokenizer")
        .arg(tokenizer)
        .arg("--out")
        .arg(&row)
        .arg("--raw-out")
        .arg(&raw)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "sota-bot bench run failed");
    let raw: Value = serde_json::from_str(&std::fs::read_to_string(&raw).unwrap()).unwrap();
    let reqs = raw["requests"].as_array().unwrap();
    let ok: Vec<&Value> = reqs.iter().filter(|r| r["success"] == true).collect();
    let sum = |k: &str| ok.iter().map(|r| r[k].as_u64().unwrap_or(0)).sum::<u64>();
    Measured {
        requests_per_s: ok.len() as f64 / raw["duration_s"].as_f64().unwrap(),
        completed: ok.len() as u64,
        input_tokens: sum("prompt_tokens"),
        output_tokens: sum("output_tokens"),
    }
}

fn sglang(
    python: &Path,
    port: u16,
    tokenizer: &Path,
    prompts: u64,
    conc: u64,
    dir: &Path,
) -> Measured {
    let out = dir.join("sglang.jsonl");
    let _ = std::fs::remove_file(&out);
    let runner = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/run_sglang.py");
    let status = Command::new(python)
        .arg(runner)
        .args([
            "bench",
            "--backend",
            "sglang-oai",
            "--host",
            "127.0.0.1",
            "--port",
        ])
        .arg(port.to_string())
        .args(["--model", "m", "--tokenizer"])
        .arg(tokenizer)
        .args(["--dataset-name", "random-ids", "--random-range-ratio", "1"])
        .arg("--random-input-len")
        .arg(INPUT_LEN.to_string())
        .arg("--random-output-len")
        .arg(OUTPUT_LEN.to_string())
        .arg("--num-prompts")
        .arg(prompts.to_string())
        .arg("--max-concurrency")
        .arg(conc.to_string())
        .args(["--temperature", "0", "--disable-tqdm", "--output-file"])
        .arg(&out)
        .env("HF_HUB_OFFLINE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "SGLang's client failed");
    let v: Value = serde_json::from_str(
        std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    let n = |k: &str| v[k].as_f64().unwrap();
    Measured {
        requests_per_s: n("completed") / n("duration"),
        completed: n("completed") as u64,
        input_tokens: n("total_input_tokens") as u64,
        output_tokens: n("total_output_tokens") as u64,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let prompts = env_u64("CLIENT_BENCH_PROMPTS", 2000);
    let conc = env_u64("CLIENT_BENCH_CONCURRENCY", 64);
    let rounds = env_u64("CLIENT_BENCH_ROUNDS", 3).max(1);
    let dir = tempfile::tempdir().unwrap();
    let tokenizer: PathBuf = dir.path().join("sim-model");
    sota_bot::tokenizer::sim::write_model_dir(&tokenizer).unwrap();
    let port = free_port();
    let mut server = Command::new(BIN)
        .args([
            "sim",
            "serve",
            "--framework",
            "sglang",
            "--profile",
            "builtin:sglang",
        ])
        .args([
            "--model",
            "m",
            "--time-scale",
            "0.000001",
            "--max-running-requests",
        ])
        .arg(conc.max(1).to_string())
        .arg("--port")
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/python/sglang/bin/python");
    let have_sglang = python.is_file();
    println!(
        "zero-work endpoint, {prompts} prompts of {INPUT_LEN} -> {OUTPUT_LEN} tokens, concurrency {conc}, {rounds} round(s)"
    );
    let (mut ours, mut theirs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let b = builtin(port, &tokenizer, prompts, conc, dir.path());
        print!(
            "round {round}: sota-bot bench run {:.0} req/s ({} ok, {} in / {} out tokens)",
            b.requests_per_s, b.completed, b.input_tokens, b.output_tokens
        );
        ours.push(b.requests_per_s);
        if have_sglang {
            let s = sglang(&python, port, &tokenizer, prompts, conc, dir.path());
            println!(
                "; SGLang bench_serving {:.0} req/s ({} ok, {} in / {} out tokens); ratio {:.1}x",
                s.requests_per_s,
                s.completed,
                s.input_tokens,
                s.output_tokens,
                b.requests_per_s / s.requests_per_s
            );
            assert_eq!(
                (b.completed, b.input_tokens, b.output_tokens),
                (s.completed, s.input_tokens, s.output_tokens),
                "the two clients did not send the same workload"
            );
            theirs.push(s.requests_per_s);
            ratios.push(b.requests_per_s / s.requests_per_s);
        } else {
            println!("; SGLang's client not installed (bash tools/install-python-tools.sh)");
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    if have_sglang {
        println!(
            "median: sota-bot bench run {:.0} req/s, SGLang bench_serving {:.0} req/s: {:.1}x (rounds {:.1}x-{:.1}x); identical token counts",
            median(ours),
            median(theirs),
            median(ratios.clone()),
            ratios.iter().cloned().fold(f64::INFINITY, f64::min),
            ratios.iter().cloned().fold(0.0, f64::max)
        );
    } else {
        println!("median: sota-bot bench run {:.0} req/s", median(ours));
    }
}
