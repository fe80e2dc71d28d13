//! `sota-bot recover`: rebuilds the App's campaign records from the campaign branches of a
//! fork after the database was lost. Uses the App's own credentials, like `serve`.

use std::path::PathBuf;
use std::sync::Arc;

use crate::app::{AppCampaigns, CampaignStore};
use crate::github::auth::{load_private_key, AppAuth};
use crate::github::{ClientConfig, ClientMetrics, HttpTransport, RepoName, SystemClock};
use crate::server::handler::InstallationApis;
use crate::server::AppInstallations;

/// Arguments of `sota-bot recover`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The fork whose `sota/*` branches hold the campaigns (`owner/name`).
    #[arg(long)]
    pub fork: String,
    /// The App installation on that fork.
    #[arg(long)]
    pub installation_id: u64,
    /// GitHub App id.
    #[arg(long, env = "SOTA_BOT_APP_ID")]
    pub app_id: u64,
    /// Path of the App's PEM private key.
    #[arg(long, env = "SOTA_BOT_PRIVATE_KEY_PATH")]
    pub private_key_path: PathBuf,
    /// The database `serve` uses (created when missing).
    #[arg(long, env = "SOTA_BOT_DATABASE", default_value = "./sota-bot.sqlite")]
    pub database: PathBuf,
    /// GitHub REST API base URL.
    #[arg(
        long,
        env = "SOTA_BOT_GITHUB_API_URL",
        default_value = "https://api.github.com"
    )]
    pub github_api_url: String,
}

/// Runs the command: prints each recovered campaign and each branch it could not read.
pub fn run(a: Args) -> anyhow::Result<i32> {
    let fork = match RepoName::parse(&a.fork) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: --fork: {e}");
            return Ok(super::EXIT_INVALID_INPUT);
        }
    };
    let pem = match std::fs::read(&a.private_key_path) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {}: {e}", a.private_key_path.display());
            return Ok(super::EXIT_INVALID_INPUT);
        }
    };
    let key = match load_private_key(&pem) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {}: {e}", a.private_key_path.display());
            return Ok(super::EXIT_INVALID_INPUT);
        }
    };
    crate::secrets::register_value("App private key", &String::from_utf8_lossy(&pem));
    let store = Arc::new(CampaignStore::open(&a.database)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let transport = HttpTransport::new(
            ClientConfig::for_base_url(&a.github_api_url),
            Arc::new(SystemClock),
            Arc::new(ClientMetrics::default()),
        )?;
        let app = Arc::new(AppAuth::new(a.app_id, key, transport.clone()));
        let apis = AppInstallations::new(transport, app);
        let api = apis.for_installation(a.installation_id);
        let campaigns = AppCampaigns::new(store);
        let (recovered, skipped) = campaigns
            .recover(api.as_ref(), &fork, a.installation_id)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for id in &recovered {
            let c = campaigns.store().get(id)?;
            if let Some(c) = c {
                println!(
                    "recovered {} ({}): {} at round {}, PR {}",
                    c.id,
                    c.branch,
                    c.phase.as_str(),
                    c.round,
                    c.pr_number
                        .map(|n| format!("#{n}"))
                        .unwrap_or_else(|| "none".into())
                );
            }
        }
        for s in &skipped {
            eprintln!("skipped {s}");
        }
        println!(
            "{} campaign(s) recovered from {fork}, {} branch(es) skipped",
            recovered.len(),
            skipped.len()
        );
        Ok::<i32, anyhow::Error>(super::EXIT_OK)
    })
}
