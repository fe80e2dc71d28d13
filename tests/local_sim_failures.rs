//! Engine-level failures on real simulator processes: `sota-bot local run` against a toy
//! checkout where one SGLang candidate asks for more GPU memory than the simulated H100 has
//! (the simulated server dies with a CUDA OOM) and every TokenSpeed candidate listens but
//! never becomes ready. The campaign records those as classified rows with their reasons,
//! stops each server, finishes the fixed baseline with the healthy candidates and goes on.

mod support_exec;
mod support_toy;

use sota_bot::bench::row::parse_jsonl;
use sota_bot::bench::{BenchRow, RunStatus};
use sota_bot::framework::Framework;
use std::path::{Path, PathBuf};
use std::process::Command;

const REQUEST: &str = "\
model: meta-llama/Llama-3.1-8B-Instruct
precision: bf16
gpu: {model: H100, count: 1}
frameworks:
  only: [vllm, tokenspeed]
workload:
  dataset: random
  num_prompts: 8
  scenarios:
    - {name: chat, input_len: 500, output_len: 200}
    - {name: summarization, input_len: 4000, output_len: 200}
sla: {max_p50_ttft_ms: 5000, max_p50_tpot_ms: 100, min_success_rate: 0.99}
max_rounds: 1
autonomy: autonomous
primary_metric: output_token_throughput
";

const PLAN: &str = "\
model: meta-llama/Llama-3.1-8B-Instruct
tp_size: 1
port: 31000
bench_client: builtin
num_prompts: 8
# The sweep exists to reach the simulated GPU's memory limit.
allow_memory_search: true
scenarios:
  - {name: chat, input_len: 500, output_len: 200}
  - {name: summarization, input_len: 4000, output_len: 200}
frameworks:
  sglang:
    search_space:
      mem_fraction_static: [0.85, 0.99]
  vllm:
    base_server_flags:
      gpu_memory_utilization: 0.9
    # Benchmark-side knobs only: both candidates share one server launch.
    benchmark_search_space:
      max_concurrency: [4, 8]
  tokenspeed:
    base_server_flags:
      never_ready: true
";

const CONFIG: &str = "\
plan: plan.yaml
agent:
  command: >-
    sota-bot sim agent --checkout {checkout} --round {round} --prompt {prompt} --summary-out {summary}
    && git add -A -- sim python && git commit -q -m \"sim agent: round {round} patch\" || true
  timeout_secs: 60
sim:
  enabled: true
  # Slow enough that scheduling noise stays small next to simulated latencies and the SLA.
  time_scale: 0.05
gate:
  max_rounds: 1
lane:
  ready_timeout_secs: 3
  bench_timeout_secs: 120
";

fn git_out(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(f) = find(&p, name) {
                return Some(f);
            }
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    None
}

fn rows_of(rows: &[BenchRow], f: Framework) -> Vec<&BenchRow> {
    rows.iter()
        .filter(|r| r.framework == f && r.round == 0)
        .collect()
}

#[test]
fn oom_and_never_ready_servers_become_classified_rows_and_the_campaign_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let checkout = tmp.path().join("sglang");
    support_toy::slow_sglang_checkout(&checkout);
    let inputs = tmp.path().join("inputs");
    std::fs::create_dir_all(&inputs).unwrap();
    std::fs::write(inputs.join("request.yaml"), REQUEST).unwrap();
    std::fs::write(inputs.join("plan.yaml"), PLAN).unwrap();
    std::fs::write(inputs.join("config.yaml"), CONFIG).unwrap();

    let exe = PathBuf::from(env!("CARGO_BIN_EXE_sota-bot"));
    let path = format!(
        "{}:{}",
        exe.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(&exe)
        .args(["local", "run"])
        .arg(inputs.join("request.yaml"))
        .arg("--checkout")
        .arg(&checkout)
        .arg("--config")
        .arg(inputs.join("config.yaml"))
        .env("PATH", path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(3),
        "{stdout}\n{stderr}"
    );

    let cands = find(&checkout.join("runs"), "candidates.jsonl").expect("candidates.jsonl");
    let rows = parse_jsonl(&std::fs::read_to_string(&cands).unwrap()).unwrap();

    // Every candidate x scenario has exactly one baseline row (SGLang: the plan's baseline
    // candidate plus the two memory settings).
    let sglang = rows_of(&rows, Framework::Sglang);
    let vllm = rows_of(&rows, Framework::Vllm);
    let tokenspeed = rows_of(&rows, Framework::Tokenspeed);
    assert_eq!(
        (sglang.len(), vllm.len(), tokenspeed.len()),
        (6, 6, 2),
        "{rows:#?}"
    );

    // The candidate asking for 99% of GPU memory died with the simulated CUDA OOM.
    let oom: Vec<_> = sglang
        .iter()
        .filter(|r| r.server_command.as_deref().unwrap_or("").contains("0.99"))
        .collect();
    assert_eq!(oom.len(), 2);
    for r in &oom {
        assert_eq!(r.status, RunStatus::Oom, "{r:#?}");
        let why = r.failure_reason.as_deref().unwrap_or("");
        assert!(why.contains("out of memory"), "{why}");
    }
    // The healthy SGLang candidate and vLLM ran.
    assert!(sglang
        .iter()
        .filter(|r| !r.server_command.as_deref().unwrap_or("").contains("0.99"))
        .all(|r| r.status == RunStatus::Ok));
    assert!(vllm.iter().all(|r| r.status == RunStatus::Ok));

    // TokenSpeed answered 503 until the readiness timeout: a timeout with the reason.
    for r in &tokenspeed {
        assert_eq!(r.status, RunStatus::Timeout, "{r:#?}");
        let why = r.failure_reason.as_deref().unwrap_or("");
        assert!(why.contains("not ready"), "{why}");
    }

    // The failures are in the committed summary, and the baseline was committed.
    let summary =
        std::fs::read_to_string(find(&checkout.join("runs"), "summary.md").unwrap()).unwrap();
    assert!(summary.contains("oom"), "{summary}");
    assert!(summary.contains("timeout"), "{summary}");
    let log = git_out(&checkout, &["log", "--all", "--format=%s"]);
    assert!(
        log.lines().any(|l| l.starts_with("sota baseline:")),
        "{log}"
    );
    assert!(log.lines().any(|l| l.starts_with("sota plan:")), "{log}");

    // The servers' logs were kept, outside the committed run directory.
    let logs = checkout.join(".sota/logs");
    let server_logs: Vec<_> = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("r0-") && name.ends_with(".server.log")
        })
        .collect();
    // One launch per distinct server configuration: 3 SGLang, 1 shared by the three vLLM
    // candidates, 1 TokenSpeed.
    assert_eq!(server_logs.len(), 5, "{server_logs:?}");
    let vllm_cands: std::collections::BTreeSet<&str> =
        vllm.iter().map(|r| r.candidate_id.as_str()).collect();
    assert_eq!(vllm_cands.len(), 3, "{vllm_cands:?}");
    let vllm_servers: std::collections::BTreeSet<_> = vllm
        .iter()
        .filter_map(|r| r.artifacts.as_ref()?.server_log.clone())
        .collect();
    assert_eq!(vllm_servers.len(), 1, "{vllm_servers:?}");
    assert!(
        stdout.contains("(one server launch)") || stderr.contains("(one server launch)"),
        "{stdout}\n{stderr}"
    );
    let tracked = git_out(&checkout, &["ls-files"]);
    assert!(!tracked.contains(".server.log"), "{tracked}");
}

/// Runs `local run` on a fresh toy checkout with the given plan; returns (exit code,
/// stdout + stderr, checkout, its temp dir).
fn run_campaign(plan: &str, request: &str) -> (Option<i32>, String, PathBuf, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let checkout = tmp.path().join("sglang");
    sota_bot::cli::local_demo::make_toy_checkout(&checkout).unwrap();
    let inputs = tmp.path().join("inputs");
    std::fs::create_dir_all(&inputs).unwrap();
    std::fs::write(inputs.join("request.yaml"), request).unwrap();
    std::fs::write(inputs.join("plan.yaml"), plan).unwrap();
    // The agent leaves a mark: no agent may run once the baseline cannot be measured.
    let config = CONFIG.replace(
        "sota-bot sim agent",
        &format!(
            "touch {} && sota-bot sim agent",
            tmp.path().join("AGENT_RAN").display()
        ),
    );
    std::fs::write(inputs.join("config.yaml"), config).unwrap();
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_sota-bot"));
    let path = format!(
        "{}:{}",
        exe.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(&exe)
        .args(["local", "run"])
        .arg(inputs.join("request.yaml"))
        .arg("--checkout")
        .arg(&checkout)
        .arg("--config")
        .arg(inputs.join("config.yaml"))
        .env("PATH", path)
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text, checkout, tmp)
}

#[test]
fn a_baseline_without_any_sglang_result_stops_the_campaign_before_any_round() {
    // SGLang's baseline asks for more memory than the simulated GPU has, and so does every
    // point of its search: no SGLang server can start.
    let plan = PLAN
        .replace(
            "    search_space:\n      mem_fraction_static: [0.85, 0.99]",
            "    base_server_flags:\n      mem_fraction_static: 0.99\n    search_space:\n      mem_fraction_static: [0.995, 0.999]",
        )
        .replace(
            "  tokenspeed:\n    base_server_flags:\n      never_ready: true\n",
            "",
        );
    let request = REQUEST.replace("only: [vllm, tokenspeed]", "only: [vllm]");
    let (code, out, checkout, tmp) = run_campaign(&plan, &request);
    assert_eq!(code, Some(4), "{out}");
    assert!(out.contains("no SGLang result"), "{out}");
    assert!(out.contains("`sglang-00` oom"), "{out}");
    assert!(
        !tmp.path().join("AGENT_RAN").exists(),
        "an agent ran: {out}"
    );

    let report =
        std::fs::read_to_string(find(&checkout.join("runs"), "final_report.md").unwrap()).unwrap();
    assert!(report.contains("no SGLang result"), "{report}");
    let log = git_out(&checkout, &["log", "--all", "--format=%s"]);
    assert!(
        log.lines().any(|l| l.starts_with("sota baseline:")),
        "{log}"
    );
    assert!(!log.lines().any(|l| l.starts_with("sota round")), "{log}");
    assert!(!log.lines().any(|l| l.starts_with("sota plan:")), "{log}");
    let status = Command::new(env!("CARGO_BIN_EXE_sota-bot"))
        .args(["local", "status"])
        .arg(&checkout)
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("no SGLang result"), "{status}");
}

#[test]
fn a_baseline_without_any_competitor_result_stops_the_campaign_too() {
    let plan = PLAN
        .replace(
            "    search_space:\n      mem_fraction_static: [0.85, 0.99]\n",
            "",
        )
        .replace(
            "  vllm:\n    base_server_flags:\n      gpu_memory_utilization: 0.9\n",
            "  vllm:\n    base_server_flags:\n      gpu_memory_utilization: 0.9\n      never_ready: true\n",
        );
    let (code, out, _checkout, tmp) = run_campaign(&plan, REQUEST);
    assert_eq!(code, Some(4), "{out}");
    assert!(
        out.contains("no result of any selected competitor (vLLM, TokenSpeed)"),
        "{out}"
    );
    assert!(out.contains("`vllm-00` timeout"), "{out}");
    assert!(
        !tmp.path().join("AGENT_RAN").exists(),
        "an agent ran: {out}"
    );
}

/// A candidate whose flags the installed version would not parse as written (here an
/// abbreviation argparse would silently read as another flag) is never launched: its rows
/// name the flag, the other candidates run, and the help it was checked against is
/// committed.
#[test]
fn candidates_the_installed_version_cannot_parse_are_never_launched() {
    let plan = PLAN
        .replace(
            "    search_space:\n      mem_fraction_static: [0.85, 0.99]",
            "    search_space:\n      max_running: [8]",
        )
        .replace(
            "  tokenspeed:\n    base_server_flags:\n      never_ready: true\n",
            "",
        );
    let request = REQUEST.replace("only: [vllm, tokenspeed]", "only: [vllm]");
    let (code, out, checkout, _tmp) = run_campaign(&plan, &request);
    assert!(code == Some(0) || code == Some(3), "{out}");
    let cands = find(&checkout.join("runs"), "candidates.jsonl").expect("candidates.jsonl");
    let rows = parse_jsonl(&std::fs::read_to_string(&cands).unwrap()).unwrap();
    let refused: Vec<&BenchRow> = rows
        .iter()
        .filter(|r| r.round == 0 && r.candidate_id == "sglang-01")
        .collect();
    assert_eq!(refused.len(), 2, "{rows:#?}");
    for r in &refused {
        assert_eq!(r.status, RunStatus::Failed);
        let why = r.failure_reason.as_deref().unwrap_or("");
        assert!(
            why.starts_with("not launched: the installed SGLang (sota-bot "),
            "{why}"
        );
        assert!(
            why.contains("--max-running would be read as --max-running-requests"),
            "{why}"
        );
    }
    let ran = rows
        .iter()
        .find(|r| r.round == 0 && r.candidate_id == "sglang-00")
        .unwrap();
    assert_eq!(ran.status, RunStatus::Ok);
    let checked = ran.validated_cli_flags.as_ref().unwrap();
    assert!(
        checked.server.contains(&"--tokenizer".to_string()),
        "{checked:?}"
    );
    assert!(
        checked.benchmark.contains(&"--tokenizer".to_string()),
        "{checked:?}"
    );
    // No server was started for the refused candidate.
    let logs: Vec<String> = std::fs::read_dir(checkout.join(".sota/logs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!logs.iter().any(|n| n.contains("sglang-01")), "{logs:?}");
    let help = find(&checkout.join("runs"), "sglang-server.txt").expect("help snapshot");
    let text = std::fs::read_to_string(help).unwrap();
    assert!(
        text.starts_with("$ sota-bot sim serve --framework sglang --help"),
        "{text}"
    );
}
