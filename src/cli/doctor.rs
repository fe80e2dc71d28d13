//! `sota-bot doctor --repo OWNER/NAME`: checks, with the App's credentials, everything a
//! campaign on that repository needs and prints PASS/WARN/FAIL with the fix for each.
//! Exits 3 when a check fails.

use std::path::PathBuf;
use std::sync::Arc;

use super::{EXIT_FAILURE, EXIT_INVALID_INPUT, EXIT_OK, EXIT_VERDICT};
use crate::doctor::{gather, render, worst, Status};
use crate::github::app_client::AppClient;
use crate::github::auth::{load_private_key, AppAuth};
use crate::github::{ClientConfig, ClientMetrics, HttpTransport, RepoName, SystemClock};
use crate::server::config::{self, FileSettings};
use crate::server::AppInstallations;

/// `serve`'s database when no setting names one.
const SERVE_DEFAULT_DATABASE: &str = "./sota-bot.sqlite";

/// Arguments of `sota-bot doctor`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The repository campaign requests are opened on (`owner/name`); the fork named in its
    /// `.github/sota-bot.yml` is checked too.
    #[arg(long)]
    pub repo: String,
    /// The `serve` config file (app id, key, database, API URL).
    #[arg(long, env = "SOTA_BOT_CONFIG")]
    pub config: Option<PathBuf>,
    /// GitHub App id.
    #[arg(long, env = "SOTA_BOT_APP_ID")]
    pub app_id: Option<u64>,
    /// Path of the App's PEM private key.
    #[arg(long, env = "SOTA_BOT_PRIVATE_KEY_PATH")]
    pub private_key_path: Option<PathBuf>,
    /// The database `serve` uses [default: the config's, else ./sota-bot.sqlite if present].
    #[arg(long, env = "SOTA_BOT_DATABASE")]
    pub database: Option<PathBuf>,
    /// GitHub REST API base URL [default: https://api.github.com].
    #[arg(long, env = "SOTA_BOT_GITHUB_API_URL")]
    pub github_api_url: Option<String>,
    /// Put the queue's dead-lettered deliveries back in the queue (after fixing their cause).
    #[arg(long)]
    pub requeue_dead: bool,
}

/// Runs the command.
pub fn run(a: Args) -> anyhow::Result<i32> {
    let repo = match RepoName::parse(&a.repo) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: --repo: {e}");
            return Ok(EXIT_INVALID_INPUT);
        }
    };
    let file = match &a.config {
        Some(path) => match config::read_file(path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(EXIT_INVALID_INPUT);
            }
        },
        None => FileSettings::default(),
    };
    let (Some(app_id), Some(key_path)) = (
        a.app_id.or(file.app_id),
        a.private_key_path.clone().or(file.private_key_path.clone()),
    ) else {
        eprintln!(
            "error: doctor needs the App's credentials: --config with app_id and private_key_path, \
             or --app-id and --private-key-path (SOTA_BOT_APP_ID, SOTA_BOT_PRIVATE_KEY_PATH)"
        );
        return Ok(EXIT_INVALID_INPUT);
    };
    let key = match std::fs::read(&key_path)
        .map_err(|e| e.to_string())
        .and_then(|pem| load_private_key(&pem).map_err(|e| e.to_string()))
    {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {}: {e}", key_path.display());
            return Ok(EXIT_INVALID_INPUT);
        }
    };
    let api_url = a
        .github_api_url
        .clone()
        .or(file.github_api_url.clone())
        .unwrap_or_else(|| "https://api.github.com".into());
    let database = a
        .database
        .clone()
        .or(file.database.clone())
        .or_else(|| Some(PathBuf::from(SERVE_DEFAULT_DATABASE)).filter(|p| p.is_file()));
    if a.requeue_dead {
        let Some(db) = &database else {
            eprintln!("error: --requeue-dead needs the database (--database or --config)");
            return Ok(EXIT_INVALID_INPUT);
        };
        match gather::requeue_dead(db) {
            Ok(n) => println!("requeued {n} dead-lettered deliveries in {}", db.display()),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(EXIT_FAILURE);
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut checks = runtime.block_on(async {
        let mut client_config = ClientConfig::for_base_url(&api_url);
        // A diagnosis should answer quickly rather than wait out long rate-limit pauses.
        client_config.retry.max_attempts = client_config.retry.max_attempts.min(2);
        let transport = HttpTransport::new(
            client_config,
            Arc::new(SystemClock),
            Arc::new(ClientMetrics::default()),
        )?;
        let app = Arc::new(AppAuth::new(app_id, key, transport.clone()));
        let client = AppClient::new(transport.clone(), app.clone());
        let apis = AppInstallations::new(transport, app);
        Ok::<_, anyhow::Error>(gather::github_checks(&client, &apis, &repo, &api_url).await)
    })?;
    checks.push(crate::doctor::checks::database(&gather::database_facts(
        database.as_deref(),
    )));
    print!(
        "{}",
        render::render(&format!("sota-bot doctor: {repo} (App {app_id})"), &checks)
    );
    Ok(match worst(&checks) {
        Status::Fail => EXIT_VERDICT,
        Status::Pass | Status::Warn => EXIT_OK,
    })
}
