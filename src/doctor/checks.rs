//! Each doctor check as a pure function of what GitHub and the database said.

use crate::campaign::repo_config::{parse_repo_config, RepoConfig};
use crate::github::app_client::{AppInfo, Delivery, HookConfig, InstallationInfo, Runner};
use crate::github::permissions::{missing_events, permission_gaps, ENDPOINTS};
use crate::github::{GitHubError, RepoName};
use crate::server::queue::JobRow;
use crate::setup::fork_files::{is_pristine, managed_files, TEMPLATE_ACTION_REF};

use super::Check;

/// The placeholder `fork:` of the config `sota-bot init` installs.
pub const PLACEHOLDER_FORK: &str = "owner/sglang";

/// Path of the repository config.
pub const CONFIG_PATH: &str = ".github/sota-bot.yml";

/// The App's credentials worked (or why not).
pub fn credentials(app: Result<&AppInfo, &GitHubError>, api_url: &str) -> Check {
    match app {
        Ok(app) => Check::pass(
            "credentials",
            format!("App `{}` (id {}) authenticated", app.name, app.id),
        ),
        Err(e) if matches!(e.status(), Some(401 | 403 | 404)) => Check::fail(
            "credentials",
            format!("GitHub rejected the App's JWT: {e}"),
            "check `app_id` and `private_key_path` (the key must be one generated in this App's \
             settings, not revoked) and that this machine's clock is right",
        ),
        Err(e) => Check::fail(
            "credentials",
            format!("cannot reach GitHub at {api_url}: {e}"),
            "check the network, proxy settings and `github_api_url`",
        ),
    }
}

/// The App is installed on `repo` (and not suspended).
pub fn installation(repo: &RepoName, app: &AppInfo, inst: Option<&InstallationInfo>) -> Check {
    let name = format!("installation {repo}");
    match inst {
        None => Check::fail(
            name,
            format!("the App `{}` is not installed on {repo}", app.name),
            format!(
                "install it on {repo}: {}/installations/new",
                app.html_url.trim_end_matches('/')
            ),
        ),
        Some(i) if i.suspended_at.is_some() => Check::fail(
            name,
            format!("installation {} is suspended", i.id),
            format!(
                "unsuspend it at {}",
                i.html_url
                    .as_deref()
                    .unwrap_or("the installation's settings")
            ),
        ),
        Some(i) => Check::pass(name, format!("installed (installation {})", i.id)),
    }
}

/// True when only `sota-bot doctor` calls endpoints needing `permission`.
fn doctor_only(permission: &str) -> bool {
    let mut users = ENDPOINTS.iter().filter(|e| {
        matches!(e.auth, crate::github::permissions::Auth::Installation { permission: p, .. } if p == permission)
    });
    users.all(|e| e.caller == "doctor")
}

/// The installation grants every permission and event the code needs.
pub fn permissions_and_events(app: &AppInfo, inst: &InstallationInfo) -> Vec<Check> {
    let accept = format!(
        "accept the App's requested permissions at {}",
        inst.html_url
            .as_deref()
            .unwrap_or("the installation's settings")
    );
    let edit_app = format!(
        "the App's settings do not request them: set them under Permissions & events at {} \
         (or create the App again with `sota-bot app create`), then {accept}",
        app.html_url
    );
    let mut out = Vec::new();
    let gaps = permission_gaps(&inst.permissions);
    let app_gaps = permission_gaps(&app.permissions);
    if gaps.is_empty() {
        out.push(Check::pass(
            "permissions",
            format!(
                "all {} permissions granted",
                crate::github::permissions::required_permissions().len()
            ),
        ));
    } else {
        let details: Vec<String> = gaps.iter().map(ToString::to_string).collect();
        let fix = if app_gaps.is_empty() {
            accept.clone()
        } else {
            edit_app.clone()
        };
        let check = if gaps.iter().all(|g| doctor_only(g.permission)) {
            Check::warn(
                "permissions",
                "only the permissions doctor uses are missing: runners or secrets cannot be checked",
                fix,
            )
        } else {
            Check::fail(
                "permissions",
                format!("{} permission(s) missing", gaps.len()),
                fix,
            )
        };
        out.push(check.with_details(details));
    }
    let missing = missing_events(&inst.events);
    if missing.is_empty() {
        out.push(Check::pass(
            "events",
            "subscribed to every event the App handles",
        ));
    } else {
        let fix = if missing_events(&app.events).is_empty() {
            accept
        } else {
            edit_app
        };
        out.push(Check::fail(
            "events",
            format!("not subscribed to: {}", missing.join(", ")),
            fix,
        ));
    }
    out
}

/// The action reference a workflow was installed with, when it is one `init` would write.
fn installed_as(path: &str, text: &str) -> Option<String> {
    let candidates = text.lines().filter_map(|l| {
        let value = l.trim().strip_prefix("uses:")?;
        Some(value.split('#').next()?.trim().to_string())
    });
    let mut refs: Vec<String> = vec![TEMPLATE_ACTION_REF.to_string()];
    refs.extend(candidates);
    refs.into_iter().find(|r| {
        managed_files(r)
            .iter()
            .any(|f| f.path == path && f.content == text)
    })
}

/// A file `sota-bot init` installs is on `branch` and equal to what init writes.
pub fn managed_file(repo: &RepoName, branch: &str, path: &str, text: Option<&str>) -> Check {
    let name = path.rsplit('/').next().unwrap_or(path).to_string();
    let Some(text) = text else {
        return Check::fail(
            name,
            format!("`{path}` is not on `{branch}` of {repo}"),
            format!(
                "run `sota-bot init --repo <checkout of {repo}>`, commit and push to `{branch}` \
                 (workflow_dispatch only finds workflows on the default branch)"
            ),
        );
    };
    if let Some(action) = installed_as(path, text) {
        return Check::pass(
            name,
            format!("on `{branch}`, as `sota-bot init` writes it (action {action})"),
        );
    }
    if is_pristine(text) {
        return Check::warn(
            name,
            format!("on `{branch}`, installed by another sota-bot version"),
            "run `sota-bot init` with this version in a checkout, commit and push",
        );
    }
    Check::warn(
        name,
        format!("on `{branch}`, but edited since `sota-bot init` wrote it"),
        "compare with `sota-bot init --dry-run --repo <checkout>` (it prints the diff); keep the \
         edit only if it is intended",
    )
}

/// `.github/sota-bot.yml` parses and names a real fork.
pub fn config(repo: &RepoName, branch: &str, text: Option<&str>) -> (Check, Option<RepoConfig>) {
    let name = "config";
    let Some(text) = text else {
        return (
            Check::warn(
                name,
                format!("no `{CONFIG_PATH}` on `{branch}`: campaigns use the built-in defaults on {repo}"),
                "run `sota-bot init` in a checkout, edit `.github/sota-bot.yml`, commit and push",
            ),
            Some(RepoConfig::default()),
        );
    };
    match parse_repo_config(text) {
        Err(problems) => (
            Check::fail(
                name,
                format!(
                    "`{CONFIG_PATH}` on `{branch}` has {} problem(s)",
                    problems.len()
                ),
                "fix them (`sota-bot request check` shows the same messages) and push",
            )
            .with_details(problems.iter().map(ToString::to_string).collect()),
            None,
        ),
        Ok(c) if c.fork.as_deref() == Some(PLACEHOLDER_FORK) => (
            Check::fail(
                name,
                format!("`fork:` is still the template's placeholder `{PLACEHOLDER_FORK}`"),
                format!(
                    "set `fork:` to the SGLang fork campaigns push to, or delete it to use {repo}"
                ),
            ),
            None,
        ),
        Ok(c) => {
            let fork = c.fork.clone().unwrap_or_else(|| repo.to_string());
            let summary = format!(
                "valid: fork {fork}, base branch `{}`, agent {}",
                c.base_branch,
                c.agent.preset.as_str()
            );
            (Check::pass(name, summary), Some(c))
        }
    }
}

/// The runner label sets campaigns dispatch to, as the config decides them.
pub fn wanted_labels(config: &RepoConfig) -> Vec<Vec<String>> {
    let mut wanted: Vec<Vec<String>> = config
        .runner_labels
        .values()
        .flat_map(|by_count| by_count.values().cloned())
        .collect();
    if let Some(gpu) = &config.defaults.gpu_model {
        wanted.push(config.runner_labels_for(gpu, config.defaults.gpu_count));
    }
    wanted.sort();
    wanted.dedup();
    wanted
}

fn has_labels(runner: &Runner, labels: &[String]) -> bool {
    labels.iter().all(|want| {
        runner
            .labels
            .iter()
            .any(|l| l.name.eq_ignore_ascii_case(want))
    })
}

fn forbidden(e: &GitHubError) -> bool {
    matches!(e.status(), Some(403))
}

/// Runners online with each label set the config asks for.
pub fn runners(
    fork: &RepoName,
    wanted: &[Vec<String>],
    listed: Result<&[Runner], &GitHubError>,
) -> Check {
    let name = "runners";
    let runners = match listed {
        Ok(r) => r,
        Err(e) if forbidden(e) => {
            return Check::warn(
                name,
                format!("cannot list the runners of {fork}: {e}"),
                "grant the App `administration: read` (only doctor uses it) to check runners",
            )
        }
        Err(e) => {
            return Check::warn(
                name,
                format!("cannot list the runners of {fork}: {e}"),
                "run doctor again",
            )
        }
    };
    if wanted.is_empty() {
        return Check::warn(
            name,
            "the config names no GPU (`defaults.gpu_model`) and no `runner_labels`: each request must name its GPU",
            "set `defaults.gpu_model` in .github/sota-bot.yml so doctor can check the runners",
        );
    }
    let mut problems = Vec::new();
    let mut ok = Vec::new();
    for labels in wanted {
        let shown = format!("[{}]", labels.join(", "));
        let matching: Vec<&Runner> = runners.iter().filter(|r| has_labels(r, labels)).collect();
        if let Some(r) = matching.iter().find(|r| r.status == "online") {
            ok.push(format!(
                "{shown}: {} online{}",
                r.name,
                if r.busy { " (busy)" } else { "" }
            ));
        } else if !matching.is_empty() {
            let names: Vec<&str> = matching.iter().map(|r| r.name.as_str()).collect();
            problems.push(format!(
                "{shown}: every matching runner is offline ({})",
                names.join(", ")
            ));
        } else if runners.is_empty() {
            problems.push(format!("{shown}: {fork} has no self-hosted runner"));
        } else {
            let near: Vec<String> = runners
                .iter()
                .map(|r| {
                    let lacks: Vec<&str> = labels
                        .iter()
                        .filter(|w| !r.labels.iter().any(|l| l.name.eq_ignore_ascii_case(w)))
                        .map(String::as_str)
                        .collect();
                    format!("{} ({}) lacks {}", r.name, r.status, lacks.join(", "))
                })
                .collect();
            problems.push(format!(
                "{shown}: no runner has these labels; {}",
                near.join("; ")
            ));
        }
    }
    if problems.is_empty() {
        return Check::pass(
            name,
            format!("{} label set(s) served by an online runner", wanted.len()),
        )
        .with_details(ok);
    }
    let mut details = problems;
    details.extend(ok);
    Check::fail(
        name,
        format!("no online runner for some label sets of {fork}"),
        "on the GPU host, start the runner service (runner-setup/install-service.sh), or register one \
         whose labels match (runner-setup/register-runner.sh derives `<n>-gpu-<model>` from the GPUs; \
         --extra-labels adds others), or change `runner_labels` in .github/sota-bot.yml; runners \
         registered on an organization are not listed here",
    )
    .with_details(details)
}

/// The secrets the agent preset names exist, and the round workflow passes them on.
pub fn secrets(
    fork: &RepoName,
    needed: &[String],
    available: Result<&[String], &GitHubError>,
    round_workflow: Option<&str>,
) -> Check {
    let name = "secrets";
    if needed.is_empty() {
        return Check::pass(name, "the agent names no secrets");
    }
    let available =
        match available {
            Ok(a) => a,
            Err(e) if forbidden(e) => return Check::warn(
                name,
                format!("cannot list the Actions secrets of {fork}: {e}"),
                "grant the App `secrets: read` (names only; only doctor uses it) to check secrets",
            ),
            Err(e) => {
                return Check::warn(
                    name,
                    format!("cannot list the Actions secrets of {fork}: {e}"),
                    "run doctor again",
                )
            }
        };
    let missing: Vec<&String> = needed.iter().filter(|n| !available.contains(n)).collect();
    let unmapped: Vec<&String> = match round_workflow {
        Some(text) => needed
            .iter()
            .filter(|n| {
                !text.contains(&format!("secrets.{n} "))
                    && !text.contains(&format!("secrets.{n}}}"))
            })
            .collect(),
        None => Vec::new(),
    };
    if missing.is_empty() && unmapped.is_empty() {
        return Check::pass(
            name,
            format!(
                "{} present and passed to the round job",
                needed
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    let mut details = Vec::new();
    let mut fixes = Vec::new();
    for m in &missing {
        details.push(format!(
            "{m}: no repository or organization secret of that name"
        ));
        fixes.push(format!("gh secret set {m} --repo {fork}"));
    }
    for u in &unmapped {
        details.push(format!(
            "{u}: the round workflow does not pass it to the agent's step"
        ));
        fixes.push(format!(
            "add `{u}: ${{{{ secrets.{u} }}}}` to the `env:` of the `Run the round` step of .github/workflows/sota-round.yml"
        ));
    }
    Check::fail(
        name,
        format!(
            "{} of the agent's secret(s) will not reach it",
            missing.len() + unmapped.len()
        ),
        fixes.join("; "),
    )
    .with_details(details)
}

/// The App's webhook settings can reach `serve`'s endpoint.
pub fn webhook(config: Result<Option<&HookConfig>, &GitHubError>) -> Check {
    let name = "webhook";
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            return Check::warn(
                name,
                format!("cannot read the App's webhook settings: {e}"),
                "run doctor again",
            )
        }
    };
    let Some(config) = config else {
        return Check::fail(
            name,
            "the App has no webhook",
            "set the webhook URL in the App's settings",
        );
    };
    let url = config.url.clone().unwrap_or_default();
    if url.is_empty() {
        return Check::fail(
            name,
            "the App's webhook URL is empty",
            "set it to `https://<your host>/webhook` in the App's settings",
        );
    }
    if config.content_type.as_deref() != Some("json") {
        return Check::fail(
            name,
            format!(
                "deliveries are sent as `{}`, which `serve` does not read",
                config.content_type.as_deref().unwrap_or("?")
            ),
            "set the content type to application/json in the App's webhook settings",
        );
    }
    let insecure = match &config.insecure_ssl {
        Some(serde_json::Value::String(s)) => s == "1",
        Some(serde_json::Value::Number(n)) => n.as_u64() == Some(1),
        _ => false,
    };
    if insecure || !url.starts_with("https://") {
        return Check::warn(
            name,
            format!("deliveries to {url} are not verified TLS"),
            "serve the webhook over HTTPS with a valid certificate (README: TLS in front) and turn \
             SSL verification on",
        );
    }
    if !url.trim_end_matches('/').ends_with("/webhook") {
        return Check::warn(
            name,
            format!("the webhook URL {url} does not end in `/webhook`"),
            "`serve` answers deliveries on `/webhook`; make the proxy forward this URL there",
        );
    }
    Check::pass(name, format!("JSON deliveries to {url}"))
}

fn delivery_fix(d: &Delivery) -> String {
    let cause = match d.status_code {
        0 => "GitHub could not connect: check DNS, the TLS certificate, the firewall and that `serve` runs".to_string(),
        401 => "the signature did not verify: the webhook secret in the App's settings differs from `webhook_secrets` in the serve config".to_string(),
        404 | 405 => "the URL does not reach `serve`'s `/webhook` (check the proxy's path)".to_string(),
        413 => "the proxy refused the payload's size: allow bodies up to 25 MB".to_string(),
        503 => "`serve` could not store the delivery: check its database (`--database`, disk space)".to_string(),
        502 | 504 => "the proxy could not reach `serve`: check that it runs and listens where the proxy forwards".to_string(),
        c => format!("`serve` answered HTTP {c}: see its log"),
    };
    format!("{cause}; then redeliver the failed deliveries from the App's settings (Advanced)")
}

/// Recent deliveries of `repos`' events and their failures (newest first).
pub fn deliveries(repos: &[u64], listed: Result<&[Delivery], &GitHubError>) -> Check {
    let name = "deliveries";
    let all = match listed {
        Ok(d) => d,
        Err(e) => {
            return Check::warn(
                name,
                format!("cannot list the App's deliveries: {e}"),
                "run doctor again",
            )
        }
    };
    let ours: Vec<&Delivery> = all
        .iter()
        .filter(|d| d.repository_id.is_some_and(|id| repos.contains(&id)))
        .collect();
    let Some(latest) = ours.first() else {
        return Check::warn(
            name,
            format!(
                "none of the App's last {} deliveries is for this repository",
                all.len()
            ),
            "open a campaign request issue (or comment `/sota help` on one) and run doctor again",
        );
    };
    let failed: Vec<&&Delivery> = ours
        .iter()
        .filter(|d| !(200..300).contains(&d.status_code))
        .collect();
    let describe = |d: &Delivery| {
        format!(
            "{} {}{}: {} ({})",
            d.delivered_at,
            d.event,
            d.action
                .as_deref()
                .map(|a| format!(".{a}"))
                .unwrap_or_default(),
            if d.status_code == 0 {
                "no HTTP answer".to_string()
            } else {
                format!("HTTP {}", d.status_code)
            },
            d.status
        )
    };
    if failed.is_empty() {
        return Check::pass(
            name,
            format!("the last {} deliveries succeeded", ours.len()),
        );
    }
    let details: Vec<String> = failed.iter().take(5).map(|d| describe(d)).collect();
    let summary = format!(
        "{} of the last {} deliveries failed",
        failed.len(),
        ours.len()
    );
    if !(200..300).contains(&latest.status_code) {
        Check::fail(
            name,
            format!("{summary}, the latest too"),
            delivery_fix(latest),
        )
        .with_details(details)
    } else {
        Check::warn(
            name,
            format!("{summary}; the latest succeeded"),
            delivery_fix(failed[0]),
        )
        .with_details(details)
    }
}

/// What the database said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseFacts {
    /// No database was named.
    NotGiven,
    Missing(String),
    Unreadable {
        path: String,
        error: String,
    },
    Read {
        path: String,
        counts: Vec<(String, u64)>,
        dead: Vec<JobRow>,
    },
}

/// The database opens, and its queue has no dead letters.
pub fn database(facts: &DatabaseFacts) -> Check {
    let name = "database";
    match facts {
        DatabaseFacts::NotGiven => Check::warn(
            name,
            "not checked: no database given",
            "run doctor on the serve host with `--config` (or `--database`) to check the queue",
        ),
        DatabaseFacts::Missing(path) => Check::fail(
            name,
            format!("no database at {path}"),
            "start `sota-bot serve` (it creates it), or point `--database` at the file it uses; to \
             rebuild a lost one: `sota-bot recover`",
        ),
        DatabaseFacts::Unreadable { path, error } => Check::fail(
            name,
            format!("cannot read {path}: {error}"),
            "check the file's owner and mode (the serve user must own it) and free disk space",
        ),
        DatabaseFacts::Read { path, counts, dead } => {
            let count = |s: &str| counts.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
            let summary = format!(
                "{path}: {} done, {} queued, {} running, {} dead",
                count("done"),
                count("queued"),
                count("running"),
                count("dead")
            );
            if count("dead") == 0 {
                return Check::pass(name, summary);
            }
            let details = dead
                .iter()
                .map(|j| {
                    format!(
                        "job {} ({} delivery {}, {} attempts): {}",
                        j.id,
                        j.event,
                        j.delivery_id,
                        j.attempts,
                        j.last_error.as_deref().unwrap_or("no error recorded")
                    )
                })
                .collect();
            Check::warn(
                name,
                summary,
                "fix the cause shown, then `sota-bot doctor --repo ... --requeue-dead` puts them back in the queue",
            )
            .with_details(details)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;
    use std::collections::BTreeMap;

    fn app(perms: &[(&str, &str)], events: &[&str]) -> AppInfo {
        AppInfo {
            id: 7,
            slug: Some("sota".into()),
            name: "sota".into(),
            html_url: "https://github.com/apps/sota".into(),
            permissions: perms
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            events: events.iter().map(|e| e.to_string()).collect(),
        }
    }

    fn all_perms() -> Vec<(&'static str, &'static str)> {
        crate::github::permissions::required_permissions()
            .into_iter()
            .map(|(k, v)| (k, v.as_str()))
            .collect()
    }

    fn inst(perms: &[(&str, &str)], events: &[&str]) -> InstallationInfo {
        InstallationInfo {
            id: 9,
            html_url: Some("https://github.com/settings/installations/9".into()),
            permissions: perms
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            events: events.iter().map(|e| e.to_string()).collect(),
            suspended_at: None,
        }
    }

    #[test]
    fn permissions_say_whom_to_ask() {
        let events = crate::github::permissions::required_events();
        let full = app(&all_perms(), &events);
        let mut weak = all_perms();
        weak.retain(|(k, _)| *k != "checks");
        let checks = permissions_and_events(&full, &inst(&weak, &events));
        assert_eq!(checks[0].status, Status::Fail);
        assert_eq!(checks[0].details, ["checks: write (not granted)"]);
        assert!(
            checks[0].fix.as_deref().unwrap().starts_with("accept"),
            "{checks:?}"
        );
        let checks = permissions_and_events(&app(&weak, &events), &inst(&weak, &events));
        assert!(checks[0]
            .fix
            .as_deref()
            .unwrap()
            .contains("Permissions & events"));
        // Only doctor's permissions missing: a warning.
        let mut no_doctor = all_perms();
        no_doctor.retain(|(k, _)| !matches!(*k, "administration" | "secrets"));
        let checks = permissions_and_events(&full, &inst(&no_doctor, &events));
        assert_eq!(checks[0].status, Status::Warn);
        assert_eq!(checks[1].status, Status::Pass);
        let checks = permissions_and_events(&full, &inst(&all_perms(), &["issues"]));
        assert_eq!(checks[0].status, Status::Pass);
        assert_eq!(checks[1].status, Status::Fail);
        assert!(checks[1].summary.contains("workflow_run"));
    }

    #[test]
    fn webhook_settings() {
        let hook = |url: &str, ct: &str, ssl: &str| HookConfig {
            url: Some(url.into()),
            content_type: Some(ct.into()),
            insecure_ssl: Some(serde_json::json!(ssl)),
        };
        assert_eq!(
            webhook(Ok(Some(&hook("https://b.example/webhook", "json", "0")))).status,
            Status::Pass
        );
        assert_eq!(
            webhook(Ok(Some(&hook("https://b.example/webhook", "form", "0")))).status,
            Status::Fail
        );
        assert_eq!(
            webhook(Ok(Some(&hook("https://b.example/webhook", "json", "1")))).status,
            Status::Warn
        );
        assert_eq!(
            webhook(Ok(Some(&hook("https://b.example/hooks", "json", "0")))).status,
            Status::Warn
        );
        assert_eq!(
            webhook(Ok(Some(&hook("", "json", "0")))).status,
            Status::Fail
        );
        assert_eq!(webhook(Ok(None)).status, Status::Fail);
    }

    #[test]
    fn managed_files_are_recognised_with_any_action_ref() {
        let repo = RepoName::new("o", "r");
        let custom = managed_files("acme/sota-bot/action@0123456789abcdef");
        let round = custom
            .iter()
            .find(|f| f.path.ends_with("sota-round.yml"))
            .unwrap();
        let c = managed_file(&repo, "main", round.path, Some(&round.content));
        assert_eq!(c.status, Status::Pass, "{c:?}");
        assert!(c.summary.contains("acme/sota-bot/action@0123456789abcdef"));
        let edited = round.content.replace("timeout-minutes", "timeout-minutes ");
        assert_eq!(
            managed_file(&repo, "main", round.path, Some(&edited)).status,
            Status::Warn
        );
        let missing = managed_file(&repo, "main", round.path, None);
        assert_eq!(missing.status, Status::Fail);
        assert!(missing.summary.contains("not on `main`"));
        let older = crate::setup::fork_files::with_marker("name: older\n");
        assert!(managed_file(&repo, "main", round.path, Some(&older))
            .summary
            .contains("another sota-bot version"));
    }

    #[test]
    fn config_placeholder_and_problems() {
        let repo = RepoName::new("o", "r");
        let template = managed_files(TEMPLATE_ACTION_REF)
            .into_iter()
            .find(|f| f.path == CONFIG_PATH)
            .unwrap();
        let (c, parsed) = config(&repo, "main", Some(&template.content));
        assert_eq!(c.status, Status::Fail);
        assert!(c.summary.contains("placeholder"));
        assert!(parsed.is_none());
        let (c, parsed) = config(
            &repo,
            "main",
            Some(&template.content.replace(PLACEHOLDER_FORK, "acme/sglang")),
        );
        assert_eq!(c.status, Status::Pass, "{c:?}");
        assert_eq!(
            wanted_labels(&parsed.unwrap()),
            [["self-hosted", "1-gpu-h100"]]
        );
        let (c, _) = config(&repo, "main", Some("budget:\n  max_rounds: 0\n"));
        assert_eq!(c.status, Status::Fail);
        assert!(c.details[0].contains("max_rounds"), "{c:?}");
        assert_eq!(config(&repo, "main", None).0.status, Status::Warn);
    }

    #[test]
    fn runners_online_offline_and_mislabelled() {
        let fork = RepoName::new("o", "r");
        let runner = |name: &str, status: &str, labels: &[&str]| Runner {
            name: name.into(),
            status: status.into(),
            busy: false,
            labels: labels
                .iter()
                .map(|l| crate::github::app_client::RunnerLabel {
                    name: l.to_string(),
                })
                .collect(),
        };
        let wanted = vec![vec!["self-hosted".to_string(), "1-gpu-h100".to_string()]];
        let online = [runner("gpu1", "online", &["self-hosted", "1-GPU-H100"])];
        assert_eq!(runners(&fork, &wanted, Ok(&online)).status, Status::Pass);
        let offline = [runner("gpu1", "offline", &["self-hosted", "1-gpu-h100"])];
        let c = runners(&fork, &wanted, Ok(&offline));
        assert_eq!(c.status, Status::Fail);
        assert!(c.details[0].contains("offline (gpu1)"), "{c:?}");
        let wrong = [runner("gpu1", "online", &["self-hosted", "8-gpu-h100"])];
        let c = runners(&fork, &wanted, Ok(&wrong));
        assert!(
            c.details[0].contains("gpu1 (online) lacks 1-gpu-h100"),
            "{c:?}"
        );
        assert!(runners(&fork, &wanted, Ok(&[])).details[0].contains("no self-hosted runner"));
        assert_eq!(runners(&fork, &[], Ok(&online)).status, Status::Warn);
    }

    #[test]
    fn secrets_missing_or_not_passed_on() {
        let fork = RepoName::new("o", "r");
        let need = vec!["ANTHROPIC_API_KEY".to_string(), "MY_KEY".to_string()];
        let workflow = "env:\n  ANTHROPIC_API_KEY: ${{ secrets.ANTHROPIC_API_KEY }}\n";
        let have = vec!["ANTHROPIC_API_KEY".to_string(), "MY_KEY".to_string()];
        let c = secrets(&fork, &need, Ok(&have), Some(workflow));
        assert_eq!(c.status, Status::Fail);
        assert_eq!(
            c.details,
            ["MY_KEY: the round workflow does not pass it to the agent's step"]
        );
        assert!(
            c.fix
                .as_deref()
                .unwrap()
                .contains("MY_KEY: ${{ secrets.MY_KEY }}"),
            "{c:?}"
        );
        let c = secrets(&fork, &need[..1], Ok(&[]), Some(workflow));
        assert!(c
            .fix
            .as_deref()
            .unwrap()
            .contains("gh secret set ANTHROPIC_API_KEY --repo o/r"));
        assert_eq!(
            secrets(&fork, &need[..1], Ok(&have), Some(workflow)).status,
            Status::Pass
        );
        assert_eq!(secrets(&fork, &[], Ok(&[]), None).status, Status::Pass);
    }

    #[test]
    fn deliveries_latest_failure_fails_older_ones_warn() {
        let d = |id: u64, code: u16, repo: u64| Delivery {
            id,
            guid: format!("g{id}"),
            delivered_at: format!("2026-01-0{id}T00:00:00Z"),
            redelivery: false,
            status: if code == 200 {
                "OK".into()
            } else {
                format!("Invalid HTTP Response: {code}")
            },
            status_code: code,
            event: "issues".into(),
            action: Some("opened".into()),
            installation_id: Some(1),
            repository_id: Some(repo),
        };
        let list = [d(3, 401, 5), d(2, 200, 6), d(1, 200, 5)];
        let c = deliveries(&[5], Ok(&list));
        assert_eq!(c.status, Status::Fail);
        assert!(
            c.fix.as_deref().unwrap().contains("webhook secret"),
            "{c:?}"
        );
        assert_eq!(
            c.details,
            ["2026-01-03T00:00:00Z issues.opened: HTTP 401 (Invalid HTTP Response: 401)"]
        );
        let list = [d(3, 200, 5), d(2, 0, 5)];
        let c = deliveries(&[5], Ok(&list));
        assert_eq!(c.status, Status::Warn);
        assert!(c.fix.as_deref().unwrap().contains("could not connect"));
        assert_eq!(deliveries(&[9], Ok(&list)).status, Status::Warn);
        assert_eq!(deliveries(&[5], Ok(&list[..1])).status, Status::Pass);
    }

    #[test]
    fn database_states() {
        assert_eq!(database(&DatabaseFacts::NotGiven).status, Status::Warn);
        assert_eq!(
            database(&DatabaseFacts::Missing("x".into())).status,
            Status::Fail
        );
        let dead = JobRow {
            id: 3,
            delivery_id: "d3".into(),
            event: "issues".into(),
            state: crate::server::queue::JobState::Dead,
            attempts: 8,
            last_error: Some("permanent: boom".into()),
        };
        let c = database(&DatabaseFacts::Read {
            path: "db".into(),
            counts: vec![("done".into(), 4), ("dead".into(), 1)],
            dead: vec![dead],
        });
        assert_eq!(c.status, Status::Warn);
        assert_eq!(c.summary, "db: 4 done, 0 queued, 0 running, 1 dead");
        assert_eq!(
            c.details,
            ["job 3 (issues delivery d3, 8 attempts): permanent: boom"]
        );
    }
}
