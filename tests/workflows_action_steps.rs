//! Runs the composite action's step scripts exactly as a GitHub runner would: bash,
//! the GITHUB_* / RUNNER_* environment, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files,
//! and a workspace cloned from a real bare repository playing the fork.
//!
//! The phase itself is played by `tests/fixtures/sota-bot-shim.sh`, a SHIM of the
//! `sota-bot` binary (the engine phases are built elsewhere). INTEGRATOR: replace the
//! shim with the real binary and the simulator lane once `sota-bot runner
//! baseline|round` exists; the assertions on outputs, summary and artifacts stay.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

const BRANCH: &str = "sota/c-42";
const RUN_DIR: &str = "runs/20260101_llama_sota_humanize";

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

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A runner's view of one job.
struct Job {
    _tmp: TempDir,
    remote: PathBuf,
    workspace: PathBuf,
    runner_temp: PathBuf,
    tool_cache: PathBuf,
    bin_dir: PathBuf,
    output: PathBuf,
    summary: PathBuf,
    shim_log: PathBuf,
}

impl Job {
    fn new() -> Job {
        let tmp = TempDir::new().unwrap();
        let root = tmp.path();
        let remote = root.join("fork.git");
        git(root, &["init", "-q", "--bare", remote.to_str().unwrap()]);
        let seed = root.join("seed");
        git(root, &["clone", "-q", remote.to_str().unwrap(), "seed"]);
        git(&seed, &["checkout", "-q", "-b", BRANCH]);
        std::fs::create_dir_all(seed.join(RUN_DIR)).unwrap();
        std::fs::write(seed.join(RUN_DIR).join("manifest.md"), "# manifest\n").unwrap();
        git(&seed, &["add", "-A"]);
        git(&seed, &["commit", "-q", "-m", "campaign start"]);
        git(&seed, &["push", "-q", "origin", BRANCH]);
        // actions/checkout of the campaign branch.
        let workspace = root.join("work/sglang/sglang");
        std::fs::create_dir_all(workspace.parent().unwrap()).unwrap();
        git(
            root,
            &[
                "clone",
                "-q",
                "-b",
                BRANCH,
                remote.to_str().unwrap(),
                workspace.to_str().unwrap(),
            ],
        );

        let runner_temp = root.join("runner-temp");
        let tool_cache = root.join("tool-cache");
        let bin_dir = root.join("bin");
        for d in [&runner_temp, &tool_cache, &bin_dir] {
            std::fs::create_dir_all(d).unwrap();
        }
        let output = runner_temp.join("_runner_file_commands/set_output_1");
        let summary = runner_temp.join("_runner_file_commands/step_summary_1");
        std::fs::create_dir_all(output.parent().unwrap()).unwrap();
        std::fs::write(&output, "").unwrap();
        std::fs::write(&summary, "").unwrap();
        // The shim goes on PATH under the binary's name.
        let shim = bin_dir.join("sota-bot");
        std::fs::copy(repo_root().join("tests/fixtures/sota-bot-shim.sh"), &shim).unwrap();
        make_executable(&shim);
        Job {
            remote,
            workspace,
            runner_temp,
            tool_cache,
            bin_dir,
            output,
            summary,
            shim_log: root.join("shim.log"),
            _tmp: tmp,
        }
    }

    /// Runs `action/scripts/<script>` with a clean environment plus `extra`.
    fn step(&self, script: &str, extra: &[(&str, &str)]) -> Output {
        let path = format!("{}:/usr/local/bin:/usr/bin:/bin", self.bin_dir.display());
        let mut cmd = Command::new("bash");
        cmd.arg(repo_root().join("action/scripts").join(script))
            .current_dir(&self.workspace)
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.runner_temp.parent().unwrap())
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
            .env("RUNNER_ARCH", "X64")
            .env("SHIM_LOG", &self.shim_log);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    fn outputs(&self) -> BTreeMap<String, String> {
        parse_github_output(&std::fs::read_to_string(&self.output).unwrap())
    }

    fn summary(&self) -> String {
        std::fs::read_to_string(&self.summary).unwrap()
    }

    fn shim_calls(&self) -> Vec<String> {
        std::fs::read_to_string(&self.shim_log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn remote_head(&self) -> String {
        git(
            &self.remote,
            &["rev-parse", &format!("refs/heads/{BRANCH}")],
        )
    }

    fn phase_env(&self, phase: &str, round: &str) -> Vec<(&'static str, String)> {
        vec![
            ("SOTA_CAMPAIGN_ID", "c-42".to_string()),
            ("SOTA_PHASE", phase.to_string()),
            ("SOTA_ROUND", round.to_string()),
            ("SOTA_RUN_DIR", RUN_DIR.to_string()),
            ("SOTA_BRANCH", BRANCH.to_string()),
            ("SOTA_AGENT_COMMAND", "claude -p".to_string()),
            ("SOTA_AGENT_SECRET_NAMES", "ANTHROPIC_API_KEY".to_string()),
            ("SOTA_PHASE_TIMEOUT_MINUTES", "30".to_string()),
            ("SOTA_EXPECT_GPU_MODEL", "h100".to_string()),
            ("SOTA_EXPECT_GPU_COUNT", "1".to_string()),
        ]
    }

    fn run_phase(&self, phase: &str, round: &str, extra: &[(&str, &str)]) -> Output {
        let env = self.phase_env(phase, round);
        let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.extend_from_slice(extra);
        self.step("run-phase.sh", &all)
    }
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

    let bad = job.step("mask-secrets.sh", &[("SOTA_SECRET_NAMES", "GOOD,BAD-NAME")]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("'BAD-NAME' is not an environment variable name"));
}

#[test]
fn locate_prefers_a_pinned_binary_from_the_tool_cache() {
    let job = Job::new();
    let cached = job.tool_cache.join("sota-bot/0.1.0/x64/sota-bot");
    std::fs::create_dir_all(cached.parent().unwrap()).unwrap();
    std::fs::copy(repo_root().join("tests/fixtures/sota-bot-shim.sh"), &cached).unwrap();
    make_executable(&cached);

    let out = job.step("locate-binary.sh", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let o = job.outputs();
    assert_eq!(
        o.get("version").map(String::as_str),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(o.get("found").map(String::as_str), Some("true"));
    assert_eq!(o.get("bin").map(PathBuf::from), Some(cached.clone()));

    // A checksum that does not match is an error, not a silent fallback.
    let bad = job.step("locate-binary.sh", &[("SOTA_BOT_SHA256", &"0".repeat(64))]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("has sha256"));

    // A binary reporting another version is ignored and the source build is prepared.
    std::fs::write(&job.output, "").unwrap();
    let other = job.step("locate-binary.sh", &[("SHIM_VERSION", "9.9.9")]);
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
    std::fs::write(
        &cargo,
        "#!/bin/sh\necho \"$@\" > \"$RUNNER_TEMP/cargo-args\"\nwhile [ $# -gt 0 ]; do [ \"$1\" = --target-dir ] && t=\"$2\"; shift; done\nmkdir -p \"$t/release\" && printf '#!/bin/sh\\n' > \"$t/release/sota-bot\" && chmod +x \"$t/release/sota-bot\"\n",
    )
    .unwrap();
    make_executable(&cargo);
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
fn a_round_commits_pushes_reports_and_lists_raw_artifacts() {
    let job = Job::new();
    let before = job.remote_head();
    let out = job.run_phase("round", "3", &[]);
    assert!(
        out.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        stdout(&out),
        stderr(&out)
    );

    // Logs are grouped.
    let log = stdout(&out);
    assert!(log.contains("::group::GPU preflight\n"));
    assert!(log.contains("::group::sota-bot runner round (round 3)\n"));
    assert!(log.contains("::endgroup::"));

    // The contract flags reach the binary.
    let calls = job.shim_calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(
        calls[0].trim(),
        "runner preflight --expect-gpu-model h100 --expect-gpu-count 1"
    );
    let phase = &calls[1];
    for expected in [
        "runner round --campaign-id c-42",
        &format!("--run-dir {RUN_DIR}"),
        &format!("--branch {BRANCH}"),
        &format!("--outputs-file {}", job.output.display()),
        "--summary-file ",
        "--artifacts-list ",
        "--round 3",
        "--agent-command claude\\ -p",
        "--phase-timeout-minutes 30",
    ] {
        assert!(phase.contains(expected), "missing {expected:?} in {phase}");
    }

    // One new commit on the fork's campaign branch, reported as the output.
    let o = job.outputs();
    let head = job.remote_head();
    assert_ne!(head, before);
    assert_eq!(o.get("commit-sha"), Some(&head));
    assert_eq!(
        o.get("decision-file").map(String::as_str),
        Some(format!("{RUN_DIR}/humanize/round-3-decision.md").as_str())
    );
    assert_eq!(
        git(&job.remote, &["rev-parse", &format!("{head}^")]),
        before
    );

    // The phase's tables are in the job summary.
    let summary = job.summary();
    assert!(summary.contains("### sota-bot round 3 (shim)"), "{summary}");
    assert!(summary.contains("| sglang | chat | 12.5 |"));

    // Raw files: listed ones that exist, de-duplicated, relative paths resolved.
    let list = o.get("artifacts-list").cloned().unwrap();
    let collect = job.step(
        "collect-artifacts.sh",
        &[
            ("SOTA_CAMPAIGN_ID", "c-42"),
            ("SOTA_PHASE", "round"),
            ("SOTA_ROUND", "3"),
            ("SOTA_RUN_DIR", RUN_DIR),
            ("SOTA_ARTIFACTS_LIST", &list),
        ],
    );
    assert!(collect.status.success(), "{}", stderr(&collect));
    assert!(stdout(&collect).contains("::warning title=sota-bot::raw artifact listed but missing"));
    let o = job.outputs();
    assert_eq!(o.get("has-files").map(String::as_str), Some("true"));
    assert_eq!(o.get("count").map(String::as_str), Some("2"));
    assert_eq!(
        o.get("artifact-name").map(String::as_str),
        Some("sota-c-42-round-r3-777-1")
    );
    let paths: Vec<&str> = o["paths"].lines().collect();
    assert_eq!(
        paths,
        vec![
            job.runner_temp
                .join("shim-raw/server.log")
                .to_str()
                .unwrap()
                .to_string(),
            job.workspace
                .join(RUN_DIR)
                .join("raw-local/trace.json.gz")
                .to_str()
                .unwrap()
                .to_string(),
        ]
    );
}

#[test]
fn a_baseline_passes_no_round() {
    let job = Job::new();
    let out = job.run_phase("baseline", "", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let calls = job.shim_calls();
    assert!(calls[1].starts_with("runner baseline "), "{calls:?}");
    assert!(!calls[1].contains("--round"));
    assert_eq!(job.outputs().get("commit-sha"), Some(&job.remote_head()));
}

#[test]
fn a_failed_phase_fails_the_step_but_still_writes_the_summary() {
    let job = Job::new();
    let before = job.remote_head();
    let out = job.run_phase("round", "4", &[("SHIM_FAIL", "1")]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("::error title=sota-bot::sota-bot runner round failed (exit 1)"));
    assert!(job.summary().contains("### sota-bot round 4 (shim)"));
    assert_eq!(job.remote_head(), before);
}

#[test]
fn a_failed_preflight_stops_before_the_phase() {
    let job = Job::new();
    let out = job.run_phase("round", "1", &[("SHIM_PREFLIGHT_RC", "3")]);
    assert!(!out.status.success());
    assert_eq!(job.shim_calls().len(), 1, "only the preflight ran");
    assert!(job.summary().contains("GPU preflight failed"));
    assert!(stderr(&out).contains("the phase did not start"));
}

#[test]
fn success_without_a_commit_sha_breaks_the_contract() {
    let job = Job::new();
    let out = job.run_phase("round", "2", &[("SHIM_NO_OUTPUT", "1")]);
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
    ] {
        let mut env = job.phase_env("round", "1");
        env.retain(|(k, _)| *k != key);
        let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.push((key, value));
        let out = job.step("run-phase.sh", &all);
        assert!(!out.status.success(), "{key}={value} accepted");
        assert!(stderr(&out).contains(message), "{key}: {}", stderr(&out));
    }
    assert!(job.shim_calls().is_empty());
}

#[test]
fn collect_falls_back_to_the_run_dir_manifest_and_handles_nothing_to_upload() {
    let job = Job::new();
    let env = [
        ("SOTA_CAMPAIGN_ID", "c/42:x"),
        ("SOTA_PHASE", "baseline"),
        ("SOTA_RUN_DIR", RUN_DIR),
    ];
    let none = job.step("collect-artifacts.sh", &env);
    assert!(none.status.success(), "{}", stderr(&none));
    assert_eq!(
        job.outputs().get("has-files").map(String::as_str),
        Some("false")
    );

    let raw = job.workspace.join(RUN_DIR).join("server.log");
    std::fs::write(&raw, "log\n").unwrap();
    std::fs::write(
        job.workspace.join(RUN_DIR).join(".artifacts-manifest"),
        format!("# comment\r\n\r\n{RUN_DIR}/server.log\r\n"),
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
