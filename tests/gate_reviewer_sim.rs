//! The OpenAI-compatible reviewer client against a local simulator of the chat-completions
//! API (an axum server on 127.0.0.1 that records what it was sent).

use axum::{extract::State, http::HeaderMap, routing::post, Json, Router};
use sota_bot::gate::{
    run_gate, Decision, GateConfig, OpenAiReviewer, Reviewer, ReviewerConfig, ReviewerPrompt,
    RoundEvidence, StopReason,
};
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Seen {
    bodies: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
    answer: Arc<Mutex<(u16, String)>>,
}

async fn completions(
    State(seen): State<Seen>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> (axum::http::StatusCode, Json<serde_json::Value>) {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    seen.bodies.lock().unwrap().push((auth, body));
    let (status, text) = seen.answer.lock().unwrap().clone();
    let code = axum::http::StatusCode::from_u16(status).unwrap();
    (
        code,
        Json(
            serde_json::json!({"id": "sim", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}),
        ),
    )
}

/// Starts the simulator on an ephemeral port; it stops when the test's runtime ends.
fn start_sim(seen: Seen) -> (String, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(seen);
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), rt)
}

fn config(base: &str) -> ReviewerConfig {
    ReviewerConfig {
        base_url: base.into(),
        model: "sim-reviewer".into(),
        api_key_env: "UNUSED".into(),
        timeout_secs: 5,
        ..ReviewerConfig::default()
    }
}

#[test]
fn reviewer_client_talks_openai_chat_completions() {
    let seen = Seen::default();
    *seen.answer.lock().unwrap() = (
        200,
        "All good.\nMainline Progress Verdict: ADVANCED\nCOMPLETE\n".into(),
    );
    let (base, _rt) = start_sim(seen.clone());
    let reviewer =
        OpenAiReviewer::with_key(&config(&base), "sk-test-key-000000000000000".into()).unwrap();
    let text = reviewer
        .review(&ReviewerPrompt {
            system: "sys".into(),
            user: "usr".into(),
        })
        .unwrap();
    assert!(text.contains("ADVANCED"));
    let bodies = seen.bodies.lock().unwrap();
    assert_eq!(bodies[0].0, "Bearer sk-test-key-000000000000000");
    assert_eq!(bodies[0].1["model"], "sim-reviewer");
    assert_eq!(bodies[0].1["messages"][0]["role"], "system");
    assert_eq!(bodies[0].1["messages"][1]["content"], "usr");
}

#[test]
fn reviewer_answer_drives_the_decision_and_errors_are_checks() {
    let seen = Seen::default();
    *seen.answer.lock().unwrap() = (
        200,
        "Mainline Progress Verdict: ADVANCED\n\nCOMPLETE".into(),
    );
    let (base, _rt) = start_sim(seen.clone());
    let reviewer = OpenAiReviewer::with_key(&config(&base), "k".into()).unwrap();
    let ev = RoundEvidence {
        round: 1,
        ..Default::default()
    };
    let o = run_gate(&ev, &GateConfig::default(), Some(&reviewer));
    // The empty evidence fails contract checks, so COMPLETE cannot end the loop.
    assert!(!o.accepted);
    assert_eq!(o.decision, Decision::Continue);
    assert!(o.reviewer_text.as_deref().unwrap().contains("COMPLETE"));
    let prompt = seen.bodies.lock().unwrap()[0].1.clone();
    assert!(prompt["messages"][0]["content"]
        .as_str()
        .unwrap()
        .contains("Mainline Progress Verdict"));

    *seen.answer.lock().unwrap() = (500, "boom".into());
    let o = run_gate(&ev, &GateConfig::default(), Some(&reviewer));
    assert!(o
        .checks
        .iter()
        .any(|c| c.id == "reviewer.answered" && !c.passed && c.reason.contains("500")));
    let _ = StopReason::DriftStop;
}

#[test]
fn unreachable_reviewer_is_a_failed_check_not_a_crash() {
    let reviewer = OpenAiReviewer::with_key(&config("http://127.0.0.1:9"), "k".into()).unwrap();
    let o = run_gate(
        &RoundEvidence::default(),
        &GateConfig::default(),
        Some(&reviewer),
    );
    assert!(o
        .checks
        .iter()
        .any(|c| c.id == "reviewer.answered" && !c.passed));
}
