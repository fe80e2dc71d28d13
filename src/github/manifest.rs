//! The GitHub App manifest (the JSON GitHub's manifest flow takes to create an App), built
//! from the permission and event tables so it always matches what the code calls.

use std::collections::BTreeMap;

use serde::Serialize;

use super::permissions::{required_events, required_permissions};

/// Where GitHub delivers webhooks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookAttributes {
    pub url: String,
    pub active: bool,
}

/// The manifest, in the field names GitHub's manifest flow reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppManifest {
    pub name: String,
    /// The App's homepage (required by GitHub).
    pub url: String,
    pub description: String,
    pub hook_attributes: HookAttributes,
    /// Where GitHub sends the browser (with `?code=`) once the App is created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    /// Private: only the account that creates it can install it.
    pub public: bool,
    pub default_permissions: BTreeMap<String, String>,
    pub default_events: Vec<String>,
}

/// What a user chooses; the rest comes from the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestOptions {
    pub name: String,
    pub webhook_url: String,
    /// Defaults to the webhook URL's origin.
    pub homepage_url: Option<String>,
    pub redirect_url: Option<String>,
}

/// Why a manifest cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("--webhook-url `{0}` is not an absolute http(s) URL")]
    WebhookUrl(String),
    #[error("--homepage-url `{0}` is not an absolute http(s) URL")]
    HomepageUrl(String),
    #[error("--name must be 1 to 34 characters (GitHub's limit), got {0:?}")]
    Name(String),
}

fn http_url(text: &str) -> Option<url::Url> {
    url::Url::parse(text)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

/// Builds the manifest.
pub fn build(options: &ManifestOptions) -> Result<AppManifest, ManifestError> {
    let name = options.name.trim();
    if name.is_empty() || name.chars().count() > 34 {
        return Err(ManifestError::Name(options.name.clone()));
    }
    let hook = http_url(&options.webhook_url)
        .ok_or_else(|| ManifestError::WebhookUrl(options.webhook_url.clone()))?;
    let homepage = match &options.homepage_url {
        Some(h) => http_url(h)
            .ok_or_else(|| ManifestError::HomepageUrl(h.clone()))?
            .to_string(),
        None => hook.origin().ascii_serialization(),
    };
    Ok(AppManifest {
        name: name.to_string(),
        url: homepage,
        description: "Review-gated SGLang performance campaigns: benchmarks SGLang against \
                      other serving frameworks on self-hosted GPU runners and drives \
                      optimisation rounds from issues and /sota commands."
            .into(),
        hook_attributes: HookAttributes {
            url: hook.to_string(),
            active: true,
        },
        redirect_url: options.redirect_url.clone(),
        public: false,
        default_permissions: required_permissions()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.as_str().to_string()))
            .collect(),
        default_events: required_events().into_iter().map(String::from).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> ManifestOptions {
        ManifestOptions {
            name: "sota-bot".into(),
            webhook_url: "https://bot.example.com/webhook".into(),
            homepage_url: None,
            redirect_url: None,
        }
    }

    #[test]
    fn manifest_json() {
        let m = build(&options()).unwrap();
        insta::assert_json_snapshot!(m);
    }

    #[test]
    fn bad_options_are_named() {
        let mut o = options();
        o.webhook_url = "bot.example.com/webhook".into();
        assert_eq!(
            build(&o).unwrap_err(),
            ManifestError::WebhookUrl("bot.example.com/webhook".into())
        );
        let mut o = options();
        o.homepage_url = Some("ftp://x".into());
        assert!(matches!(build(&o), Err(ManifestError::HomepageUrl(_))));
        let mut o = options();
        o.name = "x".repeat(35);
        assert!(matches!(build(&o), Err(ManifestError::Name(_))));
        let mut o = options();
        o.homepage_url = Some("https://github.com/acme/sglang".into());
        o.redirect_url = Some("http://127.0.0.1:1234/callback".into());
        let m = build(&o).unwrap();
        assert_eq!(m.url, "https://github.com/acme/sglang");
        assert_eq!(
            m.redirect_url.as_deref(),
            Some("http://127.0.0.1:1234/callback")
        );
    }
}
