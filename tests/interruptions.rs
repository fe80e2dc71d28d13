//! Interruptions leave no residue: `sota-bot local run` on real simulator processes, stopped
//! by SIGTERM or killed with SIGKILL at each step of the baseline and of a round, then
//! resumed. No process of the old run survives it, no row is lost or written twice, every
//! round is one commit, and the campaign ends as an uninterrupted one does. Every process
//! the run starts inherits a marker in its environment, so survivors are found by it.

mod support_requests;

use sota_bot::bench::row::parse_jsonl;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support_requests::SimRequest;

const BIN: &str = env!("CARGO_BIN_EXE_sota-bot");

const PLAN: &str = "\
model: meta-llama/Llama-3.1-8B-Instruct
num_prompts: 4
scenarios:
  - {name: chat, input_len: 256, output_len: 48}
frameworks:
  sglang: {}
  vllm: {}
";

fn config(agent: &str) -> String {
    let profile = |p: &str| {
        format!(
            "t=$(mktemp -d) && sota-bot sim trace --profile {p} --stage prefill --batch 1 --input-len {{input_len}} --out \"$t/p.trace.json.gz\" && sota-bot sim trace --profile {p} --stage decode --batch 4 --input-len {{input_len}} --output-len 8 --out \"$t/d.trace.json.gz\" && sota-bot profile analyze \"$t/p.trace.json.gz\" -o {{out_dir}}/{{framework}}-prefill-tables.md && sota-bot profile layers \"$t/d.trace.json.gz\" -o {{out_dir}}/{{framework}}-decode-layers.md; rc=$?; rm -rf \"$t\"; exit $rc"
        )
    };
    format!(
        "plan: plan.yaml\nagent:\n  preset: command\n  command: {}\n  timeout_secs: 120\nsim:\n  enabled: true\n  time_scale: 0.2\ngate:\n  max_rounds: 2\nlane:\n  ready_timeout_secs: 30\n  bench_timeout_secs: 120\n  profile:\n    sglang: {}\n    vllm: {}\n",
        serde_json::to_string(agent).unwrap(),
        serde_json::to_string(&profile("{checkout}/sim/engine.yaml")).unwrap(),
        serde_json::to_string(&profile("builtin:vllm")).unwrap(),
    )
}

const SIM_AGENT: &str = "sota-bot sim agent --checkout {checkout} --round {round} --prompt {prompt} --summary-out {summary} && git add -A -- sim python && git commit -q -m \"sim agent: round {round} patch\" || true";

struct Campaign {
    tmp: tempfile::TempDir,
    checkout: PathBuf,
    inputs: PathBuf,
    marker: String,
}

impl Campaign {
    fn new(agent: &str) -> Campaign {
        let tmp = tempfile::tempdir().unwrap();
        let checkout = tmp.path().join("sglang");
        sota_bot::cli::local_demo::make_toy_checkout(&checkout).unwrap();
        // An SGLang clearly behind, so every round has something to do.
        let profile = checkout.join("sim/engine.yaml");
        let text = std::fs::read_to_string(&profile).unwrap();
        std::fs::write(
            &profile,
            text.replace("overhead_us_per_step: 900", "overhead_us_per_step: 20000"),
        )
        .unwrap();
        git(&checkout, &["commit", "-qam", "slower sglang"]);
        let inputs = tmp.path().join("inputs");
        std::fs::create_dir_all(&inputs).unwrap();
        std::fs::write(
            inputs.join("request.yaml"),
            SimRequest {
                input_len: 256,
                output_len: 48,
                max_p50_ttft_ms: 60000,
                max_p50_tpot_ms: 5000,
                ..SimRequest::SMALL
            }
            .request(),
        )
        .unwrap();
        std::fs::write(inputs.join("plan.yaml"), PLAN).unwrap();
        std::fs::write(inputs.join("config.yaml"), config(agent)).unwrap();
        let marker = format!("SOTA_TEST_RUN={}", tmp.path().display());
        Campaign {
            tmp,
            checkout,
            inputs,
            marker,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("PATH", path_with_bin())
            .env("SOTA_TEST_RUN", self.tmp.path())
            .stdin(Stdio::null());
        cmd
    }

    fn run_args(&self) -> Vec<String> {
        vec![
            "local".into(),
            "run".into(),
            self.inputs.join("request.yaml").display().to_string(),
            "--checkout".into(),
            self.checkout.display().to_string(),
            "--config".into(),
            self.inputs.join("config.yaml").display().to_string(),
        ]
    }

    /// Starts `local run`; its progress lines arrive on the returned channel.
    fn start(&self) -> (Child, mpsc::Receiver<String>) {
        let args = self.run_args();
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = self
            .command(&refs)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        (child, rx)
    }

    /// Waits for a progress line containing `marker`; the deadline only guards against a
    /// hang (six campaigns run at once, so a busy 2-core machine can take minutes).
    fn wait_for(rx: &mpsc::Receiver<String>, marker: &str, seen: &mut Vec<String>) {
        let deadline = Instant::now() + Duration::from_secs(300);
        while Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    let hit = line.contains(marker);
                    seen.push(line);
                    if hit {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!("no progress line `{marker}`:\n{}", seen.join("\n"));
    }

    /// Processes (pid -> command line) that carry this campaign's marker.
    fn survivors(&self) -> HashMap<u32, String> {
        let mut out = HashMap::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(env) = std::fs::read(e.path().join("environ")) else {
                continue;
            };
            let has = env
                .split(|b| *b == 0)
                .any(|kv| kv == self.marker.as_bytes());
            if has {
                let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                // A zombie awaiting its parent's reaping is no longer running.
                let state = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
                if !state.contains(") Z ") {
                    out.insert(pid, cmd);
                }
            }
        }
        out
    }

    /// Waits up to `limit` for every process of the campaign to be gone.
    fn assert_no_survivors(&self, limit: Duration, what: &str) {
        let deadline = Instant::now() + limit;
        loop {
            let left = self.survivors();
            if left.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                panic!("{what}: processes of the run survived: {left:#?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn resume(&self, extra: &[&str]) -> std::process::Output {
        let checkout = self.checkout.display().to_string();
        let mut args = vec!["local", "resume", checkout.as_str()];
        args.extend_from_slice(extra);
        self.command(&args).output().unwrap()
    }

    fn run_dir_file(&self, name: &str) -> String {
        let runs = self.checkout.join("runs");
        let dir = std::fs::read_dir(&runs)
            .unwrap()
            .flatten()
            .next()
            .unwrap()
            .path();
        std::fs::read_to_string(dir.join(name)).unwrap_or_default()
    }

    /// The campaign after it ended: no row written twice, every round one commit.
    fn assert_ended_cleanly(&self, out: &std::process::Output) {
        let text = show(out);
        assert!(
            out.status.code() == Some(0) || out.status.code() == Some(3),
            "{text}"
        );
        assert!(text.contains("campaign stopped:"), "{text}");
        let rows = parse_jsonl(&self.run_dir_file("benchmark/candidates.jsonl")).unwrap();
        let mut keys: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "{}/{}/{}/{}",
                    r.round,
                    r.candidate_id,
                    r.scenario(),
                    r.repeat
                )
            })
            .collect();
        let n = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), n, "a row was written twice: {rows:#?}");
        // Each baseline candidate has its row.
        for id in ["sglang-00", "vllm-00"] {
            assert!(
                rows.iter().any(|r| r.round == 0 && r.candidate_id == id),
                "baseline row of {id} lost"
            );
        }
        let subjects = git(&self.checkout, &["log", "--format=%s"]);
        let rounds: Vec<&str> = subjects
            .lines()
            .filter(|l| l.starts_with("sota round "))
            .collect();
        let mut numbers: Vec<&str> = rounds
            .iter()
            .filter_map(|l| l.strip_prefix("sota round ")?.split(':').next())
            .collect();
        let count = numbers.len();
        numbers.sort();
        numbers.dedup();
        assert_eq!(numbers.len(), count, "a round committed twice: {subjects}");
        assert!(count <= 2, "{subjects}");
        assert!(
            subjects
                .lines()
                .filter(|l| l.starts_with("sota baseline:"))
                .count()
                == 1,
            "{subjects}"
        );
        self.assert_no_survivors(Duration::from_secs(5), "after the resumed run");
    }
}

fn path_with_bin() -> String {
    format!(
        "{}:{}",
        Path::new(BIN).parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn show(out: &std::process::Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: signals a child process this test started.
    unsafe {
        libc::kill(child.id() as libc::pid_t, sig);
    }
}

/// Where a step is under way, by the engine's progress line for it.
const STEPS: [(&str, &str); 6] = [
    ("server launch and benchmark", "phase 1: SGLang [1/"),
    ("profiling", "round 1: profiling SGLang"),
    ("agent", "round 1: running the agent"),
    ("revalidation", "round 1: revalidating"),
    ("gate", "round 1: ledgers and review gate"),
    ("commit", "round 1: gate accepted"),
];

/// kill -9 at each step, then `local resume` as the CLI prints it.
#[test]
fn kill_9_at_every_step_leaves_nothing_running_and_the_resume_ends_the_campaign() {
    std::thread::scope(|scope| {
        for (step, marker) in STEPS {
            scope.spawn(move || {
                let c = Campaign::new(SIM_AGENT);
                let (mut child, rx) = c.start();
                let mut seen = Vec::new();
                Campaign::wait_for(&rx, marker, &mut seen);
                std::thread::sleep(Duration::from_millis(150));
                signal(&child, libc::SIGKILL);
                let _ = child.wait();
                // The watchdog stops what the dead run left, within its grace period.
                c.assert_no_survivors(Duration::from_secs(8), &format!("kill -9 at {step}"));
                let out = c.resume(&[]);
                c.assert_ended_cleanly(&out);
            });
        }
    });
}

#[test]
fn sigterm_stops_every_process_records_where_and_resume_continues() {
    for (step, marker) in [STEPS[0], STEPS[2]] {
        let c = Campaign::new(SIM_AGENT);
        let (mut child, rx) = c.start();
        let mut seen = Vec::new();
        Campaign::wait_for(&rx, marker, &mut seen);
        std::thread::sleep(Duration::from_millis(150));
        signal(&child, libc::SIGTERM);
        let started = Instant::now();
        let status = child.wait().unwrap();
        let rest: Vec<String> = rx.try_iter().collect();
        assert_eq!(
            status.code(),
            Some(143),
            "{step}: {}\n{}",
            seen.join("\n"),
            rest.join("\n")
        );
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{step}: slow to stop"
        );
        // The run itself left nothing running: no watchdog needed.
        c.assert_no_survivors(Duration::from_millis(500), step);
        let checkpoint = c.run_dir_file("humanize/model-loop-checkpoint.md");
        assert!(checkpoint.contains("SIGTERM during"), "{checkpoint}");
        let status = c
            .command(&["local", "status", &c.checkout.display().to_string()])
            .output()
            .unwrap();
        let status = String::from_utf8_lossy(&status.stdout);
        assert!(status.contains("interrupted: SIGTERM during"), "{status}");
        let out = c.resume(&[]);
        c.assert_ended_cleanly(&out);
    }
}

/// An agent that keeps working after its run died would write into the checkout while a
/// resumed round runs another agent: it is stopped with the run.
#[test]
fn an_agent_s_whole_process_group_dies_with_a_killed_run() {
    let c = Campaign::new("sh -c 'sleep 6; echo late > LATE.txt' agent-of-this-test");
    let (mut child, rx) = c.start();
    let mut seen = Vec::new();
    Campaign::wait_for(&rx, "round 1: running the agent", &mut seen);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        c.survivors()
            .values()
            .any(|cmd| cmd.contains("agent-of-this-test")),
        "the agent is running"
    );
    signal(&child, libc::SIGKILL);
    let _ = child.wait();
    c.assert_no_survivors(Duration::from_secs(8), "agent");
    std::thread::sleep(Duration::from_secs(7));
    assert!(
        !c.checkout.join("LATE.txt").exists(),
        "the agent kept running"
    );
    // The remembered configuration has the sleepy agent; continue with a working one.
    let working = c.inputs.join("working.yaml");
    std::fs::write(&working, config(SIM_AGENT)).unwrap();
    let refused = c.resume(&["--config", &working.display().to_string()]);
    assert_eq!(refused.status.code(), Some(2), "{}", show(&refused));
    assert!(
        show(&refused).contains("--new-config"),
        "{}",
        show(&refused)
    );
    let out = c.resume(&["--config", &working.display().to_string(), "--new-config"]);
    c.assert_ended_cleanly(&out);
    let checkpoint = c.run_dir_file("humanize/model-loop-checkpoint.md");
    assert!(checkpoint.contains("config_changed"), "{checkpoint}");
}

#[test]
fn two_runs_on_one_checkout_cannot_both_proceed() {
    let c = Campaign::new(SIM_AGENT);
    let (mut first, rx) = c.start();
    let mut seen = Vec::new();
    Campaign::wait_for(&rx, "phase 1: SGLang [1/", &mut seen);
    let second = c.resume(&[]);
    assert_eq!(second.status.code(), Some(1), "{}", show(&second));
    let text = show(&second);
    assert!(
        text.contains(&format!(
            "another sota-bot run is using this checkout (pid {}",
            first.id()
        )),
        "{text}"
    );
    signal(&first, libc::SIGTERM);
    let _ = first.wait();
}

/// `local resume` as printed continues with the configuration the campaign started with:
/// its profile commands still work, so the round is not rejected for missing profiles.
#[test]
fn resume_as_printed_remembers_the_configuration() {
    let c = Campaign::new(SIM_AGENT);
    let (mut child, rx) = c.start();
    let mut seen = Vec::new();
    Campaign::wait_for(&rx, "round 1: running the agent", &mut seen);
    signal(&child, libc::SIGTERM);
    let _ = child.wait();
    let status = c
        .command(&["local", "status", &c.checkout.display().to_string()])
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    let hint = status
        .lines()
        .find_map(|l| {
            l.split('`')
                .nth(1)
                .filter(|h| h.starts_with("sota-bot local resume"))
        })
        .unwrap_or_else(|| panic!("no resume hint: {status}"))
        .to_string();
    let words = shlex::split(&hint).unwrap();
    let out = c
        .command(&words.iter().skip(1).map(String::as_str).collect::<Vec<_>>())
        .output()
        .unwrap();
    c.assert_ended_cleanly(&out);
    let report = c.run_dir_file("rounds/round-1/report.md");
    assert!(
        report.contains("| `evidence.profiles` | pass |"),
        "{report}"
    );
    assert!(
        !show(&out).contains("no profile command configured"),
        "{}",
        show(&out)
    );
}
