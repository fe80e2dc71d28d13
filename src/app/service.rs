//! The campaign side of the GitHub App as the server sees it: `AppCampaigns` holds the
//! campaign store and hands each event to its handler in `app::handlers` (a request issue,
//! a `/sota` command, a finished workflow run, a closed PR), and runs reconciliation and
//! recovery.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::handlers::{self, Ctx};
use super::store::{AppPhase, CampaignStore};
use crate::github::events::{
    CheckRunEvent, IssuesEvent, PullRequestAction, PullRequestEvent, WorkflowJobEvent,
    WorkflowRunEvent,
};
use crate::github::{GitHubApi, RepoName};
use crate::server::commands::Command;
use crate::server::handler::{
    CampaignService, CommandContext, EventContext, HandlerError, InstallationApis,
};

/// The App's campaign service.
pub struct AppCampaigns {
    store: Arc<CampaignStore>,
    today: fn() -> chrono::NaiveDate,
}

fn utc_today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

impl AppCampaigns {
    pub fn new(store: Arc<CampaignStore>) -> Self {
        Self {
            store,
            today: utc_today,
        }
    }

    /// The same service with a fixed date (tests, reproducible campaign ids).
    pub fn with_date(store: Arc<CampaignStore>, today: fn() -> chrono::NaiveDate) -> Self {
        Self { store, today }
    }

    pub fn store(&self) -> &CampaignStore {
        &self.store
    }

    fn ctx<'a>(&'a self, api: &'a dyn GitHubApi) -> Ctx<'a> {
        Ctx {
            api,
            store: &self.store,
        }
    }

    /// Rebuilds the records of `fork`'s campaigns from their branches (the database was
    /// lost). Returns the recovered campaign ids and, for branches that could not be read,
    /// why.
    pub async fn recover(
        &self,
        api: &dyn GitHubApi,
        fork: &RepoName,
        installation_id: u64,
    ) -> Result<(Vec<String>, Vec<String>), HandlerError> {
        handlers::recover::recover(self.ctx(api), fork, installation_id).await
    }

    /// Compares active campaigns with their workflow runs and handles completions whose
    /// webhook never arrived; returns how many it handled.
    pub async fn reconcile(&self, apis: &dyn InstallationApis) -> Result<u32, HandlerError> {
        handlers::reconcile::reconcile(&self.store, apis).await
    }
}

impl CampaignService for AppCampaigns {
    fn on_issue<'a>(
        &'a self,
        ctx: &'a EventContext,
        event: &'a IssuesEvent,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(handlers::request::on_issue(
            self.ctx(ctx.api.as_ref()),
            ctx.installation_id,
            (self.today)(),
            event,
        ))
    }

    fn on_command<'a>(
        &'a self,
        ctx: &'a CommandContext,
        command: &'a Command,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(handlers::command::on_command(
            self.ctx(ctx.api.as_ref()),
            (self.today)(),
            ctx,
            command,
        ))
    }

    fn on_workflow_run<'a>(
        &'a self,
        ctx: &'a EventContext,
        event: &'a WorkflowRunEvent,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(handlers::workflow::on_workflow_run(
            self.ctx(ctx.api.as_ref()),
            event,
        ))
    }

    fn on_workflow_job<'a>(
        &'a self,
        _ctx: &'a EventContext,
        _event: &'a WorkflowJobEvent,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async { Ok(()) })
    }

    fn on_pull_request<'a>(
        &'a self,
        _ctx: &'a EventContext,
        event: &'a PullRequestEvent,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            // A campaign PR closed without merging stops the campaign.
            if event.action == PullRequestAction::Closed {
                if let Some(mut c) = self
                    .store
                    .by_pull(&event.repository.full_name, event.number)?
                {
                    if c.phase.is_active() {
                        c.phase = AppPhase::Stopped;
                        self.store.update(&c)?;
                    }
                }
            }
            Ok(())
        })
    }

    fn on_check_run<'a>(
        &'a self,
        _ctx: &'a EventContext,
        _event: &'a CheckRunEvent,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async { Ok(()) })
    }

    fn campaigns_by_phase(&self) -> Vec<(String, u64)> {
        self.store.count_by_phase().unwrap_or_default()
    }

    fn reconcile<'a>(
        &'a self,
        apis: &'a dyn InstallationApis,
    ) -> BoxFuture<'a, Result<u32, HandlerError>> {
        Box::pin(AppCampaigns::reconcile(self, apis))
    }
}
