//! The dashboard's pure parts on real data: agents' usage from the real CLIs' output, and
//! the views and pages of the local-demo campaign (snapshots), plus builders that never
//! panic on odd numbers.

mod support_dashboard;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use sota_bot::campaign::state::CampaignState;
use sota_bot::dashboard::model::{AgentUsage, CampaignSnapshot, Location, Status, StepUsage};
use sota_bot::dashboard::usage::agent_usage;
use sota_bot::dashboard::{render, view};
use sota_bot::gate::GapStatus;
use support_dashboard::*;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(repo_root().join("tests/fixtures/agent-output").join(name)).unwrap()
}

#[test]
fn agents_report_their_usage_in_their_own_output_formats() {
    let claude = AgentUsage {
        cost_usd: Some(0.013),
        turns: Some(2),
        input_tokens: Some(2400),
        output_tokens: Some(170),
    };
    assert_eq!(
        agent_usage(&fixture("claude-code-2.1.332-output-json.json")),
        Some(claude.clone())
    );
    assert_eq!(
        agent_usage(&fixture("claude-code-2.1.332-stream-json.jsonl")),
        Some(claude)
    );
    // Codex reports tokens per turn and no cost.
    assert_eq!(
        agent_usage(&fixture("codex-0.171.0-exec-json.jsonl")),
        Some(AgentUsage {
            cost_usd: None,
            turns: Some(1),
            input_tokens: Some(3000),
            output_tokens: Some(120),
        })
    );
    // A log tail that lost the result line's start reports nothing rather than guessing.
    let cut = fixture("claude-code-2.1.332-output-json.json");
    assert_eq!(agent_usage(&cut[40..]), None);
}

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 8, h, m, 0).unwrap()
}

/// The demo campaign's final checkpoint (cloned once).
fn demo_state() -> CampaignState {
    static STATE: std::sync::OnceLock<CampaignState> = std::sync::OnceLock::new();
    STATE
        .get_or_init(|| {
            let tmp = tempfile::tempdir().unwrap();
            let repo = clone_demo(tmp.path());
            checkpoint_at(&repo, BRANCH)
        })
        .clone()
}

/// The finished demo campaign as the App would show it, at fixed times.
fn finished() -> CampaignSnapshot {
    let state = demo_state();
    let mut usage: BTreeMap<u32, StepUsage> = BTreeMap::new();
    usage.insert(
        0,
        StepUsage {
            gpu_minutes: Some(41.5),
            agent: None,
        },
    );
    for r in 1..=3 {
        usage.insert(
            r,
            StepUsage {
                gpu_minutes: Some(22.0 + f64::from(r)),
                agent: agent_usage(&fixture("claude-code-2.1.332-output-json.json")),
            },
        );
    }
    CampaignSnapshot {
        id: state.campaign_id.clone(),
        model: state.model.clone(),
        gpu: "1x H100".into(),
        private: false,
        status: Status::Finished,
        waiting_reason: None,
        status_since: Some(at(9, 30)),
        updated_at: Some(at(9, 31)),
        step: 3,
        max_rounds: 8,
        branch: BRANCH.into(),
        run_dir: RUN_DIR.into(),
        location: Location::GitHub {
            web_url: "https://github.com".into(),
            repo: "sgl-project/sglang-campaigns".into(),
            issue: 11,
            fork: "sgl-h100/sglang".into(),
            pr: Some(12),
        },
        state: Some(Arc::new(state)),
        usage,
        gpu_basis: sota_bot::app::dashboard::GPU_BASIS.into(),
        noise_pct: 1.0,
    }
}

#[test]
fn the_campaign_page_of_the_demo_campaign() {
    let s = finished();
    let page = view::campaign_page(&s, at(12, 0));
    insta::assert_json_snapshot!("demo_campaign_page", page);
    insta::assert_snapshot!(
        "demo_campaign_page_html",
        render::page_html(&page, false).unwrap()
    );
}

#[test]
fn the_list_orders_by_status_and_words_every_state() {
    let base = finished();
    let mut all = Vec::new();
    for (i, status) in [
        Status::Finished,
        Status::Waiting,
        Status::Running,
        Status::Failed,
        Status::Held,
        Status::Stopped,
    ]
    .into_iter()
    .enumerate()
    {
        let mut s = base.clone();
        s.id = format!("c{i}-{}", status.key());
        s.status = status;
        s.waiting_reason =
            (status == Status::Waiting).then(|| "the review gate asked for a maintainer".into());
        s.step = if status == Status::Finished { 3 } else { 2 };
        all.push(s);
    }
    let list = view::campaign_list(&all, at(12, 0));
    let order: Vec<&str> = list.campaigns.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        order,
        [
            "c2-running",
            "c1-waiting",
            "c4-held",
            "c3-failed",
            "c0-finished",
            "c5-stopped"
        ]
    );
    let words: Vec<String> = all.iter().map(view::state_words).collect();
    insta::assert_snapshot!("state_words", words.join("\n"));
    let html = render::list_html(&list).unwrap();
    assert_eq!(html.matches("<tr class=\"campaign\"").count(), 6);
    assert!(!html.contains("<script"));
    // Local campaigns name the local command and link only to files.
    let mut local = base.clone();
    local.status = Status::Waiting;
    local.location = Location::Local {
        checkout: "/srv/sglang".into(),
    };
    assert!(view::state_words(&local).contains("`sota-bot local resume`"));
    let page = view::campaign_page(&local, at(12, 0));
    assert_eq!(page.campaign.links.issue, None);
    assert_eq!(
        page.rounds[0].report_url.as_deref(),
        Some("file:///srv/sglang/runs/20261207_llama_3_1_8b_instruct_sota_humanize/rounds/round-3/report.md")
    );
    assert_eq!(page.rounds[0].commit_url, None);
}

#[test]
fn text_from_the_branch_is_escaped_and_scrubbed() {
    let mut s = finished();
    let state = Arc::make_mut(s.state.as_mut().unwrap());
    state.rounds[0].title = "<img src=x onerror=alert(1)> token hf_abcdefghijklmnopqrstuvwx".into();
    s.model = "m\"><script>alert(1)</script>".into();
    let page = view::campaign_page(&s, at(12, 0));
    let html = render::page_html(&page, false).unwrap();
    assert!(
        !html.contains("<img src=x") && !html.contains("<script>"),
        "escaped"
    );
    assert!(!html.contains("hf_abcdefghijklmnopqrstuvwx"), "scrubbed");
    let list = render::list_html(&view::campaign_list(&[s], at(12, 0))).unwrap();
    assert!(!list.contains("<script>"));
}

fn odd_number() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(0.0),
        -1e12f64..1e12,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn views_and_pages_never_panic_or_draw_nan(
        gaps in proptest::collection::vec(odd_number(), 0..6),
        winner in odd_number(),
        minutes in odd_number(),
        step in 0u32..50,
        max_rounds in 0u32..50,
    ) {
        let mut state = CampaignState::new("c", "m", "b", "runs/x", "abc");
        state.winners.push(sota_bot::campaign::state::WinnerRef {
            framework: "sglang".into(), scenario: "s".into(), candidate_id: "a".into(),
            value: Some(winner), server_command: None, benchmark_command: None,
        });
        for (i, g) in gaps.iter().enumerate() {
            let mut r = demo_state().rounds[0].clone();
            r.round = i as u32 + 1;
            r.gaps[0].scenario = "s".into();
            r.gaps[0].status = GapStatus::Behind { gap_pct: *g };
            r.geomean_pct = Some(*g);
            state.rounds.push(r);
        }
        let mut s = finished();
        s.state = Some(Arc::new(state));
        s.step = step;
        s.max_rounds = max_rounds;
        s.usage.insert(1, StepUsage { gpu_minutes: Some(minutes), agent: None });
        let page = view::campaign_page(&s, at(12, 0));
        let html = render::page_html(&page, false).unwrap();
        let bad = regex::Regex::new(r"NaN|(^|[^A-Za-z])[-+]?inf([^A-Za-z]|$)").unwrap();
        prop_assert!(!bad.is_match(&html), "non-finite number drawn");
        let list = render::list_html(&view::campaign_list(&[s], at(12, 0))).unwrap();
        prop_assert!(!bad.is_match(&list), "non-finite number drawn");
    }
}
