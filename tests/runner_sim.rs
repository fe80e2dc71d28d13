//! The runner core against real processes: the simulated serving engine (started as a child
//! process of the real `sota-bot` binary) and the built-in benchmark client.

use sota_bot::bench::row::{parse_jsonl, BenchRow, RunStatus};
use sota_bot::framework::Framework;
use sota_bot::runner::bench::{run_benchmark, run_benchmark_with, BenchSpec};
use sota_bot::runner::group::{
    merge_groups, read_row_jsonl, run_launch_group, BenchInvocation, LaunchGroup,
};
use sota_bot::runner::help::{capture_help, capture_version};
use sota_bot::runner::process::{CommandSpec, OsLauncher};
use sota_bot::runner::server::{free_port, LaunchSpec, RunnerError, ServerProcess};
use sota_bot::secrets::SecretSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_sota-bot");

/// A cost model with round numbers: prefill 2 ms/token, decode 20 ms/step, no overhead.
const FLAT_PROFILE: &str = r#"
name: simulated-flat-test
framework: sglang
layers: 1
scheduler: {max_running_requests: 8, chunked_prefill_size: 8192, overhead_us_per_step: 0}
memory: {gpu_mem_gb: 80, weights_gb: 16, kv_bytes_per_token: 131072, default_mem_fraction: 0.85, max_mem_fraction: 0.95}
layer_kernels:
  - {name: flat_kernel, prefill_us_per_token: 2000, decode_us_per_step: 20000}
"#;

fn example_profile(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("examples/sim/{name}.yaml"))
}

fn sim_command(profile: &Path, port: u16, scale: f64, extra: &[&str]) -> CommandSpec {
    let mut v: Vec<String> = [
        BIN,
        "sim",
        "serve",
        "--framework",
        "sglang",
        "--model",
        "sim-model",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend([
        "--profile".into(),
        profile.display().to_string(),
        "--port".into(),
        port.to_string(),
    ]);
    v.extend(["--time-scale".into(), scale.to_string()]);
    v.extend(extra.iter().map(|s| s.to_string()));
    CommandSpec::Argv(v)
}

fn launch_spec(cmd: CommandSpec, port: u16, dir: &Path, name: &str) -> LaunchSpec {
    let mut spec = LaunchSpec::new(cmd, port, dir.join(format!("{name}.server.log")));
    spec.ready_timeout = Duration::from_secs(30);
    spec.stop_grace = Duration::from_secs(5);
    spec
}

fn bench_command(
    port: u16,
    out: &Path,
    input: u64,
    output: u64,
    prompts: u64,
    conc: u64,
) -> CommandSpec {
    scenario_bench_command("chat", port, out, input, output, prompts, conc)
}

fn scenario_bench_command(
    scenario: &str,
    port: u16,
    out: &Path,
    input: u64,
    output: u64,
    prompts: u64,
    conc: u64,
) -> CommandSpec {
    CommandSpec::Argv(
        [
            BIN,
            "bench",
            "run",
            "--base-url",
            &format!("http://127.0.0.1:{port}"),
            "--model",
            "sim-model",
            "--framework",
            "sglang",
            "--candidate-id",
            "sglang-0",
            "--scenario",
            scenario,
            "--input-len",
            &input.to_string(),
            "--output-len",
            &output.to_string(),
            "--num-prompts",
            &prompts.to_string(),
            "--max-concurrency",
            &conc.to_string(),
            "--tokenizer",
            "builtin:sim",
            "--out",
            &out.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    )
}

fn read_row(path: &Path) -> BenchRow {
    let text = std::fs::read_to_string(path).unwrap();
    parse_jsonl(&text).unwrap().remove(0)
}

fn within(value: Option<f64>, expected: f64, rel: f64) -> bool {
    value.is_some_and(|v| (v - expected).abs() <= expected * rel)
}

#[test]
fn built_in_client_measures_the_simulators_analytic_timing() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("flat.yaml");
    std::fs::write(&profile, FLAT_PROFILE).unwrap();
    let port = free_port().unwrap();
    // Time scale 2 (slower than real time): TTFT 100 sim ms = 200 real ms, each decode step
    // 40 real ms, so a busy machine's scheduling delays are small next to the timings.
    let server = ServerProcess::launch(launch_spec(
        sim_command(&profile, port, 2.0, &[]),
        port,
        dir.path(),
        "flat",
    ))
    .unwrap();
    let out = dir.path().join("row.jsonl");
    let outcome = run_benchmark(
        &bench_command(port, &out, 50, 6, 3, 1),
        Duration::from_secs(60),
        &dir.path().join("bench.log"),
    );
    assert_eq!(outcome.status, RunStatus::Ok, "{outcome:?}");
    let row = read_row(&out);
    let m = &row.metrics;
    // Single request at a time: TTFT = 50 tokens x 2 ms; TPOT = one 20 ms decode step;
    // E2E = 100 + 5 x 20. Generous tolerances: scheduling noise on a loaded box.
    assert!(
        within(m.p50_ttft_ms, 100.0, 0.35),
        "ttft {:?}",
        m.p50_ttft_ms
    );
    assert!(
        within(m.p50_tpot_ms, 20.0, 0.35),
        "tpot {:?}",
        m.p50_tpot_ms
    );
    assert!(within(m.p50_e2e_ms, 200.0, 0.35), "e2e {:?}", m.p50_e2e_ms);
    assert_eq!(m.success_rate, Some(1.0));
    assert_eq!(row.framework, Framework::Sglang);
    assert_eq!(row.workload.input_len, Some(50));
    assert_eq!(row.workload.scenario.as_deref(), Some("chat"));
    assert!(row
        .benchmark_command
        .as_deref()
        .unwrap()
        .contains("bench run"));
    assert_eq!(row.extra["client"]["time_scale"], 2.0);
    assert_eq!(m.extra["total_output_tokens"], 18);
    let stop = server.stop().unwrap();
    assert!(stop.port_freed);
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "port still busy after stop"
    );
}

#[test]
fn agent_patches_make_the_simulated_sglang_engine_faster() {
    let dir = tempfile::tempdir().unwrap();
    let original = example_profile("sglang");
    let patched = dir.path().join("patched.yaml");
    std::fs::create_dir_all(dir.path().join("sim")).unwrap();
    std::fs::copy(&original, dir.path().join("sim/engine.yaml")).unwrap();
    let script = sota_bot::sim::agent::AgentScript::default_script();
    let agent = sota_bot::sim::agent::ScriptedAgent::new(dir.path(), script);
    for round in 1..=3 {
        let o = agent
            .run_round(round, "", &dir.path().join(format!("summary{round}.md")))
            .unwrap();
        assert_eq!(o.exit_code, 0);
    }
    std::fs::copy(dir.path().join("sim/engine.yaml"), &patched).unwrap();
    let mut tpot = Vec::new();
    for (name, profile) in [("before", original), ("after", patched)] {
        let port = free_port().unwrap();
        // Time scale 5 (slower than real time): a decode step is ~40 real ms, far above the
        // per-token HTTP overhead and scheduling delays of a loaded machine. Best of two runs,
        // since load only ever adds time.
        let server = ServerProcess::launch(launch_spec(
            sim_command(&profile, port, 5.0, &[]),
            port,
            dir.path(),
            name,
        ))
        .unwrap();
        let mut best = f64::INFINITY;
        for attempt in 0..2 {
            let out = dir.path().join(format!("{name}-{attempt}.jsonl"));
            let o = run_benchmark(
                &bench_command(port, &out, 100, 16, 4, 4),
                Duration::from_secs(60),
                &dir.path().join(format!("{name}-{attempt}.log")),
            );
            assert_eq!(o.status, RunStatus::Ok, "{o:?}");
            best = best.min(read_row(&out).metrics.mean_tpot_ms.unwrap());
        }
        tpot.push(best);
        server.stop().unwrap();
    }
    // The patches cut the simulated decode step by about 20%.
    assert!(
        tpot[1] < tpot[0] * 0.95,
        "tpot before {} after {}",
        tpot[0],
        tpot[1]
    );
}

#[test]
fn never_ready_server_times_out_and_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let mut spec = launch_spec(
        sim_command(&example_profile("sglang"), port, 0.01, &["--never-ready"]),
        port,
        dir.path(),
        "nr",
    );
    spec.ready_timeout = Duration::from_millis(1500);
    let err = ServerProcess::launch(spec).unwrap_err();
    assert!(matches!(err, RunnerError::ReadyTimeout { .. }), "{err}");
    assert_eq!(err.classification().0, RunStatus::Timeout);
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "port still busy"
    );
}

#[test]
fn startup_delay_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let spec = launch_spec(
        sim_command(
            &example_profile("vllm"),
            port,
            0.01,
            &["--startup-delay-ms", "700"],
        ),
        port,
        dir.path(),
        "slow",
    );
    let server = ServerProcess::launch(spec).unwrap();
    assert!(
        server.ready_after >= Duration::from_millis(700),
        "{:?}",
        server.ready_after
    );
    server.stop().unwrap();
}

#[test]
fn oom_at_startup_is_classified_with_the_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let spec = launch_spec(
        sim_command(
            &example_profile("sglang"),
            port,
            0.01,
            &["--mem-fraction-static", "0.99"],
        ),
        port,
        dir.path(),
        "oom",
    );
    let log = spec.log_path.clone();
    let err = ServerProcess::launch(spec).unwrap_err();
    let (status, reason) = err.classification();
    assert_eq!(status, RunStatus::Oom, "{err}");
    assert!(reason.contains("CUDA out of memory"), "{reason}");
    assert!(std::fs::read_to_string(log)
        .unwrap()
        .contains("torch.OutOfMemoryError"));
}

#[test]
fn benchmark_timeout_and_failure_are_classified() {
    let dir = tempfile::tempdir().unwrap();
    let o = run_benchmark(
        &CommandSpec::Shell("echo started; sleep 30".into()),
        Duration::from_millis(500),
        &dir.path().join("t.log"),
    );
    assert_eq!(o.status, RunStatus::Timeout);
    assert!(o.duration < Duration::from_secs(10));
    let f = run_benchmark(
        &CommandSpec::Shell("echo 'ValueError: bad --foo' >&2; exit 2".into()),
        Duration::from_secs(10),
        &dir.path().join("f.log"),
    );
    assert_eq!(f.status, RunStatus::Failed);
    assert_eq!(
        f.failure_reason.as_deref(),
        Some("ValueError: bad --foo (exited with code 2)")
    );
    // A benchmark against a port where nothing listens fails: every request fails.
    let port = free_port().unwrap();
    let out = dir.path().join("none.jsonl");
    let n = run_benchmark(
        &bench_command(port, &out, 5, 2, 2, 1),
        Duration::from_secs(30),
        &dir.path().join("n.log"),
    );
    assert_eq!(n.status, RunStatus::Failed, "{n:?}");
    let row = read_row(&out);
    assert_eq!(row.status, RunStatus::Failed);
    assert_eq!(row.metrics.p50_ttft_ms, None);
    assert_eq!(row.metrics.success_rate, Some(0.0));
}

#[test]
fn logs_are_scrubbed_before_they_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut secrets = SecretSet::new();
    secrets.add("my-known-secret-value");
    let spec = BenchSpec {
        command: CommandSpec::Shell(
            "echo HF_TOKEN=$HF_TOKEN; echo leaked $X; echo ghp_abcdefghijklmnopqrstuvwxyz0123"
                .into(),
        ),
        env: vec![
            ("HF_TOKEN".into(), "hf_abcdefghijklmnopqrstuvwxyz".into()),
            ("X".into(), "my-known-secret-value".into()),
        ],
        cwd: None,
        timeout: Duration::from_secs(10),
        log_path: dir.path().join("s.log"),
        secrets,
    };
    let o = run_benchmark_with(&OsLauncher, &spec);
    assert_eq!(o.status, RunStatus::Ok);
    let log = std::fs::read_to_string(&spec.log_path).unwrap();
    assert!(log.contains("leaked [REDACTED]"), "{log}");
    assert!(
        !log.contains("hf_abc") && !log.contains("my-known-secret") && !log.contains("ghp_"),
        "{log}"
    );
}

#[test]
fn launch_groups_launch_each_distinct_server_once() {
    let dir = tempfile::tempdir().unwrap();
    let profile = example_profile("sglang");
    let (p1, p2) = (free_port().unwrap(), free_port().unwrap());
    let group = |port: u16, mrr: &str, scenario: &str, input: u64| {
        let out = dir.path().join(format!("{port}-{scenario}.jsonl"));
        let mut template = BenchRow::new(
            Framework::Sglang,
            format!("sglang-{mrr}"),
            "sim-model",
            RunStatus::Failed,
        );
        template.workload.scenario = Some(scenario.into());
        LaunchGroup {
            server: launch_spec(
                sim_command(&profile, port, 0.01, &["--max-running-requests", mrr]),
                port,
                dir.path(),
                &format!("g{port}"),
            ),
            runs: vec![BenchInvocation {
                candidate_id: format!("sglang-{mrr}"),
                scenario: scenario.into(),
                command: scenario_bench_command(scenario, port, &out, input, 4, 2, 2),
                env: Vec::new(),
                timeout: Duration::from_secs(60),
                log_path: dir.path().join(format!("{port}-{scenario}.log")),
                row_path: Some(out),
                row_template: template,
            }],
        }
    };
    let groups = vec![
        group(p1, "8", "chat", 20),
        group(p1, "8", "summarization", 80),
        group(p2, "2", "chat", 20),
    ];
    let merged = merge_groups(groups);
    assert_eq!(merged.len(), 2);
    let mut launches = 0;
    let mut rows = Vec::new();
    for g in &merged {
        let r = run_launch_group(g, &read_row_jsonl);
        assert!(r.server_error.is_none(), "{:?}", r.server_error);
        assert!(r.stop.as_ref().is_some_and(|s| s.port_freed));
        launches += r.launches;
        rows.extend(r.rows);
    }
    assert_eq!(launches, 2);
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.status == RunStatus::Ok), "{rows:?}");
    assert!(rows.iter().all(|r| r
        .server_command
        .as_deref()
        .is_some_and(|c| c.contains("--max-running-requests"))));
    let scenarios: Vec<&str> = rows.iter().map(|r| r.scenario()).collect();
    assert_eq!(scenarios, ["chat", "summarization", "chat"]);
}

#[test]
fn failed_launch_fails_every_run_of_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let template = BenchRow::new(
        Framework::Sglang,
        "sglang-oom",
        "sim-model",
        RunStatus::Failed,
    );
    let group = LaunchGroup {
        server: launch_spec(
            sim_command(
                &example_profile("sglang"),
                port,
                0.01,
                &["--mem-fraction-static", "0.97"],
            ),
            port,
            dir.path(),
            "oomg",
        ),
        runs: vec![BenchInvocation {
            candidate_id: "sglang-oom".into(),
            scenario: "chat".into(),
            command: CommandSpec::Shell("true".into()),
            env: Vec::new(),
            timeout: Duration::from_secs(5),
            log_path: dir.path().join("x.log"),
            row_path: None,
            row_template: template,
        }],
    };
    let r = run_launch_group(&group, &read_row_jsonl);
    assert_eq!(r.launches, 1);
    assert_eq!(r.rows[0].status, RunStatus::Oom);
    assert!(r.rows[0]
        .failure_reason
        .as_deref()
        .unwrap()
        .contains("CUDA out of memory"));
}

#[test]
fn help_and_version_snapshots() {
    let help = capture_help(&CommandSpec::Argv(vec![
        BIN.into(),
        "sim".into(),
        "serve".into(),
        "--framework".into(),
        "vllm".into(),
    ]))
    .unwrap();
    assert!(help.starts_with("usage: sota-bot sim serve"), "{help}");
    assert!(help.contains("--max-num-seqs MAX_NUM_SEQS"));
    let version = capture_version(&CommandSpec::Argv(vec![BIN.into()])).unwrap();
    assert!(version.starts_with("sota-bot "), "{version}");
}
