//! What a campaign start writes once its request passed every check: the branch with the
//! run-directory skeleton and the routing record, then (resumable, also from reconciliation)
//! the draft PR, the labels, the baseline dispatch and the status comment.

use super::dispatch::dispatch;
use super::shared::{branch_text, to_json, update_status};
use super::{Ctx, APP_RECORD_FILE, REQUEST_LABEL};
use crate::app::store::CampaignRecord;
use crate::campaign::repo_config::RepoConfig;
use crate::engine::setup::CampaignInput;
use crate::github::api::{NewPullRequest, PullRequestInfo};
use crate::github::{GitHubApi, RepoName};
use crate::server::handler::HandlerError;

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

/// The campaign branch with the run-directory skeleton, in one commit on the base branch
/// (left alone when an earlier attempt created it).
pub(crate) async fn create_branch(
    api: &dyn GitHubApi,
    fork: &RepoName,
    base: &str,
    record: &CampaignRecord,
    input: &CampaignInput,
    config: &RepoConfig,
    date: chrono::NaiveDate,
) -> Result<(), HandlerError> {
    if api.get_branch(fork, &record.branch).await?.is_some() {
        return Ok(());
    }
    let Some(base_head) = api.get_branch(fork, base).await? else {
        return Err(HandlerError::Permanent(format!(
            "base branch {base} does not exist on {fork}"
        )));
    };
    let campaign = &input.campaign;
    let run_dir = &record.run_dir;
    let gitignore = branch_text(api, fork, ".gitignore", base)
        .await?
        .unwrap_or_default();
    let mut files = vec![
        (
            format!("{run_dir}/manifest.md"),
            campaign.manifest_md.clone(),
        ),
        (
            format!("{run_dir}/{}", crate::engine::setup::INPUT_FILE),
            to_json(input)?,
        ),
        (".gitignore".to_string(), with_campaign_ignores(&gitignore)),
        (format!("{run_dir}/{APP_RECORD_FILE}"), to_json(record)?),
    ];
    // Phase 0.5's upstream half: the family's open and recently merged PRs, searched with
    // the installation token and committed for the runner (a failed search is a blocker in
    // the notes, not a failed start).
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
    let base_tree = api.get_commit_tree(fork, &base_head.sha).await?;
    let tree = api.create_tree(fork, &base_tree, &files).await?;
    let commit = api
        .create_commit(
            fork,
            &format!("sota: start campaign {} ({})", record.id, record.model),
            &tree,
            std::slice::from_ref(&base_head.sha),
        )
        .await?;
    api.create_ref(fork, &format!("refs/heads/{}", record.branch), &commit)
        .await?;
    Ok(())
}

/// The steps of a start after its branch: the draft PR, the labels, the baseline
/// dispatch and the status comment. Each step first looks for what an earlier attempt
/// did (a PR whose answer was lost is found, a dispatched baseline is not dispatched
/// again), so a retried job or reconciliation picks up at the first step not done.
pub(crate) async fn resume_start(
    ctx: Ctx<'_>,
    mut record: CampaignRecord,
) -> Result<(), HandlerError> {
    let api = ctx.api;
    let fork = RepoName::parse(&record.fork)?;
    let repo = RepoName::parse(&record.repo)?;
    if record.pr_number.is_none() {
        let pr = draft_pr(api, &fork, &repo, &record).await?;
        record.pr_number = Some(pr.number);
        record.pr_node_id = Some(pr.node_id.clone());
        ctx.store.update(&record)?;
    }
    let labels = vec![REQUEST_LABEL.to_string()];
    api.add_labels(&repo, record.issue, &labels).await?;
    if let Some(pr) = record.pr_number {
        api.add_labels(&fork, pr, &labels).await?;
    }
    dispatch(ctx, &mut record, 0).await?;
    update_status(api, &record, None).await
}

/// The campaign's draft PR: an open PR of the branch is this start's (its answer was
/// lost); a closed one belongs to an earlier campaign.
async fn draft_pr(
    api: &dyn GitHubApi,
    fork: &RepoName,
    repo: &RepoName,
    record: &CampaignRecord,
) -> Result<PullRequestInfo, HandlerError> {
    let found = api
        .pulls_for_branch(fork, &record.branch)
        .await?
        .into_iter()
        .find(|pr| !pr.is_closed());
    if let Some(pr) = found {
        return Ok(pr);
    }
    let input_path = format!("{}/{}", record.run_dir, crate::engine::setup::INPUT_FILE);
    let hardware = branch_text(api, fork, &input_path, &record.branch)
        .await?
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["campaign"]["hardware"].as_str().map(str::to_string))
        .unwrap_or_else(|| {
            format!(
                "{}x {}",
                record.dispatch.gpu_count, record.dispatch.gpu_model
            )
        });
    Ok(api
        .create_pull_request(
            fork,
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
        .await?)
}
