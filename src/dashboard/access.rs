//! Who may see which campaign. Campaigns of public repositories are shown to anyone;
//! campaigns of private repositories (or of repositories whose visibility is unknown) only
//! to a request carrying the operator's dashboard token, and to nobody when no token is
//! configured. A hidden campaign is answered exactly like a missing one.

use subtle::ConstantTimeEq;

use super::model::CampaignSnapshot;

/// Name of the cookie the sign-in form sets.
pub const TOKEN_COOKIE: &str = "sota_dashboard_token";

/// The operator's dashboard token; never printed.
#[derive(Clone)]
pub struct DashboardToken(String);

impl std::fmt::Debug for DashboardToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DashboardToken(<redacted>)")
    }
}

/// A token the dashboard refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the dashboard token must be at least {MIN_TOKEN_CHARS} characters (it has {0})")]
    TooShort(usize),
    #[error("the dashboard token may hold only printable ASCII without spaces, `;`, `,`, `\"` or `\\` (it is sent as a cookie)")]
    BadCharacter,
}

/// Shortest accepted token.
pub const MIN_TOKEN_CHARS: usize = 16;

impl DashboardToken {
    /// A token (surrounding whitespace removed).
    pub fn new(value: &str) -> Result<DashboardToken, TokenError> {
        let v = value.trim();
        if v.chars().count() < MIN_TOKEN_CHARS {
            return Err(TokenError::TooShort(v.chars().count()));
        }
        if !v
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'"' | b'\\'))
        {
            return Err(TokenError::BadCharacter);
        }
        Ok(DashboardToken(v.to_string()))
    }

    /// Constant-time comparison.
    pub fn matches(&self, presented: &str) -> bool {
        bool::from(self.0.as_bytes().ct_eq(presented.trim().as_bytes()))
    }

    /// The value, for the process's secret scrubbing only.
    pub fn value(&self) -> &str {
        &self.0
    }
}

/// Who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// Anyone: public campaigns only.
    Anonymous,
    /// Carries the dashboard token: every campaign.
    Operator,
}

/// The token a request presents: `Authorization: Bearer <token>` or the sign-in cookie.
pub fn presented_token<'a>(
    authorization: Option<&'a str>,
    cookie: Option<&'a str>,
) -> Option<&'a str> {
    if let Some(t) = authorization.and_then(|a| {
        let (scheme, rest) = a.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
    }) {
        return Some(t);
    }
    cookie.and_then(|header| {
        header.split(';').find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name.trim() == TOKEN_COOKIE).then_some(value.trim())
        })
    })
}

/// The viewer of a request presenting `presented` when `token` is configured.
pub fn viewer(token: Option<&DashboardToken>, presented: Option<&str>) -> Viewer {
    match (token, presented) {
        (Some(t), Some(p)) if t.matches(p) => Viewer::Operator,
        _ => Viewer::Anonymous,
    }
}

/// Whether `viewer` may see the campaign.
pub fn may_see(viewer: Viewer, campaign: &CampaignSnapshot) -> bool {
    !campaign.private || viewer == Viewer::Operator
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tokens_come_from_bearer_headers_or_the_cookie() {
        assert_eq!(presented_token(Some("Bearer abc"), None), Some("abc"));
        assert_eq!(presented_token(Some("bearer  abc "), None), Some("abc"));
        assert_eq!(presented_token(Some("Basic abc"), None), None);
        assert_eq!(
            presented_token(None, Some("a=1; sota_dashboard_token=xyz; b=2")),
            Some("xyz")
        );
        assert_eq!(presented_token(None, Some("other=xyz")), None);
    }

    #[test]
    fn only_the_configured_token_makes_an_operator() {
        let t = DashboardToken::new("0123456789abcdef-token").unwrap();
        assert_eq!(
            viewer(Some(&t), Some("0123456789abcdef-token")),
            Viewer::Operator
        );
        assert_eq!(
            viewer(Some(&t), Some("0123456789abcdef")),
            Viewer::Anonymous
        );
        assert_eq!(viewer(Some(&t), None), Viewer::Anonymous);
        assert_eq!(viewer(None, Some("anything")), Viewer::Anonymous);
        assert_eq!(
            DashboardToken::new(" short ").err(),
            Some(TokenError::TooShort(5))
        );
        assert_eq!(
            DashboardToken::new("0123456789abcdef;x").err(),
            Some(TokenError::BadCharacter)
        );
        assert!(!format!("{t:?}").contains("0123"));
    }

    proptest! {
        #[test]
        fn header_parsing_never_panics(a in ".*", c in ".*") {
            let _ = presented_token(Some(&a), Some(&c));
        }
    }
}
