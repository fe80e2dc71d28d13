//! The markdown notes: the report turned into the view the `history-notes` template
//! renders, and the part of the notes a round prompt quotes.

use super::notes::{Area, CitedCommit, HistoryReport};
use crate::report::{
    HistoryAreaView, HistoryCommitLine, HistoryKnowledgeView, HistoryNotesView, HistoryPrLine,
};

/// Where the JSON notes live in the run directory.
pub const JSON_NOTES: &str = "history/model-pr-history.json";
/// Where the markdown notes live in the run directory.
pub const MD_NOTES: &str = "history/model-pr-history-notes.md";
/// Commits listed per area in the markdown (all of them are in the JSON).
pub const PER_AREA: usize = 15;
/// Performance-related commits listed on top.
pub const LATEST_PERF: usize = 12;
/// The heading where the round prompt's quote of the notes ends.
const AREAS_HEADING: &str = "## By area";
/// Longest quote of the notes in a round prompt.
const MAX_QUOTE_CHARS: usize = 8000;

fn line(c: &CitedCommit) -> HistoryCommitLine {
    let mut flags = Vec::new();
    if c.perf {
        flags.push("perf".to_string());
    }
    if c.revert {
        flags.push("revert".to_string());
    }
    if c.merge {
        flags.push("merge".to_string());
    }
    for r in &c.renamed_from {
        flags.push(format!("renamed {r}"));
    }
    for p in &c.removed_paths {
        flags.push(format!("removed `{p}`"));
    }
    HistoryCommitLine {
        sha: super::verify::short(&c.sha).to_string(),
        date: c.date.clone(),
        pr: c.pr.map(|n| format!("#{n}")).unwrap_or_default(),
        subject: c.subject.clone(),
        paths: c
            .paths
            .iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", "),
        flags: flags.join("; "),
    }
}

/// Backticked names, comma separated.
fn ticked(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The performance commits listed on top, newest first: those that change a model file or
/// name the family before those that only change a shared layer (which every model on that
/// layer sees; they are all in the per-area lists too).
fn latest_perf(r: &HistoryReport) -> Vec<&CitedCommit> {
    let perf = || r.commits.iter().filter(|c| c.perf && !c.merge);
    let direct = |c: &&CitedCommit| c.area == Area::Model || c.names_family;
    let mut out: Vec<&CitedCommit> = perf().filter(direct).take(LATEST_PERF).collect();
    let room = LATEST_PERF - out.len();
    out.extend(perf().filter(|c| !direct(c)).take(room));
    out
}

/// The template's view of a report. `json_where` says where the full JSON is (markdown,
/// e.g. a backticked path).
pub fn notes_view(r: &HistoryReport, json_where: &str) -> HistoryNotesView {
    let areas = Area::ALL
        .iter()
        .filter_map(|&a| {
            let all: Vec<&CitedCommit> = r.in_area(a).collect();
            (!all.is_empty()).then(|| HistoryAreaView {
                title: a.title().to_string(),
                total: all.len(),
                shown: all.iter().take(PER_AREA).map(|c| line(c)).collect(),
                more: all.len().saturating_sub(PER_AREA),
            })
        })
        .collect();
    HistoryNotesView {
        model: r.model.clone(),
        family: r.family.clone(),
        family_keys: ticked(&r.family_keys),
        other_models: ticked(&r.other_models),
        architectures: ticked(&r.architectures),
        architecture_source: r.architecture_source.clone(),
        head: r
            .head
            .as_deref()
            .map(|h| super::verify::short(h).to_string())
            .unwrap_or_else(|| "(none)".into()),
        commits_read: r.commits_read,
        relevant: r.commits.len(),
        model_files: r.model_files.clone(),
        layer_files: r.layer_files.clone(),
        kernel_files: r.kernel_files.clone(),
        json_path: json_where.to_string(),
        upstream: r.upstream.clone().unwrap_or_default(),
        in_flight: r
            .open_prs
            .iter()
            .filter(|p| p.in_flight)
            .map(|p| HistoryPrLine {
                number: p.number,
                title: p.title.clone(),
                url: p.url.clone(),
                state: p.state.clone(),
            })
            .collect(),
        upstream_in_checkout: r.open_prs.iter().filter(|p| !p.in_flight).count(),
        latest_perf: latest_perf(r).into_iter().map(line).collect(),
        areas,
        knowledge: r
            .knowledge
            .iter()
            .map(|k| HistoryKnowledgeView {
                path: k.path.clone(),
                framework: k.framework.clone(),
                prs: k
                    .prs
                    .iter()
                    .map(|p| match &p.sha {
                        Some(sha) => format!(
                            "#{} (`{}` {})",
                            p.number,
                            super::verify::short(sha),
                            p.title
                        ),
                        None => format!("#{} (GitHub: {})", p.number, p.title),
                    })
                    .collect(),
                sources: k.sources.clone(),
                symbols: k.symbols.clone(),
                risks: k.risks.clone(),
            })
            .collect(),
        blockers: r.blockers.clone(),
    }
}

/// Renders the markdown notes.
pub fn render_markdown(
    r: &HistoryReport,
    json_where: &str,
) -> Result<String, crate::report::RenderError> {
    crate::report::render_history_notes(&notes_view(r, json_where))
}

/// The part of the notes a round prompt quotes: everything before the per-area lists (the
/// summary, blockers, PRs in flight and the latest performance work), without the notes'
/// title and with its sections one level down, cut at a bound.
pub fn prompt_quote(notes_md: &str) -> String {
    let head = match notes_md.find(AREAS_HEADING) {
        Some(i) => &notes_md[..i],
        None => notes_md,
    };
    // The notes' own title is dropped: the prompt gives the quote its heading.
    let head = head.trim_end();
    let head = match head.strip_prefix("# ") {
        Some(rest) => rest
            .split_once('\n')
            .map_or("", |(_, body)| body)
            .trim_start(),
        None => head,
    };
    // Its sections sit one level below the prompt's heading for the quote.
    let head: String = head
        .lines()
        .map(|l| match l.strip_prefix("## ") {
            Some(rest) => format!("### {rest}\n"),
            None => format!("{l}\n"),
        })
        .collect();
    let head = head.trim_end();
    if head.chars().count() <= MAX_QUOTE_CHARS {
        return head.to_string();
    }
    let cut: String = head.chars().take(MAX_QUOTE_CHARS).collect();
    format!("{cut}\n[quote cut at {MAX_QUOTE_CHARS} characters]")
}
