//! Starting a campaign step on the fork's GPU runners: the workflow inputs a step gets
//! (a pure function of the record), and a dispatch that never starts a step twice.

use std::collections::BTreeMap;

use super::{run_title, Ctx, BASELINE_WORKFLOW, ROUND_WORKFLOW};
use crate::app::store::{AppPhase, CampaignRecord};
use crate::github::api::RunFilter;
use crate::github::events::WorkflowRun;
use crate::github::{GitHubApi, RepoName};
use crate::server::handler::HandlerError;

/// The workflow file that runs step `round` (0: the baseline).
pub(crate) fn workflow_for(round: u32) -> &'static str {
    if round == 0 {
        BASELINE_WORKFLOW
    } else {
        ROUND_WORKFLOW
    }
}

/// Runs of step `round` of the campaign on `fork`'s `branch`, newest first.
pub(crate) async fn step_runs(
    api: &dyn GitHubApi,
    fork: &RepoName,
    branch: &str,
    campaign: &str,
    round: u32,
) -> Result<Vec<WorkflowRun>, HandlerError> {
    let filter = RunFilter {
        branch: Some(branch.to_string()),
        event: Some("workflow_dispatch".into()),
        head_sha: None,
    };
    let title = run_title(campaign, round);
    Ok(api
        .list_workflow_runs(fork, workflow_for(round), &filter)
        .await?
        .into_iter()
        .filter(|r| r.display_title.as_deref() == Some(title.as_str()))
        .collect())
}

/// The `workflow_dispatch` inputs of step `round` (0: the baseline) of campaign `c`.
pub(crate) fn dispatch_inputs(c: &CampaignRecord, round: u32) -> BTreeMap<String, String> {
    let d = &c.dispatch;
    let mut inputs: BTreeMap<String, String> = BTreeMap::new();
    inputs.insert("campaign_id".into(), c.id.clone());
    inputs.insert("run_dir".into(), c.run_dir.clone());
    inputs.insert("branch".into(), c.branch.clone());
    inputs.insert(
        "runner_labels".into(),
        serde_json::to_string(&d.runner_labels).unwrap_or_else(|_| "[]".into()),
    );
    inputs.insert("gpu_model".into(), d.gpu_model.clone());
    inputs.insert("gpu_count".into(), d.gpu_count.to_string());
    if !d.visible_devices.is_empty() {
        inputs.insert("visible_devices".into(), d.visible_devices.clone());
    }
    if let Some(rc) = &d.runner_config {
        inputs.insert("runner_config".into(), rc.clone());
    }
    if let Some(m) = d.job_timeout_minutes {
        inputs.insert("job_timeout_minutes".into(), m.to_string());
        inputs.insert(
            "phase_timeout_minutes".into(),
            m.saturating_sub(30).max(10).to_string(),
        );
    }
    if round > 0 {
        inputs.insert("round".into(), round.to_string());
        if let Some(preset) = &d.agent_preset {
            inputs.insert("agent_preset".into(), preset.clone());
        }
        if let Some(agent) = &d.agent_command {
            inputs.insert("agent_command".into(), agent.clone());
        }
        if let Some(model) = &d.agent_model {
            inputs.insert("agent_model".into(), model.clone());
        }
        if let Some(turns) = d.agent_max_turns {
            inputs.insert("agent_max_turns".into(), turns.to_string());
        }
        if let Some(usd) = d.agent_max_cost_usd {
            inputs.insert("agent_max_cost_usd".into(), usd.to_string());
        }
        if !d.agent_secret_names.is_empty() {
            inputs.insert("agent_secret_names".into(), d.agent_secret_names.join(","));
        }
        if let Some(note) = d.maintainer_note.as_ref().filter(|n| n.round == round) {
            inputs.insert("maintainer_note".into(), note.text.clone());
        }
    }
    inputs
}

/// Dispatches the baseline (`round` 0) or a round, and records it.
pub(crate) async fn dispatch(
    ctx: Ctx<'_>,
    c: &mut CampaignRecord,
    round: u32,
) -> Result<(), HandlerError> {
    let fork = RepoName::parse(&c.fork)?;
    let inputs = dispatch_inputs(c, round);
    // A run of this step already queued or running means an earlier attempt did dispatch
    // (its answer was lost to a 5xx or a timeout): never start the GPUs twice.
    let active = step_runs(ctx.api, &fork, &c.branch, &c.id, round)
        .await?
        .into_iter()
        .find(|r| !r.is_completed());
    if let Some(run) = active {
        tracing::info!(campaign = %c.id, round, run = run.id, "already dispatched; not dispatching again");
    } else {
        let result = ctx
            .api
            .dispatch_workflow(&fork, workflow_for(round), &c.branch, &inputs)
            .await?;
        tracing::info!(campaign = %c.id, round, run_id = ?result.run_id, "dispatched");
    }
    c.phase = if round == 0 {
        AppPhase::Baseline
    } else {
        AppPhase::Round
    };
    if c.round != round {
        c.retries = 0;
    }
    c.round = round;
    ctx.store.update(c)?;
    Ok(())
}
