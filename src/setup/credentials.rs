//! Writes a new App's credentials: the private key and a `serve` config file naming the App
//! id, the key and the webhook secret. Both files are created readable and writable by
//! their owner only (0600) from the first byte, never widened afterwards.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::github::app_client::CreatedApp;

/// Where the credentials go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialPaths {
    pub config: PathBuf,
    pub private_key: PathBuf,
}

/// Why the credentials cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("{0} exists; pass --force to replace it, or choose another path")]
    Exists(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("GitHub returned no webhook secret for the App; set one in its settings and add it to `webhook_secrets`")]
    NoWebhookSecret,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CredentialsError + '_ {
    move |source| CredentialsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Checked before the flow starts, so that a code (usable once) is never exchanged for
/// credentials that then cannot be stored.
pub fn check_writable(paths: &CredentialPaths, force: bool) -> Result<(), CredentialsError> {
    for path in [&paths.config, &paths.private_key] {
        if !force && path.exists() {
            return Err(CredentialsError::Exists(path.clone()));
        }
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let meta = std::fs::metadata(parent).map_err(io_err(parent))?;
        if !meta.is_dir() {
            return Err(CredentialsError::Io {
                path: parent.to_path_buf(),
                source: std::io::Error::other("not a directory"),
            });
        }
    }
    Ok(())
}

/// YAML string (JSON string syntax is valid YAML and escapes everything needed).
fn yaml_str(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

/// The `serve` config for a new App.
pub fn config_text(
    app: &CreatedApp,
    private_key: &Path,
    github_api_url: Option<&str>,
) -> Result<String, CredentialsError> {
    let secret = app
        .webhook_secret
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or(CredentialsError::NoWebhookSecret)?;
    let mut text = format!(
        "# sota-bot serve settings for the GitHub App {name} ({url}), written by\n\
         # `sota-bot app create`. Keep this file readable by its owner only: it holds the\n\
         # webhook secret. Other settings: `sota-bot serve --help`.\n\
         app_id: {id}\n\
         private_key_path: {key}\n\
         webhook_secrets: [{secret}]\n",
        name = yaml_str(&app.name),
        url = app.html_url,
        id = app.id,
        key = yaml_str(&private_key.to_string_lossy()),
        secret = yaml_str(secret),
    );
    if let Some(api) = github_api_url {
        text.push_str(&format!("github_api_url: {}\n", yaml_str(api)));
    }
    Ok(text)
}

/// Writes `contents` to `path` with mode 0600. Without `force` the file must not exist;
/// with it, a 0600 temporary file beside it replaces it by rename.
pub fn write_private(path: &Path, contents: &[u8], force: bool) -> Result<(), CredentialsError> {
    let target = if force {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".tmp-{}", std::process::id()));
        path.with_file_name(name)
    } else {
        path.to_path_buf()
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&target).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists if !force => CredentialsError::Exists(path.to_path_buf()),
        _ => io_err(&target)(e),
    })?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(io_err(&target))?;
    if force {
        std::fs::rename(&target, path).map_err(io_err(path))?;
    }
    Ok(())
}

/// Writes the key, then the config naming it.
pub fn write_credentials(
    app: &CreatedApp,
    paths: &CredentialPaths,
    github_api_url: Option<&str>,
    force: bool,
) -> Result<(), CredentialsError> {
    let key_path = std::path::absolute(&paths.private_key).map_err(io_err(&paths.private_key))?;
    let config = config_text(app, &key_path, github_api_url)?;
    write_private(&paths.private_key, app.pem.as_bytes(), force)?;
    write_private(&paths.config, config.as_bytes(), force)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created() -> CreatedApp {
        serde_json::from_value(serde_json::json!({
            "id": 42, "slug": "acme-sota", "name": "acme \"sota\"",
            "html_url": "https://github.com/apps/acme-sota",
            "webhook_secret": "s3cr3t: with # yaml", "pem": "PEM"
        }))
        .unwrap()
    }

    #[test]
    fn config_round_trips_through_the_serve_parser() {
        let text = config_text(
            &created(),
            Path::new("/etc/sota bot/key.pem"),
            Some("https://ghe.example.com/api/v3"),
        )
        .unwrap();
        let parsed = crate::server::config::parse_file(&text).unwrap();
        assert_eq!(parsed.app_id, Some(42));
        assert_eq!(
            parsed.private_key_path.as_deref(),
            Some(Path::new("/etc/sota bot/key.pem"))
        );
        assert_eq!(parsed.webhook_secrets.unwrap(), ["s3cr3t: with # yaml"]);
        assert_eq!(
            parsed.github_api_url.as_deref(),
            Some("https://ghe.example.com/api/v3")
        );
        let mut no_secret = created();
        no_secret.webhook_secret = None;
        assert!(matches!(
            config_text(&no_secret, Path::new("k"), None),
            Err(CredentialsError::NoWebhookSecret)
        ));
    }

    #[cfg(unix)]
    #[test]
    fn files_are_owner_only_and_never_silently_replaced() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_private(&path, b"one", false).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(matches!(
            write_private(&path, b"two", false),
            Err(CredentialsError::Exists(_))
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&path, b"two", true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let paths = CredentialPaths {
            config: path.clone(),
            private_key: dir.path().join("k.pem"),
        };
        assert!(matches!(
            check_writable(&paths, false),
            Err(CredentialsError::Exists(_))
        ));
        assert!(check_writable(&paths, true).is_ok());
        let missing = CredentialPaths {
            config: dir.path().join("no/such/dir/c.yml"),
            private_key: dir.path().join("k.pem"),
        };
        assert!(matches!(
            check_writable(&missing, false),
            Err(CredentialsError::Io { .. })
        ));
    }
}
