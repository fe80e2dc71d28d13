//! The runner side of the App's stories: every workflow the App dispatches is executed as
//! GitHub would run it on a self-hosted runner. The dispatch inputs (with the workflow's
//! defaults) go through the installed workflow's `with:` and the action's `env:` mapping,
//! read from `templates/workflows/` and `action/action.yml` rather than restated here; the
//! job checks out the campaign branch from the story repository's real git repository and
//! runs the action's real `run-phase.sh`, which runs the real `sota-bot runner
//! baseline|round` on the simulator lane and pushes back. The only stand-in is
//! `nvidia-smi` (the captured H100 host output of `tests/fixtures/nvidia-smi`).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support_github::repo_root;

/// What one executed workflow run left: its exit status and the job's log.
#[derive(Debug, Clone)]
pub struct JobResult {
    pub success: bool,
    pub log: String,
}

fn yaml(path: &Path) -> serde_yaml_ng::Value {
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn as_text(v: &serde_yaml_ng::Value) -> Option<String> {
    match v {
        serde_yaml_ng::Value::String(s) => Some(s.clone()),
        serde_yaml_ng::Value::Number(n) => Some(n.to_string()),
        serde_yaml_ng::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `${{ inputs.NAME }}` -> `NAME`; `None` for a literal or another expression.
fn input_ref(expr: &str) -> Option<&str> {
    let inner = expr.trim().strip_prefix("${{")?.strip_suffix("}}")?.trim();
    let name = inner.strip_prefix("inputs.")?;
    name.chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        .then_some(name)
}

/// Resolves a `with:`/`env:` value against `inputs`: an input reference, a literal, or
/// (another expression, such as a step output or `github.token`) nothing.
fn resolve(value: &str, inputs: &BTreeMap<String, String>) -> Option<String> {
    match input_ref(value) {
        Some(name) => Some(inputs.get(name).cloned().unwrap_or_default()),
        None if value.contains("${{") => None,
        None => Some(value.to_string()),
    }
}

/// The environment of the action's phase step for a dispatch of `workflow` with `inputs`.
pub fn phase_env(workflow: &str, dispatched: &Value) -> BTreeMap<String, String> {
    let root = repo_root();
    let wf = yaml(&root.join("templates/workflows").join(workflow));
    // The dispatch's inputs, with the workflow's defaults for those it left out.
    let mut inputs: BTreeMap<String, String> = BTreeMap::new();
    if let Some(declared) = wf["on"]["workflow_dispatch"]["inputs"].as_mapping() {
        for (k, v) in declared {
            if let (Some(k), Some(d)) = (k.as_str(), v.get("default").and_then(as_text)) {
                inputs.insert(k.to_string(), d);
            }
        }
    }
    for (k, v) in dispatched.as_object().into_iter().flatten() {
        inputs.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
    }
    let step = wf["jobs"]
        .as_mapping()
        .and_then(|jobs| jobs.values().next())
        .and_then(|job| job["steps"].as_sequence())
        .and_then(|steps| {
            steps.iter().find(|s| {
                s["uses"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("sota-bot/sota-bot/action"))
            })
        })
        .expect("the workflow runs the sota-bot action")
        .clone();
    let action = yaml(&root.join("action/action.yml"));
    let mut with: BTreeMap<String, String> = BTreeMap::new();
    if let Some(declared) = action["inputs"].as_mapping() {
        for (k, v) in declared {
            if let (Some(k), Some(d)) = (k.as_str(), v.get("default").and_then(as_text)) {
                if let Some(d) = resolve(&d, &BTreeMap::new()) {
                    with.insert(k.to_string(), d);
                }
            }
        }
    }
    for (k, v) in step["with"].as_mapping().into_iter().flatten() {
        if let (Some(k), Some(v)) = (k.as_str(), as_text(v)) {
            if let Some(v) = resolve(&v, &inputs) {
                with.insert(k.to_string(), v);
            }
        }
    }
    let phase_step = action["runs"]["steps"]
        .as_sequence()
        .and_then(|s| s.iter().find(|s| s["id"].as_str() == Some("phase")))
        .expect("the action has a phase step")
        .clone();
    let mut env = BTreeMap::new();
    for (k, v) in phase_step["env"].as_mapping().into_iter().flatten() {
        if let (Some(k), Some(v)) = (k.as_str(), as_text(v)) {
            if let Some(v) = resolve(&v, &with) {
                if !v.is_empty() {
                    env.insert(k.to_string(), v);
                }
            }
        }
    }
    env
}

fn git(dir: &Path, args: &[&str]) {
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
}

/// A self-hosted runner for one story repository.
pub struct Runner {
    pub root: PathBuf,
    pub remote: PathBuf,
    bin_dir: PathBuf,
    jobs: std::sync::atomic::AtomicUsize,
}

impl Runner {
    pub fn new(root: &Path, remote: &Path) -> Runner {
        let bin_dir = root.join("bin");
        std::fs::create_dir_all(&bin_dir).unwrap();
        crate::support_exec::write_executable(
            &bin_dir.join("sota-bot"),
            &format!(
                "#!/bin/sh\nexec '{}' \"$@\"\n",
                env!("CARGO_BIN_EXE_sota-bot")
            ),
        );
        crate::support_toy::fake_nvidia_smi(&bin_dir);
        Runner {
            root: root.to_path_buf(),
            remote: remote.to_path_buf(),
            bin_dir,
            jobs: Default::default(),
        }
    }

    /// From now on the runner's `nvidia-smi` reports the captured `host` (a folder of
    /// `tests/fixtures/nvidia-smi`): another machine's GPUs, or busy ones, fail the phase's
    /// GPU preflight for real.
    pub fn set_gpus(&self, host: &str) {
        crate::support_toy::fake_nvidia_smi_of(&self.bin_dir, host);
    }

    /// Runs one dispatched workflow: a fresh checkout of the dispatched ref, then the
    /// action's phase step with the environment the workflow and action give it.
    pub fn execute(&self, workflow: &str, git_ref: &str, inputs: &Value) -> JobResult {
        // One phase at a time on this machine: the simulated engines listen on the plan's
        // ports.
        static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _gpu = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let n = self.jobs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let job = self.root.join(format!("job-{n}"));
        let temp = job.join("runner-temp");
        std::fs::create_dir_all(&temp).unwrap();
        let workspace = job.join("workspace");
        git(
            &job,
            &[
                "clone",
                "-q",
                "-b",
                git_ref,
                self.remote.to_str().unwrap(),
                workspace.to_str().unwrap(),
            ],
        );
        let output = temp.join("output");
        let summary = temp.join("summary");
        std::fs::write(&output, "").unwrap();
        std::fs::write(&summary, "").unwrap();
        let path = format!(
            "{}:{}",
            self.bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new("bash")
            .arg(repo_root().join("action/scripts/run-phase.sh"))
            .current_dir(&workspace)
            .env_clear()
            .env("PATH", path)
            .env("HOME", &job)
            .env("RUNNER_TEMP", &temp)
            .env("GITHUB_OUTPUT", &output)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("GITHUB_WORKSPACE", &workspace)
            .env("GITHUB_ACTIONS", "true")
            .envs(phase_env(workflow, inputs))
            .output()
            .unwrap();
        JobResult {
            success: out.status.success(),
            log: format!(
                "{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }
}
