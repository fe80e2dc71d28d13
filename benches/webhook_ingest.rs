//! Webhook ingest load generator: signed deliveries at a fixed concurrency against a running
//! endpoint (sota-bot or the Probot comparison app), loopback only, bounded request count.
//!
//! `cargo bench --bench webhook_ingest -- --url URL --secret S --payloads FILE
//!  [--requests N] [--concurrency C] [--prefix P]`
//! The payload file is a JSON array of `{"event": name, "body": <payload>}`. Signatures and
//! request bytes are prepared up front and each connection speaks HTTP/1.1 keep-alive over a
//! plain socket (one request in flight per connection), so on a machine whose cores the
//! generator shares with the server under test it takes as little of them as it can.
//! Prints one JSON line.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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

/// One delivery's request, split around the `X-GitHub-Delivery` header that each send fills in.
struct Payload {
    head: Vec<u8>,
    tail: Vec<u8>,
}

fn load_payloads(
    path: &str,
    secret: &WebhookSecret,
    host: &str,
    target: &str,
) -> Result<Vec<Payload>, String> {
    let text = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let items: Vec<serde_json::Value> =
        serde_json::from_slice(&text).map_err(|e| format!("{path}: {e}"))?;
    let payloads: Vec<Payload> = items
        .iter()
        .filter_map(|item| {
            let event = item.get("event")?.as_str()?.to_string();
            let body = serde_json::to_vec(item.get("body")?).ok()?;
            let head = format!(
                "POST {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: GitHub-Hookshot/bench\r\n\
                 Content-Type: application/json\r\nX-GitHub-Event: {event}\r\n"
            );
            let mut tail = format!(
                "X-Hub-Signature-256: {}\r\nContent-Length: {}\r\n\r\n",
                sign(secret, &body),
                body.len()
            )
            .into_bytes();
            tail.extend_from_slice(&body);
            Some(Payload {
                head: head.into_bytes(),
                tail,
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

/// Where the requests go: the socket address, the `Host` header and the request target.
fn endpoint(url: &str) -> Result<(SocketAddr, String, String), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("--url: {e}"))?;
    let port = parsed.port_or_known_default().ok_or("--url: no port")?;
    let host = parsed.host_str().ok_or("--url: no host")?;
    let ip: std::net::IpAddr = if host == "localhost" {
        std::net::Ipv4Addr::LOCALHOST.into()
    } else {
        host.parse().map_err(|e| format!("--url host: {e}"))?
    };
    let target = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_string(),
    };
    Ok((SocketAddr::new(ip, port), format!("{host}:{port}"), target))
}

fn main() {
    let prepared = parse_args().and_then(|options| {
        let (addr, host, target) = endpoint(&options.url)?;
        let secret = WebhookSecret::new(options.secret.clone());
        let payloads = load_payloads(&options.payloads, &secret, &host, &target)?;
        Ok((options, addr, Arc::new(payloads)))
    });
    let (options, addr, payloads) = match prepared {
        Ok(p) => p,
        Err(e) => {
            eprintln!("webhook_ingest: {e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(run(options, addr, payloads));
    println!("{result}");
}

async fn run(o: Options, addr: SocketAddr, payloads: Arc<Vec<Payload>>) -> serde_json::Value {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..o.concurrency {
        let (next, payloads, prefix) = (next.clone(), payloads.clone(), o.prefix.clone());
        let total = o.requests;
        tasks.push(tokio::spawn(async move {
            let mut connection = Connection::new(addr);
            let mut request = Vec::with_capacity(64 * 1024);
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let p = &payloads[i % payloads.len()];
                request.clear();
                request.extend_from_slice(&p.head);
                let _ = write!(request, "X-GitHub-Delivery: {prefix}-{i}\r\n");
                request.extend_from_slice(&p.tail);
                let t = Instant::now();
                match tokio::time::timeout(Duration::from_secs(30), connection.exchange(&request))
                    .await
                {
                    Ok(Ok(status)) if (200..300).contains(&status) => latencies.push(t.elapsed()),
                    Ok(Ok(_)) => errors += 1,
                    _ => {
                        errors += 1;
                        connection.reset();
                    }
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

/// One keep-alive HTTP/1.1 connection, reopened after an error or `Connection: close`.
struct Connection {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    response: Vec<u8>,
}

/// The parts of a response head the generator needs.
struct ResponseHead {
    status: u16,
    head_len: usize,
    content_length: Option<usize>,
    chunked: bool,
    close: bool,
}

impl Connection {
    fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            stream: None,
            response: Vec::with_capacity(4096),
        }
    }

    fn reset(&mut self) {
        self.stream = None;
    }

    /// Sends one request and reads its whole response; returns the status code.
    async fn exchange(&mut self, request: &[u8]) -> std::io::Result<u16> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr).await?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
        }
        let stream = self.stream.as_mut().expect("connected above");
        stream.write_all(request).await?;
        self.response.clear();
        let mut chunk = [0u8; 4096];
        let head = loop {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.response.extend_from_slice(&chunk[..n]);
            if let Some(head) = parse_head(&self.response)? {
                break head;
            }
        };
        loop {
            let body = &self.response[head.head_len..];
            let complete = match (head.chunked, head.content_length) {
                (true, _) => chunked_len(body)?.is_some(),
                (false, Some(len)) => body.len() >= len,
                (false, None) => false,
            };
            if complete {
                break;
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                if !head.chunked && head.content_length.is_none() {
                    break; // body delimited by the end of the connection
                }
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.response.extend_from_slice(&chunk[..n]);
        }
        if head.close || (!head.chunked && head.content_length.is_none()) {
            self.reset();
        }
        Ok(head.status)
    }
}

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

/// Parses the response head once all of it has arrived.
fn parse_head(buf: &[u8]) -> std::io::Result<Option<ResponseHead>> {
    let Some(end) = memchr::memmem::find(buf, b"\r\n\r\n") else {
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| invalid("non-UTF-8 response head"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| status_line.strip_prefix("HTTP/1.0 "))
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid("bad status line"))?;
    let mut head = ResponseHead {
        status,
        head_len: end + 4,
        content_length: None,
        chunked: false,
        close: status_line.starts_with("HTTP/1.0"),
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(invalid("bad header line"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            head.content_length = Some(value.parse().map_err(|_| invalid("bad content-length"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            head.close = value.eq_ignore_ascii_case("close");
        }
    }
    Ok(Some(head))
}

/// Length of a complete chunked body at the start of `body`, or `None` if more is needed.
fn chunked_len(body: &[u8]) -> std::io::Result<Option<usize>> {
    let mut at = 0;
    loop {
        let Some(line_end) = memchr::memmem::find(&body[at..], b"\r\n") else {
            return Ok(None);
        };
        let size_text =
            std::str::from_utf8(&body[at..at + line_end]).map_err(|_| invalid("bad chunk size"))?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| invalid("bad chunk size"))?;
        at += line_end + 2;
        if size == 0 {
            // The last chunk is followed by optional trailers, then an empty line.
            let rest = &body[at..];
            if rest.starts_with(b"\r\n") {
                return Ok(Some(at + 2));
            }
            return Ok(memchr::memmem::find(rest, b"\r\n\r\n").map(|end| at + end + 4));
        }
        if body.len() < at + size + 2 {
            return Ok(None);
        }
        at += size + 2;
    }
}
