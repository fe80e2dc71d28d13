//! Why the App will not start a campaign from a request, as plain data: each start step
//! returns one of these instead of writing its own reply, and `render::refusal` turns it
//! into the one comment the request issue gets.

use crate::github::api::Permission;

/// A campaign start the App declines, with what the requester needs to know to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// `/sota start` on an issue that is not a campaign request.
    #[error("not a campaign request issue")]
    NotARequest,
    /// `/sota start` on a request whose campaign already started.
    #[error("the request already has a campaign")]
    AlreadyStarted,
    /// The person starting it may not write to the request repository.
    #[error("@{starter} may not start campaigns on {repo}")]
    NoPermission { starter: String, repo: String },
    /// Someone else's request text, touched by a writer without an explicit `/sota start`.
    #[error("the request's author @{author} may not start campaigns on {repo}")]
    AuthorCannotStart {
        author: String,
        repo: String,
        permission: Permission,
    },
    /// The repository config on the default branch does not parse.
    #[error("the repository config has problems")]
    RepoConfig { path: String, problems: Vec<String> },
    /// The issue form is incomplete or contradicts the repository config.
    #[error("the request has problems")]
    Request { problems: Vec<String> },
    /// The config names a fork the starter may not write to.
    #[error("@{starter} may not write to the fork {fork}")]
    ForkNotWritable {
        config_path: String,
        fork: String,
        starter: String,
        permission: Permission,
    },
    /// The fork's runner config does not parse.
    #[error("the runner config on {fork} is invalid")]
    RunnerConfig {
        path: String,
        fork: String,
        error: String,
    },
    /// The runner config names a bench plan the base branch lacks.
    #[error("the bench plan {plan} is missing")]
    PlanMissing {
        plan: String,
        config_path: String,
        fork: String,
        base: String,
    },
    /// The request and plan do not make a campaign (problems the requester can fix).
    #[error("the campaign input has problems")]
    Campaign { problems: Vec<String> },
    /// The request and plan do not make a campaign for another reason.
    #[error("{0}")]
    Input(String),
    /// One campaign per model and fork: another one is active.
    #[error("a campaign for {model} is already active on {fork}")]
    AlreadyActive {
        model: String,
        fork: String,
        /// The active campaign, when the store still names it: (id, request repository, issue).
        other: Option<(String, String, u64)>,
    },
}
