//! The GitHub REST client: octocrab over a tower stack that carries the product's rules
//! (`layers`: retries and rate-limit waits on the injectable clock, the content-creation pacer,
//! the concurrency cap, request counters) above a reqwest wire.
//!
//! octocrab builds the requests (routes, query parameters, JSON bodies, GitHub's API version
//! header), decodes answers into typed values, maps GitHub's error bodies and follows
//! pagination; authentication stays with `auth` (App JWT and the installation-token cache on
//! the same injectable clock), which hands each call its bearer token.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::header::{HeaderValue, ACCEPT, AUTHORIZATION, USER_AGENT};
use http::Method;
use octocrab::service::middleware::base_uri::BaseUriLayer;
use octocrab::{AuthState, FromResponse, Octocrab, OctocrabBuilder};
use serde::Serialize;

use super::clock::Clock;
pub use super::layers::ClientMetrics;
use super::layers::{
    ConcurrencyCap, Counting, Pacing, ReqwestWire, Retries, RuleLayer, TransportFailure,
};
use super::ratelimit::{Pacer, RetryPolicy};

/// A bearer token; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretToken(String);

impl SecretToken {
    /// Wraps a token value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The raw token, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretToken(<redacted>)")
    }
}

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

/// The shared client. Cheap to clone; clones share the pacer, the concurrency cap and the
/// counters.
#[derive(Clone)]
pub struct HttpTransport {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: ClientConfig,
    clock: Arc<dyn Clock>,
    pacer: Arc<Pacer>,
    concurrency: ConcurrencyCap,
    metrics: Arc<ClientMetrics>,
    /// Built on first use: octocrab's service buffer spawns its worker on the runtime that
    /// builds it, and a transport may be made before any runtime exists (the CLI).
    octocrab: OnceLock<Octocrab>,
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport")
            .field("base_url", &self.config().base_url)
            .finish()
    }
}

/// Maps an octocrab failure of `method route` to the product's error.
pub fn api_error(method: &Method, route: &str, error: octocrab::Error) -> GitHubError {
    let (method, path) = (method.to_string(), route.to_string());
    match error {
        octocrab::Error::GitHub { source, .. } => GitHubError::Status {
            method,
            path,
            status: source.status_code.as_u16(),
            message: source.message,
        },
        octocrab::Error::Json { source, .. } => GitHubError::Decode {
            method,
            path,
            message: source.to_string(),
        },
        octocrab::Error::Serde { source, .. } => GitHubError::Decode {
            method,
            path,
            message: source.to_string(),
        },
        other => match TransportFailure::find(&other) {
            Some(failure) => GitHubError::Transport {
                method,
                path,
                message: failure.message.clone(),
                timeout: failure.timeout,
            },
            None => GitHubError::Transport {
                method,
                path,
                message: other.to_string(),
                timeout: false,
            },
        },
    }
}

impl HttpTransport {
    /// Builds the client; nothing is sent yet.
    pub fn new(
        config: ClientConfig,
        clock: Arc<dyn Clock>,
        metrics: Arc<ClientMetrics>,
    ) -> Result<Self, GitHubError> {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        let user_agent = HeaderValue::from_str(&config.user_agent)
            .map_err(|e| GitHubError::InvalidInput(format!("user agent: {e}")))?;
        headers.insert(USER_AGENT, user_agent);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(config.request_timeout)
            .pool_max_idle_per_host(config.max_concurrency)
            .build()
            .map_err(|e| GitHubError::InvalidInput(format!("HTTP client: {e}")))?;
        config.base_url.parse::<http::Uri>().map_err(|e| {
            GitHubError::InvalidInput(format!("base URL `{}`: {e}", config.base_url))
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                pacer: Arc::new(Pacer::new(config.creates_per_minute, clock.clone())),
                concurrency: ConcurrencyCap::new(config.max_concurrency),
                http,
                config,
                clock,
                metrics,
                octocrab: OnceLock::new(),
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

    /// The anonymous octocrab client over the product's layers (outermost last): the wire,
    /// counters, the concurrency cap, the pacer, retries, and the base URL.
    fn octocrab(&self) -> &Octocrab {
        let inner = &self.inner;
        inner.octocrab.get_or_init(|| {
            let base = inner
                .config
                .base_url
                .parse::<http::Uri>()
                .expect("checked in HttpTransport::new");
            let built = OctocrabBuilder::new_empty()
                .with_service(ReqwestWire::new(inner.http.clone()))
                .with_layer(&RuleLayer(Counting(inner.metrics.clone())))
                .with_layer(&RuleLayer(inner.concurrency.clone()))
                .with_layer(&RuleLayer(Pacing {
                    pacer: inner.pacer.clone(),
                    metrics: inner.metrics.clone(),
                }))
                .with_layer(&RuleLayer(Retries {
                    policy: inner.config.retry.clone(),
                    clock: inner.clock.clone(),
                    metrics: inner.metrics.clone(),
                }))
                .with_layer(&BaseUriLayer::new(base))
                .with_auth(AuthState::None)
                .build();
            match built {
                Ok(client) => client,
                Err(never) => match never {},
            }
        })
    }

    /// An octocrab client that sends `token` as its bearer (`None`: anonymous, as the
    /// manifest code exchange is).
    pub fn octocrab_as(&self, token: Option<&SecretToken>) -> Result<Octocrab, GitHubError> {
        let base = self.octocrab();
        match token {
            None => Ok(base.clone()),
            Some(t) => base
                .user_access_token(t.expose().to_string())
                .map_err(|e| GitHubError::Auth(e.to_string())),
        }
    }

    /// `GET route` (relative to the base URL) with `query`, decoded.
    pub async fn get<T: FromResponse, Q: Serialize + ?Sized>(
        &self,
        token: Option<&SecretToken>,
        route: &str,
        query: Option<&Q>,
    ) -> Result<T, GitHubError> {
        self.octocrab_as(token)?
            .get(route, query)
            .await
            .map_err(|e| api_error(&Method::GET, route, e))
    }

    /// `POST route` with an optional JSON body, decoded.
    pub async fn post<T: FromResponse, B: Serialize + ?Sized>(
        &self,
        token: Option<&SecretToken>,
        route: &str,
        body: Option<&B>,
    ) -> Result<T, GitHubError> {
        self.octocrab_as(token)?
            .post(route, body)
            .await
            .map_err(|e| api_error(&Method::POST, route, e))
    }

    /// `PATCH route` with a JSON body, decoded.
    pub async fn patch<T: FromResponse, B: Serialize + ?Sized>(
        &self,
        token: Option<&SecretToken>,
        route: &str,
        body: &B,
    ) -> Result<T, GitHubError> {
        self.octocrab_as(token)?
            .patch(route, Some(body))
            .await
            .map_err(|e| api_error(&Method::PATCH, route, e))
    }

    /// `method url` with a JSON body, the bearer set here rather than by octocrab (which
    /// sends it only to the REST host): for an absolute URL such as the GraphQL endpoint.
    /// Returns the raw body of a 2xx answer (possibly empty).
    pub async fn send_raw<B: Serialize + ?Sized>(
        &self,
        method: Method,
        token: Option<&SecretToken>,
        url: &str,
        body: Option<&B>,
    ) -> Result<bytes::Bytes, GitHubError> {
        use http_body_util::BodyExt;
        let octo = self.octocrab();
        let fail = |e| api_error(&method, url, e);
        let mut request = http::Request::builder().method(method.clone()).uri(url);
        if let Some(t) = token {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", t.expose()))
                .map_err(|_| GitHubError::Auth("the token is not a valid header value".into()))?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        let request = octo.build_request(request, body).map_err(fail)?;
        let response = octo.execute(request).await.map_err(fail)?;
        let response = octocrab::map_github_error(response).await.map_err(fail)?;
        let bytes = response.into_body().collect().await.map_err(fail)?;
        Ok(bytes.to_bytes())
    }
}
