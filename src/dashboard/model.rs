//! What the dashboard knows about one campaign, as plain data. A source (the App's store or
//! a local run directory) fills a [`CampaignSnapshot`]; the view builders read nothing else.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::campaign::state::CampaignState;

/// Where a campaign stands, as a reader of the dashboard sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The baseline or a round is running.
    Running,
    /// Waiting for a maintainer (`/sota continue`, or `local resume`).
    Waiting,
    /// A maintainer put it on hold.
    Held,
    /// The loop ended with a final report.
    Finished,
    /// A workflow failed past its retries.
    Failed,
    /// A maintainer stopped it (or closed its PR).
    Stopped,
}

impl Status {
    /// Every status, in the order the summary counts them.
    pub const ALL: [Status; 6] = [
        Status::Running,
        Status::Waiting,
        Status::Held,
        Status::Failed,
        Status::Finished,
        Status::Stopped,
    ];

    /// The key used in JSON and CSS classes.
    pub fn key(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Waiting => "waiting",
            Status::Held => "held",
            Status::Finished => "finished",
            Status::Failed => "failed",
            Status::Stopped => "stopped",
        }
    }

    /// Words for the page.
    pub fn label(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Waiting => "waiting for a maintainer",
            Status::Held => "held",
            Status::Finished => "finished",
            Status::Failed => "failed",
            Status::Stopped => "stopped",
        }
    }
}

/// Where a campaign lives, which decides its links and the commands a maintainer uses.
#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    /// A campaign of the GitHub App.
    GitHub {
        /// Web address of the GitHub instance (`https://github.com`).
        web_url: String,
        /// Repository of the request issue.
        repo: String,
        issue: u64,
        /// Repository holding the campaign branch and PR.
        fork: String,
        pr: Option<u64>,
    },
    /// A local campaign in a checkout.
    Local { checkout: PathBuf },
}

/// What a coding agent reported about its own run (absent numbers were not reported).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AgentUsage {
    pub cost_usd: Option<f64>,
    pub turns: Option<u32>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
}

/// GPU and agent spend of one campaign step (0: the baseline, N: round N).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StepUsage {
    pub gpu_minutes: Option<f64>,
    pub agent: Option<AgentUsage>,
}

/// Everything the dashboard shows about one campaign.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignSnapshot {
    pub id: String,
    pub model: String,
    /// The GPU environment in words (`1x H100`).
    pub gpu: String,
    /// Campaigns of private repositories are shown only to token holders.
    pub private: bool,
    pub status: Status,
    /// Why a waiting campaign waits, in words, when the source knows.
    pub waiting_reason: Option<String>,
    /// When the campaign entered its current status.
    pub status_since: Option<DateTime<Utc>>,
    /// When anything about the campaign last changed.
    pub updated_at: Option<DateTime<Utc>>,
    /// The step dispatched or run last (0: the baseline).
    pub step: u32,
    pub max_rounds: u32,
    pub branch: String,
    /// Run directory relative to the repository root.
    pub run_dir: String,
    pub location: Location,
    /// The checkpoint committed on the branch, when one was read (shared: sources keep
    /// parsed checkpoints between page views).
    pub state: Option<Arc<CampaignState>>,
    /// Spend per step.
    pub usage: BTreeMap<u32, StepUsage>,
    /// What the GPU minutes measure, in words (sources measure differently).
    pub gpu_basis: String,
    /// The stable-noise threshold, in percent (the charts' grey band).
    pub noise_pct: f64,
}
