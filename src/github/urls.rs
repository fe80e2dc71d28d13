//! Addresses of a GitHub instance.

/// The web address of a GitHub instance from its REST API address: `api.github.com` is
/// served from `github.com`, GitHub Enterprise Server's `https://HOST/api/v3` from
/// `https://HOST`. `None` when the address has neither shape (configure it instead).
pub fn web_url_for_api(api_url: &str) -> Option<String> {
    let u = url::Url::parse(api_url).ok()?;
    let host = u.host_str()?;
    if host == "api.github.com" {
        return Some("https://github.com".into());
    }
    let path = u.path().trim_end_matches('/');
    path.ends_with("/api/v3").then(|| {
        let mut base = u.clone();
        base.set_path(path.trim_end_matches("/api/v3"));
        base.as_str().trim_end_matches('/').to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_urls_follow_the_api_address() {
        assert_eq!(
            web_url_for_api("https://api.github.com").as_deref(),
            Some("https://github.com")
        );
        assert_eq!(
            web_url_for_api("https://ghe.example.com/api/v3/").as_deref(),
            Some("https://ghe.example.com")
        );
        assert_eq!(web_url_for_api("http://127.0.0.1:4010"), None);
        assert_eq!(web_url_for_api("not a url"), None);
    }
}
