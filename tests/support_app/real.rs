//! The App with the real runner in the loop: the fake GitHub keeps the story repository in a
//! real bare git repository whose `main` is the toy SGLang checkout, and every workflow the
//! App dispatches is executed by the action's `run-phase.sh` and the real `sota-bot runner
//! baseline|round` on the simulator lane (`support_runner`), on a clone of that repository,
//! pushing back. What the App reads back (checkpoint, reports, gate files, the round's
//! commit) is what the runner committed.
//!
//! The story verbs say what happens on GitHub: [`RealStory::finish_next`] runs the next
//! dispatched workflow and delivers its completion; [`RealStory::run_next`] and
//! [`RealStory::complete`] split the two (a webhook delayed, lost or redelivered). The verbs
//! that stand for a runner that lies or is broken say so in their names:
//! [`RealStory::tamper_gate`] and [`RealStory::succeed_without_running`].

use std::ops::Deref;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::{Story, BRANCH, RUN_DIR};
use crate::support_github::Dispatched;
use crate::support_runner::{JobResult, Runner};

/// The toy SGLang checkout's runner config: the simulator lane and the scripted agent.
pub const RUNNER_CONFIG: &str = "\
agent:
  timeout_secs: 120
sim:
  enabled: true
  # Slow enough that a busy test machine's scheduling noise stays small next to the
  # simulated gap between SGLang and vLLM.
  time_scale: 0.05
lane:
  ready_timeout_secs: 30
  bench_timeout_secs: 120
";

/// The fork's App config: the `command` agent preset running the scripted agent simulator.
pub const REPO_CONFIG: &str = "\
agent:
  preset: command
  command: >-
    sota-bot sim agent --checkout {checkout} --round {round} --prompt {prompt} --summary-out {summary}
    && git add -A -- sim python && git commit -q -m \"sim agent: round {round} patch\"
  secret_names: []
";

/// One executed workflow run: what was dispatched and what the job left.
#[derive(Debug, Clone)]
pub struct Job {
    pub dispatched: Dispatched,
    pub result: JobResult,
}

impl Job {
    fn conclusion(&self) -> &'static str {
        if self.result.success {
            "success"
        } else {
            "failure"
        }
    }
}

/// A story whose repository's main branch is the toy SGLang checkout, with a runner.
pub struct RealStory {
    pub story: Story,
    pub runner: Arc<Runner>,
    _dir: tempfile::TempDir,
    /// How many dispatches the runner has taken, oldest first.
    taken: Mutex<usize>,
}

impl Deref for RealStory {
    type Target = Story;
    fn deref(&self) -> &Story {
        &self.story
    }
}

impl RealStory {
    pub async fn new(test: &str, repo: &str) -> Option<RealStory> {
        Self::with_repo_config(test, repo, REPO_CONFIG).await
    }

    /// A story whose fork holds `repo_config` as `.github/sota-bot.yml`.
    pub async fn with_repo_config(test: &str, repo: &str, repo_config: &str) -> Option<RealStory> {
        Self::with_fork_files(test, repo, &[(".github/sota-bot.yml", repo_config)]).await
    }

    /// A story whose fork's main branch is the toy checkout with the runner config and
    /// these extra files (`.github/sota-bot.yml` among them).
    pub async fn with_fork_files(
        test: &str,
        repo: &str,
        files: &[(&str, &str)],
    ) -> Option<RealStory> {
        let story = Story::new(test, repo).await?;
        let dir = tempfile::tempdir().unwrap();
        let git = story.h.fake.story_git(repo);
        let seed = dir.path().join("seed");
        crate::support_toy::slow_sglang_checkout(&seed);
        let mut all = vec![(".github/sota-bot-runner.yml", RUNNER_CONFIG)];
        all.extend_from_slice(files);
        for (path, text) in all {
            let path = seed.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        git_in(&seed, &["add", "-A"]);
        git_in(&seed, &["commit", "-q", "-m", "fork set-up"]);
        git_in(
            &seed,
            &[
                "push",
                "-q",
                "--force",
                git.path.to_str().unwrap(),
                "HEAD:refs/heads/main",
            ],
        );
        let runner = Arc::new(Runner::new(&dir.path().join("runner"), &git.path));
        Some(RealStory {
            story,
            runner,
            _dir: dir,
            taken: Mutex::new(0),
        })
    }

    /// Dispatches GitHub accepted that the runner has not taken yet, oldest first.
    pub fn pending(&self) -> Vec<Dispatched> {
        let taken = *self.taken.lock().unwrap();
        self.h.fake.dispatched(&self.repo).split_off(taken)
    }

    /// The runner takes the oldest pending dispatch.
    fn take_next(&self) -> Dispatched {
        let mut taken = self.taken.lock().unwrap();
        let all = self.h.fake.dispatched(&self.repo);
        let d = all
            .get(*taken)
            .cloned()
            .unwrap_or_else(|| panic!("nothing dispatched to run: {all:#?}"));
        *taken += 1;
        d
    }

    /// The runner takes the oldest pending dispatch and executes it; no webhook yet (the
    /// run is still queued as far as GitHub's runs list says).
    pub async fn run_next(&self) -> Job {
        let dispatched = self.take_next();
        let runner = self.runner.clone();
        let (workflow, inputs) = (
            dispatched.workflow.clone(),
            dispatched.body["inputs"].clone(),
        );
        let git_ref = dispatched.body["ref"].as_str().unwrap().to_string();
        let result =
            tokio::task::spawn_blocking(move || runner.execute(&workflow, &git_ref, &inputs))
                .await
                .unwrap();
        Job { dispatched, result }
    }

    /// A BROKEN RUNNER: takes the next dispatch and its job ends `success` without the
    /// phase having run or pushed anything; the completion is delivered.
    pub async fn succeed_without_running(&self) -> Job {
        let job = Job {
            dispatched: self.take_next(),
            result: JobResult {
                success: true,
                log: "the phase step never ran".into(),
            },
        };
        self.complete(&job).await;
        job
    }

    /// GitHub delivers the job's `workflow_run.completed` (again, for a redelivery).
    pub async fn complete(&self, job: &Job) {
        self.story
            .complete_run(
                &job.dispatched.title,
                job.conclusion(),
                Some(job.dispatched.run_id),
            )
            .await;
    }

    /// The run completes on GitHub but its webhook never arrives: only the runs list
    /// (what reconciliation reads) shows it.
    pub fn complete_without_webhook(&self, job: &Job) {
        self.h
            .fake
            .complete_runs(&self.repo, &job.dispatched.title, job.conclusion());
    }

    /// Runs the next dispatched workflow and delivers its completion.
    pub async fn finish_next(&self) -> Job {
        let job = self.run_next().await;
        self.complete(&job).await;
        job
    }

    /// Runs the next dispatched workflow, which must be `round` (0: the baseline), and
    /// delivers its completion; fails showing the job's log when the job failed.
    pub async fn finish_round(&self, round: u32) -> Job {
        let job = self.finish_next().await;
        let title = &job.dispatched.title;
        let expected = if round == 0 {
            " baseline".to_string()
        } else {
            format!(" round {round}")
        };
        assert!(title.ends_with(&expected), "ran {title}, not {expected}");
        assert!(job.result.success, "{}", show(std::slice::from_ref(&job)));
        job
    }

    /// Runs every dispatched workflow not yet run, in dispatch order, each completing with
    /// its job's conclusion, until none is left (the App dispatches the next from the
    /// completion of the previous).
    pub async fn finish_all(&self) -> Vec<Job> {
        let mut jobs = Vec::new();
        while !self.pending().is_empty() {
            jobs.push(self.finish_next().await);
        }
        jobs
    }

    /// A MALICIOUS RUNNER: after the real runner committed round `round`, a commit on top
    /// flips the committed `gate.json`'s answer, so it claims the opposite of what its own
    /// committed evidence (`gate-input.json`) decides. Nothing an honest runner does.
    pub fn tamper_gate(&self, round: u32) {
        let git = self.h.fake.story_git(&self.repo);
        let path = format!("{RUN_DIR}/rounds/round-{round}/gate.json");
        let mut gate: Value =
            serde_json::from_slice(&git.read(BRANCH, &path).expect("the round's gate.json"))
                .unwrap();
        let accepted = gate["accepted"].as_bool().expect("a gate answer");
        gate["accepted"] = Value::Bool(!accepted);
        let text = serde_json::to_string_pretty(&gate).unwrap();
        git.commit_files(BRANCH, &[(&path, Some(&text))], "gate: accept");
    }

    /// The checkpoint on the campaign branch.
    pub fn checkpoint(&self) -> sota_bot::campaign::state::CampaignState {
        let git = self.h.fake.story_git(&self.repo);
        let path = format!("{RUN_DIR}/humanize/model-loop-checkpoint.md");
        let text = git.read(BRANCH, &path).expect("a checkpoint");
        sota_bot::campaign::state::parse_checkpoint(&String::from_utf8(text).unwrap()).unwrap()
    }

    /// A file the runner committed on the campaign branch, relative to the run directory.
    pub fn committed(&self, path: &str) -> Option<String> {
        let git = self.h.fake.story_git(&self.repo);
        git.read(BRANCH, &format!("{RUN_DIR}/{path}"))
            .map(|b| String::from_utf8(b).unwrap())
    }

    /// Every comment the App wrote on the request issue and the PR.
    pub fn all_comments(&self) -> Vec<String> {
        let mut all = self.comments(7);
        if let Some(pr) = self.record().pr_number {
            all.extend(self.comments(pr));
        }
        all
    }

    /// Every link to the branch resolves to a file or folder there; no path of the runner's
    /// machine appears; headings nest under the App's own.
    pub fn assert_comments_portable(&self) {
        let git = self.h.fake.story_git(&self.repo);
        for c in self.all_comments() {
            for (branch, path) in branch_links(&c, &self.repo) {
                let path = path.trim_end_matches('/');
                let exists = git.read(&branch, path).is_some() || git.is_dir(&branch, path);
                assert!(exists, "link to {branch}/{path} does not resolve:\n{c}");
            }
            for runner_path in [
                self.runner.root.display().to_string(),
                env!("CARGO_BIN_EXE_sota-bot").to_string(),
                env!("CARGO_MANIFEST_DIR").to_string(),
                "/tmp/".to_string(),
                "/home/".to_string(),
            ] {
                assert!(
                    !c.contains(&runner_path),
                    "a runner path ({runner_path}) in a comment:\n{c}"
                );
            }
            assert!(
                !c.lines().any(|l| l.starts_with("# ")),
                "an H1 heading inside a comment:\n{c}"
            );
        }
    }

    /// The check runs the App created on the story repository.
    pub fn check_runs(&self) -> Vec<Value> {
        self.h.fake.check_runs(&self.repo)
    }

    /// One check run per round 1..=`rounds`, on the commit that wrote the round's gate
    /// file, concluding as the committed gate answer says.
    pub fn assert_check_run_per_round(&self, rounds: u32) {
        let git = self.h.fake.story_git(&self.repo);
        let checks = self.check_runs();
        for round in 1..=rounds {
            let name = format!("sota-bot gate · round {round}");
            let ours: Vec<&Value> = checks.iter().filter(|c| c["name"] == name).collect();
            assert_eq!(
                ours.len(),
                1,
                "one check run for round {round}: {checks:#?}"
            );
            let gate = format!("{RUN_DIR}/rounds/round-{round}/gate.json");
            let sha = git
                .last_commit_touching(BRANCH, &gate)
                .expect("the round committed its gate file");
            assert_eq!(
                ours[0]["head_sha"],
                Value::String(sha),
                "on the round's commit"
            );
            let committed: Value =
                serde_json::from_slice(&git.read(BRANCH, &gate).unwrap()).unwrap();
            let accepted = committed["accepted"].as_bool().unwrap();
            assert_eq!(
                ours[0]["conclusion"],
                Value::String(if accepted { "success" } else { "failure" }.into()),
                "the check run carries the gate's verdict"
            );
        }
    }
}

fn git_in(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=m", "-c", "user.email=m@example.invalid"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// Links to files and folders on the story repository's branches.
fn branch_links(text: &str, repo: &str) -> Vec<(String, String)> {
    let re = regex::Regex::new(&format!(
        r"https://github\.com/{}/(?:blob|tree)/(sota/[A-Za-z0-9_.-]+)/([^)\s#]+)",
        regex::escape(repo)
    ))
    .unwrap();
    re.captures_iter(text)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect()
}

/// The jobs' outcomes and logs, for assertion messages.
pub fn show(jobs: &[Job]) -> String {
    jobs.iter()
        .map(|j| {
            format!(
                "{}: success={}\n{}",
                j.dispatched.title, j.result.success, j.result.log
            )
        })
        .collect::<Vec<_>>()
        .join("\n-----\n")
}

/// A comment with what varies between runs redacted, so whole comments can be snapshots:
/// measured values (decimals with their signs) and the verdicts and chart bounds that
/// follow them, durations, commit ids, run ids, and the simulated servers' free ports.
/// Decimals inside names (`Llama-3.1-8B`) are kept: only a number standing on its own is
/// a measurement.
pub fn redact(text: &str) -> String {
    let masks = [
        (r"\b[0-9a-f]{40}\b", "<sha>"),
        (r"\b[0-9a-f]{10}\b", "<short sha>"),
        (r"--port \d+", "--port <port>"),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:<port>"),
        (r"/actions/runs/\d+", "/actions/runs/<run>"),
        (r#""gap %" -?\d+ --> -?\d+"#, r#""gap %" <lo> --> <hi>"#),
        (r"\bin \d+s\b", "in <n>s"),
        (r"(^|[\s|(\[,])[+\-−]?\d+\.\d+", "${1}<x>"),
        (r"\b(?:REGRESSED|STALLED|ADVANCED)\b", "<verdict>"),
        // Whether the scripted agent's small patch shows above the simulator's noise.
        (
            r"(\| `ledger\.optimization_justified` \| pass \| )[^|]*\|",
            "$1<reason> |",
        ),
    ];
    let mut out = text.to_string();
    for (pattern, with) in masks {
        out = regex::Regex::new(&format!("(?m){pattern}"))
            .unwrap()
            .replace_all(&out, with)
            .into_owned();
    }
    out
}
