//! The GitHub operations the App needs, as a small trait (`GitHubApi`) with a REST
//! implementation (`RestGitHubApi`). Handlers depend on the trait only.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use http::Method;
use octocrab::{FromResponse, Page};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::auth::{AppAuth, Credentials, SecretToken};
use super::client::{GitHubError, HttpTransport};
use super::events::WorkflowRun;
use super::markers::{compose_comment, CommentMarker};

/// `workflow_dispatch` accepts at most this many inputs.
pub const MAX_DISPATCH_INPUTS: usize = 25;
/// ... and at most this many characters of inputs in total (keys and values).
pub const MAX_DISPATCH_INPUT_CHARS: usize = 65_535;

/// `owner/name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RepoName {
    pub owner: String,
    pub name: String,
}

impl RepoName {
    /// Builds from parts.
    pub fn new(owner: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            owner: owner.into(),
            name: name.into(),
        }
    }

    /// Parses `owner/name`.
    pub fn parse(full_name: &str) -> Result<Self, GitHubError> {
        match full_name.split_once('/') {
            Some((o, n)) if !o.is_empty() && !n.is_empty() && !n.contains('/') => {
                Ok(Self::new(o, n))
            }
            _ => Err(GitHubError::InvalidInput(format!(
                "repository `{full_name}` is not `owner/name`"
            ))),
        }
    }

    /// `/repos/{owner}/{name}`, each part percent-encoded.
    pub(crate) fn path(&self) -> String {
        format!("/repos/{}/{}", enc(&self.owner), enc(&self.name))
    }
}

impl std::fmt::Display for RepoName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// Percent-encodes one path segment. Values with `/` (branch names, `heads/x` refs, file
/// paths) become one `%2F`-encoded segment, as Octokit sends them; GitHub decodes them.
fn enc(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// A collaborator's effective permission on a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Permission {
    None,
    Read,
    Triage,
    Write,
    Maintain,
    Admin,
}

impl Permission {
    /// How GitHub's settings name this access, for messages to people.
    pub fn describe(self) -> &'static str {
        match self {
            Self::None => "no access",
            Self::Read => "read access",
            Self::Triage => "triage access",
            Self::Write => "write access",
            Self::Maintain => "maintain access",
            Self::Admin => "admin access",
        }
    }

    /// Only write, maintain and admin may start or steer a campaign.
    pub fn may_steer(self) -> bool {
        self >= Permission::Write
    }

    fn from_api(permission: &str, role_name: Option<&str>) -> Self {
        // `role_name` is finer (it knows maintain/triage); `permission` is the legacy field.
        match role_name.unwrap_or(permission) {
            "admin" => Self::Admin,
            "maintain" => Self::Maintain,
            "write" | "push" => Self::Write,
            "triage" => Self::Triage,
            "read" | "pull" => Self::Read,
            _ => match permission {
                "admin" => Self::Admin,
                "write" => Self::Write,
                "read" => Self::Read,
                _ => Self::None,
            },
        }
    }
}

/// An issue or PR conversation comment.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IssueComment {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
    /// Who wrote it (absent only in hand-made values).
    #[serde(default)]
    pub user: Option<CommentAuthor>,
    /// The GitHub App that wrote it, when one did.
    #[serde(default)]
    pub performed_via_github_app: Option<AppRef>,
}

/// A comment's author.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CommentAuthor {
    pub login: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

/// A GitHub App as named on the objects it created.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AppRef {
    pub id: u64,
}

/// Who a client writes as: comments by anyone else never count as the bot's own, whatever
/// marker they carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// An App installation: its comments are by a bot account and name the App.
    App { id: u64 },
    /// A user token (local use, tests): its comments are by that user.
    User { login: String },
}

impl Identity {
    /// True when this identity wrote `comment`.
    pub fn wrote(&self, comment: &IssueComment) -> bool {
        match self {
            Identity::App { id } => {
                comment.performed_via_github_app.as_ref().map(|a| a.id) == Some(*id)
                    && comment
                        .user
                        .as_ref()
                        .is_some_and(|u| u.kind.as_deref() == Some("Bot"))
            }
            Identity::User { login } => comment
                .user
                .as_ref()
                .is_some_and(|u| u.login.eq_ignore_ascii_case(login)),
        }
    }
}

/// Comment reactions GitHub accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaction {
    PlusOne,
    MinusOne,
    Laugh,
    Confused,
    Heart,
    Hooray,
    Rocket,
    Eyes,
}

impl Reaction {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PlusOne => "+1",
            Self::MinusOne => "-1",
            Self::Laugh => "laugh",
            Self::Confused => "confused",
            Self::Heart => "heart",
            Self::Hooray => "hooray",
            Self::Rocket => "rocket",
            Self::Eyes => "eyes",
        }
    }
}

/// A draft pull request to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPullRequest {
    pub title: String,
    pub head: String,
    pub base: String,
    pub body: String,
    pub draft: bool,
}

/// A created pull request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PullRequestInfo {
    pub number: u64,
    pub node_id: String,
    #[serde(default)]
    pub html_url: Option<String>,
    #[serde(default)]
    pub draft: Option<bool>,
    /// `open` or `closed`.
    #[serde(default)]
    pub state: Option<String>,
}

impl PullRequestInfo {
    /// True for a closed (or merged) pull request.
    pub fn is_closed(&self) -> bool {
        self.state.as_deref() == Some("closed")
    }
}

/// A branch and its head commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchInfo {
    pub name: String,
    pub sha: String,
}

/// A git reference and the object it points to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRefInfo {
    pub git_ref: String,
    pub sha: String,
}

/// What a workflow dispatch returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchResult {
    /// Present when GitHub honoured `return_run_details`.
    pub run_id: Option<u64>,
    pub html_url: Option<String>,
}

/// A check run to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCheckRun {
    pub name: String,
    pub head_sha: String,
    /// `queued`, `in_progress` or `completed`.
    pub status: String,
    /// Required when `status` is `completed`: `success`, `failure`, `neutral`, ...
    pub conclusion: Option<String>,
    pub title: String,
    pub summary: String,
    pub details_url: Option<String>,
    pub external_id: Option<String>,
}

/// A pull request found by GitHub's issue search.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SearchedPull {
    pub number: u64,
    pub title: String,
    pub html_url: String,
    /// `open` or `closed`.
    pub state: String,
    /// The API URL of the repository it belongs to.
    pub repository_url: String,
    /// Present on pull requests (the search also finds issues).
    #[serde(default)]
    pub pull_request: Option<SearchedPullLinks>,
}

/// The pull-request part of a search hit.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SearchedPullLinks {
    #[serde(default)]
    pub merged_at: Option<String>,
}

/// Filters for listing workflow runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    pub branch: Option<String>,
    pub event: Option<String>,
    pub head_sha: Option<String>,
}

/// Result type of API calls.
pub type ApiResult<T> = Result<T, GitHubError>;

/// The GitHub operations the App performs, all scoped to one installation.
pub trait GitHubApi: Send + Sync {
    /// Who this client writes as (for telling the bot's own comments from look-alikes).
    fn identity<'a>(&'a self) -> BoxFuture<'a, ApiResult<Identity>>;
    /// The comments of an issue or PR written by this client's identity: only these may be
    /// trusted for their hidden markers.
    fn own_issue_comments<'a>(
        &'a self,
        repo: &'a RepoName,
        issue: u64,
    ) -> BoxFuture<'a, ApiResult<Vec<IssueComment>>> {
        Box::pin(async move {
            let me = self.identity().await?;
            Ok(self
                .list_issue_comments(repo, issue)
                .await?
                .into_iter()
                .filter(|c| me.wrote(c))
                .collect())
        })
    }
    /// The user's permission on the repository.
    fn collaborator_permission<'a>(
        &'a self,
        repo: &'a RepoName,
        user: &'a str,
    ) -> BoxFuture<'a, ApiResult<Permission>>;
    /// All comments of an issue or PR (every page).
    fn list_issue_comments<'a>(
        &'a self,
        repo: &'a RepoName,
        issue: u64,
    ) -> BoxFuture<'a, ApiResult<Vec<IssueComment>>>;
    /// Posts a comment.
    fn create_issue_comment<'a>(
        &'a self,
        repo: &'a RepoName,
        issue: u64,
        body: &'a str,
    ) -> BoxFuture<'a, ApiResult<IssueComment>>;
    /// Replaces a comment's body.
    fn update_issue_comment<'a>(
        &'a self,
        repo: &'a RepoName,
        comment_id: u64,
        body: &'a str,
    ) -> BoxFuture<'a, ApiResult<IssueComment>>;
    /// Reacts to a comment.
    fn add_reaction<'a>(
        &'a self,
        repo: &'a RepoName,
        comment_id: u64,
        reaction: Reaction,
    ) -> BoxFuture<'a, ApiResult<()>>;
    /// Adds labels to an issue or PR.
    fn add_labels<'a>(
        &'a self,
        repo: &'a RepoName,
        issue: u64,
        labels: &'a [String],
    ) -> BoxFuture<'a, ApiResult<()>>;
    /// Opens a (draft) pull request.
    fn create_pull_request<'a>(
        &'a self,
        repo: &'a RepoName,
        pull: &'a NewPullRequest,
    ) -> BoxFuture<'a, ApiResult<PullRequestInfo>>;
    /// Marks a draft PR ready for review. REST cannot do this (its PR update has no `draft`
    /// field), so this is the GraphQL `markPullRequestReadyForReview` mutation.
    fn mark_ready_for_review<'a>(&'a self, pull_node_id: &'a str) -> BoxFuture<'a, ApiResult<()>>;
    /// A branch's head, or `None` when it does not exist.
    fn get_branch<'a>(
        &'a self,
        repo: &'a RepoName,
        branch: &'a str,
    ) -> BoxFuture<'a, ApiResult<Option<BranchInfo>>>;
    /// A ref such as `heads/main`, or `None`.
    fn get_ref<'a>(
        &'a self,
        repo: &'a RepoName,
        git_ref: &'a str,
    ) -> BoxFuture<'a, ApiResult<Option<GitRefInfo>>>;
    /// Creates `refs/heads/...` pointing at `sha`.
    fn create_ref<'a>(
        &'a self,
        repo: &'a RepoName,
        git_ref: &'a str,
        sha: &'a str,
    ) -> BoxFuture<'a, ApiResult<GitRefInfo>>;
    /// Dispatches a workflow with `return_run_details: true`; inputs are validated first.
    fn dispatch_workflow<'a>(
        &'a self,
        repo: &'a RepoName,
        workflow: &'a str,
        git_ref: &'a str,
        inputs: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, ApiResult<DispatchResult>>;
    /// Runs of one workflow (first page, newest first).
    fn list_workflow_runs<'a>(
        &'a self,
        repo: &'a RepoName,
        workflow: &'a str,
        filter: &'a RunFilter,
    ) -> BoxFuture<'a, ApiResult<Vec<WorkflowRun>>>;
    /// Ids of the check runs named `name` on commit `sha` (to avoid creating one twice).
    fn check_runs_named<'a>(
        &'a self,
        repo: &'a RepoName,
        sha: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, ApiResult<Vec<u64>>>;
    /// Creates a check run; returns its id.
    fn create_check_run<'a>(
        &'a self,
        repo: &'a RepoName,
        check: &'a NewCheckRun,
    ) -> BoxFuture<'a, ApiResult<u64>>;
    /// Branch refs whose name starts with `prefix` (`sota/` lists campaign branches).
    fn list_branches_with_prefix<'a>(
        &'a self,
        repo: &'a RepoName,
        prefix: &'a str,
    ) -> BoxFuture<'a, ApiResult<Vec<GitRefInfo>>>;
    /// Pull requests (any state) whose head is `branch` of the repository itself.
    fn pulls_for_branch<'a>(
        &'a self,
        repo: &'a RepoName,
        branch: &'a str,
    ) -> BoxFuture<'a, ApiResult<Vec<PullRequestInfo>>>;
    /// The newest commit on `branch` that changed `path` (`GET /commits?sha=&path=`), or
    /// `None` when no commit did. The App finds a round's commit this way: a commit cannot
    /// carry its own sha, and a replayed push changes it.
    fn last_commit_touching<'a>(
        &'a self,
        repo: &'a RepoName,
        branch: &'a str,
        path: &'a str,
    ) -> BoxFuture<'a, ApiResult<Option<String>>>;
    /// The tree of a commit (Git data API).
    fn get_commit_tree<'a>(
        &'a self,
        repo: &'a RepoName,
        commit_sha: &'a str,
    ) -> BoxFuture<'a, ApiResult<String>>;
    /// The paths of every file in a commit's tree (`GET /git/trees/{sha}?recursive=1`):
    /// which files a branch holds, in one request instead of one per file. `None` when
    /// GitHub cut the listing short (`truncated`, past 100,000 entries).
    fn tree_file_paths<'a>(
        &'a self,
        repo: &'a RepoName,
        commit_sha: &'a str,
    ) -> BoxFuture<'a, ApiResult<Option<std::collections::BTreeSet<String>>>>;
    /// A tree on top of `base_tree` with these text files added or replaced; returns its sha.
    fn create_tree<'a>(
        &'a self,
        repo: &'a RepoName,
        base_tree: &'a str,
        files: &'a [(String, String)],
    ) -> BoxFuture<'a, ApiResult<String>>;
    /// A commit of `tree` on `parents`; returns its sha.
    fn create_commit<'a>(
        &'a self,
        repo: &'a RepoName,
        message: &'a str,
        tree: &'a str,
        parents: &'a [String],
    ) -> BoxFuture<'a, ApiResult<String>>;
    /// A file's bytes at `git_ref`, or `None` when absent.
    fn get_file_contents<'a>(
        &'a self,
        repo: &'a RepoName,
        path: &'a str,
        git_ref: &'a str,
    ) -> BoxFuture<'a, ApiResult<Option<Vec<u8>>>>;
    /// Pull requests matching a search query (`q` of `GET /search/issues`, which must carry
    /// `is:pr`), most recently updated first; at most `limit` (one page, up to 100).
    fn search_pull_requests<'a>(
        &'a self,
        query: &'a str,
        limit: u32,
    ) -> BoxFuture<'a, ApiResult<Vec<SearchedPull>>>;
}

/// Checks `workflow_dispatch` input limits before anything is sent.
pub fn validate_dispatch_inputs(inputs: &BTreeMap<String, String>) -> ApiResult<()> {
    if inputs.len() > MAX_DISPATCH_INPUTS {
        return Err(GitHubError::InvalidInput(format!(
            "workflow_dispatch takes at most {MAX_DISPATCH_INPUTS} inputs, got {}",
            inputs.len()
        )));
    }
    let total: usize = inputs
        .iter()
        .map(|(k, v)| k.chars().count() + v.chars().count())
        .sum();
    if total > MAX_DISPATCH_INPUT_CHARS {
        return Err(GitHubError::InvalidInput(format!(
            "workflow_dispatch inputs total {total} characters; the limit is {MAX_DISPATCH_INPUT_CHARS}"
        )));
    }
    Ok(())
}

/// What `upsert_marked_comment` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upserted {
    Created(IssueComment),
    Updated(IssueComment),
}

/// Edits the comment carrying `marker` in place, or creates it. A create that failed with an
/// unknown outcome (5xx, timeout) is retried by listing again first, so a comment that did
/// get created is edited rather than duplicated.
pub async fn upsert_marked_comment(
    api: &dyn GitHubApi,
    repo: &RepoName,
    issue: u64,
    marker: &CommentMarker,
    body: &str,
    full_report_url: Option<&str>,
) -> ApiResult<Upserted> {
    let text = compose_comment(marker, body, full_report_url);
    let mut attempts = 0;
    loop {
        attempts += 1;
        // Anyone can post a comment carrying the marker: only the bot's own are edited.
        let existing = api.own_issue_comments(repo, issue).await?;
        let found = existing
            .iter()
            .find(|c| c.body.as_deref().is_some_and(|b| marker.matches(b)));
        let outcome = match found {
            Some(c) if c.body.as_deref() == Some(text.as_str()) => {
                return Ok(Upserted::Updated(c.clone()))
            }
            Some(c) => api
                .update_issue_comment(repo, c.id, &text)
                .await
                .map(Upserted::Updated),
            None => api
                .create_issue_comment(repo, issue, &text)
                .await
                .map(Upserted::Created),
        };
        match outcome {
            Err(e) if e.is_transient() && attempts < 3 => {
                tracing::warn!(%repo, issue, error = %e, "comment upsert failed; re-listing before retrying");
            }
            other => return other,
        }
    }
}

/// `GitHubApi` over octocrab (see `client`): our own serde types for the few fields the App
/// reads (octocrab's models lack some, such as a comment's `performed_via_github_app`),
/// octocrab's routes, query encoding, typed decoding, error mapping and `Page` pagination.
#[derive(Clone, Debug)]
pub struct RestGitHubApi {
    transport: HttpTransport,
    credentials: Credentials,
    identity: Arc<tokio::sync::OnceCell<Identity>>,
}

/// Query parameters of one call.
type Query<'a> = [(&'a str, &'a str)];

/// `Ok(None)` for a 404: the thing does not exist.
fn optional<T>(result: ApiResult<T>) -> ApiResult<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.status() == Some(404) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Everything the App writes to GitHub (comments, check runs, PR bodies, committed files,
/// commit messages, dispatch inputs) passes here, scrubbed of every configured secret: a
/// report that quotes a runner log cannot publish a key.
fn scrubbed(mut body: serde_json::Value) -> serde_json::Value {
    crate::secrets::SecretSet::from_default_env().scrub_json(&mut body);
    body
}

/// The route of a `Link: rel="next"` page relative to the base URL (GitHub's links are
/// absolute; octocrab sends the bearer only on relative routes).
fn next_route(next: &http::Uri, base_url: &str) -> Option<String> {
    let path_and_query = next.path_and_query()?.as_str();
    let base_path = base_url
        .parse::<http::Uri>()
        .ok()
        .map(|b| b.path().trim_end_matches('/').to_string())
        .unwrap_or_default();
    Some(
        path_and_query
            .strip_prefix(base_path.as_str())
            .filter(|rest| rest.starts_with('/'))
            .unwrap_or(path_and_query)
            .to_string(),
    )
}

impl RestGitHubApi {
    /// A client with the given credentials.
    pub fn new(transport: HttpTransport, credentials: Credentials) -> Self {
        Self {
            transport,
            credentials,
            identity: Arc::default(),
        }
    }

    /// A client acting as one installation of the App.
    pub fn for_installation(
        transport: HttpTransport,
        app: Arc<AppAuth>,
        installation_id: u64,
    ) -> Self {
        Self::new(
            transport,
            Credentials::Installation {
                app,
                installation_id,
            },
        )
    }

    /// Runs `op` with the current bearer token; after a 401 (a revoked or expired token)
    /// fetches a new one and runs it once more.
    async fn authed<T, F, Fut>(&self, op: F) -> ApiResult<T>
    where
        F: Fn(SecretToken) -> Fut,
        Fut: std::future::Future<Output = ApiResult<T>>,
    {
        let token = self.credentials.bearer().await?;
        match op(token).await {
            Err(e) if e.status() == Some(401) => {
                self.credentials.invalidate().await;
                op(self.credentials.bearer().await?).await
            }
            other => other,
        }
    }

    async fn get<T: FromResponse>(&self, route: &str, query: Option<&Query<'_>>) -> ApiResult<T> {
        self.authed(|t| async move { self.transport.get(Some(&t), route, query).await })
            .await
    }

    async fn post<T: FromResponse>(&self, route: &str, body: serde_json::Value) -> ApiResult<T> {
        let body = scrubbed(body);
        self.authed(|t| {
            let body = &body;
            async move { self.transport.post(Some(&t), route, Some(body)).await }
        })
        .await
    }

    async fn patch<T: FromResponse>(&self, route: &str, body: serde_json::Value) -> ApiResult<T> {
        let body = scrubbed(body);
        self.authed(|t| {
            let body = &body;
            async move { self.transport.patch(Some(&t), route, body).await }
        })
        .await
    }

    /// A POST whose answer may have no body (204), returned raw.
    async fn post_raw(&self, url: &str, body: serde_json::Value) -> ApiResult<bytes::Bytes> {
        let body = scrubbed(body);
        self.authed(|t| {
            let body = &body;
            async move {
                self.transport
                    .send_raw(Method::POST, Some(&t), url, Some(body))
                    .await
            }
        })
        .await
    }

    /// Every page of a listing, following GitHub's `Link` headers.
    async fn all_pages<T: DeserializeOwned>(
        &self,
        route: &str,
        query: &Query<'_>,
    ) -> ApiResult<Vec<T>> {
        let mut page: Page<T> = self.get(route, Some(query)).await?;
        let mut all = page.take_items();
        // A bound on pages, so a server that links a page to itself cannot loop us.
        for _ in 0..100 {
            let Some(next) = page
                .next
                .as_ref()
                .and_then(|n| next_route(n, &self.transport.config().base_url))
            else {
                break;
            };
            page = self.get(&next, None).await?;
            all.append(&mut page.take_items());
        }
        Ok(all)
    }
}

#[derive(Deserialize)]
struct PermissionBody {
    permission: String,
    #[serde(default)]
    role_name: Option<String>,
}

#[derive(Deserialize)]
struct CommitRef {
    sha: String,
}

#[derive(Deserialize)]
struct BranchBody {
    name: String,
    commit: CommitRef,
}

#[derive(Deserialize)]
struct RefBody {
    #[serde(rename = "ref")]
    git_ref: String,
    object: CommitRef,
}

impl From<RefBody> for GitRefInfo {
    fn from(r: RefBody) -> Self {
        GitRefInfo {
            git_ref: r.git_ref,
            sha: r.object.sha,
        }
    }
}

#[derive(Deserialize)]
struct DispatchBody {
    #[serde(default)]
    workflow_run_id: Option<u64>,
    #[serde(default)]
    html_url: Option<String>,
}

#[derive(Deserialize)]
struct TreeListing {
    tree: Vec<TreeEntry>,
    #[serde(default)]
    truncated: bool,
}

#[derive(Deserialize)]
struct TreeEntry {
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct IdBody {
    id: u64,
}

#[derive(Deserialize)]
struct ShaBody {
    sha: String,
}

#[derive(Deserialize)]
struct GitCommitBody {
    tree: ShaBody,
}

#[derive(Deserialize)]
struct ContentBody {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    encoding: Option<String>,
}

#[derive(Deserialize)]
struct UserBody {
    login: String,
}

impl GitHubApi for RestGitHubApi {
    fn identity<'a>(&'a self) -> BoxFuture<'a, ApiResult<Identity>> {
        Box::pin(async move {
            self.identity
                .get_or_try_init(|| async {
                    match &self.credentials {
                        Credentials::Installation { app, .. } => {
                            Ok(Identity::App { id: app.app_id() })
                        }
                        Credentials::Token(_) => {
                            let user: UserBody = self.get("/user", None).await?;
                            Ok(Identity::User { login: user.login })
                        }
                    }
                })
                .await
                .cloned()
        })
    }

    fn collaborator_permission<'a>(
        &'a self,
        repo: &'a RepoName,
        user: &'a str,
    ) -> BoxFuture<'a, ApiResult<Permission>> {
        Box::pin(async move {
            let route = format!("{}/collaborators/{}/permission", repo.path(), enc(user));
            // 404: not a collaborator (or unknown user): no permission.
            Ok(
                match optional(self.get::<PermissionBody>(&route, None).await)? {
                    Some(p) => Permission::from_api(&p.permission, p.role_name.as_deref()),
                    None => Permission::None,
                },
            )
        })
    }

    fn list_issue_comments<'a>(
        &'a self,
        repo: &'a RepoName,
        issue: u64,
    ) -> BoxFuture<'a, ApiResult<Vec<IssueComment>>> {
        Box::pin(async move {
            let route = format!("{}/issues/{issue}/comments", repo.path());
            self.all_pages(&route, &[("per_page", "100")]).await
        })
    }

    fn create_issue_comment<'a>(
        &'a self,
        repo: &'a RepoName,
        issue: u64,
        body: &'a str,
    ) -> BoxFuture<'a, ApiResult<IssueComment>> {
        Box::pin(async move {
            let route = format!("{}/issues/{issue}/comments", repo.path());
            self.post(&route, json!({ "body": body })).await
        })
    }

    fn update_issue_comment<'a>(
        &'a self,
        repo: &'a RepoName,
        comment_id: u64,
        body: &'a str,
    ) -> BoxFuture<'a, ApiResult<IssueComment>> {
        Box::pin(async move {
            let route = format!("{}/issues/comments/{comment_id}", repo.path());
            self.patch(&route, json!({ "body": body })).await
        })
    }

    fn add_reaction<'a>(
        &'a self,
        repo: &'a RepoName,
        comment_id: u64,
        reaction: Reaction,
    ) -> BoxFuture<'a, ApiResult<()>> {
        Box::pin(async move {
            let route = format!("{}/issues/comments/{comment_id}/reactions", repo.path());
            self.post::<serde_json::Value>(&route, json!({ "content": reaction.as_str() }))
                .await
                .map(|_| ())
        })
    }

    fn add_labels<'a>(
        &'a self,
        repo: &'a RepoName,
        issue: u64,
        labels: &'a [String],
    ) -> BoxFuture<'a, ApiResult<()>> {
        Box::pin(async move {
            let route = format!("{}/issues/{issue}/labels", repo.path());
            self.post::<serde_json::Value>(&route, json!({ "labels": labels }))
                .await
                .map(|_| ())
        })
    }

    fn create_pull_request<'a>(
        &'a self,
        repo: &'a RepoName,
        pull: &'a NewPullRequest,
    ) -> BoxFuture<'a, ApiResult<PullRequestInfo>> {
        Box::pin(async move {
            let route = format!("{}/pulls", repo.path());
            let body = json!({
                "title": pull.title, "head": pull.head, "base": pull.base,
                "body": pull.body, "draft": pull.draft,
            });
            self.post(&route, body).await
        })
    }

    fn mark_ready_for_review<'a>(&'a self, pull_node_id: &'a str) -> BoxFuture<'a, ApiResult<()>> {
        Box::pin(async move {
            let url = self.transport.config().graphql_url.clone();
            let body = json!({
                "query": "mutation($id: ID!) { markPullRequestReadyForReview(input: {pullRequestId: $id}) { pullRequest { isDraft } } }",
                "variables": { "id": pull_node_id },
            });
            let answer = self.post_raw(&url, body).await?;
            let value: serde_json::Value =
                serde_json::from_slice(&answer).map_err(|e| GitHubError::Decode {
                    method: "POST".into(),
                    path: url.clone(),
                    message: e.to_string(),
                })?;
            // GraphQL reports failures in a 200 body.
            if let Some(errors) = value.get("errors").filter(|e| !e.is_null()) {
                return Err(GitHubError::Status {
                    method: "POST".into(),
                    path: url,
                    status: 200,
                    message: format!("GraphQL errors: {errors}"),
                });
            }
            Ok(())
        })
    }

    fn get_branch<'a>(
        &'a self,
        repo: &'a RepoName,
        branch: &'a str,
    ) -> BoxFuture<'a, ApiResult<Option<BranchInfo>>> {
        Box::pin(async move {
            let route = format!("{}/branches/{}", repo.path(), enc(branch));
            Ok(
                optional(self.get::<BranchBody>(&route, None).await)?.map(|b| BranchInfo {
                    name: b.name,
                    sha: b.commit.sha,
                }),
            )
        })
    }

    fn get_ref<'a>(
        &'a self,
        repo: &'a RepoName,
        git_ref: &'a str,
    ) -> BoxFuture<'a, ApiResult<Option<GitRefInfo>>> {
        Box::pin(async move {
            let short = git_ref.strip_prefix("refs/").unwrap_or(git_ref);
            let route = format!("{}/git/ref/{}", repo.path(), enc(short));
            Ok(optional(self.get::<RefBody>(&route, None).await)?.map(GitRefInfo::from))
        })
    }

    fn create_ref<'a>(
        &'a self,
        repo: &'a RepoName,
        git_ref: &'a str,
        sha: &'a str,
    ) -> BoxFuture<'a, ApiResult<GitRefInfo>> {
        Box::pin(async move {
            let full = if git_ref.starts_with("refs/") {
                git_ref.to_string()
            } else {
                format!("refs/{git_ref}")
            };
            let route = format!("{}/git/refs", repo.path());
            let created: RefBody = self
                .post(&route, json!({ "ref": full, "sha": sha }))
                .await?;
            Ok(created.into())
        })
    }

    fn dispatch_workflow<'a>(
        &'a self,
        repo: &'a RepoName,
        workflow: &'a str,
        git_ref: &'a str,
        inputs: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, ApiResult<DispatchResult>> {
        Box::pin(async move {
            validate_dispatch_inputs(inputs)?;
            let route = format!(
                "{}/actions/workflows/{}/dispatches",
                repo.path(),
                enc(workflow)
            );
            let body = json!({ "ref": git_ref, "inputs": inputs, "return_run_details": true });
            // 204 without a body where GitHub did not honour `return_run_details`.
            let answer = self.post_raw(&route, body).await?;
            if answer.is_empty() {
                return Ok(DispatchResult {
                    run_id: None,
                    html_url: None,
                });
            }
            let d: DispatchBody =
                serde_json::from_slice(&answer).map_err(|e| GitHubError::Decode {
                    method: "POST".into(),
                    path: route.clone(),
                    message: e.to_string(),
                })?;
            Ok(DispatchResult {
                run_id: d.workflow_run_id,
                html_url: d.html_url,
            })
        })
    }

    fn list_workflow_runs<'a>(
        &'a self,
        repo: &'a RepoName,
        workflow: &'a str,
        filter: &'a RunFilter,
    ) -> BoxFuture<'a, ApiResult<Vec<WorkflowRun>>> {
        Box::pin(async move {
            let mut query = vec![("per_page", "100")];
            let filters = [
                ("branch", &filter.branch),
                ("event", &filter.event),
                ("head_sha", &filter.head_sha),
            ];
            query.extend(
                filters
                    .iter()
                    .filter_map(|(k, v)| Some((*k, v.as_deref()?))),
            );
            let route = format!("{}/actions/workflows/{}/runs", repo.path(), enc(workflow));
            let runs: Page<WorkflowRun> = self.get(&route, Some(&query)).await?;
            Ok(runs.items)
        })
    }

    fn create_check_run<'a>(
        &'a self,
        repo: &'a RepoName,
        check: &'a NewCheckRun,
    ) -> BoxFuture<'a, ApiResult<u64>> {
        Box::pin(async move {
            let route = format!("{}/check-runs", repo.path());
            let mut body = json!({
                "name": check.name, "head_sha": check.head_sha, "status": check.status,
                "output": { "title": check.title, "summary": check.summary },
            });
            if let Some(c) = &check.conclusion {
                body["conclusion"] = json!(c);
            }
            if let Some(u) = &check.details_url {
                body["details_url"] = json!(u);
            }
            if let Some(x) = &check.external_id {
                body["external_id"] = json!(x);
            }
            Ok(self.post::<IdBody>(&route, body).await?.id)
        })
    }

    fn check_runs_named<'a>(
        &'a self,
        repo: &'a RepoName,
        sha: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, ApiResult<Vec<u64>>> {
        Box::pin(async move {
            #[derive(Deserialize)]
            struct CheckRunsBody {
                check_runs: Vec<IdBody>,
            }
            let route = format!("{}/commits/{}/check-runs", repo.path(), enc(sha));
            let query = [("check_name", name), ("filter", "all")];
            let body: CheckRunsBody = self.get(&route, Some(&query)).await?;
            Ok(body.check_runs.into_iter().map(|c| c.id).collect())
        })
    }

    fn list_branches_with_prefix<'a>(
        &'a self,
        repo: &'a RepoName,
        prefix: &'a str,
    ) -> BoxFuture<'a, ApiResult<Vec<GitRefInfo>>> {
        Box::pin(async move {
            let route = format!(
                "{}/git/matching-refs/{}",
                repo.path(),
                enc(&format!("heads/{prefix}"))
            );
            let refs: Vec<RefBody> = self.get(&route, None).await?;
            Ok(refs.into_iter().map(GitRefInfo::from).collect())
        })
    }

    fn pulls_for_branch<'a>(
        &'a self,
        repo: &'a RepoName,
        branch: &'a str,
    ) -> BoxFuture<'a, ApiResult<Vec<PullRequestInfo>>> {
        Box::pin(async move {
            let route = format!("{}/pulls", repo.path());
            let head = format!("{}:{branch}", repo.owner);
            self.get(&route, Some(&[("head", head.as_str()), ("state", "all")]))
                .await
        })
    }

    fn last_commit_touching<'a>(
        &'a self,
        repo: &'a RepoName,
        branch: &'a str,
        path: &'a str,
    ) -> BoxFuture<'a, ApiResult<Option<String>>> {
        Box::pin(async move {
            let route = format!("{}/commits", repo.path());
            let query = [("sha", branch), ("path", path), ("per_page", "1")];
            let commits = optional(self.get::<Vec<ShaBody>>(&route, Some(&query)).await)?;
            Ok(commits.and_then(|c| c.into_iter().next()).map(|c| c.sha))
        })
    }

    fn get_commit_tree<'a>(
        &'a self,
        repo: &'a RepoName,
        commit_sha: &'a str,
    ) -> BoxFuture<'a, ApiResult<String>> {
        Box::pin(async move {
            let route = format!("{}/git/commits/{}", repo.path(), enc(commit_sha));
            Ok(self.get::<GitCommitBody>(&route, None).await?.tree.sha)
        })
    }

    fn tree_file_paths<'a>(
        &'a self,
        repo: &'a RepoName,
        commit_sha: &'a str,
    ) -> BoxFuture<'a, ApiResult<Option<std::collections::BTreeSet<String>>>> {
        Box::pin(async move {
            let route = format!("{}/git/trees/{}", repo.path(), enc(commit_sha));
            let listing: TreeListing = self.get(&route, Some(&[("recursive", "1")])).await?;
            Ok((!listing.truncated).then(|| {
                listing
                    .tree
                    .into_iter()
                    .filter(|e| e.kind == "blob")
                    .map(|e| e.path)
                    .collect()
            }))
        })
    }

    fn create_tree<'a>(
        &'a self,
        repo: &'a RepoName,
        base_tree: &'a str,
        files: &'a [(String, String)],
    ) -> BoxFuture<'a, ApiResult<String>> {
        Box::pin(async move {
            let route = format!("{}/git/trees", repo.path());
            let tree: Vec<serde_json::Value> = files
                .iter()
                .map(|(p, content)| json!({"path": p, "mode": "100644", "type": "blob", "content": content}))
                .collect();
            let body = json!({ "base_tree": base_tree, "tree": tree });
            Ok(self.post::<ShaBody>(&route, body).await?.sha)
        })
    }

    fn create_commit<'a>(
        &'a self,
        repo: &'a RepoName,
        message: &'a str,
        tree: &'a str,
        parents: &'a [String],
    ) -> BoxFuture<'a, ApiResult<String>> {
        Box::pin(async move {
            let route = format!("{}/git/commits", repo.path());
            let body = json!({ "message": message, "tree": tree, "parents": parents });
            Ok(self.post::<ShaBody>(&route, body).await?.sha)
        })
    }

    fn get_file_contents<'a>(
        &'a self,
        repo: &'a RepoName,
        path: &'a str,
        git_ref: &'a str,
    ) -> BoxFuture<'a, ApiResult<Option<Vec<u8>>>> {
        Box::pin(async move {
            let route = format!("{}/contents/{}", repo.path(), enc(path));
            let found = self
                .get::<ContentBody>(&route, Some(&[("ref", git_ref)]))
                .await;
            let Some(body) = optional(found)? else {
                return Ok(None);
            };
            if body.kind != "file" {
                return Err(GitHubError::InvalidInput(format!(
                    "`{path}` is a {}, not a file",
                    body.kind
                )));
            }
            match (body.encoding.as_deref(), body.content) {
                (Some("base64"), Some(content)) => {
                    let compact: String = content.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                    decode_base64(&compact).map(Some).ok_or_else(|| GitHubError::Decode {
                        method: "GET".into(),
                        path: route.clone(),
                        message: "content is not valid base64".into(),
                    })
                }
                (encoding, _) => Err(GitHubError::Decode {
                    method: "GET".into(),
                    path: route.clone(),
                    message: format!("unsupported content encoding {encoding:?} (file too large for this endpoint?)"),
                }),
            }
        })
    }

    fn search_pull_requests<'a>(
        &'a self,
        query: &'a str,
        limit: u32,
    ) -> BoxFuture<'a, ApiResult<Vec<SearchedPull>>> {
        Box::pin(async move {
            if !query.split_whitespace().any(|w| w == "is:pr") {
                return Err(GitHubError::InvalidInput(format!(
                    "search query `{query}` lacks `is:pr` (GitHub refuses mixed issue and PR searches for some tokens)"
                )));
            }
            let per_page = limit.clamp(1, 100).to_string();
            let params = [
                ("q", query),
                ("sort", "updated"),
                ("order", "desc"),
                ("per_page", per_page.as_str()),
            ];
            let hits: Page<SearchedPull> = self.get("/search/issues", Some(&params)).await?;
            Ok(hits.items)
        })
    }
}

/// Standard base64 (with padding) decoder; `None` on invalid input.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let bytes = text.trim_end_matches('=').as_bytes();
    if text.len() % 4 != 0 || text.len() - bytes.len() > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let produced = chunk.len().saturating_sub(1);
        for i in 0..produced {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn only_the_apps_own_bot_comments_are_its_own() {
        let comment = |login: &str, kind: &str, app: Option<u64>| IssueComment {
            id: 1,
            body: Some("<!-- sota-bot:{} -->".into()),
            html_url: None,
            user: Some(CommentAuthor {
                login: login.into(),
                kind: Some(kind.into()),
            }),
            performed_via_github_app: app.map(|id| AppRef { id }),
        };
        let app = Identity::App { id: 4242 };
        assert!(app.wrote(&comment("sota-bot[bot]", "Bot", Some(4242))));
        assert!(!app.wrote(&comment("other-bot[bot]", "Bot", Some(7))));
        assert!(!app.wrote(&comment("mallory", "User", None)));
        // A user acting through the App (a user-to-server token) is not the App itself.
        assert!(!app.wrote(&comment("mallory", "User", Some(4242))));
        let user = Identity::User {
            login: "octocat".into(),
        };
        assert!(user.wrote(&comment("OctoCat", "User", None)));
        assert!(!user.wrote(&comment("mallory", "User", None)));
        let anonymous = IssueComment {
            user: None,
            ..comment("x", "User", None)
        };
        assert!(!user.wrote(&anonymous) && !app.wrote(&anonymous));
    }

    #[test]
    fn permission_mapping() {
        assert_eq!(
            Permission::from_api("write", Some("maintain")),
            Permission::Maintain
        );
        assert_eq!(Permission::from_api("admin", None), Permission::Admin);
        assert_eq!(
            Permission::from_api("read", Some("triage")),
            Permission::Triage
        );
        assert_eq!(Permission::from_api("none", None), Permission::None);
        assert_eq!(
            Permission::from_api("write", Some("custom-role")),
            Permission::Write
        );
        assert!(Permission::Maintain.may_steer());
        assert!(!Permission::Triage.may_steer());
    }

    #[test]
    fn dispatch_limits() {
        let mut inputs: BTreeMap<String, String> =
            (0..25).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(validate_dispatch_inputs(&inputs).is_ok());
        inputs.insert("k25".into(), "v".into());
        assert!(validate_dispatch_inputs(&inputs).is_err());
        let big: BTreeMap<String, String> = [("prompt".to_string(), "x".repeat(65_530))].into();
        assert!(validate_dispatch_inputs(&big).is_err());
    }

    #[test]
    fn base64_roundtrip() {
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGk=").unwrap(), b"hi");
        assert_eq!(decode_base64("").unwrap(), b"");
        assert!(decode_base64("a").is_none());
        assert!(decode_base64("a$==").is_none());
    }

    #[test]
    fn repo_names_and_encoding() {
        assert_eq!(RepoName::parse("o/r").unwrap().path(), "/repos/o/r");
        assert!(RepoName::parse("o").is_err());
        assert!(RepoName::parse("o/r/x").is_err());
        assert_eq!(enc("runs/a b/x.md"), "runs%2Fa%20b%2Fx.md");
    }

    #[test]
    fn next_pages_are_routes_under_the_base_url() {
        let next: http::Uri =
            "https://api.github.com/repositories/1/issues/7/comments?per_page=100&page=2"
                .parse()
                .unwrap();
        assert_eq!(
            next_route(&next, "https://api.github.com").as_deref(),
            Some("/repositories/1/issues/7/comments?per_page=100&page=2")
        );
        // A GitHub Enterprise Server link carries the API prefix the base URL already has.
        let ghes: http::Uri = "https://ghe.example/api/v3/repos/o/r/issues/7/comments?page=3"
            .parse()
            .unwrap();
        assert_eq!(
            next_route(&ghes, "https://ghe.example/api/v3").as_deref(),
            Some("/repos/o/r/issues/7/comments?page=3")
        );
    }

    proptest! {
        #[test]
        fn base64_never_panics(s in ".{0,64}") {
            let _ = decode_base64(&s);
        }
    }
}
