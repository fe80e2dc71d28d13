//! Service configuration: a YAML file (JSON also parses) overlaid by `SOTA_BOT_*` environment
//! variables and command-line flags (see `sota-bot serve --help`), validated once at start-up.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::dashboard::access::DashboardToken;
use crate::github::signature::WebhookSecret;

/// Settings as read from a file; every field optional, unknown keys rejected.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub app_id: Option<u64>,
    pub private_key_path: Option<PathBuf>,
    pub webhook_secrets: Option<Vec<String>>,
    pub database: Option<PathBuf>,
    pub listen: Option<String>,
    pub github_api_url: Option<String>,
    pub github_graphql_url: Option<String>,
    pub reviewer_base_url: Option<String>,
    pub reviewer_model: Option<String>,
    pub reviewer_api_key_env: Option<String>,
    pub workers: Option<usize>,
    pub max_attempts: Option<u32>,
    pub worker_start_delay_ms: Option<u64>,
    pub reconcile_interval_secs: Option<u64>,
    pub payload_retention_days: Option<u64>,
    pub dashboard: Option<bool>,
    pub dashboard_token_env: Option<String>,
    pub github_web_url: Option<String>,
}

/// Settings from flags and environment (the clap layer fills this).
#[derive(Debug, Default, Clone)]
pub struct OverrideSettings {
    pub app_id: Option<u64>,
    pub private_key_path: Option<PathBuf>,
    /// Comma-separated.
    pub webhook_secrets: Option<String>,
    pub database: Option<PathBuf>,
    pub listen: Option<String>,
    pub github_api_url: Option<String>,
    pub github_graphql_url: Option<String>,
    pub reviewer_base_url: Option<String>,
    pub reviewer_model: Option<String>,
    pub reviewer_api_key_env: Option<String>,
    pub workers: Option<usize>,
    pub max_attempts: Option<u32>,
    pub worker_start_delay_ms: Option<u64>,
    pub reconcile_interval_secs: Option<u64>,
    pub payload_retention_days: Option<u64>,
    pub no_workers: bool,
    pub dashboard: bool,
    pub dashboard_token_env: Option<String>,
    pub github_web_url: Option<String>,
}

/// A setting that is missing or invalid; names the setting and where to set it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("setting `{setting}` is required (flag --{flag}, env {env}, or `{setting}` in the config file)")]
    Missing {
        setting: &'static str,
        flag: &'static str,
        env: &'static str,
    },
    #[error("setting `{setting}` is invalid: {message}")]
    Invalid {
        setting: &'static str,
        message: String,
    },
    #[error("config file {path}: {message}")]
    File { path: PathBuf, message: String },
}

/// Optional LLM reviewer endpoint (used by the review gate).
#[derive(Clone, PartialEq, Eq)]
pub struct ReviewerSettings {
    pub base_url: String,
    pub model: String,
    /// Name of the environment variable holding the API key (the key itself is never stored).
    pub api_key_env: String,
}

impl std::fmt::Debug for ReviewerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReviewerSettings")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key_env", &self.api_key_env)
            .finish()
    }
}

/// The campaign dashboard's settings.
#[derive(Debug, Clone)]
pub struct DashboardSettings {
    /// The token that shows campaigns of private repositories (read from the environment
    /// variable the config names); `None` shows them to nobody.
    pub token: Option<DashboardToken>,
    /// Web address of the GitHub instance, for links.
    pub web_url: String,
}

/// Validated settings.
#[derive(Clone)]
pub struct ServeConfig {
    pub app_id: u64,
    pub private_key_path: PathBuf,
    /// Private key PEM, read and parsed at start-up.
    pub private_key_pem: Vec<u8>,
    pub webhook_secrets: Vec<WebhookSecret>,
    pub database: PathBuf,
    pub listen: SocketAddr,
    pub github_api_url: String,
    pub github_graphql_url: Option<String>,
    pub reviewer: Option<ReviewerSettings>,
    pub workers: usize,
    pub max_attempts: u32,
    /// Delay before workers start (0 = immediately); with `no_workers`, they never start.
    pub worker_start_delay: Duration,
    pub no_workers: bool,
    /// How often open campaigns are compared with GitHub to repair missed webhooks.
    pub reconcile_interval: Duration,
    /// How long payloads of processed deliveries are kept; `None` keeps them forever.
    pub payload_retention: Option<Duration>,
    /// `Some` when the dashboard is served.
    pub dashboard: Option<DashboardSettings>,
}

impl std::fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field("app_id", &self.app_id)
            .field("private_key_path", &self.private_key_path)
            .field("private_key_pem", &"<redacted>")
            .field(
                "webhook_secrets",
                &format!("<{} redacted>", self.webhook_secrets.len()),
            )
            .field("database", &self.database)
            .field("listen", &self.listen)
            .field("github_api_url", &self.github_api_url)
            .field("github_graphql_url", &self.github_graphql_url)
            .field("reviewer", &self.reviewer)
            .field("workers", &self.workers)
            .field("max_attempts", &self.max_attempts)
            .field("worker_start_delay", &self.worker_start_delay)
            .field("no_workers", &self.no_workers)
            .field("reconcile_interval", &self.reconcile_interval)
            .field("payload_retention", &self.payload_retention)
            .field("dashboard", &self.dashboard)
            .finish()
    }
}

/// Reads a config file (YAML; JSON is valid YAML).
pub fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    parse_file(&text).map_err(|message| ConfigError::File {
        path: path.to_path_buf(),
        message,
    })
}

/// Parses config text; the error names line and column.
pub fn parse_file(text: &str) -> Result<FileSettings, String> {
    if text.trim().is_empty() {
        return Ok(FileSettings::default());
    }
    serde_yaml_ng::from_str(text).map_err(|e| match e.location() {
        Some(loc) => format!("line {}, column {}: {e}", loc.line(), loc.column()),
        None => e.to_string(),
    })
}

fn check_url(setting: &'static str, value: &str) -> Result<String, ConfigError> {
    let parsed = url::Url::parse(value).map_err(|e| ConfigError::Invalid {
        setting,
        message: format!("`{value}` is not a URL: {e}"),
    })?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        return Err(ConfigError::Invalid {
            setting,
            message: format!("`{value}` must be http(s)"),
        });
    }
    Ok(value.trim_end_matches('/').to_string())
}

/// The dashboard's settings when it is on: the token from the named environment variable,
/// the web address configured or derived from the API address.
fn resolve_dashboard(
    on: bool,
    token_env: Option<String>,
    web_url: Option<String>,
    api_url: &str,
) -> Result<Option<DashboardSettings>, ConfigError> {
    if !on {
        return Ok(None);
    }
    let token = match token_env {
        None => None,
        Some(name) => {
            let value = std::env::var(&name).map_err(|_| ConfigError::Invalid {
                setting: "dashboard_token_env",
                message: format!("environment variable `{name}` is not set"),
            })?;
            Some(
                DashboardToken::new(&value).map_err(|e| ConfigError::Invalid {
                    setting: "dashboard_token_env",
                    message: format!("`{name}`: {e}"),
                })?,
            )
        }
    };
    let web_url = match web_url {
        Some(u) => check_url("github_web_url", &u)?,
        None => crate::github::urls::web_url_for_api(api_url).ok_or(ConfigError::Missing {
            setting: "github_web_url",
            flag: "github-web-url",
            env: "SOTA_BOT_GITHUB_WEB_URL",
        })?,
    };
    Ok(Some(DashboardSettings { token, web_url }))
}

/// Merges (flags/env over file over defaults) and validates.
pub fn resolve(file: FileSettings, over: OverrideSettings) -> Result<ServeConfig, ConfigError> {
    let app_id = over.app_id.or(file.app_id).ok_or(ConfigError::Missing {
        setting: "app_id",
        flag: "app-id",
        env: "SOTA_BOT_APP_ID",
    })?;
    if app_id == 0 {
        return Err(ConfigError::Invalid {
            setting: "app_id",
            message: "must be a positive integer".into(),
        });
    }
    let private_key_path =
        over.private_key_path
            .or(file.private_key_path)
            .ok_or(ConfigError::Missing {
                setting: "private_key_path",
                flag: "private-key-path",
                env: "SOTA_BOT_PRIVATE_KEY_PATH",
            })?;
    let private_key_pem = std::fs::read(&private_key_path).map_err(|e| ConfigError::Invalid {
        setting: "private_key_path",
        message: format!("{}: {e}", private_key_path.display()),
    })?;
    crate::github::auth::load_private_key(&private_key_pem).map_err(|e| ConfigError::Invalid {
        setting: "private_key_path",
        message: format!("{}: {e}", private_key_path.display()),
    })?;
    let secrets: Vec<String> = match over.webhook_secrets {
        Some(list) => list.split(',').map(|s| s.trim().to_string()).collect(),
        None => file.webhook_secrets.unwrap_or_default(),
    };
    if secrets.is_empty() {
        return Err(ConfigError::Missing {
            setting: "webhook_secrets",
            flag: "webhook-secrets",
            env: "SOTA_BOT_WEBHOOK_SECRETS",
        });
    }
    if secrets.iter().any(String::is_empty) {
        return Err(ConfigError::Invalid {
            setting: "webhook_secrets",
            message: "contains an empty secret".into(),
        });
    }
    let listen_text = over
        .listen
        .or(file.listen)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let listen = listen_text.parse().map_err(|e| ConfigError::Invalid {
        setting: "listen",
        message: format!("`{listen_text}` is not host:port: {e}"),
    })?;
    let github_api_url = check_url(
        "github_api_url",
        &over
            .github_api_url
            .or(file.github_api_url)
            .unwrap_or_else(|| "https://api.github.com".into()),
    )?;
    let github_graphql_url = match over.github_graphql_url.or(file.github_graphql_url) {
        Some(u) => Some(check_url("github_graphql_url", &u)?),
        None => None,
    };
    let reviewer = match (
        over.reviewer_base_url.or(file.reviewer_base_url),
        over.reviewer_model.or(file.reviewer_model),
        over.reviewer_api_key_env.or(file.reviewer_api_key_env),
    ) {
        (None, None, None) => None,
        (Some(base), Some(model), key_env) => Some(ReviewerSettings {
            base_url: check_url("reviewer_base_url", &base)?,
            model,
            api_key_env: key_env.unwrap_or_else(|| "SOTA_REVIEWER_API_KEY".into()),
        }),
        (None, _, _) => {
            return Err(ConfigError::Missing {
                setting: "reviewer_base_url",
                flag: "reviewer-base-url",
                env: "SOTA_BOT_REVIEWER_BASE_URL",
            })
        }
        (Some(_), None, _) => {
            return Err(ConfigError::Missing {
                setting: "reviewer_model",
                flag: "reviewer-model",
                env: "SOTA_BOT_REVIEWER_MODEL",
            })
        }
    };
    let workers = over.workers.or(file.workers).unwrap_or(4);
    if workers == 0 || workers > 256 {
        return Err(ConfigError::Invalid {
            setting: "workers",
            message: format!("{workers} is not in 1..=256"),
        });
    }
    let max_attempts = over.max_attempts.or(file.max_attempts).unwrap_or(8);
    if max_attempts == 0 {
        return Err(ConfigError::Invalid {
            setting: "max_attempts",
            message: "must be at least 1".into(),
        });
    }
    let retention_days = over
        .payload_retention_days
        .or(file.payload_retention_days)
        .unwrap_or(14);
    if retention_days > 36_500 {
        return Err(ConfigError::Invalid {
            setting: "payload_retention_days",
            message: format!("{retention_days} is over 100 years; use 0 to keep payloads forever"),
        });
    }
    let dashboard = resolve_dashboard(
        over.dashboard || file.dashboard.unwrap_or(false),
        over.dashboard_token_env.or(file.dashboard_token_env),
        over.github_web_url.or(file.github_web_url),
        &github_api_url,
    )?;
    Ok(ServeConfig {
        dashboard,
        app_id,
        private_key_path,
        private_key_pem,
        webhook_secrets: secrets.into_iter().map(WebhookSecret::new).collect(),
        database: over
            .database
            .or(file.database)
            .unwrap_or_else(|| PathBuf::from("./sota-bot.sqlite")),
        listen,
        github_api_url,
        github_graphql_url,
        reviewer,
        workers,
        max_attempts,
        worker_start_delay: Duration::from_millis(
            over.worker_start_delay_ms
                .or(file.worker_start_delay_ms)
                .unwrap_or(0),
        ),
        no_workers: over.no_workers,
        reconcile_interval: Duration::from_secs(
            over.reconcile_interval_secs
                .or(file.reconcile_interval_secs)
                .unwrap_or(600)
                .max(1),
        ),
        payload_retention: (retention_days > 0)
            .then(|| Duration::from_secs(retention_days * 24 * 3600)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn missing_settings_are_named() {
        let err = resolve(FileSettings::default(), OverrideSettings::default()).unwrap_err();
        assert!(
            err.to_string().contains("`app_id`") && err.to_string().contains("SOTA_BOT_APP_ID"),
            "{err}"
        );
        let over = OverrideSettings {
            app_id: Some(1),
            ..Default::default()
        };
        let err = resolve(FileSettings::default(), over).unwrap_err();
        assert!(err.to_string().contains("private_key_path"), "{err}");
        let over = OverrideSettings {
            app_id: Some(1),
            private_key_path: Some("/nonexistent/key.pem".into()),
            ..Default::default()
        };
        let err = resolve(FileSettings::default(), over).unwrap_err();
        assert!(
            err.to_string().contains("invalid") && err.to_string().contains("/nonexistent/key.pem"),
            "{err}"
        );
    }

    #[test]
    fn payload_retention_defaults_to_two_weeks_and_zero_keeps_forever() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        let pem = std::process::Command::new("openssl")
            .args(["genrsa", "-traditional", "2048"])
            .output()
            .unwrap();
        std::fs::write(&key, pem.stdout).unwrap();
        let over = |days: Option<u64>| OverrideSettings {
            app_id: Some(1),
            private_key_path: Some(key.clone()),
            webhook_secrets: Some("s".into()),
            payload_retention_days: days,
            ..Default::default()
        };
        let retention =
            |file: FileSettings, days| resolve(file, over(days)).map(|c| c.payload_retention);
        assert_eq!(
            retention(FileSettings::default(), None).unwrap(),
            Some(Duration::from_secs(14 * 86_400))
        );
        assert_eq!(retention(FileSettings::default(), Some(0)).unwrap(), None);
        let file = parse_file("payload_retention_days: 3\n").unwrap();
        assert_eq!(
            retention(file, None).unwrap(),
            Some(Duration::from_secs(3 * 86_400))
        );
        let err = retention(FileSettings::default(), Some(1_000_000)).unwrap_err();
        assert!(err.to_string().contains("payload_retention_days"), "{err}");
    }

    #[test]
    fn the_dashboard_reads_its_token_from_the_named_variable() {
        let name = "SOTA_BOT_TEST_DASHBOARD_TOKEN_CONFIG";
        let api = "https://api.github.com";
        assert!(resolve_dashboard(false, Some(name.into()), None, api)
            .unwrap()
            .is_none());
        let err = resolve_dashboard(true, Some(name.into()), None, api).unwrap_err();
        assert!(err.to_string().contains(name), "{err}");
        std::env::set_var(name, "short");
        let err = resolve_dashboard(true, Some(name.into()), None, api).unwrap_err();
        assert!(err.to_string().contains("at least 16"), "{err}");
        std::env::set_var(name, "a-long-enough-dashboard-token");
        let d = resolve_dashboard(true, Some(name.into()), None, api)
            .unwrap()
            .unwrap();
        assert!(d.token.unwrap().matches("a-long-enough-dashboard-token"));
        assert_eq!(d.web_url, "https://github.com");
        let err = resolve_dashboard(true, None, None, "http://127.0.0.1:9").unwrap_err();
        assert!(err.to_string().contains("github_web_url"), "{err}");
        let d = resolve_dashboard(true, None, Some("http://127.0.0.1:9/".into()), "x")
            .unwrap()
            .unwrap();
        assert!(d.token.is_none());
        assert_eq!(d.web_url, "http://127.0.0.1:9");
    }

    #[test]
    fn file_errors_have_positions_and_reject_unknown_keys() {
        let err = parse_file("app_id: 3\nwebhook_secret: x\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("webhook_secret"), "{err}");
        let ok = parse_file("app_id: 3\nwebhook_secrets: [a, b]\nlisten: 127.0.0.1:9\n").unwrap();
        assert_eq!(ok.webhook_secrets.unwrap(), vec!["a", "b"]);
    }

    proptest! {
        #[test]
        fn parse_file_never_panics(text in "\\PC{0,200}") {
            let _ = parse_file(&text);
        }
    }
}
