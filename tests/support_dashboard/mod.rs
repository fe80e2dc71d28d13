//! Shared by the dashboard tests: the real campaign of `sota-bot local demo` (a git bundle
//! in `tests/fixtures/dashboard/`), its checkpoint as it stood at each of its commits, an
//! App store seeded with campaigns in every status from those checkpoints, and a stand-in
//! for GitHub's web pages that answers 200 only for issues, pull requests, branches,
//! commits and files that exist (the files and commits in the real cloned repository).

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::Router;
use sota_bot::app::store::{AppPhase, CampaignRecord, DispatchSettings};
use sota_bot::app::CampaignStore;
use sota_bot::campaign::state::{parse_checkpoint, CampaignState};
use sota_bot::dashboard::model::AgentUsage;
use sota_bot::dashboard::usage::agent_usage;

pub const BRANCH: &str = "sota/20261207-llama_3_1_8b_instruct";
pub const RUN_DIR: &str = "runs/20261207_llama_3_1_8b_instruct_sota_humanize";
pub const MODEL: &str = "meta-llama/Llama-3.1-8B-Instruct";
pub const TOKEN: &str = "dashboard-test-token-0123456789";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "advice.detachedHead=false"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Clones the demo campaign into `dir/sglang` with the campaign branch checked out.
pub fn clone_demo(dir: &Path) -> PathBuf {
    let bundle = repo_root().join("tests/fixtures/dashboard/local-demo-campaign.bundle");
    git(
        dir,
        &[
            "clone",
            "-q",
            "--branch",
            BRANCH,
            bundle.to_str().unwrap(),
            "sglang",
        ],
    );
    dir.join("sglang")
}

/// The commit of the campaign branch whose subject starts with `prefix`.
pub fn commit_with_subject(repo: &Path, prefix: &str) -> String {
    git(repo, &["log", "--format=%H %s", BRANCH])
        .lines()
        .find_map(|l| {
            let (sha, subject) = l.split_once(' ')?;
            subject.starts_with(prefix).then(|| sha.to_string())
        })
        .unwrap_or_else(|| panic!("no commit `{prefix}` on {BRANCH}"))
}

/// The checkpoint as it was committed at `rev`.
pub fn checkpoint_at(repo: &Path, rev: &str) -> CampaignState {
    let text = git(
        repo,
        &[
            "show",
            &format!("{rev}:{RUN_DIR}/humanize/model-loop-checkpoint.md"),
        ],
    );
    parse_checkpoint(&text).unwrap()
}

/// What the real Claude Code CLI reported about its run (fixture of its JSON output).
pub fn claude_usage() -> AgentUsage {
    let text = std::fs::read_to_string(
        repo_root().join("tests/fixtures/agent-output/claude-code-2.1.332-output-json.json"),
    )
    .unwrap();
    agent_usage(&text).expect("Claude Code reports its usage")
}

/// One seeded campaign.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub id: String,
    pub fork: String,
    pub issue: u64,
    pub pr: Option<u64>,
    pub private: bool,
    /// The dashboard status key it must show.
    pub status: &'static str,
    pub state: Option<CampaignState>,
}

#[allow(clippy::too_many_arguments)]
fn record(
    id: &str,
    fork: &str,
    issue: u64,
    pr: Option<u64>,
    phase: AppPhase,
    round: u32,
    held: bool,
    gpu: (&str, u32),
) -> CampaignRecord {
    CampaignRecord {
        id: id.into(),
        repo: fork.into(),
        issue,
        fork: fork.into(),
        model: MODEL.into(),
        branch: BRANCH.into(),
        base_branch: "main".into(),
        run_dir: RUN_DIR.into(),
        installation_id: 1,
        pr_number: pr,
        pr_node_id: None,
        phase,
        round,
        held,
        retries: 0,
        // From JSON, so settings added later with serde defaults need no edit here.
        dispatch: serde_json::from_value::<DispatchSettings>(serde_json::json!({
            "runner_labels": ["self-hosted", format!("{}-gpu-{}", gpu.1, gpu.0)],
            "gpu_model": gpu.0,
            "gpu_count": gpu.1,
            "visible_devices": "",
            "runner_config": null,
            "max_rounds": 8,
            "wait_for_human": false,
            "agent_command": "claude -p --output-format json",
        }))
        .unwrap(),
    }
}

/// Seeds `store` with campaigns in every status, each from the demo's checkpoint at the
/// commit matching where it stands. Returns them in seeding order.
pub fn seed(store: &CampaignStore, repo: &Path) -> Vec<Seeded> {
    let at = |prefix: &str| checkpoint_at(repo, &commit_with_subject(repo, prefix));
    let claude = claude_usage();
    #[allow(clippy::type_complexity)]
    let plan: Vec<(
        &str,
        &str,
        AppPhase,
        u32,
        bool,
        bool,
        &'static str,
        Option<CampaignState>,
        (&str, u32),
    )> = vec![
        (
            "20261207-llama_3_1_8b_instruct",
            "sgl-h100/sglang",
            AppPhase::Finished,
            3,
            false,
            false,
            "finished",
            Some(at("sota final")),
            ("h100", 1),
        ),
        (
            "20261207-llama_3_1_8b_instruct-h200",
            "sgl-h200/sglang",
            AppPhase::Round,
            3,
            false,
            false,
            "running",
            Some(at("sota round 2:")),
            ("h200", 8),
        ),
        (
            "20261207-llama_3_1_8b_instruct-b200",
            "private-lab/sglang",
            AppPhase::Waiting,
            1,
            false,
            true,
            "waiting",
            Some(at("sota round 1:")),
            ("b200", 2),
        ),
        (
            "20261207-llama_3_1_8b_instruct-mi300",
            "sgl-mi300/sglang",
            AppPhase::Round,
            2,
            true,
            false,
            "held",
            Some(at("sota round 1:")),
            ("mi300x", 1),
        ),
        (
            "20261207-llama_3_1_8b_instruct-h20",
            "sgl-h20/sglang",
            AppPhase::Failed,
            1,
            false,
            false,
            "failed",
            Some(at("sota plan:")),
            ("h20", 4),
        ),
        (
            "20261207-llama_3_1_8b_instruct-gb200",
            "sgl-gb200/sglang",
            AppPhase::Baseline,
            0,
            false,
            false,
            "running",
            None,
            ("gb200", 4),
        ),
    ];
    let mut out = Vec::new();
    let mut run_id = 9000;
    for (i, (id, fork, phase, round, held, private, status, state, gpu)) in
        plan.into_iter().enumerate()
    {
        let issue = 100 + i as u64;
        let pr = (phase != AppPhase::Baseline).then_some(200 + i as u64);
        let rec = record(id, fork, issue, pr, phase, round, held, gpu);
        store.insert(&rec).unwrap();
        store.set_private(id, private).unwrap();
        if let Some(s) = &state {
            store.save_checkpoint(id, s).unwrap();
            // One baseline run and one run per finished round, 40 and 25 minutes long.
            store
                .record_run_minutes(run_id, 1, id, 0, Some(40.0 * f64::from(gpu.1)))
                .unwrap();
            run_id += 1;
            for r in &s.rounds {
                store
                    .record_run_minutes(run_id, 1, id, r.round, Some(25.0 * f64::from(gpu.1)))
                    .unwrap();
                store.record_agent_usage(id, r.round, &claude).unwrap();
                run_id += 1;
            }
        }
        out.push(Seeded {
            id: id.into(),
            fork: fork.into(),
            issue,
            pr,
            private,
            status,
            state,
        });
    }
    out
}

/// Expected gap series per scenario, computed here from the stored checkpoint: the
/// baseline from the winners (best SGLang over best competitor), then each round's stored
/// gap.
pub fn expected_series(state: &CampaignState) -> BTreeMap<String, Vec<(u32, f64)>> {
    let mut out: BTreeMap<String, Vec<(u32, f64)>> = BTreeMap::new();
    let scenarios: BTreeSet<&str> = state.winners.iter().map(|w| w.scenario.as_str()).collect();
    for s in scenarios {
        let best = |sglang: bool| {
            state
                .winners
                .iter()
                .filter(|w| w.scenario == s && (w.framework == "sglang") == sglang)
                .filter_map(|w| w.value)
                .fold(f64::NEG_INFINITY, f64::max)
        };
        let mut points = vec![(0, (best(true) / best(false) - 1.0) * 100.0)];
        for r in &state.rounds {
            if let Some(g) = r
                .gaps
                .iter()
                .find(|g| g.scenario == s)
                .and_then(|g| g.status.gap_pct())
            {
                points.push((r.round, g));
            }
        }
        out.insert(s.to_string(), points);
    }
    out
}

/// What the stand-in for GitHub's web pages knows.
pub struct GitHubWeb {
    /// The clone holding the real commits, branch and files.
    pub repo: PathBuf,
    pub forks: BTreeSet<String>,
    pub issues: BTreeSet<(String, u64)>,
    pub pulls: BTreeSet<(String, u64)>,
}

impl GitHubWeb {
    fn exists(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.trim_start_matches('/').splitn(4, '/').collect();
        let [owner, name, kind, rest] = parts.as_slice() else {
            return false;
        };
        let full = format!("{owner}/{name}");
        let git_ok = |args: &[&str]| {
            Command::new("git")
                .args(args)
                .current_dir(&self.repo)
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        };
        match *kind {
            "issues" => rest.parse().is_ok_and(|n| self.issues.contains(&(full, n))),
            "pull" => rest.parse().is_ok_and(|n| self.pulls.contains(&(full, n))),
            _ if !self.forks.contains(&full) => false,
            "tree" => git_ok(&["rev-parse", "--verify", "-q", &format!("refs/heads/{rest}")]),
            "commit" => {
                rest.len() == 40 && git_ok(&["cat-file", "-e", &format!("{rest}^{{commit}}")])
            }
            // `blob/<branch>/<path>`: the branch may itself hold slashes.
            "blob" => (1..rest.len())
                .filter(|i| rest.as_bytes()[*i] == b'/')
                .any(|i| {
                    let (branch, file) = (&rest[..i], &rest[i + 1..]);
                    git_ok(&["cat-file", "-e", &format!("refs/heads/{branch}:{file}")])
                }),
            _ => false,
        }
    }
}

async fn github_page(State(web): State<Arc<GitHubWeb>>, uri: Uri) -> StatusCode {
    let web2 = web.clone();
    let path = uri.path().to_string();
    let ok = tokio::task::spawn_blocking(move || web2.exists(&path))
        .await
        .unwrap_or(false);
    if ok {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    }
}

/// Serves the stand-in on a loopback port; returns its base URL.
pub async fn serve_github_web(web: GitHubWeb) -> String {
    let app = Router::new()
        .fallback(github_page)
        .with_state(Arc::new(web));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}
