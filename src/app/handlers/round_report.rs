//! A finished round on the PR: the server-side gate re-run on the evidence the round
//! committed, the gate's check run on the round's commit, the round report (linking only
//! the artifacts the branch holds), and the warnings and earlier reports folded.

use std::collections::BTreeSet;

use super::shared::{branch_text, fold_own_comment, marker, post_report, reply};
use super::Ctx;
use crate::app::render;
use crate::app::store::CampaignRecord;
use crate::campaign::state::CampaignState;
use crate::gate::{GateInput, GateOutcome};
use crate::github::api::NewCheckRun;
use crate::github::{GitHubApi, RepoName};
use crate::server::handler::HandlerError;

/// The round's gate as the runner committed it and as the server decides it again.
struct GateCheck {
    /// The decision to report: the server's, or the committed one when the round left no
    /// gate input.
    gate: Option<GateOutcome>,
    /// Whether the server's decision matches the committed one.
    agrees: bool,
    /// Whether the round committed a gate input the server could decide on.
    server_decided: bool,
}

/// Posts the round's check run and report; `false` when the server-side gate does not
/// confirm the committed decision.
pub(crate) async fn report_round(
    ctx: Ctx<'_>,
    c: &CampaignRecord,
    state: &CampaignState,
    round: u32,
    log: &str,
) -> Result<bool, HandlerError> {
    let api = ctx.api;
    let fork = RepoName::parse(&c.fork)?;
    let pr = c.pr_number.unwrap_or(c.issue);
    let dir = format!("{}/rounds/round-{round}", c.run_dir);
    let check = check_gate(ctx, c, &fork, &dir, round).await?;
    post_check_run(api, c, &fork, state, &dir, round, &check).await?;
    let report = branch_text(api, &fork, &format!("{dir}/report.md"), &c.branch)
        .await?
        .unwrap_or_else(|| format!("## Round {round}\n\nThe round committed no report."));
    let note_path = format!("{dir}/{}", crate::engine::round::MAINTAINER_NOTE_FILE);
    let note = branch_text(api, &fork, &note_path, &c.branch).await?;
    let svg = format!("{dir}/gap-chart.svg");
    let wanted: Vec<String> = render::artifact_paths(&report)
        .into_iter()
        .chain([svg])
        .collect();
    let existing = files_on_branch(api, &fork, &c.branch, wanted).await?;
    let body = render::round_report_comment(
        c,
        &render::RoundComment {
            round,
            report_md: &report,
            state,
            workflow_url: Some(log),
            maintainer_note: note.as_deref(),
            existing: &existing,
        },
    );
    let full = render::blob_url(c, &format!("{dir}/report.md"));
    let report_marker = marker(&c.id, "round-report", Some(round));
    post_report(api, &fork, pr, &report_marker, &body, &full).await?;
    let mismatch = marker(&c.id, "gate-mismatch", Some(round));
    if check.agrees {
        // A warning from an earlier attempt of this round no longer holds: fold it.
        fold_own_comment(api, &fork, pr, &mismatch, |old| {
            render::resolved(old, round)
        })
        .await?;
    } else {
        let body = format!(
            "Round {round}: the server-side gate could not confirm the runner's decision, so no further round is dispatched. Review the round and comment `/sota continue` to run the next round or `/sota stop` to end the campaign."
        );
        reply(api, &fork, pr, &mismatch, &body).await?;
    }
    // The previous round's report is folded as outdated.
    if round > 1 {
        let previous = marker(&c.id, "round-report", Some(round - 1));
        fold_own_comment(api, &fork, pr, &previous, |old| {
            render::outdated(old, round)
        })
        .await?;
    }
    Ok(check.agrees)
}

/// The gate runs here too, on the evidence the round committed: the same code as the
/// runner's, so a tampered or stale gate.json cannot steer the campaign. The agent's usage
/// report in that evidence is recorded for the dashboard.
async fn check_gate(
    ctx: Ctx<'_>,
    c: &CampaignRecord,
    fork: &RepoName,
    dir: &str,
    round: u32,
) -> Result<GateCheck, HandlerError> {
    let committed: Option<GateOutcome> =
        branch_text(ctx.api, fork, &format!("{dir}/gate.json"), &c.branch)
            .await?
            .and_then(|t| serde_json::from_str(&t).ok());
    let input: Option<GateInput> =
        branch_text(ctx.api, fork, &format!("{dir}/gate-input.json"), &c.branch)
            .await?
            .and_then(|t| serde_json::from_str(&t).ok());
    if let Some(usage) = input
        .as_ref()
        .and_then(|i| crate::app::dashboard::round_agent_usage(i, round))
    {
        ctx.store.record_agent_usage(&c.id, round, &usage)?;
    }
    let server = input.as_ref().map(GateInput::decide);
    let agrees = match (&server, &committed) {
        (Some(s), Some(r)) => {
            s.accepted == r.accepted && s.verdict == r.verdict && s.decision == r.decision
        }
        _ => false,
    };
    Ok(GateCheck {
        server_decided: server.is_some(),
        gate: server.or(committed),
        agrees,
    })
}

/// The gate's check run on the round's commit, once per round.
async fn post_check_run(
    api: &dyn GitHubApi,
    c: &CampaignRecord,
    fork: &RepoName,
    state: &CampaignState,
    dir: &str,
    round: u32,
    check: &GateCheck,
) -> Result<(), HandlerError> {
    // The round's commit as the branch has it (a replayed push gives it a new id, and the
    // checkpoint records it only with the next commit).
    let commit = match api
        .last_commit_touching(fork, &c.branch, &format!("{dir}/gate.json"))
        .await?
    {
        Some(sha) => Some(sha),
        None => state
            .rounds
            .iter()
            .find(|r| r.round == round)
            .and_then(|r| r.commit.clone()),
    };
    let Some(g) = &check.gate else {
        return Ok(());
    };
    let Some(sha) = commit else {
        tracing::warn!(campaign = %c.id, round, "no commit on the branch wrote the round's gate.json; no check run");
        return Ok(());
    };
    let mut summary = render::check_summary(g);
    if !check.agrees {
        summary = format!(
            "**The server-side gate could not confirm the runner's decision** ({}); the campaign waits for a maintainer.\n\n{summary}",
            if check.server_decided {
                "its answer differs from gate.json"
            } else {
                "the round committed no gate input"
            }
        );
    }
    let ok = g.accepted && check.agrees;
    let name = format!("sota-bot gate · round {round}");
    // A retried job must not add a second check run for the same round.
    if !api.check_runs_named(fork, &sha, &name).await?.is_empty() {
        return Ok(());
    }
    api.create_check_run(
        fork,
        &NewCheckRun {
            name: name.clone(),
            head_sha: sha,
            status: "completed".into(),
            conclusion: Some(if ok { "success" } else { "failure" }.into()),
            title: format!(
                "{} · {} · {}",
                g.verdict,
                g.decision.label(),
                if g.accepted { "accepted" } else { "rejected" }
            ),
            summary,
            details_url: Some(render::blob_url(c, &format!("{dir}/report.md"))),
            external_id: Some(format!("{}:{round}", c.id)),
        },
    )
    .await?;
    Ok(())
}

/// Which of `paths` the branch holds (only those are linked): one listing of the branch
/// head's tree, and a request per file only when GitHub cuts that listing short.
async fn files_on_branch(
    api: &dyn GitHubApi,
    fork: &RepoName,
    branch: &str,
    paths: Vec<String>,
) -> Result<BTreeSet<String>, HandlerError> {
    let listed = match api.get_branch(fork, branch).await? {
        Some(head) => api.tree_file_paths(fork, &head.sha).await?,
        None => Some(BTreeSet::new()),
    };
    if let Some(files) = listed {
        return Ok(paths.into_iter().filter(|p| files.contains(p)).collect());
    }
    let mut existing = BTreeSet::new();
    for path in paths {
        if api.get_file_contents(fork, &path, branch).await?.is_some() {
            existing.insert(path);
        }
    }
    Ok(existing)
}
