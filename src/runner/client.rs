//! The built-in OpenAI-compatible benchmark client (`sota-bot bench run`).
//!
//! Framework-neutral: it sends the same random-dataset requests to any server that speaks
//! `/v1/completions` or `/v1/chat/completions` with streaming, so it can be the one request
//! path for every framework in a real campaign, and it is what measures the simulated engine.
//! Prompts are built from the model's tokenizer to exactly the planned length
//! ([`crate::tokenizer::prompts`]), from a seed, so every framework gets the same request
//! bytes; every request asks for exactly `output_len` tokens (`max_tokens` = `min_tokens`,
//! `ignore_eos`) at temperature 0. The token counts each request really had (the server's
//! `usage` when it reports one) are kept, so a row records the workload it measured.
//! Metric definitions follow the serving benchmarks: TTFT is the time to the first non-empty
//! content chunk, TPOT is `(e2e - ttft) / (output_tokens - 1)`, ITL is every gap between
//! content chunks; failed requests count against the success rate and their latencies are
//! excluded. When the server advertises `x-sim-time-scale` (the simulator does), every
//! latency and throughput is converted to simulated time.

use crate::bench::row::{Metrics, RequestRate};
use crate::sim::server::TIME_SCALE_HEADER;
use crate::tokenizer::prompts::{prompt_digest, prompt_set, Prompt, PromptError};
use crate::tokenizer::ModelTokenizer;
use futures::StreamExt;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a prompt goes over the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptFormat {
    /// Text that encodes to exactly the planned length (every endpoint takes it).
    Text,
    /// The token ids themselves (`/v1/completions` only; no special tokens are added).
    Ids,
}

/// The prompts of one run, built before any request is sent.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptSet {
    pub prompts: Vec<Prompt>,
    pub format: PromptFormat,
    /// Equal digests mean the same request prompts (see [`prompt_digest`]).
    pub digest: String,
}

/// Builds `num_prompts` prompts of exactly `input_len` tokens of `tokenizer` from `seed`.
pub fn build_prompts(
    tokenizer: &ModelTokenizer,
    input_len: u64,
    num_prompts: u64,
    seed: u64,
    format: PromptFormat,
) -> Result<PromptSet, PromptError> {
    let prompts = prompt_set(tokenizer, input_len as usize, num_prompts as usize, seed)?;
    Ok(PromptSet {
        digest: prompt_digest(&prompts),
        prompts,
        format,
    })
}

/// One benchmark run's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    pub base_url: String,
    pub model: String,
    /// `/v1/completions` or `/v1/chat/completions`.
    pub endpoint: String,
    pub input_len: u64,
    pub output_len: u64,
    pub num_prompts: u64,
    pub max_concurrency: Option<u64>,
    pub request_rate: RequestRate,
    /// Seeds the arrival process (the prompts were built from it too).
    pub seed: u64,
    pub request_timeout: Duration,
    pub prompts: Arc<PromptSet>,
}

/// What happened to one request, in real milliseconds (scaled later).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestResult {
    pub success: bool,
    pub error: Option<String>,
    /// Prompt tokens as the server counted them (its `usage`), else as sent.
    pub prompt_tokens: u64,
    /// Generated tokens as the server counted them (its `usage`), else content chunks.
    pub output_tokens: u64,
    /// Whether the counts above are the server's own.
    pub usage_reported: bool,
    pub ttft_ms: Option<f64>,
    pub e2e_ms: Option<f64>,
    pub itl_ms: Vec<f64>,
    pub start_offset_ms: f64,
}

/// All requests of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientRun {
    pub results: Vec<RequestResult>,
    /// Real wall time from the first request sent to the last response finished.
    pub duration_s: f64,
    /// Real seconds per simulated second (1 for a real server).
    pub time_scale: f64,
}

/// Why a run could not even start.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid base URL `{0}`")]
    BaseUrl(String),
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}

/// Sends the whole workload and records every request.
pub async fn run_client(cfg: &ClientConfig) -> Result<ClientRun, ClientError> {
    let base = cfg.base_url.trim_end_matches('/').to_string();
    url::Url::parse(&base).map_err(|_| ClientError::BaseUrl(cfg.base_url.clone()))?;
    let http = reqwest::Client::builder()
        .timeout(cfg.request_timeout)
        .pool_max_idle_per_host(1024)
        .build()
        .map_err(|e| ClientError::Http(e.to_string()))?;
    let time_scale = probe_time_scale(&http, &base).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let semaphore = cfg
        .max_concurrency
        .filter(|c| *c > 0)
        .map(|c| Arc::new(tokio::sync::Semaphore::new(c as usize)));
    let url = format!("{base}{}", cfg.endpoint);
    let chat = cfg.endpoint.contains("chat");
    let start = Instant::now();
    let mut handles = Vec::with_capacity(cfg.prompts.prompts.len());
    let mut next_arrival = Duration::ZERO;
    for prompt in &cfg.prompts.prompts {
        if let RequestRate::PerSecond(rate) = cfg.request_rate {
            if rate > 0.0 && rate.is_finite() {
                // Poisson process in simulated time, slept in real time.
                let u: f64 = rng.random::<f64>();
                let gap_s = -(1.0 - u).ln() / rate * time_scale;
                next_arrival += Duration::from_secs_f64(gap_s.max(0.0));
                tokio::time::sleep_until((start + next_arrival).into()).await;
            }
        }
        let permit = match &semaphore {
            Some(s) => s.clone().acquire_owned().await.ok(),
            None => None,
        };
        let body = request_body(cfg, prompt, chat);
        let http = http.clone();
        let url = url.clone();
        let input_len = prompt.ids.len() as u64;
        handles.push(tokio::spawn(async move {
            let r = send_one(&http, &url, body, input_len, start).await;
            drop(permit);
            r
        }));
    }
    let mut results = Vec::with_capacity(handles.len());
    for h in handles {
        results.push(
            h.await.unwrap_or_else(|e| {
                failed(cfg.input_len, 0.0, format!("request task failed: {e}"))
            }),
        );
    }
    Ok(ClientRun {
        results,
        duration_s: start.elapsed().as_secs_f64(),
        time_scale,
    })
}

async fn probe_time_scale(http: &reqwest::Client, base: &str) -> f64 {
    let Ok(resp) = http.get(format!("{base}/v1/models")).send().await else {
        return 1.0;
    };
    resp.headers()
        .get(TIME_SCALE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
        .unwrap_or(1.0)
}

/// The request: exactly `output_len` tokens (EOS ignored, `min_tokens` for engines that
/// honour only that), greedy, streamed with usage.
fn request_body(cfg: &ClientConfig, prompt: &Prompt, chat: bool) -> Value {
    let mut body = json!({
        "model": cfg.model, "max_tokens": cfg.output_len, "min_tokens": cfg.output_len,
        "temperature": 0.0, "ignore_eos": true,
        "stream": true, "stream_options": {"include_usage": true},
    });
    match (chat, cfg.prompts.format) {
        (true, _) => body["messages"] = json!([{"role": "user", "content": prompt.text}]),
        (false, PromptFormat::Text) => body["prompt"] = json!(prompt.text),
        (false, PromptFormat::Ids) => body["prompt"] = json!(prompt.ids),
    }
    body
}

fn failed(prompt_tokens: u64, start_offset_ms: f64, error: String) -> RequestResult {
    RequestResult {
        success: false,
        error: Some(error),
        prompt_tokens,
        output_tokens: 0,
        usage_reported: false,
        ttft_ms: None,
        e2e_ms: None,
        itl_ms: Vec::new(),
        start_offset_ms,
    }
}

async fn send_one(
    http: &reqwest::Client,
    url: &str,
    body: Value,
    input_len: u64,
    t0: Instant,
) -> RequestResult {
    let sent = Instant::now();
    let offset = sent.duration_since(t0).as_secs_f64() * 1e3;
    let resp = match http.post(url).json(&body).send().await {
        Ok(r) => r,
        Err(e) => return failed(input_len, offset, format!("request error: {e}")),
    };
    let status = resp.status();
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        return failed(
            input_len,
            offset,
            format!(
                "HTTP {status}: {}",
                text.chars().take(300).collect::<String>()
            ),
        );
    }
    let mut parser = SseTokenParser::default();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => parser.feed(&bytes, sent.elapsed().as_secs_f64() * 1e3),
            Err(e) => return failed(input_len, offset, format!("stream error: {e}")),
        }
        if parser.done || parser.error.is_some() {
            break;
        }
    }
    let e2e = sent.elapsed().as_secs_f64() * 1e3;
    // Read the body to its end (it is over after `[DONE]`): only a fully read response
    // returns its connection to the pool, so the next request needs no new connection.
    if parser.done {
        while let Some(Ok(_)) = stream.next().await {}
    }
    parser.finish(input_len, offset, e2e)
}

/// Incremental reader of an OpenAI-style SSE stream (pure; fed bytes with arrival times).
#[derive(Debug, Default, Clone)]
pub struct SseTokenParser {
    buf: Vec<u8>,
    token_times_ms: Vec<f64>,
    usage_completion: Option<u64>,
    usage_prompt: Option<u64>,
    pub done: bool,
    pub error: Option<String>,
}

impl SseTokenParser {
    /// Feeds bytes received at `at_ms` after the request was sent.
    pub fn feed(&mut self, bytes: &[u8], at_ms: f64) {
        self.buf.extend_from_slice(bytes);
        while let Some(pos) = find_event_end(&self.buf) {
            let event: Vec<u8> = self.buf.drain(..pos.0 + pos.1).collect();
            let text = String::from_utf8_lossy(event.get(..pos.0).unwrap_or(&[])).into_owned();
            for line in text.lines() {
                let Some(data) = line.strip_prefix("data:") else {
                    continue;
                };
                self.on_data(data.trim(), at_ms);
            }
        }
    }

    fn on_data(&mut self, data: &str, at_ms: f64) {
        if data == "[DONE]" {
            self.done = true;
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            self.error = Some(format!(
                "unparseable stream chunk: {}",
                data.chars().take(200).collect::<String>()
            ));
            return;
        };
        if v.get("object").and_then(Value::as_str) == Some("error") || v.get("error").is_some() {
            let msg = v
                .get("message")
                .or_else(|| v.get("error"))
                .map(|m| m.to_string())
                .unwrap_or_default();
            self.error = Some(format!("server error in stream: {msg}"));
            return;
        }
        if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
            self.usage_completion = u.get("completion_tokens").and_then(Value::as_u64);
            self.usage_prompt = u.get("prompt_tokens").and_then(Value::as_u64);
        }
        let content = v
            .get("choices")
            .and_then(|c| c.get(0))
            .and_then(|c| {
                c.get("text").and_then(Value::as_str).or_else(|| {
                    c.get("delta")
                        .and_then(|d| d.get("content"))
                        .and_then(Value::as_str)
                })
            })
            .unwrap_or("");
        if !content.is_empty() {
            self.token_times_ms.push(at_ms);
        }
    }

    /// Turns what was read into a request result.
    pub fn finish(&self, input_len: u64, start_offset_ms: f64, e2e_ms: f64) -> RequestResult {
        if let Some(err) = &self.error {
            return failed(input_len, start_offset_ms, err.clone());
        }
        let Some(first) = self.token_times_ms.first().copied() else {
            return failed(
                input_len,
                start_offset_ms,
                "the response carried no generated text".into(),
            );
        };
        let itl = self
            .token_times_ms
            .windows(2)
            .map(|w| w[1] - w[0])
            .collect();
        RequestResult {
            success: true,
            error: None,
            prompt_tokens: self.usage_prompt.unwrap_or(input_len),
            output_tokens: self
                .usage_completion
                .unwrap_or(self.token_times_ms.len() as u64),
            usage_reported: self.usage_prompt.is_some() && self.usage_completion.is_some(),
            ttft_ms: Some(first),
            e2e_ms: Some(e2e_ms),
            itl_ms: itl,
            start_offset_ms,
        }
    }
}

fn find_event_end(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = memchr::memmem::find(buf, b"\n\n").map(|p| (p, 2));
    let crlf = memchr::memmem::find(buf, b"\r\n\r\n").map(|p| (p, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

pub use crate::bench::measured::percentile;

fn stats(mut v: Vec<f64>) -> (Option<f64>, Option<f64>, Option<f64>) {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return (None, None, None);
    }
    v.sort_by(f64::total_cmp);
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    (Some(mean), percentile(&v, 50.0), percentile(&v, 99.0))
}

/// Records the token counts the successful requests really had into `w` (the server's
/// counts when every request reported usage, else the client's).
pub fn record_measured_lengths(run: &ClientRun, w: &mut crate::bench::row::Workload) {
    let ok: Vec<&RequestResult> = run.results.iter().filter(|r| r.success).collect();
    let input: Vec<u64> = ok.iter().map(|r| r.prompt_tokens).collect();
    let output: Vec<u64> = ok.iter().map(|r| r.output_tokens).collect();
    let server = ok.iter().all(|r| r.usage_reported);
    crate::bench::measured::record_lengths(
        w,
        &input,
        &output,
        if server { "server" } else { "client" },
    );
}

/// Computes the normalized metrics from a run (pure). Latencies in (simulated) ms.
pub fn summarize(run: &ClientRun, num_prompts: u64) -> Metrics {
    let scale = if run.time_scale.is_finite() && run.time_scale > 0.0 {
        run.time_scale
    } else {
        1.0
    };
    let ok: Vec<&RequestResult> = run.results.iter().filter(|r| r.success).collect();
    let mut m = Metrics::default();
    let total = num_prompts.max(run.results.len() as u64);
    m.success_rate = (total > 0).then(|| ok.len() as f64 / total as f64);
    let failed = run.results.len() - ok.len();
    m.extra.insert("completed".into(), json!(ok.len()));
    m.extra.insert("failed".into(), json!(failed));
    if ok.is_empty() {
        return m;
    }
    let duration_s = run.duration_s / scale;
    let out_tokens: u64 = ok.iter().map(|r| r.output_tokens).sum();
    let in_tokens: u64 = ok.iter().map(|r| r.prompt_tokens).sum();
    if duration_s > 0.0 {
        m.request_throughput = Some(ok.len() as f64 / duration_s);
        m.output_token_throughput = Some(out_tokens as f64 / duration_s);
        m.total_token_throughput = Some((out_tokens + in_tokens) as f64 / duration_s);
    }
    let ttft: Vec<f64> = ok
        .iter()
        .filter_map(|r| r.ttft_ms)
        .map(|v| v / scale)
        .collect();
    let e2e: Vec<f64> = ok
        .iter()
        .filter_map(|r| r.e2e_ms)
        .map(|v| v / scale)
        .collect();
    let tpot: Vec<f64> = ok
        .iter()
        .filter(|r| r.output_tokens > 1)
        .filter_map(|r| Some((r.e2e_ms? - r.ttft_ms?) / (r.output_tokens - 1) as f64 / scale))
        .collect();
    let itl: Vec<f64> = ok
        .iter()
        .flat_map(|r| r.itl_ms.iter().map(|v| v / scale))
        .collect();
    (m.mean_ttft_ms, m.p50_ttft_ms, m.p99_ttft_ms) = stats(ttft);
    (m.mean_tpot_ms, m.p50_tpot_ms, m.p99_tpot_ms) = stats(tpot);
    (m.mean_e2e_ms, m.p50_e2e_ms, m.p99_e2e_ms) = stats(e2e);
    let (mean_itl, p50_itl, p99_itl) = stats(itl);
    for (k, v) in [
        ("mean_itl_ms", mean_itl),
        ("p50_itl_ms", p50_itl),
        ("p99_itl_ms", p99_itl),
    ] {
        m.extra.insert(k.into(), json!(v));
    }
    m.extra.insert("duration_s".into(), json!(duration_s));
    m.extra
        .insert("total_input_tokens".into(), json!(in_tokens));
    m.extra
        .insert("total_output_tokens".into(), json!(out_tokens));
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(ttft: f64, e2e: f64, out: u64) -> RequestResult {
        RequestResult {
            success: true,
            error: None,
            prompt_tokens: 10,
            output_tokens: out,
            usage_reported: true,
            ttft_ms: Some(ttft),
            e2e_ms: Some(e2e),
            itl_ms: vec![],
            start_offset_ms: 0.0,
        }
    }

    #[test]
    fn metrics_follow_serving_benchmark_definitions_and_scale() {
        let run = ClientRun {
            results: vec![
                ok(1.0, 11.0, 11),
                ok(3.0, 23.0, 11),
                failed(10, 0.0, "boom".into()),
            ],
            duration_s: 0.1,
            time_scale: 0.1,
        };
        let m = summarize(&run, 3);
        let close = |v: Option<f64>, want: f64| v.is_some_and(|v| (v - want).abs() < 1e-9);
        assert!(close(m.success_rate, 2.0 / 3.0));
        assert!(close(m.mean_ttft_ms, 20.0)); // (1+3)/2 real ms / 0.1
        assert!(close(m.p50_tpot_ms, 15.0)); // tpot 1.0 and 2.0 real ms -> 10, 20 sim
        assert!(close(m.request_throughput, 2.0)); // 2 requests over 1 simulated second
        assert!(close(m.output_token_throughput, 22.0));
        assert!(close(m.total_token_throughput, 42.0));
    }

    #[test]
    fn all_failed_means_null_latencies() {
        let run = ClientRun {
            results: vec![failed(1, 0.0, "x".into())],
            duration_s: 1.0,
            time_scale: 1.0,
        };
        let m = summarize(&run, 1);
        assert_eq!(m.success_rate, Some(0.0));
        assert_eq!(m.p50_ttft_ms, None);
        assert_eq!(m.request_throughput, None);
    }

    #[test]
    fn sse_parser_reads_split_chunks_role_chunks_usage_and_done() {
        let mut p = SseTokenParser::default();
        p.feed(b"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"con", 1.0);
        p.feed(b"tent\":\" a\"}}]}\n\n", 5.0);
        p.feed(b"data: {\"choices\":[{\"text\":\" b\"}]}\r\n\r\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n", 9.0);
        assert!(p.done);
        let r = p.finish(7, 0.0, 10.0);
        assert_eq!(r.ttft_ms, Some(5.0));
        assert_eq!(r.itl_ms, vec![4.0]);
        assert_eq!(r.output_tokens, 2);
        let mut e = SseTokenParser::default();
        e.feed(
            b"data: {\"object\":\"error\",\"message\":\"kv full\"}\n\n",
            1.0,
        );
        assert!(!e.finish(1, 0.0, 1.0).success);
    }

    #[test]
    fn percentile_interpolates() {
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), Some(2.5));
        assert!((percentile(&[1.0, 2.0], 99.0).unwrap() - 1.99).abs() < 1e-12);
        assert_eq!(percentile(&[], 50.0), None);
    }

    proptest! {
        #[test]
        fn sse_parser_never_panics(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
            let mut p = SseTokenParser::default();
            for (i, c) in chunks.iter().enumerate() { p.feed(c, i as f64); }
            let _ = p.finish(1, 0.0, 1.0);
        }
    }
}
