//! The real example payloads of `@octokit/webhooks-examples`, signed and POSTed to the real
//! endpoint, queued, and parsed into typed events by a worker.

mod support_github;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use sota_bot::github::events::WebhookEvent;
use sota_bot::github::signature::WebhookSecret;
use sota_bot::server::handler::{HandlerError, JobHandler};
use sota_bot::server::metrics::ServiceMetrics;
use sota_bot::server::queue::{Job, JobState};
use sota_bot::server::worker::WorkerConfig;
use sota_bot::server::{Service, WorkerStart};

const MODELLED: [&str; 8] = [
    "issues",
    "issue_comment",
    "pull_request",
    "workflow_run",
    "workflow_job",
    "installation",
    "check_run",
    "ping",
];

/// Parses each job like the App does and records the result and the payload it was given.
#[derive(Default)]
struct ParsingRecorder {
    parsed: Mutex<Vec<(String, Result<String, String>)>>,
    payloads: Mutex<std::collections::HashMap<String, Vec<u8>>>,
}

impl JobHandler for ParsingRecorder {
    fn handle<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let outcome = WebhookEvent::parse(&job.event, &job.payload)
                .map(|e| format!("{:?}", std::mem::discriminant(&e)))
                .map_err(|e| e.to_string());
            self.parsed
                .lock()
                .unwrap()
                .push((job.event.clone(), outcome));
            self.payloads
                .lock()
                .unwrap()
                .insert(job.delivery_id.clone(), job.payload.clone());
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_payload_is_accepted_queued_and_parsed() {
    let Some(tools) =
        support_github::tools_dir("every_example_payload_is_accepted_queued_and_parsed")
    else {
        return;
    };
    let examples = support_github::webhook_examples(&tools);
    assert!(examples.len() >= 50, "{} event names", examples.len());
    for name in MODELLED {
        assert!(
            examples.iter().any(|(n, e)| n == name && !e.is_empty()),
            "no examples for {name}"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(ParsingRecorder::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let service = Service::start(
        listener,
        vec![
            WebhookSecret::new("old-secret"),
            WebhookSecret::new("hook-secret"),
        ],
        &dir.path().join("q.sqlite"),
        recorder.clone(),
        WorkerConfig {
            workers: 2,
            ..WorkerConfig::default()
        },
        WorkerStart::Now,
        Arc::new(ServiceMetrics::default()),
    )
    .await
    .unwrap();
    let url = format!("http://{}/webhook", service.addr);
    let http = reqwest::Client::new();

    let mut sent = 0usize;
    let mut sent_bodies = std::collections::HashMap::new();
    let mut missing_installation = 0usize;
    for (name, payloads) in examples {
        for (i, payload) in payloads.iter().enumerate() {
            let body = serde_json::to_vec(payload).unwrap();
            if MODELLED.contains(&name.as_str()) && payload.get("installation").is_none() {
                missing_installation += 1;
            }
            let delivery = format!("{name}-{i}");
            let (status, text) =
                support_github::post_delivery(&http, &url, "hook-secret", name, &delivery, &body)
                    .await;
            assert_eq!((status, text.as_str()), (202, "queued"), "{name} #{i}");
            sent_bodies.insert(delivery, body);
            sent += 1;
        }
    }
    assert!(
        missing_installation > 0,
        "the examples include payloads without `installation`"
    );

    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while recorder.parsed.lock().unwrap().len() < sent {
        assert!(
            std::time::Instant::now() < deadline,
            "workers did not drain the queue"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let parsed = recorder.parsed.lock().unwrap();
    let failures: Vec<_> = parsed
        .iter()
        .filter(|(event, r)| MODELLED.contains(&event.as_str()) && r.is_err())
        .collect();
    assert!(failures.is_empty(), "typed parsing failed: {failures:#?}");
    for name in MODELLED {
        let n = parsed.iter().filter(|(e, _)| e == name).count();
        let expected = examples
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, e)| e.len());
        assert_eq!(n, expected, "{name}");
    }
    drop(parsed);
    // Every handler saw the exact bytes GitHub sent, though the queue stores them compressed.
    assert!(*recorder.payloads.lock().unwrap() == sent_bodies);
    let rows = service.store.rows().unwrap();
    assert_eq!(rows.len(), sent);
    assert!(rows
        .iter()
        .all(|r| r.state == JobState::Done && r.attempts == 1));
    let (stored, compressed): (i64, i64) = rusqlite::Connection::open(dir.path().join("q.sqlite"))
        .unwrap()
        .query_row(
            "SELECT sum(length(payload)), count(*) FILTER (WHERE payload_codec = 'lz4') FROM jobs",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let sent_bytes: usize = sent_bodies.values().map(Vec::len).sum();
    assert!(
        compressed as usize > sent / 2,
        "{compressed} of {sent} compressed"
    );
    assert!(
        (stored as usize) * 3 < sent_bytes,
        "stored {stored} bytes for {sent_bytes} received"
    );
    service.abort();
}

#[test]
fn typed_fields_of_real_examples() {
    let Some(tools) = support_github::tools_dir("typed_fields_of_real_examples") else {
        return;
    };
    let examples = support_github::webhook_examples(&tools);
    let find = |name: &str, action: &str| {
        examples
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, e)| e.iter().find(|p| p["action"] == action))
            .map(|p| serde_json::to_vec(p).unwrap())
            .unwrap_or_else(|| panic!("no {name}.{action} example"))
    };
    match WebhookEvent::parse("issue_comment", &find("issue_comment", "edited")).unwrap() {
        WebhookEvent::IssueComment(e) => {
            assert!(
                e.changes
                    .and_then(|c| c.body)
                    .and_then(|b| b.from)
                    .is_some(),
                "edited carries the old body"
            );
            assert_eq!(e.repository.full_name, "Codertocat/Hello-World");
        }
        other => panic!("{other:?}"),
    }
    match WebhookEvent::parse("workflow_run", &find("workflow_run", "completed")).unwrap() {
        WebhookEvent::WorkflowRun(e) => {
            assert!(e.workflow_run.id > 0);
            assert_eq!(e.workflow_run.head_sha.len(), 40);
        }
        other => panic!("{other:?}"),
    }
    match WebhookEvent::parse("check_run", &find("check_run", "requested_action")).unwrap() {
        WebhookEvent::CheckRun(e) => assert!(e.requested_action.is_some()),
        other => panic!("{other:?}"),
    }
    match WebhookEvent::parse("pull_request", &find("pull_request", "opened")).unwrap() {
        WebhookEvent::PullRequest(e) => assert_eq!(e.pull_request.number, e.number),
        other => panic!("{other:?}"),
    }
    match WebhookEvent::parse("installation", &find("installation", "created")).unwrap() {
        e @ WebhookEvent::Installation(_) => assert!(e.installation_id().is_some()),
        other => panic!("{other:?}"),
    }
}
