//! The App's campaign work, one module per event: a request issue starts a campaign
//! (`request`; what a start writes is in `start`), a `/sota` comment steers it
//! (`command`), a finished workflow run reports it and dispatches the next step
//! (`workflow`, with the round report in `round_report`), reconciliation handles
//! completions whose webhook was lost (`reconcile`), and `recover` rebuilds the store from
//! the branches. What several of them do on GitHub (comments by marker, files on the
//! branch, the status comment, dispatches) lives in `shared` and `dispatch`.
//!
//! Every step is idempotent: comments are upserted by marker, the branch and PR are looked
//! up before they are created, and a workflow run attempt is claimed in the store before it
//! is acted on, so a redelivered or reconciled event never dispatches twice.

pub(crate) mod command;
pub(crate) mod dispatch;
pub(crate) mod reconcile;
pub(crate) mod recover;
pub(crate) mod request;
pub(crate) mod round_report;
pub(crate) mod shared;
pub(crate) mod start;
pub(crate) mod workflow;

use super::store::{CampaignStore, StoreError};
use crate::github::GitHubApi;
use crate::server::handler::HandlerError;

/// Label the issue form puts on requests (and the App on campaign issues and PRs).
pub const REQUEST_LABEL: &str = "sota-campaign";
/// Repository config path (on the request repository's default branch).
pub const REPO_CONFIG_PATH: &str = ".github/sota-bot.yml";
/// Runner config path in the fork; when present it is passed to the workflows.
pub const RUNNER_CONFIG_PATH: &str = ".github/sota-bot-runner.yml";
/// Workflow files in the fork (installed by `sota-bot init`).
pub const BASELINE_WORKFLOW: &str = "sota-baseline.yml";
pub const ROUND_WORKFLOW: &str = "sota-round.yml";
/// The App's routing record, committed at campaign start so `sota-bot recover` can rebuild
/// the database from the branches.
pub const APP_RECORD_FILE: &str = "humanize/app-campaign.json";
/// Re-dispatches of a failed or cancelled workflow before the campaign waits for `/sota retry`.
pub const RETRY_BUDGET: u32 = 2;

/// What every handler works with: one installation's GitHub client and the campaign store.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub api: &'a dyn GitHubApi,
    pub store: &'a CampaignStore,
}

impl From<StoreError> for HandlerError {
    fn from(e: StoreError) -> Self {
        HandlerError::Retryable(e.to_string())
    }
}

/// `sota <campaign> baseline` or `sota <campaign> round N` (the workflows' `run-name`).
pub fn parse_run_title(title: &str) -> Option<(String, u32)> {
    let rest = title.strip_prefix("sota ")?;
    if let Some(id) = rest.strip_suffix(" baseline") {
        return Some((id.to_string(), 0));
    }
    let (id, n) = rest.rsplit_once(" round ")?;
    Some((id.to_string(), n.trim().parse().ok()?))
}

/// The title the workflows' `run-name` gives step `round` (0: the baseline) of `campaign`;
/// [`parse_run_title`] reads it back.
pub fn run_title(campaign: &str, round: u32) -> String {
    if round == 0 {
        format!("sota {campaign} baseline")
    } else {
        format!("sota {campaign} round {round}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_titles_name_the_campaign_and_round() {
        for round in [0, 1, 12] {
            assert_eq!(
                parse_run_title(&run_title("c-1", round)),
                Some(("c-1".into(), round))
            );
        }
        assert_eq!(
            parse_run_title("sota 20260101-llama baseline"),
            Some(("20260101-llama".into(), 0))
        );
        assert_eq!(
            parse_run_title("sota 20260101-llama round 12"),
            Some(("20260101-llama".into(), 12))
        );
        assert_eq!(parse_run_title("CI"), None);
        assert_eq!(parse_run_title("sota x round y"), None);
    }
}
