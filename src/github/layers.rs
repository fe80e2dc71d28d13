//! The product's rules for talking to GitHub as tower layers beneath octocrab: retries with
//! backoff and rate-limit waits on the injectable clock, the content-creation pacer, the
//! concurrency cap and the request counters, over a wire service that sends each request with
//! reqwest and hands back the whole answer.
//!
//! The decisions (wait how long, retry or not) are the pure functions of `ratelimit`; these
//! layers are their I/O shell. Every layer answers `Response<Full<Bytes>>`: the body is read
//! once at the bottom, so a layer can look at it (a 403 that names a rate limit) and a retry
//! can resend the request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderMap, Method, Request, Response};
use http_body_util::{BodyExt, Full};
use octocrab::OctoBody;
use tokio::sync::Semaphore;
use tower::{Layer, Service, ServiceExt};

use super::clock::Clock;
use super::ratelimit::{self, Pacer, ResponseFacts, RetryDecision, RetryPolicy, RetryReason};

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

/// Errors travel through octocrab's service stack boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// What every layer answers: the status, headers and the whole body.
pub type WireResponse = Response<Full<Bytes>>;

/// A request that got no HTTP answer (refused connection, timeout, broken body).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct TransportFailure {
    pub message: String,
    /// The client's timeout expired.
    pub timeout: bool,
    /// The connection was never made, so the server cannot have acted.
    pub connect: bool,
}

impl TransportFailure {
    /// The failure somewhere in an error's source chain (octocrab and tower wrap it).
    pub fn find<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a TransportFailure> {
        let mut current = Some(error);
        while let Some(e) = current {
            if let Some(found) = e.downcast_ref::<TransportFailure>() {
                return Some(found);
            }
            current = e.source();
        }
        None
    }
}

async fn read_body(body: OctoBody) -> Result<Bytes, BoxError> {
    Ok(body.collect().await?.to_bytes())
}

// ---------------------------------------------------------------------------------------------
// The wire: reqwest

/// The bottom service: sends one request with reqwest (its timeout applies to the whole
/// exchange) and reads the whole answer.
#[derive(Clone)]
pub struct ReqwestWire {
    http: reqwest::Client,
}

impl ReqwestWire {
    pub fn new(http: reqwest::Client) -> Self {
        Self { http }
    }
}

fn failure(e: &reqwest::Error) -> BoxError {
    Box::new(TransportFailure {
        message: e.to_string(),
        timeout: e.is_timeout(),
        connect: e.is_connect(),
    })
}

impl Service<Request<OctoBody>> for ReqwestWire {
    type Response = WireResponse;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<WireResponse, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<OctoBody>) -> Self::Future {
        let http = self.http.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let body = read_body(body).await?;
            let request = reqwest::Request::try_from(Request::from_parts(parts, body))?;
            let response = http.execute(request).await.map_err(|e| failure(&e))?;
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = response.bytes().await.map_err(|e| {
                Box::new(TransportFailure {
                    message: format!("reading body: {e}"),
                    timeout: e.is_timeout(),
                    connect: false,
                }) as BoxError
            })?;
            let mut answer = Response::new(Full::new(bytes));
            *answer.status_mut() = status;
            *answer.headers_mut() = headers;
            Ok(answer)
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Rules as layers

/// The stack beneath a rule: the wire, or the wire under other rules.
pub trait Wire:
    Service<Request<OctoBody>, Response = WireResponse, Error = BoxError, Future: Send>
    + Clone
    + Send
    + 'static
{
}

impl<T> Wire for T where
    T: Service<Request<OctoBody>, Response = WireResponse, Error = BoxError, Future: Send>
        + Clone
        + Send
        + 'static
{
}

/// One of the product's rules, applied around the stack beneath it.
pub trait Rule: Clone + Send + Sync + 'static {
    /// Handles `request`, sending it through `next` as often as the rule needs.
    fn apply<S: Wire>(
        self,
        request: Request<OctoBody>,
        next: S,
    ) -> impl std::future::Future<Output = Result<WireResponse, BoxError>> + Send;
}

/// A [`Rule`] as a tower layer (what `OctocrabBuilder::with_layer` takes).
#[derive(Clone)]
pub struct RuleLayer<R>(pub R);

impl<R: Rule, S> Layer<S> for RuleLayer<R> {
    type Service = Ruled<R, S>;
    fn layer(&self, inner: S) -> Ruled<R, S> {
        Ruled {
            rule: self.0.clone(),
            inner,
        }
    }
}

/// A rule over the stack beneath it.
#[derive(Clone)]
pub struct Ruled<R, S> {
    rule: R,
    inner: S,
}

impl<R: Rule, S: Wire> Service<Request<OctoBody>> for Ruled<R, S> {
    type Response = WireResponse;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<WireResponse, BoxError>>;

    /// Always ready: each attempt waits for the stack beneath with `oneshot`.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<OctoBody>) -> Self::Future {
        Box::pin(self.rule.clone().apply(request, self.inner.clone()))
    }
}

// ---------------------------------------------------------------------------------------------
// Counters, concurrency cap, pacer

/// Counts requests, answers by class and transport failures (every attempt).
#[derive(Clone)]
pub struct Counting(pub Arc<ClientMetrics>);

impl Rule for Counting {
    async fn apply<S: Wire>(
        self,
        request: Request<OctoBody>,
        next: S,
    ) -> Result<WireResponse, BoxError> {
        let metrics = self.0;
        metrics.requests.fetch_add(1, Ordering::Relaxed);
        let outcome = next.oneshot(request).await;
        let counter = match &outcome {
            Ok(r) if r.status().is_success() => &metrics.responses_2xx,
            Ok(r) if r.status().is_client_error() => &metrics.responses_4xx,
            Ok(_) => &metrics.responses_5xx,
            Err(_) => &metrics.transport_errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        outcome
    }
}

/// At most this many requests in flight at once, across every clone of the client.
#[derive(Clone)]
pub struct ConcurrencyCap(Arc<Semaphore>);

impl ConcurrencyCap {
    pub fn new(max: usize) -> Self {
        Self(Arc::new(Semaphore::new(max.max(1))))
    }
}

impl Rule for ConcurrencyCap {
    async fn apply<S: Wire>(
        self,
        request: Request<OctoBody>,
        next: S,
    ) -> Result<WireResponse, BoxError> {
        let _permit = self.0.acquire_owned().await?;
        next.oneshot(request).await
    }
}

/// True for the methods GitHub's secondary limit counts as content creation.
pub fn is_content_creating(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PATCH | Method::PUT | Method::DELETE
    )
}

/// Spaces content-creating requests with the shared [`Pacer`].
#[derive(Clone)]
pub struct Pacing {
    pub pacer: Arc<Pacer>,
    pub metrics: Arc<ClientMetrics>,
}

impl Rule for Pacing {
    async fn apply<S: Wire>(
        self,
        request: Request<OctoBody>,
        next: S,
    ) -> Result<WireResponse, BoxError> {
        if is_content_creating(request.method()) && !self.pacer.acquire().await.is_zero() {
            self.metrics.pacer_waits.fetch_add(1, Ordering::Relaxed);
        }
        next.oneshot(request).await
    }
}

// ---------------------------------------------------------------------------------------------
// Retries and rate-limit waits

/// Retries failed attempts per [`RetryPolicy`], sleeping on the injectable clock.
///
/// POST is not idempotent: it is retried only on rate-limit refusals (GitHub did not act) and
/// failed connections; a 5xx or timeout on POST is returned so the caller can check state
/// before trying again (see `upsert_marked_comment`).
#[derive(Clone)]
pub struct Retries {
    pub policy: RetryPolicy,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<ClientMetrics>,
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// The facts `ratelimit::decide` needs from an answer.
pub fn response_facts(status: u16, headers: &HeaderMap, body: &[u8]) -> ResponseFacts {
    ResponseFacts {
        status,
        retry_after: header_u64(headers, "retry-after"),
        remaining: header_u64(headers, "x-ratelimit-remaining"),
        reset: header_u64(headers, "x-ratelimit-reset").and_then(|v| i64::try_from(v).ok()),
        body_mentions_rate_limit: error_message(body)
            .to_ascii_lowercase()
            .contains("rate limit"),
    }
}

/// GitHub error bodies are `{"message": ...}`; falls back to a prefix of the raw text.
pub fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        message: Option<String>,
    }
    if let Ok(ErrorBody { message: Some(m) }) = serde_json::from_slice::<ErrorBody>(body) {
        return m;
    }
    String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned()
}

impl Retries {
    /// What to do after attempt `attempt` of a `method` request ended in `outcome`.
    fn decide(
        &self,
        method: &Method,
        outcome: &Result<(u16, &HeaderMap, &[u8]), &BoxError>,
        attempt: u32,
    ) -> RetryDecision {
        let idempotent = *method != Method::POST;
        match outcome {
            Ok((status, _, _)) if (200..300).contains(status) => RetryDecision::GiveUp,
            Ok((status, headers, body)) => {
                let facts = response_facts(*status, headers, body);
                match ratelimit::decide(&self.policy, &facts, attempt, self.clock.now()) {
                    RetryDecision::Retry {
                        reason: RetryReason::ServerError,
                        ..
                    } if !idempotent => RetryDecision::GiveUp,
                    decision => decision,
                }
            }
            Err(e) => {
                let connect = TransportFailure::find(e.as_ref()).is_some_and(|f| f.connect);
                if idempotent || connect {
                    ratelimit::decide_transport(&self.policy, attempt)
                } else {
                    RetryDecision::GiveUp
                }
            }
        }
    }

    fn count(&self, after: Duration, reason: RetryReason) {
        self.metrics.retries.fetch_add(1, Ordering::Relaxed);
        if reason == RetryReason::RateLimited {
            self.metrics
                .rate_limit_waits
                .fetch_add(1, Ordering::Relaxed);
            let ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
            self.metrics
                .rate_limit_wait_ms
                .fetch_add(ms, Ordering::Relaxed);
        }
    }
}

impl Rule for Retries {
    async fn apply<S: Wire>(
        self,
        request: Request<OctoBody>,
        next: S,
    ) -> Result<WireResponse, BoxError> {
        let (parts, body) = request.into_parts();
        let body = read_body(body).await?;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let request = Request::from_parts(parts.clone(), OctoBody::from(body.clone()));
            let outcome = match next.clone().oneshot(request).await {
                Ok(response) => {
                    let (head, full) = response.into_parts();
                    let bytes = full.collect().await?.to_bytes();
                    Ok((head, bytes))
                }
                Err(e) => Err(e),
            };
            let decision = self.decide(
                &parts.method,
                &outcome
                    .as_ref()
                    .map(|(head, bytes)| (head.status.as_u16(), &head.headers, &bytes[..])),
                attempt,
            );
            match decision {
                RetryDecision::Retry { after, reason } => {
                    self.count(after, reason);
                    let path = parts.uri.path();
                    match &outcome {
                        Ok((head, _)) => {
                            tracing::warn!(method = %parts.method, path, status = head.status.as_u16(), attempt, ?after, ?reason, "GitHub refused the request; waiting")
                        }
                        Err(e) => {
                            tracing::warn!(method = %parts.method, path, attempt, ?after, error = %e, "GitHub request failed; retrying")
                        }
                    }
                    self.clock.sleep(after).await;
                }
                RetryDecision::GiveUp => {
                    return outcome
                        .map(|(head, bytes)| Response::from_parts(head, Full::new(bytes)))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::clock::ManualClock;
    use chrono::TimeZone;
    use std::sync::Mutex;

    /// One scripted attempt: an HTTP answer (status, headers, body) or a transport failure.
    #[derive(Clone)]
    enum Step {
        Answer(u16, Vec<(&'static str, String)>, &'static str),
        Fail { connect: bool, timeout: bool },
    }

    /// A wire that answers each attempt with the next scripted step and records requests.
    #[derive(Clone, Default)]
    struct Scripted {
        steps: Arc<Mutex<Vec<Step>>>,
        seen: Arc<Mutex<Vec<(Method, Bytes)>>>,
    }

    impl Scripted {
        fn new(steps: Vec<Step>) -> Self {
            Self {
                steps: Arc::new(Mutex::new(steps)),
                seen: Arc::default(),
            }
        }
        fn attempts(&self) -> usize {
            self.seen.lock().unwrap().len()
        }
    }

    impl Service<Request<OctoBody>> for Scripted {
        type Response = WireResponse;
        type Error = BoxError;
        type Future = BoxFuture<'static, Result<WireResponse, BoxError>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: Request<OctoBody>) -> Self::Future {
            let this = self.clone();
            Box::pin(async move {
                let (parts, body) = request.into_parts();
                let body = read_body(body).await?;
                this.seen.lock().unwrap().push((parts.method, body));
                let step = {
                    let mut steps = this.steps.lock().unwrap();
                    assert!(!steps.is_empty(), "more attempts than scripted");
                    steps.remove(0)
                };
                match step {
                    Step::Answer(status, headers, body) => {
                        let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
                        *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
                        for (k, v) in headers {
                            r.headers_mut().insert(k, v.parse().unwrap());
                        }
                        Ok(r)
                    }
                    Step::Fail { connect, timeout } => Err(Box::new(TransportFailure {
                        message: "scripted failure".into(),
                        timeout,
                        connect,
                    }) as BoxError),
                }
            })
        }
    }

    fn ok() -> Step {
        Step::Answer(200, vec![], "{}")
    }

    fn status(s: u16) -> Step {
        Step::Answer(s, vec![], r#"{"message":"scripted"}"#)
    }

    struct Rig {
        wire: Scripted,
        clock: ManualClock,
        metrics: Arc<ClientMetrics>,
    }

    impl Rig {
        fn new(steps: Vec<Step>) -> Self {
            Self {
                wire: Scripted::new(steps),
                clock: ManualClock::new(chrono::Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()),
                metrics: Arc::default(),
            }
        }

        /// The stack as the client builds it, over the scripted wire.
        async fn send(&self, method: Method, body: &str) -> Result<u16, BoxError> {
            let clock: Arc<dyn Clock> = Arc::new(self.clock.clone());
            let stack = tower::ServiceBuilder::new()
                .layer(RuleLayer(Retries {
                    policy: RetryPolicy::default(),
                    clock: clock.clone(),
                    metrics: self.metrics.clone(),
                }))
                .layer(RuleLayer(Pacing {
                    pacer: Arc::new(Pacer::new(80, clock)),
                    metrics: self.metrics.clone(),
                }))
                .layer(RuleLayer(ConcurrencyCap::new(4)))
                .layer(RuleLayer(Counting(self.metrics.clone())))
                .service(self.wire.clone());
            let request = Request::builder()
                .method(method)
                .uri("http://github.test/repos/o/r")
                .body(OctoBody::from(body.to_string()))
                .unwrap();
            stack.oneshot(request).await.map(|r| r.status().as_u16())
        }

        fn sleeps(&self) -> Vec<Duration> {
            self.clock.sleeps()
        }

        fn count(&self, c: fn(&ClientMetrics) -> &std::sync::atomic::AtomicU64) -> u64 {
            c(&self.metrics).load(Ordering::Relaxed)
        }
    }

    #[tokio::test]
    async fn server_errors_on_reads_back_off_then_succeed_with_the_same_body() {
        let rig = Rig::new(vec![status(502), status(503), ok()]);
        assert_eq!(
            rig.send(Method::PATCH, "{\"body\":\"x\"}").await.unwrap(),
            200
        );
        assert_eq!(
            rig.sleeps()
                .into_iter()
                .filter(|d| !d.is_zero())
                .collect::<Vec<_>>(),
            // The pacer spaces the three PATCH attempts (750 ms at 80/min) around the backoff.
            vec![
                Duration::from_millis(500),
                Duration::from_millis(250),
                Duration::from_secs(1)
            ]
        );
        let seen = rig.wire.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 3);
        assert!(seen.iter().all(|(_, b)| &b[..] == b"{\"body\":\"x\"}"));
        assert_eq!(rig.count(|m| &m.retries), 2);
        assert_eq!(rig.count(|m| &m.responses_5xx), 2);
        assert_eq!(rig.count(|m| &m.responses_2xx), 1);
        assert_eq!(rig.count(|m| &m.requests), 3);
    }

    #[tokio::test]
    async fn a_post_that_got_a_5xx_is_not_resent() {
        let rig = Rig::new(vec![status(502)]);
        assert_eq!(rig.send(Method::POST, "{}").await.unwrap(), 502);
        assert_eq!(rig.wire.attempts(), 1);
        assert_eq!(rig.count(|m| &m.retries), 0);
    }

    #[tokio::test]
    async fn rate_limits_wait_for_retry_after_or_the_reset_even_for_posts() {
        let reset = chrono::Utc
            .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
            .unwrap()
            .timestamp()
            + 30;
        let rig = Rig::new(vec![
            Step::Answer(403, vec![("retry-after", "7".into())], r#"{"message":"x"}"#),
            Step::Answer(
                403,
                vec![
                    ("x-ratelimit-remaining", "0".into()),
                    ("x-ratelimit-reset", reset.to_string()),
                ],
                r#"{"message":"API rate limit exceeded"}"#,
            ),
            Step::Answer(429, vec![], "{}"),
            ok(),
        ]);
        // GET: no pacing, so the clock's sleeps are the rate-limit waits alone.
        assert_eq!(rig.send(Method::GET, "").await.unwrap(), 200);
        assert_eq!(
            rig.sleeps(),
            vec![
                Duration::from_secs(7),
                // 7 s have passed of the 30 to the reset, plus the inclusive second.
                Duration::from_secs(24),
                Duration::from_secs(240),
            ]
        );
        assert_eq!(rig.count(|m| &m.rate_limit_waits), 3);
        assert_eq!(rig.count(|m| &m.rate_limit_wait_ms), 271_000);
        let post = Rig::new(vec![
            Step::Answer(429, vec![("retry-after", "1".into())], "{}"),
            ok(),
        ]);
        assert_eq!(post.send(Method::POST, "{}").await.unwrap(), 200);
        assert_eq!(post.wire.attempts(), 2);
    }

    #[tokio::test]
    async fn a_plain_forbidden_is_answered_at_once() {
        let rig = Rig::new(vec![status(403)]);
        assert_eq!(rig.send(Method::GET, "").await.unwrap(), 403);
        assert!(rig.sleeps().is_empty());
        assert_eq!(rig.count(|m| &m.responses_4xx), 1);
    }

    #[tokio::test]
    async fn transport_failures_retry_reads_and_unsent_posts_only() {
        let rig = Rig::new(vec![
            Step::Fail {
                connect: false,
                timeout: true,
            },
            ok(),
        ]);
        assert_eq!(rig.send(Method::GET, "").await.unwrap(), 200);
        assert_eq!(rig.count(|m| &m.transport_errors), 1);
        assert_eq!(rig.sleeps(), vec![Duration::from_millis(500)]);

        let timed_out_post = Rig::new(vec![Step::Fail {
            connect: false,
            timeout: true,
        }]);
        let err = timed_out_post.send(Method::POST, "{}").await.unwrap_err();
        assert!(TransportFailure::find(err.as_ref()).is_some_and(|f| f.timeout));
        assert_eq!(timed_out_post.wire.attempts(), 1);

        let refused_post = Rig::new(vec![
            Step::Fail {
                connect: true,
                timeout: false,
            },
            ok(),
        ]);
        assert_eq!(refused_post.send(Method::POST, "{}").await.unwrap(), 200);
        assert_eq!(refused_post.wire.attempts(), 2);
    }

    #[tokio::test]
    async fn retries_stop_at_the_policy_limit() {
        let rig = Rig::new(vec![status(500); 5]);
        assert_eq!(rig.send(Method::GET, "").await.unwrap(), 500);
        assert_eq!(rig.wire.attempts(), 5);
        assert_eq!(rig.count(|m| &m.retries), 4);
    }
}
