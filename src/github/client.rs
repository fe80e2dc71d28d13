//! Low-level GitHub REST transport: base URL, bearer auth, timeouts, retries with backoff,
//! rate-limit waits, a concurrency cap and the content-creation pacer.
//!
//! Built directly on reqwest, so the retry and rate-limit rules of the product (and the
//! injectable clock that tests need) sit below every call. octocrab's builder could carry the
//! same rules as tower layers beneath its typed calls (`with_layer`, `with_service`); moving
//! there is open work, and until then no octocrab dependency is kept.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, USER_AGENT};
use reqwest::Method;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;

use super::clock::Clock;
use super::ratelimit::{self, Pacer, ResponseFacts, RetryDecision, RetryPolicy, RetryReason};

/// A failed GitHub call.
#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    #[error("{method} {path}: HTTP {status}: {message}")]
    Status {
        method: String,
        path: String,
        status: u16,
        message: String,
    },
    #[error("{method} {path}: {message}")]
    Transport {
        method: String,
        path: String,
        message: String,
        timeout: bool,
    },
    #[error("{method} {path}: response body is not the expected JSON: {message}")]
    Decode {
        method: String,
        path: String,
        message: String,
    },
    #[error("invalid request: {0}")]
    InvalidInput(String),
    #[error("authentication failed: {0}")]
    Auth(String),
}

impl GitHubError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True when the outcome of a non-idempotent request is unknown or the server may succeed
    /// later (5xx, timeouts, exhausted rate-limit retries): the caller may retry at its level.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Status { status, .. } => *status >= 500 || *status == 429,
            Self::Transport { .. } => true,
            _ => false,
        }
    }
}

/// Counters exported on `/metrics`.
#[derive(Debug, Default)]
pub struct ClientMetrics {
    pub requests: AtomicU64,
    pub responses_2xx: AtomicU64,
    pub responses_4xx: AtomicU64,
    pub responses_5xx: AtomicU64,
    pub transport_errors: AtomicU64,
    pub retries: AtomicU64,
    pub rate_limit_waits: AtomicU64,
    pub rate_limit_wait_ms: AtomicU64,
    pub pacer_waits: AtomicU64,
}

/// Transport settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// REST base URL without trailing slash, e.g. `https://api.github.com`.
    pub base_url: String,
    /// GraphQL endpoint (used only for "ready for review").
    pub graphql_url: String,
    pub request_timeout: Duration,
    pub max_concurrency: usize,
    /// Content-creating requests per minute; 0 disables pacing.
    pub creates_per_minute: u32,
    pub retry: RetryPolicy,
    pub user_agent: String,
}

impl ClientConfig {
    /// Defaults for a base URL; the GraphQL URL follows GitHub's layout (`/graphql` on
    /// github.com, `/api/graphql` for `/api/v3` servers).
    pub fn for_base_url(base_url: &str) -> Self {
        let base = base_url.trim_end_matches('/').to_string();
        let graphql_url = match base.strip_suffix("/api/v3") {
            Some(root) => format!("{root}/api/graphql"),
            None => format!("{base}/graphql"),
        };
        Self {
            base_url: base,
            graphql_url,
            request_timeout: Duration::from_secs(30),
            max_concurrency: 100,
            creates_per_minute: 80,
            retry: RetryPolicy::default(),
            user_agent: concat!("sota-bot/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// A response whose status was 2xx (or an allowed 404).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: bytes::Bytes,
}

impl Answer {
    /// Decodes the body as JSON.
    pub fn json<T: DeserializeOwned>(&self, method: &Method, path: &str) -> Result<T, GitHubError> {
        serde_json::from_slice(&self.body).map_err(|e| GitHubError::Decode {
            method: method.to_string(),
            path: path.to_string(),
            message: e.to_string(),
        })
    }
}

/// The shared transport. Cheap to clone.
#[derive(Clone)]
pub struct HttpTransport {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: ClientConfig,
    clock: Arc<dyn Clock>,
    permits: Semaphore,
    pacer: Pacer,
    metrics: Arc<ClientMetrics>,
}

fn is_content_creating(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PATCH | Method::PUT | Method::DELETE
    )
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

impl HttpTransport {
    /// Builds the transport.
    pub fn new(
        config: ClientConfig,
        clock: Arc<dyn Clock>,
        metrics: Arc<ClientMetrics>,
    ) -> Result<Self, GitHubError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert(
            "x-github-api-version",
            HeaderValue::from_static("2022-11-28"),
        );
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(config.request_timeout)
            .pool_max_idle_per_host(config.max_concurrency)
            .build()
            .map_err(|e| GitHubError::InvalidInput(format!("HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                pacer: Pacer::new(config.creates_per_minute, clock.clone()),
                permits: Semaphore::new(config.max_concurrency.max(1)),
                http,
                config,
                clock,
                metrics,
            }),
        })
    }

    /// Settings in use.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The clock used for waits and token expiry.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.inner.clock.clone()
    }

    /// Counters for `/metrics`.
    pub fn metrics(&self) -> Arc<ClientMetrics> {
        self.inner.metrics.clone()
    }

    /// Sends one request with retries. `path` starts with `/` and is relative to the base
    /// URL unless it is absolute (`http...`). 404 is returned as an `Answer` when
    /// `allow_404`; other non-2xx statuses are errors after retries.
    ///
    /// POST is not idempotent: it is retried only on rate-limit refusals (GitHub did not act)
    /// and connection failures; a 5xx or timeout on POST is returned so the caller can check
    /// state before trying again (see `upsert_marked_comment`).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        bearer: &str,
        body: Option<&serde_json::Value>,
        allow_404: bool,
    ) -> Result<Answer, GitHubError> {
        let inner = &self.inner;
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{}", inner.config.base_url, path)
        };
        let err_ctx = |message: String, timeout: bool| GitHubError::Transport {
            method: method.to_string(),
            path: path.to_string(),
            message,
            timeout,
        };
        let idempotent = method != Method::POST;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            if is_content_creating(&method) && !inner.pacer.acquire().await.is_zero() {
                inner.metrics.pacer_waits.fetch_add(1, Ordering::Relaxed);
            }
            let permit = inner
                .permits
                .acquire()
                .await
                .map_err(|_| err_ctx("client shut down".into(), false))?;
            let mut request = inner
                .http
                .request(method.clone(), &url)
                .header(USER_AGENT, &inner.config.user_agent);
            if !bearer.is_empty() {
                request = request.header(AUTHORIZATION, format!("Bearer {bearer}"));
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            inner.metrics.requests.fetch_add(1, Ordering::Relaxed);
            let outcome = request.send().await;
            let response = match outcome {
                Ok(response) => response,
                Err(e) => {
                    drop(permit);
                    inner
                        .metrics
                        .transport_errors
                        .fetch_add(1, Ordering::Relaxed);
                    let timeout = e.is_timeout();
                    let safe_to_retry = idempotent || e.is_connect();
                    let decision = if safe_to_retry {
                        ratelimit::decide_transport(&inner.config.retry, attempt)
                    } else {
                        RetryDecision::GiveUp
                    };
                    match decision {
                        RetryDecision::Retry { after, .. } => {
                            tracing::warn!(%method, path, attempt, ?after, error = %e, "GitHub request failed; retrying");
                            inner.metrics.retries.fetch_add(1, Ordering::Relaxed);
                            inner.clock.sleep(after).await;
                            continue;
                        }
                        RetryDecision::GiveUp => return Err(err_ctx(e.to_string(), timeout)),
                    }
                }
            };
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let bytes = response.bytes().await;
            drop(permit);
            let bytes = match bytes {
                Ok(b) => b,
                Err(e) => {
                    inner
                        .metrics
                        .transport_errors
                        .fetch_add(1, Ordering::Relaxed);
                    if idempotent {
                        if let RetryDecision::Retry { after, .. } =
                            ratelimit::decide_transport(&inner.config.retry, attempt)
                        {
                            inner.metrics.retries.fetch_add(1, Ordering::Relaxed);
                            inner.clock.sleep(after).await;
                            continue;
                        }
                    }
                    return Err(err_ctx(format!("reading body: {e}"), e.is_timeout()));
                }
            };
            match status {
                200..=299 => inner.metrics.responses_2xx.fetch_add(1, Ordering::Relaxed),
                400..=499 => inner.metrics.responses_4xx.fetch_add(1, Ordering::Relaxed),
                _ => inner.metrics.responses_5xx.fetch_add(1, Ordering::Relaxed),
            };
            if (200..300).contains(&status) || (status == 404 && allow_404) {
                return Ok(Answer {
                    status,
                    body: bytes,
                });
            }
            let message = error_message(&bytes);
            let facts = ResponseFacts {
                status,
                retry_after: header_u64(&headers, "retry-after"),
                remaining: header_u64(&headers, "x-ratelimit-remaining"),
                reset: header_u64(&headers, "x-ratelimit-reset")
                    .and_then(|v| i64::try_from(v).ok()),
                body_mentions_rate_limit: message.to_ascii_lowercase().contains("rate limit"),
            };
            let mut decision =
                ratelimit::decide(&inner.config.retry, &facts, attempt, inner.clock.now());
            if let RetryDecision::Retry {
                reason: RetryReason::ServerError,
                ..
            } = decision
            {
                if !idempotent {
                    decision = RetryDecision::GiveUp;
                }
            }
            match decision {
                RetryDecision::Retry { after, reason } => {
                    inner.metrics.retries.fetch_add(1, Ordering::Relaxed);
                    if reason == RetryReason::RateLimited {
                        inner
                            .metrics
                            .rate_limit_waits
                            .fetch_add(1, Ordering::Relaxed);
                        let ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
                        inner
                            .metrics
                            .rate_limit_wait_ms
                            .fetch_add(ms, Ordering::Relaxed);
                    }
                    tracing::warn!(%method, path, status, attempt, ?after, ?reason, "GitHub refused the request; waiting");
                    inner.clock.sleep(after).await;
                }
                RetryDecision::GiveUp => {
                    return Err(GitHubError::Status {
                        method: method.to_string(),
                        path: path.to_string(),
                        status,
                        message,
                    })
                }
            }
        }
    }
}

/// GitHub error bodies are `{"message": ...}`; fall back to a prefix of the raw text.
fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        message: Option<String>,
    }
    if let Ok(ErrorBody { message: Some(m) }) = serde_json::from_slice::<ErrorBody>(body) {
        return m;
    }
    String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned()
}
