//! What an agent run reported about itself: turns, tokens, cost and its own error message,
//! read from the machine-readable output of Claude Code (`--output-format json`: one result
//! object) and Codex (`exec --json`: one JSON event per line). Output that is not in either
//! shape (a `command` agent, a CLI that crashed) yields no usage, never an error; such an
//! agent's error message is the line of its standard error that reports a model-API
//! failure ([`api_error_line`]). One classifier ([`classify_api_error`]) reads every
//! agent's error, whichever way it came.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Usage an agent CLI reported for one round. Every field is optional: a CLI reports only
/// some of them (Codex reports tokens but no cost).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentUsage {
    pub turns: Option<u32>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cost_usd: Option<f64>,
    /// The CLI's own error message (an API error, a refused request), when it gave one.
    pub error: Option<String>,
}

impl AgentUsage {
    /// Whether anything was reported.
    pub fn is_empty(&self) -> bool {
        self == &AgentUsage::default()
    }

    /// `12 turns · 34,000 in / 2,100 out tokens · $0.42`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(t) = self.turns {
            parts.push(format!("{t} turn{}", if t == 1 { "" } else { "s" }));
        }
        match (self.input_tokens, self.output_tokens) {
            (Some(i), Some(o)) => parts.push(format!("{i} in / {o} out tokens")),
            (Some(i), None) => parts.push(format!("{i} input tokens")),
            (None, Some(o)) => parts.push(format!("{o} output tokens")),
            (None, None) => {}
        }
        if let Some(c) = self.cost_usd {
            parts.push(format!("${c:.4}"));
        }
        if parts.is_empty() {
            "not reported".into()
        } else {
            parts.join(" · ")
        }
    }
}

fn u64_at(v: &Value, ptr: &str) -> Option<u64> {
    v.pointer(ptr).and_then(Value::as_u64)
}

/// Claude Code's `--output-format json` result object (the last JSON line of stdout with
/// `"type": "result"`).
pub fn parse_claude(stdout: &str) -> Option<AgentUsage> {
    let v: Value = stdout
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .find(|v| v.get("type").and_then(Value::as_str) == Some("result"))?;
    let input = [
        "/usage/input_tokens",
        "/usage/cache_creation_input_tokens",
        "/usage/cache_read_input_tokens",
    ]
    .iter()
    .filter_map(|p| u64_at(&v, p))
    .reduce(|a, b| a + b);
    let is_error = v.get("is_error").and_then(Value::as_bool).unwrap_or(false);
    let error = is_error.then(|| {
        v.get("result")
            .and_then(Value::as_str)
            .or_else(|| v.get("subtype").and_then(Value::as_str))
            .unwrap_or("error")
            .to_string()
    });
    Some(AgentUsage {
        turns: v
            .get("num_turns")
            .and_then(Value::as_u64)
            .and_then(|t| u32::try_from(t).ok()),
        input_tokens: input,
        output_tokens: u64_at(&v, "/usage/output_tokens"),
        cost_usd: v
            .get("total_cost_usd")
            .and_then(Value::as_f64)
            .filter(|c| c.is_finite() && *c >= 0.0),
        error,
    })
}

/// Codex's `exec --json` event stream: tokens summed over `turn.completed` events, the
/// number of model requests the turn made (one per agent message or tool call it answered
/// with), and the message of `turn.failed` / `error` events.
pub fn parse_codex(stdout: &str) -> Option<AgentUsage> {
    let mut usage = AgentUsage::default();
    let mut seen = false;
    let mut steps = 0u32;
    for v in stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
    {
        let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "thread.started" | "turn.started" => seen = true,
            "turn.completed" => {
                seen = true;
                let add = |acc: &mut Option<u64>, n: Option<u64>| {
                    if let Some(n) = n {
                        *acc = Some(acc.unwrap_or(0) + n);
                    }
                };
                add(&mut usage.input_tokens, u64_at(&v, "/usage/input_tokens"));
                add(&mut usage.output_tokens, u64_at(&v, "/usage/output_tokens"));
            }
            "turn.failed" => {
                seen = true;
                usage.error = v
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or(usage.error);
            }
            "error" => {
                if let Some(m) = v.get("message").and_then(Value::as_str) {
                    usage.error.get_or_insert_with(|| m.to_string());
                }
            }
            "item.completed" => {
                let item = v.pointer("/item/type").and_then(Value::as_str);
                if matches!(
                    item,
                    Some("agent_message" | "command_execution" | "file_change" | "mcp_tool_call")
                ) {
                    steps += 1;
                }
            }
            _ => {}
        }
    }
    if !seen {
        return None;
    }
    usage.turns = (steps > 0).then_some(steps);
    Some(usage)
}

/// A model-API failure an agent's error text reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiFailure {
    /// The API refused the credentials (HTTP 401, "failed to authenticate", "invalid API
    /// key").
    Auth,
    /// The API is rate-limited or overloaded (HTTP 429 or 529).
    Overloaded,
}

const AUTH_WORDS: &[&str] = &[
    "authenticat",
    "unauthorized",
    "unauthorised",
    "invalid api key",
    "invalid x-api-key",
    "incorrect api key",
];
const OVERLOAD_WORDS: &[&str] = &[
    "overloaded",
    "rate limit",
    "rate-limit",
    "rate_limit",
    "ratelimit",
    "too many requests",
];

/// Whether `text` holds the HTTP status `code` as a number of its own (not inside a longer
/// one, such as a token count).
fn has_status(text: &str, code: &str) -> bool {
    let digit_at = |s: &str, from_end: bool| {
        let c = if from_end {
            s.chars().next_back()
        } else {
            s.chars().next()
        };
        c.is_some_and(|c| c.is_ascii_digit())
    };
    text.match_indices(code)
        .any(|(at, _)| !digit_at(&text[..at], true) && !digit_at(&text[at + code.len()..], false))
}

/// What model-API failure `text` (an agent's error message or a line of its output)
/// reports, if any; a credentials failure wins over an overload named in the same text.
pub fn classify_api_error(text: &str) -> Option<ApiFailure> {
    let lower = text.to_ascii_lowercase();
    if has_status(text, "401") || AUTH_WORDS.iter().any(|w| lower.contains(w)) {
        return Some(ApiFailure::Auth);
    }
    if ["429", "529"].iter().any(|c| has_status(text, c))
        || OVERLOAD_WORDS.iter().any(|w| lower.contains(w))
    {
        return Some(ApiFailure::Overloaded);
    }
    None
}

/// The last line of an agent's standard error that reports a model-API failure, trimmed:
/// the error message of an agent that printed no machine-readable one.
pub fn api_error_line(stderr: &str) -> Option<String> {
    stderr
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| classify_api_error(l).is_some())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn claude_result_object() {
        let out = r#"{"type":"result","subtype":"success","is_error":false,"num_turns":2,"total_cost_usd":0.000975,"usage":{"input_tokens":200,"cache_creation_input_tokens":0,"cache_read_input_tokens":10,"output_tokens":25},"result":"Done."}"#;
        let u = parse_claude(out).unwrap();
        assert_eq!(u.turns, Some(2));
        assert_eq!(u.input_tokens, Some(210));
        assert_eq!(u.output_tokens, Some(25));
        assert_eq!(u.cost_usd, Some(0.000975));
        assert_eq!(u.error, None);
        assert_eq!(u.describe(), "2 turns · 210 in / 25 out tokens · $0.0010");
    }

    #[test]
    fn claude_api_error_is_kept() {
        let out = r#"{"type":"result","subtype":"success","is_error":true,"num_turns":1,"total_cost_usd":0,"usage":{"input_tokens":0,"output_tokens":0},"result":"Failed to authenticate. API Error: 401 nope","api_error_status":401}"#;
        let u = parse_claude(out).unwrap();
        assert_eq!(
            u.error.as_deref(),
            Some("Failed to authenticate. API Error: 401 nope")
        );
    }

    #[test]
    fn codex_events() {
        let out = r#"{"type":"thread.started","thread_id":"t"}
{"type":"turn.started"}
{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"x","exit_code":0,"status":"completed"}}
{"type":"item.completed","item":{"id":"item_2","type":"agent_message","text":"Done."}}
{"type":"turn.completed","usage":{"input_tokens":240,"cached_input_tokens":0,"output_tokens":60}}"#;
        let u = parse_codex(out).unwrap();
        assert_eq!(
            (u.turns, u.input_tokens, u.output_tokens, u.cost_usd),
            (Some(2), Some(240), Some(60), None)
        );
        let failed = r#"{"type":"turn.started"}
{"type":"error","message":"Reconnecting... 1/1"}
{"type":"turn.failed","error":{"message":"unexpected status 401 Unauthorized"}}"#;
        assert_eq!(
            parse_codex(failed).unwrap().error.as_deref(),
            Some("unexpected status 401 Unauthorized")
        );
    }

    #[test]
    fn other_output_is_no_usage() {
        assert_eq!(parse_claude("hello\n{\"type\":\"x\"}"), None);
        assert_eq!(parse_codex("plain text\n"), None);
        assert!(AgentUsage::default().is_empty());
        assert_eq!(AgentUsage::default().describe(), "not reported");
    }

    #[test]
    fn api_errors_are_classified_whichever_agent_printed_them() {
        for (text, kind) in [
            (
                "Failed to authenticate. API Error: 401 nope",
                Some(ApiFailure::Auth),
            ),
            ("unexpected status 401 Unauthorized", Some(ApiFailure::Auth)),
            ("Error: Invalid API key provided", Some(ApiFailure::Auth)),
            (
                "HTTP/1.1 429 Too Many Requests",
                Some(ApiFailure::Overloaded),
            ),
            ("API Error: 529 Overloaded", Some(ApiFailure::Overloaded)),
            (
                "rate limit reached for requests",
                Some(ApiFailure::Overloaded),
            ),
            ("429 and then 401", Some(ApiFailure::Auth)),
            // Numbers that merely contain a status code, and words that contain "rate".
            ("processed 14012 tokens in 4290 ms", None),
            ("failed to generate a patch; iterate again", None),
            ("", None),
        ] {
            assert_eq!(classify_api_error(text), kind, "{text}");
        }
    }

    #[test]
    fn the_last_api_error_line_of_stderr_is_the_message() {
        let stderr = "starting\nretrying after 429 Too Many Requests\n  Error: 401 Unauthorized  \ncleanup done\n";
        assert_eq!(
            api_error_line(stderr).as_deref(),
            Some("Error: 401 Unauthorized")
        );
        assert_eq!(
            api_error_line("compiling\nerror[E0308]: mismatched types\n"),
            None
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in ".*") {
            let _ = parse_claude(&s);
            let _ = parse_codex(&s);
            let _ = api_error_line(&s);
        }

        #[test]
        fn a_status_code_inside_a_longer_number_is_not_a_status(a in 1u32..1000, b in 0u32..1000) {
            let text = format!("{a}401{b} tokens");
            prop_assert_eq!(classify_api_error(&text), None);
            let text = format!("status {a} 401 {b}");
            prop_assert_eq!(classify_api_error(&text), Some(ApiFailure::Auth));
        }
    }
}
