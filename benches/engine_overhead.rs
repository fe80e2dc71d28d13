//! Engine overhead per round: everything the engine does itself (rows, ledgers, checkpoint,
//! reports, gate, git) with the server, benchmark and agent time taken out. Uses an instant
//! in-process bench lane and a no-op agent, on a real git checkout in a temp folder.
//! Also reports server launches in the baseline vs candidates x scenarios.
//!
//! The overhead is reported as a ratio against a floor measured in the same run: one bare
//! `git add -A && git commit` of a small change in a scratch repository, the least any
//! round must do to record itself.
//!
//! Run: `cargo bench --bench engine_overhead`

use sota_bot::bench::{BenchRow, RunStatus, Sla};
use sota_bot::engine::progress::RecordingProgress;
use sota_bot::engine::*;
use sota_bot::framework::Framework;
use sota_bot::git::Checkout;
use sota_bot::runner::agent::ShellAgent;
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

struct InstantLane {
    launches: u64,
    /// Time spent inside the lane, shared with `main` while the engine borrows the lane.
    time_in_lane: Rc<Cell<Duration>>,
}

impl BenchLane for InstantLane {
    fn run_candidate(
        &mut self,
        cand: &CandidateSpec,
        scenarios: &[ScenarioSpec],
        _tag: &RunTag,
        on_row: &mut dyn FnMut(BenchRow) -> Result<(), LaneError>,
    ) -> Result<(), LaneError> {
        let t = Instant::now();
        self.launches += 1;
        let speed = if cand.framework == Framework::Sglang {
            0.5
        } else {
            1.0
        };
        let mut rows = Vec::new();
        for s in scenarios {
            let mut row = BenchRow::new(cand.framework, &cand.candidate_id, "m", RunStatus::Ok);
            row.workload.scenario = Some(s.name.clone());
            row.metrics.output_token_throughput = Some(1000.0 * speed);
            row.metrics.p50_ttft_ms = Some(10.0);
            row.metrics.p50_tpot_ms = Some(1.0);
            row.metrics.success_rate = Some(1.0);
            rows.push(row);
        }
        self.time_in_lane.set(self.time_in_lane.get() + t.elapsed());
        for r in rows {
            on_row(r)?;
        }
        Ok(())
    }
    /// One launch for candidates sharing a server configuration, like the process lane.
    fn run_shared(
        &mut self,
        runs: &[(CandidateSpec, Vec<ScenarioSpec>)],
        tag: &RunTag,
        on_row: &mut dyn FnMut(usize, BenchRow) -> Result<(), LaneError>,
    ) -> Result<(), LaneError> {
        let before = self.launches;
        for (i, (cand, scenarios)) in runs.iter().enumerate() {
            self.run_candidate(cand, scenarios, tag, &mut |row| on_row(i, row))?;
        }
        self.launches = before + 1;
        Ok(())
    }
    fn help_snapshots(&mut self, _c: &CandidateSpec) -> Vec<(String, String)> {
        Vec::new()
    }
    fn profile(
        &mut self,
        _c: &CandidateSpec,
        _s: &ScenarioSpec,
        out: &Path,
    ) -> Result<Vec<PathBuf>, LaneError> {
        let p = out.join("kernels.md");
        std::fs::write(&p, "| k | v |\n|---|---|\n").map_err(|e| LaneError(e.to_string()))?;
        Ok(vec![p])
    }
    fn server_launches(&self) -> u64 {
        self.launches
    }
}

fn main() {
    let d = tempfile::tempdir().expect("tempdir");
    let p = d.path();
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["config", "user.email", "b@x"],
        &["config", "user.name", "b"],
    ] {
        Command::new("git")
            .args(args)
            .current_dir(p)
            .status()
            .expect("git");
    }
    std::fs::create_dir_all(p.join("sim")).expect("mkdir");
    std::fs::write(p.join("sim/engine.yaml"), "speed: 1\n").expect("write");
    Command::new("git")
        .args(["add", "-A"])
        .current_dir(p)
        .status()
        .expect("git");
    Command::new("git")
        .args(["commit", "-qm", "init"])
        .current_dir(p)
        .status()
        .expect("git");

    let scenarios = vec![
        ScenarioSpec {
            name: "chat".into(),
            input_len: 1000,
            output_len: 1000,
        },
        ScenarioSpec {
            name: "summarization".into(),
            input_len: 8000,
            output_len: 1000,
        },
    ];
    let mut candidates = Vec::new();
    for f in [Framework::Sglang, Framework::Vllm, Framework::Tokenspeed] {
        for i in 0..4 {
            candidates.push(CandidateSpec {
                framework: f,
                candidate_id: format!("{}-{i}", f.canonical()),
                // Two server configurations, each with two benchmark-side settings.
                server_command: format!("serve --config {}", i / 2),
                benchmark_command: format!("bench --max-concurrency {}", 1 << i),
            });
        }
    }
    let campaign = EngineCampaign {
        campaign_id: "bench".into(),
        model: "m".into(),
        model_slug: "m".into(),
        tokenizer: None,
        precision: None,
        quantization: None,
        hardware: "sim".into(),
        competitors: vec![Framework::Vllm, Framework::Tokenspeed],
        excluded: vec![],
        unsupported: vec![],
        dataset_kind: "random".into(),
        num_prompts: 80,
        scenarios: scenarios.clone(),
        sla: Sla {
            max_p50_ttft_ms: Some(1000.0),
            max_p50_tpot_ms: None,
            min_success_rate: None,
            max_p50_e2e_ms: None,
        },
        metric: Metric::OutputTokenThroughput,
        noise_threshold_pct: 1.0,
        max_rounds: 42,
        wait_for_human: false,
        history_slug: None,
        manifest_md: "# m\n".into(),
    };
    let rounds = 6u32;
    let date = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("date");
    let paths = RunPaths::for_campaign(p, date, "m");
    let branch = sota_bot::git::campaign_branch(date, "m");
    let lane_time = Rc::new(Cell::new(Duration::ZERO));
    let mut lane = InstantLane {
        launches: 0,
        time_in_lane: Rc::clone(&lane_time),
    };
    let mut progress = RecordingProgress::default();
    let agent_cmd = "printf 'TITLE: noop\\nPATCH: none\\n' > \"$SOTA_SUMMARY_FILE\"";
    let mut opts = EngineOptions {
        agent: Some(sota_bot::runner::agent::AgentSpec::shell(agent_cmd)),
        rounds_this_run: Some(0),
        ..EngineOptions::default()
    };
    opts.gate.drift_stop_after = 100;
    opts.gate.replan_after = 100;
    let ncand = candidates.len();
    let mut engine = Engine {
        checkout: p.to_path_buf(),
        git: Checkout::open(p).expect("open"),
        campaign,
        candidates,
        lane: &mut lane,
        agent: &ShellAgent,
        reviewer: None,
        progress: &mut progress,
        opts,
        state: sota_bot::campaign::state::CampaignState::new("", "", "", "", ""),
        paths,
    };
    engine.state = engine.initial_state(&branch);
    engine.begin().expect("begin");
    let t = Instant::now();
    engine.run().expect("baseline");
    let baseline = t.elapsed();
    let lane_before_rounds = lane_time.get();
    // Agent cost measured separately: the same no-op command alone.
    let ta = Instant::now();
    for _ in 0..rounds {
        Command::new("sh")
            .arg("-c")
            .arg("true")
            .status()
            .expect("sh");
    }
    let agent_floor = ta.elapsed() / rounds;
    let baseline_launches = engine.lane.server_launches();
    engine.opts.rounds_this_run = Some(rounds);
    engine.opts.gate.max_rounds = 100;
    let t = Instant::now();
    engine.run().expect("rounds");
    let loop_time = t.elapsed();
    let rounds_done = u32::try_from(engine.state.rounds.len())
        .unwrap_or(rounds)
        .max(1);
    drop(engine);
    let lane_in_rounds = lane_time.get().saturating_sub(lane_before_rounds);
    let per_round = loop_time
        .saturating_sub(agent_floor * rounds_done)
        .saturating_sub(lane_in_rounds)
        / rounds_done;
    let commit_floor = git_commit_floor(8);
    println!(
        "baseline: {} candidates x {} scenarios = {} runs, {} server launches ({:.2} launches per run), engine time {:?}",
        ncand,
        scenarios.len(),
        ncand * scenarios.len(),
        baseline_launches,
        baseline_launches as f64 / (ncand * scenarios.len()) as f64,
        baseline
    );
    println!(
        "rounds: {rounds_done}, engine overhead per round {per_round:?} (lane {lane_in_rounds:?} and agent ~{agent_floor:?}/round excluded)"
    );
    println!(
        "floor (same run): bare git add+commit {commit_floor:?}; overhead per round = {:.1}x the floor",
        per_round.as_secs_f64() / commit_floor.as_secs_f64().max(1e-9)
    );
}

/// Median time of `git add -A && git commit` of a one-line change in a scratch repository.
fn git_commit_floor(samples: usize) -> Duration {
    let d = tempfile::tempdir().expect("tempdir");
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(d.path())
            .output()
            .expect("git");
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["config", "user.email", "b@x"]);
    git(&["config", "user.name", "b"]);
    let mut times = Vec::with_capacity(samples);
    for i in 0..samples {
        std::fs::write(d.path().join("f.txt"), format!("{i}\n")).expect("write");
        let t = Instant::now();
        git(&["add", "-A"]);
        git(&["commit", "-qm", "x"]);
        times.push(t.elapsed());
    }
    times.sort();
    times[samples / 2]
}
