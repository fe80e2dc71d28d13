//! GitHub's App manifest flow, run from the terminal: a page on loopback posts the manifest
//! to GitHub in the user's browser; GitHub creates the App and sends the browser back to
//! `/callback?code=...&state=...`; the code is exchanged for the App's id, key and webhook
//! secret (`POST /app-manifests/{code}/conversions`).
//!
//! The `state` value is random per run and checked on the callback, so a page elsewhere
//! cannot make this process exchange a code of its choosing.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use tokio::sync::oneshot;

use crate::github::app_client::{convert_manifest_code, CreatedApp};
use crate::github::manifest::{self, AppManifest, ManifestError, ManifestOptions};
use crate::github::{GitHubError, HttpTransport};

/// Settings of one run of the flow.
#[derive(Debug, Clone)]
pub struct FlowSettings {
    /// Manifest options; the redirect URL is set to this process's callback.
    pub manifest: ManifestOptions,
    /// `https://github.com`, or a GitHub Enterprise Server root.
    pub github_url: String,
    /// Create the App under this organization instead of the signed-in user.
    pub org: Option<String>,
    /// Loopback address of the local page.
    pub listen: SocketAddr,
    /// Give up when no callback arrived in this time (GitHub's codes live an hour).
    pub timeout: Duration,
}

/// Why the flow did not produce an App.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("cannot serve the local page on {addr}: {message}")]
    Listen { addr: SocketAddr, message: String },
    #[error("no answer from GitHub within {0:?}; run `sota-bot app create` again")]
    Timeout(Duration),
    #[error("exchanging the manifest code failed: {0}")]
    Exchange(#[from] GitHubError),
}

/// The form action GitHub's manifest flow accepts.
pub fn github_new_app_url(github_url: &str, org: Option<&str>, state: &str) -> String {
    let root = github_url.trim_end_matches('/');
    match org {
        Some(org) => format!("{root}/organizations/{org}/settings/apps/new?state={state}"),
        None => format!("{root}/settings/apps/new?state={state}"),
    }
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The local page: a form that posts the manifest to GitHub (submitted by script, with a
/// button for browsers without it).
pub fn start_page(manifest: &AppManifest, action: &str) -> String {
    let json = serde_json::to_string(manifest).unwrap_or_default();
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Create the sota-bot GitHub App</title></head>\n\
         <body>\n<h1>Create the GitHub App \u{201c}{name}\u{201d}</h1>\n\
         <p>GitHub will ask you to confirm the App's name, then send you back here.</p>\n\
         <form id=\"create\" method=\"post\" action=\"{action}\">\n\
         <input type=\"hidden\" name=\"manifest\" value=\"{value}\">\n\
         <button type=\"submit\">Create the App on GitHub</button>\n</form>\n\
         <script>document.getElementById('create').submit();</script>\n</body></html>\n",
        name = html_escape(&manifest.name),
        action = html_escape(action),
        value = html_escape(&json),
    )
}

#[derive(Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
}

struct Shared {
    page: String,
    state: String,
    transport: HttpTransport,
    done: Mutex<Option<oneshot::Sender<Result<CreatedApp, GitHubError>>>>,
}

async fn page(State(shared): State<Arc<Shared>>) -> Html<String> {
    Html(shared.page.clone())
}

async fn callback(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<Callback>,
) -> impl IntoResponse {
    if q.state.as_deref() != Some(shared.state.as_str()) {
        return (
            StatusCode::BAD_REQUEST,
            Html("<p>This link does not belong to the running <code>sota-bot app create</code> (state mismatch). Start again from its page.</p>".to_string()),
        );
    }
    let Some(code) = q.code.filter(|c| !c.is_empty()) else {
        return (
            StatusCode::BAD_REQUEST,
            Html("<p>GitHub sent no code.</p>".to_string()),
        );
    };
    let Some(done) = shared.done.lock().unwrap_or_else(|p| p.into_inner()).take() else {
        return (
            StatusCode::CONFLICT,
            Html("<p>The code was already exchanged; see the terminal.</p>".to_string()),
        );
    };
    let outcome = convert_manifest_code(&shared.transport, &code).await;
    let page = match &outcome {
        Ok(app) => (
            StatusCode::OK,
            Html(format!(
                "<p>Created the GitHub App <a href=\"{url}\">{name}</a>. Return to the terminal: \
                 it wrote the credentials and says how to install the App.</p>",
                url = html_escape(&app.html_url),
                name = html_escape(&app.name)
            )),
        ),
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            Html(format!(
                "<p>Exchanging the code failed: {}</p>",
                html_escape(&e.to_string())
            )),
        ),
    };
    let _ = done.send(outcome);
    page
}

/// A random `state` value (128 bits, hex).
fn random_state() -> String {
    use rand::Rng;
    let bytes: [u8; 16] = rand::rng().random();
    hex::encode(bytes)
}

/// Runs the flow: serves the page, calls `ready` with its URL (to print or open), and
/// returns the created App once GitHub's callback was exchanged.
pub async fn run(
    settings: &FlowSettings,
    transport: HttpTransport,
    ready: impl FnOnce(&str),
) -> Result<CreatedApp, FlowError> {
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| FlowError::Listen {
            addr: settings.listen,
            message: e.to_string(),
        })?;
    let addr = listener.local_addr().map_err(|e| FlowError::Listen {
        addr: settings.listen,
        message: e.to_string(),
    })?;
    let mut options = settings.manifest.clone();
    options.redirect_url = Some(format!("http://{addr}/callback"));
    let manifest = manifest::build(&options)?;
    let state = random_state();
    let action = github_new_app_url(&settings.github_url, settings.org.as_deref(), &state);
    let (tx, rx) = oneshot::channel();
    let shared = Arc::new(Shared {
        page: start_page(&manifest, &action),
        state,
        transport,
        done: Mutex::new(Some(tx)),
    });
    let app = Router::new()
        .route("/", get(page))
        .route("/callback", get(callback))
        .with_state(shared);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await;
    });
    ready(&format!("http://{addr}/"));
    let outcome = tokio::time::timeout(settings.timeout, rx).await;
    let _ = stop_tx.send(());
    let _ = server.await;
    match outcome {
        Err(_) | Ok(Err(_)) => Err(FlowError::Timeout(settings.timeout)),
        Ok(Ok(result)) => Ok(result?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_actions() {
        assert_eq!(
            github_new_app_url("https://github.com/", None, "s1"),
            "https://github.com/settings/apps/new?state=s1"
        );
        assert_eq!(
            github_new_app_url("https://ghe.example.com", Some("acme"), "s2"),
            "https://ghe.example.com/organizations/acme/settings/apps/new?state=s2"
        );
    }

    #[test]
    fn the_page_carries_the_manifest_escaped() {
        let m = manifest::build(&ManifestOptions {
            name: "bot <\"x\">".into(),
            webhook_url: "https://bot.example.com/webhook?a=1&b=2".into(),
            homepage_url: None,
            redirect_url: None,
        })
        .unwrap();
        let page = start_page(&m, "https://github.com/settings/apps/new?state=abc");
        assert!(page.contains("name=\"manifest\" value=\"{&quot;name&quot;:&quot;bot &lt;\\&quot;x\\&quot;&gt;&quot;"), "{page}");
        assert!(page.contains("webhook?a=1&amp;b=2"));
        assert!(!page.contains("<\"x\">"));
        assert_ne!(random_state(), random_state());
        assert_eq!(random_state().len(), 32);
    }
}
