//! Hidden machine-readable markers in bot comments, and comment-size limits.
//!
//! Every bot comment starts with `<!-- sota-bot:{json} -->` so the bot can find its own
//! comments again (edit the status comment in place instead of posting a new one) without
//! keeping comment ids anywhere else.

use serde::{Deserialize, Serialize};

/// GitHub rejects comment bodies longer than this (characters).
pub const MAX_COMMENT_CHARS: usize = 65_536;

const PREFIX: &str = "<!-- sota-bot:";
const SUFFIX: &str = " -->";

/// What a bot comment is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentMarker {
    /// Campaign id (empty for comments not tied to a campaign, e.g. help replies).
    pub campaign: String,
    /// Comment kind, e.g. `status`, `round-report`, `help`, `refusal`.
    pub kind: String,
    /// Round number for per-round comments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<u32>,
}

impl CommentMarker {
    /// The HTML comment line.
    pub fn render(&self) -> String {
        // Serialising a struct of strings and integers cannot fail.
        let json = serde_json::to_string(self).unwrap_or_default();
        // `--` would end the HTML comment early; JSON escapes keep ids readable otherwise.
        format!("{PREFIX}{}{SUFFIX}", json.replace("--", "-\\u002d"))
    }

    /// Finds the first marker in a comment body, if any.
    pub fn find_in(body: &str) -> Option<Self> {
        let start = body.find(PREFIX)? + PREFIX.len();
        let rest = body.get(start..)?;
        let end = rest.find(SUFFIX)?;
        serde_json::from_str(rest.get(..end)?).ok()
    }

    /// True when `body` carries a marker equal to this one.
    pub fn matches(&self, body: &str) -> bool {
        Self::find_in(body).as_ref() == Some(self)
    }
}

/// Prefixes `body` with the marker and truncates it to GitHub's limit; when truncated, a
/// notice links to `full_report_url` (the report committed on the campaign branch).
pub fn compose_comment(
    marker: &CommentMarker,
    body: &str,
    full_report_url: Option<&str>,
) -> String {
    let head = marker.render();
    let full = format!("{head}\n{body}");
    if full.chars().count() <= MAX_COMMENT_CHARS {
        return full;
    }
    let notice = match full_report_url {
        Some(url) => format!("\n\n---\n*Truncated: the full report is at {url}*"),
        None => "\n\n---\n*Truncated: the report exceeds GitHub's comment size limit.*".to_string(),
    };
    let budget = MAX_COMMENT_CHARS.saturating_sub(notice.chars().count());
    let mut kept: String = full.chars().take(budget).collect();
    kept.push_str(&notice);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn marker() -> CommentMarker {
        CommentMarker {
            campaign: "llama-8b--h100".into(),
            kind: "status".into(),
            round: Some(3),
        }
    }

    #[test]
    fn marker_roundtrips_and_is_a_valid_html_comment() {
        let line = marker().render();
        assert!(line.starts_with("<!-- sota-bot:{\"campaign\":"), "{line}");
        // No `--` inside the comment body.
        let inner = &line[4..line.len() - 3];
        assert!(!inner.contains("--"), "{line}");
        let body = format!("{line}\n## Status\nround 3");
        assert_eq!(CommentMarker::find_in(&body), Some(marker()));
        assert!(marker().matches(&body));
        assert!(!CommentMarker {
            round: Some(4),
            ..marker()
        }
        .matches(&body));
        assert_eq!(CommentMarker::find_in("plain comment"), None);
    }

    #[test]
    fn long_bodies_are_truncated_with_link() {
        let body = "x".repeat(MAX_COMMENT_CHARS * 2);
        let out = compose_comment(
            &marker(),
            &body,
            Some("https://github.com/o/r/blob/b/final_report.md"),
        );
        assert_eq!(out.chars().count(), MAX_COMMENT_CHARS);
        assert!(out.ends_with("final_report.md*"));
        assert!(marker().matches(&out));
        let short = compose_comment(&marker(), "hi", None);
        assert!(short.ends_with("\nhi"));
    }

    proptest! {
        #[test]
        fn find_never_panics(body in ".{0,300}") {
            let _ = CommentMarker::find_in(&body);
        }

        #[test]
        fn compose_respects_limit(len in 0usize..140_000) {
            let body = "é".repeat(len);
            prop_assert!(compose_comment(&marker(), &body, None).chars().count() <= MAX_COMMENT_CHARS);
        }
    }
}
