//! The GitHub App's campaigns as user stories: a maintainer opens a request issue, the App
//! replies, creates the campaign branch, draft PR and baseline dispatch; workflow runs
//! complete and the App reports, checks and dispatches the next round; maintainers hold,
//! continue, retry and stop; readers are refused. Every request goes through Prism with
//! GitHub's OpenAPI description (request validation on) to a fake that keeps the story
//! repository's branches and files; webhooks are the `@octokit/webhooks-examples` payloads.

mod support_app;
mod support_github;

use std::sync::Arc;

use serde_json::{json, Value};
use sota_bot::app::{AppCampaigns, AppPhase, CampaignStore};
use sota_bot::campaign::state::{CampaignState, Phase, RoundRecord, StopRecord, WinnerRef};
use sota_bot::gate::{GapStatus, GateInput, GateOutcome, ScenarioGapView, Verdict};
use sota_bot::server::handler::InstallationApis;
use support_app::{date, Story, BRANCH, CAMPAIGN, FORM, RUN_DIR};

/// Opens the request and completes its baseline (a committed checkpoint and summary);
/// returns the campaign's pull request.
async fn past_the_baseline(story: &Story) -> u64 {
    story.open_issue("maint", FORM).await;
    story.commit_phase(
        &baseline_state(),
        &[("benchmark/summary.md".into(), "# summary\n".into())],
    );
    story
        .complete_run(&format!("sota {CAMPAIGN} baseline"), "success", None)
        .await;
    story
        .campaigns
        .store()
        .get(CAMPAIGN)
        .unwrap()
        .unwrap()
        .pr_number
        .unwrap()
}

fn gap(scenario: &str, pct: f64) -> ScenarioGapView {
    ScenarioGapView {
        scenario: scenario.into(),
        leader: Some("vLLM `vllm-00`".into()),
        sglang_value: Some(100.0 + pct),
        leader_value: Some(100.0),
        status: if pct < -1.0 {
            GapStatus::Behind { gap_pct: pct }
        } else {
            GapStatus::Ahead { gap_pct: pct }
        },
    }
}

fn baseline_state() -> CampaignState {
    let mut s = CampaignState::new(
        CAMPAIGN,
        "meta-llama/Llama-3.1-8B-Instruct",
        BRANCH,
        RUN_DIR,
        "0000000000000000000000000000000000000000",
    );
    s.phase = Phase::PlanDone;
    for (fw, v) in [("sglang", 90.0), ("vllm", 100.0)] {
        s.winners.push(WinnerRef {
            framework: fw.into(),
            scenario: "chat".into(),
            candidate_id: format!("{fw}-00"),
            value: Some(v),
            server_command: None,
            benchmark_command: None,
        });
    }
    s.gaps = vec![gap("chat", -10.0)];
    s
}

fn after_round(mut s: CampaignState, round: u32, pct: f64) -> CampaignState {
    s.rounds.push(RoundRecord {
        round,
        title: format!("patch {round}"),
        commit: Some(format!("{round:0>40}")),
        measured_commit: None,
        accepted: true,
        verdict: Verdict::Advanced,
        decision: "continue".into(),
        reason: "contract holds and the gap remains".into(),
        geomean_pct: Some(3.0),
        gaps: vec![gap("chat", pct)],
        changed_files: vec!["python/sglang/srt/layers/layernorm.py".into()],
        agent_failed: false,
        agent_cost_usd: Some(0.42),
    });
    s.gaps = vec![gap("chat", pct)];
    s
}

/// A round's gate input as the engine commits it (captured from a simulator-lane round of
/// `sota-bot local demo`), renumbered, with the agent log tail a round run by Claude Code
/// with `--output-format json` commits (its real output).
fn gate_input(round: u32) -> GateInput {
    let mut input: GateInput =
        serde_json::from_str(include_str!("fixtures/app/gate-input.json")).unwrap();
    input.evidence.round = round;
    for t in &mut input.evidence.added_text {
        if t.path.ends_with("/agent-log-tail.txt") {
            t.text = include_str!("fixtures/agent-output/claude-code-2.1.332-output-json.json")
                .to_string();
        }
    }
    input
}

/// The round's gate files: its input, and the runner's answer (`tamper` flips it).
fn gate_files(round: u32, tamper: bool) -> (GateOutcome, Vec<(String, String)>) {
    let input = gate_input(round);
    let mut outcome = input.decide();
    if tamper {
        outcome.accepted = !outcome.accepted;
    }
    let files = vec![
        (
            format!("rounds/round-{round}/gate-input.json"),
            serde_json::to_string(&input).unwrap(),
        ),
        (
            format!("rounds/round-{round}/gate.json"),
            serde_json::to_string_pretty(&outcome).unwrap(),
        ),
    ];
    (outcome, files)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_becomes_a_campaign_whose_rounds_follow_workflow_completions() {
    let Some(story) = Story::new("a_request_becomes_a_campaign", "story/sglang-lifecycle").await
    else {
        return;
    };

    // The repository picks its agent (Claude Code with a model, a turn limit and a budget)
    // and names its upstream, where GitHub's search knows the family's PRs.
    story.h.fake.set_file(
        &story.repo,
        ".github/sota-bot.yml",
        "agent: {preset: claude, model: claude-sonnet-4-5, max_turns: 60, secret_names: [ANTHROPIC_API_KEY]}
budget: {max_agent_cost_usd: 40}
upstream: story/upstream-lifecycle
",
    );
    story.h.fake.set_search_pulls(
        "story/upstream-lifecycle",
        &[
            (9001, "[Llama] faster rope", None),
            (9002, "Llama 3 sampling fix", Some("2025-12-20T00:00:00Z")),
            (9003, "Mixtral router", None),
        ],
    );

    // A maintainer opens the request; the App answers with what it parsed.
    story.open_issue("maint", FORM).await;
    let reply = story.comment_containing(7, "Starting campaign");
    assert!(reply.contains(CAMPAIGN), "{reply}");
    assert!(reply.contains("vLLM"), "{reply}");

    // The branch with the run-directory skeleton, in one commit.
    let trees = story.seen("POST", "git/trees");
    assert_eq!(trees.len(), 1);
    let paths: Vec<&str> = trees[0].body["tree"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&format!("{RUN_DIR}/manifest.md").as_str()),
        "{paths:?}"
    );
    assert!(paths.contains(&format!("{RUN_DIR}/humanize/campaign-input.json").as_str()));
    // Phase 0.5's upstream half rides in the same commit, searched with the App's token.
    let upstream = trees[0].body["tree"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == json!(format!("{RUN_DIR}/history/upstream-prs.json")))
        .expect("the upstream PRs are committed with the skeleton");
    let upstream: Value = serde_json::from_str(upstream["content"].as_str().unwrap()).unwrap();
    assert_eq!(upstream["repo"], json!("story/upstream-lifecycle"));
    let numbers: Vec<u64> = upstream["prs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, vec![9001, 9002], "{upstream}");
    let searches = story.h.fake.seen("repo%3Astory%2Fupstream-lifecycle");
    assert_eq!(searches.len(), 2);
    assert!(searches
        .iter()
        .all(|s| s.authorization.as_deref() == Some("Bearer inst-token")));
    assert!(story
        .h
        .fake
        .branches(&story.repo)
        .contains(&BRANCH.to_string()));
    let refs = story.seen("POST", "git/refs");
    assert_eq!(refs[0].body["ref"], json!(format!("refs/heads/{BRANCH}")));

    // A draft PR, labels, and the baseline dispatch on the campaign branch.
    let pulls = story.seen("POST", "pulls");
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0].body["draft"], json!(true));
    assert_eq!(pulls[0].body["head"], json!(BRANCH));
    assert!(!story.seen("POST", "issues/7/labels").is_empty());
    let d = story.dispatches();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0]["ref"], json!(BRANCH));
    assert_eq!(d[0]["inputs"]["campaign_id"], json!(CAMPAIGN));
    assert_eq!(d[0]["inputs"]["run_dir"], json!(RUN_DIR));
    assert_eq!(d[0]["return_run_details"], json!(true));
    let status = story.comment_containing(7, "running the fixed baseline");
    assert!(status.contains(BRANCH), "{status}");
    assert_eq!(story.phase(), AppPhase::Baseline);
    let pr = story
        .campaigns
        .store()
        .get(CAMPAIGN)
        .unwrap()
        .unwrap()
        .pr_number
        .unwrap();

    // The baseline finishes: its summary goes to the PR and round 1 is dispatched.
    story.commit_phase(
        &baseline_state(),
        &[(
            "benchmark/summary.md".into(),
            "# Fixed benchmark summary\n\n| chat | vLLM ahead |\n".into(),
        )],
    );
    let baseline_run = story
        .complete_run(&format!("sota {CAMPAIGN} baseline"), "success", None)
        .await;
    story.comment_containing(pr, "## Fixed baseline");
    let d = story.dispatches();
    assert_eq!(d.len(), 2, "{d:?}");
    assert_eq!(d[1]["inputs"]["round"], json!("1"));
    assert!(story.seen("POST", "actions/workflows/sota-round.yml").len() == 1);

    // GitHub redelivers the completion (or reconciliation finds it): nothing is dispatched twice.
    story
        .complete_run(
            &format!("sota {CAMPAIGN} baseline"),
            "success",
            Some(baseline_run),
        )
        .await;
    assert_eq!(story.dispatches().len(), 2);

    // Round 1 finishes: a check run on the round commit, the PR report with the Mermaid
    // chart, the status comment, and round 2.
    let s1 = after_round(baseline_state(), 1, -6.0);
    let (gate1, mut files) = gate_files(1, false);
    files.push((
        "rounds/round-1/report.md".into(),
        "## Round 1: patch 1\n\n**Decision: continue**\n\n![gap over rounds](gap-chart.svg)\n"
            .into(),
    ));
    story.commit_phase(&s1, &files);
    story
        .complete_run(&format!("sota {CAMPAIGN} round 1"), "success", None)
        .await;
    let checks = story.seen("POST", "check-runs");
    assert_eq!(checks.len(), 1);
    // On the round's commit: the newest on the branch that wrote its gate.json (the
    // checkpoint cannot name it; here it even names another commit).
    let round_commit = story
        .h
        .fake
        .story_git(&story.repo)
        .last_commit_touching(BRANCH, &format!("{RUN_DIR}/rounds/round-1/gate.json"))
        .unwrap();
    assert_ne!(round_commit, format!("{:0>40}", 1));
    assert_eq!(checks[0].body["head_sha"], json!(round_commit));
    let expected = if gate1.accepted { "success" } else { "failure" };
    assert_eq!(checks[0].body["conclusion"], json!(expected));
    let summary = checks[0].body["output"]["summary"].as_str().unwrap();
    for check in &gate1.checks {
        assert!(summary.contains(&check.id), "{summary}");
    }
    assert!(!summary.contains("could not confirm"), "{summary}");
    let report = story.comment_containing(pr, "## Round 1: patch 1");
    assert!(report.contains("```mermaid\nxychart-beta"), "{report}");
    assert!(!report.contains("![gap over rounds]"), "{report}");
    // The round committed no SVG chart: no link to one.
    assert!(!report.contains("gap-chart.svg"), "{report}");
    assert_eq!(story.dispatches().len(), 3);
    assert_eq!(story.dispatches()[2]["inputs"]["round"], json!("2"));
    // Rounds carry the repository's agent settings and time budget.
    let inputs = &story.dispatches()[2]["inputs"];
    assert_eq!(inputs["agent_preset"], json!("claude"));
    assert_eq!(inputs["agent_model"], json!("claude-sonnet-4-5"));
    assert_eq!(inputs["agent_max_turns"], json!("60"));
    assert_eq!(inputs["agent_max_cost_usd"], json!("40"));
    assert!(inputs.get("agent_command").is_none(), "{inputs}");
    assert_eq!(inputs["agent_secret_names"], json!("ANTHROPIC_API_KEY"));
    assert_eq!(inputs["job_timeout_minutes"], json!("360"));
    assert_eq!(inputs["phase_timeout_minutes"], json!("330"));
    // Every input the App sends is one the installed workflow declares.
    assert_inputs_declared(&story.dispatches()[0], "sota-baseline.yml");
    assert_inputs_declared(&story.dispatches()[2], "sota-round.yml");

    // A reader cannot stop it.
    story.comment(7, "reader", "/sota stop").await;
    story.comment_containing(7, "only people with write, maintain or admin permission");
    assert_eq!(story.phase(), AppPhase::Round);

    // A maintainer holds it: round 2 finishes and nothing is dispatched.
    story.comment(7, "maint", "/sota hold").await;
    story.comment_containing(7, "is on hold");
    let s2 = after_round(s1.clone(), 2, -3.0);
    let (_, mut files) = gate_files(2, false);
    files.push((
        "rounds/round-2/report.md".into(),
        "## Round 2: patch 2\n\n![gap over rounds](gap-chart.svg)\n".into(),
    ));
    story.commit_phase(&s2, &files);
    story
        .complete_run(&format!("sota {CAMPAIGN} round 2"), "success", None)
        .await;
    assert_eq!(story.dispatches().len(), 3);
    assert_eq!(story.phase(), AppPhase::Waiting);
    // The round 1 report is folded as outdated.
    let old = story.comment_containing(pr, "## Round 1: patch 1");
    assert!(old.contains("Superseded by round 2"), "{old}");

    // `/sota continue <note>` dispatches round 3 with the note for its agent.
    let note = "Try the fused MoE gate + topk softmax before touching attention.";
    story
        .comment(7, "maint", &format!("/sota continue {note}"))
        .await;
    story.comment_containing(7, "Dispatched round 3");
    story.comment_containing(7, "Your note goes into its agent prompt.");
    assert_eq!(story.dispatches().len(), 4);
    assert_eq!(story.dispatches()[3]["inputs"]["round"], json!("3"));
    assert_eq!(
        story.dispatches()[3]["inputs"]["maintainer_note"],
        json!(note)
    );
    assert_inputs_declared(&story.dispatches()[3], "sota-round.yml");
    assert!(story.dispatches()[..3]
        .iter()
        .all(|d| d["inputs"].get("maintainer_note").is_none()));

    // Round 3's workflow fails: retried within the budget, then it waits for `/sota retry`.
    story
        .complete_run(&format!("sota {CAMPAIGN} round 3"), "failure", None)
        .await;
    assert_eq!(story.dispatches().len(), 5);
    story.comment_containing(pr, "retrying (1/2)");
    story
        .complete_run(&format!("sota {CAMPAIGN} round 3"), "failure", None)
        .await;
    story
        .complete_run(&format!("sota {CAMPAIGN} round 3"), "failure", None)
        .await;
    assert_eq!(story.dispatches().len(), 6);
    assert_eq!(story.phase(), AppPhase::Failed);
    story.comment_containing(pr, "/sota retry");
    story.comment(7, "maint", "/sota retry").await;
    assert_eq!(story.dispatches().len(), 7);
    // Retries of round 3 carry its note.
    assert!(story.dispatches()[4..7]
        .iter()
        .all(|d| d["inputs"]["maintainer_note"] == json!(note)));

    // Round 3 reaches SOTA: final report, PR ready for review, issue told.
    let mut s3 = after_round(s2, 3, 2.0);
    s3.phase = Phase::Stopped;
    s3.stop = Some(StopRecord {
        after_round: 3,
        reason: "SGLang beats the best SLA-passing selected competitor in every scenario".into(),
        reached_sota: true,
        unmeasurable: false,
    });
    let (_, mut files) = gate_files(3, false);
    files.push((
        "rounds/round-3/report.md".into(),
        "## Round 3: patch 3\n".into(),
    ));
    files.push((
        "final_report.md".into(),
        "# Final report\n\nSGLang reached SOTA.\n".into(),
    ));
    story.commit_phase(&s3, &files);

    story
        .complete_run(&format!("sota {CAMPAIGN} round 3"), "success", None)
        .await;
    story.comment_containing(pr, "# Final report");
    assert!(!story.h.fake.seen("/graphql").is_empty(), "PR marked ready");
    story.comment_containing(7, "finished: SGLang beats");
    assert_eq!(story.phase(), AppPhase::Finished);
    assert_eq!(story.dispatches().len(), 7);
    let status = story.comment_containing(7, "### sota-bot campaign");
    assert!(status.contains("| status | finished |"), "{status}");
    // One status comment, edited in place all along.
    assert_eq!(story.count_comments(7, "### sota-bot campaign"), 1);
    let _ = &story.apis;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_missing_inputs_gets_the_list_and_no_campaign() {
    let Some(story) = Story::new("a_request_missing_inputs", "story/sglang-missing").await else {
        return;
    };
    story
        .open_issue("maint", "### GPU model\n\nH100\n\n### GPU count\n\n1\n")
        .await;
    let reply = story.comment_containing(7, "I cannot start this campaign yet");
    assert!(reply.to_lowercase().contains("model"), "{reply}");
    assert!(story.seen("POST", "git/refs").is_empty());
    assert!(story.dispatches().is_empty());

    // A reader's request is refused outright.
    let Some(other) = Story::new("a_request_missing_inputs", "story/sglang-reader").await else {
        return;
    };
    other.open_issue("reader", FORM).await;
    other.comment_containing(7, "only people with write, maintain or admin permission");
    assert!(other.dispatches().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_completion_is_repaired_by_reconciliation_without_double_dispatch() {
    let Some(story) = Story::new("a_lost_completion", "story/sglang-reconcile").await else {
        return;
    };
    story.open_issue("maint", FORM).await;
    assert_eq!(story.dispatches().len(), 1);
    story.commit_phase(
        &baseline_state(),
        &[("benchmark/summary.md".into(), "# summary\n".into())],
    );
    // The baseline run completed on GitHub, but its webhook never arrived.
    story.h.fake.add_run(
        &story.repo,
        "sota-baseline.yml",
        8801,
        &format!("sota {CAMPAIGN} baseline"),
        BRANCH,
        "success",
    );
    let handled = story.campaigns.reconcile(&story.apis).await.unwrap();
    assert_eq!(handled, 1);
    assert_eq!(story.dispatches().len(), 2, "round 1 dispatched");
    // A second pass, and the late webhook itself, change nothing.
    assert_eq!(story.campaigns.reconcile(&story.apis).await.unwrap(), 0);
    story
        .complete_run(&format!("sota {CAMPAIGN} baseline"), "success", Some(8801))
        .await;
    assert_eq!(story.dispatches().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_answer_the_server_cannot_confirm_stops_automatic_rounds() {
    let Some(story) = Story::new("a_gate_answer", "story/sglang-tamper").await else {
        return;
    };
    let pr = past_the_baseline(&story).await;
    assert_eq!(story.dispatches().len(), 2);
    // The committed gate.json claims the opposite of what its own evidence decides.
    let (_, mut files) = gate_files(1, true);
    files.push((
        "rounds/round-1/report.md".into(),
        "## Round 1: patch 1\n".into(),
    ));
    story.commit_phase(&after_round(baseline_state(), 1, -6.0), &files);
    story
        .complete_run(&format!("sota {CAMPAIGN} round 1"), "success", None)
        .await;
    let checks = story.seen("POST", "check-runs");
    assert_eq!(
        checks[0].body["conclusion"],
        json!("failure"),
        "{:#}",
        checks[0].body
    );
    assert!(checks[0].body["output"]["summary"]
        .as_str()
        .unwrap()
        .contains("could not confirm"));
    story.comment_containing(pr, "server-side gate could not confirm");
    assert_eq!(story.dispatches().len(), 2, "no round 2");
    assert_eq!(story.phase(), AppPhase::Waiting);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_that_committed_nothing_waits_and_its_warning_folds_once_a_rerun_is_confirmed() {
    let Some(story) = Story::new("a_round_that_committed_nothing", "story/sglang-empty").await
    else {
        return;
    };
    let pr = past_the_baseline(&story).await;
    // Round 1's job succeeds but commits nothing: said plainly, no report, no check run.
    story
        .complete_run(&format!("sota {CAMPAIGN} round 1"), "success", None)
        .await;
    let warning = story.comment_containing(pr, "committed no round 1");
    assert!(warning.contains("`/sota continue`"), "{warning}");
    assert_eq!(story.count_comments(pr, "committed no report"), 0);
    assert!(story.seen("POST", "check-runs").is_empty());
    assert_eq!(story.phase(), AppPhase::Waiting);

    // `/sota continue` runs round 1 again; confirmed this time, the warning is folded.
    story.comment(7, "maint", "/sota continue").await;
    let dispatches = story.dispatches();
    assert_eq!(dispatches.len(), 3);
    assert_eq!(dispatches[2]["inputs"]["round"], json!("1"));
    let (_, mut files) = gate_files(1, false);
    files.push((
        "rounds/round-1/report.md".into(),
        "## Round 1: patch 1\n".into(),
    ));
    story.commit_phase(&after_round(baseline_state(), 1, -6.0), &files);
    story
        .complete_run(&format!("sota {CAMPAIGN} round 1"), "success", None)
        .await;
    let folded = story.comment_containing(pr, "committed no round 1");
    assert!(
        folded.contains("<details><summary>Resolved: round 1 ran again"),
        "{folded}"
    );
    assert_eq!(story.count_comments(pr, "committed no round 1"), 1);
    assert_eq!(story.phase(), AppPhase::Round, "round 2 dispatched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_whose_job_gave_up_is_finished_by_reconciliation_never_stranded() {
    use support_github::Fault;
    let Some(story) =
        Story::with_attempts("a_start_whose_job_gave_up", "story/sglang-gaveup", 2).await
    else {
        return;
    };
    let repo = story.repo.clone();
    // Opening the PR fails on both attempts: the job is dead-lettered after the branch.
    story.h.fake.inject(
        "POST",
        &format!("/repos/{repo}/pulls"),
        vec![Fault::Status(502), Fault::Status(502)],
    );
    story.open_issue("maint", FORM).await;
    let record = story.campaigns.store().get(CAMPAIGN).unwrap().unwrap();
    assert_eq!(record.phase, AppPhase::Starting);
    assert_eq!(record.pr_number, None);
    assert!(story.h.fake.branches(&repo).contains(&BRANCH.to_string()));
    assert!(story.dispatches().is_empty());
    // The status says it is starting, not running the baseline.
    let status = sota_bot::app::render::status_comment(&record, None);
    assert!(status.contains("starting"), "{status}");

    // Reconciliation resumes at the first step not done: one PR, one dispatch, the status.
    let handled = story.campaigns.reconcile(&story.apis).await.unwrap();
    assert_eq!(handled, 1);
    assert_eq!(story.phase(), AppPhase::Baseline);
    assert_eq!(story.h.fake.pulls(&repo).len(), 1);
    assert_eq!(story.dispatches().len(), 1);
    assert_eq!(
        story.seen("POST", "git/refs").len(),
        1,
        "the branch was not made again"
    );
    story.comment_containing(7, "running the fixed baseline");
    // Nothing left to resume: a second pass does nothing.
    story.campaigns.reconcile(&story.apis).await.unwrap();
    assert_eq!(story.dispatches().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_is_rebuilt_from_the_campaign_branches() {
    let Some(story) = Story::new("a_lost_database", "story/sglang-recover").await else {
        return;
    };
    past_the_baseline(&story).await;
    // Round 1 is running on GitHub when the database disappears.
    story.h.fake.add_run(
        &story.repo,
        "sota-round.yml",
        9901,
        &format!("sota {CAMPAIGN} round 1"),
        BRANCH,
        "in_progress",
    );
    let before = story.campaigns.store().get(CAMPAIGN).unwrap().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fresh = AppCampaigns::with_date(
        Arc::new(CampaignStore::open(&dir.path().join("new.sqlite")).unwrap()),
        date,
    );
    let fork = sota_bot::github::RepoName::parse(&story.repo).unwrap();
    let api = story.apis.for_installation(99);
    let (recovered, skipped) = fresh.recover(api.as_ref(), &fork, 99).await.unwrap();
    assert_eq!(recovered, vec![CAMPAIGN.to_string()], "{skipped:?}");
    let after = fresh.store().get(CAMPAIGN).unwrap().unwrap();
    assert_eq!(
        after, before,
        "the rebuilt record routes exactly like the lost one"
    );
    // Running it again changes nothing.
    let (again, _) = fresh.recover(api.as_ref(), &fork, 99).await.unwrap();
    assert!(again.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_faults_never_duplicate_a_dispatch_or_a_comment() {
    use support_github::Fault;
    let Some(story) = Story::new("github_faults", "story/sglang-faults").await else {
        return;
    };
    let repo = story.repo.clone();
    // The request's reply hits a 500 (nothing created), the labels a secondary rate limit,
    // the config read a 429: the job is retried and everything happens once.
    story.h.fake.inject(
        "POST",
        &format!("/repos/{repo}/issues/7/comments"),
        vec![Fault::Status(500)],
    );
    story.h.fake.inject(
        "POST",
        &format!("/repos/{repo}/issues/7/labels"),
        vec![Fault::RetryAfter403(1)],
    );
    story.h.fake.inject(
        "GET",
        &format!("/repos/{repo}/contents/.github"),
        vec![Fault::TooMany429],
    );
    story.open_issue("maint", FORM).await;
    assert_eq!(story.dispatches().len(), 1);
    assert_eq!(story.seen("POST", "git/refs").len(), 1, "one branch");
    assert_eq!(story.seen("POST", "pulls").len(), 1, "one PR");
    assert_eq!(story.count_comments(7, "Starting campaign"), 1);

    // The round-1 dispatch reaches GitHub but its answer is lost (502): the retried job sees
    // the queued run and does not dispatch again.
    story.commit_phase(
        &baseline_state(),
        &[("benchmark/summary.md".into(), "# summary\n".into())],
    );
    story.h.fake.inject(
        "POST",
        &format!("/repos/{repo}/actions/workflows/sota-round.yml/dispatches"),
        vec![Fault::ActThen502],
    );
    story
        .complete_run(&format!("sota {CAMPAIGN} baseline"), "success", None)
        .await;
    let rounds = story.seen("POST", "actions/workflows/sota-round.yml/dispatches");
    assert_eq!(rounds.len(), 1, "round 1 dispatched once");
    assert_eq!(story.phase(), AppPhase::Round);
    let pr = story
        .campaigns
        .store()
        .get(CAMPAIGN)
        .unwrap()
        .unwrap()
        .pr_number
        .unwrap();
    assert_eq!(story.count_comments(pr, "## Fixed baseline"), 1);

    // Round 1's check run is created but its answer is lost: the retried job finds it.
    let (_, mut files) = gate_files(1, false);
    files.push((
        "rounds/round-1/report.md".into(),
        "## Round 1: patch 1\n".into(),
    ));
    story.commit_phase(&after_round(baseline_state(), 1, -6.0), &files);
    story.h.fake.inject(
        "POST",
        &format!("/repos/{repo}/check-runs"),
        vec![Fault::ActThen502],
    );
    story
        .complete_run(&format!("sota {CAMPAIGN} round 1"), "success", None)
        .await;
    assert_eq!(story.seen("POST", "check-runs").len(), 1, "one check run");
    assert_eq!(story.count_comments(pr, "## Round 1: patch 1"), 1);

    // What the dashboard reads was kept as the App worked: the repository is public (the
    // issue event said so), the checkpoint of round 1, each run's 30 minutes on its one-GPU
    // runner once (retried jobs did not add them again), and the agent's own usage report.
    let view = story
        .campaigns
        .store()
        .dashboard_view(CAMPAIGN)
        .unwrap()
        .unwrap();
    assert_eq!(view.private, Some(false));
    assert_eq!(view.checkpoint.as_ref().map(|s| s.rounds.len()), Some(1));
    assert_eq!(view.usage[&0].gpu_minutes, Some(30.0));
    assert_eq!(view.usage[&1].gpu_minutes, Some(30.0));
    let agent = view.usage[&1].agent.as_ref().expect("agent usage recorded");
    assert_eq!((agent.cost_usd, agent.turns), (Some(0.013), Some(2)));
    assert_eq!(
        story
            .seen("POST", "actions/workflows/sota-round.yml/dispatches")
            .len(),
        2,
        "round 2 dispatched once"
    );
}

/// Fails when the dispatch sends an input the installed workflow `file` does not declare
/// (GitHub refuses such a dispatch with 422).
fn assert_inputs_declared(dispatch: &serde_json::Value, file: &str) {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("templates/workflows")
            .join(file),
    )
    .unwrap();
    let workflow: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let declared = &workflow["on"]["workflow_dispatch"]["inputs"];
    for key in dispatch["inputs"].as_object().unwrap().keys() {
        assert!(
            !declared[key.as_str()].is_null(),
            "{file} does not declare input `{key}`"
        );
    }
}

/// A round whose agent failed (nothing measured), committed as the runner commits it.
fn failed_agent_round(
    mut s: CampaignState,
    round: u32,
    prior_failures: u32,
) -> (CampaignState, Vec<(String, String)>) {
    use sota_bot::gate::{AgentFailure, AgentReport, Decision};
    let mut input = gate_input(round);
    input.evidence.round_rows.clear();
    input.evidence.geomean_improvement_pct = None;
    input.evidence.prior_agent_failures = prior_failures;
    input.evidence.agent = Some(AgentReport {
        agent: "claude (max 100 turns)".into(),
        outcome: "exit 1".into(),
        failure: Some(AgentFailure::Exited {
            code: 1,
            message: Some("Failed to authenticate. API Error: 401".into()),
        }),
        log_tail: "--- agent error ---\nFailed to authenticate. API Error: 401\n".into(),
        ..AgentReport::default()
    });
    let outcome = input.decide();
    s.rounds.push(RoundRecord {
        round,
        title: "the agent failed".into(),
        commit: Some(format!("{round:0>40}")),
        measured_commit: None,
        accepted: false,
        verdict: outcome.verdict,
        decision: outcome.decision.label().into(),
        reason: outcome.reason.clone(),
        geomean_pct: None,
        gaps: s.gaps.clone(),
        changed_files: vec![],
        agent_failed: true,
        agent_cost_usd: Some(0.0),
    });
    s.waiting_for_human = matches!(outcome.decision, Decision::WaitForHuman);
    let report = format!(
        "## Round {round}: the agent failed\n\n**Decision: {}** — {}\n",
        outcome.decision.label(),
        outcome.reason
    );
    let files = vec![
        (
            format!("rounds/round-{round}/gate-input.json"),
            serde_json::to_string(&input).unwrap(),
        ),
        (
            format!("rounds/round-{round}/gate.json"),
            serde_json::to_string_pretty(&outcome).unwrap(),
        ),
        (format!("rounds/round-{round}/report.md"), report),
    ];
    (s, files)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_failed_agent_rounds_hold_the_campaign_until_sota_retry() {
    let Some(story) = Story::new("two_failed_agent_rounds", "story/sglang-agent-hold").await else {
        return;
    };
    let pr = past_the_baseline(&story).await;
    assert_eq!(story.dispatches().len(), 2);

    // Round 1: the agent fails; the server-side gate agrees and round 2 is dispatched.
    let (s1, files) = failed_agent_round(baseline_state(), 1, 0);
    story.commit_phase(&s1, &files);
    story
        .complete_run(&format!("sota {CAMPAIGN} round 1"), "success", None)
        .await;
    assert_eq!(story.dispatches().len(), 3);
    assert_eq!(story.dispatches()[2]["inputs"]["round"], json!("2"));
    let report = story.comment_containing(pr, "## Round 1: the agent failed");
    assert!(
        report.contains("next round runs the agent again"),
        "{report}"
    );

    // Round 2 fails too: the campaign waits, saying what failed and how to fix it.
    let (s2, files) = failed_agent_round(s1, 2, 1);
    story.commit_phase(&s2, &files);
    story
        .complete_run(&format!("sota {CAMPAIGN} round 2"), "success", None)
        .await;
    assert_eq!(story.dispatches().len(), 3, "no round 3 while held");
    assert_eq!(story.phase(), AppPhase::Waiting);
    let report = story.comment_containing(pr, "## Round 2: the agent failed");
    assert!(
        report.contains("the agent failed in 2 rounds in a row")
            && report.contains("API key")
            && report.contains("/sota retry"),
        "{report}"
    );
    assert!(!story.seen("POST", "check-runs").is_empty());

    // `/sota retry` runs the agent again in round 3.
    story.comment(7, "maint", "/sota retry").await;
    story.comment_containing(7, "Dispatched round 3");
    assert_eq!(story.dispatches().len(), 4);
    assert_eq!(story.dispatches()[3]["inputs"]["round"], json!("3"));
    assert_eq!(story.phase(), AppPhase::Round);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_that_only_look_like_campaign_steps_are_ignored() {
    let Some(story) = Story::new("spoofed_completions", "story/sglang-spoof").await else {
        return;
    };
    story.open_issue("maint", FORM).await;
    assert_eq!(story.dispatches().len(), 1);
    let title = format!("sota {CAMPAIGN} baseline");
    let comments_before = story.comments(7).len();
    for (event, path, head) in [
        // An outside pull request's own workflow, titled and branched like the baseline.
        (
            "pull_request",
            ".github/workflows/gpu-pwn.yml",
            "mallory/sglang",
        ),
        (
            "pull_request",
            ".github/workflows/sota-baseline.yml",
            "mallory/sglang",
        ),
        // A dispatch of another workflow, or a push, on the fork.
        (
            "workflow_dispatch",
            ".github/workflows/other.yml",
            story.repo.as_str(),
        ),
        (
            "push",
            ".github/workflows/sota-baseline.yml",
            story.repo.as_str(),
        ),
        // The right workflow, but code from another repository.
        (
            "workflow_dispatch",
            ".github/workflows/sota-baseline.yml",
            "mallory/sglang",
        ),
    ] {
        story.spoof_completion(&title, event, path, head).await;
        assert_eq!(story.phase(), AppPhase::Baseline, "{event} {path} {head}");
        assert_eq!(story.dispatches().len(), 1, "{event} {path} {head}");
    }
    assert_eq!(story.comments(7).len(), comments_before, "nothing reported");
    // The real completion still counts.
    story.commit_phase(
        &baseline_state(),
        &[("benchmark/summary.md".into(), "# summary\n".into())],
    );
    story.complete_run(&title, "success", None).await;
    assert_eq!(story.dispatches().len(), 2, "round 1 dispatched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outsiders_request_starts_only_on_a_writers_explicit_start() {
    let Some(story) = Story::new("outsiders_request", "story/sglang-outsider").await else {
        return;
    };
    // A reader opens the request; a maintainer edits it (a typo): neither starts it.
    story.issue_event("opened", "reader", "reader", FORM).await;
    story.issue_event("edited", "reader", "maint", FORM).await;
    let reply = story.comment_containing(7, "This request's text is by @reader");
    assert!(reply.contains("/sota start"), "{reply}");
    assert!(story.dispatches().is_empty());
    assert!(story.seen("POST", "git/refs").is_empty());
    // A reader cannot start it either.
    story
        .comment_on_request("reader", "/sota start", "reader", FORM)
        .await;
    assert!(story.dispatches().is_empty());
    // A maintainer who read it starts it explicitly; the reply says whose text it is.
    story
        .comment_on_request("maint", "/sota start", "reader", FORM)
        .await;
    let started = story.comment_containing(7, "Starting campaign");
    assert!(
        started.contains("Request text by @reader, started by @maint"),
        "{started}"
    );
    assert_eq!(story.dispatches().len(), 1);
    // Starting again changes nothing.
    story
        .comment_on_request("maint", "/sota start", "reader", FORM)
        .await;
    assert_eq!(story.dispatches().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_where_the_requester_cannot_write_is_refused() {
    let Some(story) = Story::new("fork_permission", "story/sglang-forkperm").await else {
        return;
    };
    // The repository config points the campaign at another repository of the installation,
    // where `maint` has no role.
    story.h.fake.story_repo("story/other-repo", &["main"]);
    story
        .h
        .fake
        .set_repo_permission("story/other-repo", "maint", None);
    story.h.fake.set_file(
        &story.repo,
        ".github/sota-bot.yml",
        "fork: story/other-repo\n",
    );
    story.open_issue("maint", FORM).await;
    let reply = story.comment_containing(7, "names the fork story/other-repo");
    assert!(reply.contains("@maint has no write"), "{reply}");
    assert!(story.dispatches().is_empty());
    assert!(story.h.fake.seen("/repos/story/other-repo/git/").is_empty());
}
