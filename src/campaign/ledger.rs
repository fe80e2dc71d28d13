//! Loop ledgers (ARCHITECTURE.md, *Ledgers and checkpoint*): attempt, optimization and source-idea
//! ledgers as append-only markdown tables, and the lineage as JSON lines.
//!
//! Append-only matters: the gate judges a round by how many rows it added, and a resumed
//! campaign must never lose a row an earlier round wrote.

use serde::{Deserialize, Serialize};

/// Every attempt, good or bad.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRow {
    pub round: u32,
    pub title: String,
    pub idea: String,
    pub files: Vec<String>,
    pub commit: Option<String>,
    pub geomean_pct: Option<f64>,
    pub verdict: String,
    pub outcome: String,
}

/// A correct, measured improvement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizationRow {
    pub round: u32,
    pub title: String,
    pub commit: Option<String>,
    pub geomean_pct: f64,
    pub per_scenario: String,
    pub evidence: String,
}

/// A source idea with its evidence and provenance, kept so later rounds do not re-read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceIdeaRow {
    pub round: u32,
    pub idea: String,
    pub evidence: String,
    pub provenance: String,
    pub status: String,
}

/// One lineage record per round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineageEntry {
    pub round: u32,
    pub title: String,
    pub parent_commit: Option<String>,
    pub measured_commit: Option<String>,
    pub accepted: bool,
    pub verdict: String,
    pub decision: String,
    pub geomean_pct: Option<f64>,
    pub recorded_at: String,
}

/// A ledger file that could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file} line {line}: {message}")]
pub struct LedgerError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Which markdown ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerKind {
    Attempt,
    Optimization,
    SourceIdea,
}

impl LedgerKind {
    fn title(self) -> &'static str {
        match self {
            LedgerKind::Attempt => "Attempt ledger",
            LedgerKind::Optimization => "Optimization ledger",
            LedgerKind::SourceIdea => "Source-idea ledger",
        }
    }
    fn intro(self) -> &'static str {
        match self {
            LedgerKind::Attempt => "Every patch attempt, including failed and rejected ones. Append-only.",
            LedgerKind::Optimization => "Only correct patches with a measured improvement over the prior best SGLang result. Append-only.",
            LedgerKind::SourceIdea => "Source ideas with their profiler, layer-pipeline, NCU and history evidence and provenance. Append-only.",
        }
    }
    fn columns(self) -> &'static [&'static str] {
        match self {
            LedgerKind::Attempt => &[
                "Round", "Title", "Idea", "Files", "Commit", "Geomean", "Verdict", "Outcome",
            ],
            LedgerKind::Optimization => &[
                "Round",
                "Title",
                "Commit",
                "Geomean",
                "Per scenario",
                "Evidence",
            ],
            LedgerKind::SourceIdea => &["Round", "Idea", "Evidence", "Provenance", "Status"],
        }
    }
}

/// Escapes a table cell: `|` and line breaks would break the row.
pub fn md_cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace("\r\n", "<br>")
        .replace(['\n', '\r'], "<br>")
}

fn pct(v: Option<f64>) -> String {
    v.map(|g| format!("{g:+.2}%"))
        .unwrap_or_else(|| "n/a".into())
}

fn short(c: &Option<String>) -> String {
    c.as_deref()
        .map(|c| format!("`{}`", c.get(..10).unwrap_or(c)))
        .unwrap_or_else(|| "-".into())
}

/// The heading and empty table of a new ledger.
pub fn ledger_header(kind: LedgerKind) -> String {
    let cols = kind.columns();
    format!(
        "# {}\n\n{}\n\n| {} |\n|{}\n",
        kind.title(),
        kind.intro(),
        cols.join(" | "),
        "---|".repeat(cols.len())
    )
}

fn append_line(existing: &str, kind: LedgerKind, cells: Vec<String>) -> String {
    let mut text = if existing.trim().is_empty() {
        ledger_header(kind)
    } else {
        existing.to_string()
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let cells: Vec<String> = cells.iter().map(|c| md_cell(c)).collect();
    text.push_str(&format!("| {} |\n", cells.join(" | ")));
    text
}

/// Appends an attempt row (creating the ledger when `existing` is empty).
pub fn append_attempt(existing: &str, row: &AttemptRow) -> String {
    let files = if row.files.is_empty() {
        "-".to_string()
    } else {
        row.files
            .iter()
            .map(|f| format!("`{f}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    append_line(
        existing,
        LedgerKind::Attempt,
        vec![
            row.round.to_string(),
            row.title.clone(),
            row.idea.clone(),
            files,
            short(&row.commit),
            pct(row.geomean_pct),
            row.verdict.clone(),
            row.outcome.clone(),
        ],
    )
}

/// Appends an optimization row.
pub fn append_optimization(existing: &str, row: &OptimizationRow) -> String {
    append_line(
        existing,
        LedgerKind::Optimization,
        vec![
            row.round.to_string(),
            row.title.clone(),
            short(&row.commit),
            pct(Some(row.geomean_pct)),
            row.per_scenario.clone(),
            row.evidence.clone(),
        ],
    )
}

/// Appends a source-idea row.
pub fn append_source_idea(existing: &str, row: &SourceIdeaRow) -> String {
    append_line(
        existing,
        LedgerKind::SourceIdea,
        vec![
            row.round.to_string(),
            row.idea.clone(),
            row.evidence.clone(),
            row.provenance.clone(),
            row.status.clone(),
        ],
    )
}

/// Number of data rows in a markdown ledger (table lines after the separator).
pub fn count_rows(markdown: &str) -> usize {
    let mut in_table = false;
    let mut n = 0;
    for line in markdown.lines() {
        let t = line.trim();
        if !t.starts_with('|') {
            in_table = false;
            continue;
        }
        let is_sep = t
            .trim_matches('|')
            .split('|')
            .all(|c| !c.trim().is_empty() && c.trim().chars().all(|ch| ch == '-' || ch == ':'));
        if is_sep {
            in_table = true;
        } else if in_table {
            n += 1;
        }
    }
    n
}

/// The last `n` data lines of a ledger, for report excerpts.
pub fn tail_rows(markdown: &str, n: usize) -> Vec<String> {
    let rows: Vec<&str> = markdown
        .lines()
        .filter(|l| l.trim().starts_with('|'))
        .skip(2)
        .collect();
    rows.iter()
        .skip(rows.len().saturating_sub(n))
        .map(|s| s.to_string())
        .collect()
}

/// One lineage line (with newline).
pub fn lineage_line(entry: &LineageEntry) -> String {
    let mut s = serde_json::to_string(entry)
        .unwrap_or_else(|e| format!("{{\"serialization_error\":{:?}}}", e.to_string()));
    s.push('\n');
    s
}

/// Reads `lineage.jsonl`; blank lines are skipped, a bad line is an error with its number.
pub fn parse_lineage(text: &str) -> Result<Vec<LineageEntry>, LedgerError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| LedgerError {
                file: "humanize/lineage.jsonl".into(),
                line: i + 1,
                message: e.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn attempt(round: u32) -> AttemptRow {
        AttemptRow {
            round,
            title: "fuse | norm".into(),
            idea: "multi\nline".into(),
            files: vec!["sim/engine.yaml".into()],
            commit: Some("0123456789abcdef".into()),
            geomean_pct: Some(2.5),
            verdict: "ADVANCED".into(),
            outcome: "accepted".into(),
        }
    }

    #[test]
    fn append_counts_and_escapes() {
        let a = append_attempt("", &attempt(1));
        assert_eq!(count_rows(&a), 1);
        let b = append_attempt(&a, &attempt(2));
        assert_eq!(count_rows(&b), 2);
        assert!(b.starts_with(&a), "append-only");
        assert!(b.contains("fuse \\| norm"));
        assert!(b.contains("multi<br>line"));
        assert_eq!(tail_rows(&b, 1).len(), 1);
        assert!(tail_rows(&b, 1)[0].starts_with("| 2 |"));
        assert_eq!(count_rows(&ledger_header(LedgerKind::Optimization)), 0);
    }

    #[test]
    fn lineage_round_trip_and_errors() {
        let e = LineageEntry {
            round: 1,
            title: "t".into(),
            parent_commit: None,
            measured_commit: Some("abc".into()),
            accepted: true,
            verdict: "ADVANCED".into(),
            decision: "continue".into(),
            geomean_pct: Some(1.0),
            recorded_at: "2026-01-01T00:00:00Z".into(),
        };
        let text = format!("{}\n{}", lineage_line(&e), lineage_line(&e));
        assert_eq!(parse_lineage(&text).unwrap().len(), 2);
        let err = parse_lineage("{}\n").unwrap_err();
        assert_eq!(err.line, 1);
    }

    proptest! {
        #[test]
        fn ledger_readers_never_panic(s in ".*") {
            let _ = count_rows(&s);
            let _ = tail_rows(&s, 3);
            let _ = parse_lineage(&s);
        }
    }
}
