//! The GitHub App's campaigns as user stories: a maintainer opens a request issue, the App
//! replies, creates the campaign branch, draft PR and baseline dispatch; workflow runs
//! complete and the App reports, checks and dispatches the next round; maintainers hold,
//! continue, retry and stop; readers are refused. Every request goes through Prism with
//! GitHub's OpenAPI description (request validation on) to a fake that keeps the story
//! repository in a real git repository; webhooks are the `@octokit/webhooks-examples`
//! payloads. Every dispatched workflow is run by the real runner on the simulator lane
//! (`support_app::real`); the few stories about a runner that lies or is broken say so.

mod support_app;
mod support_exec;
mod support_github;
mod support_runner;
mod support_toy;

use std::sync::Arc;

use serde_json::{json, Value};
use sota_bot::app::{AppCampaigns, AppPhase, CampaignStore};
use sota_bot::gate::GateOutcome;
use sota_bot::server::handler::InstallationApis;
use support_app::real::{RealStory, REPO_CONFIG};
use support_app::{date, form, Story, BRANCH, CAMPAIGN, RUN_DIR};
use support_github::Fault;

/// The fork's config for the first story: Claude Code with a model, a turn limit and a
/// budget, and the upstream where GitHub's search knows the family's PRs.
const CLAUDE_CONFIG: &str = "\
agent: {preset: claude, model: claude-sonnet-4-5, max_turns: 60, secret_names: [ANTHROPIC_API_KEY]}
budget: {max_agent_cost_usd: 40}
upstream: story/upstream-lifecycle
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_becomes_a_branch_a_draft_pr_and_a_baseline_whose_report_dispatches_round_1() {
    let Some(rs) = RealStory::with_repo_config(
        "a_request_becomes_a_campaign",
        "story/sglang-lifecycle",
        CLAUDE_CONFIG,
    )
    .await
    else {
        return;
    };
    rs.h.fake.set_search_pulls(
        "story/upstream-lifecycle",
        &[
            (9001, "[Llama] faster rope", None),
            (9002, "Llama 3 sampling fix", Some("2025-12-20T00:00:00Z")),
            (9003, "Mixtral router", None),
        ],
    );

    // A maintainer opens the request; the App answers with what it parsed.
    rs.open_request("maint", &form("auto-continue", 3)).await;
    let reply = rs.comment_containing(7, "Starting campaign");
    assert!(reply.contains(CAMPAIGN), "{reply}");
    assert!(reply.contains("vLLM"), "{reply}");
    the_branch_holds_the_skeleton_and_the_upstream_prs(&rs);

    // A draft PR, labels, and the baseline dispatch on the campaign branch.
    let pulls = rs.seen("POST", "pulls");
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0].body["draft"], json!(true));
    assert_eq!(pulls[0].body["head"], json!(BRANCH));
    assert!(!rs.seen("POST", "issues/7/labels").is_empty());
    let d = rs.dispatches();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0]["ref"], json!(BRANCH));
    assert_eq!(d[0]["inputs"]["campaign_id"], json!(CAMPAIGN));
    assert_eq!(d[0]["inputs"]["run_dir"], json!(RUN_DIR));
    assert_eq!(d[0]["return_run_details"], json!(true));
    assert_inputs_declared(&d[0], "sota-baseline.yml");
    let status = rs.comment_containing(7, "running the fixed baseline");
    assert!(status.contains(BRANCH), "{status}");
    assert_eq!(rs.phase(), AppPhase::Baseline);

    // The baseline finishes: its summary goes to the PR and round 1 is dispatched.
    let baseline = rs.finish_round(0).await;
    rs.comment_containing(rs.pr(), "## Fixed baseline\n\n### Benchmark summary");
    assert_eq!(rs.seen("POST", "actions/workflows/sota-round.yml").len(), 1);
    let round1 = rs.pending();
    assert_eq!(round1.len(), 1);
    assert_eq!(round1[0].body["inputs"]["round"], json!("1"));
    // GitHub redelivers the completion (or reconciliation finds it): nothing twice.
    rs.complete(&baseline).await;
    assert_eq!(rs.dispatches().len(), 2);
    assert_eq!(rs.count_comments(rs.pr(), "## Fixed baseline"), 1);

    // Rounds carry the repository's agent settings and time budget, each an input the
    // installed workflow declares.
    let inputs = &round1[0].body["inputs"];
    assert_eq!(inputs["agent_preset"], json!("claude"));
    assert_eq!(inputs["agent_model"], json!("claude-sonnet-4-5"));
    assert_eq!(inputs["agent_max_turns"], json!("60"));
    assert_eq!(inputs["agent_max_cost_usd"], json!("40"));
    assert!(inputs.get("agent_command").is_none(), "{inputs}");
    assert_eq!(inputs["agent_secret_names"], json!("ANTHROPIC_API_KEY"));
    assert_eq!(inputs["job_timeout_minutes"], json!("360"));
    assert_eq!(inputs["phase_timeout_minutes"], json!("330"));
    assert_inputs_declared(&round1[0].body, "sota-round.yml");
    rs.assert_comments_portable();
}

/// The campaign branch with the run-directory skeleton, made in one commit, and phase 0.5's
/// upstream half riding in it, searched with the App's installation token.
fn the_branch_holds_the_skeleton_and_the_upstream_prs(rs: &RealStory) {
    let trees = rs.seen("POST", "git/trees");
    assert_eq!(trees.len(), 1);
    let tree = trees[0].body["tree"].as_array().unwrap();
    let paths: Vec<&str> = tree.iter().map(|e| e["path"].as_str().unwrap()).collect();
    for file in ["manifest.md", "humanize/campaign-input.json"] {
        assert!(
            paths.contains(&format!("{RUN_DIR}/{file}").as_str()),
            "{paths:?}"
        );
    }
    let upstream = tree
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
    let searches = rs.h.fake.seen("repo%3Astory%2Fupstream-lifecycle");
    assert_eq!(searches.len(), 2);
    assert!(searches
        .iter()
        .all(|s| s.authorization.as_deref() == Some("Bearer inst-token")));
    assert!(rs.h.fake.branches(&rs.repo).contains(&BRANCH.to_string()));
    let refs = rs.seen("POST", "git/refs");
    assert_eq!(refs[0].body["ref"], json!(format!("refs/heads/{BRANCH}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_follow_completions_through_a_hold_a_noted_continue_and_failed_runs_to_the_final_report(
) {
    let Some(rs) = RealStory::new("rounds_follow_completions", "story/sglang-rounds").await else {
        return;
    };
    rs.open_request("maint", &form("auto-continue", 3)).await;
    rs.finish_round(0).await;
    let pr = rs.pr();

    // Round 1 finishes: a check run with the gate's verdict on the round's commit, the PR
    // report with the Mermaid chart, and round 2.
    rs.finish_round(1).await;
    rs.assert_check_run_per_round(1);
    let gate: GateOutcome =
        serde_json::from_str(&rs.committed("rounds/round-1/gate.json").unwrap()).unwrap();
    let check = &rs.check_runs()[0];
    let summary = check["output"]["summary"].as_str().unwrap();
    for c in &gate.checks {
        assert!(summary.contains(&c.id), "{summary}");
    }
    assert!(!summary.contains("could not confirm"), "{summary}");
    let report = rs.comment_containing(pr, "## Round 1: ");
    assert!(report.contains("```mermaid\nxychart-beta"), "{report}");
    assert!(!report.contains("![gap over rounds]"), "{report}");
    assert_eq!(rs.pending()[0].body["inputs"]["round"], json!("2"));

    // A reader cannot stop it.
    rs.comment_as("reader", "/sota stop").await;
    rs.comment_containing(7, "only people with write, maintain or admin permission");
    assert_eq!(rs.phase(), AppPhase::Round);

    // A maintainer holds it while round 2 runs: it finishes and nothing is dispatched.
    rs.comment_as("maint", "/sota hold").await;
    rs.comment_containing(7, "is on hold");
    rs.finish_round(2).await;
    assert!(rs.pending().is_empty(), "nothing dispatched on hold");
    assert_eq!(rs.phase(), AppPhase::Waiting);
    // The round 1 report is folded as outdated.
    let old = rs.comment_containing(pr, "## Round 1: ");
    assert!(old.contains("Superseded by round 2"), "{old}");

    // `/sota continue <note>` dispatches round 3 with the note for its agent.
    let note = "Try the fused MoE gate + topk softmax before touching attention.";
    rs.comment_as("maint", &format!("/sota continue {note}"))
        .await;
    rs.comment_containing(7, "Dispatched round 3");
    rs.comment_containing(7, "Your note goes into its agent prompt.");
    let round3 = rs.pending();
    assert_eq!(round3.len(), 1);
    assert_eq!(round3[0].body["inputs"]["round"], json!("3"));
    assert_eq!(round3[0].body["inputs"]["maintainer_note"], json!(note));
    assert_inputs_declared(&round3[0].body, "sota-round.yml");
    assert!(rs.dispatches()[..3]
        .iter()
        .all(|d| d["inputs"].get("maintainer_note").is_none()));

    // The runner's machine now has other GPUs (an H200): round 3's job fails its GPU
    // preflight, is retried within the budget, then waits for `/sota retry`.
    rs.runner.set_gpus("h200-idle");
    let failed = rs.finish_next().await;
    assert!(!failed.result.success, "{}", failed.result.log);
    assert!(
        failed.result.log.contains("expected GPU model h100"),
        "{}",
        failed.result.log
    );
    rs.comment_containing(pr, "retrying (1/2)");
    rs.finish_next().await;
    rs.finish_next().await;
    assert!(rs.pending().is_empty());
    assert_eq!(rs.phase(), AppPhase::Failed);
    rs.comment_containing(pr, "/sota retry");
    // Back on an H100 host, `/sota retry` runs round 3 again, with its note.
    rs.runner.set_gpus("h100x8");
    rs.comment_as("maint", "/sota retry").await;
    assert_eq!(rs.dispatches().len(), 7);
    assert!(rs.dispatches()[3..7]
        .iter()
        .all(|d| d["inputs"]["maintainer_note"] == json!(note)));

    // Round 3 ends the campaign: final report, PR ready for review, issue told.
    rs.finish_round(3).await;
    assert_eq!(
        rs.committed("rounds/round-3/maintainer-note.md")
            .map(|n| n.trim().to_string()),
        Some(note.to_string())
    );
    rs.comment_containing(pr, "## Final report");
    assert!(!rs.h.fake.seen("/graphql").is_empty(), "PR marked ready");
    // It stops after round 3 (the request's last, or sooner by the gate's drift rule when
    // the simulator's noise hides the agent's patches): the issue says why.
    let stop = rs.checkpoint().stop.expect("the campaign stopped");
    assert_eq!(stop.after_round, 3);
    rs.comment_containing(7, &format!("finished: {}", stop.reason));
    assert_eq!(rs.phase(), AppPhase::Finished);
    assert_eq!(rs.dispatches().len(), 7);
    assert!(
        rs.status().contains("| status | finished |"),
        "{}",
        rs.status()
    );
    // One status comment, edited in place all along.
    assert_eq!(rs.count_comments(7, "### sota-bot campaign"), 1);
    rs.assert_check_run_per_round(3);
    rs.assert_comments_portable();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_completion_is_repaired_by_reconciliation_without_double_dispatch() {
    let Some(rs) = RealStory::new("a_lost_completion", "story/sglang-reconcile").await else {
        return;
    };
    rs.open_request("maint", &form("auto-continue", 2)).await;
    // The baseline run completed on GitHub, but its webhook never arrived.
    let baseline = rs.run_next().await;
    assert!(baseline.result.success, "{}", baseline.result.log);
    rs.complete_without_webhook(&baseline);
    let handled = rs.campaigns.reconcile(&rs.apis).await.unwrap();
    assert_eq!(handled, 1);
    assert_eq!(rs.dispatches().len(), 2, "round 1 dispatched");
    rs.comment_containing(rs.pr(), "## Fixed baseline");
    // A second pass, and the late webhook itself, change nothing.
    assert_eq!(rs.campaigns.reconcile(&rs.apis).await.unwrap(), 0);
    rs.complete(&baseline).await;
    assert_eq!(rs.dispatches().len(), 2);
    assert_eq!(rs.count_comments(rs.pr(), "## Fixed baseline"), 1);
    rs.assert_comments_portable();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_answer_the_server_cannot_confirm_stops_automatic_rounds() {
    let Some(rs) = RealStory::new("a_gate_answer", "story/sglang-tamper").await else {
        return;
    };
    rs.open_request("maint", &form("auto-continue", 2)).await;
    rs.finish_round(0).await;
    // The runner commits round 1, then lies: its gate.json claims the opposite of what the
    // committed evidence decides.
    let round1 = rs.run_next().await;
    assert!(round1.result.success, "{}", round1.result.log);
    rs.tamper_gate(1);
    rs.complete(&round1).await;
    let checks = rs.check_runs();
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0]["conclusion"], json!("failure"), "{:#}", checks[0]);
    assert!(checks[0]["output"]["summary"]
        .as_str()
        .unwrap()
        .contains("could not confirm"));
    rs.comment_containing(rs.pr(), "server-side gate could not confirm");
    assert!(rs.pending().is_empty(), "no round 2");
    assert_eq!(rs.phase(), AppPhase::Waiting);
    rs.assert_comments_portable();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_that_committed_nothing_waits_and_its_warning_folds_once_a_rerun_is_confirmed() {
    let Some(rs) = RealStory::new("a_round_that_committed_nothing", "story/sglang-empty").await
    else {
        return;
    };
    rs.open_request("maint", &form("auto-continue", 2)).await;
    rs.finish_round(0).await;
    let pr = rs.pr();
    // Round 1's job succeeds but commits nothing: said plainly, no report, no check run.
    rs.succeed_without_running().await;
    let warning = rs.comment_containing(pr, "committed no round 1");
    assert!(warning.contains("`/sota continue`"), "{warning}");
    assert_eq!(rs.count_comments(pr, "committed no report"), 0);
    assert!(rs.check_runs().is_empty());
    assert_eq!(rs.phase(), AppPhase::Waiting);

    // `/sota continue` runs round 1 again; confirmed this time, the warning is folded.
    rs.comment_as("maint", "/sota continue").await;
    assert_eq!(rs.pending()[0].body["inputs"]["round"], json!("1"));
    rs.finish_round(1).await;
    let folded = rs.comment_containing(pr, "committed no round 1");
    assert!(
        folded.contains("<details><summary>Resolved: round 1 ran again"),
        "{folded}"
    );
    assert_eq!(rs.count_comments(pr, "committed no round 1"), 1);
    assert_eq!(rs.phase(), AppPhase::Round, "round 2 dispatched");
    rs.assert_check_run_per_round(1);
    rs.assert_comments_portable();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_is_rebuilt_from_the_campaign_branches() {
    let Some(rs) = RealStory::new("a_lost_database", "story/sglang-recover").await else {
        return;
    };
    rs.open_request("maint", &form("auto-continue", 2)).await;
    rs.finish_round(0).await;
    // Round 1 is queued on GitHub when the database disappears.
    assert_eq!(rs.pending().len(), 1);
    let before = rs.record();
    let dir = tempfile::tempdir().unwrap();
    let fresh = AppCampaigns::with_date(
        Arc::new(CampaignStore::open(&dir.path().join("new.sqlite")).unwrap()),
        date,
    );
    let fork = sota_bot::github::RepoName::parse(&rs.repo).unwrap();
    let api = rs.apis.for_installation(99);
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

/// The fork's agent: the scripted agent simulator's patch, then the output Claude Code
/// prints with `--output-format json` (captured, `fixtures/agent-output`), from which the
/// dashboard reads the agent's usage.
fn agent_reporting_usage() -> String {
    REPO_CONFIG.replace(
        "&& git add -A -- sim python",
        "&& cat {checkout}/.github/agent-output.json && git add -A -- sim python",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_faults_never_duplicate_a_dispatch_or_a_comment() {
    let config = agent_reporting_usage();
    let Some(rs) = RealStory::with_fork_files(
        "github_faults",
        "story/sglang-faults",
        &[
            (".github/sota-bot.yml", config.as_str()),
            (
                ".github/agent-output.json",
                include_str!("fixtures/agent-output/claude-code-2.1.332-output-json.json"),
            ),
        ],
    )
    .await
    else {
        return;
    };
    let repo = rs.repo.clone();
    // The request's reply hits a 500 (nothing created), the labels a secondary rate limit,
    // the config read a 429: the job is retried and everything happens once.
    let fail = |method: &str, part: &str, fault: Fault| {
        rs.h.fake
            .inject(method, &format!("/repos/{repo}/{part}"), vec![fault])
    };
    fail("POST", "issues/7/comments", Fault::Status(500));
    fail("POST", "issues/7/labels", Fault::RetryAfter403(1));
    fail("GET", "contents/.github", Fault::TooMany429);
    rs.open_request("maint", &form("auto-continue", 2)).await;
    assert_eq!(rs.dispatches().len(), 1);
    assert_eq!(rs.seen("POST", "git/refs").len(), 1, "one branch");
    assert_eq!(rs.seen("POST", "pulls").len(), 1, "one PR");
    assert_eq!(rs.count_comments(7, "Starting campaign"), 1);

    // The round-1 dispatch reaches GitHub but its answer is lost (502): the retried job sees
    // the queued run and does not dispatch again.
    fail(
        "POST",
        "actions/workflows/sota-round.yml/dispatches",
        Fault::ActThen502,
    );
    rs.finish_round(0).await;
    let rounds = rs.seen("POST", "actions/workflows/sota-round.yml/dispatches");
    assert_eq!(rounds.len(), 1, "round 1 dispatched once");
    assert_eq!(rs.phase(), AppPhase::Round);
    let pr = rs.pr();
    assert_eq!(rs.count_comments(pr, "## Fixed baseline"), 1);

    // Round 1's check run is created but its answer is lost: the retried job finds it.
    fail("POST", "check-runs", Fault::ActThen502);
    rs.finish_round(1).await;
    assert_eq!(rs.seen("POST", "check-runs").len(), 1, "one check run");
    assert_eq!(rs.count_comments(pr, "## Round 1: "), 1);

    // What the dashboard reads was kept as the App worked: the repository is public (the
    // issue event said so), the checkpoint of round 1, each run's 30 minutes on its one-GPU
    // runner once (retried jobs did not add them again), and the agent's own usage report.
    let view = rs
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
        rs.seen("POST", "actions/workflows/sota-round.yml/dispatches")
            .len(),
        2,
        "round 2 dispatched once"
    );
    rs.assert_comments_portable();
}

/// Fails when the dispatch sends an input the installed workflow `file` does not declare
/// (GitHub refuses such a dispatch with 422).
fn assert_inputs_declared(dispatch: &Value, file: &str) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_that_only_look_like_campaign_steps_are_ignored() {
    let Some(rs) = RealStory::new("spoofed_completions", "story/sglang-spoof").await else {
        return;
    };
    rs.open_request("maint", &form("auto-continue", 2)).await;
    assert_eq!(rs.dispatches().len(), 1);
    let title = format!("sota {CAMPAIGN} baseline");
    let comments_before = rs.comments(7).len();
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
            rs.repo.as_str(),
        ),
        (
            "push",
            ".github/workflows/sota-baseline.yml",
            rs.repo.as_str(),
        ),
        // The right workflow, but code from another repository.
        (
            "workflow_dispatch",
            ".github/workflows/sota-baseline.yml",
            "mallory/sglang",
        ),
    ] {
        rs.spoof_completion(&title, event, path, head).await;
        assert_eq!(rs.phase(), AppPhase::Baseline, "{event} {path} {head}");
        assert_eq!(rs.dispatches().len(), 1, "{event} {path} {head}");
    }
    assert_eq!(rs.comments(7).len(), comments_before, "nothing reported");
    // The real completion still counts.
    rs.finish_round(0).await;
    assert_eq!(rs.dispatches().len(), 2, "round 1 dispatched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_missing_inputs_gets_the_list_and_no_campaign() {
    let Some(story) = Story::new("a_request_missing_inputs", "story/sglang-missing").await else {
        return;
    };
    story
        .open_request("maint", "### GPU model\n\nH100\n\n### GPU count\n\n1\n")
        .await;
    let reply = story.comment_containing(7, "I cannot start this campaign yet");
    assert!(reply.to_lowercase().contains("model"), "{reply}");
    assert!(story.seen("POST", "git/refs").is_empty());
    assert!(story.dispatches().is_empty());

    // A reader's request is refused outright.
    let Some(other) = Story::new("a_request_missing_inputs", "story/sglang-reader").await else {
        return;
    };
    other
        .open_request("reader", &form("auto-continue", 3))
        .await;
    other.comment_containing(7, "only people with write, maintain or admin permission");
    assert!(other.dispatches().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_whose_job_gave_up_is_finished_by_reconciliation_never_stranded() {
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
    story.open_request("maint", &form("auto-continue", 3)).await;
    let record = story.record();
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
async fn a_start_the_database_could_not_record_goes_no_further_and_starts_once_later() {
    let Some(story) =
        Story::with_attempts("a_start_not_recorded", "story/sglang-unrecorded", 1).await
    else {
        return;
    };
    let repo = story.repo.clone();
    // The campaign database refuses the new campaign's row (a real SQLite failure, raised
    // by a trigger another connection installed).
    let db = rusqlite::Connection::open(story._dir.path().join("bot.sqlite")).unwrap();
    db.execute_batch(
        "CREATE TRIGGER refuse_campaigns BEFORE INSERT ON campaigns \
         BEGIN SELECT RAISE(ABORT, 'disk I/O error (test)'); END;",
    )
    .unwrap();
    story.open_request("maint", &form("auto-continue", 3)).await;
    // Nothing goes on without a record: no PR, no dispatch for a campaign the App would
    // not know when its runs complete.
    assert!(story.campaigns.store().get(CAMPAIGN).unwrap().is_none());
    assert!(story.h.fake.pulls(&repo).is_empty());
    assert!(story.dispatches().is_empty());
    // The dead job says why: the database's own error...
    let rows = story.service.store.rows().unwrap();
    let error = rows
        .last()
        .and_then(|r| r.last_error.clone())
        .unwrap_or_default();
    assert!(error.contains("disk I/O error (test)"), "{rows:#?}");
    // ...and the requester is not told a campaign is already active.
    assert!(story
        .comments(7)
        .iter()
        .all(|c| !c.contains("already active")));

    // Once the database records again, the request (delivered again) starts it once.
    db.execute_batch("DROP TRIGGER refuse_campaigns;").unwrap();
    story.open_request("maint", &form("auto-continue", 3)).await;
    assert_eq!(story.phase(), AppPhase::Baseline);
    assert_eq!(story.h.fake.pulls(&repo).len(), 1);
    assert_eq!(story.dispatches().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outsiders_request_starts_only_on_a_writers_explicit_start() {
    let Some(story) = Story::new("outsiders_request", "story/sglang-outsider").await else {
        return;
    };
    // A reader opens the request; a maintainer edits it (a typo): neither starts it.
    story
        .issue_event("opened", "reader", "reader", &form("auto-continue", 3))
        .await;
    story
        .issue_event("edited", "reader", "maint", &form("auto-continue", 3))
        .await;
    let reply = story.comment_containing(7, "This request's text is by @reader");
    assert!(reply.contains("/sota start"), "{reply}");
    assert!(story.dispatches().is_empty());
    assert!(story.seen("POST", "git/refs").is_empty());
    // A reader cannot start it either.
    story
        .comment_on_request("reader", "/sota start", "reader", &form("auto-continue", 3))
        .await;
    assert!(story.dispatches().is_empty());
    // A maintainer who read it starts it explicitly; the reply says whose text it is.
    story
        .comment_on_request("maint", "/sota start", "reader", &form("auto-continue", 3))
        .await;
    let started = story.comment_containing(7, "Starting campaign");
    assert!(
        started.contains("Request text by @reader, started by @maint"),
        "{started}"
    );
    assert_eq!(story.dispatches().len(), 1);
    // Starting again changes nothing.
    story
        .comment_on_request("maint", "/sota start", "reader", &form("auto-continue", 3))
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
    story.open_request("maint", &form("auto-continue", 3)).await;
    let reply = story.comment_containing(7, "names the fork story/other-repo");
    assert!(reply.contains("@maint has no write"), "{reply}");
    assert!(story.dispatches().is_empty());
    assert!(story.h.fake.seen("/repos/story/other-repo/git/").is_empty());
}
