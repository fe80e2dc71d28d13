//! What a round completion costs on GitHub: from the `workflow_run` webhook to the posted
//! round report and the next dispatch, every request the App sends goes through Prism to the
//! fake, which records it. The report links only the artifacts the branch holds, and finds
//! them with one listing of the branch's tree, not a contents request per artifact.

mod support_app;
mod support_github;

use sota_bot::campaign::state::{CampaignState, Phase, RoundRecord};
use sota_bot::gate::{GateInput, Verdict};
use support_app::{Story, BRANCH, CAMPAIGN, FORM, RUN_DIR};

/// A checkpoint after the baseline (`rounds` empty) or after round 1.
fn checkpoint(round_1: bool) -> CampaignState {
    let mut s = CampaignState::new(
        CAMPAIGN,
        "meta-llama/Llama-3.1-8B-Instruct",
        BRANCH,
        RUN_DIR,
        "0000000000000000000000000000000000000000",
    );
    s.phase = Phase::PlanDone;
    if round_1 {
        s.rounds.push(RoundRecord {
            round: 1,
            title: "patch 1".into(),
            commit: Some(format!("{:0>40}", 1)),
            measured_commit: None,
            accepted: true,
            verdict: Verdict::Advanced,
            decision: "continue".into(),
            reason: "contract holds and the gap remains".into(),
            geomean_pct: Some(3.0),
            gaps: Vec::new(),
            changed_files: vec!["python/sglang/srt/layers/layernorm.py".into()],
            agent_failed: false,
            agent_cost_usd: None,
        });
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_report_finds_its_artifacts_with_one_tree_listing() {
    let Some(story) = Story::new("a_round_report_finds", "story/sglang-links").await else {
        return;
    };
    story.open_issue("maint", FORM).await;
    story.commit_phase(
        &checkpoint(false),
        &[("benchmark/summary.md".into(), "# summary\n".into())],
    );
    story
        .complete_run(&format!("sota {CAMPAIGN} baseline"), "success", None)
        .await;
    let pr = story
        .campaigns
        .store()
        .get(CAMPAIGN)
        .unwrap()
        .and_then(|c| c.pr_number)
        .expect("the baseline left a PR");

    // Round 1 commits its gate files, its chart and six of the nine artifacts its report
    // names (the captured gate input of a simulator-lane round, renumbered).
    let dir = "rounds/round-1";
    let mut input: GateInput =
        serde_json::from_str(include_str!("fixtures/app/gate-input.json")).unwrap();
    input.evidence.round = 1;
    let outcome = input.decide();
    let named: Vec<String> = (0..9)
        .map(|i| format!("{RUN_DIR}/{dir}/artifacts/file-{i}.json"))
        .collect();
    let mut report =
        "## Round 1: patch 1\n\n![gap over rounds](gap-chart.svg)\n\nArtifacts:\n\n".to_string();
    for path in &named {
        report.push_str(&format!("- `{path}`\n"));
    }
    let mut files = vec![
        (
            format!("{dir}/gate-input.json"),
            serde_json::to_string(&input).unwrap(),
        ),
        (
            format!("{dir}/gate.json"),
            serde_json::to_string_pretty(&outcome).unwrap(),
        ),
        (format!("{dir}/report.md"), report),
        (format!("{dir}/gap-chart.svg"), "<svg/>".into()),
    ];
    for path in &named[..6] {
        let rel = path.strip_prefix(&format!("{RUN_DIR}/")).unwrap();
        files.push((rel.to_string(), "{}".into()));
    }
    story.commit_phase(&checkpoint(true), &files);

    let all = |s: &Story| s.h.fake.seen(&format!("/repos/{}/", s.repo));
    let before = all(&story).len();
    let dispatches = story.dispatches().len();
    story
        .complete_run(&format!("sota {CAMPAIGN} round 1"), "success", None)
        .await;
    let during: Vec<_> = all(&story).into_iter().skip(before).collect();
    let contents = during
        .iter()
        .filter(|s| s.method == "GET" && s.path.contains("/contents/"))
        .count();
    let trees = during
        .iter()
        .filter(|s| s.method == "GET" && s.path.contains("/git/trees/"))
        .count();
    eprintln!(
        "round completion -> report and next dispatch: {} GitHub requests ({contents} contents reads, {trees} tree listings)",
        during.len()
    );

    assert_eq!(
        story.dispatches().len(),
        dispatches + 1,
        "round 2 is dispatched"
    );
    let body = story.comment_containing(pr, "Round 1: patch 1");
    let blob = |path: &str| format!("https://github.com/{}/blob/{BRANCH}/{path}", story.repo);
    for path in &named[..6] {
        assert!(
            body.contains(&format!("- [`{path}`]({})", blob(path))),
            "{path} is on the branch and linked:\n{body}"
        );
    }
    for path in &named[6..] {
        assert!(
            body.contains(&format!("- `{path}`\n")) && !body.contains(&blob(path)),
            "{path} is not on the branch and not linked:\n{body}"
        );
    }
    assert!(body.contains(&blob(&format!("{RUN_DIR}/{dir}/gap-chart.svg"))));
    assert_eq!(trees, 1, "one tree listing for the report's links");
    for path in named.iter().map(String::as_str).chain(["gap-chart.svg"]) {
        let encoded = path.replace('/', "%2F");
        assert!(
            !during.iter().any(|s| s.path.contains("/contents/")
                && (s.path.contains(&encoded) || s.path.contains(path))),
            "no contents read for {path}"
        );
    }
}
