//! What a round completion costs on GitHub: from the `workflow_run` webhook to the posted
//! round report and the next dispatch, every request the App sends goes through Prism to the
//! fake, which records it. The round is run by the real runner on the simulator lane; its
//! report links only the artifacts the branch holds, found with one listing of the
//! branch's tree, not a contents request per artifact.

mod support_app;
mod support_exec;
mod support_github;
mod support_runner;
mod support_toy;

use sota_bot::app::render::artifact_paths;
use support_app::real::{show, RealStory};
use support_app::{form, Story, BRANCH, CAMPAIGN, RUN_DIR};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_report_finds_its_artifacts_with_one_tree_listing() {
    let Some(rs) = RealStory::new("a_round_report_finds", "story/sglang-links").await else {
        return;
    };
    rs.open_request("maint", &form("auto-continue", 2)).await;
    rs.finish_round(0).await;
    // The runner runs round 1 and pushes it; GitHub has not told the App yet.
    let job = rs.run_next().await;
    assert!(job.result.success, "{}", show(std::slice::from_ref(&job)));
    let report = rs
        .committed("rounds/round-1/report.md")
        .expect("round 1 committed its report");
    let named = artifact_paths(&report);
    let git = rs.h.fake.story_git(&rs.repo);
    let on_branch: Vec<&String> = named
        .iter()
        .filter(|p| git.read(BRANCH, p).is_some())
        .collect();
    assert!(
        !on_branch.is_empty(),
        "the report names artifacts: {report}"
    );

    let all = |s: &Story| s.h.fake.seen(&format!("/repos/{}/", s.repo));
    let before = all(&rs).len();
    rs.complete(&job).await;
    let during: Vec<_> = all(&rs).into_iter().skip(before).collect();
    let count = |part: &str| {
        during
            .iter()
            .filter(|s| s.method == "GET" && s.path.contains(part))
            .count()
    };
    eprintln!(
        "round completion -> report and next dispatch: {} GitHub requests ({} contents reads, {} tree listings) for a report naming {} artifacts ({} on the branch)",
        during.len(),
        count("/contents/"),
        count("/git/trees/"),
        named.len(),
        on_branch.len()
    );

    let body = rs.comment_containing(rs.pr(), &format!("campaign={CAMPAIGN} round=1"));
    let blob = |path: &str| format!("https://github.com/{}/blob/{BRANCH}/{path}", rs.repo);
    for path in &named {
        let linked = body.contains(&format!("- [`{path}`]({})", blob(path)));
        assert_eq!(
            linked,
            on_branch.contains(&path),
            "{path} is linked exactly when the branch holds it:\n{body}"
        );
    }
    assert_eq!(count("/git/trees/"), 1, "one tree listing for the links");
    // The only files read one by one are those the App reads for itself (the checkpoint,
    // the gate's files, the report and the maintainer's note), however many artifacts the
    // report names.
    let own = [
        "humanize/model-loop-checkpoint.md".to_string(),
        "rounds/round-1/gate.json".to_string(),
        "rounds/round-1/gate-input.json".to_string(),
        "rounds/round-1/report.md".to_string(),
        format!(
            "rounds/round-1/{}",
            sota_bot::engine::round::MAINTAINER_NOTE_FILE
        ),
    ];
    for seen in during.iter().filter(|s| s.path.contains("/contents/")) {
        let file = seen.path.split("/contents/").nth(1).unwrap_or("");
        let file = file.split('?').next().unwrap_or("").replace("%2F", "/");
        assert!(
            own.iter().any(|o| file == format!("{RUN_DIR}/{o}")),
            "a contents read of {file}, not a file the App reads for itself"
        );
    }
}
