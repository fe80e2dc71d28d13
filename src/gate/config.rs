//! The gate's settings, from the repository config (the App) or the local config.

use serde::{Deserialize, Serialize};

/// Gate settings (from the repository or local config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateConfig {
    /// Default 42 (Humanize).
    pub max_rounds: u32,
    /// Stable-noise threshold in percent (default 1).
    pub noise_threshold_pct: f64,
    /// Pause for `/sota continue` (or `local resume`) after every round.
    pub wait_for_human: bool,
    /// Consecutive STALLED/REGRESSED rounds that require a replan (default 2).
    pub replan_after: u32,
    /// Consecutive STALLED/REGRESSED rounds that stop the loop (default 3).
    pub drift_stop_after: u32,
    /// Directory names of runtime state that must never be tracked.
    pub runtime_state_dirs: Vec<String>,
    /// Agent cost budget of the campaign in USD (stop once spent); none: unlimited.
    #[serde(default)]
    pub max_agent_cost_usd: Option<f64>,
    /// Consecutive failed agent rounds that put the campaign on hold (default 2).
    #[serde(default = "default_agent_hold_after")]
    pub agent_hold_after: u32,
}

fn default_agent_hold_after() -> u32 {
    2
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            max_rounds: 42,
            noise_threshold_pct: 1.0,
            wait_for_human: false,
            replan_after: 2,
            drift_stop_after: 3,
            runtime_state_dirs: vec![".humanize".into(), ".sota".into()],
            max_agent_cost_usd: None,
            agent_hold_after: default_agent_hold_after(),
        }
    }
}
