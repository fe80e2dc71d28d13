//! `sota-bot history`: Phase 0.5 on its own: the model's SGLang history from a checkout,
//! as markdown notes or JSON, with the upstream PRs when a token is given.

use crate::cli::{EXIT_FAILURE, EXIT_INVALID_INPUT, EXIT_OK};
use crate::github::auth::{Credentials, SecretToken};
use crate::github::{
    ClientConfig, ClientMetrics, HttpTransport, RepoName, RestGitHubApi, SystemClock,
};
use crate::history::upstream::{self, UpstreamPrs};
use crate::history::{build, render, HistoryRequest};
use std::path::PathBuf;
use std::sync::Arc;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Markdown,
    Json,
}

/// Arguments of `sota-bot history`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The SGLang checkout (a work tree or a bare clone).
    #[arg(long)]
    pub checkout: PathBuf,
    /// Hugging Face model id (or a local model folder).
    #[arg(long)]
    pub model: String,
    /// The model's config.json (default: the model folder, then the Hugging Face cache;
    /// without one the architecture is inferred from the model id).
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "markdown")]
    pub format: Format,
    /// Optional curated knowledge root (`<framework>/<family>/README*.md`).
    #[arg(long)]
    pub knowledge_root: Option<PathBuf>,
    /// Knowledge-root family folder (default: inferred from the model id).
    #[arg(long)]
    pub history_slug: Option<String>,
    /// Upstream repository searched for open and recently merged PRs.
    #[arg(long, default_value = crate::campaign::repo_config::DEFAULT_UPSTREAM)]
    pub upstream: String,
    /// Environment variable holding a GitHub token; the upstream search runs only with one.
    #[arg(long)]
    pub github_token_env: Option<String>,
    /// GitHub REST API base URL.
    #[arg(long, default_value = "https://api.github.com")]
    pub github_api_url: String,
    /// A search result saved earlier (`history/upstream-prs.json`), used instead of searching.
    #[arg(long)]
    pub upstream_prs: Option<PathBuf>,
    /// Write here instead of standard output.
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
}

/// Searches the upstream repository with a token (a personal or installation token).
pub fn fetch_upstream(
    api_url: &str,
    token: &str,
    upstream: &RepoName,
    model: &str,
) -> anyhow::Result<UpstreamPrs> {
    let transport = HttpTransport::new(
        ClientConfig::for_base_url(api_url),
        Arc::new(SystemClock),
        Arc::new(ClientMetrics::default()),
    )?;
    let api = RestGitHubApi::new(transport, Credentials::Token(SecretToken::new(token)));
    let family = crate::history::family_from_model_id(model);
    let today = chrono::Utc::now().date_naive();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(upstream::fetch(&api, upstream, &family, today)))
}

/// Runs `sota-bot history`.
pub fn run(a: Args) -> anyhow::Result<i32> {
    let upstream_repo = match RepoName::parse(&a.upstream) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: --upstream: {e}");
            return Ok(EXIT_INVALID_INPUT);
        }
    };
    let mut upstream_prs = None;
    if let Some(path) = &a.upstream_prs {
        match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<UpstreamPrs>(&t).map_err(|e| e.to_string()))
        {
            Ok(u) => upstream_prs = Some(u),
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                return Ok(EXIT_INVALID_INPUT);
            }
        }
    } else if let Some(var) = &a.github_token_env {
        match std::env::var(var).ok().filter(|t| !t.is_empty()) {
            Some(token) => {
                upstream_prs = Some(fetch_upstream(
                    &a.github_api_url,
                    &token,
                    &upstream_repo,
                    &a.model,
                )?)
            }
            None => {
                eprintln!("error: --github-token-env {var}: the variable is unset or empty");
                return Ok(EXIT_INVALID_INPUT);
            }
        }
    }
    if !a.checkout.exists() {
        eprintln!("error: --checkout {}: no such folder", a.checkout.display());
        return Ok(EXIT_INVALID_INPUT);
    }
    let frameworks = [crate::framework::Framework::Sglang];
    let report = build(&HistoryRequest {
        checkout: &a.checkout,
        model: &a.model,
        config_json: a.config.as_deref(),
        knowledge_root: a.knowledge_root.as_deref(),
        slug_override: a.history_slug.as_deref(),
        frameworks: &frameworks,
        upstream: upstream_prs.as_ref(),
    });
    if report.head.is_none() {
        for b in &report.blockers {
            eprintln!("error: {b}");
        }
        return Ok(EXIT_INVALID_INPUT);
    }
    let text = match a.format {
        Format::Json => serde_json::to_string_pretty(&report)? + "\n",
        Format::Markdown => render::render_markdown(&report, "`sota-bot history --format json`")?,
    };
    match &a.out {
        Some(p) => {
            if let Err(e) = std::fs::write(p, &text) {
                eprintln!("error: {}: {e}", p.display());
                return Ok(EXIT_FAILURE);
            }
        }
        None => print!("{text}"),
    }
    Ok(EXIT_OK)
}
