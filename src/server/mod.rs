//! The GitHub App service: webhook endpoint, durable job queue, workers, event routing and
//! command handling. `run` wires it from a validated `ServeConfig`; `Service::start` is the
//! same wiring with an injected job handler (tests, benchmarks, the campaign integration).

pub mod backup;
pub mod commands;
pub mod config;
pub mod handler;
pub mod http;
pub mod listener;
pub mod metrics;
pub mod payload_codec;
pub mod queue;
pub mod worker;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::github::auth::{load_private_key, AppAuth};
use crate::github::signature::WebhookSecret;
use crate::github::{
    ClientConfig, ClientMetrics, GitHubApi, HttpTransport, RestGitHubApi, SystemClock,
};
use config::ServeConfig;
use handler::{CampaignService, EventRouter, InstallationApis, JobHandler};
use metrics::ServiceMetrics;
use queue::{IngestWriter, JobStore};
use worker::{WorkerConfig, WorkerPool};

/// Installation-scoped REST clients of one App.
pub struct AppInstallations {
    transport: HttpTransport,
    app: Arc<AppAuth>,
}

impl AppInstallations {
    /// From a transport and App credentials.
    pub fn new(transport: HttpTransport, app: Arc<AppAuth>) -> Self {
        Self { transport, app }
    }
}

impl InstallationApis for AppInstallations {
    fn for_installation(&self, installation_id: u64) -> Arc<dyn GitHubApi> {
        Arc::new(RestGitHubApi::for_installation(
            self.transport.clone(),
            self.app.clone(),
            installation_id,
        ))
    }
}

/// When workers start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerStart {
    Now,
    After(Duration),
    Never,
}

/// How the service serves HTTP besides the webhook.
#[derive(Default)]
pub struct ServiceOptions {
    /// More routes next to the webhook (the dashboard).
    pub extra_routes: Option<axum::Router>,
    pub limits: listener::HttpLimits,
}

/// A running service.
pub struct Service {
    pub addr: SocketAddr,
    pub store: Arc<JobStore>,
    pub metrics: Arc<ServiceMetrics>,
    server: tokio::task::JoinHandle<()>,
    workers: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Service {
    /// Opens the queue (recovering jobs a crash left running), serves HTTP on `listener`, and
    /// starts workers per `start`, with the default [`listener::HttpLimits`].
    pub async fn start(
        listener: TcpListener,
        secrets: Vec<WebhookSecret>,
        database: &Path,
        handler: Arc<dyn JobHandler>,
        worker_config: WorkerConfig,
        start: WorkerStart,
        metrics: Arc<ServiceMetrics>,
    ) -> anyhow::Result<Self> {
        Self::start_with_options(
            listener,
            secrets,
            database,
            handler,
            worker_config,
            start,
            metrics,
            ServiceOptions::default(),
        )
        .await
    }

    /// [`Service::start`] with [`ServiceOptions`].
    #[allow(clippy::too_many_arguments)]
    pub async fn start_with_options(
        listener: TcpListener,
        secrets: Vec<WebhookSecret>,
        database: &Path,
        handler: Arc<dyn JobHandler>,
        worker_config: WorkerConfig,
        start: WorkerStart,
        metrics: Arc<ServiceMetrics>,
        options: ServiceOptions,
    ) -> anyhow::Result<Self> {
        let store = Arc::new(JobStore::open(database)?);
        let recovered = store.recover_running()?;
        if recovered > 0 {
            tracing::warn!(
                recovered,
                "requeued jobs left running by a previous process"
            );
        }
        let writer = IngestWriter::start(database)?;
        let wake = Arc::new(Notify::new());
        let state = http::HttpState {
            secrets: Arc::new(secrets),
            writer,
            store: store.clone(),
            metrics: metrics.clone(),
            wake: wake.clone(),
            limits: options.limits,
            body_budget: http::HttpState::body_budget(&options.limits),
        };
        let addr = listener.local_addr()?;
        let app = match options.extra_routes {
            Some(routes) => http::router(state).merge(routes),
            None => http::router(state),
        };
        let server = tokio::spawn(listener::serve(
            listener,
            app,
            options.limits,
            shutdown_signal(),
        ));
        let pool = Arc::new(WorkerPool {
            store: store.clone(),
            handler,
            metrics: metrics.clone(),
            wake,
            config: worker_config,
        });
        let workers = Arc::new(std::sync::Mutex::new(Vec::new()));
        match start {
            WorkerStart::Never => {
                tracing::warn!("workers disabled: deliveries are queued but not processed")
            }
            WorkerStart::Now => *workers.lock().unwrap_or_else(|p| p.into_inner()) = pool.spawn(),
            WorkerStart::After(delay) => {
                let slot = workers.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    *slot.lock().unwrap_or_else(|p| p.into_inner()) = pool.spawn();
                });
            }
        }
        tracing::info!(%addr, "sota-bot listening");
        Ok(Self {
            addr,
            store,
            metrics,
            server,
            workers,
        })
    }

    /// Waits until the HTTP server stops (SIGINT/SIGTERM).
    pub async fn wait(self) {
        let _ = self.server.await;
        for w in self
            .workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            w.abort();
        }
    }

    /// Stops serving and the workers at once (tests).
    pub fn abort(&self) {
        self.server.abort();
        for w in self
            .workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            w.abort();
        }
    }
}

/// Makes the App's own secrets part of everything the process scrubs (logs, comments, check
/// runs, commits it creates).
fn register_secrets(config: &ServeConfig) {
    crate::secrets::register_value(
        "App private key",
        &String::from_utf8_lossy(&config.private_key_pem),
    );
    for s in &config.webhook_secrets {
        crate::secrets::register_value("webhook secret", s.expose());
    }
    if let Some(r) = &config.reviewer {
        crate::secrets::register_env_name(&r.api_key_env);
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

/// Runs the App until SIGINT/SIGTERM. `campaigns` is the campaign engine (None: commands are
/// answered and campaign events skipped); `dashboard` is served next to the webhook.
pub async fn run(
    config: ServeConfig,
    campaigns: Option<Arc<dyn CampaignService>>,
    dashboard: Option<axum::Router>,
) -> anyhow::Result<()> {
    register_secrets(&config);
    tracing::info!(config = ?config, "starting sota-bot");
    let client_metrics = Arc::new(ClientMetrics::default());
    let mut client_config = ClientConfig::for_base_url(&config.github_api_url);
    if let Some(g) = &config.github_graphql_url {
        client_config.graphql_url = g.clone();
    }
    let transport =
        HttpTransport::new(client_config, Arc::new(SystemClock), client_metrics.clone())?;
    let key = load_private_key(&config.private_key_pem)?;
    let app = Arc::new(AppAuth::new(config.app_id, key, transport.clone()));
    let apis: Arc<dyn InstallationApis> = Arc::new(AppInstallations::new(transport, app));
    let metrics = Arc::new(ServiceMetrics::default());
    metrics.attach_github(client_metrics);
    if let Some(c) = &campaigns {
        let c = c.clone();
        metrics.attach_phase_gauge(Arc::new(move || c.campaigns_by_phase()));
    }
    if let Some(c) = campaigns.clone() {
        let apis = apis.clone();
        let every = config.reconcile_interval;
        tokio::spawn(async move {
            loop {
                match c.reconcile(apis.as_ref()).await {
                    Ok(0) => tracing::debug!("reconciliation: nothing missed"),
                    Ok(n) => {
                        tracing::info!(handled = n, "reconciliation repaired missed completions")
                    }
                    Err(e) => tracing::warn!(error = %e, "reconciliation failed"),
                }
                tokio::time::sleep(every).await;
            }
        });
    }
    let handler: Arc<dyn JobHandler> = Arc::new(EventRouter::new(apis, campaigns));
    let listener = TcpListener::bind(config.listen).await?;
    let start = if config.no_workers {
        WorkerStart::Never
    } else if config.worker_start_delay.is_zero() {
        WorkerStart::Now
    } else {
        WorkerStart::After(config.worker_start_delay)
    };
    let worker_config = WorkerConfig {
        workers: config.workers,
        max_attempts: config.max_attempts,
        ..WorkerConfig::default()
    };
    let options = ServiceOptions {
        extra_routes: dashboard,
        ..ServiceOptions::default()
    };
    let service = Service::start_with_options(
        listener,
        config.webhook_secrets.clone(),
        &config.database,
        handler,
        worker_config,
        start,
        metrics,
        options,
    )
    .await?;
    if let Some(retention) = config.payload_retention {
        tokio::spawn(prune_payloads_periodically(
            service.store.clone(),
            retention,
        ));
    }
    service.wait().await;
    Ok(())
}

/// How often payloads past their retention are dropped.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Drops payloads of deliveries processed more than `retention` ago, at start and hourly.
async fn prune_payloads_periodically(store: Arc<JobStore>, retention: Duration) {
    loop {
        let cutoff = chrono::Utc::now().timestamp_millis()
            - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX / 2);
        let store = store.clone();
        match tokio::task::spawn_blocking(move || store.prune_payloads(cutoff)).await {
            Ok(Ok(0)) => tracing::debug!("no payloads past their retention"),
            Ok(Ok(n)) => tracing::info!(
                pruned = n,
                "dropped payloads of processed deliveries past their retention"
            ),
            Ok(Err(e)) => tracing::warn!(error = %e, "dropping old payloads failed"),
            Err(e) => tracing::warn!(error = %e, "dropping old payloads failed"),
        }
        tokio::time::sleep(PRUNE_EVERY).await;
    }
}
