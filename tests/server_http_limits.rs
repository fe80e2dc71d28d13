//! What an unauthenticated client can hold on `POST /webhook`, with raw TCP clients against
//! the real service: headers that never finish, a body sent at one byte at a time, bodies
//! declaring 25 MB that never arrive, more connections than the limit, made-up event names,
//! and a shutdown while a slow client is still sending.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use sota_bot::github::signature::{sign, WebhookSecret};
use sota_bot::server::handler::{HandlerError, JobHandler};
use sota_bot::server::listener::HttpLimits;
use sota_bot::server::metrics::ServiceMetrics;
use sota_bot::server::queue::Job;
use sota_bot::server::worker::WorkerConfig;
use sota_bot::server::{Service, ServiceOptions, WorkerStart};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Noop;

impl JobHandler for Noop {
    fn handle<'a>(&'a self, _job: &'a Job) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async { Ok(()) })
    }
}

const SECRET: &str = "limits";

fn limits() -> HttpLimits {
    HttpLimits {
        max_connections: 8,
        header_timeout: Duration::from_millis(400),
        body_timeout: Duration::from_millis(800),
        max_inflight_body_bytes: 1024 * 1024,
        shutdown_grace: Duration::from_millis(500),
    }
}

async fn service(dir: &tempfile::TempDir, limits: HttpLimits) -> Service {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = ServiceOptions {
        limits,
        ..ServiceOptions::default()
    };
    Service::start_with_options(
        listener,
        vec![WebhookSecret::new(SECRET)],
        &dir.path().join("q.sqlite"),
        Arc::new(Noop),
        WorkerConfig::default(),
        WorkerStart::Never,
        Arc::new(ServiceMetrics::default()),
        options,
    )
    .await
    .unwrap()
}

/// Everything the server sends until it closes the connection (or `wait` passes).
async fn answer(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(wait, stream.read_to_end(&mut out)).await;
    read.ok()
        .map(|_| String::from_utf8_lossy(&out).into_owned())
}

fn head(event: &str, length: usize) -> String {
    format!(
        "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-GitHub-Event: {event}\r\nX-GitHub-Delivery: d\r\nX-Hub-Signature-256: sha256={}\r\nContent-Length: {length}\r\n\r\n",
        "0".repeat(64)
    )
}

async fn signed(url: &str, delivery: &str) -> (u16, String) {
    let body = br#"{"zen":"ok"}"#;
    let response = reqwest::Client::new()
        .post(url)
        .header("x-github-event", "ping")
        .header("x-github-delivery", delivery)
        .header(
            "x-hub-signature-256",
            sign(&WebhookSecret::new(SECRET), body),
        )
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_slow_bodies_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(&dir, limits()).await;
    // Headers that never finish: the connection is closed.
    let mut slow_head = TcpStream::connect(svc.addr).await.unwrap();
    slow_head
        .write_all(b"POST /webhook HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let closed = answer(&mut slow_head, Duration::from_secs(10)).await;
    assert!(closed.is_some(), "still open after the header timeout");
    // An idle keep-alive connection is closed the same way.
    let mut idle = TcpStream::connect(svc.addr).await.unwrap();
    assert!(answer(&mut idle, Duration::from_secs(10)).await.is_some());

    // A body at one byte per 100 ms: 408, and nothing queued.
    let mut slow_body = TcpStream::connect(svc.addr).await.unwrap();
    slow_body
        .write_all(head("ping", 1000).as_bytes())
        .await
        .unwrap();
    let trickle = tokio::spawn(async move {
        for _ in 0..100 {
            if slow_body.write_all(b"{").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        slow_body
    });
    let mut slow_body = trickle.await.unwrap();
    let text = answer(&mut slow_body, Duration::from_secs(10))
        .await
        .unwrap_or_default();
    assert!(text.starts_with("HTTP/1.1 408"), "{text:?}");
    assert!(svc.store.rows().unwrap().is_empty());
    svc.abort();
}

/// The `sota_webhook_body_bytes_in_flight` gauge.
async fn in_flight(addr: std::net::SocketAddr) -> usize {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("sota_webhook_body_bytes_in_flight "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no gauge in {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_bodies_never_hold_more_than_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = limits();
    l.body_timeout = Duration::from_secs(3);
    let svc = service(&dir, l).await;
    // Four clients declare 25 MB each, send 600 KB and stall (the attack that took the
    // service from 39 to 335 MB). The 1 MB budget is all they get between them.
    let mut clients = Vec::new();
    for _ in 0..4 {
        let mut c = TcpStream::connect(svc.addr).await.unwrap();
        c.write_all(head("ping", 25 * 1024 * 1024).as_bytes())
            .await
            .unwrap();
        clients.push(tokio::spawn(async move {
            let _ = c.write_all(&vec![b' '; 600 * 1024]).await;
            let text = answer(&mut c, Duration::from_secs(20))
                .await
                .unwrap_or_default();
            text.get(..12).unwrap_or("").to_string()
        }));
    }
    let mut most = 0;
    for _ in 0..20 {
        let held = in_flight(svc.addr).await;
        assert!(held <= 1024 * 1024, "{held} bytes held");
        most = most.max(held);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(most > 600 * 1024, "the clients' bytes were read: {most}");
    // Each is cut off at its deadline: 408 while sending, 503 while waiting for budget.
    for c in clients {
        let status = c.await.unwrap();
        assert!(
            status == "HTTP/1.1 408" || status == "HTTP/1.1 503",
            "{status:?}"
        );
    }
    assert_eq!(in_flight(svc.addr).await, 0);
    // The budget is free again: a real delivery goes through.
    let url = format!("http://{}/webhook", svc.addr);
    assert_eq!(
        signed(&url, "after-the-attack").await,
        (202, "queued".into())
    );
    svc.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_wait_their_turn() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = limits();
    l.max_connections = 2;
    l.header_timeout = Duration::from_secs(30);
    let svc = service(&dir, l).await;
    let url = format!("http://{}/webhook", svc.addr);
    let mut held: Vec<TcpStream> = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(svc.addr).await.unwrap();
        c.write_all(b"POST /webhook HTTP/1.1\r\n").await.unwrap();
        held.push(c);
    }
    // Both slots taken: a third client is not served...
    let third = tokio::spawn(async move { signed(&url, "third").await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!third.is_finished(), "served beyond the connection limit");
    // ...until a slot frees.
    drop(held.pop());
    let done = tokio::time::timeout(Duration::from_secs(10), third)
        .await
        .expect("served once a slot was free")
        .unwrap();
    assert_eq!(done, (202, "queued".into()));
    svc.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_event_names_share_one_metrics_series() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(&dir, HttpLimits::default()).await;
    let url = format!("http://{}/webhook", svc.addr);
    let http = reqwest::Client::new();
    for i in 0..300 {
        let status = http
            .post(&url)
            .header("x-github-event", format!("made-up-{i}"))
            .header("x-github-delivery", format!("d{i}"))
            .header("x-hub-signature-256", format!("sha256={}", "0".repeat(64)))
            .body("{}")
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 401);
    }
    let metrics = http
        .get(format!("http://{}/metrics", svc.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "sota_webhook_deliveries_total{event=\"other\",outcome=\"bad_signature\"} 300"
        ),
        "{metrics}"
    );
    assert!(!metrics.contains("made-up"), "{metrics}");
    svc.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_slow_clients_only_for_its_grace_period() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut l = limits();
    l.body_timeout = Duration::from_secs(3600);
    l.header_timeout = Duration::from_secs(3600);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let dir = tempfile::tempdir().unwrap();
    let state = sota_bot::server::http::HttpState {
        secrets: Arc::new(vec![WebhookSecret::new(SECRET)]),
        writer: sota_bot::server::queue::IngestWriter::start(&dir.path().join("q.sqlite")).unwrap(),
        store: Arc::new(
            sota_bot::server::queue::JobStore::open(&dir.path().join("q.sqlite")).unwrap(),
        ),
        metrics: Arc::new(ServiceMetrics::default()),
        wake: Arc::new(tokio::sync::Notify::new()),
        limits: l,
        body_budget: sota_bot::server::http::HttpState::body_budget(&l),
    };
    let server = tokio::spawn(sota_bot::server::listener::serve(
        listener,
        sota_bot::server::http::router(state),
        l,
        async {
            let _ = stopped.await;
        },
    ));
    // A client sending a body at 1 B/s, and one that never finishes its headers.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(head("ping", 1000).as_bytes()).await.unwrap();
    slow.write_all(b"{").await.unwrap();
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"POST /webhook HTTP/1.1\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("shutdown finished after its grace period, not with the slow clients")
        .unwrap();
    assert!(answer(&mut slow, Duration::from_secs(5)).await.is_some());
}
