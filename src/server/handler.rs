//! Job handling: the pluggable `JobHandler` port, and `EventRouter`, the App's handler that
//! parses each delivery into a typed event and does the command handling that needs no
//! campaign engine (permission check, reactions, help and refusal replies). Campaign work is
//! delegated to a `CampaignService`, implemented by the campaign integration.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::commands::{self, Command, CommandError, ParsedComment};
use super::queue::Job;
use crate::github::api::{upsert_marked_comment, Reaction};
use crate::github::events::{
    CheckRunEvent, CommentAction, IssueCommentEvent, IssuesEvent, PullRequestEvent, WebhookEvent,
    WorkflowJobEvent, WorkflowRunEvent,
};
use crate::github::markers::CommentMarker;
use crate::github::{GitHubApi, GitHubError, RepoName};

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth another attempt later (GitHub 5xx, rate limit, timeout).
    #[error("retryable: {0}")]
    Retryable(String),
    /// Will never succeed (bad payload, missing installation): dead-letter at once.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl From<GitHubError> for HandlerError {
    fn from(e: GitHubError) -> Self {
        if e.is_transient() || e.status() == Some(401) {
            Self::Retryable(e.to_string())
        } else {
            Self::Permanent(e.to_string())
        }
    }
}

/// Processes one queued delivery. Must be idempotent: a job may run again after a crash.
pub trait JobHandler: Send + Sync {
    fn handle<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), HandlerError>>;
}

/// Creates API clients scoped to an installation.
pub trait InstallationApis: Send + Sync {
    fn for_installation(&self, installation_id: u64) -> Arc<dyn GitHubApi>;
}

/// Where a steering command came from.
#[derive(Clone)]
pub struct CommandContext {
    pub api: Arc<dyn GitHubApi>,
    pub installation_id: u64,
    pub repo: RepoName,
    /// Issue or PR number the comment is on.
    pub issue: u64,
    pub is_pull_request: bool,
    pub comment_id: u64,
    pub sender: String,
    pub delivery_id: String,
    /// The issue the comment is on, as the event carried it (its text now, its author).
    pub issue_details: Option<crate::github::events::Issue>,
    /// The repository's default branch (where its `.github/sota-bot.yml` lives).
    pub default_branch: String,
    /// Whether the repository is private, as the event said (`None`: not said).
    pub repo_private: Option<bool>,
}

/// An installation-scoped event for campaign hooks.
#[derive(Clone)]
pub struct EventContext {
    pub api: Arc<dyn GitHubApi>,
    pub installation_id: u64,
    pub delivery_id: String,
}

/// The campaign engine as seen by the App. Implemented by the integration; every method must
/// be idempotent per delivery id (the queue may redeliver after a crash).
pub trait CampaignService: Send + Sync {
    /// An `issues` event (opened/edited campaign request, closed, labeled...).
    fn on_issue<'a>(
        &'a self,
        ctx: &'a EventContext,
        event: &'a IssuesEvent,
    ) -> BoxFuture<'a, Result<(), HandlerError>>;
    /// An authorized `/sota` command other than `help`.
    fn on_command<'a>(
        &'a self,
        ctx: &'a CommandContext,
        command: &'a Command,
    ) -> BoxFuture<'a, Result<(), HandlerError>>;
    /// A `workflow_run` event (round or baseline finished).
    fn on_workflow_run<'a>(
        &'a self,
        ctx: &'a EventContext,
        event: &'a WorkflowRunEvent,
    ) -> BoxFuture<'a, Result<(), HandlerError>>;
    /// A `workflow_job` event (runner picked up / finished a job).
    fn on_workflow_job<'a>(
        &'a self,
        ctx: &'a EventContext,
        event: &'a WorkflowJobEvent,
    ) -> BoxFuture<'a, Result<(), HandlerError>>;
    /// A `pull_request` event on a campaign PR.
    fn on_pull_request<'a>(
        &'a self,
        ctx: &'a EventContext,
        event: &'a PullRequestEvent,
    ) -> BoxFuture<'a, Result<(), HandlerError>>;
    /// A `check_run` event (re-run or requested action on a gate check).
    fn on_check_run<'a>(
        &'a self,
        ctx: &'a EventContext,
        event: &'a CheckRunEvent,
    ) -> BoxFuture<'a, Result<(), HandlerError>>;
    /// Campaigns per phase, for the `/metrics` gauge.
    fn campaigns_by_phase(&self) -> Vec<(String, u64)>;
    /// Repairs missed webhooks by comparing open campaigns with GitHub; returns how many
    /// completions it handled. Runs at start-up and periodically.
    fn reconcile<'a>(
        &'a self,
        _apis: &'a dyn InstallationApis,
    ) -> BoxFuture<'a, Result<u32, HandlerError>> {
        Box::pin(async { Ok(0) })
    }
}

/// The App's job handler.
pub struct EventRouter {
    apis: Arc<dyn InstallationApis>,
    campaigns: Option<Arc<dyn CampaignService>>,
}

impl EventRouter {
    /// `campaigns: None` runs the App without a campaign engine: commands are still checked
    /// and answered, campaign hooks are logged and skipped.
    pub fn new(
        apis: Arc<dyn InstallationApis>,
        campaigns: Option<Arc<dyn CampaignService>>,
    ) -> Self {
        Self { apis, campaigns }
    }

    fn context(&self, job: &Job, installation: Option<u64>) -> Result<EventContext, HandlerError> {
        let installation_id = installation.ok_or_else(|| {
            HandlerError::Permanent(format!(
                "`{}` delivery has no installation; cannot act on it",
                job.event
            ))
        })?;
        Ok(EventContext {
            api: self.apis.for_installation(installation_id),
            installation_id,
            delivery_id: job.delivery_id.clone(),
        })
    }

    async fn route(&self, job: &Job) -> Result<(), HandlerError> {
        let event = WebhookEvent::parse(&job.event, &job.payload)
            .map_err(|e| HandlerError::Permanent(e.to_string()))?;
        let installation = event.installation_id().or(job.installation_id);
        match &event {
            WebhookEvent::IssueComment(e) => self.on_issue_comment(job, installation, e).await,
            WebhookEvent::Ping(p) => {
                tracing::info!(zen = p.zen.as_deref().unwrap_or(""), "ping");
                Ok(())
            }
            WebhookEvent::Installation(e) => {
                tracing::info!(action = %e.action, installation = e.installation.id, account = %e.installation.account.login, "installation");
                Ok(())
            }
            WebhookEvent::Other { name } => {
                tracing::debug!(event = %name, "event not handled");
                Ok(())
            }
            _ => {
                let Some(campaigns) = self.campaigns.clone() else {
                    tracing::info!(event = %job.event, "no campaign engine connected; event skipped");
                    return Ok(());
                };
                let ctx = self.context(job, installation)?;
                match &event {
                    WebhookEvent::Issues(e) => campaigns.on_issue(&ctx, e).await,
                    WebhookEvent::WorkflowRun(e) => campaigns.on_workflow_run(&ctx, e).await,
                    WebhookEvent::WorkflowJob(e) => campaigns.on_workflow_job(&ctx, e).await,
                    WebhookEvent::PullRequest(e) => campaigns.on_pull_request(&ctx, e).await,
                    WebhookEvent::CheckRun(e) => campaigns.on_check_run(&ctx, e).await,
                    _ => Ok(()),
                }
            }
        }
    }

    async fn on_issue_comment(
        &self,
        job: &Job,
        installation: Option<u64>,
        event: &IssueCommentEvent,
    ) -> Result<(), HandlerError> {
        if event.sender.is_bot() || event.comment.user.is_bot() {
            return Ok(()); // other bots and the App itself never steer
        }
        let body = event.comment.body.as_deref().unwrap_or("");
        let parsed = match event.action {
            CommentAction::Created => commands::parse_comment(body),
            CommentAction::Edited => {
                let old = event
                    .changes
                    .as_ref()
                    .and_then(|c| c.body.as_ref())
                    .and_then(|b| b.from.as_deref())
                    .unwrap_or("");
                commands::added_commands(old, body)
            }
            _ => ParsedComment::default(),
        };
        if parsed.is_empty() {
            return Ok(());
        }
        let ctx = self.context(job, installation)?;
        let repo = RepoName::parse(&event.repository.full_name)?;
        let command_ctx = CommandContext {
            api: ctx.api.clone(),
            installation_id: ctx.installation_id,
            repo: repo.clone(),
            issue: event.issue.number,
            is_pull_request: event.issue.pull_request.is_some(),
            comment_id: event.comment.id,
            sender: event.sender.login.clone(),
            delivery_id: job.delivery_id.clone(),
            issue_details: Some(event.issue.clone()),
            default_branch: event
                .repository
                .default_branch
                .clone()
                .unwrap_or_else(|| "main".into()),
            repo_private: event.repository.private,
        };
        let api = ctx.api.as_ref();
        let permission = api
            .collaborator_permission(&repo, &event.sender.login)
            .await?;
        if !permission.may_steer() {
            tracing::info!(user = %event.sender.login, ?permission, "command refused: insufficient permission");
            api.add_reaction(&repo, event.comment.id, Reaction::Confused)
                .await?;
            let text = format!(
                "@{} only people with write, maintain or admin permission on {repo} can steer sota-bot \
                 (you have {}).",
                event.sender.login,
                permission.describe()
            );
            reply(api, &command_ctx, "refusal", &text).await?;
            return Ok(());
        }
        api.add_reaction(&repo, event.comment.id, Reaction::Eyes)
            .await?;
        if !parsed.errors.is_empty() {
            reply(
                api,
                &command_ctx,
                "command-error",
                &error_text(&parsed.errors),
            )
            .await?;
        }
        for found in &parsed.commands {
            tracing::info!(command = found.command.name(), line = found.line, user = %event.sender.login, "command");
            match (&found.command, &self.campaigns) {
                (Command::Help, _) => {
                    reply(api, &command_ctx, "help", &commands::help_text()).await?
                }
                (command, Some(campaigns)) => campaigns.on_command(&command_ctx, command).await?,
                (command, None) => {
                    let text = format!(
                        "`/sota {}` needs the campaign engine, which is not connected to this sota-bot instance.",
                        command.name()
                    );
                    reply(
                        api,
                        &command_ctx,
                        &format!("unavailable-{}", command.name()),
                        &text,
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }
}

fn error_text(errors: &[CommandError]) -> String {
    let mut text = String::from("I could not read these commands:\n\n");
    for e in errors {
        text.push_str(&format!("- {e}\n"));
    }
    text.push_str("\nSee `/sota help`.");
    text
}

/// Replies once per triggering comment and kind (upsert keyed by a marker), so a retried job
/// edits its earlier reply instead of posting a second one.
async fn reply(
    api: &dyn GitHubApi,
    ctx: &CommandContext,
    kind: &str,
    text: &str,
) -> Result<(), HandlerError> {
    let marker = CommentMarker {
        campaign: String::new(),
        kind: format!("{kind}@{}", ctx.comment_id),
        round: None,
    };
    upsert_marked_comment(api, &ctx.repo, ctx.issue, &marker, text, None).await?;
    Ok(())
}

impl JobHandler for EventRouter {
    fn handle<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(self.route(job))
    }
}
