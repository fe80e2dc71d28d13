//! Secret scrubbing for everything sota-bot writes (logs, artifacts, comments, commits).
//!
//! Two layers: exact known values (read from the environment variables that hold them) and
//! recognisable token shapes (GitHub, Hugging Face, OpenAI-style keys, bearer headers,
//! `*_TOKEN=`-style assignments, PEM private keys). Both are replaced by [`REDACTED`], so a
//! secret that leaked into a server log or an agent transcript never reaches a commit.

use once_cell::sync::Lazy;
use regex::Regex;
use std::borrow::Cow;

/// The text that replaces every secret.
pub const REDACTED: &str = "[REDACTED]";

/// Values shorter than this are not scrubbed as known values: replacing a 2-character
/// "secret" everywhere would destroy logs without protecting anything.
const MIN_KNOWN_LEN: usize = 6;

/// Environment variables whose values sota-bot treats as secret by default.
pub const DEFAULT_SECRET_ENV_VARS: &[&str] = &[
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HUGGINGFACE_TOKEN",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "SOTA_BOT_WEBHOOK_SECRET",
    "SOTA_BOT_PRIVATE_KEY",
];

static SHAPES: Lazy<Vec<(Regex, &'static str)>> = Lazy::new(|| {
    // (pattern, replacement); `$1` keeps a non-secret prefix such as the header name.
    let specs: [(&str, &str); 7] = [
        (
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)",
            REDACTED,
        ),
        (
            r"(?i)(authorization:\s*(?:bearer|token|basic)\s+)[^\s\x22']+",
            "${1}[REDACTED]",
        ),
        (r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}", "${1}[REDACTED]"),
        (
            r"(?i)(\b[A-Z0-9_]*(?:TOKEN|SECRET|API_KEY|APIKEY|PASSWORD|PRIVATE_KEY)\s*[=:]\s*)[\x22']?[^\s\x22']+[\x22']?",
            "${1}[REDACTED]",
        ),
        (r"\b(?:ghp|gho|ghs|ghu|ghr)_[A-Za-z0-9]{16,}", REDACTED),
        (r"\bgithub_pat_[A-Za-z0-9_]{20,}", REDACTED),
        (r"\b(?:hf_[A-Za-z0-9]{16,}|sk-[A-Za-z0-9_-]{16,})", REDACTED),
    ];
    specs
        .iter()
        .filter_map(|(p, r)| Regex::new(p).ok().map(|re| (re, *r)))
        .collect()
});

/// Removes known secret values and recognisable token shapes from `text`.
///
/// Known values are removed first (longest first, so a value containing another is removed
/// whole), then token shapes. Returns the input unchanged (borrowed) when nothing matched.
pub fn scrub<'a>(text: &'a str, known_values: &[String]) -> Cow<'a, str> {
    let mut out: Cow<'a, str> = Cow::Borrowed(text);
    let mut known: Vec<&str> = known_values
        .iter()
        .map(|v| v.trim())
        .filter(|v| v.len() >= MIN_KNOWN_LEN)
        .collect();
    known.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for value in known {
        if out.contains(value) {
            out = Cow::Owned(out.replace(value, REDACTED));
        }
    }
    for (re, replacement) in SHAPES.iter() {
        if re.is_match(&out) {
            out = Cow::Owned(re.replace_all(&out, *replacement).into_owned());
        }
    }
    out
}

/// The secret values in force for one process: collected once from named environment
/// variables (plus any values added explicitly) and applied to everything written.
#[derive(Clone, Default)]
pub struct SecretSet {
    values: Vec<String>,
}

/// Debug output never shows the values themselves.
impl std::fmt::Debug for SecretSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretSet({} values)", self.values.len())
    }
}

impl SecretSet {
    /// An empty set (token shapes are still scrubbed).
    pub fn new() -> SecretSet {
        SecretSet::default()
    }

    /// Collects the values of the given environment variables that are set and non-empty.
    pub fn from_env_vars<S: AsRef<str>>(names: &[S]) -> SecretSet {
        let mut set = SecretSet::new();
        for name in names {
            if let Ok(value) = std::env::var(name.as_ref()) {
                set.add(value);
            }
        }
        set
    }

    /// Collects [`DEFAULT_SECRET_ENV_VARS`].
    pub fn from_default_env() -> SecretSet {
        SecretSet::from_env_vars(DEFAULT_SECRET_ENV_VARS)
    }

    /// Adds one value (ignored when empty).
    pub fn add(&mut self, value: impl Into<String>) {
        let value = value.into();
        if !value.trim().is_empty() && !self.values.contains(&value) {
            self.values.push(value);
        }
    }

    /// The collected values.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Scrubs `text` with this set's values and the token shapes.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        scrub(text, &self.values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn token_shapes_are_redacted() {
        let cases = [
            "token ghp_abcdefghijklmnopqrstuvwxyz0123456789 used",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
            "HF hf_AbCdEfGhIjKlMnOpQrStUvWxYz here",
            "key sk-proj-abcdefghijklmnop1234",
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
            "export HF_TOKEN=supersecretvalue",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
        ];
        for case in cases {
            let out = scrub(case, &[]);
            assert!(out.contains(REDACTED), "{case} -> {out}");
        }
        assert!(!scrub(cases[0], &[]).contains("ghp_"));
        assert!(!scrub(cases[4], &[]).contains("eyJ"));
        assert!(scrub(cases[4], &[]).starts_with("Authorization: Bearer "));
        assert!(!scrub(cases[5], &[]).contains("supersecretvalue"));
        assert!(!scrub(cases[6], &[]).contains("MIIE"));
    }

    #[test]
    fn ordinary_text_is_borrowed_unchanged() {
        let text = "INFO server started on port 30000, max_running_requests=256";
        assert!(matches!(scrub(text, &[]), Cow::Borrowed(_)));
    }

    #[test]
    fn known_values_are_removed_longest_first() {
        let known = vec!["abcdef".to_string(), "abcdefgh1234".to_string()];
        let out = scrub("x abcdefgh1234 y abcdef z", &known);
        assert_eq!(out, "x [REDACTED] y [REDACTED] z");
    }

    #[test]
    fn secret_set_reads_named_env_vars() {
        std::env::set_var("SOTA_BOT_TEST_SECRET_XYZ", "value-from-env-123");
        let set = SecretSet::from_env_vars(&["SOTA_BOT_TEST_SECRET_XYZ", "SOTA_BOT_UNSET_VAR"]);
        assert_eq!(set.values(), ["value-from-env-123".to_string()]);
        assert_eq!(set.scrub("got value-from-env-123!"), "got [REDACTED]!");
    }

    proptest! {
        #[test]
        fn scrub_never_panics(text in any::<String>(), known in proptest::collection::vec(any::<String>(), 0..4)) {
            let _ = scrub(&text, &known);
        }

        #[test]
        fn inserted_known_secret_never_survives(
            prefix in any::<String>(),
            suffix in any::<String>(),
            secret in "[A-Za-z0-9_+/=-]{6,40}",
        ) {
            let text = format!("{prefix}{secret}{suffix}");
            let out = scrub(&text, std::slice::from_ref(&secret));
            prop_assert!(!out.contains(&secret), "secret survived in {out:?}");
        }
    }
}
