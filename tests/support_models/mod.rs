//! Model-endpoint SIMULATORS for the real coding-agent CLIs: a scripted model on loopback
//! that speaks the real wire protocols, so Claude Code and Codex run unmodified and edit a
//! real checkout through their own tools.
//!
//! - [`ModelSim::anthropic`]: Anthropic Messages API, `POST /v1/messages` answered as a
//!   server-sent event stream (`message_start`, `content_block_start` /
//!   `content_block_delta` / `content_block_stop` for a `tool_use` of the `Bash` or `Write`
//!   tool or for text, `message_delta` with the stop reason and usage, `message_stop`), or
//!   an API error object with its HTTP status.
//! - [`ModelSim::responses`]: OpenAI Responses API, `POST /v1/responses` answered as an
//!   event stream (`response.created`, `response.output_item.done` with a `function_call`
//!   of `exec_command` or an assistant `message`, `response.completed` with usage), or an
//!   error object with its HTTP status.
//!
//! Only the model's answers are scripted: a [`Script`] sees the conversation so far (the
//! user prompt and how many tool results came back) and picks the next [`Reply`].

#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// What the conversation looks like when the model is asked for its next answer.
#[derive(Debug, Clone)]
pub struct Conversation {
    /// Every user text of the request, joined (the round prompt is in there).
    pub prompt: String,
    /// Tool results sent back so far (one per finished tool call).
    pub tool_results: usize,
    /// The text of the latest tool result.
    pub last_tool_output: String,
}

/// The model's next answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Run this shell command (Claude Code's `Bash` tool; Codex's `exec_command`).
    Shell(String),
    /// Write a file (Claude Code's `Write` tool; absolute path).
    Write { path: String, content: String },
    /// A final text answer: the agent ends its turn.
    Text(String),
    /// An API error with this HTTP status.
    Error(u16),
    /// Never answer (the agent's request hangs).
    Hang,
}

/// Picks the next reply.
pub type Script = Arc<dyn Fn(&Conversation) -> Reply + Send + Sync>;

#[derive(Clone)]
struct Shared {
    script: Script,
    requests: Arc<Mutex<Vec<(String, Value)>>>,
}

/// A running model-endpoint simulator.
pub struct ModelSim {
    pub base: String,
    requests: Arc<Mutex<Vec<(String, Value)>>>,
    _runtime: tokio::runtime::Runtime,
}

impl ModelSim {
    /// An Anthropic Messages endpoint (`ANTHROPIC_BASE_URL` = [`ModelSim::base`]).
    pub fn anthropic(script: Script) -> ModelSim {
        Self::start(script, anthropic)
    }

    /// An OpenAI Responses endpoint (Codex provider `base_url` = `{base}/v1`).
    pub fn responses(script: Script) -> ModelSim {
        Self::start(script, responses)
    }

    fn start<F, Fut>(script: Script, handler: F) -> ModelSim
    where
        F: Fn(State<Shared>, Uri, Bytes) -> Fut + Clone + Send + Sync + 'static,
        Fut: std::future::Future<Output = Response> + Send + 'static,
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared {
            script,
            requests: requests.clone(),
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(async move {
            let app = axum::Router::new()
                .fallback(axum::routing::post(handler))
                .with_state(shared);
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
        ModelSim {
            base,
            requests,
            _runtime: runtime,
        }
    }

    /// `(path, body)` of every request so far.
    pub fn requests(&self) -> Vec<(String, Value)> {
        self.requests.lock().unwrap().clone()
    }
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn sse(events: &[Value]) -> Response {
    let mut body = String::new();
    for e in events {
        let name = e["type"].as_str().unwrap_or("message");
        body.push_str(&format!("event: {name}\ndata: {e}\n\n"));
    }
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn hang() -> Response {
    tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    StatusCode::GATEWAY_TIMEOUT.into_response()
}

fn record(shared: &Shared, uri: &Uri, body: &Bytes) -> Option<Value> {
    let v: Value = serde_json::from_slice(body).ok()?;
    shared
        .requests
        .lock()
        .unwrap()
        .push((uri.path().to_string(), v.clone()));
    Some(v)
}

async fn anthropic(State(shared): State<Shared>, uri: Uri, body: Bytes) -> Response {
    let Some(req) = record(&shared, &uri, &body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    if uri.path() != "/v1/messages" {
        return StatusCode::NOT_FOUND.into_response();
    }
    let messages = req["messages"].as_array().cloned().unwrap_or_default();
    let mut prompt = Vec::new();
    let mut results = Vec::new();
    for m in &messages {
        if m["role"] == "user" {
            prompt.push(text_of(&m["content"]));
            for block in m["content"].as_array().into_iter().flatten() {
                if block["type"] == "tool_result" {
                    results.push(text_of(&block["content"]));
                }
            }
        }
    }
    let conv = Conversation {
        prompt: prompt.join("\n"),
        tool_results: results.len(),
        last_tool_output: results.last().cloned().unwrap_or_default(),
    };
    let model = req["model"].as_str().unwrap_or("claude-sim").to_string();
    let start = json!({"type": "message_start", "message": {
        "id": format!("msg_sim_{}", conv.tool_results), "type": "message", "role": "assistant",
        "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": 1200, "output_tokens": 1}}});
    let (block, delta, stop_reason) = match (shared.script)(&conv) {
        Reply::Hang => return hang().await,
        Reply::Error(status) => {
            let kind = match status {
                401 => "authentication_error",
                429 => "rate_limit_error",
                529 => "overloaded_error",
                _ => "api_error",
            };
            let body = json!({"type": "error", "error": {"type": kind, "message": format!("model endpoint simulator: scripted {status}")}});
            return (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
        }
        Reply::Text(t) => (
            json!({"type": "text", "text": ""}),
            json!({"type": "text_delta", "text": t}),
            "end_turn",
        ),
        Reply::Shell(cmd) => (
            json!({"type": "tool_use", "id": format!("toolu_sim_{}", conv.tool_results), "name": "Bash", "input": {}}),
            json!({"type": "input_json_delta", "partial_json": json!({"command": cmd, "description": "scripted step"}).to_string()}),
            "tool_use",
        ),
        Reply::Write { path, content } => (
            json!({"type": "tool_use", "id": format!("toolu_sim_{}", conv.tool_results), "name": "Write", "input": {}}),
            json!({"type": "input_json_delta", "partial_json": json!({"file_path": path, "content": content}).to_string()}),
            "tool_use",
        ),
    };
    sse(&[
        start,
        json!({"type": "content_block_start", "index": 0, "content_block": block}),
        json!({"type": "content_block_delta", "index": 0, "delta": delta}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": {"output_tokens": 40}}),
        json!({"type": "message_stop"}),
    ])
}

async fn responses(State(shared): State<Shared>, uri: Uri, body: Bytes) -> Response {
    let Some(req) = record(&shared, &uri, &body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    if uri.path() != "/v1/responses" {
        return StatusCode::NOT_FOUND.into_response();
    }
    let items = req["input"].as_array().cloned().unwrap_or_default();
    let prompt: Vec<String> = items
        .iter()
        .filter(|i| i["role"] == "user")
        .map(|i| text_of(&i["content"]))
        .collect();
    let outputs: Vec<String> = items
        .iter()
        .filter(|i| i["type"] == "function_call_output")
        .map(|i| match &i["output"] {
            Value::String(s) => s.clone(),
            other => text_of(other),
        })
        .collect();
    let conv = Conversation {
        prompt: prompt.join("\n"),
        tool_results: outputs.len(),
        last_tool_output: outputs.last().cloned().unwrap_or_default(),
    };
    let id = format!("resp_sim_{}", conv.tool_results);
    let item = match (shared.script)(&conv) {
        Reply::Hang => return hang().await,
        Reply::Error(status) => {
            let body = json!({"error": {"type": if status == 401 { "invalid_request_error" } else { "server_error" }, "code": null,
                "message": format!("model endpoint simulator: scripted {status}")}});
            return (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
        }
        Reply::Text(t) => json!({"type": "message", "role": "assistant", "id": format!("msg_{id}"),
            "content": [{"type": "output_text", "text": t, "annotations": []}]}),
        Reply::Shell(cmd) => json!({"type": "function_call", "id": format!("fc_{id}"),
            "call_id": format!("call_{id}"), "name": "exec_command",
            "arguments": json!({"cmd": cmd}).to_string()}),
        Reply::Write { path, content } => json!({"type": "function_call", "id": format!("fc_{id}"),
            "call_id": format!("call_{id}"), "name": "exec_command",
            "arguments": json!({"cmd": format!("cat > '{path}' <<'SOTA_EOF'\n{content}\nSOTA_EOF")}).to_string()}),
    };
    sse(&[
        json!({"type": "response.created", "response": {"id": id}}),
        json!({"type": "response.output_item.done", "output_index": 0, "item": item}),
        json!({"type": "response.completed", "response": {"id": id, "usage": {
            "input_tokens": 1500, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 60, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 1560}}}),
    ])
}
