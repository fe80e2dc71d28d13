//! The SIMULATED serving engine: an OpenAI-compatible HTTP server whose latencies come from
//! the continuous-batching scheduler and the engine profile's cost model.
//!
//! One engine task owns the scheduler. It advances a simulated clock by each step's cost and
//! sleeps `cost × time_scale` of real time (never drifting: it sleeps until an absolute
//! deadline, and when the process falls behind, the simulated clock follows real time), then
//! hands each produced token to the waiting HTTP response. The time scale is advertised in
//! the `x-sim-time-scale` header and in `/v1/models`, so clients can report simulated ms.

use super::profile::EngineProfile;
use super::scheduler::{Scheduler, SchedulerLimits};
use crate::framework::Framework;
use crate::tokenizer::ModelTokenizer;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Response header carrying real seconds per simulated second.
pub const TIME_SCALE_HEADER: &str = "x-sim-time-scale";

/// Everything a simulated launch needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub framework: Framework,
    pub profile: EngineProfile,
    pub model: String,
    pub host: String,
    pub port: u16,
    pub time_scale: f64,
    pub max_running_requests: Option<u32>,
    pub chunked_prefill_size: Option<u32>,
    /// Share of total GPU memory for weights + KV cache.
    pub mem_fraction: Option<f64>,
    pub tensor_parallel: u32,
    pub startup_delay: Duration,
    pub never_ready: bool,
    /// Counts prompt tokens as the model would.
    pub tokenizer: Arc<ModelTokenizer>,
    /// One JSON line per request, for checking what clients actually sent.
    pub request_log: Option<PathBuf>,
}

/// Why a simulated launch stopped.
#[derive(Debug, thiserror::Error)]
pub enum SimServeError {
    /// The simulated GPU cannot hold what the flags ask for.
    #[error("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate {tried_gib:.2} GiB. GPU 0 has a total capacity of {total_gib:.2} GiB of which {free_gib:.2} GiB is free. (simulated by sota-bot)")]
    OutOfMemory {
        tried_gib: f64,
        total_gib: f64,
        free_gib: f64,
    },
    #[error("cannot open the request log {path}: {source}")]
    RequestLog {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// The resolved limits and cost model of one launch (OOM checked here).
pub fn resolve_limits(
    config: &ServeConfig,
) -> Result<(EngineProfile, SchedulerLimits), SimServeError> {
    let base = &config.profile;
    let tp = config.tensor_parallel.max(1) as f64;
    let mut profile = base.clone();
    // Tensor parallelism: split weights and per-kernel work, with imperfect scaling.
    let speedup = tp.powf(0.85);
    for k in profile
        .layer_kernels
        .iter_mut()
        .chain(profile.forward_kernels.iter_mut())
    {
        k.prefill_us_per_token /= speedup;
        k.prefill_us_per_token_ctx_k /= speedup;
        k.decode_us_per_step /= speedup;
        k.decode_us_per_seq /= speedup;
        k.decode_us_per_ctx_k /= speedup;
    }
    profile.memory.weights_gb /= tp;
    profile.memory.kv_bytes_per_token /= tp;
    let frac = config
        .mem_fraction
        .unwrap_or(profile.memory.default_mem_fraction);
    let m = &profile.memory;
    if frac > m.max_mem_fraction || frac * m.gpu_mem_gb <= m.weights_gb {
        let total = m.gpu_mem_gb * 0.9922; // a real H100 reports slightly less than nominal
        let tried = (frac * m.gpu_mem_gb - m.weights_gb).max(0.5);
        let free = (m.gpu_mem_gb * (1.0 - m.max_mem_fraction)).max(0.1);
        return Err(SimServeError::OutOfMemory {
            tried_gib: tried,
            total_gib: total,
            free_gib: free,
        });
    }
    let limits = SchedulerLimits {
        max_running_requests: config
            .max_running_requests
            .unwrap_or(profile.scheduler.max_running_requests),
        chunked_prefill_size: config
            .chunked_prefill_size
            .unwrap_or(profile.scheduler.chunked_prefill_size),
        kv_capacity_tokens: profile.kv_capacity_tokens(frac),
    };
    Ok((profile, limits))
}

/// Events the engine sends to one request's response.
#[derive(Debug)]
enum TokenEvent {
    /// Token `index` (1-based); `last` ends the response.
    Token {
        index: u64,
        last: bool,
    },
    Rejected(String),
}

struct Submit {
    id: u64,
    prompt_len: u64,
    max_new: u64,
    tx: mpsc::UnboundedSender<TokenEvent>,
}

struct AppState {
    model: String,
    tokenizer: Arc<ModelTokenizer>,
    /// Texts of generated tokens, each one token of the tokenizer wherever it lands.
    pieces: Vec<String>,
    request_log: Option<Mutex<std::fs::File>>,
    framework: Framework,
    profile_name: String,
    time_scale: f64,
    ready: bool,
    next_id: AtomicU64,
    engine: mpsc::UnboundedSender<Submit>,
}

/// Runs the simulated server until the process is stopped. Fails fast (before binding) with
/// [`SimServeError::OutOfMemory`] when the memory flags cannot fit.
pub async fn serve(config: ServeConfig) -> Result<(), SimServeError> {
    let (profile, limits) = resolve_limits(&config)?;
    tracing::info!(
        framework = %config.framework,
        profile = %profile.name,
        max_running_requests = limits.max_running_requests,
        chunked_prefill_size = limits.chunked_prefill_size,
        kv_capacity_tokens = limits.kv_capacity_tokens,
        time_scale = config.time_scale,
        "simulated engine loaded"
    );
    if !config.startup_delay.is_zero() {
        tokio::time::sleep(config.startup_delay).await;
    }
    let addr = format!("{}:{}", config.host, config.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| SimServeError::Bind {
            addr: addr.clone(),
            source,
        })?;
    serve_on(listener, config, profile, limits).await
}

/// Serves on an already bound listener (tests bind port 0 and read the address).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    config: ServeConfig,
    profile: EngineProfile,
    limits: SchedulerLimits,
) -> Result<(), SimServeError> {
    let request_log = match &config.request_log {
        Some(p) => Some(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|source| SimServeError::RequestLog {
                    path: p.display().to_string(),
                    source,
                })?,
        )),
        None => None,
    };
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(engine_loop(profile.clone(), limits, config.time_scale, rx));
    let state = Arc::new(AppState {
        model: config.model.clone(),
        pieces: output_pieces(&config.tokenizer),
        tokenizer: config.tokenizer.clone(),
        request_log,
        framework: config.framework,
        profile_name: profile.name.clone(),
        time_scale: config.time_scale,
        ready: !config.never_ready,
        next_id: AtomicU64::new(1),
        engine: tx,
    });
    let app = Router::new()
        .route("/health", get(health))
        .route("/health_generate", get(health))
        .route("/v1/models", get(models))
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        .with_state(state);
    if let Ok(addr) = listener.local_addr() {
        // Same readiness line shape as real servers print, for humans reading logs.
        println!(
            "INFO:     Uvicorn running on http://{addr} (simulated engine, Press CTRL+C to quit)"
        );
    }
    axum::serve(listener, app).await?;
    Ok(())
}

async fn engine_loop(
    profile: EngineProfile,
    limits: SchedulerLimits,
    time_scale: f64,
    mut rx: mpsc::UnboundedReceiver<Submit>,
) {
    let mut sched = Scheduler::new(limits);
    let mut waiters: HashMap<u64, mpsc::UnboundedSender<TokenEvent>> = HashMap::new();
    let t0 = Instant::now();
    let mut sim_us = 0.0f64;
    let real_to_sim = |d: Duration| d.as_secs_f64() * 1e6 / time_scale;
    loop {
        if sched.is_idle() {
            let Some(sub) = rx.recv().await else { return };
            sched.submit(sub.id, sub.prompt_len, sub.max_new);
            waiters.insert(sub.id, sub.tx);
        }
        while let Ok(sub) = rx.try_recv() {
            sched.submit(sub.id, sub.prompt_len, sub.max_new);
            waiters.insert(sub.id, sub.tx);
        }
        sim_us = sim_us.max(real_to_sim(t0.elapsed()));
        let Some(step) = sched.step(&profile) else {
            continue;
        };
        sim_us += step.cost_us;
        let deadline = t0 + Duration::from_secs_f64(sim_us * time_scale / 1e6);
        let now = Instant::now();
        // Timers have ~1 ms resolution: shorter waits are batched into the next sleep (the
        // deadline is absolute, so the average pace stays exact).
        if deadline > now + Duration::from_millis(1) {
            tokio::time::sleep_until(deadline.into()).await;
        } else {
            tokio::task::yield_now().await;
        }
        for id in step.rejected {
            if let Some(tx) = waiters.remove(&id) {
                let _ = tx.send(TokenEvent::Rejected(
                    "the request needs more KV-cache tokens than the simulated engine holds".into(),
                ));
            }
        }
        let finished: std::collections::HashSet<u64> = step.finished.iter().copied().collect();
        for (id, index) in step.emitted {
            let last = finished.contains(&id);
            let gone = match waiters.get(&id) {
                Some(tx) => tx.send(TokenEvent::Token { index, last }).is_err(),
                None => true,
            };
            if last || gone {
                waiters.remove(&id);
            }
            if gone && !last {
                sched.cancel(id);
            }
        }
    }
}

fn with_scale(mut resp: Response, scale: f64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&scale.to_string()) {
        resp.headers_mut().insert(TIME_SCALE_HEADER, v);
    }
    resp
}

fn error_response(status: StatusCode, message: &str, scale: f64) -> Response {
    let body = json!({"object": "error", "message": message, "type": "BadRequestError", "code": status.as_u16(),
        "error": {"message": message, "type": "BadRequestError", "code": status.as_u16()}});
    with_scale((status, axum::Json(body)).into_response(), scale)
}

async fn health(State(s): State<Arc<AppState>>) -> Response {
    if s.ready {
        with_scale((StatusCode::OK, "").into_response(), s.time_scale)
    } else {
        with_scale(
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "simulated engine is not ready",
            )
                .into_response(),
            s.time_scale,
        )
    }
}

async fn models(State(s): State<Arc<AppState>>) -> Response {
    if !s.ready {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "simulated engine is not ready",
            s.time_scale,
        );
    }
    let body = json!({"object": "list", "data": [{
        "id": s.model, "object": "model", "created": unix_now(),
        "owned_by": format!("sota-bot-simulator (time_scale={})", s.time_scale),
        "root": s.model, "max_model_len": 131072,
        "sim": {"simulated": true, "framework": s.framework.canonical(), "profile": s.profile_name, "time_scale": s.time_scale}
    }]});
    with_scale(axum::Json(body).into_response(), s.time_scale)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What a request body asks for, after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRequest {
    pub prompt_tokens: u64,
    pub max_tokens: u64,
    /// EOS is not honoured before this many tokens (`min_tokens`, 0 when absent).
    pub min_tokens: u64,
    /// EOS is never honoured (`ignore_eos`).
    pub ignore_eos: bool,
    pub temperature: Option<f64>,
    pub stream: bool,
    pub include_usage: bool,
    pub model: Option<String>,
    /// SHA-256 of the prompt as sent (text or ids), so identical requests are recognisable.
    pub prompt_sha256: String,
}

impl ParsedRequest {
    /// How many tokens the simulated model generates, and whether it stopped at EOS.
    ///
    /// The simulated model ends its answer at a position between 16 and 512 tokens that
    /// depends on the prompt, as a real model emits EOS; only `ignore_eos` (or a
    /// `min_tokens` past that point) makes it generate up to `max_tokens`.
    pub fn generation(&self) -> (u64, bool) {
        if self.ignore_eos {
            return (self.max_tokens, false);
        }
        let seed = u64::from_str_radix(&self.prompt_sha256[..15], 16).unwrap_or(0);
        let eos_at = (16 + seed % 497).max(self.min_tokens);
        if eos_at < self.max_tokens {
            (eos_at, true)
        } else {
            (self.max_tokens, false)
        }
    }
}

/// Prompt tokens as an engine counts them: text with the model's special tokens added,
/// chat message contents without a template, token ids one each.
pub trait PromptCounter {
    fn count_text(&self, text: &str, add_special: bool) -> Result<u64, String>;
}

impl PromptCounter for ModelTokenizer {
    fn count_text(&self, text: &str, add_special: bool) -> Result<u64, String> {
        self.encode(text, add_special)
            .map(|ids| ids.len() as u64)
            .map_err(|e| e.to_string())
    }
}

fn optional_u64(obj: &serde_json::Map<String, Value>, key: &str) -> Result<Option<u64>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("`{key}` must be a non-negative integer")),
    }
}

fn optional_bool(obj: &serde_json::Map<String, Value>, key: &str) -> Result<Option<bool>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(format!("`{key}` must be a boolean")),
    }
}

const PROMPT_SHAPE: &str =
    "`prompt` must be a string, a list of token ids, or a one-element list of those";

/// Reads a completions (`chat == false`) or chat-completions body (pure).
pub fn parse_request(
    body: &[u8],
    chat: bool,
    counter: &dyn PromptCounter,
) -> Result<ParsedRequest, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
    let obj = v
        .as_object()
        .ok_or("the request body must be a JSON object")?;
    let prompt_value = if chat {
        obj.get("messages")
    } else {
        obj.get("prompt")
    };
    let prompt_sha256 = hex::encode(Sha256::digest(
        prompt_value.map(Value::to_string).unwrap_or_default(),
    ));
    let ids = |items: &Vec<Value>| {
        items
            .iter()
            .all(Value::is_u64)
            .then_some(items.len() as u64)
    };
    let prompt_tokens = if chat {
        let msgs = obj
            .get("messages")
            .and_then(Value::as_array)
            .ok_or("`messages` must be a list")?;
        let mut n = 0;
        for m in msgs {
            n += match m.get("content") {
                Some(Value::String(s)) => counter.count_text(s, false)?,
                Some(Value::Array(parts)) => {
                    let mut sum = 0;
                    for text in parts
                        .iter()
                        .filter_map(|p| p.get("text").and_then(Value::as_str))
                    {
                        sum += counter.count_text(text, false)?;
                    }
                    sum
                }
                Some(Value::Null) | None => 0,
                Some(_) => {
                    return Err("message `content` must be a string or a list of parts".into())
                }
            };
        }
        n
    } else {
        match prompt_value {
            Some(Value::String(s)) => counter.count_text(s, true)?,
            Some(Value::Array(items)) => match ids(items) {
                Some(n) => n,
                None if items.len() == 1 => match items.first() {
                    Some(Value::String(s)) => counter.count_text(s, true)?,
                    Some(Value::Array(inner)) => ids(inner).ok_or(PROMPT_SHAPE)?,
                    _ => return Err(PROMPT_SHAPE.into()),
                },
                None => return Err(PROMPT_SHAPE.into()),
            },
            _ => return Err(PROMPT_SHAPE.into()),
        }
    };
    if prompt_tokens == 0 {
        return Err("the prompt is empty".into());
    }
    let max_tokens =
        match optional_u64(obj, "max_tokens")?.or(optional_u64(obj, "max_completion_tokens")?) {
            None => 16,
            Some(0) => return Err("`max_tokens` must be a positive integer".into()),
            Some(n) => n,
        };
    let temperature = match obj.get("temperature") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_f64()
                .filter(|t| *t >= 0.0)
                .ok_or("`temperature` must be a non-negative number")?,
        ),
    };
    let include_usage = obj
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(ParsedRequest {
        prompt_tokens,
        max_tokens,
        min_tokens: optional_u64(obj, "min_tokens")?.unwrap_or(0),
        ignore_eos: optional_bool(obj, "ignore_eos")?.unwrap_or(false),
        temperature,
        stream: optional_bool(obj, "stream")?.unwrap_or(false),
        include_usage,
        model: obj.get("model").and_then(Value::as_str).map(String::from),
        prompt_sha256,
    })
}

/// Up to 64 token texts that stay one token each when concatenated, so a client that
/// re-tokenizes the generated text counts what the engine generated.
fn output_pieces(tokenizer: &ModelTokenizer) -> Vec<String> {
    let mut out = Vec::new();
    for id in tokenizer.ordinary_tokens().iter().take(4096) {
        let Ok(text) = tokenizer.decode(&[*id]) else {
            continue;
        };
        let piece = if text.starts_with(char::is_whitespace) {
            text
        } else {
            format!(" {text}")
        };
        let tripled = piece.repeat(3);
        if tokenizer
            .encode(&tripled, false)
            .is_ok_and(|ids| ids.len() == 3)
        {
            out.push(piece);
            if out.len() == 64 {
                break;
            }
        }
    }
    if out.is_empty() {
        out.push(" x".into());
    }
    out
}

async fn completions(State(s): State<Arc<AppState>>, body: Bytes) -> Response {
    generate(s, body, false).await
}

async fn chat_completions(State(s): State<Arc<AppState>>, body: Bytes) -> Response {
    generate(s, body, true).await
}

fn token_text(s: &AppState, index: u64) -> &str {
    &s.pieces[index as usize % s.pieces.len()]
}

fn log_request(s: &AppState, chat: bool, req: &ParsedRequest, generated: u64) {
    let Some(log) = &s.request_log else { return };
    let line = json!({
        "endpoint": if chat { "/v1/chat/completions" } else { "/v1/completions" },
        "prompt_sha256": req.prompt_sha256, "prompt_tokens": req.prompt_tokens,
        "max_tokens": req.max_tokens, "min_tokens": req.min_tokens, "ignore_eos": req.ignore_eos,
        "temperature": req.temperature, "stream": req.stream, "generated": generated,
    });
    if let Ok(mut f) = log.lock() {
        let _ = writeln!(f, "{line}");
    }
}

async fn generate(s: Arc<AppState>, body: Bytes, chat: bool) -> Response {
    let scale = s.time_scale;
    if !s.ready {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "simulated engine is not ready",
            scale,
        );
    }
    let req = match parse_request(&body, chat, s.tokenizer.as_ref()) {
        Ok(r) => r,
        Err(msg) => return error_response(StatusCode::BAD_REQUEST, &msg, scale),
    };
    if let Some(m) = &req.model {
        if m != &s.model {
            let msg = format!("The model `{m}` does not exist.");
            return error_response(StatusCode::NOT_FOUND, &msg, scale);
        }
    }
    let id = s.next_id.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = mpsc::unbounded_channel();
    let (generated, _) = req.generation();
    log_request(&s, chat, &req, generated);
    let submit = Submit {
        id,
        prompt_len: req.prompt_tokens,
        max_new: generated,
        tx,
    };
    if s.engine.send(submit).is_err() {
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "simulated engine stopped",
            scale,
        );
    }
    let rid = if chat {
        format!("chatcmpl-sim{id}")
    } else {
        format!("cmpl-sim{id}")
    };
    if req.stream {
        stream_response(s, req, rx, rid, chat)
    } else {
        unary_response(s, req, rx, rid, chat).await
    }
}

async fn unary_response(
    s: Arc<AppState>,
    req: ParsedRequest,
    mut rx: mpsc::UnboundedReceiver<TokenEvent>,
    rid: String,
    chat: bool,
) -> Response {
    let mut text = String::new();
    let mut n = 0u64;
    while let Some(ev) = rx.recv().await {
        match ev {
            TokenEvent::Token { index, last } => {
                text.push_str(token_text(&s, index));
                n = index;
                if last {
                    break;
                }
            }
            TokenEvent::Rejected(msg) => {
                return error_response(StatusCode::BAD_REQUEST, &msg, s.time_scale)
            }
        }
    }
    let usage = json!({"prompt_tokens": req.prompt_tokens, "completion_tokens": n, "total_tokens": req.prompt_tokens + n});
    let finish = finish_reason(&req);
    let choice = if chat {
        json!({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish})
    } else {
        json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish})
    };
    let object = if chat {
        "chat.completion"
    } else {
        "text_completion"
    };
    let body = json!({"id": rid, "object": object, "created": unix_now(), "model": s.model, "choices": [choice], "usage": usage});
    with_scale(axum::Json(body).into_response(), s.time_scale)
}

fn finish_reason(req: &ParsedRequest) -> &'static str {
    if req.generation().1 {
        "stop"
    } else {
        "length"
    }
}

fn sse(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

fn stream_response(
    s: Arc<AppState>,
    req: ParsedRequest,
    rx: mpsc::UnboundedReceiver<TokenEvent>,
    rid: String,
    chat: bool,
) -> Response {
    let created = unix_now();
    let model = s.model.clone();
    let object = if chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    };
    let head = if chat {
        vec![sse(
            &json!({"id": rid, "object": object, "created": created, "model": model,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}]}),
        )]
    } else {
        Vec::new()
    };
    struct St {
        rx: mpsc::UnboundedReceiver<TokenEvent>,
        done: bool,
        generated: u64,
    }
    let st = St {
        rx,
        done: false,
        generated: 0,
    };
    let prompt_tokens = req.prompt_tokens;
    let include_usage = req.include_usage;
    let final_reason = finish_reason(&req);
    let state = s.clone();
    let body_stream = futures::stream::unfold(st, move |mut st| {
        let rid = rid.clone();
        let model = model.clone();
        let state = state.clone();
        async move {
            if st.done {
                return None;
            }
            let mut out: Vec<u8> = Vec::new();
            match st.rx.recv().await {
                Some(TokenEvent::Token { index, last }) => {
                    st.generated = index;
                    let finish = if last {
                        json!(final_reason)
                    } else {
                        Value::Null
                    };
                    let piece = token_text(&state, index);
                    let choice = if chat {
                        json!({"index": 0, "delta": {"content": piece}, "logprobs": null, "finish_reason": finish})
                    } else {
                        json!({"index": 0, "text": piece, "logprobs": null, "finish_reason": finish})
                    };
                    out.extend_from_slice(&sse(&json!({"id": rid, "object": object, "created": created, "model": model, "choices": [choice]})));
                    if last {
                        if include_usage {
                            let usage = json!({"prompt_tokens": prompt_tokens, "completion_tokens": st.generated, "total_tokens": prompt_tokens + st.generated});
                            out.extend_from_slice(&sse(&json!({"id": rid, "object": object, "created": created, "model": model, "choices": [], "usage": usage})));
                        }
                        out.extend_from_slice(b"data: [DONE]\n\n");
                        st.done = true;
                    }
                }
                Some(TokenEvent::Rejected(msg)) => {
                    out.extend_from_slice(&sse(&json!({"object": "error", "message": msg, "type": "BadRequestError", "code": 400})));
                    out.extend_from_slice(b"data: [DONE]\n\n");
                    st.done = true;
                }
                None => return None,
            }
            Some((Ok::<Bytes, std::convert::Infallible>(Bytes::from(out)), st))
        }
    });
    let head_stream =
        futures::stream::iter(head.into_iter().map(Ok::<Bytes, std::convert::Infallible>));
    let body = Body::from_stream(futures::StreamExt::chain(head_stream, body_stream));
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    with_scale(resp, s.time_scale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sim_tokenizer() -> &'static ModelTokenizer {
        static T: std::sync::OnceLock<ModelTokenizer> = std::sync::OnceLock::new();
        T.get_or_init(|| {
            ModelTokenizer::load(crate::tokenizer::TokenizerSource::BuiltinSim).unwrap()
        })
    }

    #[test]
    fn request_parsing_counts_tokens_with_the_tokenizer() {
        let t = sim_tokenizer();
        let r = parse_request(br#"{"model":"m","prompt":"ba be bi","max_tokens":4,"stream":true,"stream_options":{"include_usage":true}}"#, false, t).unwrap();
        assert_eq!(
            (r.prompt_tokens, r.max_tokens, r.stream, r.include_usage),
            (3, 4, true, true)
        );
        let r = parse_request(br#"{"prompt":[1,2,3,4,5]}"#, false, t).unwrap();
        assert_eq!((r.prompt_tokens, r.max_tokens), (5, 16));
        let r = parse_request(br#"{"prompt":[[1,2,3]]}"#, false, t).unwrap();
        assert_eq!(r.prompt_tokens, 3);
        let r = parse_request(br#"{"messages":[{"role":"user","content":"ba be"},{"role":"user","content":[{"type":"text","text":"bo"}]}],"max_completion_tokens":2}"#, true, t).unwrap();
        assert_eq!((r.prompt_tokens, r.max_tokens), (3, 2));
        assert!(parse_request(br#"{"prompt":""}"#, false, t).is_err());
        assert!(parse_request(br#"{"prompt":"ba","max_tokens":0}"#, false, t).is_err());
        assert!(parse_request(br#"{"prompt":"ba","ignore_eos":"yes"}"#, false, t).is_err());
        assert!(parse_request(br#"{"prompt":[1,"a"]}"#, false, t).is_err());
        assert!(parse_request(b"nope", false, t).is_err());
    }

    #[test]
    fn without_ignore_eos_the_simulated_model_stops_early() {
        let t = sim_tokenizer();
        let body = |extra: &str| {
            format!(r#"{{"prompt":"ba be bi","max_tokens":1000{extra}}}"#).into_bytes()
        };
        let free = parse_request(&body(""), false, t).unwrap();
        let (n, eos) = free.generation();
        assert!(eos && (16..=512).contains(&n), "{n} {eos}");
        let forced = parse_request(&body(r#","ignore_eos":true"#), false, t).unwrap();
        assert_eq!(forced.generation(), (1000, false));
        let min = parse_request(&body(r#","min_tokens":1000"#), false, t).unwrap();
        assert_eq!(min.generation(), (1000, false));
        let short = parse_request(br#"{"prompt":"ba","max_tokens":4}"#, false, t).unwrap();
        assert_eq!(short.generation(), (4, false));
        assert_eq!(
            free.generation(),
            free.clone().generation(),
            "deterministic"
        );
    }

    #[test]
    fn generated_pieces_are_one_token_each_when_joined() {
        let t = sim_tokenizer();
        let pieces = output_pieces(t);
        assert_eq!(pieces.len(), 64);
        let text: String = pieces.concat();
        assert_eq!(t.encode(&text, false).unwrap().len(), 64);
    }

    proptest! {
        #[test]
        fn request_parser_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200), chat in any::<bool>()) {
            let t = sim_tokenizer();
            let _ = parse_request(&body, chat, t);
        }
    }
}
