//! `sota-bot serve`: run the GitHub App service (webhook endpoint, durable queue, workers).
//!
//! Every setting can come from a flag, a `SOTA_BOT_*` environment variable, or the YAML
//! config file; flags and environment win over the file.

use std::path::PathBuf;

use crate::server::config::{self, FileSettings, OverrideSettings};

/// Arguments of this command (boxed: the settings are large next to other subcommands).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub settings: Box<Settings>,
}

/// Every `serve` setting.
#[derive(Debug, clap::Args)]
pub struct Settings {
    /// YAML config file (keys as the long flag names, with `_`; `webhook_secrets` is a list).
    #[arg(long, env = "SOTA_BOT_CONFIG")]
    pub config: Option<PathBuf>,
    /// GitHub App id (required).
    #[arg(long, env = "SOTA_BOT_APP_ID")]
    pub app_id: Option<u64>,
    /// Path of the App's PEM private key (required).
    #[arg(long, env = "SOTA_BOT_PRIVATE_KEY_PATH")]
    pub private_key_path: Option<PathBuf>,
    /// Webhook secrets, comma-separated; any of them is accepted (rotation). Required.
    #[arg(long, env = "SOTA_BOT_WEBHOOK_SECRETS", hide_env_values = true)]
    pub webhook_secrets: Option<String>,
    /// SQLite database of the durable queue [default: ./sota-bot.sqlite].
    #[arg(long, env = "SOTA_BOT_DATABASE")]
    pub database: Option<PathBuf>,
    /// Listen address [default: 127.0.0.1:3000].
    #[arg(long, env = "SOTA_BOT_LISTEN")]
    pub listen: Option<String>,
    /// GitHub REST API base URL [default: https://api.github.com].
    #[arg(long, env = "SOTA_BOT_GITHUB_API_URL")]
    pub github_api_url: Option<String>,
    /// GitHub GraphQL URL [default: derived from the API URL].
    #[arg(long, env = "SOTA_BOT_GITHUB_GRAPHQL_URL")]
    pub github_graphql_url: Option<String>,
    /// OpenAI-compatible base URL of the optional LLM reviewer.
    #[arg(long, env = "SOTA_BOT_REVIEWER_BASE_URL")]
    pub reviewer_base_url: Option<String>,
    /// Reviewer model name.
    #[arg(long, env = "SOTA_BOT_REVIEWER_MODEL")]
    pub reviewer_model: Option<String>,
    /// Name of the environment variable that holds the reviewer API key.
    #[arg(long, env = "SOTA_BOT_REVIEWER_API_KEY_ENV")]
    pub reviewer_api_key_env: Option<String>,
    /// Worker tasks processing the queue [default: 4].
    #[arg(long, env = "SOTA_BOT_WORKERS")]
    pub workers: Option<usize>,
    /// Attempts per job before it is dead-lettered [default: 8].
    #[arg(long, env = "SOTA_BOT_MAX_ATTEMPTS")]
    pub max_attempts: Option<u32>,
    /// Delay workers by this many milliseconds after start-up [default: 0].
    #[arg(long, env = "SOTA_BOT_WORKER_START_DELAY_MS")]
    pub worker_start_delay_ms: Option<u64>,
    /// Seconds between reconciliation passes (missed webhooks are repaired).
    #[arg(long, env = "SOTA_BOT_RECONCILE_INTERVAL_SECS")]
    pub reconcile_interval_secs: Option<u64>,
    /// Days a processed delivery's payload is kept in the database; its row (delivery id,
    /// event, outcome) stays, so a replay is still recognised. 0 keeps payloads forever
    /// [default: 14].
    #[arg(long, env = "SOTA_BOT_PAYLOAD_RETENTION_DAYS")]
    pub payload_retention_days: Option<u64>,
    /// Serve the campaign dashboard: `/campaigns`, `/campaigns/{id}` and the same data as
    /// JSON under `/api/campaigns`.
    #[arg(long, env = "SOTA_BOT_DASHBOARD")]
    pub dashboard: bool,
    /// Name of the environment variable holding the dashboard token, which shows campaigns
    /// of private repositories (without one, they are shown to nobody).
    #[arg(long, env = "SOTA_BOT_DASHBOARD_TOKEN_ENV")]
    pub dashboard_token_env: Option<String>,
    /// Web address of the GitHub instance for the dashboard's links [default: derived from
    /// the API URL].
    #[arg(long, env = "SOTA_BOT_GITHUB_WEB_URL")]
    pub github_web_url: Option<String>,
    /// Queue deliveries without processing them (maintenance, benchmarks, crash tests).
    #[arg(long, env = "SOTA_BOT_NO_WORKERS")]
    pub no_workers: bool,
    /// Log format.
    #[arg(long, env = "SOTA_BOT_LOG_FORMAT", value_parser = ["text", "json"], default_value = "text")]
    pub log_format: String,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<i32> {
    let args = *args.settings;
    let file = match &args.config {
        Some(path) => match config::read_file(path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(super::EXIT_INVALID_INPUT);
            }
        },
        None => FileSettings::default(),
    };
    let over = OverrideSettings {
        app_id: args.app_id,
        private_key_path: args.private_key_path,
        webhook_secrets: args.webhook_secrets,
        database: args.database,
        listen: args.listen,
        github_api_url: args.github_api_url,
        github_graphql_url: args.github_graphql_url,
        reviewer_base_url: args.reviewer_base_url,
        reviewer_model: args.reviewer_model,
        reviewer_api_key_env: args.reviewer_api_key_env,
        workers: args.workers,
        max_attempts: args.max_attempts,
        worker_start_delay_ms: args.worker_start_delay_ms,
        reconcile_interval_secs: args.reconcile_interval_secs,
        payload_retention_days: args.payload_retention_days,
        no_workers: args.no_workers,
        dashboard: args.dashboard,
        dashboard_token_env: args.dashboard_token_env,
        github_web_url: args.github_web_url,
    };
    let resolved = match config::resolve(file, over) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(super::EXIT_INVALID_INPUT);
        }
    };
    init_logging(&args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let store = match crate::app::CampaignStore::open(&resolved.database) {
        Ok(s) => std::sync::Arc::new(s),
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(super::EXIT_FAILURE);
        }
    };
    let dashboard = resolved.dashboard.as_ref().map(|d| {
        crate::dashboard::http::router(crate::dashboard::http::DashboardState {
            source: std::sync::Arc::new(crate::app::dashboard::StoreCampaigns::new(
                store.clone(),
                &d.web_url,
            )),
            token: d.token.clone(),
        })
    });
    let campaigns: std::sync::Arc<dyn crate::server::handler::CampaignService> =
        std::sync::Arc::new(crate::app::AppCampaigns::new(store));
    runtime.block_on(crate::server::run(resolved, Some(campaigns), dashboard))?;
    Ok(super::EXIT_OK)
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SOTA_BOT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(crate::secrets::scrubbed_stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
