//! Webhook ingest load generator: signed deliveries at a fixed concurrency against a running
//! endpoint (sota-bot or the Probot comparison app), loopback only, bounded request count.
//!
//! `cargo bench --bench webhook_ingest -- --url URL --secret S --payloads FILE
//!  [--requests N] [--concurrency C] [--prefix P]`
//! The payload file is a JSON array of `{"event": name, "body": <payload>}`. Signatures are
//! computed up front so the generator spends its CPU on HTTP only. Prints one JSON line.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sota_bot::github::signature::{sign, WebhookSecret};

struct Options {
    url: String,
    secret: String,
    payloads: String,
    requests: usize,
    concurrency: usize,
    prefix: String,
}

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut o = Options {
        url: String::new(),
        secret: String::new(),
        payloads: String::new(),
        requests: 20_000,
        concurrency: 64,
        prefix: format!("bench-{}", std::process::id()),
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => o.url = value()?,
            "--secret" => o.secret = value()?,
            "--payloads" => o.payloads = value()?,
            "--requests" => {
                o.requests = value()?.parse().map_err(|e| format!("--requests: {e}"))?
            }
            "--concurrency" => {
                o.concurrency = value()?
                    .parse()
                    .map_err(|e| format!("--concurrency: {e}"))?
            }
            "--prefix" => o.prefix = value()?,
            "--bench" => {} // passed by `cargo bench`
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if o.url.is_empty() || o.secret.is_empty() || o.payloads.is_empty() {
        return Err("--url, --secret and --payloads are required".into());
    }
    if !(o.url.starts_with("http://127.0.0.1") || o.url.starts_with("http://localhost")) {
        return Err("the load generator only targets loopback".into());
    }
    if o.requests == 0 || o.requests > 10_000_000 || o.concurrency == 0 || o.concurrency > 4096 {
        return Err("--requests must be 1..=10000000 and --concurrency 1..=4096".into());
    }
    Ok(o)
}

struct Payload {
    event: String,
    body: bytes::Bytes,
    signature: String,
}

fn load_payloads(path: &str, secret: &WebhookSecret) -> Result<Vec<Payload>, String> {
    let text = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let items: Vec<serde_json::Value> =
        serde_json::from_slice(&text).map_err(|e| format!("{path}: {e}"))?;
    let payloads: Vec<Payload> = items
        .iter()
        .filter_map(|item| {
            let event = item.get("event")?.as_str()?.to_string();
            let body = serde_json::to_vec(item.get("body")?).ok()?;
            Some(Payload {
                signature: sign(secret, &body),
                event,
                body: body.into(),
            })
        })
        .collect();
    if payloads.is_empty() {
        return Err(format!("{path}: no payloads"));
    }
    Ok(payloads)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

fn main() {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("webhook_ingest: {e}");
            std::process::exit(2);
        }
    };
    let secret = WebhookSecret::new(options.secret.clone());
    let payloads = match load_payloads(&options.payloads, &secret) {
        Ok(p) => Arc::new(p),
        Err(e) => {
            eprintln!("webhook_ingest: {e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(run(options, payloads));
    println!("{result}");
}

async fn run(o: Options, payloads: Arc<Vec<Payload>>) -> serde_json::Value {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(o.concurrency)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..o.concurrency {
        let (client, next, payloads, url, prefix) = (
            client.clone(),
            next.clone(),
            payloads.clone(),
            o.url.clone(),
            o.prefix.clone(),
        );
        let total = o.requests;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let p = &payloads[i % payloads.len()];
                let t = Instant::now();
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-github-event", &p.event)
                    .header("x-github-delivery", format!("{prefix}-{i}"))
                    .header("x-hub-signature-256", &p.signature)
                    .body(p.body.clone())
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        latencies.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::with_capacity(o.requests);
    let mut errors = 0;
    for t in tasks {
        if let Ok((l, e)) = t.await {
            latencies.extend(l);
            errors += e;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    serde_json::json!({
        "requests": o.requests,
        "ok": latencies.len(),
        "errors": errors,
        "concurrency": o.concurrency,
        "seconds": elapsed,
        "per_second": latencies.len() as f64 / elapsed,
        "p50_ms": percentile(&latencies, 50.0),
        "p99_ms": percentile(&latencies, 99.0),
        "max_ms": percentile(&latencies, 100.0),
    })
}
