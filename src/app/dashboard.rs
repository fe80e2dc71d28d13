//! The App's campaigns as dashboard snapshots: the routing record, the status time and
//! spend the store keeps, and the checkpoint last read from the branch. Also the two
//! measurements the App takes for the dashboard as runs complete: GPU minutes from a
//! workflow run's times and the agent's own usage report from the round's committed log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::DateTime;

use super::store::{AppPhase, CampaignStore};
use super::store_views::CampaignView;
use crate::campaign::state::CampaignState;
use crate::dashboard::http::{CampaignSource, SourceError};
use crate::dashboard::model::{CampaignSnapshot, Location, Status};
use crate::github::events::WorkflowRun;

/// What the App's GPU minutes measure.
pub const GPU_BASIS: &str =
    "GPU time: each workflow run's time on its runner (retries included) times the GPU count";

/// Minutes a completed run held its runner, times the GPUs it holds.
pub fn run_gpu_minutes(run: &WorkflowRun, gpu_count: u32) -> Option<f64> {
    let parse = |s: &Option<String>| {
        s.as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    };
    let (start, end) = (parse(&run.run_started_at)?, parse(&run.updated_at)?);
    let secs = (end - start).num_seconds();
    (secs >= 0).then(|| secs as f64 / 60.0 * f64::from(gpu_count.max(1)))
}

pub use crate::dashboard::usage::round_agent_usage;

fn status(v: &CampaignView) -> (Status, Option<String>) {
    let c = &v.record;
    match c.phase {
        AppPhase::Starting => (Status::Running, None),
        AppPhase::Baseline | AppPhase::Round if c.held => (Status::Held, None),
        AppPhase::Baseline | AppPhase::Round => (Status::Running, None),
        AppPhase::Waiting if c.held => (Status::Held, None),
        AppPhase::Waiting => {
            let reason = if v.checkpoint.as_ref().is_some_and(|s| s.waiting_for_human) {
                "the review gate asked for a maintainer"
            } else if c.dispatch.wait_for_human {
                "the campaign waits for a maintainer after every round"
            } else {
                "the server-side gate could not confirm the round's decision"
            };
            (Status::Waiting, Some(reason.to_string()))
        }
        AppPhase::Failed => (Status::Failed, None),
        AppPhase::Finished => (Status::Finished, None),
        AppPhase::Stopped => (Status::Stopped, None),
    }
}

/// A store view as a dashboard snapshot; campaigns of unknown visibility count as private.
pub fn snapshot(v: CampaignView, web_url: &str) -> CampaignSnapshot {
    let (status, waiting_reason) = status(&v);
    let c = v.record;
    let d = &c.dispatch;
    // The band the campaign's own gate used; 1% when no checkpoint has been read yet.
    let noise_pct = v.checkpoint.as_deref().map_or(
        crate::campaign::resolve::DEFAULT_NOISE_THRESHOLD_PCT,
        crate::report::noise_band,
    );
    CampaignSnapshot {
        gpu: format!("{}x {}", d.gpu_count, d.gpu_model.to_uppercase()),
        private: v.private != Some(false),
        status,
        waiting_reason,
        status_since: v.status_since,
        updated_at: v.updated_at,
        step: c.round,
        max_rounds: d.max_rounds,
        branch: c.branch.clone(),
        run_dir: c.run_dir.clone(),
        location: Location::GitHub {
            web_url: web_url.to_string(),
            repo: c.repo.clone(),
            issue: c.issue,
            fork: c.fork.clone(),
            pr: c.pr_number,
        },
        state: v.checkpoint,
        usage: v.usage,
        gpu_basis: GPU_BASIS.into(),
        noise_pct,
        id: c.id,
        model: c.model,
    }
}

/// The App's store as the dashboard's campaign source. Parsed checkpoints are kept between
/// page views and replaced when the App saves a newer one.
pub struct StoreCampaigns {
    store: Arc<CampaignStore>,
    /// Web address of the GitHub instance, for links.
    web_url: String,
    checkpoints: Mutex<HashMap<String, (i64, Arc<CampaignState>)>>,
}

impl StoreCampaigns {
    pub fn new(store: Arc<CampaignStore>, web_url: &str) -> StoreCampaigns {
        StoreCampaigns {
            store,
            web_url: web_url.to_string(),
            checkpoints: Mutex::new(HashMap::new()),
        }
    }
}

impl CampaignSource for StoreCampaigns {
    fn campaigns(&self) -> Result<Vec<CampaignSnapshot>, SourceError> {
        let mut cache = self.checkpoints.lock().unwrap_or_else(|e| e.into_inner());
        let known = |id: &str, version: i64| {
            cache
                .get(id)
                .filter(|(v, _)| *v == version)
                .map(|(_, s)| s.clone())
        };
        let views = self
            .store
            .dashboard_views_reusing(&known)
            .map_err(|e| SourceError(e.to_string()))?;
        for v in &views {
            if let Some(s) = &v.checkpoint {
                cache.insert(v.record.id.clone(), (v.checkpoint_version, s.clone()));
            }
        }
        drop(cache);
        Ok(views
            .into_iter()
            .map(|v| snapshot(v, &self.web_url))
            .collect())
    }

    fn campaign(&self, id: &str) -> Result<Option<CampaignSnapshot>, SourceError> {
        Ok(self
            .store
            .dashboard_view(id)
            .map_err(|e| SourceError(e.to_string()))?
            .map(|v| snapshot(v, &self.web_url)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(start: Option<&str>, end: Option<&str>) -> WorkflowRun {
        serde_json::from_value(serde_json::json!({
            "id": 1, "head_sha": "abc",
            "run_started_at": start, "updated_at": end
        }))
        .unwrap()
    }

    #[test]
    fn gpu_minutes_are_run_time_times_gpus() {
        let r = run(Some("2026-01-01T10:00:00Z"), Some("2026-01-01T10:45:30Z"));
        assert_eq!(run_gpu_minutes(&r, 2), Some(91.0));
        assert_eq!(run_gpu_minutes(&r, 0), Some(45.5));
        assert_eq!(
            run_gpu_minutes(&run(None, Some("2026-01-01T10:00:00Z")), 1),
            None
        );
        assert_eq!(
            run_gpu_minutes(
                &run(Some("2026-01-01T11:00:00Z"), Some("2026-01-01T10:00:00Z")),
                1
            ),
            None
        );
        assert_eq!(
            run_gpu_minutes(&run(Some("yesterday"), Some("now")), 1),
            None
        );
    }
}
