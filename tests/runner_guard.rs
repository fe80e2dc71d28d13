//! The GPU host's own guard. `runner-setup/job-started-hook.sh` runs the way the Actions
//! runner runs a job-started hook (`bash -e`, the job's GITHUB_* environment, the event
//! payload at GITHUB_EVENT_PATH: GitHub's real example payloads from
//! `@octokit/webhooks-examples`): only a `workflow_dispatch` of a campaign workflow on the
//! fork's own campaign branch is admitted; an outside pull request's own workflow aimed at
//! the GPU labels is refused. `register-runner.sh` keeps the admin token and the JIT
//! configuration off every command line (real curl, GitHub through Prism) and starts the
//! runner with the hook installed.

mod support_exec;
mod support_github;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const REPO: &str = "owner/sglang";
const BRANCH: &str = "sota/20260102-llama-3-1-8b-instruct";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn example(event: &str) -> Option<Value> {
    let tools = support_github::tools_dir("runner_guard")?;
    support_github::webhook_examples(&tools)
        .iter()
        .find(|(name, _)| name == event)
        .map(|(_, examples)| examples[0].clone())
}

/// One job as the runner presents it to the hook.
struct Job {
    event: &'static str,
    repository: String,
    workflow: String,
    git_ref: String,
    payload: Value,
}

impl Job {
    /// The App's dispatch of `workflow` on the campaign branch of the fork.
    fn dispatch(workflow: &str) -> Option<Job> {
        let mut payload = example("workflow_dispatch")?;
        let git_ref = format!("refs/heads/{BRANCH}");
        payload["repository"]["full_name"] = json!(REPO);
        payload["ref"] = json!(git_ref);
        payload["workflow"] = json!(format!(".github/workflows/{workflow}"));
        Some(Job {
            event: "workflow_dispatch",
            repository: REPO.into(),
            workflow: workflow.into(),
            git_ref,
            payload,
        })
    }

    /// A contributor's pull request carrying its own workflow with `runs-on` set to the GPU
    /// labels (`pull_request` or `pull_request_target`).
    fn pull_request(event: &'static str) -> Option<Job> {
        let mut payload = example("pull_request")?;
        payload["repository"]["full_name"] = json!(REPO);
        let number = payload["number"].as_u64().unwrap_or(1);
        Some(Job {
            event,
            repository: REPO.into(),
            workflow: "gpu-pwn.yml".into(),
            git_ref: format!("refs/pull/{number}/merge"),
            payload,
        })
    }

    fn run(&self, runner_repo: Option<&str>) -> Output {
        let dir = tempfile::tempdir().unwrap();
        let event_path = dir.path().join("event.json");
        std::fs::write(&event_path, self.payload.to_string()).unwrap();
        let mut cmd = Command::new("bash");
        cmd.arg("-e")
            .arg(root().join("runner-setup/job-started-hook.sh"))
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_EVENT_NAME", self.event)
            .env("GITHUB_REPOSITORY", &self.repository)
            .env("GITHUB_REF", &self.git_ref)
            .env(
                "GITHUB_WORKFLOW_REF",
                format!(
                    "{}/.github/workflows/{}@{}",
                    self.repository, self.workflow, self.git_ref
                ),
            )
            .env("GITHUB_EVENT_PATH", &event_path);
        if let Some(r) = runner_repo {
            cmd.env("SOTA_RUNNER_REPO", r);
        }
        cmd.output().unwrap()
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn refused(o: &Output, why: &str) {
    assert!(!o.status.success(), "admitted: {}", text(o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("::error title=sota-bot runner::refused"),
        "{}",
        text(o)
    );
    assert!(text(o).contains(why), "expected `{why}` in {}", text(o));
}

#[test]
fn the_hook_admits_only_campaign_dispatches_on_the_forks_own_branches() {
    let Some(round) = Job::dispatch("sota-round.yml") else {
        return;
    };
    let ok = round.run(Some(REPO));
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(
        text(&ok).contains("admitted sota-round.yml"),
        "{}",
        text(&ok)
    );
    let baseline = Job::dispatch("sota-baseline.yml").unwrap();
    assert!(baseline.run(Some(REPO)).status.success());
    // Owner and repository names compare as GitHub does, without case.
    assert!(round.run(Some("Owner/SGLang")).status.success());

    // The attack: an outside pull request adds its own workflow aimed at the GPU labels.
    for event in ["pull_request", "pull_request_target"] {
        refused(
            &Job::pull_request(event).unwrap().run(Some(REPO)),
            &format!("event '{event}'"),
        );
    }
    for event in ["push", "issue_comment", "workflow_run", "schedule"] {
        let mut job = Job::dispatch("sota-round.yml").unwrap();
        job.event = event;
        refused(&job.run(Some(REPO)), "only takes workflow_dispatch");
    }
    // A dispatch, but of another workflow, of another repository, or off a campaign branch.
    refused(
        &Job::dispatch("gpu-pwn.yml").unwrap().run(Some(REPO)),
        "not one of the campaign workflows",
    );
    let mut other = Job::dispatch("sota-round.yml").unwrap();
    other.repository = "stranger/sglang".into();
    refused(&other.run(Some(REPO)), "is not owner/sglang");
    let mut main = Job::dispatch("sota-round.yml").unwrap();
    main.git_ref = "refs/heads/main".into();
    main.payload["ref"] = json!("refs/heads/main");
    refused(&main.run(Some(REPO)), "is not a campaign branch");
    let mut tag = Job::dispatch("sota-round.yml").unwrap();
    tag.git_ref = format!("refs/tags/{BRANCH}");
    refused(&tag.run(Some(REPO)), "is not a campaign branch");
    // The payload must agree with the environment.
    let mut mismatch = Job::dispatch("sota-round.yml").unwrap();
    mismatch.payload["workflow"] = json!(".github/workflows/gpu-pwn.yml");
    refused(&mismatch.run(Some(REPO)), "payload names another workflow");
    let mut foreign = Job::dispatch("sota-round.yml").unwrap();
    foreign.payload["repository"]["full_name"] = json!("stranger/sglang");
    refused(&foreign.run(Some(REPO)), "payload names another repository");
    // A runner nobody told which fork it serves takes nothing.
    refused(&round.run(None), "SOTA_RUNNER_REPO is not set");
}

/// A PATH directory with the fixture host's nvidia-smi and a `curl` that records its
/// arguments before running the real one.
fn host_bin(dir: &Path, log: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    support_exec::write_executable(
        &bin.join("nvidia-smi"),
        &format!(
            "#!/bin/sh\nFAKE_NVIDIA_SMI_DIR='{}' exec bash '{}' \"$@\"\n",
            root().join("tests/fixtures/nvidia-smi/h100x8").display(),
            root()
                .join("tests/fixtures/nvidia-smi/fake-nvidia-smi.sh")
                .display()
        ),
    );
    let real_curl = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v curl"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    support_exec::write_executable(
        &bin.join("curl"),
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}/curl-argv'\nexec '{}' \"$@\"\n",
            log.display(),
            real_curl.trim()
        ),
    );
    bin
}

#[test]
fn register_runner_keeps_tokens_off_command_lines_and_installs_the_hook() {
    let Some(h) = support_github::harness("register_runner_keeps_tokens_off_command_lines") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    std::fs::create_dir_all(&log).unwrap();
    let bin = host_bin(tmp.path(), &log);
    // The Actions runner itself cannot run here: its run.sh records how it was started.
    let runner_dir = tmp.path().join("runner");
    std::fs::create_dir_all(&runner_dir).unwrap();
    support_exec::write_executable(
        &runner_dir.join("run.sh"),
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{0}/run-argv'\nenv > '{0}/run-env'\n",
            log.display()
        ),
    );
    let token = "ghs_AdminTokenForJitRunners0123456789";
    let o = Command::new("bash")
        .arg(root().join("runner-setup/register-runner.sh"))
        .args(["--repo", "octo/guarded", "--runner-group-id", "7"])
        .arg("--runner-dir")
        .arg(&runner_dir)
        .args(["--visible-devices", "0,1", "--name", "gpu-box-0-1"])
        .args(["--api-url", &h.prism_url])
        .env_clear()
        .env(
            "PATH",
            format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display()),
        )
        .env("HOME", tmp.path())
        .env("GITHUB_TOKEN", token)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));

    // GitHub got the token in the header (Prism validated the request)...
    let seen = h
        .fake
        .seen("/repos/octo/guarded/actions/runners/generate-jitconfig");
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(format!("Bearer {token}").as_str())
    );
    assert_eq!(seen[0].body["labels"], json!(["self-hosted", "2-gpu-h100"]));
    // ...but no command line carried it, nor the JIT configuration.
    let curl_argv = std::fs::read_to_string(log.join("curl-argv")).unwrap();
    assert!(curl_argv.contains("generate-jitconfig"), "{curl_argv}");
    assert!(!curl_argv.contains(token), "{curl_argv}");
    let run_argv = std::fs::read_to_string(log.join("run-argv")).unwrap();
    assert_eq!(run_argv.trim(), "", "run.sh takes no arguments");
    let env: Vec<(String, String)> = std::fs::read_to_string(log.join("run-env"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.into(), v.into())))
        .collect();
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let jit = get("ACTIONS_RUNNER_INPUT_JITCONFIG").expect("JIT config in the environment");
    assert!(!jit.is_empty() && !run_argv.contains(jit));
    assert_eq!(get("GITHUB_TOKEN"), None, "the admin token is gone");
    assert_eq!(get("SOTA_RUNNER_REPO"), Some("octo/guarded"));
    assert_eq!(get("CUDA_VISIBLE_DEVICES"), Some("0,1"));
    let hook = root().join("runner-setup/job-started-hook.sh");
    assert_eq!(
        get("ACTIONS_RUNNER_HOOK_JOB_STARTED"),
        Some(hook.to_str().unwrap())
    );
}
