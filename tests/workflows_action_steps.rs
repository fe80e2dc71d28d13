//! Runs the composite action's step scripts exactly as a GitHub runner would: bash,
//! the GITHUB_* / RUNNER_* environment, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files, and a
//! workspace cloned from a real bare repository playing the fork. The phase is the real
//! `sota-bot runner baseline|round` on the simulator lane (simulated serving engines, the
//! scripted agent simulator); the only stand-in is `nvidia-smi`, replaced by the canned-output
//! double of `tests/fixtures/nvidia-smi` because no GPU exists here.

mod support_exec;
mod support_toy;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sota_bot::engine::setup::save_input;
use sota_bot::engine::wiring::new_campaign_input;
use sota_bot::engine::RunPaths;
use tempfile::TempDir;

const BRANCH: &str = "sota/20260101-llama_3_1_8b_instruct";
const RUNNER_CONFIG: &str = ".github/sota-bot-runner.yml";

const REQUEST: &str = "\
model: meta-llama/Llama-3.1-8B-Instruct
precision: bf16
gpu: {model: H100, count: 1}
frameworks:
  only: [vllm]
workload:
  dataset: random
  num_prompts: 8
  scenarios:
    - {name: chat, input_len: 1000, output_len: 1000}
    - {name: summarization, input_len: 8000, output_len: 1000}
sla: {max_p50_ttft_ms: 5000, max_p50_tpot_ms: 100, min_success_rate: 0.99}
max_rounds: 4
autonomy: autonomous
primary_metric: output_token_throughput
";

const PLAN: &str = "\
model: meta-llama/Llama-3.1-8B-Instruct
tp_size: 1
port: 31000
bench_client: builtin
num_prompts: 8
scenarios:
  - {name: chat, input_len: 1000, output_len: 1000}
  - {name: summarization, input_len: 8000, output_len: 1000}
frameworks:
  sglang:
    base_server_flags:
      mem_fraction_static: 0.85
  vllm:
    base_server_flags:
      gpu_memory_utilization: 0.9
";

/// The runner config committed in the fork (the workflows' `runner_config` input). The
/// SGLang help snapshot (taken before the baseline search) runs `$MAINTAINER_HOOK` first, so
/// a test can have a maintainer push to the branch while the phase runs.
const RUNNER_CONFIG_YAML: &str = "\
agent:
  command: >-
    sota-bot sim agent --checkout {checkout} --round {round} --prompt {prompt} --summary-out {summary}
    && git add -A -- sim python && git commit -q -m \"sim agent: round {round} patch\"
  timeout_secs: 120
sim:
  enabled: true
  # Slow enough that a busy test machine's scheduling noise stays small next to the
  # simulated gap between SGLang and vLLM.
  time_scale: 0.05
lane:
  ready_timeout_secs: 30
  bench_timeout_secs: 120
  help:
    sglang:
      version.txt: '${MAINTAINER_HOOK:-true} >&2; echo sglang 0.0.0-sim'
";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.invalid",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn write_script(path: &Path, text: &str) {
    support_exec::write_executable(path, text);
}

/// A runner's view of one campaign: the fork, and one job workspace at a time.
struct Job {
    _tmp: TempDir,
    root: PathBuf,
    remote: PathBuf,
    workspace: PathBuf,
    runner_temp: PathBuf,
    tool_cache: PathBuf,
    bin_dir: PathBuf,
    output: PathBuf,
    summary: PathBuf,
    calls_log: PathBuf,
    campaign_id: String,
    run_dir: String,
}

impl Job {
    /// A fork whose campaign branch holds what the App commits at campaign start: the
    /// SGLang checkout, the runner config, `.gitignore` and the run directory skeleton
    /// (manifest and campaign input).
    fn new() -> Job {
        Self::with_runner_config(RUNNER_CONFIG_YAML)
    }

    /// The same fork with another runner config (e.g. a slower simulator).
    fn with_runner_config(runner_config: &str) -> Job {
        let tmp = TempDir::new().unwrap();
        let root = tmp.path().to_path_buf();
        let remote = root.join("fork.git");
        git(&root, &["init", "-q", "--bare", remote.to_str().unwrap()]);
        let seed = root.join("seed");
        support_toy::slow_sglang_checkout(&seed);
        git(&seed, &["checkout", "-q", "-b", BRANCH]);
        let date = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let config: sota_bot::engine::config::LocalConfig =
            serde_yaml_ng::from_str(runner_config).unwrap();
        let input = new_campaign_input(
            REQUEST,
            PLAN,
            &sota_bot::campaign::RepoConfig::default(),
            Some(&config.sim),
            date,
        )
        .unwrap();
        let paths = RunPaths::for_campaign(&seed, date, &input.campaign.model_slug);
        std::fs::create_dir_all(paths.root()).unwrap();
        std::fs::write(paths.manifest(), &input.campaign.manifest_md).unwrap();
        save_input(&paths, &input).unwrap();
        // The upstream PR search the App commits with the campaign start.
        let upstream = sota_bot::history::upstream::UpstreamPrs {
            repo: "sgl-project/sglang".into(),
            prs: vec![sota_bot::history::UpstreamPr {
                number: 31337,
                title: "[Llama] fuse qkv and rope".into(),
                url: "https://github.com/sgl-project/sglang/pull/31337".into(),
                state: "open".into(),
                merged_at: None,
                in_checkout: None,
                in_flight: false,
            }],
            ..Default::default()
        };
        std::fs::create_dir_all(paths.file("history")).unwrap();
        std::fs::write(
            paths.file(sota_bot::history::upstream::UPSTREAM_FILE),
            serde_json::to_string_pretty(&upstream).unwrap(),
        )
        .unwrap();
        std::fs::create_dir_all(seed.join(".github")).unwrap();
        std::fs::write(seed.join(RUNNER_CONFIG), runner_config).unwrap();
        std::fs::write(
            seed.join(".gitignore"),
            sota_bot::engine::baseline::GITIGNORE_LINES.join("\n") + "\n",
        )
        .unwrap();
        git(&seed, &["add", "-A"]);
        git(&seed, &["commit", "-q", "-m", "sota: campaign start"]);
        git(
            &seed,
            &["remote", "add", "origin", remote.to_str().unwrap()],
        );
        git(&seed, &["push", "-q", "origin", "main", BRANCH]);

        let runner_temp = root.join("runner-temp");
        let tool_cache = root.join("tool-cache");
        let bin_dir = root.join("bin");
        for d in [&runner_temp, &tool_cache, &bin_dir] {
            std::fs::create_dir_all(d).unwrap();
        }
        let output = runner_temp.join("_runner_file_commands/set_output_1");
        let summary = runner_temp.join("_runner_file_commands/step_summary_1");
        std::fs::create_dir_all(output.parent().unwrap()).unwrap();
        let calls_log = root.join("calls.log");
        // The real binary under its name on PATH, behind a wrapper that records each call.
        write_script(
            &bin_dir.join("sota-bot"),
            &format!(
                "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
                calls_log.display(),
                env!("CARGO_BIN_EXE_sota-bot")
            ),
        );
        support_toy::fake_nvidia_smi(&bin_dir);
        let job = Job {
            remote,
            workspace: root.join("work/sglang/sglang"),
            runner_temp,
            tool_cache,
            bin_dir,
            output,
            summary,
            calls_log,
            campaign_id: input.campaign.campaign_id.clone(),
            run_dir: paths.rel.clone(),
            root,
            _tmp: tmp,
        };
        job.new_run();
        job
    }

    /// A new workflow run: fresh step files and a fresh actions/checkout of the branch.
    fn new_run(&self) {
        let _ = std::fs::remove_dir_all(&self.workspace);
        std::fs::create_dir_all(self.workspace.parent().unwrap()).unwrap();
        git(
            &self.root,
            &[
                "clone",
                "-q",
                "-b",
                BRANCH,
                self.remote.to_str().unwrap(),
                self.workspace.to_str().unwrap(),
            ],
        );
        std::fs::write(&self.output, "").unwrap();
        std::fs::write(&self.summary, "").unwrap();
        let _ = std::fs::remove_file(&self.calls_log);
    }

    /// Runs `action/scripts/<script>` with a clean environment plus `extra`.
    fn step(&self, script: &str, extra: &[(&str, &str)]) -> Output {
        self.step_command(script, extra).output().unwrap()
    }

    fn step_command(&self, script: &str, extra: &[(&str, &str)]) -> Command {
        let path = format!("{}:/usr/local/bin:/usr/bin:/bin", self.bin_dir.display());
        let mut cmd = Command::new("bash");
        cmd.arg(repo_root().join("action/scripts").join(script))
            .current_dir(&self.workspace)
            .env_clear()
            .env("PATH", path)
            .env("HOME", &self.root)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_WORKSPACE", &self.workspace)
            .env("GITHUB_ACTION_PATH", repo_root().join("action"))
            .env("GITHUB_OUTPUT", &self.output)
            .env("GITHUB_STEP_SUMMARY", &self.summary)
            .env("GITHUB_RUN_ID", "777")
            .env("GITHUB_RUN_ATTEMPT", "1")
            .env("RUNNER_TEMP", &self.runner_temp)
            .env("RUNNER_TOOL_CACHE", &self.tool_cache)
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", "X64");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd
    }

    fn outputs(&self) -> BTreeMap<String, String> {
        parse_github_output(&std::fs::read_to_string(&self.output).unwrap())
    }

    fn summary(&self) -> String {
        std::fs::read_to_string(&self.summary).unwrap()
    }

    /// Every `sota-bot` invocation of the last run, the agent's included.
    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(&self.calls_log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn runner_calls(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c.starts_with("runner "))
            .collect()
    }

    fn remote_head(&self) -> String {
        git(
            &self.remote,
            &["rev-parse", &format!("refs/heads/{BRANCH}")],
        )
    }

    fn remote_subjects(&self) -> Vec<String> {
        git(&self.remote, &["log", "--format=%s", BRANCH])
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn phase_env(&self, phase: &str, round: &str) -> Vec<(&'static str, String)> {
        vec![
            ("SOTA_CAMPAIGN_ID", self.campaign_id.clone()),
            ("SOTA_PHASE", phase.to_string()),
            ("SOTA_ROUND", round.to_string()),
            ("SOTA_RUN_DIR", self.run_dir.clone()),
            ("SOTA_BRANCH", BRANCH.to_string()),
            ("SOTA_CONFIG", RUNNER_CONFIG.to_string()),
            ("SOTA_AGENT_SECRET_NAMES", "ANTHROPIC_API_KEY".to_string()),
            ("SOTA_PHASE_TIMEOUT_MINUTES", "30".to_string()),
            ("SOTA_EXPECT_GPU_MODEL", "h100".to_string()),
            ("SOTA_EXPECT_GPU_COUNT", "1".to_string()),
            ("SOTA_VISIBLE_DEVICES", "0".to_string()),
        ]
    }

    fn run_phase(&self, phase: &str, round: &str, extra: &[(&str, &str)]) -> Output {
        let mut env = self.phase_env(phase, round);
        env.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
        let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.extend_from_slice(extra);
        self.step("run-phase.sh", &all)
    }

    /// A maintainer's commit pushed to the campaign branch from their own clone.
    fn maintainer_push_script(&self, file: &str) -> PathBuf {
        let script = self
            .root
            .join(format!("maintainer-push-{}.sh", file.replace('/', "-")));
        write_script(
            &script,
            &format!(
                "#!/bin/sh\nset -e\nd=$(mktemp -d)\ngit clone -q -b '{BRANCH}' '{remote}' \"$d/c\" >&2\ncd \"$d/c\"\necho 'maintainer note' >> '{file}'\ngit add -A >&2\ngit -c user.name=maintainer -c user.email=m@example.invalid commit -q -m 'maintainer: {file}' >&2\ngit push -q origin HEAD >&2\n",
                remote = self.remote.display()
            ),
        );
        script
    }
}

fn show(o: &Output) -> String {
    format!("stdout:\n{}\nstderr:\n{}", stdout(o), stderr(o))
}

/// Parses the GITHUB_OUTPUT file format (`k=v` and `k<<DELIM ... DELIM`); later
/// values win, as on a runner.
fn parse_github_output(text: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((key, delim)) = line.split_once("<<") {
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delim {
                    break;
                }
                value.push(l);
            }
            map.insert(key.to_string(), value.join("\n"));
        } else if let Some((key, value)) = line.split_once('=') {
            map.insert(key.to_string(), value.to_string());
        }
    }
    map
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn mask_secrets_masks_named_values_and_never_prints_them_otherwise() {
    let job = Job::new();
    let out = job.step(
        "mask-secrets.sh",
        &[
            (
                "SOTA_SECRET_NAMES",
                "ANTHROPIC_API_KEY, OPENAI_API_KEY\nNOT_SET_KEY",
            ),
            ("ANTHROPIC_API_KEY", "sk-ant-api03-abcdef"),
            ("OPENAI_API_KEY", "first-line-secret\nsecond-line-secret"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("::add-mask::sk-ant-api03-abcdef\n"), "{text}");
    assert!(text.contains("::add-mask::first-line-secret\n"));
    assert!(text.contains("::add-mask::second-line-secret\n"));
    assert!(text.contains("::warning title=sota-bot::secret NOT_SET_KEY is not set"));
    assert!(text.contains("masked 2 secret(s)"));
    // Values appear only inside add-mask commands.
    let unmasked: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .collect();
    assert!(!unmasked
        .iter()
        .any(|l| l.contains("sk-ant") || l.contains("line-secret")));

    // The runner's Hugging Face token is no repository secret: masked too, when present,
    // and never asked for when absent.
    let hf = job.step("mask-secrets.sh", &[("HF_TOKEN", "hubvalue3Rk8Wp1Nv6Yb0")]);
    let text = stdout(&hf);
    assert!(
        text.contains(
            "::add-mask::hubvalue3Rk8Wp1Nv6Yb0
"
        ),
        "{text}"
    );
    assert!(text.contains("masked 1 secret(s)"), "{text}");
    assert!(!text.contains("::warning"), "{text}");

    let bad = job.step("mask-secrets.sh", &[("SOTA_SECRET_NAMES", "GOOD,BAD-NAME")]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("'BAD-NAME' is not an environment variable name"));
}

#[test]
fn locate_prefers_a_pinned_binary_from_the_tool_cache() {
    let job = Job::new();
    let cached = job.tool_cache.join("sota-bot/0.1.0/x64/sota-bot");
    std::fs::create_dir_all(cached.parent().unwrap()).unwrap();
    support_exec::install_executable(Path::new(env!("CARGO_BIN_EXE_sota-bot")), &cached);

    let sha = {
        let o = Command::new("sha256sum").arg(&cached).output().unwrap();
        String::from_utf8(o.stdout).unwrap()[..64].to_string()
    };

    // Unpinned, the cached binary is not trusted (a job can write the tool cache): the
    // source build is prepared instead.
    let unpinned = job.step("locate-binary.sh", &[]);
    assert!(unpinned.status.success(), "{}", stderr(&unpinned));
    assert!(stdout(&unpinned).contains("is not used: set sota-bot-sha256"));
    assert_eq!(
        job.outputs().get("found").map(String::as_str),
        Some("false")
    );
    std::fs::write(&job.output, "").unwrap();

    let out = job.step(
        "locate-binary.sh",
        &[("SOTA_BOT_SHA256", &sha.to_uppercase())],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let o = job.outputs();
    assert_eq!(
        o.get("version").map(String::as_str),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(o.get("found").map(String::as_str), Some("true"));
    assert_eq!(o.get("bin").map(PathBuf::from), Some(cached.clone()));
    std::fs::write(&job.output, "").unwrap();
    let skipped = job.step("locate-binary.sh", &[("SOTA_BOT_SHA256", "skip")]);
    assert!(stdout(&skipped).contains("without checking its SHA-256"));
    assert_eq!(job.outputs().get("found").map(String::as_str), Some("true"));
    let garbage = job.step("locate-binary.sh", &[("SOTA_BOT_SHA256", "abc")]);
    assert!(!garbage.status.success());

    // A checksum that does not match is an error, not a silent fallback.
    let bad = job.step("locate-binary.sh", &[("SOTA_BOT_SHA256", &"0".repeat(64))]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("has sha256"));

    // A stale release in the cache (it reports another version) is ignored and the
    // source build is prepared.
    write_script(&cached, "#!/bin/sh\necho 'sota-bot 9.9.9'\n");
    std::fs::write(&job.output, "").unwrap();
    let other = job.step("locate-binary.sh", &[("SOTA_BOT_SHA256", "skip")]);
    assert!(other.status.success(), "{}", stderr(&other));
    assert!(stdout(&other).contains("not version 0.1.0"));
    let o = job.outputs();
    assert_eq!(o.get("found").map(String::as_str), Some("false"));
    assert_eq!(o.get("source-dir").map(PathBuf::from), Some(repo_root()));
    assert!(o["cache-key"].starts_with(&o["cache-restore-prefix"]));
    assert!(o["cache-key"].starts_with("sota-bot-cargo-Linux-x64-"));
    assert!(o["target-dir"].starts_with(job.runner_temp.to_str().unwrap()));
}

#[test]
fn build_runs_a_locked_release_build_of_the_action_source() {
    let job = Job::new();
    // A recording cargo: the real build is too slow for a unit of this suite.
    let cargo = job.bin_dir.join("cargo");
    write_script(
        &cargo,
        "#!/bin/sh\necho \"$@\" > \"$RUNNER_TEMP/cargo-args\"\nwhile [ $# -gt 0 ]; do [ \"$1\" = --target-dir ] && t=\"$2\"; shift; done\nmkdir -p \"$t/release\" && printf '#!/bin/sh\\n' > \"$t/release/sota-bot\" && chmod +x \"$t/release/sota-bot\"\n",
    );
    let target = job.runner_temp.join("sota-bot/target");
    let out = job.step(
        "build-binary.sh",
        &[
            ("SOTA_BOT_SOURCE_DIR", repo_root().to_str().unwrap()),
            ("SOTA_BOT_TARGET_DIR", target.to_str().unwrap()),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let args = std::fs::read_to_string(job.runner_temp.join("cargo-args")).unwrap();
    assert_eq!(
        args.trim(),
        format!(
            "build --release --locked --manifest-path {}/Cargo.toml --target-dir {} --bin sota-bot",
            repo_root().display(),
            target.display()
        )
    );
    assert_eq!(
        job.outputs().get("bin").map(PathBuf::from),
        Some(target.join("release/sota-bot"))
    );
    assert!(stdout(&out).contains("::group::cargo build --release --locked"));
}

#[test]
fn baseline_then_round_push_their_commits_with_outputs_summary_and_artifacts() {
    let job = Job::new();
    let start = job.remote_head();

    // Baseline job.
    let out = job.run_phase("baseline", "", &[]);
    assert!(out.status.success(), "{}", show(&out));
    let log = stdout(&out);
    assert!(log.contains("::group::GPU preflight\n"));
    assert!(log.contains("::group::sota-bot runner baseline\n"));
    assert!(log.contains("::endgroup::"));
    let calls = job.runner_calls();
    assert_eq!(
        calls[0],
        "runner preflight --expect-gpu-model h100 --expect-gpu-count 1"
    );
    for expected in [
        "runner baseline --campaign-id ",
        &format!("--run-dir {}", job.run_dir),
        &format!("--branch {BRANCH}"),
        &format!("--outputs-file {}", job.output.display()),
        "--phase-timeout-minutes 30",
        &format!("--config {RUNNER_CONFIG}"),
    ] {
        assert!(
            calls[1].contains(expected),
            "missing {expected:?} in {}",
            calls[1]
        );
    }
    assert!(!calls[1].contains("--round"));

    // The baseline and plan commits are on the fork, on top of the campaign start.
    let o = job.outputs();
    let head = job.remote_head();
    assert_eq!(o.get("commit-sha"), Some(&head));
    let subjects = job.remote_subjects();
    assert!(subjects[0].starts_with("sota plan: "), "{subjects:?}");
    assert!(subjects[1].starts_with("sota baseline: "), "{subjects:?}");
    assert_eq!(
        git(&job.remote, &["merge-base", "--is-ancestor", &start, &head]),
        ""
    );
    let rows = git(
        &job.remote,
        &[
            "show",
            &format!("{head}:{}/benchmark/candidates.jsonl", job.run_dir),
        ],
    );
    assert_eq!(
        rows.lines().count(),
        4,
        "2 candidates x 2 scenarios: {rows}"
    );
    // Phase 0.5 merged the upstream PRs the App committed: in flight, in the notes.
    let notes = git(
        &job.remote,
        &[
            "show",
            &format!("{head}:{}/history/model-pr-history-notes.md", job.run_dir),
        ],
    );
    assert!(
        notes.contains("- #31337 (open, not in this checkout): [Llama] fuse qkv and rope"),
        "{notes}"
    );
    // The summary tables reach the job summary.
    let summary = job.summary();
    assert!(summary.contains("vLLM"), "{summary}");
    assert!(summary.contains("chat") && summary.contains("summarization"));
    // Server and benchmark logs are raw artifacts, never committed.
    let list = o.get("artifacts-list").cloned().unwrap();
    let listed = std::fs::read_to_string(&list).unwrap();
    assert!(
        listed.lines().any(|l| l.ends_with(".server.log")),
        "{listed}"
    );
    let tracked = git(&job.remote, &["ls-tree", "-r", "--name-only", &head]);
    assert!(!tracked.contains(".server.log") && !tracked.contains(".sota/"));
    let collect = job.step(
        "collect-artifacts.sh",
        &[
            ("SOTA_CAMPAIGN_ID", &job.campaign_id),
            ("SOTA_PHASE", "baseline"),
            ("SOTA_RUN_DIR", &job.run_dir),
            ("SOTA_ARTIFACTS_LIST", &list),
        ],
    );
    assert!(collect.status.success(), "{}", stderr(&collect));
    let o = job.outputs();
    assert_eq!(o.get("has-files").map(String::as_str), Some("true"));
    assert_eq!(
        o.get("count").map(|c| c.parse::<usize>().unwrap()),
        Some(listed.lines().count())
    );
    assert!(o["paths"].lines().all(|p| Path::new(p).is_file()));

    // A second baseline is refused.
    job.new_run();
    let again = job.run_phase("baseline", "", &[]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        show(&again)
    );
    assert_eq!(job.remote_head(), head);

    // Round 1, in a new workflow run on a fresh checkout, with a maintainer's note
    // (`/sota continue <note>`; quotes and `$` stay literal through the shell step, and a
    // note starting with `-` is a note, not a flag).
    job.new_run();
    let note = "-5% is fine; look at the \"MoE gate\" first; $HOME stays literal.";
    let out = job.run_phase("round", "1", &[("SOTA_MAINTAINER_NOTE", note)]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(stdout(&out).contains("::group::sota-bot runner round (round 1)\n"));
    assert!(job.calls().iter().any(|c| c.starts_with("sim agent ")));
    let o = job.outputs();
    let round_head = job.remote_head();
    assert_eq!(o.get("commit-sha"), Some(&round_head));
    let subjects = job.remote_subjects();
    assert!(subjects[0].starts_with("sota round 1: "), "{subjects:?}");
    assert!(
        !subjects.iter().any(|s| s == "sim agent: round 1 patch"),
        "the agent's own commit is folded into the one round commit: {subjects:?}"
    );
    let body = git(&job.remote, &["log", "-1", "--format=%B", &round_head]);
    assert!(body.contains("sim agent: round 1 patch"), "{body}");
    let decision = o.get("decision-file").cloned().unwrap();
    let rel = decision;
    assert!(
        rel.starts_with(&job.run_dir) && rel.ends_with("/gate.json"),
        "{rel}"
    );
    let gate = git(&job.remote, &["show", &format!("{round_head}:{rel}")]);
    assert!(gate.contains("\"verdict\""), "{gate}");
    assert!(job.summary().contains("## Round 1: "), "{}", job.summary());
    let round_file = |name: &str| {
        let path = format!("{round_head}:{}/rounds/round-1/{name}", job.run_dir);
        git(&job.remote, &["show", &path])
    };
    assert_eq!(round_file("maintainer-note.md"), note);
    let prompt = round_file("prompt.md");
    assert!(
        prompt.contains(&format!("(verbatim)\n\nA maintainer asked for this round with the note below. Follow it unless it conflicts with the\ncontract above; say in your summary how you used it.\n\n{note}\n")),
        "{prompt}"
    );
    // The wrong round number is refused before anything runs.
    job.new_run();
    let wrong = job.run_phase("round", "5", &[]);
    assert!(!wrong.status.success());
    assert!(
        stderr(&wrong).contains("next round is 2"),
        "{}",
        show(&wrong)
    );
    assert_eq!(job.remote_head(), round_head);
}

#[test]
fn a_push_during_the_baseline_is_kept_and_the_run_commits_replay_onto_it() {
    let job = Job::new();
    let hook = job.maintainer_push_script("NOTES.md");
    let hook = hook.to_str().unwrap();
    let out = job.run_phase("baseline", "", &[("MAINTAINER_HOOK", hook)]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        stderr(&out).contains("replayed onto"),
        "the remote moved during the phase: {}",
        show(&out)
    );
    let head = job.remote_head();
    assert_eq!(job.outputs().get("commit-sha"), Some(&head));
    let subjects = job.remote_subjects();
    assert!(subjects[0].starts_with("sota plan: "), "{subjects:?}");
    assert!(
        subjects.iter().any(|s| s == "maintainer: NOTES.md"),
        "the maintainer's commit survived: {subjects:?}"
    );
    assert!(git(&job.remote, &["show", &format!("{head}:NOTES.md")]).contains("maintainer note"));
}

#[test]
fn a_round_patch_never_overwrites_a_concurrent_push() {
    let job = Job::new();
    let out = job.run_phase("baseline", "", &[]);
    assert!(out.status.success(), "{}", show(&out));
    // During the round, a maintainer pushes; the round's agent patch changes SGLang
    // sources, so it cannot be replayed safely: the phase fails and the branch keeps the
    // maintainer's commit.
    let script = job.maintainer_push_script("README.md");
    let agent = format!(
        "{} && sota-bot sim agent --checkout {{checkout}} --round {{round}} --prompt {{prompt}} --summary-out {{summary}} && git add -A -- sim python && git commit -q -m \"sim agent: round {{round}} patch\"",
        script.display()
    );
    job.new_run();
    let out = job.run_phase("round", "1", &[("SOTA_AGENT_COMMAND", &agent)]);
    assert!(!out.status.success(), "{}", show(&out));
    let err = stderr(&out);
    assert!(err.contains("were not pushed"), "{err}");
    assert!(err.contains("outside the run directory"), "{err}");
    assert!(err.contains("::error title=sota-bot::sota-bot runner round failed"));
    assert_eq!(job.remote_subjects()[0], "maintainer: README.md");
    assert!(!job.outputs().contains_key("commit-sha"));
}

/// Processes that carry `marker` (`KEY=VALUE`) in their environment, with their command line.
fn processes_with(marker: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(env) = std::fs::read(e.path().join("environ")) else {
            continue;
        };
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        if env.split(|b| *b == 0).any(|kv| kv == marker.as_bytes()) && !stat.contains(") Z ") {
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            out.push(String::from_utf8_lossy(&cmd).replace('\0', " "));
        }
    }
    out
}

/// GitHub Actions cancels a job by sending SIGINT (then SIGTERM) to the step's process: the
/// phase stops every server and client it started, records where it was, and the step fails.
#[test]
fn a_cancelled_job_leaves_no_process_of_the_phase_running() {
    // A simulator 20 times slower than the other stories': the whole phase takes well under
    // a second otherwise, so on a busy machine it could end before the signal arrives.
    let job =
        Job::with_runner_config(&RUNNER_CONFIG_YAML.replace("time_scale: 0.05", "time_scale: 1.0"));
    let marker_value = job.root.display().to_string();
    let marker = format!("SOTA_TEST_RUN={marker_value}");
    let mut env = job.phase_env("baseline", "");
    env.push(("SOTA_TEST_RUN", marker_value.clone()));
    let all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut command = job.step_command("run-phase.sh", &all);
    // The runner starts a step with SIGINT at its default; a test run launched in the
    // background of a non-interactive shell inherits it ignored, and bash cannot trap a
    // signal ignored on entry.
    // SAFETY: between fork and exec the child only calls the async-signal-safe `signal`.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let step = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !processes_with(&marker)
        .iter()
        .any(|c| c.contains("sim serve"))
    {
        assert!(std::time::Instant::now() < deadline, "no server started");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // SAFETY: signals the step process this test started.
    unsafe {
        libc::kill(step.id() as libc::pid_t, libc::SIGINT);
    }
    let started = std::time::Instant::now();
    let out = step.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("interrupted by SIGINT"), "{err}");
    assert!(err.contains("failed (exit 130)"), "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "{err}"
    );
    let left = processes_with(&marker);
    assert!(left.is_empty(), "left running: {left:#?}");
}

#[test]
fn a_round_before_the_baseline_fails_the_step_but_still_writes_the_summary() {
    let job = Job::new();
    let before = job.remote_head();
    let out = job.run_phase("round", "1", &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("refusing to start a round"),
        "{}",
        show(&out)
    );
    assert!(stderr(&out).contains("::error title=sota-bot::sota-bot runner round failed (exit 2)"));
    assert!(
        job.summary().contains("### sota-bot round 1"),
        "{}",
        job.summary()
    );
    assert_eq!(job.remote_head(), before);
}

#[test]
fn a_failed_preflight_stops_before_the_phase() {
    let job = Job::new();
    let before = job.remote_head();
    let out = job.run_phase("baseline", "", &[("SOTA_EXPECT_GPU_MODEL", "h200")]);
    assert!(!out.status.success());
    assert_eq!(job.runner_calls().len(), 1, "only the preflight ran");
    let summary = job.summary();
    assert!(summary.contains("GPU preflight failed"), "{summary}");
    assert!(summary.contains("H100"), "{summary}");
    assert!(stderr(&out).contains("the phase did not start"));
    assert_eq!(job.remote_head(), before);
}

#[test]
fn success_without_a_commit_sha_breaks_the_contract() {
    let job = Job::new();
    // A binary that claims success and reports nothing.
    write_script(&job.bin_dir.join("sota-bot"), "#!/bin/sh\nexit 0\n");
    let out = job.run_phase("round", "2", &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("wrote no valid commit-sha output"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn invalid_inputs_are_rejected_before_anything_runs() {
    let job = Job::new();
    for (key, value, message) in [
        ("SOTA_PHASE", "deploy", "phase must be baseline or round"),
        (
            "SOTA_ROUND",
            "three",
            "round must be a non-negative integer",
        ),
        (
            "SOTA_RUN_DIR",
            "../outside",
            "run-dir must be a relative path",
        ),
        (
            "SOTA_PHASE_TIMEOUT_MINUTES",
            "0",
            "phase-timeout-minutes must be a positive integer",
        ),
        (
            "SOTA_CONFIG",
            "/etc/passwd",
            "config must be a relative path",
        ),
        (
            "SOTA_CONFIG",
            "missing.yml",
            "config 'missing.yml' does not exist",
        ),
    ] {
        let mut env = job.phase_env("round", "1");
        env.retain(|(k, _)| *k != key);
        let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.push((key, value));
        let out = job.step("run-phase.sh", &all);
        assert!(!out.status.success(), "{key}={value} accepted");
        assert!(stderr(&out).contains(message), "{key}: {}", stderr(&out));
    }
    assert!(job.calls().is_empty());
}

#[test]
fn collect_falls_back_to_the_run_dir_manifest_and_handles_nothing_to_upload() {
    let job = Job::new();
    let env = [
        ("SOTA_CAMPAIGN_ID", "c/42:x"),
        ("SOTA_PHASE", "baseline"),
        ("SOTA_RUN_DIR", job.run_dir.as_str()),
    ];
    let none = job.step("collect-artifacts.sh", &env);
    assert!(none.status.success(), "{}", stderr(&none));
    assert_eq!(
        job.outputs().get("has-files").map(String::as_str),
        Some("false")
    );

    let raw = job.workspace.join(&job.run_dir).join("server.log");
    std::fs::write(&raw, "log\n").unwrap();
    std::fs::write(
        job.workspace.join(&job.run_dir).join(".artifacts-manifest"),
        format!("# comment\r\n\r\n{}/server.log\r\n", job.run_dir),
    )
    .unwrap();
    let some = job.step("collect-artifacts.sh", &env);
    assert!(some.status.success(), "{}", stderr(&some));
    let o = job.outputs();
    assert_eq!(o.get("has-files").map(String::as_str), Some("true"));
    // Characters an artifact name may not hold are replaced.
    assert_eq!(
        o.get("artifact-name").map(String::as_str),
        Some("sota-c-42-x-baseline-777-1")
    );
    assert_eq!(
        o.get("paths").map(String::as_str),
        Some(raw.to_str().unwrap())
    );
}
