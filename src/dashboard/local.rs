//! A local campaign's snapshot, read from its run directory alone (`sota-bot local report`):
//! the checkpoint, the saved campaign input, the lineage, the benchmark rows and each
//! round's agent log tail.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};

use super::model::{CampaignSnapshot, Location, Status, StepUsage};
use super::usage::{agent_usage, round_agent_usage};
use crate::campaign::state::{CampaignState, Phase};
use crate::engine::paths::RunPaths;
use crate::engine::setup::{latest_run, load_input};
use crate::engine::{Engine, EngineError};
use crate::gate::GateInput;

/// What local GPU minutes measure.
pub const LOCAL_GPU_BASIS: &str = "GPU time: the benchmark runs' measured duration times the GPU count (server start-up, profiling and agent time not counted)";

/// GPU count from the engine's hardware text (`2x H100 (simulated)`); 1 when it has none.
pub fn gpu_count(hardware: &str) -> u32 {
    hardware
        .split_once("x ")
        .and_then(|(n, _)| n.trim().parse::<u32>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1)
}

/// Benchmark minutes per round (0: the baseline) from `candidates.jsonl` text, times the
/// GPU count. Rows without a measured duration add nothing; unreadable lines are skipped
/// (the gate reports them; the dashboard only sums).
pub fn benchmark_minutes(candidates_jsonl: &str, gpus: u32) -> BTreeMap<u32, f64> {
    let mut out: BTreeMap<u32, f64> = BTreeMap::new();
    for line in candidates_jsonl.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let round = v
            .get("round")
            .and_then(serde_json::Value::as_u64)
            .and_then(|r| u32::try_from(r).ok())
            .unwrap_or(0);
        let Some(secs) = v
            .pointer("/metrics/duration_s")
            .and_then(serde_json::Value::as_f64)
            .filter(|s| s.is_finite() && *s >= 0.0)
        else {
            continue;
        };
        *out.entry(round).or_insert(0.0) += secs / 60.0 * f64::from(gpus);
    }
    out
}

/// When the last round was recorded, from `lineage.jsonl` text.
pub fn last_recorded(lineage_jsonl: &str) -> Option<DateTime<Utc>> {
    lineage_jsonl
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            v.get("recorded_at")
                .and_then(serde_json::Value::as_str)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        })
        .map(|t| t.with_timezone(&Utc))
        .max()
}

fn status(state: &CampaignState, wait_for_human: bool) -> (Status, Option<String>) {
    if state.phase == Phase::Stopped {
        return (Status::Finished, None);
    }
    if state.in_progress.is_some() || state.phase != Phase::PlanDone {
        return (Status::Running, None);
    }
    let reason = if state.waiting_for_human {
        "the review gate asked for a maintainer"
    } else if wait_for_human {
        "the campaign waits for a maintainer after every round"
    } else {
        "paused between rounds"
    };
    (Status::Waiting, Some(reason.into()))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The snapshot of the newest campaign in `checkout`.
pub fn snapshot(checkout: &Path) -> Result<CampaignSnapshot, EngineError> {
    let paths = latest_run(checkout)?;
    snapshot_of(&paths)
}

/// The snapshot of the campaign in `paths`.
pub fn snapshot_of(paths: &RunPaths) -> Result<CampaignSnapshot, EngineError> {
    let state = Engine::load_state(paths)?;
    let input = load_input(paths)?;
    let campaign = &input.campaign;
    let gpus = gpu_count(&campaign.hardware);
    let mut usage: BTreeMap<u32, StepUsage> = BTreeMap::new();
    for (round, minutes) in benchmark_minutes(&read(&paths.candidates()), gpus) {
        usage.entry(round).or_default().gpu_minutes = Some(minutes);
    }
    for r in &state.rounds {
        let dir = paths.round_dir(r.round);
        // The runner's reading of the agent's whole output first: the log tail cuts long
        // lines, Claude Code's one-line report among them.
        let from_gate = serde_json::from_str::<GateInput>(&read(&dir.join("gate-input.json")))
            .ok()
            .and_then(|input| round_agent_usage(&input, r.round));
        let from_log = || agent_usage(&read(&dir.join("agent-log-tail.txt")));
        if let Some(a) = from_gate.or_else(from_log) {
            usage.entry(r.round).or_default().agent = Some(a);
        }
    }
    let recorded = last_recorded(&read(&paths.lineage()));
    let updated_at = std::fs::metadata(paths.checkpoint())
        .and_then(|m| m.modified())
        .ok()
        .map(DateTime::<Utc>::from);
    let (status, waiting_reason) = status(&state, campaign.wait_for_human);
    let step = state
        .in_progress
        .as_ref()
        .map(|p| p.round)
        .or_else(|| state.rounds.last().map(|r| r.round))
        .unwrap_or(0);
    Ok(CampaignSnapshot {
        id: state.campaign_id.clone(),
        model: state.model.clone(),
        gpu: campaign.hardware.clone(),
        private: false,
        status,
        waiting_reason,
        status_since: recorded,
        updated_at: updated_at.or(recorded),
        step,
        max_rounds: campaign.max_rounds,
        branch: state.branch.clone(),
        run_dir: paths.rel.clone(),
        location: Location::Local {
            checkout: paths.checkout.clone(),
        },
        usage,
        gpu_basis: LOCAL_GPU_BASIS.into(),
        noise_pct: campaign.noise_threshold_pct,
        state: Some(std::sync::Arc::new(state)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_count_reads_the_engine_hardware_text() {
        assert_eq!(gpu_count("2x H100 (simulated)"), 2);
        assert_eq!(gpu_count("8x h200"), 8);
        assert_eq!(gpu_count("H100"), 1);
        assert_eq!(gpu_count("0x H100"), 1);
    }

    #[test]
    fn benchmark_minutes_sum_per_round_and_skip_bad_lines() {
        let rows = "{\"round\":0,\"metrics\":{\"duration_s\":30}}\n\n{\"round\":0,\"metrics\":{\"duration_s\":90}}\nnot json\n{\"round\":2,\"metrics\":{}}\n{\"round\":1,\"metrics\":{\"duration_s\":60}}\n{\"round\":1,\"metrics\":{\"duration_s\":-5}}\n";
        let m = benchmark_minutes(rows, 2);
        assert_eq!(m.get(&0), Some(&4.0));
        assert_eq!(m.get(&1), Some(&2.0));
        assert_eq!(m.get(&2), None);
    }

    #[test]
    fn the_last_lineage_record_is_the_latest_time() {
        let l = "{\"recorded_at\":\"2026-01-02T10:00:00Z\"}\n{\"recorded_at\":\"2026-01-03T09:00:00Z\"}\n{\"recorded_at\":\"bad\"}\n";
        assert_eq!(
            last_recorded(l).map(|t| t.to_rfc3339()),
            Some("2026-01-03T09:00:00+00:00".into())
        );
        assert_eq!(last_recorded(""), None);
    }
}
