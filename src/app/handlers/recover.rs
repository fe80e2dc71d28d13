//! Recovery: the store is rebuilt from the campaign branches after the database was lost.
//! The committed routing record, the PR, the checkpoint and the newest workflow run decide
//! where each campaign stands; a campaign whose next step is unknown waits for
//! `/sota continue` rather than guessing.

use super::dispatch::step_runs;
use super::shared::{branch_text, read_state};
use super::{Ctx, APP_RECORD_FILE};
use crate::app::store::{AppPhase, CampaignRecord, StoreError};
use crate::campaign::state::{CampaignState, Phase};
use crate::github::RepoName;
use crate::server::handler::HandlerError;

/// Rebuilds the records of `fork`'s campaigns. Campaigns already recorded are left alone.
/// Returns the recovered campaign ids and, for branches that could not be read, why.
pub(crate) async fn recover(
    ctx: Ctx<'_>,
    fork: &RepoName,
    installation_id: u64,
) -> Result<(Vec<String>, Vec<String>), HandlerError> {
    let mut recovered = Vec::new();
    let mut skipped = Vec::new();
    for r in ctx.api.list_branches_with_prefix(fork, "sota/").await? {
        let branch = r.git_ref.trim_start_matches("refs/heads/").to_string();
        let mut c = match committed_record(ctx, fork, &branch).await? {
            Ok(c) => c,
            Err(why) => {
                skipped.push(format!("{branch}: {why}"));
                continue;
            }
        };
        if ctx.store.get(&c.id)?.is_some() {
            continue;
        }
        c.installation_id = installation_id;
        c.held = false;
        c.retries = 0;
        if let Some(pr) = ctx
            .api
            .pulls_for_branch(fork, &branch)
            .await?
            .into_iter()
            .next()
        {
            c.pr_number = Some(pr.number);
            c.pr_node_id = Some(pr.node_id);
        }
        let state = read_state(ctx, &c).await?;
        place(ctx, fork, &branch, &mut c, state.as_ref()).await?;
        match ctx.store.insert(&c) {
            Ok(()) => recovered.push(c.id.clone()),
            Err(StoreError::AlreadyActive { model, fork }) => skipped.push(format!(
                "{branch}: another active campaign for {model} on {fork} is recorded"
            )),
            Err(e) => return Err(e.into()),
        }
    }
    Ok((recovered, skipped))
}

/// The routing record committed on `branch`, or why there is none to read.
async fn committed_record(
    ctx: Ctx<'_>,
    fork: &RepoName,
    branch: &str,
) -> Result<Result<CampaignRecord, String>, HandlerError> {
    let Some((date, slug)) = crate::git::parse_campaign_branch(branch) else {
        return Ok(Err("not a campaign branch name".into()));
    };
    let run_dir = crate::engine::RunPaths::for_campaign(std::path::Path::new(""), date, &slug).rel;
    let path = format!("{run_dir}/{APP_RECORD_FILE}");
    let Some(t) = branch_text(ctx.api, fork, &path, branch).await? else {
        return Ok(Err(format!("no {path}")));
    };
    Ok(serde_json::from_str(&t).map_err(|e| format!("{path}: {e}")))
}

/// Where a recovered campaign stands: finished when its checkpoint says so; otherwise in
/// the step a run still going on GitHub is running, or waiting (failed, before the
/// baseline) after the last finished step.
async fn place(
    ctx: Ctx<'_>,
    fork: &RepoName,
    branch: &str,
    c: &mut CampaignRecord,
    state: Option<&CampaignState>,
) -> Result<(), HandlerError> {
    let finished_rounds = state.map(|s| s.rounds.len() as u32).unwrap_or(0);
    let baseline_done = state.is_some_and(|s| s.phase as u8 >= Phase::PlanDone as u8);
    if state.is_some_and(|s| s.phase == Phase::Stopped) {
        c.phase = AppPhase::Finished;
        c.round = finished_rounds;
        return Ok(());
    }
    // A run of the next step still going on GitHub keeps the campaign in that step.
    let next = if baseline_done {
        finished_rounds + 1
    } else {
        0
    };
    let running = step_runs(ctx.api, fork, branch, &c.id, next)
        .await?
        .first()
        .is_some_and(|run| !run.is_completed());
    c.round = if running || !baseline_done {
        next
    } else {
        finished_rounds
    };
    c.phase = match (running, baseline_done) {
        (true, false) => AppPhase::Baseline,
        (true, true) => AppPhase::Round,
        (false, false) => AppPhase::Failed,
        (false, true) => AppPhase::Waiting,
    };
    Ok(())
}
