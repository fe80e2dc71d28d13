//! The one secret scrubber for everything sota-bot writes (files, logs, comments, check runs,
//! commits) and the one detector the gate's `secrets.none` check and the agent step use.
//!
//! Two layers: exact known values and recognisable token shapes. Known values are the
//! values of the configured secret variables (the defaults below, every name listed in
//! `SOTA_AGENT_SECRET_NAMES` / `SOTA_SECRET_NAMES`, and names or values registered at start-up:
//! the reviewer's and the agent's key variables, the App's private key, the webhook secrets).
//! Matching by value is what catches a token without a recognisable prefix; the shapes catch
//! credentials nobody configured. Whole PEM private-key blocks are removed, also when they
//! arrive one line at a time ([`LineScrubber`]).

use once_cell::sync::Lazy;
use regex::Regex;
use std::borrow::Cow;
use std::sync::RwLock;

/// The text that replaces every secret.
pub const REDACTED: &str = "[REDACTED]";

/// Values shorter than this are not scrubbed as known values: replacing a 2-character
/// "secret" everywhere would destroy logs without protecting anything.
const MIN_KNOWN_LEN: usize = 6;

/// Lines of a multi-line secret (a PEM key body) shorter than this are not matched alone.
const MIN_LINE_LEN: usize = 16;

/// Environment variables whose values sota-bot treats as secret by default.
pub const DEFAULT_SECRET_ENV_VARS: &[&str] = &[
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HUGGINGFACE_TOKEN",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "SOTA_REVIEWER_API_KEY",
    "SOTA_BOT_WEBHOOK_SECRET",
    "SOTA_BOT_WEBHOOK_SECRETS",
    "SOTA_BOT_PRIVATE_KEY",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
];

/// Variables that hold *names* of further secret variables (commas, spaces or newlines
/// between names): the action sets `SOTA_AGENT_SECRET_NAMES` from `agent-secret-names`.
pub const SECRET_NAME_LISTS: &[&str] = &["SOTA_AGENT_SECRET_NAMES", "SOTA_SECRET_NAMES"];

/// Hugging Face token variables: the only secrets serving engines and benchmark clients get
/// (gated weights and tokenizers).
pub const HF_TOKEN_VARS: &[&str] = &["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_TOKEN"];

/// One token shape.
struct Shape {
    /// What it is, as the gate names it.
    kind: &'static str,
    re: Regex,
    /// `$1` keeps a non-secret prefix such as a header name.
    replacement: &'static str,
    /// Certain enough to fail the gate; heuristic shapes (assignments, headers) only scrub.
    detect: bool,
}

static SHAPES: Lazy<Vec<Shape>> = Lazy::new(|| {
    let specs: [(&str, &str, &str, bool); 10] = [
        (
            "private key",
            // The whole block, also JSON-escaped (`\n` inside) or cut off before its END line.
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)",
            REDACTED,
            true,
        ),
        (
            "authorization header",
            r"(?i)(authorization:\s*(?:bearer|token|basic)\s+)[^\s\x22'\\]+",
            "${1}[REDACTED]",
            false,
        ),
        (
            "bearer token",
            r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}",
            "${1}[REDACTED]",
            false,
        ),
        (
            "credential assignment",
            r"(?i)(\b[A-Z0-9_]*(?:TOKEN|SECRET|API_KEY|APIKEY|PASSWORD|PRIVATE_KEY)\s*[=:]\s*)[\x22']?[^\s\x22'\\]+[\x22']?",
            "${1}[REDACTED]",
            false,
        ),
        (
            "GitHub token",
            r"\b(?:ghp|gho|ghs|ghu|ghr)_[A-Za-z0-9]{16,}",
            REDACTED,
            true,
        ),
        (
            "GitHub fine-grained token",
            r"\bgithub_pat_[A-Za-z0-9_]{20,}",
            REDACTED,
            true,
        ),
        (
            "Hugging Face token",
            r"\bhf_[A-Za-z0-9]{16,}",
            REDACTED,
            true,
        ),
        ("API key", r"\bsk-[A-Za-z0-9_-]{16,}", REDACTED, true),
        ("AWS access key", r"\bAKIA[0-9A-Z]{16}\b", REDACTED, true),
        (
            "Slack token",
            r"\bxox[abprs]-[A-Za-z0-9-]{10,}",
            REDACTED,
            true,
        ),
    ];
    specs
        .iter()
        .filter_map(|(kind, p, r, detect)| {
            Regex::new(p).ok().map(|re| Shape {
                kind,
                re,
                replacement: r,
                detect: *detect,
            })
        })
        .collect()
});

static PEM_BEGIN: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----").expect("valid regex"));
static PEM_END: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"-----END [A-Z0-9 ]*PRIVATE KEY-----").expect("valid regex"));

/// The forms a value may take in written text: itself, JSON-escaped (inside
/// `gate-input.json`), and each long line of a multi-line value (a PEM body printed or logged
/// line by line).
fn forms(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let trimmed = value.trim();
    if trimmed.len() >= MIN_KNOWN_LEN {
        out.push(trimmed.to_string());
        let json = serde_json::to_string(trimmed).unwrap_or_default();
        let escaped = json
            .strip_prefix('"')
            .and_then(|j| j.strip_suffix('"'))
            .unwrap_or("");
        if escaped != trimmed && escaped.len() >= MIN_KNOWN_LEN {
            out.push(escaped.to_string());
        }
    }
    if trimmed.contains('\n') {
        for line in trimmed.lines().map(str::trim) {
            if line.len() >= MIN_LINE_LEN && !out.iter().any(|o| o == line) {
                out.push(line.to_string());
            }
        }
    }
    out
}

/// Removes known secret values and recognisable token shapes from `text`.
///
/// Known values are removed first (longest first, so a value containing another is removed
/// whole), then token shapes. Returns the input unchanged (borrowed) when nothing matched.
pub fn scrub<'a>(text: &'a str, known_values: &[String]) -> Cow<'a, str> {
    let mut known: Vec<String> = known_values.iter().flat_map(|v| forms(v)).collect();
    known.sort_by_key(|v| std::cmp::Reverse(v.len()));
    known.dedup();
    scrub_forms(text, &known)
}

fn scrub_forms<'a>(text: &'a str, known: &[String]) -> Cow<'a, str> {
    let mut out: Cow<'a, str> = Cow::Borrowed(text);
    for value in known {
        if out.contains(value.as_str()) {
            out = Cow::Owned(out.replace(value.as_str(), REDACTED));
        }
    }
    for shape in SHAPES.iter() {
        if shape.re.is_match(&out) {
            out = Cow::Owned(shape.re.replace_all(&out, shape.replacement).into_owned());
        }
    }
    out
}

fn scrub_json_with(value: &mut serde_json::Value, known: &[String]) {
    match value {
        serde_json::Value::String(text) => {
            if let Cow::Owned(clean) = scrub_forms(text, known) {
                *text = clean;
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                scrub_json_with(item, known);
            }
        }
        serde_json::Value::Object(map) => {
            for (_, item) in map.iter_mut() {
                scrub_json_with(item, known);
            }
        }
        _ => {}
    }
}

/// Names and values registered for this process (see [`register_env_name`],
/// [`register_value`]).
#[derive(Default)]
struct Registry {
    names: Vec<String>,
    values: Vec<(String, String)>,
}

/// Process-wide, because secrets are: a key loaded from a file or a variable named in a
/// config must be scrubbed from every writer of the process, including ones that never see
/// that config.
static REGISTRY: Lazy<RwLock<Registry>> = Lazy::new(|| RwLock::new(Registry::default()));

/// Treats the variable `name` as secret for the rest of the process (a configured
/// `api_key_env`). Ignored when it is not a plausible variable name.
pub fn register_env_name(name: &str) {
    let name = name.trim();
    if !is_env_name(name) {
        return;
    }
    let mut r = REGISTRY.write().unwrap_or_else(|p| p.into_inner());
    if !r.names.iter().any(|n| n == name) {
        r.names.push(name.to_string());
    }
}

/// Treats `value` as secret for the rest of the process (a key read from a file, a
/// webhook secret from a config file); `label` says what it is in the gate's findings.
pub fn register_value(label: &str, value: &str) {
    if value.trim().is_empty() {
        return;
    }
    let mut r = REGISTRY.write().unwrap_or_else(|p| p.into_inner());
    if !r.values.iter().any(|(_, v)| v == value) {
        r.values.push((label.to_string(), value.to_string()));
    }
}

/// True for `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Splits a list of variable names (commas, spaces or newlines between them).
pub fn split_names(list: &str) -> impl Iterator<Item = &str> {
    list.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|n| !n.is_empty())
}

/// Every variable name whose value is secret in this process: the defaults, the names in
/// the name lists, and the registered names.
pub fn secret_env_names() -> Vec<String> {
    let mut names: Vec<String> = DEFAULT_SECRET_ENV_VARS
        .iter()
        .map(|n| n.to_string())
        .collect();
    for list in SECRET_NAME_LISTS {
        if let Ok(v) = std::env::var(list) {
            names.extend(split_names(&v).filter(|n| is_env_name(n)).map(String::from));
        }
    }
    names.extend(
        REGISTRY
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .names
            .iter()
            .cloned(),
    );
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

/// The secret variables a child process must not inherit: every configured secret name
/// except those in `keep` (what that process needs).
pub fn withheld_env<S: AsRef<str>>(keep: &[S]) -> Vec<String> {
    secret_env_names()
        .into_iter()
        .filter(|n| !keep.iter().any(|k| k.as_ref() == n))
        .collect()
}

/// The names listed in `SOTA_AGENT_SECRET_NAMES`: the agent's own secrets.
pub fn agent_secret_names() -> Vec<String> {
    std::env::var("SOTA_AGENT_SECRET_NAMES")
        .map(|v| {
            split_names(&v)
                .filter(|n| is_env_name(n))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Removes every configured secret of this process from `text` (what every file, log line,
/// comment and commit message goes through).
pub fn redact(text: &str) -> String {
    SecretSet::from_default_env().scrub(text).into_owned()
}

/// The secret values in force for one process: each with a label saying where it came from
/// (never the value), applied to everything written.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretSet {
    entries: Vec<(String, String)>,
}

/// Debug output never shows the values themselves.
impl std::fmt::Debug for SecretSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretSet({} values)", self.entries.len())
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
                set.add_named(&format!("value of {}", name.as_ref()), value);
            }
        }
        set
    }

    /// Every configured secret of this process: the values of [`secret_env_names`] and the
    /// registered values.
    pub fn from_default_env() -> SecretSet {
        let mut set = SecretSet::from_env_vars(&secret_env_names());
        for (label, value) in REGISTRY
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values
            .iter()
        {
            set.add_named(label, value.clone());
        }
        set
    }

    /// Adds one value (ignored when blank).
    pub fn add(&mut self, value: impl Into<String>) {
        self.add_named("configured secret", value);
    }

    /// Adds one value with a label for findings (ignored when blank).
    pub fn add_named(&mut self, label: &str, value: impl Into<String>) {
        let value = value.into();
        if !value.trim().is_empty() && !self.entries.iter().any(|(_, v)| *v == value) {
            self.entries.push((label.to_string(), value));
        }
    }

    /// Adds the values of these variables (when set).
    pub fn add_env_vars<S: AsRef<str>>(&mut self, names: &[S]) {
        for (label, value) in SecretSet::from_env_vars(names).entries {
            self.add_named(&label, value);
        }
    }

    /// The collected values.
    pub fn values(&self) -> Vec<String> {
        self.entries.iter().map(|(_, v)| v.clone()).collect()
    }

    fn known_forms(&self) -> Vec<String> {
        let mut known: Vec<String> = self.entries.iter().flat_map(|(_, v)| forms(v)).collect();
        known.sort_by_key(|v| std::cmp::Reverse(v.len()));
        known.dedup();
        known
    }

    /// Scrubs `text` with this set's values and the token shapes.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        scrub_forms(text, &self.known_forms())
    }

    /// What credentials `text` holds, by kind or by the label of the known value (never the
    /// value itself): the gate's `secrets.none` and the agent step's leak check.
    pub fn find(&self, text: &str) -> Vec<String> {
        let mut found: Vec<String> = Vec::new();
        for (label, value) in &self.entries {
            if forms(value).iter().any(|f| text.contains(f.as_str()))
                && !found.iter().any(|f| f == label)
            {
                found.push(label.clone());
            }
        }
        for shape in SHAPES.iter().filter(|s| s.detect) {
            if shape.re.is_match(text) && !found.iter().any(|f| f == shape.kind) {
                found.push(shape.kind.to_string());
            }
        }
        found
    }

    /// Scrubs every string inside a JSON value (keys stay: they are the API's field names).
    pub fn scrub_json(&self, value: &mut serde_json::Value) {
        let known = self.known_forms();
        scrub_json_with(value, &known);
    }

    /// A scrubber for text that arrives one line at a time (process output).
    pub fn line_scrubber(&self) -> LineScrubber {
        LineScrubber {
            known: self.known_forms(),
            in_private_key: false,
        }
    }
}

/// Scrubs a stream line by line. A PEM private-key block spans lines, so every line from its
/// BEGIN line to its END line is replaced, not only the BEGIN line.
#[derive(Debug, Clone)]
pub struct LineScrubber {
    known: Vec<String>,
    in_private_key: bool,
}

impl LineScrubber {
    /// The scrubbed form of the next line.
    pub fn line<'a>(&mut self, line: &'a str) -> Cow<'a, str> {
        if self.in_private_key {
            if let Some(end) = PEM_END.find(line) {
                self.in_private_key = false;
                let rest = scrub_forms(&line[end.end()..], &self.known).into_owned();
                return Cow::Owned(format!("{REDACTED}{rest}"));
            }
            return Cow::Borrowed(REDACTED);
        }
        if let Some(begin) = PEM_BEGIN.find(line) {
            if !PEM_END.is_match(&line[begin.end()..]) {
                self.in_private_key = true;
            }
        }
        scrub_forms(line, &self.known)
    }
}

/// A log writer that scrubs each formatted record before it reaches `W` (the App's
/// `tracing` output: an error message quoting a response or a header never carries a
/// configured secret into the service log).
pub struct ScrubbingWriter<W: std::io::Write> {
    inner: W,
}

impl<W: std::io::Write> ScrubbingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self { inner }
    }
}

impl<W: std::io::Write> std::io::Write for ScrubbingWriter<W> {
    /// One call carries one whole record (the formatter writes each event in one piece).
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let clean = SecretSet::from_default_env().scrub(&text).into_owned();
        self.inner.write_all(clean.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Scrubbed standard error, for `tracing_subscriber`'s `with_writer`.
pub fn scrubbed_stderr() -> ScrubbingWriter<std::io::Stderr> {
    ScrubbingWriter::new(std::io::stderr())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\nVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\nLxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW/VDL5AaWTg0nLVkjRo\n-----END RSA PRIVATE KEY-----";

    #[test]
    fn token_shapes_are_redacted() {
        let cases = [
            "token ghp_abcdefghijklmnopqrstuvwxyz0123456789 used",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
            "HF hf_AbCdEfGhIjKlMnOpQrStUvWxYz here",
            "key sk-proj-abcdefghijklmnop1234",
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
            "export HF_TOKEN=supersecretvalue",
            PEM,
            "aws AKIAIOSFODNN7EXAMPLE here",
        ];
        for case in cases {
            let out = scrub(case, &[]);
            assert!(out.contains(REDACTED), "{case} -> {out}");
        }
        assert!(!scrub(cases[0], &[]).contains("ghp_"));
        assert!(!scrub(cases[4], &[]).contains("eyJ"));
        assert!(scrub(cases[4], &[]).starts_with("Authorization: Bearer "));
        assert!(!scrub(cases[5], &[]).contains("supersecretvalue"));
        assert_eq!(scrub(PEM, &[]), REDACTED);
    }

    #[test]
    fn a_json_escaped_pem_block_is_removed_whole() {
        let json = serde_json::to_string(&format!("log:\n{PEM}\ndone")).unwrap();
        let out = scrub(&json, &[]);
        assert!(!out.contains("MIIE") && !out.contains("VTLw7"), "{out}");
        assert!(out.contains("done"), "{out}");
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
    fn multi_line_values_are_matched_whole_escaped_and_line_by_line() {
        let mut set = SecretSet::new();
        // A key without the BEGIN line (a body pasted alone) is only found by value.
        let body = PEM.lines().skip(1).take(3).collect::<Vec<_>>().join("\n");
        set.add_named("App private key", body.clone());
        let one_line = body.lines().nth(1).unwrap();
        assert_eq!(set.scrub(&format!("x {one_line} y")), "x [REDACTED] y");
        let escaped = serde_json::to_string(&body).unwrap();
        assert!(!set.scrub(&escaped).contains("MIIE"));
        assert_eq!(set.find(&escaped), ["App private key"]);
    }

    #[test]
    fn find_names_kinds_and_labels_never_values() {
        let mut set = SecretSet::new();
        set.add_named("value of HF_TOKEN", "plainvalue0123456");
        let found = set.find("a plainvalue0123456 b ghp_abcdefghijklmnopqrstuvwxyz0123");
        assert_eq!(found, ["value of HF_TOKEN", "GitHub token"]);
        assert!(set.find("max_new_token: 5, nothing else").is_empty());
    }

    #[test]
    fn line_scrubber_removes_a_pem_body_arriving_line_by_line() {
        let mut lines = SecretSet::new().line_scrubber();
        let text = format!("before\n{PEM}\nafter ghp_abcdefghijklmnopqrstuvwxyz0123");
        let out: Vec<String> = text.lines().map(|l| lines.line(l).into_owned()).collect();
        assert_eq!(out.first().map(String::as_str), Some("before"));
        assert_eq!(out.last().map(String::as_str), Some("after [REDACTED]"));
        assert!(out
            .iter()
            .all(|l| !l.contains("MII") && !l.contains("VTLw7")));
    }

    #[test]
    fn the_log_writer_scrubs_each_record() {
        use std::io::Write;
        let mut out = ScrubbingWriter::new(Vec::new());
        out.write_all(
            b"WARN request failed: Authorization: token ghp_abcdefghijklmnopqrstuvwxyz0123\n",
        )
        .unwrap();
        let text = String::from_utf8(out.inner).unwrap();
        assert_eq!(
            text,
            "WARN request failed: Authorization: token [REDACTED]\n"
        );
    }

    #[test]
    fn secret_set_reads_named_env_vars() {
        std::env::set_var("SOTA_BOT_TEST_SECRET_XYZ", "value-from-env-123");
        let set = SecretSet::from_env_vars(&["SOTA_BOT_TEST_SECRET_XYZ", "SOTA_BOT_UNSET_VAR"]);
        assert_eq!(set.values(), ["value-from-env-123".to_string()]);
        assert_eq!(set.scrub("got value-from-env-123!"), "got [REDACTED]!");
    }

    #[test]
    fn registered_names_and_values_join_the_process_set() {
        std::env::set_var("SOTA_BOT_TEST_REGISTERED_KEY", "registered-key-value-1");
        register_env_name("SOTA_BOT_TEST_REGISTERED_KEY");
        register_value("test App key", "registered-literal-value-2");
        register_env_name("not a name; rm -rf");
        let names = secret_env_names();
        assert!(names.iter().any(|n| n == "SOTA_BOT_TEST_REGISTERED_KEY"));
        assert!(!names.iter().any(|n| n.contains(' ')));
        let out = redact("a registered-key-value-1 b registered-literal-value-2 c");
        assert_eq!(out, "a [REDACTED] b [REDACTED] c");
    }

    proptest! {
        #[test]
        fn scrub_never_panics(text in any::<String>(), known in proptest::collection::vec(any::<String>(), 0..4)) {
            let _ = scrub(&text, &known);
            let mut lines = SecretSet::new().line_scrubber();
            for l in text.lines() {
                let _ = lines.line(l);
            }
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
            let mut set = SecretSet::new();
            set.add(secret.clone());
            prop_assert!(!set.find(&text).is_empty());
        }

        #[test]
        fn a_pem_body_never_survives_line_scrubbing(
            before in "[a-z ]{0,30}",
            body in proptest::collection::vec("[A-Z0-9+/]{8,64}", 1..6),
        ) {
            let text = format!("{before}\n-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", body.join("\n"));
            let mut lines = SecretSet::new().line_scrubber();
            let out: Vec<String> = text.lines().map(|l| lines.line(l).into_owned()).collect();
            for b in &body {
                prop_assert!(out.iter().all(|l| !l.contains(b.as_str())), "{b} survived in {out:?}");
            }
            prop_assert!(!scrub(&text, &[]).contains(body[0].as_str()));
        }
    }
}
