//! Reconciliation: GitHub does not redeliver a lost webhook by itself, so active campaigns
//! are compared with their workflow runs at start-up and periodically. A completion whose
//! webhook never arrived is handled as if it had; a start that gave up part-way goes on.
//! Claimed runs are skipped, so nothing is dispatched twice.

use super::dispatch::step_runs;
use super::start::resume_start;
use super::workflow::run_completed;
use super::Ctx;
use crate::app::store::{AppPhase, CampaignStore};
use crate::github::RepoName;
use crate::server::handler::{HandlerError, InstallationApis};

/// Handles what the active campaigns missed; returns how many campaigns it moved on.
pub(crate) async fn reconcile(
    store: &CampaignStore,
    apis: &dyn InstallationApis,
) -> Result<u32, HandlerError> {
    let mut handled = 0;
    for c in store.active()? {
        let api = apis.for_installation(c.installation_id);
        let ctx = Ctx {
            api: api.as_ref(),
            store,
        };
        if c.phase == AppPhase::Starting {
            // A start whose job gave up part-way.
            resume_start(ctx, c).await?;
            handled += 1;
            continue;
        }
        if !matches!(c.phase, AppPhase::Baseline | AppPhase::Round) {
            continue;
        }
        let fork = RepoName::parse(&c.fork)?;
        // Listed from the step's workflow, filtered to dispatches on the fork's campaign
        // branch; newest first: the latest completed run of the current step.
        let runs = step_runs(ctx.api, &fork, &c.branch, &c.id, c.round).await?;
        let Some(run) = runs.into_iter().find(|r| r.is_completed()) else {
            continue;
        };
        if store.run_handled(run.id, run.attempt())? {
            continue;
        }
        let round = c.round;
        run_completed(ctx, c, &run, round).await?;
        handled += 1;
    }
    Ok(handled)
}
