//! A round's mainline progress verdict, and reading it (with the closing word) from a
//! reviewer's answer.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Mainline progress of a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    Advanced,
    Stalled,
    Regressed,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Advanced => "ADVANCED",
            Verdict::Stalled => "STALLED",
            Verdict::Regressed => "REGRESSED",
        }
    }

    /// Reads `ADVANCED`, `STALLED` or `REGRESSED` (case-insensitive).
    pub fn parse(s: &str) -> Option<Verdict> {
        match s.trim().to_ascii_uppercase().as_str() {
            "ADVANCED" => Some(Verdict::Advanced),
            "STALLED" => Some(Verdict::Stalled),
            "REGRESSED" => Some(Verdict::Regressed),
            _ => None,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The reviewer's answer, interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedReview {
    /// From the required `Mainline Progress Verdict: ...` line.
    pub verdict: Option<Verdict>,
    /// `COMPLETE` or `STOP` when the last non-empty line is one of them.
    pub end_word: Option<String>,
}

/// Reads the verdict line and the final word. Markdown emphasis around either is ignored.
pub fn parse_review(text: &str) -> ParsedReview {
    let clean = |l: &str| {
        l.trim()
            .trim_matches(|c| c == '*' || c == '`' || c == '_')
            .trim()
            .to_string()
    };
    let verdict = text.lines().find_map(|l| {
        let l = clean(l).replace("**", "");
        let rest = l.strip_prefix("Mainline Progress Verdict:")?;
        let word = rest.split_whitespace().next()?;
        Verdict::parse(word.trim_matches(|c: char| !c.is_ascii_alphabetic()))
    });
    let end_word = text
        .lines()
        .rev()
        .map(clean)
        .find(|l| !l.is_empty())
        .filter(|l| l == "COMPLETE" || l == "STOP");
    ParsedReview { verdict, end_word }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_line_and_end_word() {
        let p = parse_review("ok\n**Mainline Progress Verdict: STALLED**\n\nCOMPLETE\n\n");
        assert_eq!(p.verdict, Some(Verdict::Stalled));
        assert_eq!(p.end_word.as_deref(), Some("COMPLETE"));
        let p = parse_review("Mainline Progress Verdict: ADVANCED\nkeep going");
        assert_eq!(p.verdict, Some(Verdict::Advanced));
        assert_eq!(p.end_word, None);
        let p = parse_review("no verdict\nSTOP");
        assert_eq!(p.verdict, None);
        assert_eq!(p.end_word.as_deref(), Some("STOP"));
        assert_eq!(parse_review("").end_word, None);
    }
}
