//! What every handler does on GitHub: replies and reports upserted by their hidden marker,
//! the App's own comments folded in place, text files read from a branch, the checkpoint
//! read back from the campaign branch, and the issue's status comment.

use super::Ctx;
use crate::app::render;
use crate::app::store::CampaignRecord;
use crate::campaign::state::{parse_checkpoint, CampaignState};
use crate::github::api::upsert_marked_comment;
use crate::github::markers::CommentMarker;
use crate::github::{GitHubApi, RepoName};
use crate::server::handler::HandlerError;

/// The marker of a campaign's comment of `kind` (per round where `round` is given).
pub(crate) fn marker(campaign: &str, kind: &str, round: Option<u32>) -> CommentMarker {
    CommentMarker {
        campaign: campaign.to_string(),
        kind: kind.to_string(),
        round,
    }
}

/// Pretty JSON for a file the App commits.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, HandlerError> {
    serde_json::to_string_pretty(value).map_err(|e| HandlerError::Permanent(e.to_string()))
}

/// A text file at `git_ref`, or `None` when it is absent.
pub(crate) async fn branch_text(
    api: &dyn GitHubApi,
    repo: &RepoName,
    path: &str,
    git_ref: &str,
) -> Result<Option<String>, HandlerError> {
    Ok(api
        .get_file_contents(repo, path, git_ref)
        .await?
        .map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// Creates or edits the App's comment carrying `m` on `issue`.
pub(crate) async fn reply(
    api: &dyn GitHubApi,
    repo: &RepoName,
    issue: u64,
    m: &CommentMarker,
    body: &str,
) -> Result<(), HandlerError> {
    upsert_marked_comment(api, repo, issue, m, body, None).await?;
    Ok(())
}

/// Creates or edits a report comment whose full text lives on the branch at `full_url`.
pub(crate) async fn post_report(
    api: &dyn GitHubApi,
    repo: &RepoName,
    issue: u64,
    m: &CommentMarker,
    body: &str,
    full_url: &str,
) -> Result<(), HandlerError> {
    upsert_marked_comment(api, repo, issue, m, body, Some(full_url)).await?;
    Ok(())
}

/// Rewrites the App's own comment carrying `marker` on `issue` with `fold` of its text, when
/// there is one and the text changes.
pub(crate) async fn fold_own_comment(
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

/// The campaign's checkpoint as committed on its branch (kept in the store for the
/// dashboard), or `None` before the runner wrote one.
pub(crate) async fn read_state(
    ctx: Ctx<'_>,
    c: &CampaignRecord,
) -> Result<Option<CampaignState>, HandlerError> {
    let fork = RepoName::parse(&c.fork)?;
    let path = format!("{}/humanize/model-loop-checkpoint.md", c.run_dir);
    let Some(t) = branch_text(ctx.api, &fork, &path, &c.branch).await? else {
        return Ok(None);
    };
    let state = parse_checkpoint(&t)
        .map_err(|e| HandlerError::Permanent(format!("{path} on {}: {e}", c.branch)))?;
    ctx.store.save_checkpoint(&c.id, &state)?;
    Ok(Some(state))
}

/// Edits the single status comment on the request issue.
pub(crate) async fn update_status(
    api: &dyn GitHubApi,
    c: &CampaignRecord,
    state: Option<&CampaignState>,
) -> Result<(), HandlerError> {
    let repo = RepoName::parse(&c.repo)?;
    let body = render::status_comment(c, state);
    reply(api, &repo, c.issue, &marker(&c.id, "status", None), &body).await
}
