//! Typed webhook payloads for the events the App reacts to.
//!
//! Only the fields sota-bot reads are modelled; every other field is ignored, so new fields
//! GitHub adds never break parsing. Fields GitHub may send as `null` or omit are `Option`.

use serde::Deserialize;

/// GitHub caps webhook payloads at 25 MB: the listener refuses larger bodies and the queue
/// refuses to inflate a stored payload past it.
pub const MAX_PAYLOAD_BYTES: usize = 25 * 1024 * 1024;

/// A string GitHub sends from a known set that may grow: the values sota-bot acts on are
/// variants, anything else is kept as `Other` (a new value GitHub adds is not a parse error).
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
        #[serde(from = "String")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this version does not know.
            Other(String),
        }

        impl From<String> for $name {
            fn from(text: String) -> Self {
                match text.as_str() {
                    $($text => Self::$variant,)+
                    _ => Self::Other(text),
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                Self::from(text.to_string())
            }
        }

        impl $name {
            /// GitHub's spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Other(text) => text,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// The `action` of an `issues` event.
    IssuesAction {
        Opened = "opened",
        Edited = "edited",
        Reopened = "reopened",
        Closed = "closed",
        Deleted = "deleted",
        Labeled = "labeled",
        Unlabeled = "unlabeled",
    }
}

wire_enum! {
    /// The `action` of an `issue_comment` event.
    CommentAction {
        Created = "created",
        Edited = "edited",
        Deleted = "deleted",
    }
}

wire_enum! {
    /// The `action` of a `pull_request` event.
    PullRequestAction {
        Opened = "opened",
        Closed = "closed",
        Reopened = "reopened",
        Synchronize = "synchronize",
        Edited = "edited",
        ReadyForReview = "ready_for_review",
    }
}

wire_enum! {
    /// The `action` of a `workflow_run` or `workflow_job` event.
    WorkflowAction {
        Requested = "requested",
        Queued = "queued",
        Waiting = "waiting",
        InProgress = "in_progress",
        Completed = "completed",
    }
}

wire_enum! {
    /// The `action` of a `check_run` event.
    CheckRunAction {
        Created = "created",
        Completed = "completed",
        Rerequested = "rerequested",
        RequestedAction = "requested_action",
    }
}

wire_enum! {
    /// The `action` of an `installation` event.
    InstallationAction {
        Created = "created",
        Deleted = "deleted",
        Suspend = "suspend",
        Unsuspend = "unsuspend",
        NewPermissionsAccepted = "new_permissions_accepted",
    }
}

wire_enum! {
    /// Where a workflow run, job or check run is in its life.
    RunStatus {
        Requested = "requested",
        Queued = "queued",
        Pending = "pending",
        Waiting = "waiting",
        InProgress = "in_progress",
        Completed = "completed",
    }
}

wire_enum! {
    /// How a completed workflow run, job or check run ended.
    RunConclusion {
        Success = "success",
        Failure = "failure",
        Cancelled = "cancelled",
        TimedOut = "timed_out",
        Skipped = "skipped",
        Neutral = "neutral",
        ActionRequired = "action_required",
        Stale = "stale",
        StartupFailure = "startup_failure",
    }
}

/// A GitHub account (user, organisation or bot).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Account {
    pub login: String,
    pub id: u64,
    /// `User`, `Organization` or `Bot`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

impl Account {
    /// True for GitHub Apps and other bot accounts (their commands are ignored).
    pub fn is_bot(&self) -> bool {
        self.kind.as_deref() == Some("Bot") || self.login.ends_with("[bot]")
    }
}

/// The installation a delivery belongs to; absent from some example payloads.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct InstallationRef {
    pub id: u64,
}

/// A repository as carried in webhook payloads.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Repository {
    pub id: u64,
    pub name: String,
    pub full_name: String,
    pub owner: Account,
    #[serde(default)]
    pub default_branch: Option<String>,
    #[serde(default)]
    pub fork: Option<bool>,
    /// Whether the repository is private (the dashboard hides such campaigns).
    #[serde(default)]
    pub private: Option<bool>,
}

/// A label on an issue or pull request.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Label {
    pub name: String,
}

/// An issue (or the issue side of a pull request).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Issue {
    pub number: u64,
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    pub user: Account,
    #[serde(default)]
    pub labels: Vec<Label>,
    #[serde(default)]
    pub state: Option<String>,
    /// Present when the issue is a pull request.
    #[serde(default)]
    pub pull_request: Option<serde_json::Value>,
    #[serde(default)]
    pub html_url: Option<String>,
}

/// An issue or pull-request conversation comment.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Comment {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
    pub user: Account,
    #[serde(default)]
    pub html_url: Option<String>,
}

/// The `changes` object of an `edited` action.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Changes {
    #[serde(default)]
    pub body: Option<ChangedText>,
    #[serde(default)]
    pub title: Option<ChangedText>,
}

/// The previous value of an edited text field.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ChangedText {
    #[serde(default)]
    pub from: Option<String>,
}

/// `issues` event.
#[derive(Debug, Clone, Deserialize)]
pub struct IssuesEvent {
    pub action: IssuesAction,
    pub issue: Issue,
    #[serde(default)]
    pub changes: Option<Changes>,
    pub repository: Repository,
    pub sender: Account,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

/// `issue_comment` event (issues and pull-request conversations).
#[derive(Debug, Clone, Deserialize)]
pub struct IssueCommentEvent {
    pub action: CommentAction,
    pub issue: Issue,
    pub comment: Comment,
    #[serde(default)]
    pub changes: Option<Changes>,
    pub repository: Repository,
    pub sender: Account,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

/// One side (head or base) of a pull request.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct PullRequestRef {
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub sha: String,
    #[serde(default)]
    pub repo: Option<Repository>,
}

/// A pull request.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct PullRequest {
    pub number: u64,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub draft: Option<bool>,
    pub head: PullRequestRef,
    pub base: PullRequestRef,
    pub user: Account,
    #[serde(default)]
    pub html_url: Option<String>,
}

/// `pull_request` event.
#[derive(Debug, Clone, Deserialize)]
pub struct PullRequestEvent {
    pub action: PullRequestAction,
    pub number: u64,
    pub pull_request: PullRequest,
    pub repository: Repository,
    pub sender: Account,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

/// A repository named by its full name only (a workflow run's head repository).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct RepositoryRef {
    pub full_name: String,
}

/// A workflow run, as a `workflow_run` webhook carries it and as the API lists a workflow's
/// runs (both send the same object; only the fields sota-bot reads are modelled).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct WorkflowRun {
    pub id: u64,
    #[serde(default)]
    pub name: Option<String>,
    /// The run's title: the workflow's `run-name` (`sota <campaign> round N`).
    #[serde(default)]
    pub display_title: Option<String>,
    #[serde(default)]
    pub head_branch: Option<String>,
    pub head_sha: String,
    #[serde(default)]
    pub status: Option<RunStatus>,
    #[serde(default)]
    pub conclusion: Option<RunConclusion>,
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub run_attempt: Option<u64>,
    #[serde(default)]
    pub workflow_id: Option<u64>,
    /// The workflow file, `.github/workflows/<file>` (GitHub may append `@<ref>`).
    #[serde(default)]
    pub path: Option<String>,
    /// Where the run's code came from: the fork itself, or a pull request's repository.
    #[serde(default)]
    pub head_repository: Option<RepositoryRef>,
    #[serde(default)]
    pub html_url: Option<String>,
    /// When the run (this attempt) started, RFC 3339.
    #[serde(default)]
    pub run_started_at: Option<String>,
    /// Last change of the run; at completion, when it ended.
    #[serde(default)]
    pub updated_at: Option<String>,
}

impl WorkflowRun {
    /// True once the run has finished, whatever its conclusion.
    pub fn is_completed(&self) -> bool {
        self.status == Some(RunStatus::Completed)
    }

    /// True when the run finished successfully.
    pub fn succeeded(&self) -> bool {
        self.conclusion == Some(RunConclusion::Success)
    }

    /// The attempt this run object describes (GitHub omits it on first attempts in older
    /// payloads).
    pub fn attempt(&self) -> u64 {
        self.run_attempt.unwrap_or(1)
    }

    /// True when the run is a `workflow_dispatch` of `.github/workflows/<workflow>` whose
    /// code came from `repo` itself: what the App dispatches, and nothing a pull request
    /// (whose run may carry any title and branch name) can produce.
    pub fn is_dispatch_of(&self, repo: &str, workflow: &str) -> bool {
        let file = format!(".github/workflows/{workflow}");
        let path_ok = self.path.as_deref().is_some_and(|p| {
            p == file
                || p.strip_prefix(file.as_str())
                    .is_some_and(|rest| rest.starts_with('@'))
        });
        self.event.as_deref() == Some("workflow_dispatch")
            && path_ok
            && self
                .head_repository
                .as_ref()
                .is_some_and(|r| r.full_name.eq_ignore_ascii_case(repo))
    }
}

/// `workflow_run` event.
#[derive(Debug, Clone, Deserialize)]
pub struct WorkflowRunEvent {
    pub action: WorkflowAction,
    pub workflow_run: WorkflowRun,
    pub repository: Repository,
    pub sender: Account,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

/// A job of a workflow run.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct WorkflowJob {
    pub id: u64,
    pub run_id: u64,
    pub name: String,
    #[serde(default)]
    pub status: Option<RunStatus>,
    #[serde(default)]
    pub conclusion: Option<RunConclusion>,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub runner_name: Option<String>,
    #[serde(default)]
    pub head_sha: Option<String>,
}

/// `workflow_job` event.
#[derive(Debug, Clone, Deserialize)]
pub struct WorkflowJobEvent {
    pub action: WorkflowAction,
    pub workflow_job: WorkflowJob,
    pub repository: Repository,
    pub sender: Account,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

/// The installation object of an `installation` event.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Installation {
    pub id: u64,
    pub account: Account,
}

/// A repository listed in an `installation` event.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct InstalledRepository {
    pub full_name: String,
}

/// `installation` event.
#[derive(Debug, Clone, Deserialize)]
pub struct InstallationEvent {
    pub action: InstallationAction,
    pub installation: Installation,
    #[serde(default)]
    pub repositories: Option<Vec<InstalledRepository>>,
    pub sender: Account,
}

/// A check run.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct CheckRun {
    pub id: u64,
    pub name: String,
    pub head_sha: String,
    #[serde(default)]
    pub status: Option<RunStatus>,
    #[serde(default)]
    pub conclusion: Option<RunConclusion>,
    #[serde(default)]
    pub external_id: Option<String>,
}

/// The button a user pressed on a check run.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct RequestedAction {
    pub identifier: String,
}

/// `check_run` event.
#[derive(Debug, Clone, Deserialize)]
pub struct CheckRunEvent {
    pub action: CheckRunAction,
    pub check_run: CheckRun,
    #[serde(default)]
    pub requested_action: Option<RequestedAction>,
    pub repository: Repository,
    pub sender: Account,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

/// `ping` event, sent when a webhook is created.
#[derive(Debug, Clone, Deserialize)]
pub struct PingEvent {
    #[serde(default)]
    pub zen: Option<String>,
    #[serde(default)]
    pub hook_id: Option<u64>,
}

/// A parsed delivery. Events the App does not model are kept by name only.
#[derive(Debug, Clone)]
pub enum WebhookEvent {
    Issues(Box<IssuesEvent>),
    IssueComment(Box<IssueCommentEvent>),
    PullRequest(Box<PullRequestEvent>),
    WorkflowRun(Box<WorkflowRunEvent>),
    WorkflowJob(Box<WorkflowJobEvent>),
    Installation(Box<InstallationEvent>),
    CheckRun(Box<CheckRunEvent>),
    Ping(PingEvent),
    /// Any other event name; its payload is not interpreted.
    Other {
        name: String,
    },
}

/// A payload that does not match the shape of its event.
#[derive(Debug, thiserror::Error)]
#[error("`{event}` payload is invalid at line {line}, column {column}: {message}")]
pub struct EventParseError {
    pub event: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

fn decode<T: serde::de::DeserializeOwned>(event: &str, body: &[u8]) -> Result<T, EventParseError> {
    serde_json::from_slice(body).map_err(|e| EventParseError {
        event: event.to_string(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

impl WebhookEvent {
    /// Parses a raw body according to the `X-GitHub-Event` name.
    pub fn parse(event: &str, body: &[u8]) -> Result<Self, EventParseError> {
        Ok(match event {
            "issues" => Self::Issues(Box::new(decode(event, body)?)),
            "issue_comment" => Self::IssueComment(Box::new(decode(event, body)?)),
            "pull_request" => Self::PullRequest(Box::new(decode(event, body)?)),
            "workflow_run" => Self::WorkflowRun(Box::new(decode(event, body)?)),
            "workflow_job" => Self::WorkflowJob(Box::new(decode(event, body)?)),
            "installation" => Self::Installation(Box::new(decode(event, body)?)),
            "check_run" => Self::CheckRun(Box::new(decode(event, body)?)),
            "ping" => Self::Ping(decode(event, body)?),
            other => {
                // Still require well-formed JSON so garbage is reported, not queued silently.
                decode::<serde::de::IgnoredAny>(event, body)?;
                Self::Other {
                    name: other.to_string(),
                }
            }
        })
    }

    /// The installation id carried by the payload, when there is one.
    pub fn installation_id(&self) -> Option<u64> {
        match self {
            Self::Issues(e) => e.installation.as_ref().map(|i| i.id),
            Self::IssueComment(e) => e.installation.as_ref().map(|i| i.id),
            Self::PullRequest(e) => e.installation.as_ref().map(|i| i.id),
            Self::WorkflowRun(e) => e.installation.as_ref().map(|i| i.id),
            Self::WorkflowJob(e) => e.installation.as_ref().map(|i| i.id),
            Self::Installation(e) => Some(e.installation.id),
            Self::CheckRun(e) => e.installation.as_ref().map(|i| i.id),
            Self::Ping(_) | Self::Other { .. } => None,
        }
    }
}

/// The `action` field and installation id, read without parsing the full payload shape
/// (used at ingest time for every event, including unmodelled ones).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DeliveryHead {
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub installation: Option<InstallationRef>,
}

impl DeliveryHead {
    /// Parses the head of any payload; fails only on malformed JSON.
    pub fn parse(body: &[u8]) -> Result<Self, EventParseError> {
        decode("delivery", body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn minimal_issue_comment_parses_and_ignores_extra_fields() {
        let body = br#"{"action":"created","extra":{"x":1},
            "issue":{"number":3,"title":"t","user":{"login":"a","id":1,"type":"User"}},
            "comment":{"id":9,"body":"/sota help","user":{"login":"a","id":1,"type":"User"}},
            "repository":{"id":1,"name":"r","full_name":"o/r","owner":{"login":"o","id":2}},
            "sender":{"login":"a","id":1,"type":"User"},"installation":{"id":77}}"#;
        let event = WebhookEvent::parse("issue_comment", body).unwrap();
        assert_eq!(event.installation_id(), Some(77));
        match event {
            WebhookEvent::IssueComment(e) => {
                assert_eq!(e.comment.body.as_deref(), Some("/sota help"));
                assert!(!e.sender.is_bot());
            }
            other => panic!("wrong variant {other:?}"),
        }
    }

    #[test]
    fn wrong_shape_reports_event_and_position() {
        let err = WebhookEvent::parse("issues", br#"{"action":"opened"}"#).unwrap_err();
        assert_eq!(err.event, "issues");
        assert!(err.message.contains("issue"), "{err}");
        assert!(WebhookEvent::parse("push", b"{not json").is_err());
        assert!(matches!(
            WebhookEvent::parse("push", b"{}").unwrap(),
            WebhookEvent::Other { .. }
        ));
    }

    #[test]
    fn actions_status_and_conclusion_are_typed_and_new_values_are_kept() {
        let run = |action: &str, status: &str, conclusion: &str| {
            let body = serde_json::json!({
                "action": action,
                "workflow_run": {"id": 5, "head_sha": "abc", "status": status, "conclusion": conclusion},
                "repository": {"id": 1, "name": "r", "full_name": "o/r", "owner": {"login": "o", "id": 2}},
                "sender": {"login": "a", "id": 1}
            });
            match WebhookEvent::parse("workflow_run", body.to_string().as_bytes()).unwrap() {
                WebhookEvent::WorkflowRun(e) => *e,
                other => panic!("wrong variant {other:?}"),
            }
        };
        let done = run("completed", "completed", "success");
        assert_eq!(done.action, WorkflowAction::Completed);
        assert!(done.workflow_run.is_completed() && done.workflow_run.succeeded());
        let cancelled = run("completed", "completed", "cancelled");
        assert_eq!(
            cancelled.workflow_run.conclusion,
            Some(RunConclusion::Cancelled)
        );
        assert!(!cancelled.workflow_run.succeeded());
        // Values GitHub may add later parse, kept by name.
        let new = run("reviewed", "deferred", "postponed");
        assert_eq!(new.action, WorkflowAction::Other("reviewed".into()));
        assert_eq!(
            new.workflow_run.status,
            Some(RunStatus::Other("deferred".into()))
        );
        assert!(!new.workflow_run.is_completed());
        assert_eq!(new.workflow_run.conclusion.unwrap().as_str(), "postponed");
        for text in [
            "opened",
            "edited",
            "reopened",
            "closed",
            "deleted",
            "labeled",
            "unlabeled",
            "pinned",
        ] {
            assert_eq!(IssuesAction::from(text).as_str(), text);
        }
        assert_eq!(CommentAction::from("edited"), CommentAction::Edited);
        assert_eq!(RunConclusion::TimedOut.to_string(), "timed_out");
    }

    proptest! {
        #[test]
        fn parse_never_panics(event in "(issues|issue_comment|pull_request|ping|push|check_run)", body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = WebhookEvent::parse(&event, &body);
            let _ = DeliveryHead::parse(&body);
        }
    }
}
