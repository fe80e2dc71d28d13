//! A builder for engine runs over a real git checkout: an in-process simulated bench lane
//! whose SGLang speed is read from `sim/engine.yaml` in the checkout (so an agent's patch
//! genuinely moves the gap), real agent processes (shell lines), and an optional crash of
//! the lane after some rows.
#![allow(dead_code)] // each test crate uses part of this

use sota_bot::bench::{BenchRow, RunStatus, Sla};
use sota_bot::engine::progress::RecordingProgress;
use sota_bot::engine::{
    BenchLane, CandidateSpec, Engine, EngineCampaign, EngineOptions, LaneError, Metric, RunOutcome,
    RunPaths, RunTag, ScenarioSpec,
};
use sota_bot::framework::Framework;
use sota_bot::git::Checkout;
use sota_bot::runner::agent::{AgentSpec, ShellAgent};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The run directory every campaign of [`campaign`] gets (its date is fixed).
pub const RUN_REL: &str = "runs/20260102_llama-3-1-8b-instruct_sota_humanize";

/// The run directory of the campaign in `checkout`.
pub fn run_dir(checkout: &Path) -> PathBuf {
    checkout.join(RUN_REL)
}

/// The text of `rel` under the run directory of the campaign in `checkout`.
pub fn run_file(checkout: &Path, rel: &str) -> String {
    let path = run_dir(checkout).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Simulated lane: SGLang speed comes from `sim/engine.yaml` (`speed: <f64>`) in the checkout;
/// competitors run at a fixed speed. Candidates whose id contains `oom` run out of memory.
pub struct SimLane {
    checkout: PathBuf,
    competitor_speed: f64,
    launches: u64,
    fail_after_rows: Option<usize>,
    rows_done: usize,
    /// A scenario where every competitor answers too slowly for the SLA.
    competitor_sla_fail: Option<String>,
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
            let slow = cand.framework != Framework::Sglang
                && self.competitor_sla_fail.as_deref() == Some(s.name.as_str());
            if status == RunStatus::Ok {
                row.metrics.output_token_throughput = Some(1000.0 * speed * bonus);
                row.metrics.p50_ttft_ms = Some(if slow { 5000.0 } else { 50.0 });
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

/// A toy SGLang checkout whose simulated engine runs at `speed` (vLLM runs at 1.0).
pub fn toy_checkout(speed: f64) -> tempfile::TempDir {
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

/// A two-scenario campaign against vLLM, with a 1% noise threshold.
pub fn campaign() -> EngineCampaign {
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

/// Two SGLang and two vLLM candidates; `sglang-oom` runs out of memory.
pub fn candidates() -> Vec<CandidateSpec> {
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

/// What an engine run ended with: its outcome (`Err("crashed")` when the lane crashed),
/// its progress lines and how many servers the lane launched.
pub struct Run {
    pub outcome: Result<RunOutcome, String>,
    pub lines: Vec<String>,
    pub launches: u64,
}

/// One engine run of [`campaign`] over a checkout: a fresh start with no agent and default
/// options unless told otherwise.
#[must_use = "an engine run does nothing until `run()`"]
pub struct EngineRun {
    checkout: PathBuf,
    agent: Option<String>,
    opts: EngineOptions,
    resume: bool,
    crash_after_rows: Option<usize>,
    competitor_sla_fail: Option<String>,
    noise_threshold_pct: Option<f64>,
}

impl EngineRun {
    pub fn new(checkout: &Path) -> EngineRun {
        EngineRun {
            checkout: checkout.into(),
            agent: None,
            opts: EngineOptions::default(),
            resume: false,
            crash_after_rows: None,
            competitor_sla_fail: None,
            noise_threshold_pct: None,
        }
    }

    /// The round's agent: a shell line run in the checkout.
    pub fn agent(mut self, line: &str) -> EngineRun {
        self.agent = Some(line.into());
        self
    }

    /// Stop after `n` rounds in this run.
    pub fn rounds(mut self, n: u32) -> EngineRun {
        self.opts.rounds_this_run = Some(n);
        self
    }

    /// Kill the agent after `timeout`.
    pub fn agent_timeout(mut self, timeout: Duration) -> EngineRun {
        self.opts.agent_timeout = timeout;
        self
    }

    /// Resume the campaign from its checkpoint instead of starting it.
    pub fn resume(mut self) -> EngineRun {
        self.resume = true;
        self
    }

    /// The lane crashes (like a kill or a reboot) once it has produced `rows` rows.
    pub fn crash_after_rows(mut self, rows: usize) -> EngineRun {
        self.crash_after_rows = Some(rows);
        self
    }

    /// Every competitor misses the SLA's TTFT limit in `scenario`, so it has no gap.
    pub fn competitor_fails_sla_in(mut self, scenario: &str) -> EngineRun {
        self.competitor_sla_fail = Some(scenario.into());
        self
    }

    /// The campaign's noise threshold (percent) instead of [`campaign`]'s 1%.
    pub fn noise_threshold_pct(mut self, pct: f64) -> EngineRun {
        self.noise_threshold_pct = Some(pct);
        self
    }

    pub fn run(self) -> Run {
        let checkout = self.checkout.as_path();
        let mut lane = SimLane {
            checkout: checkout.into(),
            competitor_speed: 1.0,
            launches: 0,
            fail_after_rows: self.crash_after_rows,
            rows_done: 0,
            competitor_sla_fail: self.competitor_sla_fail,
        };
        let mut progress = RecordingProgress::default();
        let date = chrono::NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
        let mut c = campaign();
        if let Some(pct) = self.noise_threshold_pct {
            c.noise_threshold_pct = pct;
        }
        let paths = RunPaths::for_campaign(checkout, date, &c.model_slug);
        assert_eq!(paths.rel, RUN_REL);
        let branch = sota_bot::git::campaign_branch(date, &c.model_slug);
        let mut opts = self.opts;
        opts.agent = self.agent.map(AgentSpec::shell);
        let outcome = {
            let state = if self.resume {
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
            if !self.resume {
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
}

/// Commit subjects of the checkout, newest first.
pub fn log(checkout: &Path) -> Vec<String> {
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
pub fn patch_agent(factor: &str) -> String {
    format!(
        "s=$(sed -n 's/^speed: //p' sim/engine.yaml); n=$(awk -v s=\"$s\" 'BEGIN{{print s*{factor}}}'); echo \"speed: $n\" > sim/engine.yaml; \
         git add sim/engine.yaml && git commit -q -m 'faster decode'; \
         printf 'TITLE: speed x{factor}\\nPATCH: sim/engine.yaml decode path\\nIDEA: fuse attention epilogue\\nNEXT: more\\nTESTS: unit ok\\n' > \"$SOTA_SUMMARY_FILE\""
    )
}
