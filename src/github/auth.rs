//! GitHub App authentication: the RS256 App JWT and cached installation tokens.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

pub use super::client::SecretToken;
use super::client::{GitHubError, HttpTransport};

/// Installation tokens are refreshed when they have less than this left (they live 1 h).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(10 * 60);

/// Claims of the App JWT.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AppClaims {
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
}

/// Claims for an App JWT issued at `now`: `iat` 60 s back (clock drift), `exp` 9 min ahead
/// (GitHub rejects more than 10 min).
pub fn app_claims(app_id: u64, now: DateTime<Utc>) -> AppClaims {
    let t = now.timestamp();
    AppClaims {
        iat: t - 60,
        exp: t + 9 * 60,
        iss: app_id.to_string(),
    }
}

/// Signs the App JWT.
pub fn app_jwt(app_id: u64, key: &EncodingKey, now: DateTime<Utc>) -> Result<String, GitHubError> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &app_claims(app_id, now),
        key,
    )
    .map_err(|e| GitHubError::Auth(format!("signing the App JWT: {e}")))
}

/// Parses a PEM RSA private key (PKCS#1 or PKCS#8), as downloaded from the App settings.
pub fn load_private_key(pem: &[u8]) -> Result<EncodingKey, GitHubError> {
    EncodingKey::from_rsa_pem(pem).map_err(|e| GitHubError::Auth(format!("private key: {e}")))
}

#[derive(Deserialize)]
struct InstallationTokenBody {
    token: String,
    expires_at: DateTime<Utc>,
}

struct CachedToken {
    token: SecretToken,
    expires_at: DateTime<Utc>,
}

/// App credentials plus the installation-token cache.
///
/// This is the product's own App auth rather than octocrab's: its JWT and token expiry follow
/// the injectable `Clock` (octocrab's read the system time), so tests can move time past a
/// token's expiry, and one cache serves every installation client built on a transport.
pub struct AppAuth {
    app_id: u64,
    key: EncodingKey,
    transport: HttpTransport,
    cache: Mutex<HashMap<u64, CachedToken>>,
}

impl std::fmt::Debug for AppAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppAuth")
            .field("app_id", &self.app_id)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl AppAuth {
    /// Creates the authenticator.
    pub fn new(app_id: u64, key: EncodingKey, transport: HttpTransport) -> Self {
        Self {
            app_id,
            key,
            transport,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The App id (`iss`).
    pub fn app_id(&self) -> u64 {
        self.app_id
    }

    /// A fresh App JWT (for `/app/...` endpoints).
    pub fn jwt(&self) -> Result<String, GitHubError> {
        app_jwt(self.app_id, &self.key, self.transport.clock().now())
    }

    /// An installation token, from cache unless it expires within [`REFRESH_MARGIN`].
    /// The lock is held across the refresh so concurrent callers share one request.
    pub async fn installation_token(
        &self,
        installation_id: u64,
    ) -> Result<SecretToken, GitHubError> {
        let mut cache = self.cache.lock().await;
        let now = self.transport.clock().now();
        let margin = chrono::Duration::from_std(REFRESH_MARGIN).unwrap_or(chrono::Duration::zero());
        if let Some(cached) = cache.get(&installation_id) {
            if cached.expires_at - margin > now {
                return Ok(cached.token.clone());
            }
        }
        let jwt = SecretToken::new(self.jwt()?);
        let route = format!("/app/installations/{installation_id}/access_tokens");
        let body: InstallationTokenBody =
            self.transport.post(Some(&jwt), &route, None::<&()>).await?;
        let token = SecretToken::new(body.token);
        cache.insert(
            installation_id,
            CachedToken {
                token: token.clone(),
                expires_at: body.expires_at,
            },
        );
        tracing::debug!(installation_id, expires_at = %body.expires_at, "installation token refreshed");
        Ok(token)
    }

    /// Drops a cached token (after a 401).
    pub async fn forget(&self, installation_id: u64) {
        self.cache.lock().await.remove(&installation_id);
    }
}

/// How a client authenticates.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// As an App installation (the production mode).
    Installation {
        app: Arc<AppAuth>,
        installation_id: u64,
    },
    /// A fixed token (tests, or a personal token for local use).
    Token(SecretToken),
}

impl Credentials {
    /// The bearer token to send now.
    pub async fn bearer(&self) -> Result<SecretToken, GitHubError> {
        match self {
            Self::Installation {
                app,
                installation_id,
            } => app.installation_token(*installation_id).await,
            Self::Token(t) => Ok(t.clone()),
        }
    }

    /// Called after a 401 so the next call fetches a new token.
    pub async fn invalidate(&self) {
        if let Self::Installation {
            app,
            installation_id,
        } = self
        {
            app.forget(*installation_id).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn claims_follow_github_rules() {
        let now = Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap();
        let c = app_claims(42, now);
        assert_eq!(c.iss, "42");
        assert_eq!(now.timestamp() - c.iat, 60);
        assert!(c.exp - now.timestamp() <= 600);
        assert!(c.exp > now.timestamp());
    }

    #[test]
    fn secret_token_debug_is_redacted() {
        assert!(!format!("{:?}", SecretToken::new("ghs_abc")).contains("ghs_abc"));
    }

    #[test]
    fn bad_pem_is_an_auth_error() {
        assert!(matches!(
            load_private_key(b"not a key"),
            Err(GitHubError::Auth(_))
        ));
    }
}
