//! Calls about the App itself rather than a campaign: the manifest flow's code exchange
//! (no credentials), the App's own settings and webhook deliveries (App JWT), and the
//! repository facts `sota-bot doctor` reads with an installation token. Every endpoint is
//! listed in `permissions::ENDPOINTS`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use super::api::RepoName;
use super::auth::{AppAuth, SecretToken};
use super::client::{GitHubError, HttpTransport};

/// What `POST /app-manifests/{code}/conversions` returns: the new App and its secrets.
#[derive(Clone, Deserialize)]
pub struct CreatedApp {
    pub id: u64,
    #[serde(default)]
    pub slug: Option<String>,
    pub name: String,
    pub html_url: String,
    #[serde(default)]
    pub webhook_secret: Option<String>,
    pub pem: String,
}

impl std::fmt::Debug for CreatedApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedApp")
            .field("id", &self.id)
            .field("slug", &self.slug)
            .field("name", &self.name)
            .field("html_url", &self.html_url)
            .field("webhook_secret", &"<redacted>")
            .field("pem", &"<redacted>")
            .finish()
    }
}

/// Exchanges the one-time code of GitHub's manifest flow (valid for an hour) for the App's
/// id, private key and webhook secret. The code itself is the credential.
pub async fn convert_manifest_code(
    transport: &HttpTransport,
    code: &str,
) -> Result<CreatedApp, GitHubError> {
    if code.is_empty()
        || !code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(GitHubError::InvalidInput(format!(
            "manifest code {code:?} is not a code GitHub issues"
        )));
    }
    let route = format!("/app-manifests/{code}/conversions");
    transport.post(None, &route, None::<&()>).await
}

/// The App's registration: its permissions and events as configured in its settings.
#[derive(Debug, Clone, Deserialize)]
pub struct AppInfo {
    pub id: u64,
    #[serde(default)]
    pub slug: Option<String>,
    pub name: String,
    pub html_url: String,
    #[serde(default)]
    pub permissions: BTreeMap<String, String>,
    #[serde(default)]
    pub events: Vec<String>,
}

/// An installation of the App, with the permissions and events its owner accepted.
#[derive(Debug, Clone, Deserialize)]
pub struct InstallationInfo {
    pub id: u64,
    #[serde(default)]
    pub html_url: Option<String>,
    #[serde(default)]
    pub permissions: BTreeMap<String, String>,
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default)]
    pub suspended_at: Option<String>,
}

/// The App's webhook settings (the secret is never returned in clear).
#[derive(Debug, Clone, Deserialize)]
pub struct HookConfig {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub insecure_ssl: Option<serde_json::Value>,
}

/// One webhook delivery attempt as GitHub lists it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Delivery {
    pub id: u64,
    pub guid: String,
    pub delivered_at: String,
    #[serde(default)]
    pub redelivery: bool,
    /// `OK`, `Invalid HTTP Response: 401`, `failed to connect`, ...
    pub status: String,
    /// 0 when no HTTP answer came back.
    pub status_code: u16,
    pub event: String,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub installation_id: Option<u64>,
    #[serde(default)]
    pub repository_id: Option<u64>,
}

/// A repository's identity and default branch.
#[derive(Debug, Clone, Deserialize)]
pub struct RepoInfo {
    pub id: u64,
    pub full_name: String,
    pub default_branch: String,
}

/// A runner label.
#[derive(Debug, Clone, Deserialize)]
pub struct RunnerLabel {
    pub name: String,
}

/// A self-hosted runner registered on a repository.
#[derive(Debug, Clone, Deserialize)]
pub struct Runner {
    pub name: String,
    /// `online` or `offline`.
    pub status: String,
    #[serde(default)]
    pub busy: bool,
    #[serde(default)]
    pub labels: Vec<RunnerLabel>,
}

#[derive(Deserialize)]
struct RunnersBody {
    runners: Vec<Runner>,
}

#[derive(Deserialize)]
struct SecretName {
    name: String,
}

#[derive(Deserialize)]
struct SecretsBody {
    secrets: Vec<SecretName>,
}

/// Lists here fit one page of 100.
const PER_PAGE: Option<&[(&str, &str)]> = Some(&[("per_page", "100")]);

/// Client for App-level calls; installation-scoped reads take the installation id.
#[derive(Clone, Debug)]
pub struct AppClient {
    transport: HttpTransport,
    app: Arc<AppAuth>,
}

impl AppClient {
    /// From a transport and the App's credentials.
    pub fn new(transport: HttpTransport, app: Arc<AppAuth>) -> Self {
        Self { transport, app }
    }

    async fn jwt_get<T: serde::de::DeserializeOwned>(
        &self,
        route: &str,
        query: Option<&[(&str, &str)]>,
    ) -> Result<Option<T>, GitHubError> {
        let jwt = SecretToken::new(self.app.jwt()?);
        match self.transport.get(Some(&jwt), route, query).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn installation_get<T: serde::de::DeserializeOwned>(
        &self,
        installation_id: u64,
        route: &str,
        query: Option<&[(&str, &str)]>,
    ) -> Result<T, GitHubError> {
        let token = self.app.installation_token(installation_id).await?;
        self.transport.get(Some(&token), route, query).await
    }

    /// The App's registration.
    pub async fn app_info(&self) -> Result<AppInfo, GitHubError> {
        self.jwt_get("/app", None)
            .await?
            .ok_or_else(|| GitHubError::Status {
                method: "GET".into(),
                path: "/app".into(),
                status: 404,
                message: "the App was not found".into(),
            })
    }

    /// The App's installation on `repo`, or `None` when it is not installed there.
    pub async fn repo_installation(
        &self,
        repo: &RepoName,
    ) -> Result<Option<InstallationInfo>, GitHubError> {
        self.jwt_get(&format!("{}/installation", repo.path()), None)
            .await
    }

    /// The App's webhook settings.
    pub async fn hook_config(&self) -> Result<Option<HookConfig>, GitHubError> {
        self.jwt_get("/app/hook/config", None).await
    }

    /// The most recent webhook deliveries (newest first, at most 100).
    pub async fn hook_deliveries(&self) -> Result<Vec<Delivery>, GitHubError> {
        Ok(self
            .jwt_get("/app/hook/deliveries", Some(&[("per_page", "100")]))
            .await?
            .unwrap_or_default())
    }

    /// A repository's id and default branch.
    pub async fn repo_info(
        &self,
        installation_id: u64,
        repo: &RepoName,
    ) -> Result<RepoInfo, GitHubError> {
        self.installation_get(installation_id, &repo.path(), None)
            .await
    }

    /// The repository's self-hosted runners (first 100).
    pub async fn runners(
        &self,
        installation_id: u64,
        repo: &RepoName,
    ) -> Result<Vec<Runner>, GitHubError> {
        let path = format!("{}/actions/runners", repo.path());
        Ok(self
            .installation_get::<RunnersBody>(installation_id, &path, PER_PAGE)
            .await?
            .runners)
    }

    /// Names of the Actions secrets the repository's workflows can read: its own and the
    /// organization's secrets shared with it.
    pub async fn secret_names(
        &self,
        installation_id: u64,
        repo: &RepoName,
    ) -> Result<Vec<String>, GitHubError> {
        let mut names = Vec::new();
        for kind in ["secrets", "organization-secrets"] {
            let path = format!("{}/actions/{kind}", repo.path());
            let body: SecretsBody = self
                .installation_get(installation_id, &path, PER_PAGE)
                .await?;
            names.extend(body.secrets.into_iter().map(|s| s.name));
        }
        Ok(names)
    }
}
