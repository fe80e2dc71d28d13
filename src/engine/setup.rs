//! What a campaign needs to resume, saved in its run directory, and the status summary of
//! `sota-bot local status`.

use super::paths::{find_run_dirs, RunPaths};
use super::{io_err, CandidateSpec, Engine, EngineCampaign, EngineError};
use crate::campaign::state::Phase;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The campaign and its candidate list, committed with the run directory so `resume` needs
/// nothing else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignInput {
    pub campaign: EngineCampaign,
    pub candidates: Vec<CandidateSpec>,
}

/// The saved input, relative to the run directory.
pub const INPUT_FILE: &str = "humanize/campaign-input.json";

/// Path of the saved input inside the run directory.
pub fn input_path(paths: &RunPaths) -> std::path::PathBuf {
    paths.file(INPUT_FILE)
}

/// Saves the input (pretty JSON).
pub fn save_input(paths: &RunPaths, input: &CampaignInput) -> Result<(), EngineError> {
    let p = input_path(paths);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let text = serde_json::to_string_pretty(input).unwrap_or_default();
    std::fs::write(&p, text).map_err(io_err(&p))
}

/// Loads the saved input.
pub fn load_input(paths: &RunPaths) -> Result<CampaignInput, EngineError> {
    let p = input_path(paths);
    let text = std::fs::read_to_string(&p).map_err(io_err(&p))?;
    serde_json::from_str(&text).map_err(|e| EngineError::Rows {
        path: p.display().to_string(),
        line: e.line(),
        message: e.to_string(),
    })
}

/// The newest campaign run directory in a checkout.
pub fn latest_run(checkout: &Path) -> Result<RunPaths, EngineError> {
    find_run_dirs(checkout).pop().ok_or_else(|| {
        EngineError::Refused(format!(
            "no campaign in {} (no runs/*/humanize/model-loop-checkpoint.md)",
            checkout.display()
        ))
    })
}

/// A human-readable status of the newest campaign in `checkout`.
pub fn status_text(checkout: &Path) -> Result<String, EngineError> {
    let paths = latest_run(checkout)?;
    // Every hint is a command that works as printed.
    let resume = format!(
        "sota-bot local resume {}",
        crate::bench::command::shell_quote(&checkout.display().to_string())
    );
    let s = Engine::load_state(&paths)?;
    let rows = std::fs::read_to_string(paths.candidates())
        .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count())
        .unwrap_or(0);
    let mut out = format!(
        "campaign {} · model {}\nbranch {} · run dir {}\nphase: {:?}\nrows recorded: {rows}\nrounds finished: {}\n",
        s.campaign_id,
        s.model,
        s.branch,
        paths.rel,
        s.phase,
        s.rounds.len()
    );
    if let Some(p) = &s.in_progress {
        out.push_str(&format!(
            "round {} in progress at step {:?}: `{resume}` continues it\n",
            p.round, p.step
        ));
    }
    for r in &s.rounds {
        out.push_str(&format!(
            "  round {}: {} · {} · {} · {}\n",
            r.round,
            r.title,
            if r.accepted { "accepted" } else { "rejected" },
            r.verdict,
            r.decision
        ));
    }
    for e in &s.run_events {
        out.push_str(&format!(
            "{} {}: {}\n",
            e.at,
            e.kind.replace('_', " "),
            e.detail
        ));
    }
    for g in &s.gaps {
        out.push_str(&format!("gap {}: {}\n", g.scenario, g.status.label()));
    }
    match (&s.phase, &s.stop) {
        (Phase::Stopped, Some(stop)) => out.push_str(&format!(
            "stopped after round {}: {} (SOTA reached: {})\n",
            stop.after_round,
            stop.reason,
            if stop.reached_sota { "yes" } else { "no" }
        )),
        _ if s.waiting_for_human => {
            out.push_str(&format!("waiting for a human: `{resume}` continues\n"))
        }
        _ => out.push_str(&format!("next: `{resume}`\n")),
    }
    Ok(out)
}

/// The process lane for a campaign, from the config's lane settings.
pub fn build_lane(
    checkout: &Path,
    config: &super::config::LocalConfig,
    campaign: &EngineCampaign,
) -> super::process_lane::ProcessLane {
    use crate::framework::Framework;
    let fw = |k: &str| Framework::from_alias(k);
    let help_commands = config
        .lane
        .help
        .iter()
        .filter_map(|(k, v)| {
            Some((
                fw(k)?,
                v.iter().map(|(n, c)| (n.clone(), c.clone())).collect(),
            ))
        })
        .collect();
    let profile_commands = config
        .lane
        .profile
        .iter()
        .filter_map(|(k, v)| Some((fw(k)?, v.clone())))
        .collect();
    super::process_lane::ProcessLane::new(super::process_lane::ProcessLaneConfig {
        checkout: checkout.to_path_buf(),
        log_dir: checkout.join(".sota/logs"),
        ready_timeout: std::time::Duration::from_secs(config.lane.ready_timeout_secs),
        bench_timeout: std::time::Duration::from_secs(config.lane.bench_timeout_secs),
        health_paths: vec!["/health".into(), "/v1/models".into()],
        help_commands,
        profile_commands,
        model: campaign.model.clone(),
        tokenizer: campaign
            .tokenizer
            .clone()
            .unwrap_or_else(|| campaign.model.clone()),
        num_prompts: campaign.num_prompts,
        sota_bot: std::env::current_exe().unwrap_or_else(|_| "sota-bot".into()),
    })
}
