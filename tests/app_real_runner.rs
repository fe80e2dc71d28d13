//! The App with the real runner in the loop: the fake GitHub behind Prism keeps the story
//! repository in a real git repository, and every workflow the App dispatches is executed
//! by the action's `run-phase.sh` and the real `sota-bot runner baseline|round` on the
//! simulator lane, on a clone of that repository, pushing back. Nothing of a round is
//! written by the test: what the App reads back (checkpoint, reports, gate files, the
//! round's commit) is what the runner committed.

mod support_app;
mod support_exec;
mod support_github;
mod support_runner;
mod support_toy;

use std::sync::Arc;

use serde_json::Value;
use sota_bot::app::{AppCampaigns, AppPhase, CampaignStore};
use sota_bot::server::handler::InstallationApis;
use support_app::Story;
use support_runner::{JobResult, Runner};

/// The toy SGLang checkout's runner config: the simulator lane and the scripted agent.
const RUNNER_CONFIG: &str = "\
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
const REPO_CONFIG: &str = "\
agent:
  preset: command
  command: >-
    sota-bot sim agent --checkout {checkout} --round {round} --prompt {prompt} --summary-out {summary}
    && git add -A -- sim python && git commit -q -m \"sim agent: round {round} patch\"
  secret_names: []
";

fn form(autonomy: &str, max_rounds: u32) -> String {
    format!(
        "### Model\n\nmeta-llama/Llama-3.1-8B-Instruct\n\n### Precision\n\nbf16\n\n### GPU model\n\nH100\n\n### GPU count\n\n1\n\n\
         ### Comparison frameworks\n\nvllm\n\n\
         ### Workload\n\n```yaml\ndataset: random\nnum_prompts: 8\nscenarios:\n  - {{name: chat, input_len: 1000, output_len: 1000}}\n```\n\n\
         ### SLA\n\n```yaml\nmax_p50_ttft_ms: 5000\nmax_p50_tpot_ms: 100\nmin_success_rate: 0.99\n```\n\n\
         ### Max rounds\n\n{max_rounds}\n\n### Autonomy\n\n{autonomy}\n"
    )
}

/// A story whose repository's main branch is the toy SGLang checkout, with a runner.
struct RealStory {
    story: Story,
    runner: Arc<Runner>,
    _dir: tempfile::TempDir,
    executed: std::sync::Mutex<usize>,
}

impl RealStory {
    async fn new(test: &str, repo: &str) -> Option<RealStory> {
        Self::with_repo_config(test, repo, REPO_CONFIG).await
    }

    /// A story whose fork holds `repo_config` as `.github/sota-bot.yml`.
    async fn with_repo_config(test: &str, repo: &str, repo_config: &str) -> Option<RealStory> {
        let story = Story::new(test, repo).await?;
        let dir = tempfile::tempdir().unwrap();
        let git = story.h.fake.story_git(repo);
        let seed = dir.path().join("seed");
        support_toy::slow_sglang_checkout(&seed);
        std::fs::create_dir_all(seed.join(".github")).unwrap();
        std::fs::write(seed.join(".github/sota-bot-runner.yml"), RUNNER_CONFIG).unwrap();
        std::fs::write(seed.join(".github/sota-bot.yml"), repo_config).unwrap();
        let run = |args: &[&str]| {
            let out = std::process::Command::new("git")
                .args(["-c", "user.name=m", "-c", "user.email=m@example.invalid"])
                .args(args)
                .current_dir(&seed)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        };
        run(&["add", "-A"]);
        run(&["commit", "-q", "-m", "fork set-up"]);
        run(&[
            "push",
            "-q",
            "--force",
            git.path.to_str().unwrap(),
            "HEAD:refs/heads/main",
        ]);
        let runner = Arc::new(Runner::new(&dir.path().join("runner"), &git.path));
        Some(RealStory {
            story,
            runner,
            _dir: dir,
            executed: std::sync::Mutex::new(0),
        })
    }

    /// Executes every dispatched workflow not yet run, in dispatch order, each completing
    /// with its job's conclusion (a webhook the App handles), until none is left.
    async fn run_dispatched(&self) -> Vec<JobResult> {
        let mut results = Vec::new();
        loop {
            let dispatches = self.story.h.fake.dispatched(&self.story.repo);
            let next = {
                let mut done = self.executed.lock().unwrap();
                let d = dispatches.get(*done).cloned();
                if d.is_some() {
                    *done += 1;
                }
                d
            };
            let Some(d) = next else {
                return results;
            };
            let workflow = d.workflow.clone();
            let inputs = d.body["inputs"].clone();
            let git_ref = d.body["ref"].as_str().unwrap().to_string();
            let runner = self.runner.clone();
            let result =
                tokio::task::spawn_blocking(move || runner.execute(&workflow, &git_ref, &inputs))
                    .await
                    .unwrap();
            let conclusion = if result.success { "success" } else { "failure" };
            self.story
                .complete_run(&d.title, conclusion, Some(d.run_id))
                .await;
            results.push(result);
        }
    }

    fn comments(&self, issue: u64) -> Vec<String> {
        self.story.comments(issue)
    }

    fn pr(&self) -> u64 {
        self.record().pr_number.expect("a pull request")
    }

    fn record(&self) -> sota_bot::app::CampaignRecord {
        self.story
            .campaigns
            .store()
            .get(support_app::CAMPAIGN)
            .unwrap()
            .expect("campaign recorded")
    }

    /// The checkpoint on the campaign branch.
    fn checkpoint(&self) -> sota_bot::campaign::state::CampaignState {
        let git = self.story.h.fake.story_git(&self.story.repo);
        let path = format!("{}/humanize/model-loop-checkpoint.md", support_app::RUN_DIR);
        let text = git.read(support_app::BRANCH, &path).expect("a checkpoint");
        sota_bot::campaign::state::parse_checkpoint(&String::from_utf8(text).unwrap()).unwrap()
    }

    /// Every comment the App wrote on the request issue and the PR.
    fn all_comments(&self) -> Vec<String> {
        let mut all = self.comments(7);
        if let Some(pr) = self.record().pr_number {
            all.extend(self.comments(pr));
        }
        all
    }
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

/// Every link to the branch resolves to a file or folder there; no runner path appears.
fn assert_comments_portable(rs: &RealStory) {
    let git = rs.story.h.fake.story_git(&rs.story.repo);
    for c in rs.all_comments() {
        for (branch, path) in branch_links(&c, &rs.story.repo) {
            let path = path.trim_end_matches('/');
            let exists = git.read(&branch, path).is_some() || git.is_dir(&branch, path);
            assert!(exists, "link to {branch}/{path} does not resolve:\n{c}");
        }
        for runner_path in [
            rs.runner.root.display().to_string(),
            env!("CARGO_BIN_EXE_sota-bot").to_string(),
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

/// Checks the App created for `round` on the round's commit on the branch.
fn check_runs(rs: &RealStory) -> Vec<Value> {
    rs.story.h.fake.check_runs(&rs.story.repo)
}

fn assert_check_run_per_round(rs: &RealStory, rounds: u32) {
    let git = rs.story.h.fake.story_git(&rs.story.repo);
    let checks = check_runs(rs);
    for round in 1..=rounds {
        let name = format!("sota-bot gate · round {round}");
        let ours: Vec<&Value> = checks.iter().filter(|c| c["name"] == name).collect();
        assert_eq!(
            ours.len(),
            1,
            "one check run for round {round}: {checks:#?}"
        );
        let gate = format!("{}/rounds/round-{round}/gate.json", support_app::RUN_DIR);
        let sha = git
            .last_commit_touching(support_app::BRANCH, &gate)
            .expect("the round committed its gate file");
        assert_eq!(
            ours[0]["head_sha"],
            Value::String(sha),
            "on the round's commit"
        );
        let committed: Value =
            serde_json::from_slice(&git.read(support_app::BRANCH, &gate).unwrap()).unwrap();
        let accepted = committed["accepted"].as_bool().unwrap();
        assert_eq!(
            ours[0]["conclusion"],
            Value::String(if accepted { "success" } else { "failure" }.into()),
            "the check run carries the gate's verdict"
        );
    }
}

fn show(results: &[JobResult]) -> String {
    results
        .iter()
        .map(|r| format!("success={}\n{}", r.success, r.log))
        .collect::<Vec<_>>()
        .join("\n-----\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_autonomous_campaign_runs_to_its_final_report_with_or_without_github_faults() {
    let Some(rs) = RealStory::new("real_runner_autonomous", "octo/real-auto").await else {
        return;
    };
    rs.story
        .open_issue("maint", &form("auto-continue", 1))
        .await;
    assert_eq!(rs.record().phase, AppPhase::Baseline);
    let results = rs.run_dispatched().await;
    assert!(results.iter().all(|r| r.success), "{}", show(&results));
    let record = rs.record();
    assert_eq!(record.phase, AppPhase::Finished, "{}", show(&results));
    let rounds = rs.checkpoint().rounds.len() as u32;
    assert!(rounds >= 1, "at least one round ran");
    assert_eq!(results.len() as u32, 1 + rounds, "{}", show(&results));
    assert_check_run_per_round(&rs, rounds);
    let pr = rs.pr();
    let baseline = rs.story.comment_containing(pr, "## Fixed baseline");
    assert!(baseline.contains("### Benchmark summary"), "{baseline}");
    rs.story.comment_containing(pr, "## Round 1: ");
    rs.story.comment_containing(pr, "## Final report");
    assert_comments_portable(&rs);
    let status = rs.story.comment_containing(
        7,
        &format!("### sota-bot campaign `{}`", support_app::CAMPAIGN),
    );
    assert!(status.contains("| status | finished |"), "{status}");
    // Whole comments, with the measured numbers masked (the simulator's timings vary).
    insta::assert_snapshot!("status_comment", masked(&status));
    insta::assert_snapshot!("baseline_report", masked(&baseline));
    let round = rs.story.comment_containing(pr, "## Round 1: ");
    insta::assert_snapshot!("round_report", masked(&round));

    let expected = outcome(&rs);
    assert!(
        expected.contains(&"phase Finished".to_string()),
        "{expected:?}"
    );
    the_same_campaign_with_a_5xx_at_each_write(&expected).await;
}

/// A comment with what varies between runs masked: measured values (decimals), their
/// signs and the verdicts and chart bounds that follow them, durations, commit ids, run
/// ids, and the simulated servers' free ports.
fn masked(text: &str) -> String {
    let masks = [
        (r"\b[0-9a-f]{40}\b", "<sha>"),
        (r"\b[0-9a-f]{10}\b", "<short sha>"),
        (r"--port \d+", "--port <port>"),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:<port>"),
        (r"/actions/runs/\d+", "/actions/runs/<run>"),
        (r#""gap %" -?\d+ --> -?\d+"#, r#""gap %" <lo> --> <hi>"#),
        (r"\bin \d+s\b", "in <n>s"),
        (r"\d+\.\d+", "<x>"),
        // Whether the scripted agent's small patch shows above the simulator's noise.
        (r"[+-]<x>", "±<x>"),
        (r"\b(?:REGRESSED|STALLED|ADVANCED)\b", "<verdict>"),
        (
            r"(\| `ledger\.optimization_justified` \| pass \| )[^|]*\|",
            "$1<reason> |",
        ),
    ];
    let mut out = text.to_string();
    for (pattern, with) in masks {
        out = regex::Regex::new(pattern)
            .unwrap()
            .replace_all(&out, with)
            .into_owned();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_for_human_campaign_holds_and_continues_with_a_committed_quoted_note() {
    let Some(rs) = RealStory::new("real_runner_wait", "octo/real-wait").await else {
        return;
    };
    rs.story
        .open_issue("maint", &form("wait-for-human", 3))
        .await;
    let results = rs.run_dispatched().await;
    assert!(results.iter().all(|r| r.success), "{}", show(&results));
    // The baseline and round 1 ran; the campaign waits for a maintainer.
    assert_eq!(results.len(), 2, "{}", show(&results));
    assert_eq!(rs.record().phase, AppPhase::Waiting);
    let status = rs.story.comment_containing(
        7,
        &format!("### sota-bot campaign `{}`", support_app::CAMPAIGN),
    );
    assert!(status.contains("comment `/sota continue`"), "{status}");

    // Had the App lost its database here, the branch as the runner left it rebuilds the
    // record exactly.
    let before = rs.record();
    let dir = tempfile::tempdir().unwrap();
    let fresh = AppCampaigns::with_date(
        Arc::new(CampaignStore::open(&dir.path().join("rebuilt.sqlite")).unwrap()),
        support_app::date,
    );
    let fork = sota_bot::github::RepoName::parse(&rs.story.repo).unwrap();
    let api = rs.story.apis.for_installation(99);
    let (recovered, skipped) = fresh.recover(api.as_ref(), &fork, 99).await.unwrap();
    assert_eq!(
        recovered,
        vec![support_app::CAMPAIGN.to_string()],
        "{skipped:?}"
    );
    assert_eq!(
        fresh.store().get(support_app::CAMPAIGN).unwrap(),
        Some(before)
    );

    // A hold while waiting: the status says so, and how to lift it.
    rs.story.comment(7, "maint", "/sota hold").await;
    let hold = rs.story.comment_containing(7, "is on hold");
    assert!(hold.contains("`/sota resume`"), "{hold}");
    let status = rs.story.comment_containing(
        7,
        &format!("### sota-bot campaign `{}`", support_app::CAMPAIGN),
    );
    assert!(status.contains("on hold after round 1"), "{status}");
    assert!(rs.run_dispatched().await.is_empty(), "nothing runs on hold");

    // `/sota continue <note>`: round 2 runs, commits the note and the report quotes it.
    let note = "Try a larger CUDA graph batch size first.";
    rs.story
        .comment(7, "maint", &format!("/sota continue {note}"))
        .await;
    let results = rs.run_dispatched().await;
    assert_eq!(results.len(), 1, "one round per continue");
    assert!(results[0].success, "{}", show(&results));
    let git = rs.story.h.fake.story_git(&rs.story.repo);
    let committed = git
        .read(
            support_app::BRANCH,
            &format!("{}/rounds/round-2/maintainer-note.md", support_app::RUN_DIR),
        )
        .expect("the note is committed with round 2");
    assert_eq!(String::from_utf8(committed).unwrap().trim(), note);
    let report = rs.story.comment_containing(rs.pr(), "## Round 2: ");
    assert!(report.contains(&format!("> {note}")), "{report}");
    assert!(
        rs.story.count_comments(rs.pr(), "could not confirm") == 0,
        "the gate confirms every round"
    );
    assert_eq!(rs.record().phase, AppPhase::Waiting);
    assert_check_run_per_round(&rs, 2);
    // Round 1's commit could not name itself; round 2's commit records it.
    let round1 = git.last_commit_touching(
        support_app::BRANCH,
        &format!("{}/rounds/round-1/gate.json", support_app::RUN_DIR),
    );
    assert!(round1.is_some());
    assert_eq!(rs.checkpoint().rounds[0].commit, round1);
    assert_comments_portable(&rs);
}

/// The App's own records of a finished campaign: what must not differ between a story with
/// GitHub faults and one without.
fn outcome(rs: &RealStory) -> Vec<String> {
    let pr = rs.pr();
    let git = rs.story.h.fake.story_git(&rs.story.repo);
    let mut out = vec![
        format!("phase {:?}", rs.record().phase),
        format!("branches {:?}", git.branches()),
        format!("pulls {}", rs.story.h.fake.pulls(&rs.story.repo).len()),
        format!(
            "dispatches {}",
            rs.story.h.fake.dispatched(&rs.story.repo).len()
        ),
        format!("check runs {}", check_runs(rs).len()),
    ];
    for (issue, marker) in [
        (7, "Starting campaign"),
        (7, "### sota-bot campaign"),
        (7, "finished:"),
        (pr, "## Fixed baseline"),
        (pr, "## Round 1: "),
        (pr, "## Final report"),
    ] {
        out.push(format!(
            "#{} {marker}: {}",
            if issue == 7 { "issue" } else { "pr" },
            rs.story.count_comments(issue, marker)
        ));
    }
    out
}

/// The same campaign as the fault-free story, with a 5xx at each GitHub write of its start
/// and of its round transitions: it ends exactly as that story did.
async fn the_same_campaign_with_a_5xx_at_each_write(expected: &[String]) {
    use support_github::Fault;
    let Some(rs) = RealStory::new("real_runner_faults", "octo/real-faults").await else {
        return;
    };
    let repo = rs.story.repo.clone();
    let fail = |method: &str, part: &str, fault: Fault| {
        rs.story
            .h
            .fake
            .inject(method, &format!("/repos/{repo}/{part}"), vec![fault])
    };
    // Every write of the start fails once; the PR is created but its answer is lost.
    fail("POST", "issues/7/comments", Fault::Status(502));
    fail("POST", "git/trees", Fault::Status(502));
    fail("POST", "git/commits", Fault::Status(503));
    fail("POST", "git/refs", Fault::Status(502));
    fail("POST", "pulls", Fault::ActThen502);
    fail("POST", "issues/7/labels", Fault::Status(502));
    // The story's first pull request is #101.
    fail("POST", "issues/101/labels", Fault::Status(502));
    fail(
        "POST",
        "actions/workflows/sota-baseline.yml/dispatches",
        Fault::Status(502),
    );
    rs.story
        .open_issue("maint", &form("auto-continue", 1))
        .await;
    assert_eq!(rs.record().phase, AppPhase::Baseline, "the start finished");
    // Every write of the transitions after the baseline and round 1 fails once too.
    let pr = rs.pr();
    fail("POST", &format!("issues/{pr}/comments"), Fault::Status(502));
    fail("PATCH", "issues/comments/", Fault::Status(502));
    fail(
        "POST",
        "actions/workflows/sota-round.yml/dispatches",
        Fault::ActThen502,
    );
    fail("POST", "check-runs", Fault::Status(502));
    let results = rs.run_dispatched().await;
    assert!(results.iter().all(|r| r.success), "{}", show(&results));
    assert_eq!(outcome(&rs), expected);
    assert_check_run_per_round(&rs, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_fails_twice_holds_the_campaign_with_the_fix_until_sota_retry() {
    let config = "agent:\n  preset: command\n  command: \"echo 'Failed to authenticate. API Error: 401' >&2; exit 1\"\n  secret_names: []\n";
    let Some(rs) =
        RealStory::with_repo_config("real_runner_agent_fails", "octo/real-agent", config).await
    else {
        return;
    };
    rs.story
        .open_issue("maint", &form("auto-continue", 5))
        .await;
    let results = rs.run_dispatched().await;
    assert!(results.iter().all(|r| r.success), "{}", show(&results));
    // The baseline, then two rounds whose agent failed; the campaign waits.
    assert_eq!(results.len(), 3, "{}", show(&results));
    assert_eq!(rs.record().phase, AppPhase::Waiting);
    let pr = rs.pr();
    let report = rs.story.comment_containing(pr, "## Round 2: ");
    // What failed, the agent's own words, and how to go on.
    assert!(
        report.contains("the agent failed in 2 rounds in a row")
            && report.contains("Failed to authenticate. API Error: 401")
            && report.contains("/sota retry"),
        "{report}"
    );
    assert_check_run_per_round(&rs, 2);
    assert_comments_portable(&rs);

    // `/sota retry` runs the agent again in round 3.
    rs.story.comment(7, "maint", "/sota retry").await;
    rs.story.comment_containing(7, "Dispatched round 3");
    let dispatched = rs.story.h.fake.dispatched(&rs.story.repo);
    assert_eq!(dispatched.len(), 4);
    assert_eq!(dispatched[3].body["inputs"]["round"], "3");
}
