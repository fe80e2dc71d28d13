//! Crash safety of the real binary: a delivery acknowledged by `sota-bot serve` survives
//! `kill -9` before any worker ran, is processed exactly once after restart, and a redelivery
//! of the same id is acknowledged without being processed again, also after its payload was
//! dropped at the end of the retention period.

mod support_github;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::{json, Value};

/// A minimal GitHub stand-in that records the comments the App posts.
#[derive(Clone, Default)]
struct MiniGitHub {
    comments: Arc<Mutex<Vec<String>>>,
    reactions: Arc<Mutex<u32>>,
}

async fn mini(
    State(gh): State<MiniGitHub>,
    method: Method,
    uri: Uri,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let path = uri.path();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let user = json!({"login": "maint", "id": 1, "type": "User"});
    match (method.as_str(), path) {
        ("POST", p) if p.ends_with("/access_tokens") => (
            StatusCode::CREATED,
            axum::Json(json!({"token": "ghs_durability", "expires_at": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339()})),
        )
            .into_response(),
        ("GET", p) if p.ends_with("/permission") => {
            axum::Json(json!({"permission": "admin", "role_name": "admin", "user": user})).into_response()
        }
        ("POST", p) if p.ends_with("/reactions") => {
            *gh.reactions.lock().unwrap() += 1;
            (StatusCode::CREATED, axum::Json(json!({"id": 1, "content": "eyes"}))).into_response()
        }
        ("GET", p) if p.ends_with("/comments") => {
            let list: Vec<Value> = gh
                .comments
                .lock()
                .unwrap()
                .iter()
                .enumerate()
                .map(|(i, b)| json!({"id": i + 1, "body": b}))
                .collect();
            axum::Json(Value::Array(list)).into_response()
        }
        ("POST", p) if p.ends_with("/comments") => {
            let mut comments = gh.comments.lock().unwrap();
            comments.push(body["body"].as_str().unwrap_or("").to_string());
            (StatusCode::CREATED, axum::Json(json!({"id": comments.len(), "body": body["body"]}))).into_response()
        }
        _ => (StatusCode::NOT_FOUND, axum::Json(json!({"message": "Not Found"}))).into_response(),
    }
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_server(dir: &Path, key: &Path, listen: SocketAddr, api: &str, extra: &[&str]) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_sota-bot"))
        .arg("serve")
        .args(["--app-id", "12345"])
        .arg("--private-key-path")
        .arg(key)
        .arg("--database")
        .arg(dir.join("bot.sqlite"))
        .args(["--listen", &listen.to_string(), "--github-api-url", api])
        .args(extra)
        .env("SOTA_BOT_WEBHOOK_SECRETS", "durable-secret")
        .env("SOTA_BOT_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("sota-bot starts");
    let started = Instant::now();
    while std::net::TcpStream::connect(listen).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "server did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Server(child)
}

fn job_states(db: &Path) -> Vec<(String, String, u32)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT delivery_id, state, attempts FROM jobs ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn comment_body() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "action": "created",
        "issue": {"number": 12, "title": "Campaign: Llama", "user": {"login": "maint", "id": 1, "type": "User"}},
        "comment": {"id": 77, "body": "/sota help", "user": {"login": "maint", "id": 1, "type": "User"}},
        "repository": {"id": 5, "name": "sglang", "full_name": "octo/sglang", "owner": {"login": "octo", "id": 2}},
        "sender": {"login": "maint", "id": 1, "type": "User"},
        "installation": {"id": 31},
    }))
    .unwrap()
}

/// Delivers (or redelivers) the one comment event of the story, always as `delivery-1`.
async fn deliver_comment(http: &reqwest::Client, url: &str) -> (u16, String) {
    support_github::post_delivery(
        http,
        url,
        "durable-secret",
        "issue_comment",
        "delivery-1",
        &comment_body(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_delivery_survives_kill_9_and_runs_once() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = support_github::rsa_key_pair(dir.path());
    let gh = MiniGitHub::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(mini).with_state(gh.clone());
    let fake = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let listen: SocketAddr = format!("127.0.0.1:{}", support_github::free_port())
        .parse()
        .unwrap();
    let url = format!("http://{listen}/webhook");
    let http = reqwest::Client::new();
    let db = dir.path().join("bot.sqlite");

    // 1. Workers off: the delivery is acknowledged only once it is in the database.
    let mut first = spawn_server(dir.path(), &key, listen, &api, &["--no-workers"]);
    let (status, _) = deliver_comment(&http, &url).await;
    assert_eq!(status, 202);
    // kill -9: no chance to flush anything after the answer.
    Command::new("kill")
        .args(["-9", &first.0.id().to_string()])
        .status()
        .unwrap();
    let _ = first.0.wait();
    assert_eq!(
        job_states(&db),
        vec![("delivery-1".to_string(), "queued".to_string(), 0)]
    );
    assert!(gh.comments.lock().unwrap().is_empty());

    // 2. Restart with workers: the job runs, once.
    let second = spawn_server(dir.path(), &key, listen, &api, &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while job_states(&db)[0].1 != "done" {
        assert!(Instant::now() < deadline, "{:?}", job_states(&db));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // 3. GitHub redelivers the same delivery: acknowledged, not processed again.
    let (status, text) = deliver_comment(&http, &url).await;
    assert_eq!((status, text.as_str()), (200, "duplicate"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        job_states(&db),
        vec![("delivery-1".to_string(), "done".to_string(), 1)]
    );
    let comments = gh.comments.lock().unwrap().clone();
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(comments[0].contains("/sota help"));
    assert_eq!(*gh.reactions.lock().unwrap(), 1);
    drop(second);

    // 4. Weeks later: the processed delivery's payload is dropped at start-up, its row kept,
    //    and a replay of it is still recognised.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute("UPDATE jobs SET updated_at = 0", [])
        .unwrap();
    let _third = spawn_server(
        dir.path(),
        &key,
        listen,
        &api,
        &["--payload-retention-days", "1"],
    );
    let stored = || -> (i64, Option<String>) {
        rusqlite::Connection::open(&db)
            .unwrap()
            .query_row("SELECT length(payload), payload_codec FROM jobs", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while stored() != (0, Some("pruned".to_string())) {
        assert!(Instant::now() < deadline, "{:?}", stored());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, text) = deliver_comment(&http, &url).await;
    assert_eq!((status, text.as_str()), (200, "duplicate"));
    assert_eq!(gh.comments.lock().unwrap().len(), 1);
    fake.abort();
}

#[test]
fn serve_help_lists_settings_and_missing_settings_are_named() {
    let out = Command::new(env!("CARGO_BIN_EXE_sota-bot"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for env in [
        "SOTA_BOT_APP_ID",
        "SOTA_BOT_PRIVATE_KEY_PATH",
        "SOTA_BOT_WEBHOOK_SECRETS",
        "SOTA_BOT_DATABASE",
        "SOTA_BOT_LISTEN",
        "SOTA_BOT_GITHUB_API_URL",
        "SOTA_BOT_REVIEWER_BASE_URL",
        "SOTA_BOT_REVIEWER_MODEL",
        "SOTA_BOT_REVIEWER_API_KEY_ENV",
        "SOTA_BOT_PAYLOAD_RETENTION_DAYS",
    ] {
        assert!(help.contains(env), "{env} missing from\n{help}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_sota-bot"))
        .args(["serve", "--app-id", "5"])
        .env("SOTA_BOT_WEBHOOK_SECRETS", "topsecret-value")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("private_key_path") && err.contains("SOTA_BOT_PRIVATE_KEY_PATH"),
        "{err}"
    );
    // Secrets never show up, not even in --help with the env var set.
    let out = Command::new(env!("CARGO_BIN_EXE_sota-bot"))
        .args(["serve", "--help"])
        .env("SOTA_BOT_WEBHOOK_SECRETS", "topsecret-value")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("topsecret-value"));
}
