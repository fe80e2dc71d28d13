//! What the App may do on GitHub, derived from what its code calls.
//!
//! [`ENDPOINTS`] lists every GitHub endpoint sota-bot sends a request to, by the code that
//! sends it (a `GitHubApi` method, App authentication, `app create`, `doctor`), with the
//! credential it uses and, for installation tokens, the App permission GitHub requires
//! (as in GitHub's "Permissions required for GitHub Apps" reference). [`EVENTS`] lists the
//! webhook events the handler routes and the permission each subscription needs. The App
//! manifest's permissions and events are computed from these two tables, so a new call
//! without an entry fails the tests (`tests/app_setup.rs` records every request the code
//! makes and looks each one up here) instead of failing in production with a 403.

use std::collections::BTreeMap;

/// Read or write access to one permission (GitHub's `read` / `write`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    Read,
    Write,
}

impl Access {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }

    /// Parses GitHub's spelling (`admin` counts as more than write).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "read" => Some(Self::Read),
            "write" | "admin" => Some(Self::Write),
            _ => None,
        }
    }
}

/// How a request authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// An installation token: needs this repository permission.
    Installation {
        permission: &'static str,
        access: Access,
    },
    /// The App's own JWT (`/app/...` endpoints): no installation permission involved.
    AppJwt,
    /// No credentials (the manifest conversion: the one-time code is the credential).
    Anonymous,
}

/// One endpoint the code calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// The code that calls it: a `GitHubApi` method name, or `auth`, `app create`, `doctor`.
    pub caller: &'static str,
    /// HTTP method.
    pub method: &'static str,
    /// Path template as in GitHub's OpenAPI description (`graphql` for the GraphQL call).
    pub path: &'static str,
    pub auth: Auth,
    /// Why sota-bot calls it (shown in the README's permission table).
    pub why: &'static str,
}

const fn inst(permission: &'static str, access: Access) -> Auth {
    Auth::Installation { permission, access }
}

use Access::{Read, Write};

/// Every endpoint sota-bot calls. Issue comments, reactions and labels go to issues and to
/// campaign PRs alike; GitHub accepts `pull_requests: write` for the PR side, which the
/// App holds for `create_pull_request`.
pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        caller: "collaborator_permission",
        method: "GET",
        path: "/repos/{owner}/{repo}/collaborators/{username}/permission",
        auth: inst("metadata", Read),
        why: "only people with write access may start or steer a campaign",
    },
    Endpoint {
        caller: "list_issue_comments",
        method: "GET",
        path: "/repos/{owner}/{repo}/issues/{issue_number}/comments",
        auth: inst("issues", Read),
        why: "find its own status comment to edit instead of posting twice",
    },
    Endpoint {
        caller: "create_issue_comment",
        method: "POST",
        path: "/repos/{owner}/{repo}/issues/{issue_number}/comments",
        auth: inst("issues", Write),
        why: "reply to requests and commands, post round reports",
    },
    Endpoint {
        caller: "update_issue_comment",
        method: "PATCH",
        path: "/repos/{owner}/{repo}/issues/comments/{comment_id}",
        auth: inst("issues", Write),
        why: "keep one status comment up to date, fold old reports",
    },
    Endpoint {
        caller: "add_reaction",
        method: "POST",
        path: "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions",
        auth: inst("issues", Write),
        why: "acknowledge a `/sota` command (eyes) or a refusal (confused)",
    },
    Endpoint {
        caller: "add_labels",
        method: "POST",
        path: "/repos/{owner}/{repo}/issues/{issue_number}/labels",
        auth: inst("issues", Write),
        why: "label the request issue and the campaign PR",
    },
    Endpoint {
        caller: "create_pull_request",
        method: "POST",
        path: "/repos/{owner}/{repo}/pulls",
        auth: inst("pull_requests", Write),
        why: "open the campaign's draft PR",
    },
    Endpoint {
        caller: "mark_ready_for_review",
        method: "POST",
        path: "graphql",
        auth: inst("pull_requests", Write),
        why: "mark the campaign PR ready when the campaign finishes",
    },
    Endpoint {
        caller: "get_branch",
        method: "GET",
        path: "/repos/{owner}/{repo}/branches/{branch}",
        auth: inst("contents", Read),
        why: "find the base branch's head",
    },
    Endpoint {
        caller: "get_ref",
        method: "GET",
        path: "/repos/{owner}/{repo}/git/ref/{ref}",
        auth: inst("contents", Read),
        why: "read the campaign branch's head",
    },
    Endpoint {
        caller: "create_ref",
        method: "POST",
        path: "/repos/{owner}/{repo}/git/refs",
        auth: inst("contents", Write),
        why: "create the campaign branch",
    },
    Endpoint {
        caller: "dispatch_workflow",
        method: "POST",
        path: "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches",
        auth: inst("actions", Write),
        why: "start the baseline and round workflows on the GPU runners",
    },
    Endpoint {
        caller: "list_workflow_runs",
        method: "GET",
        path: "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs",
        auth: inst("actions", Read),
        why: "never dispatch a step twice; repair completions whose webhook was lost",
    },
    Endpoint {
        caller: "check_runs_named",
        method: "GET",
        path: "/repos/{owner}/{repo}/commits/{ref}/check-runs",
        auth: inst("checks", Read),
        why: "never create a round's gate check twice",
    },
    Endpoint {
        caller: "create_check_run",
        method: "POST",
        path: "/repos/{owner}/{repo}/check-runs",
        auth: inst("checks", Write),
        why: "report the review gate's verdict on each round commit",
    },
    Endpoint {
        caller: "list_branches_with_prefix",
        method: "GET",
        path: "/repos/{owner}/{repo}/git/matching-refs/{ref}",
        auth: inst("contents", Read),
        why: "`sota-bot recover` finds the campaign branches",
    },
    Endpoint {
        caller: "pulls_for_branch",
        method: "GET",
        path: "/repos/{owner}/{repo}/pulls",
        auth: inst("pull_requests", Read),
        why: "`sota-bot recover` finds each campaign's PR; a resumed start finds the PR an earlier attempt opened",
    },
    Endpoint {
        caller: "last_commit_touching",
        method: "GET",
        path: "/repos/{owner}/{repo}/commits",
        auth: inst("contents", Read),
        why: "find a round's commit on the branch (the newest that wrote its gate.json)",
    },
    Endpoint {
        caller: "get_commit_tree",
        method: "GET",
        path: "/repos/{owner}/{repo}/git/commits/{commit_sha}",
        auth: inst("contents", Read),
        why: "build the run-directory commit on the branch head",
    },
    Endpoint {
        caller: "tree_file_paths",
        method: "GET",
        path: "/repos/{owner}/{repo}/git/trees/{tree_sha}",
        auth: inst("contents", Read),
        why: "link only the round artifacts the campaign branch holds, in one request",
    },
    Endpoint {
        caller: "create_tree",
        method: "POST",
        path: "/repos/{owner}/{repo}/git/trees",
        auth: inst("contents", Write),
        why: "commit the campaign's run-directory skeleton",
    },
    Endpoint {
        caller: "create_commit",
        method: "POST",
        path: "/repos/{owner}/{repo}/git/commits",
        auth: inst("contents", Write),
        why: "commit the campaign's run-directory skeleton",
    },
    Endpoint {
        caller: "get_file_contents",
        method: "GET",
        path: "/repos/{owner}/{repo}/contents/{path}",
        auth: inst("contents", Read),
        why: "read `.github/sota-bot.yml`, checkpoints and gate inputs",
    },
    Endpoint {
        caller: "search_pull_requests",
        method: "GET",
        path: "/search/issues",
        auth: inst("metadata", Read),
        why: "upstream pull requests in flight for the model (public repositories need no more)",
    },
    Endpoint {
        caller: "auth",
        method: "POST",
        path: "/app/installations/{installation_id}/access_tokens",
        auth: Auth::AppJwt,
        why: "installation tokens for the calls above",
    },
    Endpoint {
        caller: "app create",
        method: "POST",
        path: "/app-manifests/{code}/conversions",
        auth: Auth::Anonymous,
        why: "turn the manifest flow's code into the App's id, key and webhook secret",
    },
    Endpoint {
        caller: "doctor",
        method: "GET",
        path: "/app",
        auth: Auth::AppJwt,
        why: "the App's own permissions and events",
    },
    Endpoint {
        caller: "doctor",
        method: "GET",
        path: "/repos/{owner}/{repo}/installation",
        auth: Auth::AppJwt,
        why: "whether the App is installed on the repository, with which permissions",
    },
    Endpoint {
        caller: "doctor",
        method: "GET",
        path: "/app/hook/config",
        auth: Auth::AppJwt,
        why: "the webhook URL and content type GitHub delivers to",
    },
    Endpoint {
        caller: "doctor",
        method: "GET",
        path: "/app/hook/deliveries",
        auth: Auth::AppJwt,
        why: "recent webhook deliveries and their failures",
    },
    Endpoint {
        caller: "doctor",
        method: "GET",
        path: "/repos/{owner}/{repo}",
        auth: inst("metadata", Read),
        why: "the default branch and repository id",
    },
    Endpoint {
        caller: "doctor",
        method: "GET",
        path: "/repos/{owner}/{repo}/actions/runners",
        auth: inst("administration", Read),
        why: "self-hosted runners online with the labels the config asks for",
    },
    Endpoint {
        caller: "doctor",
        method: "GET",
        path: "/repos/{owner}/{repo}/actions/secrets",
        auth: inst("secrets", Read),
        why: "the agent's secrets exist (names only; values are never readable)",
    },
    Endpoint {
        caller: "doctor",
        method: "GET",
        path: "/repos/{owner}/{repo}/actions/organization-secrets",
        auth: inst("secrets", Read),
        why: "organization secrets shared with the repository count too",
    },
];

/// A webhook event the App subscribes to, and the permission GitHub requires for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSubscription {
    pub event: &'static str,
    pub permission: &'static str,
    pub why: &'static str,
}

/// The events the webhook handler routes (`WebhookEvent::parse` gives each a typed
/// variant). `installation` and `ping` are sent to every App without a subscription.
pub const EVENTS: &[EventSubscription] = &[
    EventSubscription {
        event: "issues",
        permission: "issues",
        why: "campaign requests (opened, edited until they parse)",
    },
    EventSubscription {
        event: "issue_comment",
        permission: "issues",
        why: "`/sota` commands on issues and campaign PRs",
    },
    EventSubscription {
        event: "pull_request",
        permission: "pull_requests",
        why: "a campaign PR closed or merged",
    },
    EventSubscription {
        event: "workflow_run",
        permission: "actions",
        why: "a baseline or round workflow completed",
    },
    EventSubscription {
        event: "workflow_job",
        permission: "actions",
        why: "a runner picked up or finished a campaign job",
    },
    EventSubscription {
        event: "check_run",
        permission: "checks",
        why: "re-run requests on a round's gate check",
    },
];

/// The repository permissions the App needs: for each permission the highest access any
/// endpoint or event subscription needs. `metadata: read` is always included (GitHub
/// grants it to every App).
pub fn required_permissions() -> BTreeMap<&'static str, Access> {
    let mut out: BTreeMap<&'static str, Access> = BTreeMap::new();
    out.insert("metadata", Read);
    let mut need = |permission: &'static str, access: Access| {
        let slot = out.entry(permission).or_insert(access);
        *slot = (*slot).max(access);
    };
    for e in ENDPOINTS {
        if let Auth::Installation { permission, access } = e.auth {
            need(permission, access);
        }
    }
    for s in EVENTS {
        need(s.permission, Read);
    }
    out
}

/// The events the App subscribes to.
pub fn required_events() -> Vec<&'static str> {
    EVENTS.iter().map(|s| s.event).collect()
}

/// The endpoint entry for a request, if the table has one.
pub fn endpoint_for(method: &str, path_template: &str) -> Option<&'static Endpoint> {
    ENDPOINTS
        .iter()
        .find(|e| e.method.eq_ignore_ascii_case(method) && e.path == path_template)
}

/// A permission granted below what sota-bot needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionGap {
    pub permission: &'static str,
    pub needed: Access,
    /// What is granted (`None`: not at all).
    pub granted: Option<Access>,
}

impl std::fmt::Display for PermissionGap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.granted {
            Some(g) => write!(
                f,
                "{}: {} (granted: {})",
                self.permission,
                self.needed.as_str(),
                g.as_str()
            ),
            None => write!(
                f,
                "{}: {} (not granted)",
                self.permission,
                self.needed.as_str()
            ),
        }
    }
}

/// The required permissions that `granted` (as GitHub reports them: name -> `read` /
/// `write` / `admin`) lacks or grants too weakly.
pub fn permission_gaps(granted: &BTreeMap<String, String>) -> Vec<PermissionGap> {
    required_permissions()
        .into_iter()
        .filter_map(|(permission, needed)| {
            let have = granted.get(permission).and_then(|a| Access::parse(a));
            (have < Some(needed)).then_some(PermissionGap {
                permission,
                needed,
                granted: have,
            })
        })
        .collect()
}

/// The required events missing from `subscribed`.
pub fn missing_events(subscribed: &[String]) -> Vec<&'static str> {
    required_events()
        .into_iter()
        .filter(|e| !subscribed.iter().any(|s| s == e))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::events::WebhookEvent;

    /// The names of the `GitHubApi` trait's methods, read from its source: a method added
    /// to the trait without a table entry fails `every_api_method_has_an_endpoint_entry`.
    fn trait_methods() -> Vec<String> {
        let source = include_str!("api.rs");
        let start = source.find("pub trait GitHubApi").expect("trait in api.rs");
        let body = &source[start..];
        let end = body.find("\n}\n").expect("end of trait");
        body[..end]
            .lines()
            .filter_map(|l| l.trim().strip_prefix("fn "))
            .map(|rest| rest.split(['<', '(']).next().unwrap_or("").to_string())
            .collect()
    }

    #[test]
    fn every_api_method_has_an_endpoint_entry() {
        let methods = trait_methods();
        assert!(methods.len() >= 20, "parsed {methods:?}");
        // Methods that send no request of their own with App credentials: `identity` is the
        // App's id from its key, `own_issue_comments` filters `list_issue_comments`.
        const NO_REQUEST_OF_THEIR_OWN: &[&str] = &["identity", "own_issue_comments"];
        for m in methods
            .iter()
            .filter(|m| !NO_REQUEST_OF_THEIR_OWN.contains(&m.as_str()))
        {
            assert!(
                ENDPOINTS.iter().any(|e| e.caller == m),
                "GitHubApi::{m} has no entry in permissions::ENDPOINTS"
            );
        }
        for e in ENDPOINTS
            .iter()
            .filter(|e| !matches!(e.caller, "auth" | "app create" | "doctor"))
        {
            assert!(
                methods.iter().any(|m| m == e.caller),
                "ENDPOINTS names `{}`, which GitHubApi does not have",
                e.caller
            );
        }
    }

    #[test]
    fn permissions_are_the_most_any_call_needs() {
        let p = required_permissions();
        let text: Vec<String> = p
            .iter()
            .map(|(k, v)| format!("{k}:{}", v.as_str()))
            .collect();
        assert_eq!(
            text,
            [
                "actions:write",
                "administration:read",
                "checks:write",
                "contents:write",
                "issues:write",
                "metadata:read",
                "pull_requests:write",
                "secrets:read"
            ]
        );
        // No entry asks for a permission the App would not otherwise hold at that level.
        for e in ENDPOINTS {
            if let Auth::Installation { permission, access } = e.auth {
                assert!(p[permission] >= access, "{e:?}");
            }
        }
    }

    #[test]
    fn every_subscribed_event_is_routed_by_the_handler() {
        // A routed event has a typed payload, so an empty object does not parse; an event
        // the handler ignores parses as `Other`.
        for s in EVENTS {
            assert!(
                WebhookEvent::parse(s.event, b"{}").is_err(),
                "`{}` is subscribed but the handler does not route it",
                s.event
            );
        }
        assert!(matches!(
            WebhookEvent::parse("push", b"{}"),
            Ok(WebhookEvent::Other { .. })
        ));
    }

    #[test]
    fn gaps_name_missing_and_weak_permissions() {
        let mut granted: BTreeMap<String, String> = required_permissions()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.as_str().to_string()))
            .collect();
        assert!(permission_gaps(&granted).is_empty());
        granted.insert("checks".into(), "read".into());
        granted.remove("actions");
        granted.insert("contents".into(), "admin".into());
        let gaps = permission_gaps(&granted);
        assert_eq!(
            gaps.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "actions: write (not granted)",
                "checks: write (granted: read)"
            ]
        );
        assert_eq!(
            missing_events(&["issues".into(), "check_run".into()]),
            [
                "issue_comment",
                "pull_request",
                "workflow_run",
                "workflow_job"
            ]
        );
    }

    #[test]
    fn endpoint_lookup() {
        assert_eq!(
            endpoint_for("post", "/repos/{owner}/{repo}/pulls").map(|e| e.caller),
            Some("create_pull_request")
        );
        assert!(endpoint_for("DELETE", "/repos/{owner}/{repo}/pulls").is_none());
    }
}
