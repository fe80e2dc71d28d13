//! What the App writes on GitHub, as pure functions of the campaign record and the state
//! committed on the branch: the issue's status comment, the per-round PR report (the
//! branch's report with its SVG chart swapped for a Mermaid block GitHub renders), the
//! check-run summary, and the marking of a superseded report.

use super::store::{AppPhase, CampaignRecord};
use crate::campaign::state::{CampaignState, Phase};
use crate::gate::GateOutcome;
use crate::report::{gap_series, render_gap_mermaid};

/// GitHub's limit on a comment body, in characters.
pub const MAX_COMMENT_CHARS: usize = 65_536;

/// A link to a file on the campaign branch.
pub fn blob_url(c: &CampaignRecord, path: &str) -> String {
    format!("https://github.com/{}/blob/{}/{path}", c.fork, c.branch)
}

/// Cuts `text` to GitHub's comment limit, ending with a link to the full text.
pub fn truncate_for_comment(text: &str, full_url: &str) -> String {
    if text.chars().count() <= MAX_COMMENT_CHARS {
        return text.to_string();
    }
    let note = format!(
        "\n\n---\n_Truncated: this report is longer than a GitHub comment allows. \
         [Full report on the branch]({full_url})._\n"
    );
    // Room for the note and for closing a code fence the cut left open.
    let keep = MAX_COMMENT_CHARS.saturating_sub(note.chars().count() + 4);
    let mut out: String = text.chars().take(keep).collect();
    if out.matches("```").count() % 2 == 1 {
        out.push_str("\n```");
    }
    out.push_str(&note);
    out
}

/// The per-round PR report: the committed `report.md` with its chart image replaced by a
/// Mermaid gap chart (GitHub renders Mermaid in comments, not SVG files from a branch) and
/// a link to the committed SVG, plus links to the run's artifacts.
pub fn round_report_comment(
    c: &CampaignRecord,
    round: u32,
    report_md: &str,
    state: &CampaignState,
    noise_pct: f64,
    workflow_url: Option<&str>,
) -> String {
    let round_dir = format!("{}/rounds/round-{round}", c.run_dir);
    let svg_url = blob_url(c, &format!("{round_dir}/gap-chart.svg"));
    let chart = format!(
        "```mermaid\n{}```\n\n[SVG chart]({svg_url})",
        render_gap_mermaid(&gap_series(state), noise_pct)
    );
    let mut text = String::new();
    let mut replaced = false;
    for line in report_md.lines() {
        if !replaced && line.trim_start().starts_with("![gap over rounds]") {
            text.push_str(&chart);
            replaced = true;
        } else {
            text.push_str(line);
        }
        text.push('\n');
    }
    if !replaced {
        text.push_str("\n### Gap over rounds\n\n");
        text.push_str(&chart);
        text.push('\n');
    }
    text.push_str(&format!(
        "\n[Round {round} on the branch]({}){}\n",
        blob_url(c, &round_dir),
        workflow_url
            .map(|u| format!(" · [workflow run and raw artifacts]({u})"))
            .unwrap_or_default()
    ));
    truncate_for_comment(&text, &blob_url(c, &format!("{round_dir}/report.md")))
}

/// Marks an earlier round report as superseded, keeping its text folded.
pub fn outdated(previous: &str, superseded_by: u32) -> String {
    if previous.contains("<summary>Superseded by round") {
        return previous.to_string();
    }
    let (marker, body) = match previous.split_once('\n') {
        Some((first, rest)) if first.starts_with("<!-- sota-bot:") => (first, rest),
        _ => ("", previous),
    };
    let folded = format!(
        "{marker}\n<details><summary>Superseded by round {superseded_by} (outdated)</summary>\n\n{body}\n</details>\n"
    );
    truncate_for_comment(&folded, "")
}

/// The check run's summary: the contract checks table and the decision.
pub fn check_summary(o: &GateOutcome) -> String {
    let mut s = format!(
        "**{}** · verdict **{}** · decision **{}**: {}\n\n| check | result | detail |\n|---|---|---|\n",
        if o.accepted { "accepted" } else { "rejected" },
        o.verdict,
        o.decision.label(),
        o.reason.replace('\n', " ")
    );
    for c in &o.checks {
        s.push_str(&format!(
            "| `{}` | {} | {} |\n",
            c.id,
            if c.passed { "pass" } else { "FAIL" },
            c.reason.replace('|', "\\|").replace('\n', " ")
        ));
    }
    truncate_for_comment(&s, "")
}

/// A campaign step in messages: `baseline` (round 0) or `round N`.
pub fn step_name(round: u32) -> String {
    if round == 0 {
        "baseline".to_string()
    } else {
        format!("round {round}")
    }
}

fn phase_line(c: &CampaignRecord) -> String {
    let held = if c.held { " (on hold)" } else { "" };
    match c.phase {
        AppPhase::Baseline => format!("running the fixed baseline{held}"),
        AppPhase::Round => format!("running round {}{held}", c.round),
        AppPhase::Waiting => format!(
            "waiting after round {}: comment `/sota continue` to run the next round",
            c.round
        ),
        AppPhase::Failed => format!(
            "the {} workflow failed {} time(s): comment `/sota retry` to run it again",
            step_name(c.round),
            c.retries + 1
        ),
        AppPhase::Finished => "finished".into(),
        AppPhase::Stopped => "stopped by a maintainer".into(),
    }
}

/// The single status comment on the request issue, edited in place.
pub fn status_comment(c: &CampaignRecord, state: Option<&CampaignState>) -> String {
    let mut s = format!(
        "### sota-bot campaign `{}`\n\n| | |\n|---|---|\n| model | `{}` |\n| status | {} |\n| branch | [`{}`](https://github.com/{}/tree/{}) |\n",
        c.id,
        c.model,
        phase_line(c),
        c.branch,
        c.fork,
        c.branch
    );
    if let Some(pr) = c.pr_number {
        s.push_str(&format!("| pull request | {}#{pr} |\n", c.fork));
    }
    if let Some(st) = state {
        s.push_str(&format!("| rounds finished | {} |\n", st.rounds.len()));
        if !st.gaps.is_empty() {
            s.push_str("\n| scenario | gap |\n|---|---|\n");
            for g in &st.gaps {
                s.push_str(&format!("| {} | {} |\n", g.scenario, g.status.label()));
            }
        }
        if let (Phase::Stopped, Some(stop)) = (st.phase, &st.stop) {
            s.push_str(&format!(
                "\nStopped after round {}: {} (SOTA reached: {}).\n",
                stop.after_round,
                stop.reason,
                if stop.reached_sota { "yes" } else { "no" }
            ));
        }
    }
    s.push_str("\nCommands: `/sota status`, `/sota hold`, `/sota resume`, `/sota continue`, `/sota stop`, `/sota retry`.\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_reports_are_cut_to_the_limit_with_a_link() {
        let long = "x".repeat(MAX_COMMENT_CHARS + 10);
        let cut = truncate_for_comment(&long, "https://example.invalid/full");
        assert!(cut.chars().count() <= MAX_COMMENT_CHARS);
        assert!(cut.contains("https://example.invalid/full"));
        let fenced = format!("```\n{}", "y".repeat(MAX_COMMENT_CHARS));
        let cut = truncate_for_comment(&fenced, "u");
        assert!(cut.chars().count() <= MAX_COMMENT_CHARS);
        assert_eq!(cut.matches("```").count() % 2, 0);
        assert_eq!(truncate_for_comment("short", "u"), "short");
    }

    #[test]
    fn outdated_reports_fold_once_and_keep_their_marker() {
        let body = "<!-- sota-bot:round-report campaign=c round=1 -->\n## Round 1\ntext";
        let once = outdated(body, 2);
        assert!(once.starts_with("<!-- sota-bot:round-report campaign=c round=1 -->\n<details>"));
        assert!(once.contains("Superseded by round 2"));
        assert_eq!(outdated(&once, 3), once);
    }
}
