//! The built-in benchmark client must never be the bottleneck it measures: requests per
//! second it sustains against a zero-work endpoint, side by side with SGLang's Python
//! benchmark client (`python -m sglang.bench_serving`, the pinned release under
//! `tools/python/sglang`) on the same endpoint and workload, in the same run.
//!
//! The endpoint does no work: an OpenAI-compatible `/v1/completions` on one thread of this
//! process that answers every streamed request at once with `max_tokens` one-token chunks and
//! the usage counts (prompt tokens counted by the simulated model's word-level tokenizer,
//! which both clients use, so both send prompts of exactly the same lengths). The token
//! counts each client reports are compared.
//!
//! Two figures per client: requests per CPU second (the CPU its process used for `2n`
//! prompts minus that for `n`, so start-up and prompt building drop out: what a client
//! costs per request, which a loaded machine changes far less than wall time), and the
//! wall-clock rate from its own measured duration. On a 2-core box the endpoint shares the
//! cores, so the wall-clock rate is bounded by the endpoint as much as by the client.
//! Rounds alternate the two clients; medians are reported.
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

/// CPU seconds (user + system) used by this process's finished children so far.
fn children_cpu_s() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole rusage into the pointer it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr());
        usage.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

struct Measured {
    requests_per_s: f64,
    completed: u64,
    input_tokens: u64,
    output_tokens: u64,
}

fn builtin(port: u16, tokenizer: &Path, prompts: u64, conc: u64, dir: &Path) -> (Measured, f64) {
    let (row, raw) = (dir.join("builtin.jsonl"), dir.join("builtin.raw.json"));
    let cpu0 = children_cpu_s();
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
    let cpu = children_cpu_s() - cpu0;
    let raw: Value = serde_json::from_str(&std::fs::read_to_string(&raw).unwrap()).unwrap();
    let reqs = raw["requests"].as_array().unwrap();
    let ok: Vec<&Value> = reqs.iter().filter(|r| r["success"] == true).collect();
    let sum = |k: &str| ok.iter().map(|r| r[k].as_u64().unwrap_or(0)).sum::<u64>();
    let m = Measured {
        requests_per_s: ok.len() as f64 / raw["duration_s"].as_f64().unwrap(),
        completed: ok.len() as u64,
        input_tokens: sum("prompt_tokens"),
        output_tokens: sum("output_tokens"),
    };
    (m, cpu)
}

fn sglang(
    python: &Path,
    port: u16,
    tokenizer: &Path,
    prompts: u64,
    conc: u64,
    dir: &Path,
) -> (Measured, f64) {
    let out = dir.join("sglang.jsonl");
    let _ = std::fs::remove_file(&out);
    let runner = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/run_sglang.py");
    let cpu0 = children_cpu_s();
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
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "SGLang's client failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let cpu = children_cpu_s() - cpu0;
    // SGLang writes an unbounded request rate as the bare token `Infinity`.
    let text = std::fs::read_to_string(&out).unwrap();
    let line = text.lines().last().unwrap().replace("Infinity", "null");
    let v: Value = serde_json::from_str(&line).unwrap();
    let n = |k: &str| v[k].as_f64().unwrap();
    let m = Measured {
        requests_per_s: n("completed") / n("duration"),
        completed: n("completed") as u64,
        input_tokens: n("total_input_tokens") as u64,
        output_tokens: n("total_output_tokens") as u64,
    };
    (m, cpu)
}

/// The zero-work endpoint on its own thread (one runtime thread, so the client under test
/// keeps the other core); returns its port.
fn zero_work_endpoint() -> u16 {
    use axum::body::Bytes;
    use axum::routing::{get, post};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new()
                .route(
                    "/v1/models",
                    get(|| async { r#"{"object":"list","data":[{"id":"m","object":"model"}]}"# }),
                )
                .route("/health", get(|| async { "" }))
                .route(
                    "/v1/completions",
                    post(|body: Bytes| async move { zero_work(&body) }),
                );
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(10));
    }
    port
}

/// One streamed completion, answered at once.
fn zero_work(body: &[u8]) -> axum::response::Response {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let prompt_tokens = match &v["prompt"] {
        Value::String(s) => s.split_whitespace().count(),
        Value::Array(ids) => ids.len(),
        _ => 0,
    };
    let n = v["max_tokens"].as_u64().unwrap_or(16);
    let mut out = String::with_capacity(n as usize * 96 + 256);
    for i in 0..n {
        let finish = if i + 1 == n { r#""length""# } else { "null" };
        out.push_str(&format!(
            "data: {{\"id\":\"c\",\"object\":\"text_completion\",\"model\":\"m\",\"choices\":[{{\"index\":0,\"text\":\" ba\",\"finish_reason\":{finish}}}]}}\n\n"
        ));
    }
    // Usage comes in a chunk of its own only when the client asks for it, as servers do.
    if v["stream_options"]["include_usage"] == true {
        out.push_str(&format!(
            "data: {{\"id\":\"c\",\"object\":\"text_completion\",\"model\":\"m\",\"choices\":[],\"usage\":{{\"prompt_tokens\":{prompt_tokens},\"completion_tokens\":{n},\"total_tokens\":{}}}}}\n\n",
            prompt_tokens as u64 + n
        ));
    }
    out.push_str("data: [DONE]\n\n");
    axum::response::Response::builder()
        .header("content-type", "text/event-stream")
        .body(axum::body::Body::from(out))
        .unwrap()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One client's figures over two runs of `n` and `2n` prompts: wall-clock throughput of
/// the larger run, and CPU per request from the difference (start-up and prompt building,
/// which do not grow with the requests sent, drop out).
struct Figures {
    requests_per_s: f64,
    requests_per_cpu_s: f64,
    counts: (u64, u64, u64),
}

fn figures(run: &mut dyn FnMut(u64) -> (Measured, f64), n: u64) -> Figures {
    let (_, cpu_small) = run(n);
    let (big, cpu_big) = run(2 * n);
    Figures {
        requests_per_s: big.requests_per_s,
        requests_per_cpu_s: n as f64 / (cpu_big - cpu_small).max(1e-9),
        counts: (big.completed, big.input_tokens, big.output_tokens),
    }
}

fn main() {
    let prompts = env_u64("CLIENT_BENCH_PROMPTS", 2000);
    let conc = env_u64("CLIENT_BENCH_CONCURRENCY", 64);
    let rounds = env_u64("CLIENT_BENCH_ROUNDS", 3).max(1);
    let dir = tempfile::tempdir().unwrap();
    let tokenizer: PathBuf = dir.path().join("sim-model");
    sota_bot::tokenizer::sim::write_model_dir(&tokenizer).unwrap();
    let port = zero_work_endpoint();
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/python/sglang/bin/python");
    let have_sglang = python.is_file();
    println!(
        "zero-work endpoint, {prompts} and {} prompts of {INPUT_LEN} -> {OUTPUT_LEN} tokens, concurrency {conc}, {rounds} round(s)",
        2 * prompts
    );
    let mut ours_run = |n: u64| builtin(port, &tokenizer, n, conc, dir.path());
    let mut theirs_run = |n: u64| sglang(&python, port, &tokenizer, n, conc, dir.path());
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let b = figures(&mut ours_run, prompts);
        print!(
            "round {round}: sota-bot bench run {:.0} req/s, {:.0} req per CPU-second",
            b.requests_per_s, b.requests_per_cpu_s
        );
        if !have_sglang {
            println!("; SGLang's client not installed (bash tools/install-python-tools.sh)");
            continue;
        }
        let s = figures(&mut theirs_run, prompts);
        println!(
            "; SGLang bench_serving {:.0} req/s, {:.0} req per CPU-second; ratio {:.1}x per CPU-second, {:.1}x wall",
            s.requests_per_s,
            s.requests_per_cpu_s,
            b.requests_per_cpu_s / s.requests_per_cpu_s,
            b.requests_per_s / s.requests_per_s
        );
        assert_eq!(
            b.counts, s.counts,
            "the two clients did not send the same workload (completed, input, output tokens)"
        );
        cpu.push(b.requests_per_cpu_s / s.requests_per_cpu_s);
        wall.push(b.requests_per_s / s.requests_per_s);
    }
    if have_sglang {
        println!(
            "median: the built-in client needs {:.1}x less CPU per request than SGLang's (rounds {:.1}x-{:.1}x) and ran {:.1}x its wall-clock rate; identical token counts",
            median(cpu.clone()),
            cpu.iter().cloned().fold(f64::INFINITY, f64::min),
            cpu.iter().cloned().fold(0.0, f64::max),
            median(wall)
        );
    }
}
