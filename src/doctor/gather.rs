//! Fetches what the doctor checks look at: from GitHub with the App's credentials, and
//! from the database `serve` uses.

use std::path::Path;

use super::checks::{self, DatabaseFacts, CONFIG_PATH};
use super::Check;
use crate::github::app_client::{AppClient, InstallationInfo, RepoInfo};
use crate::github::{GitHubApi, GitHubError, RepoName};
use crate::server::handler::InstallationApis;
use crate::server::queue::{JobState, JobStore};
use crate::setup::fork_files::{managed_files, TEMPLATE_ACTION_REF};

/// Dead letters listed in the report.
const DEAD_LETTERS_SHOWN: u32 = 5;

/// The workflow files `init` installs.
fn workflow_paths() -> Vec<&'static str> {
    managed_files(TEMPLATE_ACTION_REF)
        .into_iter()
        .map(|f| f.path)
        .filter(|p| p.starts_with(".github/workflows/"))
        .collect()
}

fn issue_form_path() -> &'static str {
    managed_files(TEMPLATE_ACTION_REF)
        .into_iter()
        .map(|f| f.path)
        .find(|p| p.starts_with(".github/ISSUE_TEMPLATE/"))
        .unwrap_or(".github/ISSUE_TEMPLATE/sota-request.yml")
}

async fn text_at(
    api: &dyn GitHubApi,
    repo: &RepoName,
    path: &str,
    branch: &str,
) -> Result<Option<String>, GitHubError> {
    Ok(api
        .get_file_contents(repo, path, branch)
        .await?
        .map(|b| String::from_utf8_lossy(&b).into_owned()))
}

fn unreadable(name: &str, what: String, e: &GitHubError) -> Check {
    Check::fail(
        name,
        format!("cannot read {what}: {e}"),
        "check the installation's permissions (above) and run doctor again",
    )
}

/// A repository the App is installed on, with an API client for it.
struct Installed {
    installation_id: u64,
    info: RepoInfo,
    api: std::sync::Arc<dyn GitHubApi>,
}

/// Installation check plus the repository's facts; `None` when nothing more can be read.
async fn installed(
    client: &AppClient,
    apis: &dyn InstallationApis,
    app: &crate::github::app_client::AppInfo,
    repo: &RepoName,
    report: &mut Vec<Check>,
    with_permissions: bool,
) -> Option<Installed> {
    let inst: Option<InstallationInfo> = match client.repo_installation(repo).await {
        Ok(i) => i,
        Err(e) => {
            report.push(unreadable(
                &format!("installation {repo}"),
                format!("the App's installation on {repo}"),
                &e,
            ));
            return None;
        }
    };
    report.push(checks::installation(repo, app, inst.as_ref()));
    let inst = inst.filter(|i| i.suspended_at.is_none())?;
    if with_permissions {
        report.extend(checks::permissions_and_events(app, &inst));
    }
    match client.repo_info(inst.id, repo).await {
        Ok(info) => Some(Installed {
            installation_id: inst.id,
            info,
            api: apis.for_installation(inst.id),
        }),
        Err(e) => {
            report.push(unreadable("repository", repo.to_string(), &e));
            None
        }
    }
}

/// Runs every GitHub check for `repo` (where campaign issues are opened).
pub async fn github_checks(
    client: &AppClient,
    apis: &dyn InstallationApis,
    repo: &RepoName,
    api_url: &str,
) -> Vec<Check> {
    let mut report = Vec::new();
    let app = client.app_info().await;
    report.push(checks::credentials(app.as_ref(), api_url));
    let Ok(app) = app else {
        return report;
    };
    let mut repo_ids = Vec::new();
    if let Some(home) = installed(client, apis, &app, repo, &mut report, true).await {
        repo_ids.push(home.info.id);
        repo_checks(client, apis, &app, repo, &home, &mut report, &mut repo_ids).await;
    }
    let hook = client.hook_config().await;
    report.push(checks::webhook(hook.as_ref().map(Option::as_ref)));
    let deliveries = client.hook_deliveries().await;
    report.push(checks::deliveries(&repo_ids, deliveries.as_deref()));
    report
}

async fn repo_checks(
    client: &AppClient,
    apis: &dyn InstallationApis,
    app: &crate::github::app_client::AppInfo,
    repo: &RepoName,
    home: &Installed,
    report: &mut Vec<Check>,
    repo_ids: &mut Vec<u64>,
) {
    let branch = home.info.default_branch.clone();
    let api = home.api.as_ref();
    let form_path = issue_form_path();
    match text_at(api, repo, form_path, &branch).await {
        Ok(t) => report.push(checks::managed_file(repo, &branch, form_path, t.as_deref())),
        Err(e) => report.push(unreadable("issue form", form_path.to_string(), &e)),
    }
    let config = match text_at(api, repo, CONFIG_PATH, &branch).await {
        Ok(t) => {
            let (check, config) = checks::config(repo, &branch, t.as_deref());
            report.push(check);
            config
        }
        Err(e) => {
            report.push(unreadable("config", CONFIG_PATH.to_string(), &e));
            None
        }
    };
    let Some(config) = config else {
        report.push(Check::warn(
            "fork",
            "workflows, runners and secrets not checked: they depend on the config above",
            "fix `.github/sota-bot.yml` and run doctor again",
        ));
        return;
    };
    let fork = match config.fork.as_deref().map(RepoName::parse) {
        Some(Ok(f)) => f,
        Some(Err(_)) | None => repo.clone(),
    };
    let elsewhere = if fork == *repo {
        None
    } else {
        let Some(i) = installed(client, apis, app, &fork, report, false).await else {
            return;
        };
        repo_ids.push(i.info.id);
        Some(i)
    };
    let fork_repo = elsewhere.as_ref().unwrap_or(home);
    let fork_api = fork_repo.api.as_ref();
    let mut branches = vec![fork_repo.info.default_branch.clone()];
    if config.base_branch != fork_repo.info.default_branch {
        branches.push(config.base_branch.clone());
    }
    let mut round_workflow = None;
    for path in workflow_paths() {
        for b in &branches {
            match text_at(fork_api, &fork, path, b).await {
                Ok(t) => {
                    if path.ends_with("sota-round.yml") && *b == branches[0] {
                        round_workflow.clone_from(&t);
                    }
                    report.push(checks::managed_file(&fork, b, path, t.as_deref()));
                }
                Err(e) => report.push(unreadable("workflow", format!("{path} on {b}"), &e)),
            }
        }
    }
    let wanted = checks::wanted_labels(&config);
    let runners = client.runners(fork_repo.installation_id, &fork).await;
    report.push(checks::runners(&fork, &wanted, runners.as_deref()));
    let secrets = client.secret_names(fork_repo.installation_id, &fork).await;
    report.push(checks::secrets(
        &fork,
        &config.agent.secret_names,
        secrets.as_deref(),
        round_workflow.as_deref(),
    ));
}

/// Reads the queue's state without creating a database that is not there.
pub fn database_facts(path: Option<&Path>) -> DatabaseFacts {
    let Some(path) = path else {
        return DatabaseFacts::NotGiven;
    };
    let shown = path.display().to_string();
    if !path.is_file() {
        return DatabaseFacts::Missing(shown);
    }
    let read =
        JobStore::open(path).and_then(|s| Ok((s.counts()?, s.dead_letters(DEAD_LETTERS_SHOWN)?)));
    match read {
        Ok((counts, dead)) => DatabaseFacts::Read {
            path: shown,
            counts,
            dead,
        },
        Err(e) => DatabaseFacts::Unreadable {
            path: shown,
            error: e.to_string(),
        },
    }
}

/// Puts every dead-lettered job back in the queue; returns how many.
pub fn requeue_dead(path: &Path) -> Result<usize, crate::server::queue::QueueError> {
    let store = JobStore::open(path)?;
    let mut n = 0;
    for job in store
        .rows()?
        .into_iter()
        .filter(|j| j.state == JobState::Dead)
    {
        if store.requeue_dead(job.id)? {
            n += 1;
        }
    }
    Ok(n)
}
