//! A request issue opened or edited (or `/sota start` on it) becomes a campaign: the checks
//! that may decline it, each a step returning a [`Refusal`] (rendered in one place and
//! replied on the request issue), then what `start` writes.

use super::shared::{branch_text, marker, reply, update_status};
use super::start::{create_branch, resume_start};
use super::{Ctx, REPO_CONFIG_PATH, REQUEST_LABEL, RUNNER_CONFIG_PATH};
use crate::app::refusal::Refusal;
use crate::app::render;
use crate::app::store::{AppPhase, CampaignRecord, DispatchSettings, StoreError};
use crate::campaign::issue_form::parse_issue_form;
use crate::campaign::options::Autonomy;
use crate::campaign::repo_config::{parse_repo_config, RepoConfig};
use crate::campaign::resolve::ResolvedCampaign;
use crate::engine::config::LocalConfig;
use crate::engine::setup::CampaignInput;
use crate::engine::wiring::{default_plan_yaml, input_from_resolved, NewCampaignError};
use crate::github::events::{Issue, IssuesAction, IssuesEvent, Repository};
use crate::github::{GitHubApi, GitHubError, RepoName};
use crate::server::handler::HandlerError;

/// A campaign request issue: labelled or titled so, and not a pull request.
pub(crate) fn is_request_issue(issue: &Issue) -> bool {
    (issue.labels.iter().any(|l| l.name == REQUEST_LABEL) || issue.title.starts_with("[sota]"))
        && issue.pull_request.is_none()
}

/// The request issue a campaign starts from: its text and whose text it is.
#[derive(Debug, Clone)]
pub(crate) struct RequestIssue {
    pub repo: RepoName,
    pub number: u64,
    pub body: String,
    pub author: String,
    pub default_branch: String,
    /// Whether the repository is private (`None`: the event did not say).
    pub private: Option<bool>,
}

impl RequestIssue {
    pub fn new(
        repo: RepoName,
        issue: &Issue,
        default_branch: Option<&str>,
        private: Option<bool>,
    ) -> Self {
        RequestIssue {
            repo,
            number: issue.number,
            body: issue.body.clone().unwrap_or_default(),
            author: issue.user.login.clone(),
            default_branch: default_branch.unwrap_or("main").to_string(),
            private,
        }
    }

    fn from_event(repository: &Repository, issue: &Issue) -> Result<Self, HandlerError> {
        Ok(Self::new(
            RepoName::parse(&repository.full_name)?,
            issue,
            repository.default_branch.as_deref(),
            repository.private,
        ))
    }
}

/// Who starts a request, and how: a writer's own edit, or an explicit `/sota start`.
pub(crate) struct Starter<'a> {
    pub login: &'a str,
    pub explicit: bool,
    pub installation_id: u64,
    pub today: chrono::NaiveDate,
}

/// An `issues` event: an opened, edited or reopened request starts its campaign.
pub(crate) async fn on_issue(
    ctx: Ctx<'_>,
    installation_id: u64,
    today: chrono::NaiveDate,
    event: &IssuesEvent,
) -> Result<(), HandlerError> {
    if !is_request_issue(&event.issue) || event.sender.is_bot() {
        return Ok(());
    }
    match event.action {
        IssuesAction::Opened | IssuesAction::Edited | IssuesAction::Reopened => {
            let request = RequestIssue::from_event(&event.repository, &event.issue)?;
            let starter = Starter {
                login: &event.sender.login,
                explicit: false,
                installation_id,
                today,
            };
            start(ctx, &request, &starter).await
        }
        _ => Ok(()),
    }
}

/// Why a start step stopped: a refusal the requester is told about, or a failure of the
/// job (retried or dead-lettered like any other).
enum Stop {
    Refused(Refusal),
    Failed(HandlerError),
}

impl From<Refusal> for Stop {
    fn from(r: Refusal) -> Self {
        Stop::Refused(r)
    }
}

impl From<HandlerError> for Stop {
    fn from(e: HandlerError) -> Self {
        Stop::Failed(e)
    }
}

impl From<GitHubError> for Stop {
    fn from(e: GitHubError) -> Self {
        Stop::Failed(e.into())
    }
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Stop::Failed(e.into())
    }
}

/// Starts the campaign `request` asks for, or replies why not.
pub(crate) async fn start(
    ctx: Ctx<'_>,
    request: &RequestIssue,
    starter: &Starter<'_>,
) -> Result<(), HandlerError> {
    match start_steps(ctx, request, starter).await {
        Ok(()) => Ok(()),
        Err(Stop::Failed(e)) => Err(e),
        Err(Stop::Refused(refusal)) => {
            tracing::info!(repo = %request.repo, issue = request.number, %refusal, "start refused");
            reply(
                ctx.api,
                &request.repo,
                request.number,
                &request_marker(request.number),
                &render::refusal(&refusal),
            )
            .await
        }
    }
}

/// The marker of the App's replies on request issue `issue`.
fn request_marker(issue: u64) -> crate::github::markers::CommentMarker {
    marker("", &format!("request@{issue}"), None)
}

async fn start_steps(
    ctx: Ctx<'_>,
    request: &RequestIssue,
    starter: &Starter<'_>,
) -> Result<(), Stop> {
    if let Some(c) = ctx
        .store
        .by_issue(&request.repo.to_string(), request.number)?
    {
        return already_recorded(ctx, c, starter.explicit).await;
    }
    let api = ctx.api;
    check_starter(api, request, starter).await?;
    let config = repo_config(api, request).await?;
    let resolved = parse_issue_form(&request.body)
        .and_then(|r| r.resolve(&config))
        .map_err(|problems| Refusal::Request {
            problems: problems.iter().map(ToString::to_string).collect(),
        })?;
    let fork = writable_fork(api, &request.repo, &config, starter.login).await?;
    let base = config.base_branch.clone();
    let runner_config = runner_config(api, &fork, &base).await?;
    let plan_yaml = plan_yaml(api, &fork, &base, runner_config.as_ref(), &resolved).await?;
    let sim = runner_config
        .as_ref()
        .filter(|c| c.sim.enabled)
        .map(|c| &c.sim);
    let input =
        input_from_resolved(&resolved, &plan_yaml, sim, starter.today).map_err(|e| match e {
            NewCampaignError::Request(ps) => Refusal::Campaign {
                problems: ps.iter().map(ToString::to_string).collect(),
            },
            other => Refusal::Input(other.to_string()),
        })?;
    let record = new_record(
        request,
        &fork,
        &config,
        &resolved,
        runner_config.is_some(),
        &input,
        starter,
    );
    // Refused before anything is written: one active campaign per model and fork.
    if let Some(other) = ctx
        .store
        .active()?
        .into_iter()
        .find(|c| c.model == record.model && c.fork == record.fork)
    {
        return Err(already_active(&other.model, &other.fork, Some(&other)).into());
    }
    let summary = render::start_summary(
        &input,
        resolved.max_rounds,
        &fork.to_string(),
        &request.author,
        starter.login,
    );
    reply(
        api,
        &request.repo,
        request.number,
        &request_marker(request.number),
        &summary,
    )
    .await?;
    create_branch(api, &fork, &base, &record, &input, &config, starter.today).await?;
    // Recorded once its branch exists: from here on the record and the branch hold
    // everything the rest of the start needs, so a retried job or reconciliation resumes
    // it without the request, and a failure before this point leaves nothing to strand.
    match ctx.store.insert(&record) {
        Ok(()) => {}
        Err(StoreError::AlreadyActive { model, fork }) => {
            let other = ctx
                .store
                .active()?
                .into_iter()
                .find(|c| c.model == model && c.fork == fork);
            return Err(already_active(&model, &fork, other.as_ref()).into());
        }
        // Not recorded: the job fails and its retry starts again from the checks (each
        // step before this one is idempotent), rather than going on with no record.
        Err(other) => return Err(other.into()),
    }
    // The dashboard shows a campaign to anyone only when the repository it runs in is
    // known to be public (a separate fork's visibility is not in this event).
    let public = request.private == Some(false) && record.fork == record.repo;
    ctx.store.set_private(&record.id, !public)?;
    resume_start(ctx, record).await?;
    Ok(())
}

/// A request whose campaign is recorded: a start that stopped part-way goes on; edits no
/// longer change a running campaign.
async fn already_recorded(ctx: Ctx<'_>, c: CampaignRecord, explicit: bool) -> Result<(), Stop> {
    if c.phase == AppPhase::Starting {
        // An earlier attempt stopped part-way (a GitHub error): go on from there.
        return Ok(resume_start(ctx, c).await?);
    }
    if c.phase == AppPhase::Baseline && c.round == 0 {
        // The start's last step, the status comment, may be what failed.
        update_status(ctx.api, &c, None).await?;
    }
    if explicit {
        return Err(Refusal::AlreadyStarted.into());
    }
    Ok(())
}

/// The refusal of a second active campaign for `model` on `fork`.
fn already_active(model: &str, fork: &str, other: Option<&CampaignRecord>) -> Refusal {
    Refusal::AlreadyActive {
        model: model.to_string(),
        fork: fork.to_string(),
        other: other.map(|c| (c.id.clone(), c.repo.clone(), c.issue)),
    }
}

/// Only writers start campaigns. Whose text it is matters as much as who touched it last:
/// a writer editing an outsider's request does not vouch for it, so such a request starts
/// only when a writer says so explicitly (`/sota start`).
async fn check_starter(
    api: &dyn GitHubApi,
    request: &RequestIssue,
    starter: &Starter<'_>,
) -> Result<(), Stop> {
    let repo = &request.repo;
    if !api
        .collaborator_permission(repo, starter.login)
        .await?
        .may_steer()
    {
        return Err(Refusal::NoPermission {
            starter: starter.login.to_string(),
            repo: repo.to_string(),
        }
        .into());
    }
    let author = request.author.as_str();
    if !starter.explicit && !author.eq_ignore_ascii_case(starter.login) {
        let permission = api.collaborator_permission(repo, author).await?;
        if !permission.may_steer() {
            return Err(Refusal::AuthorCannotStart {
                author: author.to_string(),
                repo: repo.to_string(),
                permission,
            }
            .into());
        }
    }
    Ok(())
}

/// The request repository's `.github/sota-bot.yml` (defaults when it has none).
async fn repo_config(api: &dyn GitHubApi, request: &RequestIssue) -> Result<RepoConfig, Stop> {
    let Some(t) = branch_text(
        api,
        &request.repo,
        REPO_CONFIG_PATH,
        &request.default_branch,
    )
    .await?
    else {
        return Ok(RepoConfig::default());
    };
    parse_repo_config(&t).map_err(|problems| {
        Refusal::RepoConfig {
            path: REPO_CONFIG_PATH.to_string(),
            problems: problems.iter().map(ToString::to_string).collect(),
        }
        .into()
    })
}

/// The fork the campaign runs in. The App writes branches, PRs and dispatches there:
/// whoever starts the campaign must be allowed to do that there too, not only on the
/// request repository.
async fn writable_fork(
    api: &dyn GitHubApi,
    repo: &RepoName,
    config: &RepoConfig,
    starter: &str,
) -> Result<RepoName, Stop> {
    let fork = match &config.fork {
        Some(f) => RepoName::parse(f)?,
        None => repo.clone(),
    };
    if fork != *repo {
        let permission = api.collaborator_permission(&fork, starter).await?;
        if !permission.may_steer() {
            return Err(Refusal::ForkNotWritable {
                config_path: REPO_CONFIG_PATH.to_string(),
                fork: fork.to_string(),
                starter: starter.to_string(),
                permission,
            }
            .into());
        }
    }
    Ok(fork)
}

/// The fork's runner config: it decides the lane (simulated or real engines) and may name
/// a bench plan; without one every framework runs at its defaults.
async fn runner_config(
    api: &dyn GitHubApi,
    fork: &RepoName,
    base: &str,
) -> Result<Option<LocalConfig>, Stop> {
    let Some(t) = branch_text(api, fork, RUNNER_CONFIG_PATH, base).await? else {
        return Ok(None);
    };
    LocalConfig::parse(&t, std::path::Path::new(RUNNER_CONFIG_PATH))
        .map(Some)
        .map_err(|e| {
            Refusal::RunnerConfig {
                path: RUNNER_CONFIG_PATH.to_string(),
                fork: fork.to_string(),
                error: e.to_string(),
            }
            .into()
        })
}

/// The bench plan the runner config names, or the default plan for the request.
async fn plan_yaml(
    api: &dyn GitHubApi,
    fork: &RepoName,
    base: &str,
    runner_config: Option<&LocalConfig>,
    resolved: &ResolvedCampaign,
) -> Result<String, Stop> {
    let Some(p) = runner_config.and_then(|c| c.plan.as_ref()) else {
        return Ok(default_plan_yaml(resolved));
    };
    let path = p.to_string_lossy().into_owned();
    match branch_text(api, fork, &path, base).await? {
        Some(t) => Ok(t),
        None => Err(Refusal::PlanMissing {
            plan: path,
            config_path: RUNNER_CONFIG_PATH.to_string(),
            fork: fork.to_string(),
            base: base.to_string(),
        }
        .into()),
    }
}

/// The campaign's routing record as the start writes it.
fn new_record(
    request: &RequestIssue,
    fork: &RepoName,
    config: &RepoConfig,
    resolved: &ResolvedCampaign,
    has_runner_config: bool,
    input: &CampaignInput,
    starter: &Starter<'_>,
) -> CampaignRecord {
    let campaign = &input.campaign;
    let date = starter.today;
    CampaignRecord {
        id: campaign.campaign_id.clone(),
        repo: request.repo.to_string(),
        issue: request.number,
        fork: fork.to_string(),
        model: campaign.model.clone(),
        branch: crate::git::campaign_branch(date, &campaign.model_slug),
        base_branch: config.base_branch.clone(),
        run_dir: crate::engine::RunPaths::for_campaign(
            std::path::Path::new(""),
            date,
            &campaign.model_slug,
        )
        .rel,
        installation_id: starter.installation_id,
        pr_number: None,
        pr_node_id: None,
        phase: AppPhase::Starting,
        round: 0,
        held: false,
        retries: 0,
        dispatch: DispatchSettings {
            runner_labels: resolved.runner_labels.clone(),
            gpu_model: resolved.gpu_model.clone(),
            gpu_count: resolved.gpu_count,
            visible_devices: resolved.visible_devices_csv(),
            runner_config: has_runner_config.then(|| RUNNER_CONFIG_PATH.to_string()),
            max_rounds: resolved.max_rounds,
            wait_for_human: resolved.autonomy == Autonomy::WaitForHuman,
            agent_preset: Some(config.agent.preset.as_str().to_string()),
            agent_command: Some(config.agent.command.clone()).filter(|c| !c.is_empty()),
            agent_model: Some(config.agent.model.clone()).filter(|m| !m.is_empty()),
            agent_max_turns: config.agent.max_turns,
            agent_max_cost_usd: config.budget.max_agent_cost_usd,
            agent_secret_names: config.agent.secret_names.clone(),
            job_timeout_minutes: Some(config.budget.job_timeout_minutes),
            maintainer_note: None,
        },
    }
}
