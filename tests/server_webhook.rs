//! The webhook endpoint's answers, the durable queue behind it, metrics, and the App's
//! command handling end to end (signed delivery -> queue -> worker -> GitHub through Prism).

mod support_github;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde_json::{json, Value};
use sota_bot::github::events::{
    CheckRunEvent, IssuesEvent, PullRequestEvent, WorkflowJobEvent, WorkflowRunEvent,
};
use sota_bot::github::signature::WebhookSecret;
use sota_bot::github::{ClientConfig, ClientMetrics, HttpTransport, SystemClock};
use sota_bot::server::commands::Command;
use sota_bot::server::handler::{
    CampaignService, CommandContext, EventContext, EventRouter, HandlerError, JobHandler,
};
use sota_bot::server::metrics::ServiceMetrics;
use sota_bot::server::queue::{Job, JobState};
use sota_bot::server::worker::WorkerConfig;
use sota_bot::server::{Service, WorkerStart};
use support_github::{post_delivery, TokenApis};

struct Noop;
impl JobHandler for Noop {
    fn handle<'a>(&'a self, _job: &'a Job) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async { Ok(()) })
    }
}

async fn start(
    handler: Arc<dyn JobHandler>,
    start: WorkerStart,
) -> (Service, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let service = Service::start(
        listener,
        vec![
            WebhookSecret::new("current"),
            WebhookSecret::new("It's a Secret to Everybody"),
        ],
        &dir.path().join("q.sqlite"),
        handler,
        WorkerConfig {
            workers: 2,
            poll_interval: Duration::from_millis(50),
            ..WorkerConfig::default()
        },
        start,
        Arc::new(ServiceMetrics::default()),
    )
    .await
    .unwrap();
    let url = format!("http://{}", service.addr);
    (service, dir, url)
}

#[tokio::test]
async fn endpoint_answers_per_contract() {
    let (service, _dir, base) = start(Arc::new(Noop), WorkerStart::Never).await;
    let url = format!("{base}/webhook");
    let http = reqwest::Client::new();
    let ping = br#"{"zen":"Keep it logically awesome.","hook_id":1}"#;

    // The spec's test vector verifies (then fails as non-JSON, proving it got past the check).
    let r = http
        .post(&url)
        .header("x-github-event", "ping")
        .header("x-github-delivery", "vector")
        .header(
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        )
        .body("Hello, World!")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Missing and wrong signatures.
    let r = http
        .post(&url)
        .header("x-github-event", "ping")
        .header("x-github-delivery", "d0")
        .body(&ping[..])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        post_delivery(&http, &url, "wrong", "ping", "d1", ping)
            .await
            .0,
        401
    );

    // Accepted and durably queued before the answer; the rotated-in secret works too.
    assert_eq!(
        post_delivery(&http, &url, "current", "ping", "d2", ping).await,
        (202, "queued".into())
    );
    let rows = service.store.rows().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].delivery_id.as_str(), rows[0].state.as_str()),
        ("d2", "queued")
    );

    // Redelivery keeps the id: acknowledged, not queued again.
    assert_eq!(
        post_delivery(&http, &url, "current", "ping", "d2", ping).await,
        (200, "duplicate".into())
    );
    assert_eq!(service.store.rows().unwrap().len(), 1);

    // Malformed body, missing headers.
    assert_eq!(
        post_delivery(&http, &url, "current", "ping", "d3", b"{not json")
            .await
            .0,
        400
    );
    let sig = sota_bot::github::signature::sign(&WebhookSecret::new("current"), ping);
    let r = http
        .post(&url)
        .header("x-github-event", "ping")
        .header("x-hub-signature-256", &sig)
        .body(&ping[..])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "missing delivery id");

    // Over 25 MB.
    let huge = vec![b' '; 25 * 1024 * 1024 + 1];
    assert_eq!(
        post_delivery(&http, &url, "current", "ping", "d4", &huge)
            .await
            .0,
        413
    );

    assert_eq!(
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok"
    );
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "sota_webhook_deliveries_total{event=\"ping\",outcome=\"queued\"} 1",
        "sota_webhook_deliveries_total{event=\"ping\",outcome=\"duplicate\"} 1",
        "sota_webhook_deliveries_total{event=\"ping\",outcome=\"bad_signature\"} 2",
        "sota_webhook_deliveries_total{event=\"ping\",outcome=\"malformed\"} 3",
        "sota_webhook_deliveries_total{event=\"ping\",outcome=\"too_large\"} 1",
        "sota_jobs{state=\"queued\"} 1",
    ] {
        assert!(metrics.contains(line), "missing `{line}` in\n{metrics}");
    }
    service.abort();
}

/// Fails the first attempts, to exercise retries and dead-lettering.
struct Flaky {
    calls: Mutex<Vec<(String, u32)>>,
}

impl JobHandler for Flaky {
    fn handle<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            self.calls
                .lock()
                .unwrap()
                .push((job.delivery_id.clone(), job.attempts));
            match job.delivery_id.as_str() {
                "flaky" if job.attempts < 3 => Err(HandlerError::Retryable("transient".into())),
                "broken" => Err(HandlerError::Permanent("cannot ever work".into())),
                "always-failing" => Err(HandlerError::Retryable("still down".into())),
                _ => Ok(()),
            }
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_retry_with_backoff_and_dead_letter() {
    let flaky = Arc::new(Flaky {
        calls: Mutex::new(Vec::new()),
    });
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let service = Service::start(
        listener,
        vec![WebhookSecret::new("s")],
        &dir.path().join("q.sqlite"),
        flaky.clone(),
        WorkerConfig {
            workers: 1,
            max_attempts: 4,
            base_retry_delay: Duration::from_millis(20),
            max_retry_delay: Duration::from_millis(100),
            poll_interval: Duration::from_millis(10),
        },
        WorkerStart::Now,
        Arc::new(ServiceMetrics::default()),
    )
    .await
    .unwrap();
    let url = format!("http://{}/webhook", service.addr);
    let http = reqwest::Client::new();
    for id in ["flaky", "broken", "always-failing"] {
        assert_eq!(
            post_delivery(&http, &url, "s", "ping", id, b"{}").await.0,
            202
        );
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = service.store.rows().unwrap();
        if rows
            .iter()
            .all(|r| r.state == JobState::Done || r.state == JobState::Dead)
        {
            let state = |id: &str| {
                rows.iter()
                    .find(|r| r.delivery_id == id)
                    .map(|r| (r.state, r.attempts))
                    .unwrap()
            };
            assert_eq!(state("flaky"), (JobState::Done, 3));
            assert_eq!(state("broken"), (JobState::Dead, 1));
            assert_eq!(state("always-failing"), (JobState::Dead, 4));
            let dead = rows
                .iter()
                .find(|r| r.delivery_id == "always-failing")
                .unwrap();
            assert!(dead.last_error.as_deref().unwrap().contains("still down"));
            break;
        }
        assert!(Instant::now() < deadline, "{rows:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // GitHub's "Redeliver" of a dead delivery (same id) runs it again; of a done one, not.
    let (status, text) = post_delivery(&http, &url, "s", "ping", "broken", b"{}").await;
    assert_eq!((status, text.as_str()), (202, "requeued"));
    let (status, text) = post_delivery(&http, &url, "s", "ping", "flaky", b"{}").await;
    assert_eq!((status, text.as_str()), (200, "duplicate"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while flaky
        .calls
        .lock()
        .unwrap()
        .iter()
        .filter(|(id, _)| id == "broken")
        .count()
        < 2
    {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    service.abort();

    // The operator's view and hand: `sota-bot queue list|requeue` on the same database.
    let db = dir.path().join("q.sqlite");
    let queue = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sota-bot"))
            .arg("queue")
            .args(args)
            .arg("--database")
            .arg(&db)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, listed, _) = queue(&["list", "--state", "dead"]);
    assert_eq!(code, Some(0));
    assert!(
        listed.contains("always-failing") && listed.contains("still down"),
        "{listed}"
    );
    assert!(!listed.contains("flaky"), "{listed}");
    let id = service
        .store
        .rows()
        .unwrap()
        .into_iter()
        .find(|r| r.delivery_id == "always-failing")
        .unwrap()
        .id;
    let (code, out, _) = queue(&["requeue", &id.to_string()]);
    assert_eq!(
        (code, out.trim()),
        (Some(0), format!("requeued job {id}").as_str())
    );
    let (code, _, err) = queue(&["requeue", &id.to_string()]);
    assert_eq!(code, Some(2), "not dead any more: {err}");
    let (_, listed, _) = queue(&["list", "--state", "queued"]);
    assert!(listed.contains("always-failing"), "{listed}");
    let (code, _, _) = queue(&["list", "--state", "zombie"]);
    assert_eq!(code, Some(2));
}

// --- Command handling through Prism -------------------------------------------------------

/// Records what the router hands to the campaign side (routing test only).
#[derive(Default)]
struct RecordingCampaigns {
    commands: Mutex<Vec<(String, String)>>,
    workflow_runs: Mutex<Vec<u64>>,
}

impl CampaignService for RecordingCampaigns {
    fn on_issue<'a>(
        &'a self,
        _ctx: &'a EventContext,
        _event: &'a IssuesEvent,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async { Ok(()) })
    }
    fn on_command<'a>(
        &'a self,
        ctx: &'a CommandContext,
        command: &'a Command,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            self.commands
                .lock()
                .unwrap()
                .push((ctx.sender.clone(), command.name().to_string()));
            Ok(())
        })
    }
    fn on_workflow_run<'a>(
        &'a self,
        _ctx: &'a EventContext,
        event: &'a WorkflowRunEvent,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            self.workflow_runs
                .lock()
                .unwrap()
                .push(event.workflow_run.id);
            Ok(())
        })
    }
    fn on_workflow_job<'a>(
        &'a self,
        _ctx: &'a EventContext,
        _event: &'a WorkflowJobEvent,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async { Ok(()) })
    }
    fn on_pull_request<'a>(
        &'a self,
        _ctx: &'a EventContext,
        _event: &'a PullRequestEvent,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async { Ok(()) })
    }
    fn on_check_run<'a>(
        &'a self,
        _ctx: &'a EventContext,
        _event: &'a CheckRunEvent,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async { Ok(()) })
    }
    fn campaigns_by_phase(&self) -> Vec<(String, u64)> {
        Vec::new()
    }
}

/// An `issue_comment` delivery on issue #12, built from GitHub's example payload: `user`
/// comments `body` on `repo`; [`CommentEvent::bot`] and [`CommentEvent::edited_from`] vary it.
struct CommentEvent<'a> {
    repo: &'a str,
    user: &'a str,
    body: &'a str,
    user_type: &'a str,
    edited_from: Option<&'a str>,
}

impl<'a> CommentEvent<'a> {
    fn new(repo: &'a str, user: &'a str, body: &'a str) -> Self {
        CommentEvent {
            repo,
            user,
            body,
            user_type: "User",
            edited_from: None,
        }
    }

    /// Written by a bot account.
    fn bot(self) -> Self {
        CommentEvent {
            user_type: "Bot",
            ..self
        }
    }

    /// An `edited` delivery whose text was `old` before.
    fn edited_from(self, old: &'a str) -> Self {
        CommentEvent {
            edited_from: Some(old),
            ..self
        }
    }

    fn payload(&self, examples: &[(String, Vec<Value>)]) -> Vec<u8> {
        let mut p = examples
            .iter()
            .find(|(n, _)| n == "issue_comment")
            .and_then(|(_, e)| e.iter().find(|p| p["action"] == "created"))
            .cloned()
            .expect("issue_comment example");
        p["repository"]["full_name"] = json!(self.repo);
        p["comment"]["body"] = json!(self.body);
        p["comment"]["id"] = json!(4242);
        p["comment"]["user"]["login"] = json!(self.user);
        p["comment"]["user"]["type"] = json!(self.user_type);
        p["sender"]["login"] = json!(self.user);
        p["sender"]["type"] = json!(self.user_type);
        p["issue"]["number"] = json!(12);
        p["installation"] =
            json!({"id": 99, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uOTk="});
        if let Some(old) = self.edited_from {
            p["action"] = json!("edited");
            p["changes"] = json!({"body": {"from": old}});
        }
        serde_json::to_vec(&p).unwrap()
    }
}

async fn wait_done(service: &Service, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let rows = service.store.rows().unwrap();
        if rows.len() >= n
            && rows
                .iter()
                .all(|r| r.state == JobState::Done || r.state == JobState::Dead)
        {
            assert!(rows.iter().all(|r| r.state == JobState::Done), "{rows:?}");
            return;
        }
        assert!(Instant::now() < deadline, "{rows:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_authorized_acknowledged_and_answered() {
    let Some(h) = support_github::harness("commands_are_authorized_acknowledged_and_answered")
    else {
        return;
    };
    let tools = support_github::tools_dir("commands").unwrap();
    let examples = support_github::webhook_examples(&tools);
    let transport = HttpTransport::new(
        ClientConfig::for_base_url(&h.prism_url),
        Arc::new(SystemClock),
        Arc::new(ClientMetrics::default()),
    )
    .unwrap();
    let campaigns = Arc::new(RecordingCampaigns::default());
    let router = Arc::new(EventRouter::new(
        Arc::new(TokenApis { transport }),
        Some(campaigns.clone()),
    ));
    let (service, _dir, base) = start(router, WorkerStart::Now).await;
    let url = format!("{base}/webhook");
    let http = reqwest::Client::new();
    h.fake.set_permission("maint", "maintain");
    h.fake.set_permission("reader", "read");

    let send = |delivery: &'static str, body: Vec<u8>| {
        let http = http.clone();
        let url = url.clone();
        async move {
            post_delivery(&http, &url, "current", "issue_comment", delivery, &body)
                .await
                .0
        }
    };
    // Help from a maintainer, in the help repo.
    assert_eq!(
        send(
            "c1",
            CommentEvent::new("octo/cmd-help", "maint", "/sota help").payload(examples)
        )
        .await,
        202
    );
    // Same delivery again (GitHub redelivery): not processed twice.
    assert_eq!(
        send(
            "c1",
            CommentEvent::new("octo/cmd-help", "maint", "/sota help").payload(examples)
        )
        .await,
        200
    );
    // A reader is refused.
    assert_eq!(
        send(
            "c2",
            CommentEvent::new("octo/cmd-refuse", "reader", "/sota stop").payload(examples)
        )
        .await,
        202
    );
    // Bots are ignored, even with write access.
    h.fake.set_permission("other-bot[bot]", "admin");
    assert_eq!(
        send(
            "c3",
            CommentEvent::new("octo/cmd-bot", "other-bot[bot]", "/sota stop")
                .bot()
                .payload(examples)
        )
        .await,
        202
    );
    // Typo: did-you-mean reply. A quoted command and one in code are ignored.
    let typo = "> /sota stop\n```\n/sota stop\n```\n/sota contineu";
    assert_eq!(
        send(
            "c4",
            CommentEvent::new("octo/cmd-typo", "maint", typo).payload(examples)
        )
        .await,
        202
    );
    // Edit that only adds text: nothing runs; edit that adds a command: only it runs.
    assert_eq!(
        send(
            "c5",
            CommentEvent::new("octo/cmd-edit", "maint", "/sota hold\nthanks")
                .edited_from("/sota hold")
                .payload(examples)
        )
        .await,
        202
    );
    assert_eq!(
        send(
            "c6",
            CommentEvent::new("octo/cmd-edit", "maint", "/sota hold\n/sota stop")
                .edited_from("/sota hold\nthanks")
                .payload(examples)
        )
        .await,
        202
    );
    wait_done(&service, 6).await;

    let help_comments = h.fake.comments("repos/octo/cmd-help/issues/12");
    assert_eq!(help_comments.len(), 1, "{help_comments:?}");
    assert!(help_comments[0].1.contains("/sota continue [note]"));
    assert!(help_comments[0].1.starts_with("<!-- sota-bot:"));
    let reactions = h
        .fake
        .seen("/repos/octo/cmd-help/issues/comments/4242/reactions");
    assert_eq!(reactions.len(), 1);
    assert_eq!(reactions[0].body["content"], "eyes");

    let refusal = h.fake.comments("repos/octo/cmd-refuse/issues/12");
    assert_eq!(refusal.len(), 1);
    assert!(
        refusal[0].1.contains("only people with write"),
        "{}",
        refusal[0].1
    );
    assert_eq!(
        h.fake
            .seen("/repos/octo/cmd-refuse/issues/comments/4242/reactions")[0]
            .body["content"],
        "confused"
    );

    assert!(
        h.fake.seen("/repos/octo/cmd-bot").is_empty(),
        "bots are ignored without any API call"
    );

    let typo_reply = h.fake.comments("repos/octo/cmd-typo/issues/12");
    assert_eq!(typo_reply.len(), 1);
    assert!(
        typo_reply[0].1.contains("did you mean `continue`"),
        "{}",
        typo_reply[0].1
    );

    assert_eq!(
        *campaigns.commands.lock().unwrap(),
        vec![("maint".to_string(), "stop".to_string())],
        "only the newly added /sota stop reached the campaign service; the reader's was refused"
    );
    service.abort();
}
