//! The App running as a service in front of the fake GitHub behind Prism, as the App's
//! story tests drive it: signed webhook deliveries built from `@octokit/webhooks-examples`,
//! the queue drained after each, and what the fake saw and stored.
#![allow(dead_code)]

pub mod real;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sota_bot::app::{AppCampaigns, AppPhase, CampaignRecord, CampaignStore};
use sota_bot::github::signature::WebhookSecret;
use sota_bot::github::{ClientConfig, ClientMetrics, HttpTransport, SystemClock};
use sota_bot::server::handler::{CampaignService, EventRouter};
use sota_bot::server::metrics::ServiceMetrics;
use sota_bot::server::queue::JobState;
use sota_bot::server::worker::WorkerConfig;
use sota_bot::server::{Service, WorkerStart};

use crate::support_github::{self, post_delivery, Harness, Seen, TokenApis};

pub const CAMPAIGN: &str = "20260101-llama_3_1_8b_instruct";
pub const BRANCH: &str = "sota/20260101-llama_3_1_8b_instruct";
pub const RUN_DIR: &str = "runs/20260101_llama_3_1_8b_instruct_sota_humanize";

/// A request issue as GitHub renders the installed form, for a small workload (one
/// scenario, eight prompts) so each simulated phase takes seconds.
pub fn form(autonomy: &str, max_rounds: u32) -> String {
    format!(
        "### Model\n\nmeta-llama/Llama-3.1-8B-Instruct\n\n### Precision\n\nbf16\n\n### GPU model\n\nH100\n\n### GPU count\n\n1\n\n\
         ### Comparison frameworks\n\nvllm\n\n\
         ### Workload\n\n```yaml\ndataset: random\nnum_prompts: 8\nscenarios:\n  - {{name: chat, input_len: 1000, output_len: 1000}}\n```\n\n\
         ### SLA\n\n```yaml\nmax_p50_ttft_ms: 5000\nmax_p50_tpot_ms: 100\nmin_success_rate: 0.99\n```\n\n\
         ### Max rounds\n\n{max_rounds}\n\n### Autonomy\n\n{autonomy}\n"
    )
}

/// The request label as GitHub carries it on an issue.
pub fn request_labels() -> Value {
    json!([{"id": 1, "node_id": "LA_1", "url": "https://api.github.com/x", "name": "sota-campaign", "color": "ffffff", "default": false, "description": null}])
}

pub fn date() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
}

/// One repository's story: the App running as a service, a fake GitHub behind Prism.
pub struct Story {
    pub h: &'static Harness,
    pub repo: String,
    pub service: Service,
    pub _dir: tempfile::TempDir,
    pub url: String,
    pub http: reqwest::Client,
    pub examples: &'static Vec<(String, Vec<Value>)>,
    pub campaigns: Arc<AppCampaigns>,
    pub apis: TokenApis,
    pub deliveries: AtomicU64,
    /// Attempts before a job is dead-lettered; below the default, dead jobs are expected.
    pub max_attempts: u32,
    pub run_ids: AtomicU64,
}

impl Story {
    pub async fn new(test: &str, repo: &str) -> Option<Story> {
        Self::with_attempts(test, repo, WorkerConfig::default().max_attempts).await
    }

    /// A story whose worker dead-letters a job after `max_attempts` attempts.
    pub async fn with_attempts(test: &str, repo: &str, max_attempts: u32) -> Option<Story> {
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
                max_attempts,
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
            max_attempts,
            run_ids: AtomicU64::new(5000),
        })
    }

    pub fn example(&self, event: &str, action: &str) -> Value {
        self.examples
            .iter()
            .find(|(n, _)| n == event)
            .and_then(|(_, e)| e.iter().find(|p| p["action"] == action))
            .cloned()
            .unwrap_or_else(|| panic!("no {event}.{action} example"))
    }

    pub fn with_repo(&self, mut p: Value) -> Value {
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
    pub async fn deliver(&self, event: &str, payload: &Value) {
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
                if self.max_attempts >= WorkerConfig::default().max_attempts {
                    assert!(rows.iter().all(|r| r.state == JobState::Done), "{rows:#?}");
                }
                return;
            }
            assert!(Instant::now() < deadline, "{rows:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `user` opens the request issue #7 with `body` (the form as GitHub renders it).
    pub async fn open_request(&self, user: &str, body: &str) {
        self.issue_event("opened", user, user, body).await;
    }

    /// An `issues` event on the request issue #7 written by `author`, sent by `sender`
    /// (`edited`: someone else changed the text).
    pub async fn issue_event(&self, action: &str, author: &str, sender: &str, body: &str) {
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
    pub async fn comment_on_request(&self, user: &str, text: &str, author: &str, issue_body: &str) {
        let mut p = self.comment_payload(7, user, text);
        p["issue"]["title"] = json!("[sota] Llama 3.1 8B on H100");
        p["issue"]["body"] = json!(issue_body);
        p["issue"]["user"]["login"] = json!(author);
        p["issue"]["labels"] = request_labels();
        self.deliver("issue_comment", &p).await;
    }

    pub async fn comment(&self, issue: u64, user: &str, text: &str) {
        let p = self.comment_payload(issue, user, text);
        self.deliver("issue_comment", &p).await;
    }

    pub fn comment_payload(&self, issue: u64, user: &str, text: &str) -> Value {
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
    pub async fn complete_run(&self, title: &str, conclusion: &str, run_id: Option<u64>) -> u64 {
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
    pub async fn spoof_completion(&self, title: &str, event: &str, path: &str, head_repo: &str) {
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

    pub fn seen(&self, method: &str, part: &str) -> Vec<Seen> {
        self.h
            .fake
            .seen(&format!("/repos/{}/{part}", self.repo))
            .into_iter()
            .filter(|s| s.method == method)
            .collect()
    }

    pub fn dispatches(&self) -> Vec<Value> {
        self.seen("POST", "actions/workflows/")
            .into_iter()
            .map(|s| s.body)
            .collect()
    }

    pub fn comments(&self, issue: u64) -> Vec<String> {
        self.h
            .fake
            .comments(&format!("repos/{}/issues/{issue}", self.repo))
            .into_iter()
            .map(|(_, b)| b)
            .collect()
    }

    /// How many comments on `issue` contain `text` (idempotence checks).
    pub fn count_comments(&self, issue: u64, text: &str) -> usize {
        self.comments(issue)
            .iter()
            .filter(|c| c.contains(text))
            .count()
    }

    pub fn comment_containing(&self, issue: u64, text: &str) -> String {
        let all = self.comments(issue);
        all.iter()
            .find(|c| c.contains(text))
            .cloned()
            .unwrap_or_else(|| panic!("no comment on #{issue} contains {text:?}: {all:#?}"))
    }

    /// The App's record of the story's campaign.
    pub fn record(&self) -> CampaignRecord {
        self.campaigns
            .store()
            .get(CAMPAIGN)
            .unwrap()
            .expect("campaign recorded")
    }

    pub fn phase(&self) -> AppPhase {
        self.record().phase
    }

    /// The campaign's pull request.
    pub fn pr(&self) -> u64 {
        self.record().pr_number.expect("a pull request")
    }

    /// `user` comments `text` on the request issue #7.
    pub async fn comment_as(&self, user: &str, text: &str) {
        self.comment(7, user, text).await;
    }

    /// The campaign's status comment on the request issue (edited in place all along).
    pub fn status(&self) -> String {
        self.comment_containing(7, &format!("### sota-bot campaign `{CAMPAIGN}`"))
    }
}
