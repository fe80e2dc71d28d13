//! The HTTP surface: `POST /webhook`, `GET /healthz`, `GET /metrics`.
//!
//! `POST /webhook` answers:
//! - 413 when the body exceeds 25 MB (GitHub's cap),
//! - 401 when `X-Hub-Signature-256` is missing or matches no configured secret,
//! - 400 when `X-GitHub-Event` / `X-GitHub-Delivery` are missing or the body is not JSON,
//! - 202 `queued` once the delivery is committed to the durable queue,
//! - 200 `duplicate` when that delivery id was already queued (GitHub's manual redelivery
//!   keeps the id): acknowledged so GitHub stops retrying, but not processed again,
//! - 503 when the queue cannot store it (GitHub shows the failure; redeliver later).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::Notify;

use super::metrics::{DeliveryOutcome, ServiceMetrics};
use super::queue::{Enqueued, IngestWriter, JobStore, NewDelivery};
use crate::github::events::DeliveryHead;
use crate::github::signature::{self, WebhookSecret};

/// GitHub caps payloads at 25 MB.
pub const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

/// State shared by the handlers.
#[derive(Clone)]
pub struct HttpState {
    pub secrets: Arc<Vec<WebhookSecret>>,
    pub writer: IngestWriter,
    pub store: Arc<JobStore>,
    pub metrics: Arc<ServiceMetrics>,
    /// Wakes idle workers after a new job is committed.
    pub wake: Arc<Notify>,
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
    if declared_len.is_some_and(|n| n > MAX_BODY_BYTES) {
        state.metrics.delivery(&event, DeliveryOutcome::TooLarge);
        return (StatusCode::PAYLOAD_TOO_LARGE, "payload over 25 MB");
    }
    let body: Bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            state.metrics.delivery(&event, DeliveryOutcome::TooLarge);
            return (StatusCode::PAYLOAD_TOO_LARGE, "payload over 25 MB");
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
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(&counts),
    )
}
