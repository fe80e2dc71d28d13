//! The App's round turnaround: from a `workflow_run` completion webhook for round `n` to the
//! posted round report and the dispatch of round `n + 1`, with the App running as a service in
//! front of the story fake GitHub behind Prism (every request validated against GitHub's
//! OpenAPI description), as the story tests drive it.
//!
//! Two figures per transition: the GitHub API calls the App made (every request the fake saw,
//! GraphQL included) and the wall time from posting the signed delivery until its job is done
//! (which is after the report and the next dispatch). Client pacing (content-creating calls
//! spaced for GitHub's secondary limit) is as in production, so the wall time includes it.
//!
//! Run: `cargo bench --bench round_turnaround` (needs `npm install` in tools/).
//! `ROUND_BENCH_ROUNDS` (default 5) transitions are measured; the median is reported.

#[path = "../tests/support_github/mod.rs"]
mod support_github;

#[path = "../tests/support_app/mod.rs"]
mod support_app;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sota_bot::campaign::state::{CampaignState, Phase, RoundRecord, WinnerRef};
use sota_bot::gate::{GapStatus, GateInput, ScenarioGapView, Verdict};
use support_app::{Story, BRANCH, CAMPAIGN, FORM, RUN_DIR};

fn gap(pct: f64) -> ScenarioGapView {
    ScenarioGapView {
        scenario: "chat".into(),
        leader: Some("vLLM `vllm-00`".into()),
        sglang_value: Some(100.0 + pct),
        leader_value: Some(100.0),
        status: GapStatus::Behind { gap_pct: pct },
    }
}

/// The checkpoint after the fixed baseline: SGLang 10% behind vLLM on one scenario.
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
    s.gaps = vec![gap(-10.0)];
    s
}

/// The checkpoint and files a runner commits when round `round` ends (gap still open).
fn round_files(state: &mut CampaignState, round: u32) -> Vec<(String, String)> {
    let pct = -9.0 + f64::from(round) * 0.5;
    state.rounds.push(RoundRecord {
        round,
        title: format!("patch {round}"),
        commit: Some(format!("{round:0>40}")),
        measured_commit: None,
        accepted: true,
        verdict: Verdict::Advanced,
        decision: "continue".into(),
        reason: "contract holds and the gap remains".into(),
        geomean_pct: Some(1.0),
        gaps: vec![gap(pct)],
        changed_files: vec!["python/sglang/srt/layers/layernorm.py".into()],
        agent_failed: false,
        agent_cost_usd: Some(0.42),
    });
    state.gaps = vec![gap(pct)];
    // A gate input as the engine commits it (captured from a simulator-lane round).
    let mut input: GateInput =
        serde_json::from_str(include_str!("../tests/fixtures/app/gate-input.json")).unwrap();
    input.evidence.round = round;
    let outcome = input.decide();
    vec![
        (
            format!("rounds/round-{round}/gate-input.json"),
            serde_json::to_string(&input).unwrap(),
        ),
        (
            format!("rounds/round-{round}/gate.json"),
            serde_json::to_string_pretty(&outcome).unwrap(),
        ),
        (
            format!("rounds/round-{round}/report.md"),
            format!("## Round {round}: patch {round}\n\n**Decision: continue**\n"),
        ),
    ]
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// `GET /repos/o/r/issues/7/comments?per_page=100` -> `GET issues/{n}/comments`.
fn call_kind(method: &str, path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    let tail = path
        .strip_prefix("/repos/")
        .and_then(|p| p.splitn(3, '/').nth(2))
        .unwrap_or(path.trim_start_matches('/'));
    let shape: Vec<String> = tail
        .split('/')
        .map(|seg| {
            if seg.chars().all(|c| c.is_ascii_digit()) && !seg.is_empty() {
                "{n}".to_string()
            } else if seg.len() == 40 && seg.chars().all(|c| c.is_ascii_hexdigit()) {
                "{sha}".to_string()
            } else if seg.contains('%') {
                "{path}".to_string()
            } else {
                seg.to_string()
            }
        })
        .collect();
    format!("{method} {}", shape.join("/"))
}

async fn run(rounds: u32) -> Option<()> {
    let story = Story::new("round_turnaround", "bench/round-turnaround").await?;
    story.open_issue("maint", FORM).await;
    let mut state = baseline_state();
    story.commit_phase(
        &state,
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
        .expect("the baseline opened the campaign's pull request");

    let (mut calls, mut walls) = (Vec::new(), Vec::new());
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for round in 1..=rounds {
        let files = round_files(&mut state, round);
        story.commit_phase(&state, &files);
        let seen_before = story.h.fake.seen("").len();
        let dispatched_before = story.dispatches().len();
        let started = Instant::now();
        story
            .complete_run(&format!("sota {CAMPAIGN} round {round}"), "success", None)
            .await;
        let wall = started.elapsed();
        let seen = story.h.fake.seen("");
        let made = &seen[seen_before..];
        // The transition really happened: the report is on the PR and the next round is out.
        story.comment_containing(pr, &format!("## Round {round}: patch {round}"));
        let dispatched = story.dispatches();
        assert_eq!(dispatched.len(), dispatched_before + 1, "round {round}");
        assert_eq!(
            dispatched.last().unwrap()["inputs"]["round"],
            serde_json::json!((round + 1).to_string())
        );
        if round == rounds {
            for s in made {
                *kinds.entry(call_kind(&s.method, &s.path)).or_default() += 1;
            }
        }
        println!(
            "round {round} -> {}: {} GitHub API calls, {:.1} ms",
            round + 1,
            made.len(),
            wall.as_secs_f64() * 1e3
        );
        calls.push(made.len() as f64);
        walls.push(wall.as_secs_f64() * 1e3);
    }
    println!("calls of the last transition:");
    for (kind, n) in &kinds {
        println!("  {n:>2} x {kind}");
    }
    println!(
        "round turnaround (median of {rounds}): {} GitHub API calls, {:.1} ms wall",
        median(calls),
        median(walls)
    );
    Some(())
}

fn main() {
    let rounds: u32 = std::env::var("ROUND_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if rt.block_on(run(rounds)).is_none() {
        eprintln!("round_turnaround: skipped (npm test tools missing)");
    }
    // The Prism watchdog ends with this process.
    rt.shutdown_timeout(Duration::from_secs(1));
}
