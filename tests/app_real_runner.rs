//! Whole campaigns of the App with the real runner in the loop (`support_app::real`): the
//! fake GitHub behind Prism keeps the story repository in a real git repository, and every
//! workflow the App dispatches is executed by the action's `run-phase.sh` and the real
//! `sota-bot runner baseline|round` on the simulator lane, on a clone of that repository,
//! pushing back. Nothing of a round is written by the test: what the App reads back
//! (checkpoint, reports, gate files, the round's commit) is what the runner committed.

mod support_app;
mod support_exec;
mod support_github;
mod support_runner;
mod support_toy;

use std::sync::Arc;

use sota_bot::app::{AppCampaigns, AppPhase, CampaignStore};
use sota_bot::server::handler::InstallationApis;
use support_app::real::{redact, show, RealStory};
use support_app::{form, BRANCH, CAMPAIGN, RUN_DIR};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_autonomous_campaign_runs_to_its_final_report_with_or_without_github_faults() {
    let Some(rs) = RealStory::new("real_runner_autonomous", "octo/real-auto").await else {
        return;
    };
    rs.open_request("maint", &form("auto-continue", 1)).await;
    assert_eq!(rs.phase(), AppPhase::Baseline);
    let jobs = rs.finish_all().await;
    assert!(jobs.iter().all(|j| j.result.success), "{}", show(&jobs));
    assert_eq!(rs.phase(), AppPhase::Finished, "{}", show(&jobs));
    let rounds = rs.checkpoint().rounds.len() as u32;
    assert!(rounds >= 1, "at least one round ran");
    assert_eq!(jobs.len() as u32, 1 + rounds, "{}", show(&jobs));
    rs.assert_check_run_per_round(rounds);
    let pr = rs.pr();
    let baseline = rs.comment_containing(pr, "## Fixed baseline");
    assert!(baseline.contains("### Benchmark summary"), "{baseline}");
    let round = rs.comment_containing(pr, "## Round 1: ");
    rs.comment_containing(pr, "## Final report");
    rs.assert_comments_portable();
    let status = rs.status();
    assert!(status.contains("| status | finished |"), "{status}");
    // Whole comments, with what varies between runs redacted.
    insta::assert_snapshot!("status_comment", redact(&status));
    insta::assert_snapshot!("baseline_report", redact(&baseline));
    insta::assert_snapshot!("round_report", redact(&round));

    let expected = outcome(&rs);
    assert!(
        expected.contains(&"phase Finished".to_string()),
        "{expected:?}"
    );
    the_same_campaign_with_a_5xx_at_each_write(&expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_for_human_campaign_holds_and_continues_with_a_committed_quoted_note() {
    let Some(rs) = RealStory::new("real_runner_wait", "octo/real-wait").await else {
        return;
    };
    rs.open_request("maint", &form("wait-for-human", 3)).await;
    rs.finish_round(0).await;
    rs.finish_round(1).await;
    // The campaign waits for a maintainer.
    assert!(rs.pending().is_empty());
    assert_eq!(rs.phase(), AppPhase::Waiting);
    let status = rs.status();
    assert!(status.contains("comment `/sota continue`"), "{status}");

    // Had the App lost its database here, the branch as the runner left it rebuilds the
    // record exactly.
    let before = rs.record();
    let dir = tempfile::tempdir().unwrap();
    let fresh = AppCampaigns::with_date(
        Arc::new(CampaignStore::open(&dir.path().join("rebuilt.sqlite")).unwrap()),
        support_app::date,
    );
    let fork = sota_bot::github::RepoName::parse(&rs.repo).unwrap();
    let api = rs.apis.for_installation(99);
    let (recovered, skipped) = fresh.recover(api.as_ref(), &fork, 99).await.unwrap();
    assert_eq!(recovered, vec![CAMPAIGN.to_string()], "{skipped:?}");
    assert_eq!(fresh.store().get(CAMPAIGN).unwrap(), Some(before));

    // A hold while waiting: the status says so, and how to lift it.
    rs.comment_as("maint", "/sota hold").await;
    let hold = rs.comment_containing(7, "is on hold");
    assert!(hold.contains("`/sota resume`"), "{hold}");
    assert!(
        rs.status().contains("on hold after round 1"),
        "{}",
        rs.status()
    );
    assert!(rs.pending().is_empty(), "nothing runs on hold");

    // `/sota continue <note>`: round 2 runs, commits the note and the report quotes it.
    let note = "Try a larger CUDA graph batch size first.";
    rs.comment_as("maint", &format!("/sota continue {note}"))
        .await;
    rs.finish_round(2).await;
    assert!(rs.pending().is_empty(), "one round per continue");
    let committed = rs
        .committed("rounds/round-2/maintainer-note.md")
        .expect("the note is committed with round 2");
    assert_eq!(committed.trim(), note);
    let report = rs.comment_containing(rs.pr(), "## Round 2: ");
    assert!(report.contains(&format!("> {note}")), "{report}");
    assert_eq!(
        rs.count_comments(rs.pr(), "could not confirm"),
        0,
        "the gate confirms every round"
    );
    assert_eq!(rs.phase(), AppPhase::Waiting);
    rs.assert_check_run_per_round(2);
    // Round 1's commit could not name itself; round 2's commit records it.
    let git = rs.h.fake.story_git(&rs.repo);
    let round1 = git.last_commit_touching(BRANCH, &format!("{RUN_DIR}/rounds/round-1/gate.json"));
    assert!(round1.is_some());
    assert_eq!(rs.checkpoint().rounds[0].commit, round1);
    rs.assert_comments_portable();
}

/// The App's own records of a finished campaign: what must not differ between a story with
/// GitHub faults and one without.
fn outcome(rs: &RealStory) -> Vec<String> {
    let pr = rs.pr();
    let git = rs.h.fake.story_git(&rs.repo);
    let mut out = vec![
        format!("phase {:?}", rs.phase()),
        format!("branches {:?}", git.branches()),
        format!("pulls {}", rs.h.fake.pulls(&rs.repo).len()),
        format!("dispatches {}", rs.h.fake.dispatched(&rs.repo).len()),
        format!("check runs {}", rs.check_runs().len()),
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
            rs.count_comments(issue, marker)
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
    let repo = rs.repo.clone();
    let fail = |method: &str, part: &str, fault: Fault| {
        rs.h.fake
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
    rs.open_request("maint", &form("auto-continue", 1)).await;
    assert_eq!(rs.phase(), AppPhase::Baseline, "the start finished");
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
    let jobs = rs.finish_all().await;
    assert!(jobs.iter().all(|j| j.result.success), "{}", show(&jobs));
    assert_eq!(outcome(&rs), expected);
    rs.assert_check_run_per_round(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_fails_twice_holds_the_campaign_with_the_fix_until_sota_retry() {
    let config = "agent:\n  preset: command\n  command: \"echo 'Failed to authenticate. API Error: 401' >&2; exit 1\"\n  secret_names: []\n";
    let Some(rs) =
        RealStory::with_repo_config("real_runner_agent_fails", "octo/real-agent", config).await
    else {
        return;
    };
    rs.open_request("maint", &form("auto-continue", 5)).await;
    rs.finish_round(0).await;
    // Round 1: the agent fails; the server-side gate agrees and round 2 is dispatched.
    rs.finish_round(1).await;
    let pr = rs.pr();
    let report = rs.comment_containing(pr, "## Round 1: ");
    assert!(
        report.contains("next round runs the agent again"),
        "{report}"
    );
    // Round 2 fails too: the campaign waits, saying what failed and how to go on.
    rs.finish_round(2).await;
    assert!(rs.pending().is_empty(), "no round 3 while held");
    assert_eq!(rs.phase(), AppPhase::Waiting);
    let report = rs.comment_containing(pr, "## Round 2: ");
    // What failed, the agent's own words, and how to go on.
    assert!(
        report.contains("the agent failed in 2 rounds in a row")
            && report.contains("Failed to authenticate. API Error: 401")
            && report.contains("Fix: check the agent's API key")
            && report.contains("/sota retry"),
        "{report}"
    );
    rs.assert_check_run_per_round(2);
    rs.assert_comments_portable();

    // `/sota retry` runs the agent again in round 3.
    rs.comment_as("maint", "/sota retry").await;
    rs.comment_containing(7, "Dispatched round 3");
    assert_eq!(rs.phase(), AppPhase::Round);
    let pending = rs.pending();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].body["inputs"]["round"], "3");
}
