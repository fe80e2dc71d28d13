//! Engine flows over a real git checkout with real agent processes (shell scripts standing
//! in for a coding agent) and an in-process simulated bench lane whose SGLang speed is read
//! from `sim/engine.yaml` in the checkout, so an agent's patch genuinely moves the gap.

use sota_bot::bench::{BenchRow, RunStatus, Sla};
use sota_bot::campaign::state::Phase;
use sota_bot::engine::progress::RecordingProgress;
use sota_bot::engine::{
    BenchLane, CandidateSpec, Engine, EngineCampaign, EngineOptions, LaneError, Metric, RunOutcome,
    RunPaths, RunTag, ScenarioSpec,
};
use sota_bot::framework::Framework;
use sota_bot::git::Checkout;
use sota_bot::runner::agent::ShellAgent;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Simulated lane: SGLang speed comes from `sim/engine.yaml` (`speed: <f64>`) in the checkout;
/// competitors run at a fixed speed. Candidates whose id contains `oom` run out of memory.
struct SimLane {
    checkout: PathBuf,
    competitor_speed: f64,
    launches: u64,
    fail_after_rows: Option<usize>,
    rows_done: usize,
}

impl SimLane {
    fn sglang_speed(&self) -> f64 {
        std::fs::read_to_string(self.checkout.join("sim/engine.yaml"))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| {
                        l.strip_prefix("speed:")
                            .map(|v| v.trim().parse::<f64>().ok())
                    })
                    .flatten()
            })
            .unwrap_or(1.0)
    }
}

impl BenchLane for SimLane {
    fn run_candidate(
        &mut self,
        cand: &CandidateSpec,
        scenarios: &[ScenarioSpec],
        _tag: &RunTag,
        on_row: &mut dyn FnMut(BenchRow) -> Result<(), LaneError>,
    ) -> Result<(), LaneError> {
        self.launches += 1;
        for s in scenarios {
            if let Some(limit) = self.fail_after_rows {
                if self.rows_done >= limit {
                    // An abrupt stop (like Ctrl-C or a reboot): nothing after this point runs.
                    panic!("simulated crash");
                }
            }
            let speed = if cand.framework == Framework::Sglang {
                self.sglang_speed()
            } else {
                self.competitor_speed
            };
            let bonus = if cand.candidate_id.ends_with("tuned") {
                1.02
            } else {
                1.0
            };
            let status = if cand.candidate_id.contains("oom") {
                RunStatus::Oom
            } else {
                RunStatus::Ok
            };
            let mut row = BenchRow::new(cand.framework, &cand.candidate_id, "m", status);
            row.workload.scenario = Some(s.name.clone());
            row.workload.input_len = Some(s.input_len);
            row.workload.output_len = Some(s.output_len);
            row.workload.num_prompts = Some(8);
            row.workload.kind = Some("random".into());
            if status == RunStatus::Ok {
                row.metrics.output_token_throughput = Some(1000.0 * speed * bonus);
                row.metrics.p50_ttft_ms = Some(50.0);
                row.metrics.p50_tpot_ms = Some(10.0);
                row.metrics.success_rate = Some(1.0);
            } else {
                row.failure_reason = Some("CUDA out of memory (simulated)".into());
            }
            row.server_command = Some(cand.server_command.clone());
            row.benchmark_command = Some(cand.benchmark_command.clone());
            self.rows_done += 1;
            on_row(row)?;
        }
        Ok(())
    }

    fn help_snapshots(&mut self, cand: &CandidateSpec) -> Vec<(String, String)> {
        vec![(
            "server-help.txt".into(),
            format!("usage: {} serve [--flags]\n", cand.framework.canonical()),
        )]
    }

    fn profile(
        &mut self,
        cand: &CandidateSpec,
        scenario: &ScenarioSpec,
        out_dir: &Path,
    ) -> Result<Vec<PathBuf>, LaneError> {
        let p = out_dir.join(format!("{}-kernels.md", scenario.name));
        std::fs::write(
            &p,
            format!(
                "| kernel | share |\n|---|---|\n| {}_attn | 40% |\n",
                cand.framework.canonical()
            ),
        )
        .map_err(|e| LaneError(e.to_string()))?;
        let l = out_dir.join("layer-pipeline.md");
        std::fs::write(&l, "| layer | us |\n|---|---|\n| attention | 120 |\n")
            .map_err(|e| LaneError(e.to_string()))?;
        Ok(vec![p, l])
    }

    fn server_launches(&self) -> u64 {
        self.launches
    }
}

fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?}");
}

fn toy_checkout(speed: f64) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    git(p, &["init", "-q", "-b", "main"]);
    git(p, &["config", "user.email", "t@example.com"]);
    git(p, &["config", "user.name", "t"]);
    std::fs::create_dir_all(p.join("sim")).unwrap();
    std::fs::create_dir_all(p.join("python/sglang")).unwrap();
    std::fs::write(p.join("sim/engine.yaml"), format!("speed: {speed}\n")).unwrap();
    std::fs::write(
        p.join("python/sglang/model.py"),
        "def forward():\n    pass\n",
    )
    .unwrap();
    git(p, &["add", "-A"]);
    git(p, &["commit", "-q", "-m", "toy sglang"]);
    d
}

fn campaign() -> EngineCampaign {
    EngineCampaign {
        campaign_id: "c-test".into(),
        model: "meta-llama/Llama-3.1-8B-Instruct".into(),
        model_slug: "llama-3-1-8b-instruct".into(),
        tokenizer: None,
        precision: Some("bf16".into()),
        quantization: None,
        hardware: "1x H100 (simulated)".into(),
        competitors: vec![Framework::Vllm],
        excluded: vec![Framework::TensorrtLlm, Framework::Tokenspeed],
        unsupported: vec![],
        dataset_kind: "random".into(),
        num_prompts: 8,
        scenarios: vec![
            ScenarioSpec {
                name: "chat".into(),
                input_len: 100,
                output_len: 100,
            },
            ScenarioSpec {
                name: "summarization".into(),
                input_len: 800,
                output_len: 100,
            },
        ],
        sla: Sla {
            max_p50_ttft_ms: Some(1000.0),
            max_p50_tpot_ms: Some(100.0),
            min_success_rate: Some(0.99),
            max_p50_e2e_ms: None,
        },
        metric: Metric::OutputTokenThroughput,
        noise_threshold_pct: 1.0,
        max_rounds: 42,
        wait_for_human: false,
        history_slug: None,
        manifest_md: "# Manifest\n".into(),
    }
}

fn candidates() -> Vec<CandidateSpec> {
    let c = |f: Framework, id: &str| CandidateSpec {
        framework: f,
        candidate_id: id.into(),
        server_command: format!("{} serve m --id {id}", f.canonical()),
        benchmark_command: "bench serve --dataset-name random".into(),
    };
    vec![
        c(Framework::Sglang, "sglang-baseline"),
        c(Framework::Sglang, "sglang-oom"),
        c(Framework::Vllm, "vllm-baseline"),
        c(Framework::Vllm, "vllm-tuned"),
    ]
}

struct Run {
    outcome: Result<RunOutcome, String>,
    lines: Vec<String>,
    launches: u64,
}

fn run_engine(
    checkout: &Path,
    agent: Option<&str>,
    opts: EngineOptions,
    resume: bool,
    lane_crash: Option<usize>,
) -> Run {
    let mut lane = SimLane {
        checkout: checkout.into(),
        competitor_speed: 1.0,
        launches: 0,
        fail_after_rows: lane_crash,
        rows_done: 0,
    };
    let mut progress = RecordingProgress::default();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
    let c = campaign();
    let paths = RunPaths::for_campaign(checkout, date, &c.model_slug);
    let branch = sota_bot::git::campaign_branch(date, &c.model_slug);
    let mut opts = opts;
    opts.agent = agent.map(sota_bot::runner::agent::AgentSpec::shell);
    let outcome = {
        let state = if resume {
            Engine::load_state(&paths).unwrap()
        } else {
            sota_bot::campaign::state::CampaignState::new(
                &c.campaign_id,
                &c.model,
                &branch,
                &paths.rel,
                "",
            )
        };
        let mut engine = Engine {
            checkout: checkout.into(),
            git: Checkout::open(checkout).unwrap(),
            campaign: c,
            candidates: candidates(),
            lane: &mut lane,
            agent: &ShellAgent,
            reviewer: None,
            progress: &mut progress,
            opts,
            state,
            paths,
        };
        if !resume {
            engine.state = engine.initial_state(&branch);
            engine.begin().unwrap();
        }
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| engine.run()))
            .map_err(|_| "crashed".to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
    };
    Run {
        outcome,
        lines: progress.lines,
        launches: lane.launches,
    }
}

fn log(checkout: &Path) -> Vec<String> {
    let out = Command::new("git")
        .args(["log", "--format=%s"])
        .current_dir(checkout)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// An agent that multiplies the engine speed by `factor`, commits, and writes its summary.
fn patch_agent(factor: &str) -> String {
    format!(
        "s=$(sed -n 's/^speed: //p' sim/engine.yaml); n=$(awk -v s=\"$s\" 'BEGIN{{print s*{factor}}}'); echo \"speed: $n\" > sim/engine.yaml; \
         git add sim/engine.yaml && git commit -q -m 'faster decode'; \
         printf 'TITLE: speed x{factor}\\nPATCH: sim/engine.yaml decode path\\nIDEA: fuse attention epilogue\\nNEXT: more\\nTESTS: unit ok\\n' > \"$SOTA_SUMMARY_FILE\""
    )
}

#[test]
fn sglang_ahead_stops_after_baseline() {
    let d = toy_checkout(1.2);
    let r = run_engine(d.path(), None, EngineOptions::default(), false, None);
    match r.outcome.unwrap() {
        RunOutcome::Stopped {
            reason,
            reached_sota,
            ..
        } => {
            assert!(reached_sota);
            assert!(reason.contains("beats"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let l = log(d.path());
    assert!(l[0].starts_with("sota final:"), "{l:?}");
    assert!(l.iter().any(|m| m.starts_with("sota baseline:")));
    // 4 candidates, one launch each covering both scenarios.
    assert_eq!(r.launches, 4);
    let run = d
        .path()
        .join("runs/20260102_llama-3-1-8b-instruct_sota_humanize");
    let rows = std::fs::read_to_string(run.join("benchmark/candidates.jsonl")).unwrap();
    assert_eq!(rows.lines().count(), 8);
    assert!(rows.contains("\"oom\""));
    let fr = std::fs::read_to_string(run.join("final_report.md")).unwrap();
    assert!(fr.contains("reached SOTA in the target environment: yes"));
    assert!(run.join("history/model-pr-history-notes.md").is_file());
}

#[test]
fn behind_then_closing_the_gap() {
    let d = toy_checkout(0.8);
    let r = run_engine(
        d.path(),
        Some(&patch_agent("1.15")),
        EngineOptions::default(),
        false,
        None,
    );
    let outcome = r.outcome.unwrap();
    assert!(
        matches!(
            outcome,
            RunOutcome::Stopped {
                reached_sota: true,
                ..
            }
        ),
        "{outcome:?} {:?}",
        r.lines
    );
    let l = log(d.path());
    assert!(l.iter().any(|m| m == "sota round 1: speed x1.15"), "{l:?}");
    assert!(l.iter().any(|m| m.starts_with("sota plan:")));
    let run = d
        .path()
        .join("runs/20260102_llama-3-1-8b-instruct_sota_humanize");
    let report = std::fs::read_to_string(run.join("rounds/round-1/report.md")).unwrap();
    assert!(
        report.contains("| `revalidation.rows` | pass |"),
        "{report}"
    );
    assert!(run.join("rounds/round-1/gap-chart.svg").is_file());
    let prompt2 = std::fs::read_to_string(run.join("rounds/round-2/prompt.md")).unwrap();
    let review1 = std::fs::read_to_string(run.join("rounds/round-1/review.md")).unwrap();
    assert!(
        prompt2.contains(review1.trim()),
        "the next prompt embeds the review verbatim"
    );
    // Phase 0.5's notes are quoted in every prompt, and the gate re-verifies them.
    assert!(
        prompt2.contains("## What SGLang already did for this model"),
        "{prompt2}"
    );
    assert!(run.join("history/model-pr-history.json").is_file());
    assert!(
        report.contains("| `evidence.history_notes` | pass |"),
        "{report}"
    );
    let opt = std::fs::read_to_string(run.join("humanize/optimization-ledger.md")).unwrap();
    assert!(sota_bot::campaign::ledger::count_rows(&opt) >= 1);
    let fr = std::fs::read_to_string(run.join("final_report.md")).unwrap();
    assert!(fr.contains("`sim/engine.yaml`"), "{fr}");
}

#[test]
fn stalling_replans_then_drift_stops() {
    let d = toy_checkout(0.8);
    // A real source change that does not make SGLang faster: measured, and STALLED.
    let agent = "echo '# tried a different tiling' >> python/sglang/model.py; \
                 printf 'TITLE: retile\\nPATCH: retile the forward pass\\n' > \"$SOTA_SUMMARY_FILE\"";
    let r = run_engine(d.path(), Some(agent), EngineOptions::default(), false, None);
    match r.outcome.unwrap() {
        RunOutcome::Stopped {
            reason,
            reached_sota,
            ..
        } => {
            assert!(!reached_sota);
            assert!(reason.contains("drift"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let run = d
        .path()
        .join("runs/20260102_llama-3-1-8b-instruct_sota_humanize");
    let g2 = std::fs::read_to_string(run.join("rounds/round-2/gate.json")).unwrap();
    assert!(g2.contains("\"decision\": \"replan\""), "{g2}");
    let p3 = std::fs::read_to_string(run.join("rounds/round-3/prompt.md")).unwrap();
    assert!(p3.contains("Replan required"));
    assert!(p3.contains("expand code-first research"));
}

#[test]
fn a_workload_change_is_refused_before_any_measurement() {
    let d = toy_checkout(0.8);
    let agent = "f=$SOTA_RUN_DIR/benchmark/contract.json; sed -i 's/\"num_prompts\": 8/\"num_prompts\": 2/' $f; \
                 printf 'TITLE: easier workload\\nPATCH: none\\n' > \"$SOTA_SUMMARY_FILE\"";
    let opts = EngineOptions {
        rounds_this_run: Some(1),
        ..Default::default()
    };
    let r = run_engine(d.path(), Some(agent), opts, false, None);
    assert!(matches!(
        r.outcome.unwrap(),
        RunOutcome::Paused { after_round: 1 }
    ));
    let run = d
        .path()
        .join("runs/20260102_llama-3-1-8b-instruct_sota_humanize");
    let g = std::fs::read_to_string(run.join("rounds/round-1/gate.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&g).unwrap();
    assert_eq!(v["accepted"], false);
    let failed: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["agent.completed", "agent.allowed_paths"], "{g}");
    let why = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "agent.allowed_paths")
        .unwrap()["reason"]
        .to_string();
    assert!(why.contains("benchmark/contract.json"), "{why}");
    let contract = std::fs::read_to_string(run.join("benchmark/contract.json")).unwrap();
    assert!(
        contract.contains("\"num_prompts\": 8"),
        "the bot-owned file is put back"
    );
    assert_eq!(v["verdict_source"], "agent_failed");
    let rows = std::fs::read_to_string(run.join("benchmark/candidates.jsonl")).unwrap();
    assert!(
        !rows.contains("\"round\":1"),
        "no revalidation was spent on a refused change"
    );
}

#[test]
fn agent_timeout_is_recorded_and_round_goes_on() {
    let d = toy_checkout(0.8);
    let opts = EngineOptions {
        agent_timeout: Duration::from_millis(500),
        rounds_this_run: Some(1),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let r = run_engine(d.path(), Some("sleep 30"), opts, false, None);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(matches!(
        r.outcome.unwrap(),
        RunOutcome::Paused { after_round: 1 }
    ));
    let run = d
        .path()
        .join("runs/20260102_llama-3-1-8b-instruct_sota_humanize");
    let ledger = std::fs::read_to_string(run.join("humanize/attempt-ledger.md")).unwrap();
    assert!(ledger.contains("did not finish within"), "{ledger}");
    assert!(ledger.contains("AGENT FAILED"), "{ledger}");
    let g = std::fs::read_to_string(run.join("rounds/round-1/gate.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&g).unwrap();
    assert_eq!(v["decision"]["decision"], "continue", "{g}");
    assert_eq!(v["verdict_source"], "agent_failed", "{g}");
}

#[test]
fn crash_in_baseline_resumes_without_duplicates() {
    let d = toy_checkout(0.8);
    let r = run_engine(d.path(), None, EngineOptions::default(), false, Some(3));
    assert_eq!(r.outcome, Err("crashed".to_string()));
    let run = d
        .path()
        .join("runs/20260102_llama-3-1-8b-instruct_sota_humanize");
    let before = std::fs::read_to_string(run.join("benchmark/candidates.jsonl")).unwrap();
    let n_before = before.lines().count();
    assert!((3..8).contains(&n_before), "{n_before}");
    let opts = EngineOptions {
        rounds_this_run: Some(0),
        ..Default::default()
    };
    let r2 = run_engine(d.path(), None, opts, true, None);
    assert!(matches!(r2.outcome.unwrap(), RunOutcome::Paused { .. }));
    let after = std::fs::read_to_string(run.join("benchmark/candidates.jsonl")).unwrap();
    assert!(after.starts_with(&before), "rows are only appended");
    let rows = sota_bot::bench::row::parse_jsonl(&after).unwrap();
    let mut keys: Vec<String> = rows
        .iter()
        .map(sota_bot::campaign::state::row_key)
        .collect();
    let total = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), total, "no duplicated run");
    assert_eq!(total, 8);
}

#[test]
fn crash_mid_round_resumes_and_finishes_it() {
    let d = toy_checkout(0.8);
    // Round 1 runs the agent, then the lane dies during revalidation.
    let opts = EngineOptions {
        rounds_this_run: Some(1),
        ..Default::default()
    };
    let r = run_engine(
        d.path(),
        Some(&patch_agent("1.3")),
        opts.clone(),
        false,
        Some(8 + 1),
    );
    assert_eq!(r.outcome, Err("crashed".to_string()));
    let run = RunPaths::from_rel(
        d.path(),
        "runs/20260102_llama-3-1-8b-instruct_sota_humanize",
    );
    let state = Engine::load_state(&run).unwrap();
    assert_eq!(state.phase, Phase::PlanDone);
    let r2 = run_engine(
        d.path(),
        Some("echo must-not-run > agent-ran-again"),
        opts,
        true,
        None,
    );
    assert!(r2.outcome.is_ok(), "{:?}", r2.outcome);
    assert!(
        !d.path().join("agent-ran-again").exists(),
        "the finished agent step is not redone"
    );
    let l = log(d.path());
    assert_eq!(
        l.iter().filter(|m| m.starts_with("sota round 1:")).count(),
        1,
        "{l:?}"
    );
    let rows =
        sota_bot::bench::row::parse_jsonl(&std::fs::read_to_string(run.candidates()).unwrap())
            .unwrap();
    let r1: Vec<_> = rows
        .iter()
        .filter(|r| r.round == 1 && r.repeat == 0)
        .collect();
    assert_eq!(r1.len(), 2, "one revalidation row per scenario");
}
