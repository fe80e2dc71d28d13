//! The GitHub App's campaigns as user stories: a maintainer opens a request issue, the App
//! replies, creates the campaign branch, draft PR and baseline dispatch; workflow runs
//! complete and the App reports, checks and dispatches the next round; maintainers hold,
//! continue, retry and stop; readers are refused. Every request goes through Prism with
//! GitHub's OpenAPI description (request validation on) to a fake that keeps the story
//! repository's branches and files; webhooks are the `@octokit/webhooks-examples` payloads.

mod support_github;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sota_bot::app::{AppCampaigns, AppPhase, CampaignStore};
use sota_bot::campaign::state::{CampaignState, Phase, RoundRecord, StopRecord, WinnerRef};
use sota_bot::gate::{GapStatus, GateInput, GateOutcome, ScenarioGapView, Verdict};
use sota_bot::github::signature::WebhookSecret;
use sota_bot::github::{ClientConfig, ClientMetrics, HttpTransport, SystemClock};
use sota_bot::server::handler::{CampaignService, EventRouter, InstallationApis};
use sota_bot::server::metrics::ServiceMetrics;
use sota_bot::server::queue::JobState;
use sota_bot::server::worker::WorkerConfig;
use sota_bot::server::{Service, WorkerStart};
use support_github::{post_delivery, Harness, Seen, TokenApis};

const FORM: &str = "### Model\n\nmeta-llama/Llama-3.1-8B-Instruct\n\n### Precision\n\nbf16\n\n### GPU model\n\nH100\n\n### GPU count\n\n1\n\n### Comparison frameworks\n\n- [x] vLLM\n- [ ] TensorRT-LLM (pytorch backend)\n- [ ] TokenSpeed\n\n### Workload\n\n```yaml\nnum_prompts: 40\n```\n";
const CAMPAIGN: &str = "20260101-llama_3_1_8b_instruct";
const BRANCH: &str = "sota/20260101-llama_3_1_8b_instruct";
const RUN_DIR: &str = "runs/20260101_llama_3_1_8b_instruct_sota_humanize";

/// The request label as GitHub carries it on an issue.
fn request_labels() -> Value {
    json!([{"id": 1, "node_id": "LA_1", "url": "https://api.github.com/x", "name": "sota-campaign", "color": "ffffff", "default": false, "description": null}])
}

fn date() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
}

/// One repository's story: the App running as a service, a fake GitHub behind Prism.
struct Story {
    h: &'static Harness,
    repo: String,
    service: Service,
    _dir: tempfile::TempDir,
    url: String,
    http: reqwest::Client,
    examples: &'static Vec<(String, Vec<Value>)>,
    campaigns: Arc<AppCampaigns>,
    apis: TokenApis,
    deliveries: AtomicU64,
    run_ids: AtomicU64,
}

impl Story {
    async fn new(test: &str, repo: &str) -> Option<Story> {
        let h = support_github::harness(test)?;
        let tools = support_github::tools_dir(test)?;
        let examples = support_github::webhook_examples(&tools);
        h.fake.story_repo(repo, &["main"]);
        h.fake.set_permission("maint", "maintain");
        h.fake.set_permission("reader", "read");
        let transport = || {
            let mut config = ClientConfig::for_base_url(&h.prism_url);
            config.graphql_url = format!("{}/graphql", h.fake_url);
            HttpTransport::new(
                config,
                Arc::new(SystemClock),
                Arc::new(ClientMetrics::default()),
            )
            .unwrap()
        };
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("bot.sqlite");
        let store = Arc::new(CampaignStore::open(&db).unwrap());
        let campaigns = Arc::new(AppCampaigns::with_date(store, date));
        let router = Arc::new(EventRouter::new(
            Arc::new(TokenApis {
                transport: transport(),
            }),
            Some(campaigns.clone() as Arc<dyn CampaignService>),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let service = Service::start(
            listener,
            vec![WebhookSecret::new("story")],
            &db,
            router,
            WorkerConfig {
                workers: 1,
                poll_interval: Duration::from_millis(20),
                base_retry_delay: Duration::from_millis(100),
                ..WorkerConfig::default()
            },
            WorkerStart::Now,
            Arc::new(ServiceMetrics::default()),
        )
        .await
        .unwrap();
        let url = format!("http://{}/webhook", service.addr);
        Some(Story {
            h,
            repo: repo.to_string(),
            service,
            _dir: dir,
            url,
            http: reqwest::Client::new(),
            examples,
            campaigns,
            apis: TokenApis {
                transport: transport(),
            },
            deliveries: AtomicU64::new(0),
            run_ids: AtomicU64::new(5000),
        })
    }

    fn example(&self, event: &str, action: &str) -> Value {
        self.examples
            .iter()
            .find(|(n, _)| n == event)
            .and_then(|(_, e)| e.iter().find(|p| p["action"] == action))
            .cloned()
            .unwrap_or_else(|| panic!("no {event}.{action} example"))
    }

    fn with_repo(&self, mut p: Value) -> Value {
        let (owner, name) = self.repo.split_once('/').unwrap();
        p["repository"]["full_name"] = json!(self.repo);
        p["repository"]["name"] = json!(name);
        p["repository"]["owner"]["login"] = json!(owner);
        p["repository"]["default_branch"] = json!("main");
        p["installation"] =
            json!({"id": 99, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uOTk="});
        p
    }

    /// Delivers a signed webhook and waits until every queued job is done.
    async fn deliver(&self, event: &str, payload: &Value) {
        let n = self.deliveries.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}-{n}", self.repo.replace('/', "-"));
        let body = serde_json::to_vec(payload).unwrap();
        let (status, text) = post_delivery(&self.http, &self.url, "story", event, &id, &body).await;
        assert_eq!(status, 202, "{text}");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let rows = self.service.store.rows().unwrap();
            if rows
                .iter()
                .all(|r| matches!(r.state, JobState::Done | JobState::Dead))
            {
                assert!(rows.iter().all(|r| r.state == JobState::Done), "{rows:#?}");
                return;
            }
            assert!(Instant::now() < deadline, "{rows:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn open_issue(&self, user: &str, body: &str) {
        self.issue_event("opened", user, user, body).await;
    }

    /// An `issues` event on the request issue #7 written by `author`, sent by `sender`
    /// (`edited`: someone else changed the text).
    async fn issue_event(&self, action: &str, author: &str, sender: &str, body: &str) {
        let mut p = self.with_repo(self.example("issues", action));
        p["issue"]["number"] = json!(7);
        p["issue"]["title"] = json!("[sota] Llama 3.1 8B on H100");
        p["issue"]["body"] = json!(body);
        p["issue"]["labels"] = request_labels();
        p["issue"]["user"]["login"] = json!(author);
        p["sender"]["login"] = json!(sender);
        p["sender"]["type"] = json!("User");
        self.deliver("issues", &p).await;
    }

    /// A comment on the request issue #7 (written by `author`, its text `issue_body`).
    async fn comment_on_request(&self, user: &str, text: &str, author: &str, issue_body: &str) {
        let mut p = self.comment_payload(7, user, text);
        p["issue"]["title"] = json!("[sota] Llama 3.1 8B on H100");
        p["issue"]["body"] = json!(issue_body);
        p["issue"]["user"]["login"] = json!(author);
        p["issue"]["labels"] = request_labels();
        self.deliver("issue_comment", &p).await;
    }

    async fn comment(&self, issue: u64, user: &str, text: &str) {
        let p = self.comment_payload(issue, user, text);
        self.deliver("issue_comment", &p).await;
    }

    fn comment_payload(&self, issue: u64, user: &str, text: &str) -> Value {
        let mut p = self.with_repo(self.example("issue_comment", "created"));
        let n = self.deliveries.load(Ordering::SeqCst);
        p["comment"]["id"] = json!(7000 + n);
        p["comment"]["body"] = json!(text);
        p["comment"]["user"]["login"] = json!(user);
        p["comment"]["user"]["type"] = json!("User");
        p["sender"]["login"] = json!(user);
        p["sender"]["type"] = json!("User");
        p["issue"]["number"] = json!(issue);
        p["issue"]["pull_request"] = Value::Null;
        p
    }

    /// A campaign workflow run finishing (`run_id` None: a new run).
    async fn complete_run(&self, title: &str, conclusion: &str, run_id: Option<u64>) -> u64 {
        let id = run_id.unwrap_or_else(|| self.run_ids.fetch_add(1, Ordering::SeqCst));
        self.h.fake.complete_runs(&self.repo, title, conclusion);
        let mut p = self.with_repo(self.example("workflow_run", "completed"));
        p["workflow_run"]["id"] = json!(id);
        p["workflow_run"]["display_title"] = json!(title);
        p["workflow_run"]["head_branch"] = json!(BRANCH);
        p["workflow_run"]["conclusion"] = json!(conclusion);
        p["workflow_run"]["status"] = json!("completed");
        p["workflow_run"]["run_attempt"] = json!(1);
        p["workflow_run"]["run_started_at"] = json!("2026-01-01T10:00:00Z");
        p["workflow_run"]["updated_at"] = json!("2026-01-01T10:30:00Z");
        p["workflow_run"]["html_url"] = json!(format!(
            "https://github.com/{}/actions/runs/{id}",
            self.repo
        ));
        // What GitHub sends for the App's dispatch (the example omits the path).
        let workflow = if title.ends_with(" baseline") {
            "sota-baseline.yml"
        } else {
            "sota-round.yml"
        };
        p["workflow_run"]["event"] = json!("workflow_dispatch");
        p["workflow_run"]["path"] = json!(format!(".github/workflows/{workflow}"));
        p["workflow_run"]["head_repository"]["full_name"] = json!(self.repo);
        self.deliver("workflow_run", &p).await;
        id
    }

    /// A run that only looks like a campaign step: a pull request's own workflow with the
    /// step's title (`run-name`) and a branch named like the campaign's.
    async fn spoof_completion(&self, title: &str, event: &str, path: &str, head_repo: &str) {
        let mut p = self.with_repo(self.example("workflow_run", "completed"));
        p["workflow_run"]["id"] = json!(self.run_ids.fetch_add(1, Ordering::SeqCst));
        p["workflow_run"]["display_title"] = json!(title);
        p["workflow_run"]["head_branch"] = json!(BRANCH);
        p["workflow_run"]["conclusion"] = json!("failure");
        p["workflow_run"]["status"] = json!("completed");
        p["workflow_run"]["event"] = json!(event);
        p["workflow_run"]["path"] = json!(path);
        p["workflow_run"]["head_repository"]["full_name"] = json!(head_repo);
        self.deliver("workflow_run", &p).await;
    }

    fn seen(&self, method: &str, part: &str) -> Vec<Seen> {
        self.h
            .fake
            .seen(&format!("/repos/{}/{part}", self.repo))
            .into_iter()
            .filter(|s| s.method == method)
            .collect()
    }

    fn dispatches(&self) -> Vec<Value> {
        self.seen("POST", "actions/workflows/")
            .into_iter()
            .map(|s| s.body)
            .collect()
    }

    fn comments(&self, issue: u64) -> Vec<String> {
        self.h
            .fake
            .comments(&format!("repos/{}/issues/{issue}", self.repo))
            .into_iter()
            .map(|(_, b)| b)
            .collect()
    }

    /// How many comments on `issue` contain `text` (idempotence checks).
    fn count_comments(&self, issue: u64, text: &str) -> usize {
        self.comments(issue)
            .iter()
            .filter(|c| c.contains(text))
            .count()
    }

    fn comment_containing(&self, issue: u64, text: &str) -> String {
        let all = self.comments(issue);
        all.iter()
            .find(|c| c.contains(text))
            .cloned()
            .unwrap_or_else(|| panic!("no comment on #{issue} contains {text:?}: {all:#?}"))
    }

    /// What a runner commits at the end of a phase: the checkpoint and phase files.
    fn commit_phase(&self, state: &CampaignState, files: &[(String, String)]) {
        let checkpoint = sota_bot::report::render_checkpoint(state).unwrap();
        self.h.fake.set_file(
            &self.repo,
            &format!("{RUN_DIR}/humanize/model-loop-checkpoint.md"),
            &checkpoint,
        );
        for (path, text) in files {
            self.h
                .fake
                .set_file(&self.repo, &format!("{RUN_DIR}/{path}"), text);
        }
    }

    fn phase(&self) -> AppPhase {
        self.campaigns
            .store()
            .get(CAMPAIGN)
            .unwrap()
            .expect("campaign recorded")
            .phase
    }
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
    assert_eq!(checks[0].body["head_sha"], json!(format!("{:0>40}", 1)));
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
    assert!(report.contains("gap-chart.svg"), "{report}");
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
    story.open_issue("maint", FORM).await;
    story.commit_phase(
        &baseline_state(),
        &[("benchmark/summary.md".into(), "# summary\n".into())],
    );
    story
        .complete_run(&format!("sota {CAMPAIGN} baseline"), "success", None)
        .await;
    assert_eq!(story.dispatches().len(), 2);
    let pr = story
        .campaigns
        .store()
        .get(CAMPAIGN)
        .unwrap()
        .unwrap()
        .pr_number
        .unwrap();
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
async fn a_lost_database_is_rebuilt_from_the_campaign_branches() {
    let Some(story) = Story::new("a_lost_database", "story/sglang-recover").await else {
        return;
    };
    story.open_issue("maint", FORM).await;
    story.commit_phase(
        &baseline_state(),
        &[("benchmark/summary.md".into(), "# summary\n".into())],
    );
    story
        .complete_run(&format!("sota {CAMPAIGN} baseline"), "success", None)
        .await;
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
    story.open_issue("maint", FORM).await;
    story.commit_phase(
        &baseline_state(),
        &[("benchmark/summary.md".into(), "# summary\n".into())],
    );
    story
        .complete_run(&format!("sota {CAMPAIGN} baseline"), "success", None)
        .await;
    assert_eq!(story.dispatches().len(), 2);
    let pr = story
        .campaigns
        .store()
        .get(CAMPAIGN)
        .unwrap()
        .unwrap()
        .pr_number
        .unwrap();

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
