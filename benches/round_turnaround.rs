//! The App's round turnaround: from a `workflow_run` completion webhook for round `n` to the
//! posted round report and the dispatch of round `n + 1`, with the App running as a service in
//! front of the story fake GitHub behind Prism (every request validated against GitHub's
//! OpenAPI description). Every dispatched workflow is executed by the real `sota-bot runner`
//! on the simulator lane, as in the App's stories, so the App reads back what a runner really
//! commits (checkpoint, gate files, report and its artifacts).
//!
//! Two figures per transition: the GitHub API calls the App made (every request the fake saw,
//! GraphQL included) and the wall time from posting the signed delivery until its job is done
//! (which is after the report and the next dispatch). The runner's own work happens before
//! the webhook and is not timed. Client pacing (content-creating calls spaced for GitHub's
//! secondary limit) is as in production, so the wall time includes it.
//!
//! Run: `cargo bench --bench round_turnaround` (needs `npm ci` in tools/).
//! `ROUND_BENCH_ROUNDS` (default 2) transitions are measured; the median is reported.

#[path = "../tests/support_github/mod.rs"]
mod support_github;

#[path = "../tests/support_app/mod.rs"]
mod support_app;

#[path = "../tests/support_runner/mod.rs"]
mod support_runner;

#[path = "../tests/support_toy/mod.rs"]
mod support_toy;

#[path = "../tests/support_exec/mod.rs"]
mod support_exec;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support_app::real::RealStory;
use support_app::{form, CAMPAIGN};

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
    let story = RealStory::new("round_turnaround", "bench/round-turnaround").await?;
    story
        .open_request("maint", &form("auto-continue", rounds + 1))
        .await;
    story.finish_round(0).await;
    let pr = story.pr();

    let (mut calls, mut walls) = (Vec::new(), Vec::new());
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for round in 1..=rounds {
        let job = story.run_next().await;
        assert!(job.result.success, "round {round}: {}", job.result.log);
        let seen_before = story.h.fake.seen("").len();
        let dispatched_before = story.dispatches().len();
        let started = Instant::now();
        story.complete(&job).await;
        let wall = started.elapsed();
        let seen = story.h.fake.seen("");
        let made = &seen[seen_before..];
        // The transition really happened: the report is on the PR and the next round is out.
        story.comment_containing(pr, &format!("campaign={CAMPAIGN} round={round}"));
        let dispatched = story.dispatches();
        if dispatched.len() != dispatched_before + 1 {
            println!(
                "round {round}: the campaign stopped ({}); not a turnaround to a next round",
                story.status().lines().next().unwrap_or_default()
            );
            break;
        }
        assert_eq!(
            dispatched.last().unwrap()["inputs"]["round"],
            serde_json::json!((round + 1).to_string())
        );
        kinds.clear();
        for s in made {
            *kinds.entry(call_kind(&s.method, &s.path)).or_default() += 1;
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
    if calls.is_empty() {
        println!("round turnaround: no transition reached a next round");
        return Some(());
    }
    println!("calls of the last transition:");
    for (kind, n) in &kinds {
        println!("  {n:>2} x {kind}");
    }
    let n = calls.len();
    println!(
        "round turnaround (median of {n}): {} GitHub API calls, {:.1} ms wall",
        median(calls),
        median(walls)
    );
    Some(())
}

fn main() {
    let rounds: u32 = std::env::var("ROUND_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
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
