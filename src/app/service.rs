//! The campaign side of the GitHub App: a request issue becomes a campaign branch with its
//! run-directory skeleton, a draft PR and a baseline dispatch; each finished campaign
//! workflow becomes a check run, a PR report, an updated status comment and the next
//! dispatch (or a wait, or the final report); maintainers steer with `/sota` commands.
//!
//! Every step is idempotent: comments are upserted by marker, the branch and PR are looked
//! up before they are created, and a workflow run attempt is claimed in the store before it
//! is acted on, so a redelivered or reconciled event never dispatches twice.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;

use super::render;
use super::store::{
    AppPhase, CampaignRecord, CampaignStore, DispatchSettings, RoundNote, StoreError,
};
use crate::campaign::issue_form::parse_issue_form;
use crate::campaign::options::Autonomy;
use crate::campaign::repo_config::{parse_repo_config, RepoConfig};
use crate::campaign::state::{parse_checkpoint, CampaignState, Phase};
use crate::engine::config::LocalConfig;
use crate::engine::wiring::{default_plan_yaml, input_from_resolved, NewCampaignError};
use crate::gate::{GateInput, GateOutcome};
use crate::github::api::{upsert_marked_comment, NewCheckRun, NewPullRequest};
use crate::github::events::{
    CheckRunEvent, IssuesEvent, PullRequestEvent, WorkflowJobEvent, WorkflowRun, WorkflowRunEvent,
};
use crate::github::markers::CommentMarker;
use crate::github::{GitHubApi, RepoName};
use crate::server::commands::Command;
use crate::server::handler::{CampaignService, CommandContext, EventContext, HandlerError};

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

impl From<StoreError> for HandlerError {
    fn from(e: StoreError) -> Self {
        HandlerError::Retryable(e.to_string())
    }
}

/// The App's campaign service.
pub struct AppCampaigns {
    store: Arc<CampaignStore>,
    today: fn() -> chrono::NaiveDate,
}

fn utc_today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

fn marker(campaign: &str, kind: &str, round: Option<u32>) -> CommentMarker {
    CommentMarker {
        campaign: campaign.to_string(),
        kind: kind.to_string(),
        round,
    }
}

fn text(bytes: Option<Vec<u8>>) -> Option<String> {
    bytes.map(|b| String::from_utf8_lossy(&b).into_owned())
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

/// The workflow file that runs step `round` (0: the baseline).
fn workflow_for(round: u32) -> &'static str {
    if round == 0 {
        BASELINE_WORKFLOW
    } else {
        ROUND_WORKFLOW
    }
}

/// Runs of step `round` of the campaign on `fork`'s `branch`, newest first.
async fn step_runs(
    api: &dyn GitHubApi,
    fork: &RepoName,
    branch: &str,
    campaign: &str,
    round: u32,
) -> Result<Vec<crate::github::api::WorkflowRunInfo>, HandlerError> {
    let filter = crate::github::api::RunFilter {
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

/// A campaign request issue: labelled or titled so, and not a pull request.
fn is_request_issue(issue: &crate::github::events::Issue) -> bool {
    (issue.labels.iter().any(|l| l.name == REQUEST_LABEL) || issue.title.starts_with("[sota]"))
        && issue.pull_request.is_none()
}

/// The request issue a campaign starts from: its text and whose text it is.
#[derive(Debug, Clone)]
struct RequestIssue {
    repo: RepoName,
    number: u64,
    body: String,
    author: String,
    default_branch: String,
    /// Whether the repository is private (`None`: the event did not say).
    private: Option<bool>,
}

impl RequestIssue {
    fn from_event(
        repository: &crate::github::events::Repository,
        issue: &crate::github::events::Issue,
    ) -> Result<RequestIssue, HandlerError> {
        Ok(RequestIssue {
            repo: RepoName::parse(&repository.full_name)?,
            number: issue.number,
            body: issue.body.clone().unwrap_or_default(),
            author: issue.user.login.clone(),
            default_branch: repository
                .default_branch
                .clone()
                .unwrap_or_else(|| "main".into()),
            private: repository.private,
        })
    }
}

/// The refusal of a second active campaign for `model` on `fork`.
fn already_active(model: &str, fork: &str, other: Option<&CampaignRecord>) -> String {
    format!(
        "A campaign for `{model}` is already active on {fork}{}; one campaign per model and fork.",
        other
            .map(|c| format!(" (`{}`, from {}#{})", c.id, c.repo, c.issue))
            .unwrap_or_default()
    )
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, HandlerError> {
    serde_json::to_string_pretty(value).map_err(|e| HandlerError::Permanent(e.to_string()))
}

/// The base branch's `.gitignore` with the lines a campaign needs appended when missing.
fn with_campaign_ignores(gitignore: &str) -> String {
    let mut out = gitignore.to_string();
    for line in crate::engine::baseline::GITIGNORE_LINES {
        if !gitignore.lines().any(|l| l.trim() == line) {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Rewrites the App's own comment carrying `marker` on `issue` with `fold` of its text, when
/// there is one and the text changes.
async fn fold_own_comment(
    api: &dyn GitHubApi,
    repo: &RepoName,
    issue: u64,
    marker: &CommentMarker,
    fold: impl Fn(&str) -> String,
) -> Result<(), HandlerError> {
    let comments = api.own_issue_comments(repo, issue).await?;
    let Some(old) = comments
        .iter()
        .find(|m| m.body.as_deref().is_some_and(|b| marker.matches(b)))
    else {
        return Ok(());
    };
    let folded = fold(old.body.as_deref().unwrap_or(""));
    if old.body.as_deref() != Some(folded.as_str()) {
        api.update_issue_comment(repo, old.id, &folded).await?;
    }
    Ok(())
}

fn is_completed(run: &crate::github::api::WorkflowRunInfo) -> bool {
    run.status.as_deref() == Some("completed")
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

    async fn reply(
        api: &dyn GitHubApi,
        repo: &RepoName,
        issue: u64,
        m: &CommentMarker,
        body: &str,
    ) -> Result<(), HandlerError> {
        upsert_marked_comment(api, repo, issue, m, body, None).await?;
        Ok(())
    }

    async fn start_from_issue(
        &self,
        api: &dyn GitHubApi,
        installation_id: u64,
        request: &RequestIssue,
        starter: &str,
        explicit: bool,
    ) -> Result<(), HandlerError> {
        let repo = request.repo.clone();
        let issue = request.number;
        let request_marker = marker("", &format!("request@{issue}"), None);
        if let Some(c) = self.store.by_issue(&repo.to_string(), issue)? {
            if c.phase == AppPhase::Starting {
                // An earlier attempt stopped part-way (a GitHub error): go on from there.
                return self.resume_start(api, c).await;
            }
            if c.phase == AppPhase::Baseline && c.round == 0 {
                // The start's last step, the status comment, may be what failed.
                self.update_status(api, &c, None).await?;
            }
            // Started already: edits no longer change a running campaign.
            if explicit {
                let body = "This request already has a campaign; see its status comment.";
                return Self::reply(api, &repo, issue, &request_marker, body).await;
            }
            return Ok(());
        }
        let permission = api.collaborator_permission(&repo, starter).await?;
        if !permission.may_steer() {
            let body = format!(
                "@{starter} only people with write, maintain or admin permission on {repo} can start a sota-bot campaign."
            );
            return Self::reply(api, &repo, issue, &request_marker, &body).await;
        }
        // Whose text it is matters as much as who touched it last: a writer editing an
        // outsider's request does not vouch for it. Such a request starts only when a writer
        // says so explicitly (`/sota start`).
        let author = request.author.as_str();
        if !explicit && !author.eq_ignore_ascii_case(starter) {
            let author_permission = api.collaborator_permission(&repo, author).await?;
            if !author_permission.may_steer() {
                let body = format!(
                    "This request's text is by @{author}, who cannot start campaigns on {repo} \
                     (@{author} has {}); I do not start it on my own. A maintainer \
                     who has read the text as it stands can start it with `/sota start`.",
                    author_permission.describe()
                );
                return Self::reply(api, &repo, issue, &request_marker, &body).await;
            }
        }
        let default_branch = request.default_branch.clone();
        let config = match text(
            api.get_file_contents(&repo, REPO_CONFIG_PATH, &default_branch)
                .await?,
        ) {
            None => RepoConfig::default(),
            Some(t) => match parse_repo_config(&t) {
                Ok(c) => c,
                Err(problems) => {
                    let mut body =
                        format!("I cannot start: `{REPO_CONFIG_PATH}` has problems:\n\n");
                    for p in problems {
                        body.push_str(&format!("- {p}\n"));
                    }
                    return Self::reply(api, &repo, issue, &request_marker, &body).await;
                }
            },
        };
        let parsed_request = parse_issue_form(&request.body).and_then(|r| r.resolve(&config));
        let resolved = match parsed_request {
            Ok(r) => r,
            Err(problems) => {
                let mut body = String::from(
                    "I cannot start this campaign yet. Please edit the issue to fix:\n\n",
                );
                for p in problems {
                    body.push_str(&format!("- {p}\n"));
                }
                return Self::reply(api, &repo, issue, &request_marker, &body).await;
            }
        };
        let fork = match &config.fork {
            Some(f) => RepoName::parse(f)?,
            None => repo.clone(),
        };
        // The App writes branches, PRs and dispatches in the fork: whoever starts the
        // campaign must be allowed to do that there too, not only on the request repository.
        if fork != repo {
            let on_fork = api.collaborator_permission(&fork, starter).await?;
            if !on_fork.may_steer() {
                let body = format!(
                    "I cannot start: `{REPO_CONFIG_PATH}` names the fork {fork}, where @{starter} \
                     has no write, maintain or admin permission (@{starter} has {} there).",
                    on_fork.describe()
                );
                return Self::reply(api, &repo, issue, &request_marker, &body).await;
            }
        }
        let base = config.base_branch.clone();
        // The fork's runner config decides the lane (simulated or real engines) and may name
        // a bench plan; without one every framework runs at its defaults.
        let runner_config = match text(
            api.get_file_contents(&fork, RUNNER_CONFIG_PATH, &base)
                .await?,
        ) {
            Some(t) => match LocalConfig::parse(&t, std::path::Path::new(RUNNER_CONFIG_PATH)) {
                Ok(c) => Some(c),
                Err(e) => {
                    let body = format!("I cannot start: `{RUNNER_CONFIG_PATH}` on {fork}: {e}");
                    return Self::reply(api, &repo, issue, &request_marker, &body).await;
                }
            },
            None => None,
        };
        let plan_yaml = match runner_config.as_ref().and_then(|c| c.plan.clone()) {
            Some(p) => {
                let path = p.to_string_lossy().into_owned();
                match text(api.get_file_contents(&fork, &path, &base).await?) {
                    Some(t) => t,
                    None => {
                        let body = format!(
                            "I cannot start: the bench plan `{path}` named in `{RUNNER_CONFIG_PATH}` is not on {fork}@{base}."
                        );
                        return Self::reply(api, &repo, issue, &request_marker, &body).await;
                    }
                }
            }
            None => default_plan_yaml(&resolved),
        };
        let date = (self.today)();
        let sim = runner_config
            .as_ref()
            .filter(|c| c.sim.enabled)
            .map(|c| &c.sim);
        let input = match input_from_resolved(&resolved, &plan_yaml, sim, date) {
            Ok(i) => i,
            Err(e) => {
                let body = match e {
                    NewCampaignError::Request(ps) => {
                        ps.iter().map(|p| format!("- {p}\n")).collect::<String>()
                    }
                    other => format!("I cannot start: {other}"),
                };
                return Self::reply(api, &repo, issue, &request_marker, &body).await;
            }
        };
        let campaign = &input.campaign;
        let run_dir = crate::engine::RunPaths::for_campaign(
            std::path::Path::new(""),
            date,
            &campaign.model_slug,
        )
        .rel;
        let branch = crate::git::campaign_branch(date, &campaign.model_slug);
        let record = CampaignRecord {
            id: campaign.campaign_id.clone(),
            repo: repo.to_string(),
            issue,
            fork: fork.to_string(),
            model: campaign.model.clone(),
            branch: branch.clone(),
            base_branch: base.clone(),
            run_dir: run_dir.clone(),
            installation_id,
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
                runner_config: runner_config
                    .as_ref()
                    .map(|_| RUNNER_CONFIG_PATH.to_string()),
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
        };
        // Refused before anything is written: one active campaign per model and fork.
        if let Some(other) = self
            .store
            .active()?
            .into_iter()
            .find(|c| c.model == record.model && c.fork == record.fork)
        {
            let body = already_active(&other.model, &other.fork, Some(&other));
            return Self::reply(api, &repo, issue, &request_marker, &body).await;
        }
        let whose = if author.eq_ignore_ascii_case(starter) {
            format!("Request by @{author}.")
        } else {
            format!("Request text by @{author}, started by @{starter}.")
        };
        let parsed = format!(
            "Starting campaign `{}` for `{}` on {} ({}). {whose}\n\n| | |\n|---|---|\n| competitors | {} |\n| workload | {} |\n| SLA | {} |\n| candidates | {} |\n| max rounds | {} |\n",
            campaign.campaign_id,
            campaign.model,
            campaign.hardware,
            fork,
            campaign
                .competitors
                .iter()
                .map(|f| f.display_name())
                .collect::<Vec<_>>()
                .join(", "),
            campaign.workload_line(),
            campaign.sla_line(),
            input.candidates.len(),
            resolved.max_rounds
        );
        Self::reply(api, &repo, issue, &request_marker, &parsed).await?;

        // The branch with the run-directory skeleton, in one commit on the base branch.
        if api.get_branch(&fork, &branch).await?.is_none() {
            let Some(base_head) = api.get_branch(&fork, &base).await? else {
                return Err(HandlerError::Permanent(format!(
                    "base branch {base} does not exist on {fork}"
                )));
            };
            let gitignore =
                text(api.get_file_contents(&fork, ".gitignore", &base).await?).unwrap_or_default();
            let mut files = vec![
                (
                    format!("{run_dir}/manifest.md"),
                    campaign.manifest_md.clone(),
                ),
                (
                    format!("{run_dir}/{}", crate::engine::setup::INPUT_FILE),
                    to_json(&input)?,
                ),
                (".gitignore".to_string(), with_campaign_ignores(&gitignore)),
                (format!("{run_dir}/{APP_RECORD_FILE}"), to_json(&record)?),
            ];
            // Phase 0.5's upstream half: the family's open and recently merged PRs, searched
            // with the installation token and committed for the runner (a failed search is
            // a blocker in the notes, not a failed start).
            let upstream_prs = match RepoName::parse(&config.upstream) {
                Ok(up) => {
                    let family = crate::history::family_from_model_id(&campaign.model);
                    crate::history::upstream::fetch(api, &up, &family, date).await
                }
                Err(e) => crate::history::upstream::UpstreamPrs {
                    repo: config.upstream.clone(),
                    blockers: vec![e.to_string()],
                    ..Default::default()
                },
            };
            files.push((
                format!("{run_dir}/{}", crate::history::upstream::UPSTREAM_FILE),
                to_json(&upstream_prs)?,
            ));
            let base_tree = api.get_commit_tree(&fork, &base_head.sha).await?;
            let tree = api.create_tree(&fork, &base_tree, &files).await?;
            let commit = api
                .create_commit(
                    &fork,
                    &format!("sota: start campaign {} ({})", record.id, record.model),
                    &tree,
                    std::slice::from_ref(&base_head.sha),
                )
                .await?;
            api.create_ref(&fork, &format!("refs/heads/{branch}"), &commit)
                .await?;
        }
        // Recorded once its branch exists: from here on the record and the branch hold
        // everything the rest of the start needs, so a retried job or reconciliation resumes
        // it without the request, and a failure before this point leaves nothing to strand.
        if let Err(StoreError::AlreadyActive { model, fork }) = self.store.insert(&record) {
            let other = self
                .store
                .active()?
                .into_iter()
                .find(|c| c.model == model && c.fork == fork);
            let body = already_active(&model, &fork, other.as_ref());
            return Self::reply(api, &repo, issue, &request_marker, &body).await;
        }
        // The dashboard shows a campaign to anyone only when the repository it runs in is
        // known to be public (a separate fork's visibility is not in this event).
        let public = request.private == Some(false) && record.fork == record.repo;
        self.store.set_private(&record.id, !public)?;
        self.resume_start(api, record).await
    }

    /// The steps of a start after its branch: the draft PR, the labels, the baseline
    /// dispatch and the status comment. Each step first looks for what an earlier attempt
    /// did (a PR whose answer was lost is found, a dispatched baseline is not dispatched
    /// again), so a retried job or reconciliation picks up at the first step not done.
    async fn resume_start(
        &self,
        api: &dyn GitHubApi,
        mut record: CampaignRecord,
    ) -> Result<(), HandlerError> {
        let fork = RepoName::parse(&record.fork)?;
        let repo = RepoName::parse(&record.repo)?;
        if record.pr_number.is_none() {
            // An open PR of the branch is this start's (its answer was lost); a closed one
            // belongs to an earlier campaign.
            let found = api
                .pulls_for_branch(&fork, &record.branch)
                .await?
                .into_iter()
                .find(|pr| pr.state.as_deref() != Some("closed"));
            let pr = match found {
                Some(pr) => pr,
                None => {
                    let input_path =
                        format!("{}/{}", record.run_dir, crate::engine::setup::INPUT_FILE);
                    let hardware = text(
                        api.get_file_contents(&fork, &input_path, &record.branch)
                            .await?,
                    )
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                    .and_then(|v| v["campaign"]["hardware"].as_str().map(str::to_string))
                    .unwrap_or_else(|| {
                        format!(
                            "{}x {}",
                            record.dispatch.gpu_count, record.dispatch.gpu_model
                        )
                    });
                    api.create_pull_request(
                        &fork,
                        &NewPullRequest {
                            title: format!("sota: {} on {hardware}", record.model),
                            head: record.branch.clone(),
                            base: record.base_branch.clone(),
                            body: format!(
                                "Campaign `{}` requested in {repo}#{}.\n\nEach round is one commit with its benchmark and profile artifacts; sota-bot posts a report per round here.",
                                record.id, record.issue
                            ),
                            draft: true,
                        },
                    )
                    .await?
                }
            };
            record.pr_number = Some(pr.number);
            record.pr_node_id = Some(pr.node_id.clone());
            self.store.update(&record)?;
        }
        let labels = vec![REQUEST_LABEL.to_string()];
        api.add_labels(&repo, record.issue, &labels).await?;
        if let Some(pr) = record.pr_number {
            api.add_labels(&fork, pr, &labels).await?;
        }
        self.dispatch(api, &mut record, 0).await?;
        self.update_status(api, &record, None).await
    }

    /// Dispatches the baseline (`round` 0) or a round, and records it.
    async fn dispatch(
        &self,
        api: &dyn GitHubApi,
        c: &mut CampaignRecord,
        round: u32,
    ) -> Result<(), HandlerError> {
        let fork = RepoName::parse(&c.fork)?;
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
        let workflow = workflow_for(round);
        // A run of this step already queued or running means an earlier attempt did dispatch
        // (its answer was lost to a 5xx or a timeout): never start the GPUs twice.
        let active = step_runs(api, &fork, &c.branch, &c.id, round)
            .await?
            .into_iter()
            .find(|r| !is_completed(r));
        if let Some(run) = active {
            tracing::info!(campaign = %c.id, round, run = run.id, "already dispatched; not dispatching again");
        } else {
            let result = api
                .dispatch_workflow(&fork, workflow, &c.branch, &inputs)
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
        self.store.update(c)?;
        Ok(())
    }

    async fn read_state(
        &self,
        api: &dyn GitHubApi,
        c: &CampaignRecord,
    ) -> Result<Option<CampaignState>, HandlerError> {
        let fork = RepoName::parse(&c.fork)?;
        let path = format!("{}/humanize/model-loop-checkpoint.md", c.run_dir);
        let Some(t) = text(api.get_file_contents(&fork, &path, &c.branch).await?) else {
            return Ok(None);
        };
        let state = parse_checkpoint(&t)
            .map_err(|e| HandlerError::Permanent(format!("{path} on {}: {e}", c.branch)))?;
        self.store.save_checkpoint(&c.id, &state)?;
        Ok(Some(state))
    }

    async fn update_status(
        &self,
        api: &dyn GitHubApi,
        c: &CampaignRecord,
        state: Option<&CampaignState>,
    ) -> Result<(), HandlerError> {
        let repo = RepoName::parse(&c.repo)?;
        let body = render::status_comment(c, state);
        Self::reply(api, &repo, c.issue, &marker(&c.id, "status", None), &body).await
    }

    /// Handles a finished campaign workflow run (from a webhook or from reconciliation).
    pub async fn run_completed(
        &self,
        api: &dyn GitHubApi,
        mut c: CampaignRecord,
        run: &WorkflowRun,
        round: u32,
    ) -> Result<(), HandlerError> {
        let attempt = run.run_attempt.unwrap_or(1);
        if !self.store.claim_run(run.id, attempt, &c.id)? {
            tracing::info!(campaign = %c.id, run = run.id, "run already handled");
            return Ok(());
        }
        let result = self.act_on_run(api, &mut c, run, round).await;
        if result.is_err() {
            // Let the retried job (or reconciliation) handle it again.
            self.store.release_run(run.id, attempt)?;
        }
        result
    }

    async fn act_on_run(
        &self,
        api: &dyn GitHubApi,
        c: &mut CampaignRecord,
        run: &WorkflowRun,
        round: u32,
    ) -> Result<(), HandlerError> {
        // Every completed attempt held a GPU runner, whatever happens next.
        let minutes = super::dashboard::run_gpu_minutes(run, c.dispatch.gpu_count);
        let attempt = run.run_attempt.unwrap_or(1);
        self.store
            .record_run_minutes(run.id, attempt, &c.id, round, minutes)?;
        if !c.phase.is_active() || round != c.round {
            tracing::info!(campaign = %c.id, round, current = c.round, "stale run ignored");
            return Ok(());
        }
        let fork = RepoName::parse(&c.fork)?;
        let phase_name = render::step_name(round);
        let conclusion = run.conclusion.as_deref().unwrap_or("unknown");
        let log = run.html_url.clone().unwrap_or_default();
        if conclusion != "success" {
            let pr = c.pr_number.unwrap_or(c.issue);
            if c.retries < RETRY_BUDGET {
                c.retries += 1;
                let body = format!(
                    "The {phase_name} workflow ended `{conclusion}` ([log]({log})); retrying ({}/{RETRY_BUDGET}).",
                    c.retries
                );
                Self::reply(
                    api,
                    &fork,
                    pr,
                    &marker(&c.id, "run-failure", Some(round)),
                    &body,
                )
                .await?;
                self.store.update(c)?;
                self.dispatch(api, c, round).await?;
            } else {
                c.phase = AppPhase::Failed;
                self.store.update(c)?;
                let body = format!(
                    "The {phase_name} workflow ended `{conclusion}` ([log]({log})) after {RETRY_BUDGET} retries. Comment `/sota retry` to run it again."
                );
                Self::reply(
                    api,
                    &fork,
                    pr,
                    &marker(&c.id, "run-failure", Some(round)),
                    &body,
                )
                .await?;
            }
            return self.update_status(api, c, None).await;
        }
        let Some(state) = self.read_state(api, c).await? else {
            return Err(HandlerError::Permanent(format!(
                "{} finished but {} has no checkpoint on {}",
                phase_name, c.run_dir, c.branch
            )));
        };
        let pr = c.pr_number.unwrap_or(c.issue);
        if round == 0 {
            let summary = text(
                api.get_file_contents(
                    &fork,
                    &format!("{}/benchmark/summary.md", c.run_dir),
                    &c.branch,
                )
                .await?,
            )
            .unwrap_or_else(|| "The baseline committed no summary.".into());
            let body = format!(
                "## Fixed baseline\n\n{}\n\n[Workflow run and raw artifacts]({log})\n",
                render::nest_headings(&summary, 3)
            );
            let full = render::blob_url(c, &format!("{}/benchmark/summary.md", c.run_dir));
            upsert_marked_comment(
                api,
                &fork,
                pr,
                &marker(&c.id, "baseline", None),
                &body,
                Some(&full),
            )
            .await?;
        } else if !state.rounds.iter().any(|r| r.round == round) {
            // The workflow succeeded yet the branch records no such round: nothing to
            // review or gate. Said plainly, and folded once a rerun of the round is confirmed.
            let body = format!(
                "Round {round}'s workflow succeeded but committed no round {round} (the checkpoint on `{}` records {} round(s)); nothing was reviewed and no further round is dispatched. Comment `/sota continue` to run round {round} again or `/sota stop` to end the campaign.",
                c.branch,
                state.rounds.len()
            );
            upsert_marked_comment(
                api,
                &fork,
                pr,
                &marker(&c.id, "gate-mismatch", Some(round)),
                &body,
                None,
            )
            .await?;
            c.phase = AppPhase::Waiting;
            self.store.update(c)?;
            return self.update_status(api, c, Some(&state)).await;
        } else if !self.report_round(api, c, &state, round, &log).await? {
            c.phase = AppPhase::Waiting;
            self.store.update(c)?;
            return self.update_status(api, c, Some(&state)).await;
        }
        self.next_step(api, c, &state).await
    }

    /// Posts the round's check run and report; `false` when the server-side gate does not
    /// confirm the committed decision.
    async fn report_round(
        &self,
        api: &dyn GitHubApi,
        c: &CampaignRecord,
        state: &CampaignState,
        round: u32,
        log: &str,
    ) -> Result<bool, HandlerError> {
        let fork = RepoName::parse(&c.fork)?;
        let pr = c.pr_number.unwrap_or(c.issue);
        let dir = format!("{}/rounds/round-{round}", c.run_dir);
        let committed: Option<GateOutcome> = text(
            api.get_file_contents(&fork, &format!("{dir}/gate.json"), &c.branch)
                .await?,
        )
        .and_then(|t| serde_json::from_str(&t).ok());
        // The gate runs here too, on the evidence the round committed: the same code as the
        // runner's, so a tampered or stale gate.json cannot steer the campaign.
        let input: Option<GateInput> = text(
            api.get_file_contents(&fork, &format!("{dir}/gate-input.json"), &c.branch)
                .await?,
        )
        .and_then(|t| serde_json::from_str(&t).ok());
        if let Some(usage) = input
            .as_ref()
            .and_then(|i| super::dashboard::round_agent_usage(i, round))
        {
            self.store.record_agent_usage(&c.id, round, &usage)?;
        }
        let server = input.as_ref().map(GateInput::decide);
        let agrees = match (&server, &committed) {
            (Some(s), Some(r)) => {
                s.accepted == r.accepted && s.verdict == r.verdict && s.decision == r.decision
            }
            _ => false,
        };
        let gate = server.clone().or(committed.clone());
        // The round's commit as the branch has it (a replayed push gives it a new id, and the
        // checkpoint records it only with the next commit).
        let commit = match api
            .last_commit_touching(&fork, &c.branch, &format!("{dir}/gate.json"))
            .await?
        {
            Some(sha) => Some(sha),
            None => state
                .rounds
                .iter()
                .find(|r| r.round == round)
                .and_then(|r| r.commit.clone()),
        };
        if gate.is_some() && commit.is_none() {
            tracing::warn!(campaign = %c.id, round, "no commit on the branch wrote the round's gate.json; no check run");
        }
        if let (Some(g), Some(sha)) = (&gate, &commit) {
            let mut summary = render::check_summary(g);
            if !agrees {
                summary = format!(
                    "**The server-side gate could not confirm the runner's decision** ({}); the campaign waits for a maintainer.\n\n{summary}",
                    if server.is_none() {
                        "the round committed no gate input"
                    } else {
                        "its answer differs from gate.json"
                    }
                );
            }
            let ok = g.accepted && agrees;
            let name = format!("sota-bot gate · round {round}");
            // A retried job must not add a second check run for the same round.
            if api.check_runs_named(&fork, sha, &name).await?.is_empty() {
                api.create_check_run(
                    &fork,
                    &NewCheckRun {
                        name: name.clone(),
                        head_sha: sha.clone(),
                        status: "completed".into(),
                        conclusion: Some(if ok { "success" } else { "failure" }.into()),
                        title: format!(
                            "{} · {} · {}",
                            g.verdict,
                            g.decision.label(),
                            if g.accepted { "accepted" } else { "rejected" }
                        ),
                        summary,
                        details_url: Some(render::blob_url(c, &format!("{dir}/report.md"))),
                        external_id: Some(format!("{}:{round}", c.id)),
                    },
                )
                .await?;
            }
        }
        let report = text(
            api.get_file_contents(&fork, &format!("{dir}/report.md"), &c.branch)
                .await?,
        )
        .unwrap_or_else(|| format!("## Round {round}\n\nThe round committed no report."));
        let note_path = format!("{dir}/{}", crate::engine::round::MAINTAINER_NOTE_FILE);
        let note = text(api.get_file_contents(&fork, &note_path, &c.branch).await?);
        // Only files the branch holds are linked.
        let mut existing = std::collections::BTreeSet::new();
        let svg = format!("{dir}/gap-chart.svg");
        for path in render::artifact_paths(&report).into_iter().chain([svg]) {
            if api
                .get_file_contents(&fork, &path, &c.branch)
                .await?
                .is_some()
            {
                existing.insert(path);
            }
        }
        let body = render::round_report_comment(
            c,
            &render::RoundComment {
                round,
                report_md: &report,
                state,
                noise_pct: 1.0,
                workflow_url: Some(log),
                maintainer_note: note.as_deref(),
                existing: &existing,
            },
        );
        let full = render::blob_url(c, &format!("{dir}/report.md"));
        upsert_marked_comment(
            api,
            &fork,
            pr,
            &marker(&c.id, "round-report", Some(round)),
            &body,
            Some(&full),
        )
        .await?;
        let mismatch = marker(&c.id, "gate-mismatch", Some(round));
        if agrees {
            // A warning from an earlier attempt of this round no longer holds: fold it.
            fold_own_comment(api, &fork, pr, &mismatch, |old| {
                render::resolved(old, round)
            })
            .await?;
        } else {
            let body = format!(
                "Round {round}: the server-side gate could not confirm the runner's decision, so no further round is dispatched. Review the round and comment `/sota continue` to run the next round or `/sota stop` to end the campaign."
            );
            upsert_marked_comment(api, &fork, pr, &mismatch, &body, None).await?;
        }
        // The previous round's report is folded as outdated.
        if round > 1 {
            let previous = marker(&c.id, "round-report", Some(round - 1));
            fold_own_comment(api, &fork, pr, &previous, |old| {
                render::outdated(old, round)
            })
            .await?;
        }
        Ok(agrees)
    }

    /// After a phase: finish, wait, or dispatch the next round.
    async fn next_step(
        &self,
        api: &dyn GitHubApi,
        c: &mut CampaignRecord,
        state: &CampaignState,
    ) -> Result<(), HandlerError> {
        if state.phase == Phase::Stopped {
            return self.finish(api, c, state).await;
        }
        let next = state.next_round();
        if c.held || state.waiting_for_human || (c.dispatch.wait_for_human && next > 1) {
            c.phase = AppPhase::Waiting;
            self.store.update(c)?;
        } else {
            self.dispatch(api, c, next).await?;
        }
        self.update_status(api, c, Some(state)).await
    }

    async fn finish(
        &self,
        api: &dyn GitHubApi,
        c: &mut CampaignRecord,
        state: &CampaignState,
    ) -> Result<(), HandlerError> {
        let fork = RepoName::parse(&c.fork)?;
        let pr = c.pr_number.unwrap_or(c.issue);
        let path = format!("{}/final_report.md", c.run_dir);
        let report = text(api.get_file_contents(&fork, &path, &c.branch).await?)
            .map(|r| render::nest_headings(&r, 2))
            .unwrap_or_else(|| "The campaign committed no final report.".into());
        let full = render::blob_url(c, &path);
        upsert_marked_comment(
            api,
            &fork,
            pr,
            &marker(&c.id, "final-report", None),
            &report,
            Some(&full),
        )
        .await?;
        // A campaign that could not measure anything has nothing to review.
        let unmeasurable = state.stop.as_ref().is_some_and(|s| s.unmeasurable);
        if let (Some(node), false) = (&c.pr_node_id, unmeasurable) {
            api.mark_ready_for_review(node).await?;
        }
        c.phase = AppPhase::Finished;
        self.store.update(c)?;
        let repo = RepoName::parse(&c.repo)?;
        let stop = state
            .stop
            .as_ref()
            .map(|s| s.reason.clone())
            .unwrap_or_else(|| "the loop ended".into());
        let body = if unmeasurable {
            format!(
                "Campaign `{}` stopped after the fixed baseline because it cannot be measured: {stop}. No round was run. The baseline summary on {}#{pr} shows every failed candidate; fix them and open a new request.",
                c.id, c.fork
            )
        } else {
            format!(
                "Campaign `{}` finished: {stop}. The final report is on {}#{pr}, now ready for review.",
                c.id, c.fork
            )
        };
        Self::reply(api, &repo, c.issue, &marker(&c.id, "finished", None), &body).await?;
        self.update_status(api, c, Some(state)).await
    }

    async fn command(&self, ctx: &CommandContext, command: &Command) -> Result<(), HandlerError> {
        let api = ctx.api.as_ref();
        let repo = ctx.repo.to_string();
        let found = match self.store.by_issue(&repo, ctx.issue)? {
            Some(c) => Some(c),
            None if ctx.is_pull_request => self.store.by_pull(&repo, ctx.issue)?,
            None => None,
        };
        let answer = marker("", &format!("{}@{}", command.name(), ctx.comment_id), None);
        if *command == Command::Start {
            // An explicit start of the request issue this comment is on, as it reads now.
            let Some(issue) = ctx.issue_details.as_ref().filter(|i| is_request_issue(i)) else {
                let body = "`/sota start` starts a campaign request issue; this is not one.";
                return Self::reply(api, &ctx.repo, ctx.issue, &answer, body).await;
            };
            let request = RequestIssue {
                repo: ctx.repo.clone(),
                number: issue.number,
                body: issue.body.clone().unwrap_or_default(),
                author: issue.user.login.clone(),
                default_branch: ctx.default_branch.clone(),
                private: ctx.repo_private,
            };
            return self
                .start_from_issue(api, ctx.installation_id, &request, &ctx.sender, true)
                .await;
        }
        let Some(mut c) = found else {
            let body = "There is no sota-bot campaign on this issue or pull request.";
            return Self::reply(api, &ctx.repo, ctx.issue, &answer, body).await;
        };
        let body = match command {
            Command::Status => {
                let state = self.read_state(api, &c).await?;
                render::status_comment(&c, state.as_ref())
            }
            Command::Stop => {
                if c.phase.is_active() {
                    c.phase = AppPhase::Stopped;
                    self.store.update(&c)?;
                    format!(
                        "Campaign `{}` stopped by @{}; no further rounds will be dispatched.",
                        c.id, ctx.sender
                    )
                } else {
                    format!(
                        "Campaign `{}` is already over: {}.",
                        c.id,
                        render::phase_line(&c)
                    )
                }
            }
            Command::Hold => {
                c.held = true;
                self.store.update(&c)?;
                format!(
                    "Campaign `{}` is on hold: the running step finishes, then no further round is dispatched until you comment `/sota resume`.",
                    c.id
                )
            }
            Command::Resume => {
                c.held = false;
                self.store.update(&c)?;
                if c.phase == AppPhase::Waiting {
                    self.continue_campaign(api, &mut c, None).await?
                } else {
                    format!("Campaign `{}` resumed.", c.id)
                }
            }
            Command::Continue { note } => {
                if c.phase == AppPhase::Waiting {
                    c.held = false;
                    self.continue_campaign(api, &mut c, note.as_deref()).await?
                } else {
                    format!(
                        "Campaign `{}` is not waiting ({}); nothing to continue.",
                        c.id,
                        render::phase_line(&c)
                    )
                }
            }
            Command::Retry => {
                if c.phase == AppPhase::Failed {
                    c.retries = 0;
                    let round = c.round;
                    self.dispatch(api, &mut c, round).await?;
                    format!("Re-dispatched the {} workflow.", render::step_name(round))
                } else if c.phase == AppPhase::Waiting {
                    // A campaign held after failed agent rounds: run the agent again.
                    c.held = false;
                    self.continue_campaign(api, &mut c, None).await?
                } else {
                    format!(
                        "Nothing to retry: campaign `{}` is {}.",
                        c.id,
                        render::phase_line(&c)
                    )
                }
            }
            Command::Help => crate::server::commands::help_text(),
            // Answered above, before any campaign is looked up.
            Command::Start => "This request's campaign has already started.".to_string(),
        };
        Self::reply(api, &ctx.repo, ctx.issue, &answer, &body).await?;
        let state = self.read_state(api, &c).await.ok().flatten();
        self.update_status(api, &c, state.as_ref()).await
    }

    async fn continue_campaign(
        &self,
        api: &dyn GitHubApi,
        c: &mut CampaignRecord,
        note: Option<&str>,
    ) -> Result<String, HandlerError> {
        let state = self.read_state(api, c).await?;
        let next = state
            .as_ref()
            .map(|s| s.next_round())
            .unwrap_or(c.round + 1);
        if state.as_ref().is_some_and(|s| s.phase == Phase::Stopped) {
            return Ok(format!("Campaign `{}` has already stopped.", c.id));
        }
        let mut reply = format!("Dispatched round {next} of `{}`.", c.id);
        if let Some(text) = note.map(str::trim).filter(|t| !t.is_empty()) {
            let kept = crate::engine::round::cap_note(text);
            reply.push_str(" Your note goes into its agent prompt");
            if kept.len() != text.len() {
                let max = crate::engine::round::MAX_MAINTAINER_NOTE_CHARS;
                reply.push_str(&format!(", cut at {max} characters"));
            }
            reply.push('.');
            c.dispatch.maintainer_note = Some(RoundNote {
                round: next,
                text: kept,
            });
        }
        self.dispatch(api, c, next).await?;
        Ok(reply)
    }

    /// Rebuilds the records of `fork`'s campaigns from their branches (the database was
    /// lost): the committed routing record, the PR, the checkpoint and the newest workflow
    /// run decide where each campaign stands. Campaigns already recorded are left alone; a
    /// campaign whose next step is unknown waits for `/sota continue` rather than guessing.
    /// Returns the recovered campaign ids and, for branches that could not be read, why.
    pub async fn recover(
        &self,
        api: &dyn GitHubApi,
        fork: &RepoName,
        installation_id: u64,
    ) -> Result<(Vec<String>, Vec<String>), HandlerError> {
        let mut recovered = Vec::new();
        let mut skipped = Vec::new();
        for r in api.list_branches_with_prefix(fork, "sota/").await? {
            let branch = r.git_ref.trim_start_matches("refs/heads/").to_string();
            let Some((date, slug)) = crate::git::parse_campaign_branch(&branch) else {
                skipped.push(format!("{branch}: not a campaign branch name"));
                continue;
            };
            let run_dir =
                crate::engine::RunPaths::for_campaign(std::path::Path::new(""), date, &slug).rel;
            let path = format!("{run_dir}/{APP_RECORD_FILE}");
            let Some(t) = text(api.get_file_contents(fork, &path, &branch).await?) else {
                skipped.push(format!("{branch}: no {path}"));
                continue;
            };
            let mut c: CampaignRecord = match serde_json::from_str(&t) {
                Ok(c) => c,
                Err(e) => {
                    skipped.push(format!("{branch}: {path}: {e}"));
                    continue;
                }
            };
            if self.store.get(&c.id)?.is_some() {
                continue;
            }
            c.installation_id = installation_id;
            c.held = false;
            c.retries = 0;
            if let Some(pr) = api
                .pulls_for_branch(fork, &branch)
                .await?
                .into_iter()
                .next()
            {
                c.pr_number = Some(pr.number);
                c.pr_node_id = Some(pr.node_id);
            }
            let state = self.read_state(api, &c).await?;
            let finished_rounds = state.as_ref().map(|s| s.rounds.len() as u32).unwrap_or(0);
            let baseline_done = state
                .as_ref()
                .is_some_and(|s| s.phase as u8 >= Phase::PlanDone as u8);
            if state.as_ref().is_some_and(|s| s.phase == Phase::Stopped) {
                c.phase = AppPhase::Finished;
                c.round = finished_rounds;
            } else {
                // A run of the next step still going on GitHub keeps the campaign in that step.
                let next = if baseline_done {
                    finished_rounds + 1
                } else {
                    0
                };
                let running = step_runs(api, fork, &branch, &c.id, next)
                    .await?
                    .first()
                    .is_some_and(|run| !is_completed(run));
                c.round = if running || !baseline_done {
                    next
                } else {
                    finished_rounds
                };
                c.phase = match (running, baseline_done) {
                    (true, false) => AppPhase::Baseline,
                    (true, true) => AppPhase::Round,
                    (false, false) => AppPhase::Failed,
                    (false, true) => AppPhase::Waiting,
                };
            }
            match self.store.insert(&c) {
                Ok(()) => recovered.push(c.id.clone()),
                Err(StoreError::AlreadyActive { model, fork }) => skipped.push(format!(
                    "{branch}: another active campaign for {model} on {fork} is recorded"
                )),
                Err(e) => return Err(e.into()),
            }
        }
        Ok((recovered, skipped))
    }

    /// Compares active campaigns with their workflow runs and handles completions whose
    /// webhook never arrived (GitHub does not redeliver by itself). Claimed runs are
    /// skipped, so nothing is dispatched twice.
    pub async fn reconcile(
        &self,
        apis: &dyn crate::server::handler::InstallationApis,
    ) -> Result<u32, HandlerError> {
        let mut handled = 0;
        for c in self.store.active()? {
            let api = apis.for_installation(c.installation_id);
            if c.phase == AppPhase::Starting {
                // A start whose job gave up part-way.
                self.resume_start(api.as_ref(), c).await?;
                handled += 1;
                continue;
            }
            if !matches!(c.phase, AppPhase::Baseline | AppPhase::Round) {
                continue;
            }
            let fork = RepoName::parse(&c.fork)?;
            let runs = step_runs(api.as_ref(), &fork, &c.branch, &c.id, c.round).await?;
            // Newest first: the latest completed run of the current phase.
            let Some(run) = runs.iter().find(|r| is_completed(r)) else {
                continue;
            };
            let attempt = run.run_attempt.unwrap_or(1);
            if self.store.run_handled(run.id, attempt)? {
                continue;
            }
            let as_event = WorkflowRun {
                id: run.id,
                name: None,
                display_title: run.display_title.clone(),
                head_branch: run.head_branch.clone(),
                head_sha: run.head_sha.clone(),
                status: run.status.clone(),
                conclusion: run.conclusion.clone(),
                event: Some("workflow_dispatch".into()),
                run_attempt: Some(attempt),
                workflow_id: None,
                // Listed from the step's workflow, filtered to dispatches on the fork.
                path: Some(format!(".github/workflows/{}", workflow_for(c.round))),
                head_repository: Some(crate::github::events::RepositoryRef {
                    full_name: c.fork.clone(),
                }),
                html_url: run.html_url.clone(),
                run_started_at: run.run_started_at.clone(),
                updated_at: run.updated_at.clone(),
            };
            let round = c.round;
            self.run_completed(api.as_ref(), c, &as_event, round)
                .await?;
            handled += 1;
        }
        Ok(handled)
    }
}

impl CampaignService for AppCampaigns {
    fn on_issue<'a>(
        &'a self,
        ctx: &'a EventContext,
        event: &'a IssuesEvent,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            if !is_request_issue(&event.issue) {
                return Ok(());
            }
            if event.sender.is_bot() {
                return Ok(());
            }
            match event.action.as_str() {
                "opened" | "edited" | "reopened" => {
                    let request = RequestIssue::from_event(&event.repository, &event.issue)?;
                    self.start_from_issue(
                        ctx.api.as_ref(),
                        ctx.installation_id,
                        &request,
                        &event.sender.login,
                        false,
                    )
                    .await
                }
                _ => Ok(()),
            }
        })
    }

    fn on_command<'a>(
        &'a self,
        ctx: &'a CommandContext,
        command: &'a Command,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(self.command(ctx, command))
    }

    fn on_workflow_run<'a>(
        &'a self,
        ctx: &'a EventContext,
        event: &'a WorkflowRunEvent,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            if event.action != "completed" {
                return Ok(());
            }
            let run = &event.workflow_run;
            let Some((id, round)) = run.display_title.as_deref().and_then(parse_run_title) else {
                return Ok(());
            };
            let Some(c) = self.store.get(&id)? else {
                return Ok(());
            };
            if c.fork != event.repository.full_name
                || run.head_branch.as_deref() != Some(c.branch.as_str())
            {
                return Ok(());
            }
            // Title, repository and branch name can all come from a pull request's own
            // workflow: only the App's own dispatch of the step's workflow counts.
            if !run.is_dispatch_of(&c.fork, workflow_for(round)) {
                tracing::warn!(
                    campaign = %c.id,
                    run = run.id,
                    event = run.event.as_deref().unwrap_or(""),
                    path = run.path.as_deref().unwrap_or(""),
                    head_repository = run.head_repository.as_ref().map(|r| r.full_name.as_str()).unwrap_or(""),
                    "ignored a completed run titled like a campaign step: not a dispatch of the campaign workflow on the fork"
                );
                return Ok(());
            }
            self.run_completed(ctx.api.as_ref(), c, run, round).await
        })
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
            if event.action == "closed" {
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
        apis: &'a dyn crate::server::handler::InstallationApis,
    ) -> BoxFuture<'a, Result<u32, HandlerError>> {
        Box::pin(AppCampaigns::reconcile(self, apis))
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
