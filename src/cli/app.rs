//! `sota-bot app`: the GitHub App's manifest, and creating the App through GitHub's
//! manifest flow.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;

use super::{EXIT_FAILURE, EXIT_INVALID_INPUT, EXIT_OK};
use crate::github::app_client::{convert_manifest_code, CreatedApp};
use crate::github::manifest::{self, ManifestOptions};
use crate::github::{ClientConfig, ClientMetrics, HttpTransport, SystemClock};
use crate::setup::credentials::{self, CredentialPaths};
use crate::setup::manifest_flow::{self, FlowSettings};

/// Arguments of `sota-bot app`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: AppCommand,
}

/// Manifest options shared by both subcommands.
#[derive(Debug, Clone, clap::Args)]
pub struct ManifestArgs {
    /// Where GitHub delivers webhooks: the public HTTPS URL of `sota-bot serve`'s
    /// `/webhook` (behind your TLS proxy).
    #[arg(long, env = "SOTA_BOT_WEBHOOK_URL")]
    pub webhook_url: String,
    /// The App's name on GitHub (unique across GitHub).
    #[arg(long, default_value = "sota-bot")]
    pub name: String,
    /// The App's homepage [default: the webhook URL's origin].
    #[arg(long)]
    pub homepage_url: Option<String>,
}

/// `app` subcommands.
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Print the App manifest: the least permissions and the events sota-bot uses.
    Manifest {
        #[command(flatten)]
        manifest: ManifestArgs,
        /// Where GitHub sends the browser after creating the App (the manifest flow's
        /// callback).
        #[arg(long)]
        redirect_url: Option<String>,
    },
    /// Create the App with GitHub's manifest flow and write its credentials (0600).
    Create(CreateArgs),
}

/// Arguments of `app create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub manifest: ManifestArgs,
    /// Create the App under this organization (you must be an owner) instead of your account.
    #[arg(long)]
    pub org: Option<String>,
    /// The `serve` config file to write (app id, key path, webhook secret).
    #[arg(long, default_value = "sota-bot.yml")]
    pub config: PathBuf,
    /// Where to write the App's private key.
    #[arg(long, default_value = "sota-bot.private-key.pem")]
    pub private_key_path: PathBuf,
    /// Replace existing files.
    #[arg(long)]
    pub force: bool,
    /// Loopback address of the local page that starts the flow (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// GitHub's web root (GitHub Enterprise Server: its root URL).
    #[arg(long, default_value = "https://github.com")]
    pub github_url: String,
    /// GitHub REST API base URL.
    #[arg(
        long,
        env = "SOTA_BOT_GITHUB_API_URL",
        default_value = "https://api.github.com"
    )]
    pub github_api_url: String,
    /// Exchange this manifest code (from GitHub's redirect) instead of serving the page.
    #[arg(long)]
    pub code: Option<String>,
    /// Seconds to wait for GitHub's redirect.
    #[arg(long, default_value_t = 1800)]
    pub timeout_secs: u64,
}

fn options(a: &ManifestArgs, redirect_url: Option<String>) -> ManifestOptions {
    ManifestOptions {
        name: a.name.clone(),
        webhook_url: a.webhook_url.clone(),
        homepage_url: a.homepage_url.clone(),
        redirect_url,
    }
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<i32> {
    match args.command {
        AppCommand::Manifest {
            manifest: m,
            redirect_url,
        } => match manifest::build(&options(&m, redirect_url)) {
            Ok(built) => {
                println!("{}", serde_json::to_string_pretty(&built)?);
                Ok(EXIT_OK)
            }
            Err(e) => {
                eprintln!("error: {e}");
                Ok(EXIT_INVALID_INPUT)
            }
        },
        AppCommand::Create(a) => create(a),
    }
}

fn create(a: CreateArgs) -> anyhow::Result<i32> {
    if let Err(e) = manifest::build(&options(&a.manifest, None)) {
        eprintln!("error: {e}");
        return Ok(EXIT_INVALID_INPUT);
    }
    if !a.listen.ip().is_loopback() {
        eprintln!(
            "error: --listen {} is not a loopback address; the page must stay on this machine",
            a.listen
        );
        return Ok(EXIT_INVALID_INPUT);
    }
    let paths = CredentialPaths {
        config: a.config.clone(),
        private_key: a.private_key_path.clone(),
    };
    if let Err(e) = credentials::check_writable(&paths, a.force) {
        eprintln!("error: {e}");
        return Ok(EXIT_INVALID_INPUT);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let transport = HttpTransport::new(
        ClientConfig::for_base_url(&a.github_api_url),
        Arc::new(SystemClock),
        Arc::new(ClientMetrics::default()),
    )?;
    let created: Result<CreatedApp, String> = runtime.block_on(async {
        match &a.code {
            Some(code) => convert_manifest_code(&transport, code)
                .await
                .map_err(|e| e.to_string()),
            None => {
                let settings = FlowSettings {
                    manifest: options(&a.manifest, None),
                    github_url: a.github_url.clone(),
                    org: a.org.clone(),
                    listen: a.listen,
                    timeout: Duration::from_secs(a.timeout_secs),
                };
                manifest_flow::run(&settings, transport, |url| {
                    println!("Open {url} in a browser signed in to GitHub to create the App.");
                })
                .await
                .map_err(|e| e.to_string())
            }
        }
    });
    let app = match created {
        Ok(app) => app,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_FAILURE);
        }
    };
    let api_url = (a.github_api_url.trim_end_matches('/') != "https://api.github.com")
        .then_some(a.github_api_url.as_str());
    if let Err(e) = credentials::write_credentials(&app, &paths, api_url, a.force) {
        eprintln!("error: {e}");
        return Ok(EXIT_FAILURE);
    }
    if let Err(e) = crate::github::auth::load_private_key(app.pem.as_bytes()) {
        eprintln!(
            "warning: the private key GitHub returned does not load ({e}); generate a new one in the App's settings"
        );
    }
    println!(
        "Created the GitHub App {} (id {}): {}",
        app.name, app.id, app.html_url
    );
    println!(
        "Wrote {} and {} (mode 0600).",
        paths.config.display(),
        paths.private_key.display()
    );
    println!(
        "Next: install it on your SGLang fork at {}/installations/new, then run `sota-bot serve --config {}`.",
        app.html_url.trim_end_matches('/'),
        paths.config.display()
    );
    Ok(EXIT_OK)
}
