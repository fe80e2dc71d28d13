//! A campaign workflow run finished (from its webhook or from reconciliation): the run is
//! claimed once, its GPU time recorded, then a failure is retried or reported, a baseline
//! gets its summary, a round its check run and report, and the campaign moves on: the next
//! dispatch, a wait for a maintainer, or the final report.

use super::dispatch::{dispatch, workflow_for};
use super::round_report::report_round;
use super::shared::{branch_text, marker, post_report, read_state, reply, update_status};
use super::{parse_run_title, Ctx, RETRY_BUDGET};
use crate::app::render;
use crate::app::store::{AppPhase, CampaignRecord};
use crate::campaign::state::{CampaignState, Phase};
use crate::github::events::{WorkflowAction, WorkflowRun, WorkflowRunEvent};
use crate::github::RepoName;
use crate::server::handler::HandlerError;

/// A `workflow_run` event: only the completion of the App's own dispatch of a campaign
/// step counts.
pub(crate) async fn on_workflow_run(
    ctx: Ctx<'_>,
    event: &WorkflowRunEvent,
) -> Result<(), HandlerError> {
    if event.action != WorkflowAction::Completed {
        return Ok(());
    }
    let run = &event.workflow_run;
    let Some((id, round)) = run.display_title.as_deref().and_then(parse_run_title) else {
        return Ok(());
    };
    let Some(c) = ctx.store.get(&id)? else {
        return Ok(());
    };
    if c.fork != event.repository.full_name || run.head_branch.as_deref() != Some(c.branch.as_str())
    {
        return Ok(());
    }
    // Title, repository and branch name can all come from a pull request's own
    // workflow: only the App's own dispatch of the step's workflow counts.
    if !run.is_dispatch_of(&c.fork, workflow_for(round)) {
        tracing::warn!(
            campaign = %c.id,
            run = run.id,
            event = run.event.as_deref().unwrap_or(""),
            path = run.path.as_deref().unwrap_or(""),
            head_repository = run.head_repository.as_ref().map(|r| r.full_name.as_str()).unwrap_or(""),
            "ignored a completed run titled like a campaign step: not a dispatch of the campaign workflow on the fork"
        );
        return Ok(());
    }
    run_completed(ctx, c, run, round).await
}

/// Handles a finished campaign workflow run (from a webhook or from reconciliation).
pub(crate) async fn run_completed(
    ctx: Ctx<'_>,
    mut c: CampaignRecord,
    run: &WorkflowRun,
    round: u32,
) -> Result<(), HandlerError> {
    let attempt = run.attempt();
    if !ctx.store.claim_run(run.id, attempt, &c.id)? {
        tracing::info!(campaign = %c.id, run = run.id, "run already handled");
        return Ok(());
    }
    let result = act_on_run(ctx, &mut c, run, round).await;
    if result.is_err() {
        // Let the retried job (or reconciliation) handle it again.
        ctx.store.release_run(run.id, attempt)?;
    }
    result
}

async fn act_on_run(
    ctx: Ctx<'_>,
    c: &mut CampaignRecord,
    run: &WorkflowRun,
    round: u32,
) -> Result<(), HandlerError> {
    // Every completed attempt held a GPU runner, whatever happens next.
    let minutes = crate::app::dashboard::run_gpu_minutes(run, c.dispatch.gpu_count);
    ctx.store
        .record_run_minutes(run.id, run.attempt(), &c.id, round, minutes)?;
    if !c.phase.is_active() || round != c.round {
        tracing::info!(campaign = %c.id, round, current = c.round, "stale run ignored");
        return Ok(());
    }
    let log = run.html_url.clone().unwrap_or_default();
    if !run.succeeded() {
        return run_failed(ctx, c, run, round, &log).await;
    }
    let Some(state) = read_state(ctx, c).await? else {
        return Err(HandlerError::Permanent(format!(
            "{} finished but {} has no checkpoint on {}",
            render::step_name(round),
            c.run_dir,
            c.branch
        )));
    };
    let reviewed = if round == 0 {
        report_baseline(ctx, c, &log).await?;
        true
    } else if !state.rounds.iter().any(|r| r.round == round) {
        report_missing_round(ctx, c, &state, round).await?;
        false
    } else {
        report_round(ctx, c, &state, round, &log).await?
    };
    if !reviewed {
        // Nothing the server-side gate confirms: a maintainer decides what comes next.
        c.phase = AppPhase::Waiting;
        ctx.store.update(c)?;
        return update_status(ctx.api, c, Some(&state)).await;
    }
    next_step(ctx, c, &state).await
}

/// A failed or cancelled step: dispatched again while the retry budget lasts, then the
/// campaign waits for `/sota retry`.
async fn run_failed(
    ctx: Ctx<'_>,
    c: &mut CampaignRecord,
    run: &WorkflowRun,
    round: u32,
    log: &str,
) -> Result<(), HandlerError> {
    let fork = RepoName::parse(&c.fork)?;
    let pr = c.pr_number.unwrap_or(c.issue);
    let phase_name = render::step_name(round);
    let conclusion = run.conclusion.as_ref().map_or("unknown", |c| c.as_str());
    let failure = marker(&c.id, "run-failure", Some(round));
    if c.retries < RETRY_BUDGET {
        c.retries += 1;
        let body = format!(
            "The {phase_name} workflow ended `{conclusion}` ([log]({log})); retrying ({}/{RETRY_BUDGET}).",
            c.retries
        );
        reply(ctx.api, &fork, pr, &failure, &body).await?;
        ctx.store.update(c)?;
        dispatch(ctx, c, round).await?;
    } else {
        c.phase = AppPhase::Failed;
        ctx.store.update(c)?;
        let body = format!(
            "The {phase_name} workflow ended `{conclusion}` ([log]({log})) after {RETRY_BUDGET} retries. Comment `/sota retry` to run it again."
        );
        reply(ctx.api, &fork, pr, &failure, &body).await?;
    }
    update_status(ctx.api, c, None).await
}

/// The fixed baseline's summary, posted on the PR.
async fn report_baseline(ctx: Ctx<'_>, c: &CampaignRecord, log: &str) -> Result<(), HandlerError> {
    let fork = RepoName::parse(&c.fork)?;
    let path = format!("{}/benchmark/summary.md", c.run_dir);
    let summary = branch_text(ctx.api, &fork, &path, &c.branch)
        .await?
        .unwrap_or_else(|| "The baseline committed no summary.".into());
    let body = format!(
        "## Fixed baseline\n\n{}\n\n[Workflow run and raw artifacts]({log})\n",
        render::nest_headings(&summary, 3)
    );
    let pr = c.pr_number.unwrap_or(c.issue);
    let full = render::blob_url(c, &path);
    post_report(
        ctx.api,
        &fork,
        pr,
        &marker(&c.id, "baseline", None),
        &body,
        &full,
    )
    .await
}

/// The workflow succeeded yet the branch records no such round: nothing to review or
/// gate. Said plainly, and folded once a rerun of the round is confirmed.
async fn report_missing_round(
    ctx: Ctx<'_>,
    c: &CampaignRecord,
    state: &CampaignState,
    round: u32,
) -> Result<(), HandlerError> {
    let fork = RepoName::parse(&c.fork)?;
    let pr = c.pr_number.unwrap_or(c.issue);
    let body = format!(
        "Round {round}'s workflow succeeded but committed no round {round} (the checkpoint on `{}` records {} round(s)); nothing was reviewed and no further round is dispatched. Comment `/sota continue` to run round {round} again or `/sota stop` to end the campaign.",
        c.branch,
        state.rounds.len()
    );
    let m = marker(&c.id, "gate-mismatch", Some(round));
    reply(ctx.api, &fork, pr, &m, &body).await
}

/// After a step: finish, wait, or dispatch the next round.
async fn next_step(
    ctx: Ctx<'_>,
    c: &mut CampaignRecord,
    state: &CampaignState,
) -> Result<(), HandlerError> {
    if state.phase == Phase::Stopped {
        return finish(ctx, c, state).await;
    }
    let next = state.next_round();
    if c.held || state.waiting_for_human || (c.dispatch.wait_for_human && next > 1) {
        c.phase = AppPhase::Waiting;
        ctx.store.update(c)?;
    } else {
        dispatch(ctx, c, next).await?;
    }
    update_status(ctx.api, c, Some(state)).await
}

/// The loop ended: the final report on the PR, the PR ready for review (when there is
/// something to review), and the news on the request issue.
async fn finish(
    ctx: Ctx<'_>,
    c: &mut CampaignRecord,
    state: &CampaignState,
) -> Result<(), HandlerError> {
    let api = ctx.api;
    let fork = RepoName::parse(&c.fork)?;
    let pr = c.pr_number.unwrap_or(c.issue);
    let path = format!("{}/final_report.md", c.run_dir);
    let report = branch_text(api, &fork, &path, &c.branch)
        .await?
        .map(|r| render::nest_headings(&r, 2))
        .unwrap_or_else(|| "The campaign committed no final report.".into());
    let full = render::blob_url(c, &path);
    let m = marker(&c.id, "final-report", None);
    post_report(api, &fork, pr, &m, &report, &full).await?;
    // A campaign that could not measure anything has nothing to review.
    let unmeasurable = state.stop.as_ref().is_some_and(|s| s.unmeasurable);
    if let (Some(node), false) = (&c.pr_node_id, unmeasurable) {
        api.mark_ready_for_review(node).await?;
    }
    c.phase = AppPhase::Finished;
    ctx.store.update(c)?;
    let repo = RepoName::parse(&c.repo)?;
    let stop = state
        .stop
        .as_ref()
        .map(|s| s.reason.clone())
        .unwrap_or_else(|| "the loop ended".into());
    let body = if unmeasurable {
        format!(
            "Campaign `{}` stopped after the fixed baseline because it cannot be measured: {stop}. No round was run. The baseline summary on {}#{pr} shows every failed candidate; fix them and open a new request.",
            c.id, c.fork
        )
    } else {
        format!(
            "Campaign `{}` finished: {stop}. The final report is on {}#{pr}, now ready for review.",
            c.id, c.fork
        )
    };
    reply(api, &repo, c.issue, &marker(&c.id, "finished", None), &body).await?;
    update_status(api, c, Some(state)).await
}
