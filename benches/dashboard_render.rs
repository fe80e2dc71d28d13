//! Dashboard page time: `GET /campaigns`, `GET /campaigns/{id}` and `GET /api/campaigns`
//! through the dashboard's real router (no socket) over an App store holding 100
//! campaigns of 42 rounds each, built from the local-demo campaign's real checkpoint (its
//! rounds repeated with drifting gaps, three scenarios).
//!
//! Reported as medians and as ratios against a baseline measured in the same run: loading
//! the same campaigns from the store alone (SQLite read and checkpoint parse), the floor
//! any page over this data pays. Target: both pages under 50 ms.
//!
//! Run: `cargo bench --bench dashboard_render` (needs `git`, to read the fixture bundle)

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use sota_bot::app::dashboard::StoreCampaigns;
use sota_bot::app::store::{AppPhase, CampaignRecord, DispatchSettings};
use sota_bot::app::CampaignStore;
use sota_bot::campaign::state::{parse_checkpoint, CampaignState, WinnerRef};
use sota_bot::dashboard::access::DashboardToken;
use sota_bot::dashboard::http::{router, CampaignSource, DashboardState};
use sota_bot::dashboard::model::AgentUsage;
use sota_bot::dashboard::{render, view};
use sota_bot::gate::GapStatus;
use tower::ServiceExt;

const CAMPAIGNS: usize = 100;
const ROUNDS: u32 = 42;
const ITERATIONS: usize = 30;
const TOKEN: &str = "bench-dashboard-token-0123456789";

fn demo_checkpoint(dir: &Path) -> CampaignState {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bundle = root.join("tests/fixtures/dashboard/local-demo-campaign.bundle");
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    git(&["clone", "-q", bundle.to_str().unwrap(), "demo"]);
    let text = Command::new("git")
        .args([
            "show",
            "origin/sota/20261207-llama_3_1_8b_instruct:runs/20261207_llama_3_1_8b_instruct_sota_humanize/humanize/model-loop-checkpoint.md",
        ])
        .current_dir(dir.join("demo"))
        .output()
        .unwrap()
        .stdout;
    parse_checkpoint(&String::from_utf8(text).unwrap()).unwrap()
}

/// The demo checkpoint grown to `ROUNDS` rounds and three scenarios, gaps drifting.
fn long_campaign(demo: &CampaignState, seed: usize) -> CampaignState {
    let mut s = demo.clone();
    let extra = "long-decode";
    for fw in ["sglang", "vllm"] {
        s.winners.push(WinnerRef {
            framework: fw.into(),
            scenario: extra.into(),
            candidate_id: format!("{fw}-03"),
            value: Some(if fw == "sglang" { 700.0 } else { 760.0 }),
            server_command: s.winners[0].server_command.clone(),
            benchmark_command: s.winners[0].benchmark_command.clone(),
        });
    }
    let templates = demo.rounds.clone();
    s.rounds.clear();
    let mut gap = -8.0 - (seed % 7) as f64;
    for round in 1..=ROUNDS {
        let mut r = templates[(round as usize - 1) % templates.len()].clone();
        r.round = round;
        gap += ((round as usize * 7 + seed * 13) % 11) as f64 / 10.0 - 0.35;
        let mut third = r.gaps[0].clone();
        third.scenario = extra.into();
        r.gaps.push(third);
        for (i, g) in r.gaps.iter_mut().enumerate() {
            g.status = GapStatus::Behind {
                gap_pct: gap - i as f64,
            };
        }
        r.geomean_pct = Some(gap / 10.0);
        s.rounds.push(r);
    }
    s.gaps = s.rounds.last().unwrap().gaps.clone();
    s
}

fn record(i: usize) -> CampaignRecord {
    let phases = [
        AppPhase::Round,
        AppPhase::Waiting,
        AppPhase::Finished,
        AppPhase::Failed,
        AppPhase::Stopped,
    ];
    CampaignRecord {
        id: format!("20261207-llama_3_1_8b_instruct-{i:03}"),
        repo: format!("org{i}/sglang"),
        issue: 100 + i as u64,
        fork: format!("org{i}/sglang"),
        model: "meta-llama/Llama-3.1-8B-Instruct".into(),
        branch: "sota/20261207-llama_3_1_8b_instruct".into(),
        base_branch: "main".into(),
        run_dir: "runs/20261207_llama_3_1_8b_instruct_sota_humanize".into(),
        installation_id: 1,
        pr_number: Some(200 + i as u64),
        pr_node_id: None,
        phase: phases[i % phases.len()],
        round: ROUNDS,
        held: false,
        retries: 0,
        // From JSON, so settings added later with serde defaults need no edit here.
        dispatch: serde_json::from_value::<DispatchSettings>(serde_json::json!({
            "runner_labels": ["self-hosted", "8-gpu-h200"],
            "gpu_model": "h200",
            "gpu_count": 8,
            "visible_devices": "",
            "runner_config": null,
            "max_rounds": ROUNDS,
            "wait_for_human": false,
            "agent_command": "claude -p --output-format json",
        }))
        .unwrap(),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = demo_checkpoint(tmp.path());
    let store = Arc::new(CampaignStore::open(&tmp.path().join("bot.sqlite")).unwrap());
    let agent = AgentUsage {
        cost_usd: Some(0.42),
        turns: Some(31),
        input_tokens: Some(250_000),
        output_tokens: Some(9_000),
    };
    let mut run = 0;
    for i in 0..CAMPAIGNS {
        let rec = record(i);
        store.insert(&rec).unwrap();
        store.set_private(&rec.id, i % 10 == 0).unwrap();
        store
            .save_checkpoint(&rec.id, &long_campaign(&demo, i))
            .unwrap();
        for step in 0..=ROUNDS {
            run += 1;
            store
                .record_run_minutes(run, 1, &rec.id, step, Some(200.0))
                .unwrap();
            if step > 0 {
                store.record_agent_usage(&rec.id, step, &agent).unwrap();
            }
        }
    }
    let source = Arc::new(StoreCampaigns::new(store.clone(), "https://github.com"));
    let app = router(DashboardState {
        source: source.clone(),
        token: Some(DashboardToken::new(TOKEN).unwrap()),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let get = |path: &str| -> (f64, usize) {
        let req = Request::get(path)
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Body::empty())
            .unwrap();
        let app = app.clone();
        rt.block_on(async move {
            let t = Instant::now();
            let resp = app.oneshot(req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap();
            (t.elapsed().as_secs_f64() * 1000.0, body.len())
        })
    };
    let detail = format!("/campaigns/{}", record(7).id);
    // Warm up (template compilation, SQLite page cache).
    for p in ["/campaigns", detail.as_str(), "/api/campaigns"] {
        get(p);
    }
    // Where the list page's time goes: the source (store read, parsed checkpoints kept),
    // the view builder, the HTML renderer.
    let (mut from_source, mut build, mut html) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ITERATIONS {
        let t = Instant::now();
        let snapshots = source.campaigns().unwrap();
        from_source.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let list = view::campaign_list(&snapshots, chrono::Utc::now());
        build.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        render::list_html(&list).unwrap();
        html.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let mut load = Vec::new();
    let mut load_one = Vec::new();
    let mut list = Vec::new();
    let mut page = Vec::new();
    let mut api = Vec::new();
    let (mut list_bytes, mut page_bytes) = (0, 0);
    for _ in 0..ITERATIONS {
        let t = Instant::now();
        let views = store.dashboard_views().unwrap();
        assert_eq!(views.len(), CAMPAIGNS);
        load.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        assert!(store.dashboard_view(&record(7).id).unwrap().is_some());
        load_one.push(t.elapsed().as_secs_f64() * 1000.0);
        let (ms, n) = get("/campaigns");
        list.push(ms);
        list_bytes = n;
        let (ms, n) = get(&detail);
        page.push(ms);
        page_bytes = n;
        api.push(get("/api/campaigns").0);
    }
    let load = median(&mut load);
    let load_one = median(&mut load_one);
    let list = median(&mut list);
    let page = median(&mut page);
    let api = median(&mut api);
    println!(
        "dashboard: {CAMPAIGNS} campaigns x {ROUNDS} rounds x 3 scenarios, medians of {ITERATIONS} runs"
    );
    println!("baseline  load all from the store (SQLite + checkpoint parse): {load:8.2} ms");
    println!("baseline  load one campaign from the store:                  {load_one:8.2} ms");
    println!(
        "GET /campaigns            {list:8.2} ms  ({:.2}x loading all; {} KB; target < 50 ms: {})",
        list / load,
        list_bytes / 1024,
        if list < 50.0 { "met" } else { "MISSED" }
    );
    println!(
        "GET /campaigns/{{id}}       {page:8.2} ms  ({:.2}x loading one; {} KB; target < 50 ms: {})",
        page / load_one,
        page_bytes / 1024,
        if page < 50.0 { "met" } else { "MISSED" }
    );
    println!(
        "GET /api/campaigns        {api:8.2} ms  ({:.2}x loading all)",
        api / load
    );
    println!(
        "list page parts: source {:.2} ms (parsed checkpoints kept), views {:.2} ms, HTML {:.2} ms",
        median(&mut from_source),
        median(&mut build),
        median(&mut html)
    );
}
