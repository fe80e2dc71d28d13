//! Real coding agents drive `sota-bot local run`: the Claude Code and Codex CLIs pinned in
//! `tools/package.json`, started by their presets, talk to model-endpoint SIMULATORS on
//! loopback (`support_models`, the only scripted part: the model's answers) and edit a real
//! git checkout through their own tools. Each campaign runs on the simulator lane.
//!
//! Happy stories: each preset runs whole campaigns whose rounds are accepted and committed
//! once each (the agent's own commits folded in). Failure stories: a CLI that is not
//! installed, an endpoint answering 401, 429 or 529, an endpoint that never answers, an
//! agent that changes nothing, one that edits `.github/`, one that writes a credential:
//! each round is recorded with the reason and the scrubbed log tail, no revalidation is
//! spent on it, and two in a row put the campaign on hold.
//!
//! Without the CLIs (`npm ci` in tools/) the tests skip loudly, unless SOTA_REQUIRE_TOOLS
//! is set (CI sets it), in which case they fail.

mod support_models;
mod support_requests;

use regex::Regex;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use support_models::{Conversation, ModelSim, Reply, Script};
use support_requests::SimRequest;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bin_dir() -> PathBuf {
    root().join("tools/node_modules/.bin")
}

/// Whether the pinned CLIs run here; otherwise skips (or fails under SOTA_REQUIRE_TOOLS).
fn clis_available() -> bool {
    let ok = ["claude", "codex"].iter().all(|c| {
        Command::new(bin_dir().join(c))
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !ok {
        assert!(
            std::env::var_os("SOTA_REQUIRE_TOOLS").is_none(),
            "the Claude Code and Codex CLIs are required (npm ci in tools/) because SOTA_REQUIRE_TOOLS is set"
        );
        eprintln!(
            "SKIPPED: claude/codex not installed in tools/node_modules; run `npm ci` in tools/"
        );
    }
    ok
}

fn profile_cmd(profile: &str) -> String {
    format!(
        "t=$(mktemp -d) && sota-bot sim trace --profile {profile} --stage prefill --batch 1 --input-len {{input_len}} --out \"$t/prefill.trace.json.gz\" && sota-bot sim trace --profile {profile} --stage decode --batch 4 --input-len {{input_len}} --output-len 8 --out \"$t/decode.trace.json.gz\" && sota-bot profile analyze \"$t/prefill.trace.json.gz\" -o {{out_dir}}/{{framework}}-prefill-tables.md && sota-bot profile analyze \"$t/decode.trace.json.gz\" -o {{out_dir}}/{{framework}}-decode-tables.md && sota-bot profile layers \"$t/decode.trace.json.gz\" -o {{out_dir}}/{{framework}}-decode-layers.md; rc=$?; rm -rf \"$t\"; exit $rc"
    )
}

/// A toy SGLang checkout (clearly behind vLLM at the baseline) and the campaign's inputs.
struct Story {
    tmp: tempfile::TempDir,
    checkout: PathBuf,
    inputs: PathBuf,
}

impl Story {
    fn new(agent_yaml: &str, max_rounds: u32) -> Story {
        let tmp = tempfile::tempdir().unwrap();
        let checkout = tmp.path().join("sglang");
        sota_bot::cli::local_demo::make_toy_checkout(&checkout).unwrap();
        let profile = checkout.join("sim/engine.yaml");
        let text = std::fs::read_to_string(&profile).unwrap();
        assert!(text.contains("overhead_us_per_step: 900"));
        std::fs::write(
            &profile,
            text.replace("overhead_us_per_step: 900", "overhead_us_per_step: 40000"),
        )
        .unwrap();
        git(&checkout, &["commit", "-qam", "slower sglang"]);
        let inputs = tmp.path().join("inputs");
        std::fs::create_dir_all(&inputs).unwrap();
        std::fs::write(
            inputs.join("request.yaml"),
            SimRequest {
                max_rounds,
                ..SimRequest::SMALL
            }
            .request(),
        )
        .unwrap();
        std::fs::write(inputs.join("plan.yaml"), SimRequest::SMALL.plan()).unwrap();
        let config = format!(
            "plan: plan.yaml\nagent:\n{agent_yaml}\nsim:\n  enabled: true\n  time_scale: 0.3\ngate:\n  max_rounds: {max_rounds}\nlane:\n  ready_timeout_secs: 30\n  bench_timeout_secs: 120\n  profile:\n    sglang: {}\n    vllm: {}\n",
            serde_json::to_string(&profile_cmd("{checkout}/sim/engine.yaml")).unwrap(),
            serde_json::to_string(&profile_cmd("builtin:vllm")).unwrap(),
        );
        std::fs::write(inputs.join("config.yaml"), config).unwrap();
        Story {
            tmp,
            checkout,
            inputs,
        }
    }

    /// `sota-bot local run` with the CLIs on PATH and their homes inside the story.
    fn run(&self, envs: &[(&str, &str)]) -> Output {
        let exe = PathBuf::from(env!("CARGO_BIN_EXE_sota-bot"));
        let path = format!(
            "{}:{}:{}",
            exe.parent().unwrap().display(),
            bin_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let home = self.tmp.path().join("home");
        std::fs::create_dir_all(home.join("codex")).unwrap();
        let mut cmd = Command::new(&exe);
        cmd.args(["local", "run"])
            .arg(self.inputs.join("request.yaml"))
            .arg("--checkout")
            .arg(&self.checkout)
            .arg("--config")
            .arg(self.inputs.join("config.yaml"))
            .env("PATH", path)
            .env("HOME", &home)
            .env("CODEX_HOME", home.join("codex"))
            // Keep the real CLIs' own retries short: the stories are about what happens
            // after the agent gives up.
            .env("CLAUDE_CODE_MAX_RETRIES", "1")
            .env_remove("ANTHROPIC_BASE_URL")
            .env_remove("OPENAI_BASE_URL");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    fn run_dir(&self) -> PathBuf {
        std::fs::read_dir(self.checkout.join("runs"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.is_dir())
            .unwrap()
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.run_dir().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    fn gate(&self, round: u32) -> Value {
        serde_json::from_str(&self.read(&format!("rounds/round-{round}/gate.json"))).unwrap()
    }

    fn subjects(&self) -> Vec<String> {
        git(&self.checkout, &["log", "--format=%s"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn round_rows(&self) -> usize {
        self.read("benchmark/candidates.jsonl")
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|r| r["round"].as_u64().unwrap_or(0) > 0)
            .count()
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// What a round prompt tells the agent.
struct Prompt {
    round: u32,
    checkout: String,
    summary: String,
}

fn parse_prompt(text: &str) -> Prompt {
    let cap = |re: &str| {
        Regex::new(re)
            .unwrap()
            .captures(text)
            .map(|c| c[1].to_string())
            .unwrap_or_else(|| panic!("the round prompt lacks {re}:\n{text}"))
    };
    Prompt {
        round: cap(r"# sota-bot round (\d+)").parse().unwrap(),
        checkout: cap(r"Work only in this checkout \(`([^`]+)`\)"),
        summary: cap(r"write your round summary to\s+`([^`]+)`"),
    }
}

/// The scripted model's patch of round `round`: a real edit of the simulated SGLang engine
/// (round 1 overlaps part of the scheduler, round 2 cuts its per-step overhead).
fn patch_cmd(round: u32) -> &'static str {
    if round == 1 {
        "sed -i 's/overlap_fraction: 0.0/overlap_fraction: 0.3/' sim/engine.yaml"
    } else {
        "sed -i 's/overhead_us_per_step: 40000/overhead_us_per_step: 600/' sim/engine.yaml"
    }
}

fn summary_text(round: u32) -> String {
    format!(
        "TITLE: scheduler overlap step {round}\nPATCH: sim/engine.yaml scheduler overlap and overhead\nIDEA: the decode profile shows exposed scheduler overhead between steps\nNEXT: fuse the norm kernels\n"
    )
}

/// A model that patches, commits (when `commit`), writes the summary and stops.
fn patching_model(commit: bool, write_tool: bool) -> Script {
    Arc::new(move |c: &Conversation| {
        let p = parse_prompt(&c.prompt);
        match c.tool_results {
            0 if commit => Reply::Shell(format!(
                "{} && git commit -qam 'Overlap the scheduler with GPU work (round {})'",
                patch_cmd(p.round),
                p.round
            )),
            0 => Reply::Shell(patch_cmd(p.round).to_string()),
            1 if write_tool => Reply::Write {
                path: format!("{}/{}", p.checkout, p.summary),
                content: summary_text(p.round),
            },
            1 => Reply::Shell(format!(
                "printf '%s' '{}' > {}",
                summary_text(p.round),
                p.summary
            )),
            _ => Reply::Text(format!("Round {} patched and summarised.", p.round)),
        }
    })
}

fn claude_agent(sim: &ModelSim) -> String {
    format!(
        "  preset: claude\n  model: claude-sonnet-4-5\n  max_turns: 12\n  base_url: {}\n  timeout_secs: 120",
        sim.base
    )
}

fn codex_agent(sim: &ModelSim) -> String {
    format!(
        "  preset: codex\n  model: gpt-5-codex\n  base_url: {}/v1\n  api_key_env: SIM_MODEL_KEY\n  timeout_secs: 120",
        sim.base
    )
}

const FAKE_KEY: &str = "sk-sim-0123456789abcdefghijklmnop";

fn assert_accepted_rounds_committed_once(s: &Story, out: &Output) -> Vec<u32> {
    assert!(out.status.success(), "{}", show(out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("campaign stopped"), "{}", show(out));
    let subjects = s.subjects();
    let rounds: Vec<u32> = subjects
        .iter()
        .filter_map(|l| l.strip_prefix("sota round "))
        .filter_map(|l| l.split(':').next()?.parse().ok())
        .collect();
    assert!(!rounds.is_empty(), "{subjects:?}");
    let mut sorted = rounds.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        rounds.len(),
        "one commit per round: {subjects:?}"
    );
    for r in &sorted {
        let g = s.gate(*r);
        assert_eq!(g["accepted"], true, "round {r}: {g:#}");
        let commit = git(
            &s.checkout,
            &["log", "--format=%H", "--grep", &format!("^sota round {r}:")],
        );
        let files = git(
            &s.checkout,
            &["show", "--name-only", "--format=", commit.trim()],
        );
        assert!(
            files.contains("sim/engine.yaml"),
            "round {r} holds the patch: {files}"
        );
        assert!(
            files.contains(&format!("rounds/round-{r}/report.md")),
            "round {r} holds its artifacts: {files}"
        );
    }
    assert!(s.round_rows() > 0, "rounds were revalidated");
    sorted
}

#[test]
fn claude_code_runs_a_whole_campaign_one_commit_per_round() {
    if !clis_available() {
        return;
    }
    let sim = ModelSim::anthropic(patching_model(true, true));
    let s = Story::new(&claude_agent(&sim), 2);
    let out = s.run(&[("ANTHROPIC_API_KEY", FAKE_KEY)]);
    let rounds = assert_accepted_rounds_committed_once(&s, &out);
    // The agent's own commit is folded into the round commit, its message in the body.
    assert!(
        !s.subjects()
            .iter()
            .any(|l| l.starts_with("Overlap the scheduler")),
        "{:?}",
        s.subjects()
    );
    let body = git(
        &s.checkout,
        &["log", "--format=%B", "--grep", "^sota round 1:"],
    );
    assert!(
        body.contains("Overlap the scheduler with GPU work (round 1)"),
        "{body}"
    );
    // What the agent did is recorded: report, ledger.
    let report = s.read("rounds/round-1/report.md");
    assert!(report.contains("### Agent"), "{report}");
    assert!(
        report.contains("| claude (model claude-sonnet-4-5, max 12 turns) | ok |"),
        "{report}"
    );
    assert!(
        report.contains("$0."),
        "Claude Code reports its cost: {report}"
    );
    let ledger = s.read("humanize/attempt-ledger.md");
    assert!(ledger.contains("3 turns"), "{ledger}");
    // The reviewer's evidence holds the round's SGLang diff (and nothing of the run dir).
    let input: Value = serde_json::from_str(&s.read("rounds/round-1/gate-input.json")).unwrap();
    let diff = input["evidence"]["source_diff"].as_str().unwrap_or("");
    assert!(diff.contains("+  overlap_fraction: 0.3"), "{diff}");
    assert!(!diff.contains("runs/"), "{diff}");
    // The real CLI spoke the Messages API with streaming, offering its own tools.
    let reqs = sim.requests();
    assert!(reqs.len() >= 3 * rounds.len(), "{}", reqs.len());
    for (path, body) in &reqs {
        assert_eq!(path, "/v1/messages");
        assert_eq!(body["stream"], true);
        assert_eq!(body["model"], "claude-sonnet-4-5");
        let tools: Vec<&str> = body["tools"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert!(
            tools.contains(&"Bash") && tools.contains(&"Write"),
            "{tools:?}"
        );
    }
    // The key never reached a committed file.
    let all = git(&s.checkout, &["log", "-p", "--all"]);
    assert!(!all.contains(FAKE_KEY));
}

#[test]
fn codex_runs_a_whole_campaign_with_uncommitted_edits() {
    if !clis_available() {
        return;
    }
    let sim = ModelSim::responses(patching_model(false, false));
    let s = Story::new(&codex_agent(&sim), 2);
    let out = s.run(&[("SIM_MODEL_KEY", FAKE_KEY)]);
    assert_accepted_rounds_committed_once(&s, &out);
    let report = s.read("rounds/round-1/report.md");
    assert!(
        report.contains("| codex (model gpt-5-codex) | ok |"),
        "{report}"
    );
    assert!(
        report.contains("in / 180 out"),
        "Codex reports tokens: {report}"
    );
    let reqs = sim.requests();
    for (path, body) in &reqs {
        assert_eq!(path, "/v1/responses");
        assert_eq!(body["stream"], true);
        let tools: Vec<&str> = body["tools"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert!(tools.contains(&"exec_command"), "{tools:?}");
    }
}

/// A failure story: two failed agent rounds, then the hold; nothing measured after round 0.
fn assert_held_after_two_failures(s: &Story, out: &Output, check: &str, says: &str) {
    assert!(out.status.success(), "{}", show(out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("round 2 done; waiting for a human"),
        "{}",
        show(out)
    );
    for r in [1, 2] {
        let g = s.gate(r);
        assert_eq!(g["verdict_source"], "agent_failed", "{g:#}");
        let failed: Vec<String> = g["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["passed"] == false)
            .map(|c| {
                format!(
                    "{}: {}",
                    c["id"].as_str().unwrap(),
                    c["reason"].as_str().unwrap()
                )
            })
            .collect();
        assert!(
            failed
                .iter()
                .any(|f| f.starts_with(check) && f.contains(says)),
            "round {r}: {failed:?}"
        );
        let report = s.read(&format!("rounds/round-{r}/report.md"));
        assert!(report.contains("**The agent failed:"), "{report}");
    }
    let g2 = s.gate(2);
    assert_eq!(g2["decision"]["decision"], "wait_for_human", "{g2:#}");
    let reason = g2["reason"].as_str().unwrap();
    assert!(
        reason.contains("2 rounds in a row") && reason.contains("/sota retry"),
        "{reason}"
    );
    assert_eq!(s.round_rows(), 0, "no revalidation after a failed agent");
    let subjects = s.subjects();
    for r in [1, 2] {
        let n = subjects
            .iter()
            .filter(|l| l.starts_with(&format!("sota round {r}: the agent failed")))
            .count();
        assert_eq!(n, 1, "{subjects:?}");
    }
    let cp = s.read("humanize/model-loop-checkpoint.md");
    assert!(cp.contains("\"waiting_for_human\": true"), "{cp}");
}

#[test]
fn a_cli_that_is_not_installed_costs_no_profiling() {
    let s = Story::new(
        "  preset: claude\n  command: sota-bot-test-claude-not-installed\n  timeout_secs: 30",
        3,
    );
    let out = s.run(&[]);
    assert_held_after_two_failures(&s, &out, "agent.completed", "not installed");
    assert!(
        !s.run_dir().join("rounds/round-1/profiles").exists(),
        "an agent that cannot start costs no profiling"
    );
    let g = s.gate(2);
    assert!(
        g["reason"]
            .as_str()
            .unwrap()
            .contains("install the agent CLI"),
        "{g:#}"
    );
}

#[test]
fn api_errors_401_and_529_from_claude_code() {
    if !clis_available() {
        return;
    }
    for (status, says, hint) in [(401, "401", "API key"), (529, "529", "overloaded")] {
        let sim = ModelSim::anthropic(Arc::new(move |_: &Conversation| Reply::Error(status)));
        let s = Story::new(&claude_agent(&sim), 3);
        let out = s.run(&[("ANTHROPIC_API_KEY", FAKE_KEY)]);
        assert_held_after_two_failures(&s, &out, "agent.completed", says);
        let g = s.gate(2);
        assert!(g["reason"].as_str().unwrap().contains(hint), "{g:#}");
        let tail = s.read("rounds/round-1/agent-log-tail.txt");
        assert!(tail.contains(&format!("{status}")), "{tail}");
        assert!(!tail.contains(FAKE_KEY));
    }
}

#[test]
fn codex_rate_limited_and_an_agent_that_changes_nothing() {
    if !clis_available() {
        return;
    }
    let sim = ModelSim::responses(Arc::new(|_: &Conversation| Reply::Error(429)));
    let s = Story::new(&codex_agent(&sim), 3);
    let out = s.run(&[("SIM_MODEL_KEY", FAKE_KEY)]);
    assert_held_after_two_failures(&s, &out, "agent.completed", "429");

    let sim = ModelSim::responses(Arc::new(|_: &Conversation| {
        Reply::Text("I looked at the profile and found nothing worth changing.".into())
    }));
    let s = Story::new(&codex_agent(&sim), 3);
    let out = s.run(&[("SIM_MODEL_KEY", FAKE_KEY)]);
    assert_held_after_two_failures(
        &s,
        &out,
        "agent.completed",
        "without changing any SGLang source",
    );
}

#[test]
fn an_endpoint_that_never_answers_times_the_agent_out() {
    if !clis_available() {
        return;
    }
    let sim = ModelSim::anthropic(Arc::new(|_: &Conversation| Reply::Hang));
    let agent = claude_agent(&sim).replace("timeout_secs: 120", "timeout_secs: 4");
    let s = Story::new(&agent, 3);
    let out = s.run(&[("ANTHROPIC_API_KEY", FAKE_KEY)]);
    assert_held_after_two_failures(&s, &out, "agent.completed", "did not finish within 4s");
}

#[test]
fn an_agent_that_edits_github_workflows_is_refused() {
    if !clis_available() {
        return;
    }
    let sim = ModelSim::anthropic(Arc::new(|c: &Conversation| {
        match c.tool_results {
        0 => Reply::Shell(
            "mkdir -p .github/workflows && printf 'on: push\\n' > .github/workflows/pwn.yml && sed -i 's/overlap_fraction: 0.0/overlap_fraction: 0.3/' sim/engine.yaml"
                .into(),
        ),
        _ => Reply::Text("done".into()),
    }
    }));
    let s = Story::new(&claude_agent(&sim), 3);
    let out = s.run(&[("ANTHROPIC_API_KEY", FAKE_KEY)]);
    assert_held_after_two_failures(&s, &out, "agent.allowed_paths", ".github/workflows/pwn.yml");
    assert!(!s.checkout.join(".github/workflows/pwn.yml").exists());
    let engine = std::fs::read_to_string(s.checkout.join("sim/engine.yaml")).unwrap();
    assert!(
        engine.contains("overlap_fraction: 0.0"),
        "the unmeasured patch is discarded"
    );
}

#[test]
fn a_credential_written_by_the_agent_never_reaches_a_commit() {
    if !clis_available() {
        return;
    }
    let token = format!("hf_{}", "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z");
    let cmd =
        format!("printf 'HF_TOKEN = \"{token}\"\\n' >> python/sglang/srt/managers/scheduler.py");
    let sim = ModelSim::responses(Arc::new(move |c: &Conversation| match c.tool_results {
        0 => Reply::Shell(cmd.clone()),
        _ => Reply::Text("done".into()),
    }));
    let s = Story::new(&codex_agent(&sim), 3);
    let out = s.run(&[("SIM_MODEL_KEY", FAKE_KEY)]);
    assert_held_after_two_failures(&s, &out, "agent.no_credentials", "Hugging Face token");
    let all = git(&s.checkout, &["log", "-p", "--all"]);
    assert!(!all.contains(&token), "the credential is in no commit");
    let now = std::fs::read_to_string(s.checkout.join("python/sglang/srt/managers/scheduler.py"))
        .unwrap();
    assert!(!now.contains(&token), "and not left in the checkout");
}

/// The round a reviewer is shown: a measured patch with its diff.
fn reviewed_round() -> sota_bot::gate::RoundEvidence {
    sota_bot::gate::RoundEvidence {
        round: 1,
        run_dir: "runs/x".into(),
        campaign_branch: "sota/b".into(),
        current_branch: Some("sota/b".into()),
        changed_paths: vec!["sim/engine.yaml".into()],
        geomean_improvement_pct: Some(4.2),
        summary: Some("TITLE: overlap\nPATCH: scheduler overlap\n".into()),
        source_diff: Some(
            "--- a/sim/engine.yaml\n+++ b/sim/engine.yaml\n-  overlap_fraction: 0.0\n+  overlap_fraction: 0.3\n"
                .into(),
        ),
        ..Default::default()
    }
}

fn cli_reviewer(
    preset: sota_bot::runner::agent::AgentPreset,
    base_url: String,
    home: &Path,
) -> sota_bot::gate::cli_reviewer::CliReviewer {
    std::fs::create_dir_all(home.join("codex")).unwrap();
    sota_bot::gate::cli_reviewer::CliReviewer {
        spec: sota_bot::runner::agent::AgentSpec {
            preset,
            command: Some(bin_dir().join(preset.as_str()).display().to_string()),
            model: Some("reviewer-model".into()),
            base_url: Some(base_url),
            api_key_env: Some("SIM_MODEL_KEY".into()),
            ..Default::default()
        },
        checkout: home.to_path_buf(),
        timeout: std::time::Duration::from_secs(60),
        env: vec![
            ("HOME".into(), home.display().to_string()),
            (
                "CODEX_HOME".into(),
                home.join("codex").display().to_string(),
            ),
            ("SIM_MODEL_KEY".into(), FAKE_KEY.into()),
            ("ANTHROPIC_API_KEY".into(), FAKE_KEY.into()),
            ("CLAUDE_CODE_MAX_RETRIES".into(), "1".into()),
        ],
    }
}

#[test]
fn codex_and_claude_code_review_rounds_in_the_gate_format() {
    use sota_bot::gate::{gate_input, GateConfig, VerdictSource};
    use sota_bot::runner::agent::AgentPreset;
    if !clis_available() {
        return;
    }
    let verdict: Script = Arc::new(|c: &Conversation| {
        if c.prompt.contains("## SGLang source diff") && c.prompt.contains("overlap_fraction: 0.3")
        {
            Reply::Text("The overlap is measured and minimal.\n\nMainline Progress Verdict: ADVANCED\n\ncontinue".into())
        } else {
            Reply::Text("I was not shown the diff.".into())
        }
    });
    let garbage: Script = Arc::new(|_: &Conversation| Reply::Text("Looks fine to me!".into()));
    let denied: Script = Arc::new(|_: &Conversation| Reply::Error(401));
    for preset in [AgentPreset::Codex, AgentPreset::Claude] {
        let start = |script: Script| match preset {
            AgentPreset::Codex => {
                let sim = ModelSim::responses(script);
                let base = format!("{}/v1", sim.base);
                (sim, base)
            }
            _ => {
                let sim = ModelSim::anthropic(script);
                let base = sim.base.clone();
                (sim, base)
            }
        };
        let home = tempfile::tempdir().unwrap();
        git(home.path(), &["init", "-q"]);
        let ev = reviewed_round();
        let cfg = GateConfig::default();

        let (_sim, base) = start(verdict.clone());
        let r = cli_reviewer(preset, base, home.path());
        let o = gate_input(&ev, &cfg, Some(&r)).decide();
        assert_eq!(
            o.verdict_source,
            VerdictSource::Reviewer,
            "{preset:?}: {o:#?}"
        );
        // (The bare evidence fails contract checks, so the gate caps the verdict; the
        // reviewer's answer is kept verbatim.)
        assert!(o
            .reviewer_text
            .as_deref()
            .is_some_and(|t| t.contains("Mainline Progress Verdict: ADVANCED")));
        assert!(o
            .checks
            .iter()
            .any(|c| c.id == "reviewer.verdict_line" && c.passed));

        // An answer out of format is a failed check, not a silent pass.
        let (_sim, base) = start(garbage.clone());
        let r = cli_reviewer(preset, base, home.path());
        let o = gate_input(&ev, &cfg, Some(&r)).decide();
        let c = o
            .checks
            .iter()
            .find(|c| c.id == "reviewer.verdict_line")
            .unwrap();
        assert!(!c.passed && !o.accepted, "{preset:?}: {o:#?}");

        // A reviewer that fails (401) is a gate error naming why.
        let (_sim, base) = start(denied.clone());
        let r = cli_reviewer(preset, base, home.path());
        let o = gate_input(&ev, &cfg, Some(&r)).decide();
        let c = o
            .checks
            .iter()
            .find(|c| c.id == "reviewer.answered")
            .unwrap();
        assert!(!c.passed && c.reason.contains("401"), "{preset:?}: {c:?}");
        assert!(!c.reason.contains(FAKE_KEY));
    }
}
