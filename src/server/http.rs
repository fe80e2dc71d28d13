//! The HTTP surface: `POST /webhook`, `GET /healthz`, `GET /metrics`.
//!
//! `POST /webhook` answers:
//! - 413 when the body exceeds 25 MB (GitHub's cap),
//! - 408 when the body does not arrive within the body timeout,
//! - 503 `busy` when unauthenticated bodies in flight already hold the byte budget for the
//!   whole body timeout (nothing is buffered beyond [`HttpLimits::max_inflight_body_bytes`]),
//! - 401 when `X-Hub-Signature-256` is missing or matches no configured secret,
//! - 400 when `X-GitHub-Event` / `X-GitHub-Delivery` are missing or the body is not JSON,
//! - 202 `queued` once the delivery is committed to the durable queue,
//! - 200 `duplicate` when that delivery id was already queued (GitHub's manual redelivery
//!   keeps the id): acknowledged so GitHub stops retrying, but not processed again,
//! - 202 `requeued` when that delivery had been dead-lettered: a manual redelivery is how an
//!   operator retries it, so it is queued again with a fresh attempt count,
//! - 503 when the queue cannot store it (GitHub shows the failure; redeliver later).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use futures::StreamExt;
use tokio::sync::Notify;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

pub use super::listener::HttpLimits;
use super::metrics::{DeliveryOutcome, ServiceMetrics};
use super::queue::{Enqueued, IngestWriter, JobStore, NewDelivery};
use crate::github::events::{DeliveryHead, MAX_PAYLOAD_BYTES};
use crate::github::signature::{self, WebhookSecret};

/// State shared by the handlers.
#[derive(Clone)]
pub struct HttpState {
    pub secrets: Arc<Vec<WebhookSecret>>,
    pub writer: IngestWriter,
    pub store: Arc<JobStore>,
    pub metrics: Arc<ServiceMetrics>,
    /// Wakes idle workers after a new job is committed.
    pub wake: Arc<Notify>,
    pub limits: HttpLimits,
    /// Bytes of bodies being read (one permit per byte, [`HttpLimits::max_inflight_body_bytes`]).
    pub body_budget: Arc<Semaphore>,
}

impl HttpState {
    /// The budget for `limits`.
    pub fn body_budget(limits: &HttpLimits) -> Arc<Semaphore> {
        Arc::new(Semaphore::new(budget_bytes(limits)))
    }
}

/// The byte budget of `limits` (at least 64 KiB, so that one chunk always fits).
fn budget_bytes(limits: &HttpLimits) -> usize {
    limits
        .max_inflight_body_bytes
        .clamp(64 * 1024, Semaphore::MAX_PERMITS)
}

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyRefused {
    TooLarge,
    TimedOut,
    Busy,
    Broken,
}

/// Reads a body as it arrives, taking a byte of the shared budget for every byte held and
/// giving up at the body deadline. Returns the bytes and the budget they hold (released when
/// the request is answered).
async fn read_body(
    body: Body,
    state: &HttpState,
) -> Result<(Bytes, Option<OwnedSemaphorePermit>), BodyRefused> {
    let deadline = Instant::now() + state.limits.body_timeout;
    let mut stream = body.into_data_stream();
    let mut buf = bytes::BytesMut::new();
    let mut held: Option<OwnedSemaphorePermit> = None;
    loop {
        let next = tokio::time::timeout_at(deadline, stream.next())
            .await
            .map_err(|_| BodyRefused::TimedOut)?;
        let Some(chunk) = next else {
            return Ok((buf.freeze(), held));
        };
        let chunk = chunk.map_err(|_| BodyRefused::Broken)?;
        if buf.len() + chunk.len() > MAX_PAYLOAD_BYTES {
            return Err(BodyRefused::TooLarge);
        }
        let n = u32::try_from(chunk.len()).map_err(|_| BodyRefused::TooLarge)?;
        if n > 0 {
            let permit =
                tokio::time::timeout_at(deadline, state.body_budget.clone().acquire_many_owned(n))
                    .await
                    .map_err(|_| BodyRefused::Busy)?
                    .map_err(|_| BodyRefused::Busy)?;
            match held.as_mut() {
                Some(h) => h.merge(permit),
                None => held = Some(permit),
            }
        }
        buf.extend_from_slice(&chunk);
    }
}

/// Builds the router.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/webhook", post(webhook))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn webhook(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Body,
) -> impl IntoResponse {
    let event = header(&headers, "x-github-event").unwrap_or("").to_string();
    let declared_len = header(&headers, "content-length").and_then(|v| v.parse::<usize>().ok());
    if declared_len.is_some_and(|n| n > MAX_PAYLOAD_BYTES) {
        state.metrics.delivery(&event, DeliveryOutcome::TooLarge);
        return (StatusCode::PAYLOAD_TOO_LARGE, "payload over 25 MB");
    }
    let (body, _budget): (Bytes, _) = match read_body(body, &state).await {
        Ok(b) => b,
        Err(BodyRefused::TooLarge) => {
            state.metrics.delivery(&event, DeliveryOutcome::TooLarge);
            return (StatusCode::PAYLOAD_TOO_LARGE, "payload over 25 MB");
        }
        Err(BodyRefused::TimedOut) => {
            state.metrics.delivery(&event, DeliveryOutcome::TimedOut);
            return (StatusCode::REQUEST_TIMEOUT, "body not received in time");
        }
        Err(BodyRefused::Busy) => {
            state.metrics.delivery(&event, DeliveryOutcome::Busy);
            tracing::warn!(
                "webhook body refused: unauthenticated bodies in flight hold the byte budget"
            );
            return (StatusCode::SERVICE_UNAVAILABLE, "busy");
        }
        Err(BodyRefused::Broken) => {
            state.metrics.delivery(&event, DeliveryOutcome::Malformed);
            return (StatusCode::BAD_REQUEST, "body could not be read");
        }
    };
    if let Err(e) = signature::verify(
        &state.secrets,
        header(&headers, "x-hub-signature-256"),
        &body,
    ) {
        tracing::warn!(event = %event, error = %e, "webhook signature rejected");
        state
            .metrics
            .delivery(&event, DeliveryOutcome::BadSignature);
        return (StatusCode::UNAUTHORIZED, "bad signature");
    }
    let Some(delivery_id) =
        header(&headers, "x-github-delivery").filter(|d| !d.is_empty() && d.len() <= 200)
    else {
        state.metrics.delivery(&event, DeliveryOutcome::Malformed);
        return (StatusCode::BAD_REQUEST, "missing X-GitHub-Delivery");
    };
    let delivery_id = delivery_id.to_string();
    if event.is_empty() || event.len() > 100 {
        state.metrics.delivery(&event, DeliveryOutcome::Malformed);
        return (StatusCode::BAD_REQUEST, "missing X-GitHub-Event");
    }
    let head = match DeliveryHead::parse(&body) {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(delivery = %delivery_id, event = %event, error = %e, "malformed webhook body");
            state.metrics.delivery(&event, DeliveryOutcome::Malformed);
            return (StatusCode::BAD_REQUEST, "body is not a JSON object");
        }
    };
    let new = NewDelivery {
        delivery_id: delivery_id.clone(),
        event: event.clone(),
        action: head.action.clone(),
        installation_id: head.installation.map(|i| i.id),
        payload: body,
    };
    match state.writer.enqueue(new).await {
        Ok(Enqueued::New { job_id }) => {
            state.wake.notify_one();
            state.metrics.delivery(&event, DeliveryOutcome::Queued);
            tracing::info!(delivery = %delivery_id, event = %event, action = head.action.as_deref().unwrap_or(""), job = job_id, "delivery queued");
            (StatusCode::ACCEPTED, "queued")
        }
        Ok(Enqueued::Requeued { job_id }) => {
            state.wake.notify_one();
            state.metrics.delivery(&event, DeliveryOutcome::Requeued);
            tracing::warn!(delivery = %delivery_id, event = %event, job = job_id, "redelivery of a dead-lettered delivery: queued again");
            (StatusCode::ACCEPTED, "requeued")
        }
        Ok(Enqueued::Duplicate { job_id }) => {
            state.metrics.delivery(&event, DeliveryOutcome::Duplicate);
            tracing::info!(delivery = %delivery_id, event = %event, job = job_id, "duplicate delivery acknowledged, not reprocessed");
            (StatusCode::OK, "duplicate")
        }
        Err(e) => {
            state.metrics.delivery(&event, DeliveryOutcome::QueueError);
            tracing::error!(delivery = %delivery_id, event = %event, error = %e, "could not queue delivery");
            (StatusCode::SERVICE_UNAVAILABLE, "queue unavailable")
        }
    }
}

async fn healthz() -> &'static str {
    "ok"
}

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    let store = state.store.clone();
    let counts = tokio::task::spawn_blocking(move || store.counts())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let mut text = state.metrics.render(&counts);
    let capacity = budget_bytes(&state.limits);
    let held = capacity.saturating_sub(state.body_budget.available_permits());
    text.push_str(&format!(
        "# HELP sota_webhook_body_bytes_in_flight Bytes of webhook bodies being read (signature not checked yet).\n\
         # TYPE sota_webhook_body_bytes_in_flight gauge\n\
         sota_webhook_body_bytes_in_flight {held}\n\
         # HELP sota_webhook_body_bytes_budget Most body bytes held at once.\n\
         # TYPE sota_webhook_body_bytes_budget gauge\n\
         sota_webhook_body_bytes_budget {capacity}\n"
    ));
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
}
