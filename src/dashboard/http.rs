//! The dashboard's HTTP surface (`sota-bot serve --dashboard`): thin handlers that load
//! snapshots from a [`CampaignSource`], drop what the viewer may not see, and render.
//!
//! - `GET /campaigns`, `GET /campaigns/{id}`: HTML pages (no scripts, no assets from other
//!   hosts; the content security policy forbids both).
//! - `GET /api/campaigns`, `GET /api/campaigns/{id}`: the same views as JSON.
//! - `GET|POST /dashboard/sign-in`: a form that stores the dashboard token in a cookie, so
//!   a browser can see private campaigns without sending headers by hand.
//!
//! A campaign the viewer may not see answers 404, like one that does not exist.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::access::{self, DashboardToken, Viewer};
use super::model::CampaignSnapshot;
use super::{render, view};

/// A source that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("campaign source: {0}")]
pub struct SourceError(pub String);

/// Where the dashboard's campaigns come from (blocking; handlers call it off the runtime).
pub trait CampaignSource: Send + Sync {
    fn campaigns(&self) -> Result<Vec<CampaignSnapshot>, SourceError>;
    fn campaign(&self, id: &str) -> Result<Option<CampaignSnapshot>, SourceError>;
}

/// State shared by the dashboard's handlers.
#[derive(Clone)]
pub struct DashboardState {
    pub source: Arc<dyn CampaignSource>,
    /// The operator's token; `None` shows private campaigns to nobody.
    pub token: Option<DashboardToken>,
}

/// The dashboard's routes.
pub fn router(state: DashboardState) -> Router {
    Router::new()
        .route("/campaigns", get(list_page))
        .route("/campaigns/", get(list_page))
        .route("/campaigns/{id}", get(campaign_page))
        .route("/api/campaigns", get(list_json))
        .route("/api/campaigns/{id}", get(campaign_json))
        .route("/dashboard/sign-in", get(sign_in_form).post(sign_in))
        .with_state(state)
}

/// Pages allow inline styles and nothing else from anywhere; no scripts at all.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
                   form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Private campaigns must not linger in shared caches.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

const HTML: &str = "text/html; charset=utf-8";
const JSON: &str = "application/json";

fn viewer_of(state: &DashboardState, headers: &HeaderMap) -> Viewer {
    let get = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let presented = access::presented_token(get(header::AUTHORIZATION), get(header::COOKIE));
    access::viewer(state.token.as_ref(), presented)
}

fn failure(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "dashboard request failed");
    respond(
        StatusCode::INTERNAL_SERVER_ERROR,
        "text/plain; charset=utf-8",
        "the dashboard could not read its campaigns\n".into(),
    )
}

/// What a missing or hidden campaign answers: the same either way.
enum Missing {
    Page,
    Json,
}

fn not_found(kind: Missing, id: &str) -> Response {
    match kind {
        Missing::Page => match render::not_found_html(id) {
            Ok(body) => respond(StatusCode::NOT_FOUND, HTML, body),
            Err(e) => failure(e),
        },
        Missing::Json => respond(
            StatusCode::NOT_FOUND,
            JSON,
            serde_json::json!({ "error": "no such campaign", "id": id }).to_string(),
        ),
    }
}

async fn visible_campaigns(
    state: &DashboardState,
    viewer: Viewer,
) -> Result<Vec<CampaignSnapshot>, Response> {
    let source = state.source.clone();
    let all = tokio::task::spawn_blocking(move || source.campaigns())
        .await
        .map_err(failure)?
        .map_err(failure)?;
    Ok(all
        .into_iter()
        .filter(|c| access::may_see(viewer, c))
        .collect())
}

async fn visible_campaign(
    state: &DashboardState,
    viewer: Viewer,
    id: String,
    kind: Missing,
) -> Result<CampaignSnapshot, Response> {
    let source = state.source.clone();
    let key = id.clone();
    tokio::task::spawn_blocking(move || source.campaign(&key))
        .await
        .map_err(failure)?
        .map_err(failure)?
        .filter(|c| access::may_see(viewer, c))
        .ok_or_else(|| not_found(kind, &id))
}

fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_string_pretty(value) {
        Ok(body) => respond(StatusCode::OK, JSON, body),
        Err(e) => failure(e),
    }
}

fn html(result: Result<String, crate::report::RenderError>) -> Response {
    match result {
        Ok(body) => respond(StatusCode::OK, HTML, body),
        Err(e) => failure(e),
    }
}

async fn list_page(State(state): State<DashboardState>, headers: HeaderMap) -> Response {
    match visible_campaigns(&state, viewer_of(&state, &headers)).await {
        Ok(c) => html(render::list_html(&view::campaign_list(&c, Utc::now()))),
        Err(r) => r,
    }
}

async fn list_json(State(state): State<DashboardState>, headers: HeaderMap) -> Response {
    match visible_campaigns(&state, viewer_of(&state, &headers)).await {
        Ok(c) => json(&view::campaign_list(&c, Utc::now())),
        Err(r) => r,
    }
}

async fn campaign_page(
    State(state): State<DashboardState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match visible_campaign(&state, viewer_of(&state, &headers), id, Missing::Page).await {
        Ok(c) => html(render::page_html(
            &view::campaign_page(&c, Utc::now()),
            false,
        )),
        Err(r) => r,
    }
}

async fn campaign_json(
    State(state): State<DashboardState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match visible_campaign(&state, viewer_of(&state, &headers), id, Missing::Json).await {
        Ok(c) => json(&view::campaign_page(&c, Utc::now())),
        Err(r) => r,
    }
}

/// The sign-in form's field.
#[derive(Debug, Deserialize)]
pub struct SignIn {
    pub token: String,
}

fn sign_in_html(
    state: &DashboardState,
    message: Option<&str>,
) -> Result<String, crate::report::RenderError> {
    render::sign_in_html(state.token.is_some(), message)
}

async fn sign_in_form(State(state): State<DashboardState>) -> Response {
    html(sign_in_html(&state, None))
}

async fn sign_in(State(state): State<DashboardState>, Form(form): Form<SignIn>) -> Response {
    let Some(token) = state.token.as_ref().filter(|t| t.matches(&form.token)) else {
        return match sign_in_html(&state, Some("That is not the dashboard token.")) {
            Ok(body) => respond(StatusCode::UNAUTHORIZED, HTML, body),
            Err(e) => failure(e),
        };
    };
    let mut r = respond(StatusCode::SEE_OTHER, HTML, String::new());
    let cookie = format!(
        "{}={}; Path=/; HttpOnly; SameSite=Strict",
        access::TOKEN_COOKIE,
        token.value()
    );
    match HeaderValue::from_str(&cookie) {
        Ok(v) => {
            r.headers_mut().insert(header::SET_COOKIE, v);
            r.headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static("/campaigns"));
            r
        }
        Err(e) => failure(e),
    }
}
