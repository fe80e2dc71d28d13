//! What the App writes on GitHub, as pure functions of the campaign record and the state
//! committed on the branch: the issue's status comment, the per-round PR report (the
//! branch's report with its SVG chart swapped for a Mermaid block GitHub renders), the
//! check-run summary, the marking of a superseded report, and the reply to a refused start.

use super::refusal::Refusal;
use super::store::{AppPhase, CampaignRecord};
use crate::campaign::state::{CampaignState, Phase};
use crate::gate::GateOutcome;
use crate::report::{gap_series, noise_band, render_gap_mermaid};

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

/// A link to a directory on the campaign branch.
pub fn tree_url(c: &CampaignRecord, path: &str) -> String {
    format!("https://github.com/{}/tree/{}/{path}", c.fork, c.branch)
}

/// `md` with its ATX headings shifted so the highest one is at level `top` (code fences
/// left alone), so a committed report nests under the comment's own heading.
pub fn nest_headings(md: &str, top: usize) -> String {
    let mut fence: Option<&str> = None;
    let level = |line: &str| {
        let hashes = line.chars().take_while(|c| *c == '#').count();
        let rest = &line[hashes..];
        ((1..=6).contains(&hashes) && (rest.is_empty() || rest.starts_with(' '))).then_some(hashes)
    };
    let mut highest = None;
    for line in md.lines() {
        let t = line.trim_start();
        if let Some(f) = fence {
            if t.starts_with(f) {
                fence = None;
            }
            continue;
        }
        if t.starts_with("```") || t.starts_with("~~~") {
            fence = Some(&t[..3]);
            continue;
        }
        if let Some(n) = level(line) {
            highest = Some(highest.map_or(n, |h: usize| h.min(n)));
        }
    }
    let Some(highest) = highest else {
        return md.to_string();
    };
    let mut out = String::with_capacity(md.len() + 16);
    fence = None;
    for line in md.lines() {
        let t = line.trim_start();
        let shifted = if let Some(f) = fence {
            if t.starts_with(f) {
                fence = None;
            }
            None
        } else if t.starts_with("```") || t.starts_with("~~~") {
            fence = Some(&t[..3]);
            None
        } else {
            level(line).map(|n| {
                let to = (n + top).saturating_sub(highest).clamp(1, 6);
                format!("{}{}", "#".repeat(to), &line[n..])
            })
        };
        out.push_str(shifted.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// What the per-round PR report shows besides the committed report.
pub struct RoundComment<'a> {
    pub round: u32,
    pub report_md: &'a str,
    pub state: &'a CampaignState,
    pub workflow_url: Option<&'a str>,
    /// The maintainer's `/sota continue` note the round committed.
    pub maintainer_note: Option<&'a str>,
    /// Which repository paths the report names exist on the branch (only those are linked).
    pub existing: &'a std::collections::BTreeSet<String>,
}

/// Repository paths a committed report names as artifacts (`- `path`` lines).
pub fn artifact_paths(report_md: &str) -> Vec<String> {
    report_md
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- `")?.strip_suffix('`'))
        .filter(|p| !p.is_empty() && !p.starts_with('/') && !p.contains('`'))
        .map(str::to_string)
        .collect()
}

/// The per-round PR report: the committed `report.md` nested under the comment, its chart
/// image replaced by Mermaid gap charts (GitHub renders Mermaid in comments, not SVG files
/// from a branch), the maintainer's note quoted, and artifact paths linked to the files on
/// the branch (those that exist there).
pub fn round_report_comment(c: &CampaignRecord, r: &RoundComment<'_>) -> String {
    let round = r.round;
    let round_dir = format!("{}/rounds/round-{round}", c.run_dir);
    let svg = format!("{round_dir}/gap-chart.svg");
    let mut chart = render_gap_mermaid(&gap_series(r.state), noise_band(r.state));
    if r.existing.contains(&svg) {
        chart.push_str(&format!("[Gap chart (SVG)]({})\n", blob_url(c, &svg)));
    }
    let note = r
        .maintainer_note
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| {
            let quoted: String = n.lines().map(|l| format!("> {l}\n")).collect();
            format!("**Maintainer's note for this round** (from `/sota continue`):\n\n{quoted}\n")
        });
    let mut text = String::new();
    let mut replaced = false;
    let mut note_placed = note.is_none();
    for line in nest_headings(r.report_md, 2).lines() {
        let artifact = line
            .trim()
            .strip_prefix("- `")
            .and_then(|l| l.strip_suffix('`'))
            .filter(|p| r.existing.contains(*p));
        if !replaced && line.trim_start().starts_with("![gap over rounds]") {
            text.push_str(&chart);
            replaced = true;
        } else if let Some(path) = artifact {
            text.push_str(&format!("- [`{path}`]({})", blob_url(c, path)));
        } else {
            text.push_str(line);
        }
        text.push('\n');
        if !note_placed && line.starts_with("## ") {
            text.push('\n');
            text.push_str(note.as_deref().unwrap_or_default());
            note_placed = true;
        }
    }
    if !note_placed {
        text.insert_str(0, note.as_deref().unwrap_or_default());
    }
    if !replaced {
        text.push_str("\n### Gap over rounds\n\n");
        text.push_str(&chart);
    }
    text.push_str(&format!(
        "\n[Round {round} on the branch]({}){}\n",
        tree_url(c, &round_dir),
        r.workflow_url
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

/// A gate warning that a later attempt of the same round answered: kept folded, marked
/// resolved.
pub fn resolved(previous: &str, round: u32) -> String {
    if previous.contains("<summary>Resolved:") {
        return previous.to_string();
    }
    let (marker, body) = match previous.split_once('\n') {
        Some((first, rest)) if first.starts_with("<!-- sota-bot:") => (first, rest),
        _ => ("", previous),
    };
    format!(
        "{marker}\n<details><summary>Resolved: round {round} ran again and the server-side gate confirms its decision</summary>\n\n{body}\n</details>\n"
    )
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

/// Where a campaign stands, in words for its status comment and replies.
pub fn phase_line(c: &CampaignRecord) -> String {
    let held = if c.held {
        " (on hold: it waits after this step; `/sota resume` lifts the hold)"
    } else {
        ""
    };
    let step = if c.round == 0 {
        "the fixed baseline".to_string()
    } else {
        format!("round {}", c.round)
    };
    match c.phase {
        AppPhase::Starting => {
            "starting: creating the pull request and dispatching the fixed baseline".into()
        }
        AppPhase::Baseline => format!("running the fixed baseline{held}"),
        AppPhase::Round => format!("running round {}{held}", c.round),
        AppPhase::Waiting if c.held => format!(
            "on hold after {step}: comment `/sota resume` to run the next round"
        ),
        AppPhase::Waiting => format!(
            "waiting after {step}: comment `/sota continue` (optionally with a note for the agent) to run the next round"
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
    if c.phase.is_active() {
        s.push_str("\nCommands: `/sota status`, `/sota hold`, `/sota resume`, `/sota continue`, `/sota stop`, `/sota retry`.\n");
    }
    s
}

/// The reply on the request issue as its campaign starts: what was understood, and whose
/// request it is.
pub fn start_summary(
    input: &crate::engine::setup::CampaignInput,
    max_rounds: u32,
    fork: &str,
    author: &str,
    starter: &str,
) -> String {
    let campaign = &input.campaign;
    let whose = if author.eq_ignore_ascii_case(starter) {
        format!("Request by @{author}.")
    } else {
        format!("Request text by @{author}, started by @{starter}.")
    };
    format!(
        "Starting campaign `{}` for `{}` on {} ({}). {whose}\n\n| | |\n|---|---|\n| competitors | {} |\n| workload | {} |\n| SLA | {} |\n| candidates | {} |\n| max rounds | {} |\n",
        campaign.campaign_id,
        campaign.model,
        campaign.hardware,
        fork,
        campaign
            .competitors
            .iter()
            .map(|f| f.display_name())
            .collect::<Vec<_>>()
            .join(", "),
        campaign.workload_line(),
        campaign.sla_line(),
        input.candidates.len(),
        max_rounds
    )
}

/// `- problem` lines.
fn bullets(problems: &[String]) -> String {
    problems.iter().map(|p| format!("- {p}\n")).collect()
}

/// The reply on the request issue to a start the App declines.
pub fn refusal(r: &Refusal) -> String {
    match r {
        Refusal::NotARequest => {
            "`/sota start` starts a campaign request issue; this is not one.".into()
        }
        Refusal::AlreadyStarted => {
            "This request already has a campaign; see its status comment.".into()
        }
        Refusal::NoPermission { starter, repo } => format!(
            "@{starter} only people with write, maintain or admin permission on {repo} can start a sota-bot campaign."
        ),
        Refusal::AuthorCannotStart {
            author,
            repo,
            permission,
        } => format!(
            "This request's text is by @{author}, who cannot start campaigns on {repo} \
             (@{author} has {}); I do not start it on my own. A maintainer \
             who has read the text as it stands can start it with `/sota start`.",
            permission.describe()
        ),
        Refusal::RepoConfig { path, problems } => format!(
            "I cannot start: `{path}` has problems:\n\n{}",
            bullets(problems)
        ),
        Refusal::Request { problems } => format!(
            "I cannot start this campaign yet. Please edit the issue to fix:\n\n{}",
            bullets(problems)
        ),
        Refusal::ForkNotWritable {
            config_path,
            fork,
            starter,
            permission,
        } => format!(
            "I cannot start: `{config_path}` names the fork {fork}, where @{starter} \
             has no write, maintain or admin permission (@{starter} has {} there).",
            permission.describe()
        ),
        Refusal::RunnerConfig { path, fork, error } => {
            format!("I cannot start: `{path}` on {fork}: {error}")
        }
        Refusal::PlanMissing {
            plan,
            config_path,
            fork,
            base,
        } => format!(
            "I cannot start: the bench plan `{plan}` named in `{config_path}` is not on {fork}@{base}."
        ),
        Refusal::Campaign { problems } => bullets(problems),
        Refusal::Input(why) => format!("I cannot start: {why}"),
        Refusal::AlreadyActive { model, fork, other } => format!(
            "A campaign for `{model}` is already active on {fork}{}; one campaign per model and fork.",
            other
                .as_ref()
                .map(|(id, repo, issue)| format!(" (`{id}`, from {repo}#{issue})"))
                .unwrap_or_default()
        ),
    }
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
    fn headings_nest_under_the_comment_and_code_is_left_alone() {
        let md = "# Benchmark summary\n\ntext\n\n## Scenario chat\n\n```\n# not a heading\n```\n#hashtag\n";
        assert_eq!(
            nest_headings(md, 3),
            "### Benchmark summary\n\ntext\n\n#### Scenario chat\n\n```\n# not a heading\n```\n#hashtag\n"
        );
        assert_eq!(nest_headings("## a\n### b\n", 2), "## a\n### b\n");
        assert_eq!(nest_headings("no headings", 2), "no headings");
    }

    #[test]
    fn outdated_reports_fold_once_and_keep_their_marker() {
        let body = "<!-- sota-bot:round-report campaign=c round=1 -->\n## Round 1\ntext";
        let once = outdated(body, 2);
        assert!(once.starts_with("<!-- sota-bot:round-report campaign=c round=1 -->\n<details>"));
        assert!(once.contains("Superseded by round 2"));
        assert_eq!(outdated(&once, 3), once);
    }
    fn problems() -> Vec<String> {
        vec![
            "`model` is missing".into(),
            "`gpu_count` must be a number".into(),
        ]
    }

    #[test]
    fn every_refusal_renders_its_own_reply() {
        use crate::github::api::Permission;
        insta::assert_snapshot!(refusal(&Refusal::NotARequest), @"`/sota start` starts a campaign request issue; this is not one.");
        insta::assert_snapshot!(refusal(&Refusal::AlreadyStarted), @"This request already has a campaign; see its status comment.");
        insta::assert_snapshot!(
            refusal(&Refusal::NoPermission { starter: "rd".into(), repo: "o/r".into() }),
            @"@rd only people with write, maintain or admin permission on o/r can start a sota-bot campaign."
        );
        insta::assert_snapshot!(
            refusal(&Refusal::AuthorCannotStart { author: "out".into(), repo: "o/r".into(), permission: Permission::Read }),
            @"This request's text is by @out, who cannot start campaigns on o/r (@out has read access); I do not start it on my own. A maintainer who has read the text as it stands can start it with `/sota start`."
        );
        insta::assert_snapshot!(
            refusal(&Refusal::RepoConfig { path: ".github/sota-bot.yml".into(), problems: problems() }),
            @r"
        I cannot start: `.github/sota-bot.yml` has problems:

        - `model` is missing
        - `gpu_count` must be a number
        "
        );
        insta::assert_snapshot!(
            refusal(&Refusal::Request { problems: problems() }),
            @r"
        I cannot start this campaign yet. Please edit the issue to fix:

        - `model` is missing
        - `gpu_count` must be a number
        "
        );
        insta::assert_snapshot!(
            refusal(&Refusal::ForkNotWritable {
                config_path: ".github/sota-bot.yml".into(),
                fork: "me/sglang".into(),
                starter: "maint".into(),
                permission: Permission::None,
            }),
            @"I cannot start: `.github/sota-bot.yml` names the fork me/sglang, where @maint has no write, maintain or admin permission (@maint has no access there)."
        );
        insta::assert_snapshot!(
            refusal(&Refusal::RunnerConfig {
                path: ".github/sota-bot-runner.yml".into(),
                fork: "me/sglang".into(),
                error: "line 2: unknown key `gpus`".into(),
            }),
            @"I cannot start: `.github/sota-bot-runner.yml` on me/sglang: line 2: unknown key `gpus`"
        );
        insta::assert_snapshot!(
            refusal(&Refusal::PlanMissing {
                plan: "plans/h100.yml".into(),
                config_path: ".github/sota-bot-runner.yml".into(),
                fork: "me/sglang".into(),
                base: "main".into(),
            }),
            @"I cannot start: the bench plan `plans/h100.yml` named in `.github/sota-bot-runner.yml` is not on me/sglang@main."
        );
        insta::assert_snapshot!(
            refusal(&Refusal::Campaign { problems: problems() }),
            @r"
        - `model` is missing
        - `gpu_count` must be a number
        "
        );
        insta::assert_snapshot!(
            refusal(&Refusal::Input("the plan names no candidate".into())),
            @"I cannot start: the plan names no candidate"
        );
        insta::assert_snapshot!(
            refusal(&Refusal::AlreadyActive { model: "m/x".into(), fork: "me/sglang".into(), other: None }),
            @"A campaign for `m/x` is already active on me/sglang; one campaign per model and fork."
        );
        insta::assert_snapshot!(
            refusal(&Refusal::AlreadyActive {
                model: "m/x".into(),
                fork: "me/sglang".into(),
                other: Some(("20260101-x".into(), "o/r".into(), 7)),
            }),
            @"A campaign for `m/x` is already active on me/sglang (`20260101-x`, from o/r#7); one campaign per model and fork."
        );
    }
}
