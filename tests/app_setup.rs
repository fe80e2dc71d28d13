//! From zero to a running App, against GitHub's OpenAPI description: every request goes
//! through a Prism proxy validating it and its answer, in front of a scripted fake GitHub.
//!
//! - the App manifest's permissions cover every endpoint the code calls (recorded here);
//! - `sota-bot app create` runs the manifest flow and writes 0600 credentials;
//! - `sota-bot doctor` passes a ready repository and names each problem of broken ones.

mod support_github;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use serde_json::{json, Value};
use sota_bot::github::api::{NewCheckRun, NewPullRequest, Reaction, RunFilter};
use sota_bot::github::auth::{Credentials, SecretToken};
use sota_bot::github::manifest::{self, ManifestOptions};
use sota_bot::github::permissions::{
    endpoint_for, required_events, required_permissions, Access, Auth, ENDPOINTS, EVENTS,
};
use sota_bot::github::{
    ClientConfig, ClientMetrics, GitHubApi, HttpTransport, RepoName, RestGitHubApi, SystemClock,
};
use sota_bot::server::queue::{IngestWriter, JobStore, NewDelivery};
use sota_bot::setup::fork_files::{managed_files, TEMPLATE_ACTION_REF};
use support_github::{harness, Harness};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sota-bot")
}

fn rest_api(h: &Harness) -> RestGitHubApi {
    let mut config = ClientConfig::for_base_url(&h.prism_url);
    config.graphql_url = format!("{}/graphql", h.fake_url);
    let transport = HttpTransport::new(
        config,
        Arc::new(SystemClock),
        Arc::new(ClientMetrics::default()),
    )
    .unwrap();
    RestGitHubApi::new(
        transport,
        Credentials::Token(SecretToken::new("ghs_installationtoken")),
    )
}

/// Calls the `GitHubApi` method named `name` once. A method listed in the permission table
/// but not here fails the test, so the recording below covers every method.
/// `sha` and `tree` are a commit of the repository (a story repository's `main`) and its tree.
async fn call(api: &dyn GitHubApi, repo: &RepoName, name: &str, sha: &str, tree: &str) {
    let labels = vec!["sota".to_string()];
    let files = vec![("a.md".to_string(), "x".to_string())];
    let parents = vec![sha.to_string()];
    let outcome = match name {
        "collaborator_permission" => api.collaborator_permission(repo, "octocat").await.map(drop),
        "list_issue_comments" => api.list_issue_comments(repo, 1).await.map(drop),
        "create_issue_comment" => api.create_issue_comment(repo, 1, "hi").await.map(drop),
        "update_issue_comment" => {
            let c = api.create_issue_comment(repo, 1, "hi").await.unwrap();
            api.update_issue_comment(repo, c.id, "edited")
                .await
                .map(drop)
        }
        "add_reaction" => api.add_reaction(repo, 1, Reaction::Eyes).await,
        "add_labels" => api.add_labels(repo, 1, &labels).await,
        "create_pull_request" => {
            let pull = NewPullRequest {
                title: "t".into(),
                head: "sota/x".into(),
                base: "main".into(),
                body: "b".into(),
                draft: true,
            };
            api.create_pull_request(repo, &pull).await.map(drop)
        }
        "mark_ready_for_review" => api.mark_ready_for_review("PR_node").await,
        "get_branch" => api.get_branch(repo, "main").await.map(drop),
        "get_ref" => api.get_ref(repo, "heads/main").await.map(drop),
        "create_ref" => api
            .create_ref(repo, "refs/heads/sota/y", sha)
            .await
            .map(drop),
        "dispatch_workflow" => {
            let inputs = [("campaign_id".to_string(), "c".to_string())].into();
            api.dispatch_workflow(repo, "sota-round.yml", "main", &inputs)
                .await
                .map(drop)
        }
        "list_workflow_runs" => api
            .list_workflow_runs(repo, "sota-round.yml", &RunFilter::default())
            .await
            .map(drop),
        "check_runs_named" => api.check_runs_named(repo, sha, "sota gate").await.map(drop),
        "create_check_run" => {
            let check = NewCheckRun {
                name: "sota gate".into(),
                head_sha: sha.into(),
                status: "completed".into(),
                conclusion: Some("success".into()),
                title: "t".into(),
                summary: "s".into(),
                details_url: None,
                external_id: None,
            };
            api.create_check_run(repo, &check).await.map(drop)
        }
        "list_branches_with_prefix" => api.list_branches_with_prefix(repo, "sota/").await.map(drop),
        "pulls_for_branch" => api.pulls_for_branch(repo, "sota/x").await.map(drop),
        "get_commit_tree" => api.get_commit_tree(repo, sha).await.map(drop),
        "tree_file_paths" => api.tree_file_paths(repo, sha).await.map(drop),
        "create_tree" => api.create_tree(repo, tree, &files).await.map(drop),
        "create_commit" => api.create_commit(repo, "m", tree, &parents).await.map(drop),
        "last_commit_touching" => api
            .last_commit_touching(repo, "main", "README.md")
            .await
            .map(drop),
        "get_file_contents" => api
            .get_file_contents(repo, "README.md", "main")
            .await
            .map(drop),
        "search_pull_requests" => api
            .search_pull_requests("repo:sgl-project/sglang is:pr is:open llama", 10)
            .await
            .map(drop),
        other => panic!("no call for GitHubApi::{other}: add one to this test"),
    };
    outcome.unwrap_or_else(|e| panic!("{name}: {e}"));
}

/// What a recorded bearer says about the credential that sent it.
fn auth_kind(authorization: Option<&str>) -> &'static str {
    match authorization.and_then(|a| a.strip_prefix("Bearer ")) {
        None => "anonymous",
        Some(t) if t.split('.').count() == 3 && t.starts_with("eyJ") => "jwt",
        Some(_) => "installation",
    }
}

#[tokio::test]
async fn every_request_the_code_sends_is_granted_by_the_manifest() {
    let Some(h) = harness("every_request_the_code_sends_is_granted_by_the_manifest") else {
        return;
    };
    let api = rest_api(h);
    let repo = RepoName::new("octo", "perm-all");
    let git = h.fake.story_repo("octo/perm-all", &["main", "sota/x"]);
    let sha = git.branch_head("main").unwrap();
    let tree = git.commit_tree(&sha).unwrap();
    for e in ENDPOINTS
        .iter()
        .filter(|e| !matches!(e.caller, "auth" | "app create" | "doctor"))
    {
        call(&api, &repo, e.caller, &sha, &tree).await;
    }
    // The App-level callers: a doctor run and the manifest code exchange.
    let doctor_repo = "octo/perm-doctor";
    ready_repository(h, doctor_repo, 901);
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = doctor(h, dir.path(), doctor_repo, None, &[]);
    assert_eq!(code, 0, "{out}");
    let transport = rest_transport(h);
    sota_bot::github::app_client::convert_manifest_code(&transport, "perm123")
        .await
        .unwrap();

    let built = manifest::build(&ManifestOptions {
        name: "sota-bot".into(),
        webhook_url: "https://bot.example.com/webhook".into(),
        homepage_url: None,
        redirect_url: None,
    })
    .unwrap();
    let seen = h.fake.seen("");
    assert!(seen.len() > ENDPOINTS.len(), "{} requests seen", seen.len());
    let mut used = std::collections::BTreeSet::new();
    for s in &seen {
        let path = s.path.split('?').next().unwrap();
        let template = if path == "/graphql" {
            "graphql".to_string()
        } else {
            h.fake
                .template_of(path)
                .unwrap_or_else(|| panic!("{} {path} is not in GitHub's API", s.method))
        };
        let entry = endpoint_for(&s.method, &template).unwrap_or_else(|| {
            panic!(
                "the code called {} {template}, which permissions::ENDPOINTS does not list",
                s.method
            )
        });
        used.insert((entry.method, entry.path));
        let kind = auth_kind(s.authorization.as_deref());
        match entry.auth {
            Auth::Installation { permission, access } => {
                assert_eq!(kind, "installation", "{} {template}", s.method);
                let granted = built
                    .default_permissions
                    .get(permission)
                    .and_then(|a| Access::parse(a));
                assert!(
                    granted >= Some(access),
                    "{} {template} needs {permission}: {} but the manifest grants {granted:?}",
                    s.method,
                    access.as_str()
                );
            }
            Auth::AppJwt => assert_eq!(kind, "jwt", "{} {template}", s.method),
            Auth::Anonymous => assert_eq!(kind, "anonymous", "{} {template}", s.method),
        }
    }
    // Every table entry was exercised: the table lists nothing the code does not call.
    let unused: Vec<_> = ENDPOINTS
        .iter()
        .filter(|e| !used.contains(&(e.method, e.path)))
        .map(|e| format!("{} {}", e.method, e.path))
        .collect();
    assert!(unused.is_empty(), "never called: {unused:?}");
}

#[test]
fn every_event_the_handler_routes_is_subscribed() {
    let Some(tools) = support_github::tools_dir("every_event_the_handler_routes_is_subscribed")
    else {
        return;
    };
    use sota_bot::github::events::WebhookEvent;
    let mut routed = Vec::new();
    for (name, examples) in support_github::webhook_examples(&tools) {
        let Some(example) = examples.first() else {
            continue;
        };
        let body = serde_json::to_vec(example).unwrap();
        match WebhookEvent::parse(name, &body) {
            Ok(
                WebhookEvent::Other { .. } | WebhookEvent::Ping(_) | WebhookEvent::Installation(_),
            ) => {}
            _ => routed.push(name.clone()),
        }
    }
    routed.sort();
    let mut subscribed: Vec<String> = EVENTS.iter().map(|e| e.event.to_string()).collect();
    subscribed.sort();
    assert_eq!(routed, subscribed);
}

#[test]
fn app_manifest_prints_the_derived_permissions() {
    let out = Command::new(bin())
        .args([
            "app",
            "manifest",
            "--webhook-url",
            "https://bot.example.com/webhook",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    let perms: Vec<(String, String)> = required_permissions()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.as_str().to_string()))
        .collect();
    let printed: Vec<(String, String)> = m["default_permissions"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    assert_eq!(printed, perms);
    assert_eq!(m["default_events"], json!(required_events()));
    assert_eq!(
        m["hook_attributes"]["url"],
        "https://bot.example.com/webhook"
    );
    let bad = Command::new(bin())
        .args(["app", "manifest", "--webhook-url", "bot.example.com"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--webhook-url"));
}

fn rest_transport(h: &Harness) -> HttpTransport {
    HttpTransport::new(
        ClientConfig::for_base_url(&h.prism_url),
        Arc::new(SystemClock),
        Arc::new(ClientMetrics::default()),
    )
    .unwrap()
}

fn unescape_html(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("{start} in {text}"))
        + start.len();
    let len = text[from..].find(end).unwrap();
    &text[from..from + len]
}

#[tokio::test]
async fn app_create_runs_the_manifest_flow_and_writes_owner_only_credentials() {
    let Some(h) = harness("app_create_runs_the_manifest_flow") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sota-bot.yml");
    let key = dir.path().join("app.pem");
    let port = support_github::free_port();
    let child = Command::new(bin())
        .args([
            "app",
            "create",
            "--webhook-url",
            "https://bot.example.com/webhook",
        ])
        .args([
            "--name",
            "acme-sota",
            "--org",
            "acme",
            "--timeout-secs",
            "120",
        ])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--github-url",
            &h.fake_url,
            "--github-api-url",
            &h.prism_url,
        ])
        .arg("--config")
        .arg(&config)
        .arg("--private-key-path")
        .arg(&key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut page = None;
    for _ in 0..200 {
        if let Ok(r) = http.get(format!("{base}/")).send().await {
            page = Some(r.text().await.unwrap());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let page = page.expect("the local page answers");
    // The form posts the manifest to GitHub's new-App page of the organization.
    let action = unescape_html(between(&page, "action=\"", "\""));
    let prefix = format!("{}/organizations/acme/settings/apps/new?state=", h.fake_url);
    let state = action
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{action}"));
    assert_eq!(state.len(), 32);
    let manifest: Value = serde_json::from_str(&unescape_html(between(
        &page,
        "name=\"manifest\" value=\"",
        "\"",
    )))
    .unwrap();
    assert_eq!(manifest["name"], "acme-sota");
    assert_eq!(manifest["redirect_url"], format!("{base}/callback"));
    assert_eq!(manifest["default_events"], json!(required_events()));
    // A callback with another state is refused and nothing is exchanged.
    let wrong = http
        .get(format!("{base}/callback?code=abc123&state=forged"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 400);
    assert!(h.fake.seen("/app-manifests/abc123").is_empty());
    // GitHub's redirect: the code is exchanged through Prism.
    let ok = http
        .get(format!("{base}/callback?code=abc123&state={state}"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exchanged = h.fake.seen("/app-manifests/abc123/conversions");
    assert_eq!(exchanged.len(), 1);
    assert_eq!(exchanged[0].authorization, None);
    assert!(stdout.contains("/installations/new"), "{stdout}");
    for file in [&config, &key] {
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
    // The config is what `serve` reads: app id, the key (which loads), the webhook secret.
    let conversion = h
        .fake
        .example_body("POST", "/app-manifests/{code}/conversions");
    let settings = sota_bot::server::config::read_file(&config).unwrap();
    let over = sota_bot::server::config::OverrideSettings::default();
    let resolved = sota_bot::server::config::resolve(settings, over).unwrap();
    assert_eq!(resolved.app_id, conversion["id"].as_u64().unwrap());
    assert_eq!(
        resolved.private_key_path,
        std::path::absolute(&key).unwrap()
    );
    assert_eq!(resolved.github_api_url, h.prism_url);
    let secret = conversion["webhook_secret"].as_str().unwrap();
    let body = b"{}";
    let signature = sota_bot::github::signature::sign(
        &sota_bot::github::signature::WebhookSecret::new(secret),
        body,
    );
    assert!(
        sota_bot::github::signature::verify(&resolved.webhook_secrets, Some(&signature), body)
            .is_ok()
    );
    // A second run refuses to overwrite them before starting the flow.
    let again = Command::new(bin())
        .args([
            "app",
            "create",
            "--webhook-url",
            "https://bot.example.com/webhook",
        ])
        .args(["--code", "zzz", "--github-api-url", &h.prism_url])
        .arg("--config")
        .arg(&config)
        .arg("--private-key-path")
        .arg(&key)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert!(h.fake.seen("/app-manifests/zzz").is_empty());
}

// ---------------------------------------------------------------------------------------------
// doctor

fn app_settings(h: &Harness) {
    let mut app = h.fake.example_body("GET", "/app");
    app["permissions"] = permissions_json(&[]);
    app["events"] = json!(required_events());
    h.fake.script("GET", "/app", 200, app);
}

fn permissions_json(without: &[&str]) -> Value {
    let mut map = serde_json::Map::new();
    for (k, v) in required_permissions() {
        if !without.contains(&k) {
            map.insert(k.to_string(), json!(v.as_str()));
        }
    }
    Value::Object(map)
}

fn runner(h: &Harness, name: &str, status: &str, labels: &[&str]) -> Value {
    let example = h
        .fake
        .example_body("GET", "/repos/{owner}/{repo}/actions/runners");
    let mut r = example["runners"][0].clone();
    r["name"] = json!(name);
    r["status"] = json!(status);
    r["busy"] = json!(false);
    let label = r["labels"][0].clone();
    r["labels"] = labels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut x = label.clone();
            x["id"] = json!(i + 1);
            x["name"] = json!(l);
            x
        })
        .collect();
    r
}

fn secrets_json(h: &Harness, names: &[&str]) -> Value {
    let example = h
        .fake
        .example_body("GET", "/repos/{owner}/{repo}/actions/secrets");
    let item = example["secrets"][0].clone();
    let list: Vec<Value> = names
        .iter()
        .map(|n| {
            let mut s = item.clone();
            s["name"] = json!(n);
            s
        })
        .collect();
    json!({"total_count": list.len(), "secrets": list})
}

fn delivery(h: &Harness, id: u64, repo_id: u64, code: u16, status: &str) -> Value {
    let example = h.fake.example_body("GET", "/app/hook/deliveries");
    let mut d = example[0].clone();
    d["id"] = json!(id);
    d["guid"] = json!(format!("guid-{id}"));
    d["status_code"] = json!(code);
    d["status"] = json!(status);
    d["repository_id"] = json!(repo_id);
    d["event"] = json!("issues");
    d["action"] = json!("opened");
    d
}

/// A repository (campaigns run on itself) that passes every check: installed with every
/// permission, init's files on `main` with the fork set, an online runner with the default
/// labels, the agent's secret, a successful delivery.
fn ready_repository(h: &Harness, repo: &str, id: u64) {
    app_settings(h);
    h.fake.story_repo(repo, &["main"]);
    let mut inst = h
        .fake
        .example_body("GET", "/repos/{owner}/{repo}/installation");
    inst["id"] = json!(id);
    inst["permissions"] = permissions_json(&[]);
    inst["events"] = json!(required_events());
    h.fake
        .script("GET", &format!("/repos/{repo}/installation"), 200, inst);
    let mut info = h.fake.example_body("GET", "/repos/{owner}/{repo}");
    info["id"] = json!(id);
    info["full_name"] = json!(repo);
    info["default_branch"] = json!("main");
    // The spec's example lacks `language`, which its own schema requires.
    info["language"] = json!("Python");
    info["source"]["language"] = json!("Python");
    info["parent"]["language"] = json!("Python");
    h.fake.script("GET", &format!("/repos/{repo}"), 200, info);
    for f in managed_files(TEMPLATE_ACTION_REF) {
        let text = f
            .content
            .replace("fork: owner/sglang", &format!("fork: {repo}"));
        h.fake.set_file(repo, f.path, &text);
    }
    let runners = vec![runner(
        h,
        "gpu-host-1",
        "online",
        &["self-hosted", "Linux", "1-gpu-h100"],
    )];
    h.fake.script(
        "GET",
        &format!("/repos/{repo}/actions/runners"),
        200,
        json!({"total_count": 1, "runners": runners}),
    );
    h.fake.script(
        "GET",
        &format!("/repos/{repo}/actions/secrets"),
        200,
        secrets_json(h, &["ANTHROPIC_API_KEY"]),
    );
    h.fake.script(
        "GET",
        &format!("/repos/{repo}/actions/organization-secrets"),
        200,
        secrets_json(h, &[]),
    );
    h.fake
        .script_push("/app/hook/deliveries", delivery(h, id * 10, id, 202, "OK"));
}

/// Runs `sota-bot doctor` against Prism; returns (exit code, stdout).
fn doctor(
    h: &Harness,
    dir: &Path,
    repo: &str,
    database: Option<&Path>,
    extra: &[&str],
) -> (i32, String) {
    let key = dir.join("app.pem");
    if !key.exists() {
        support_github::rsa_key_pair(dir);
    }
    let mut cmd = Command::new(bin());
    cmd.current_dir(dir)
        .args(["doctor", "--repo", repo, "--app-id", "4242"])
        .arg("--private-key-path")
        .arg(&key)
        .args(["--github-api-url", &h.prism_url])
        .args(extra);
    if let Some(db) = database {
        cmd.arg("--database").arg(db);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), format!("{stdout}{stderr}"))
}

/// The report's line for `name` (`PASS  name  summary`) and the lines under it.
fn section<'a>(report: &'a str, name: &str) -> &'a str {
    let start = report
        .lines()
        .position(|l| {
            l.get(6..)
                .is_some_and(|rest| rest.starts_with(&format!("{name} ")))
        })
        .unwrap_or_else(|| panic!("no `{name}` check in\n{report}"));
    let lines: Vec<&str> = report.lines().collect();
    let end = lines[start + 1..]
        .iter()
        .position(|l| !l.starts_with("      "))
        .map_or(lines.len(), |p| start + 1 + p);
    let from = lines[..start].iter().map(|l| l.len() + 1).sum::<usize>();
    let to = lines[..end].iter().map(|l| l.len() + 1).sum::<usize>();
    &report[from..to.min(report.len())]
}

async fn database_with_one_dead_letter(path: &Path) {
    let writer = IngestWriter::start(path).unwrap();
    for id in ["d-ok", "d-dead"] {
        writer
            .enqueue(NewDelivery {
                delivery_id: id.into(),
                event: "issues".into(),
                action: Some("opened".into()),
                installation_id: Some(1),
                payload: bytes::Bytes::from_static(b"{}"),
            })
            .await
            .unwrap();
    }
    let store = JobStore::open(path).unwrap();
    let first = store.claim().unwrap().unwrap();
    store.complete(first.id).unwrap();
    let second = store.claim().unwrap().unwrap();
    store
        .dead_letter(second.id, "permanent: `issues` payload is invalid")
        .unwrap();
}

#[tokio::test]
async fn doctor_passes_a_ready_repository() {
    let Some(h) = harness("doctor_passes_a_ready_repository") else {
        return;
    };
    let repo = "octo/doctor-ready";
    ready_repository(h, repo, 501);
    let dir = tempfile::tempdir().unwrap();
    let db: PathBuf = dir.path().join("sota-bot.sqlite");
    database_with_one_dead_letter(&db).await;
    let (code, report) = doctor(h, dir.path(), repo, Some(&db), &[]);
    assert_eq!(code, 0, "{report}");
    assert!(!report.contains("FAIL"), "{report}");
    for name in [
        "credentials",
        "installation octo/doctor-ready",
        "permissions",
        "events",
        "sota-request.yml",
        "config",
        "sota-baseline.yml",
        "sota-round.yml",
        "runners",
        "secrets",
        "webhook",
        "deliveries",
    ] {
        assert!(
            section(&report, name).starts_with("PASS"),
            "{name}:\n{report}"
        );
    }
    // The dead letter is reported with its error and fix, then requeued on request.
    let db_section = section(&report, "database");
    assert!(db_section.starts_with("WARN"), "{report}");
    assert!(
        db_section.contains("1 done, 0 queued, 0 running, 1 dead"),
        "{report}"
    );
    assert!(
        db_section.contains("issues delivery d-dead, 1 attempts): permanent"),
        "{report}"
    );
    assert!(db_section.contains("--requeue-dead"), "{report}");
    let (code, report) = doctor(h, dir.path(), repo, Some(&db), &["--requeue-dead"]);
    assert_eq!(code, 0, "{report}");
    assert!(
        report.contains("requeued 1 dead-lettered deliveries"),
        "{report}"
    );
    assert!(section(&report, "database").starts_with("PASS"), "{report}");
    assert!(
        section(&report, "database").contains("1 queued"),
        "{report}"
    );
}

#[tokio::test]
async fn doctor_names_each_problem_and_its_fix() {
    let Some(h) = harness("doctor_names_each_problem_and_its_fix") else {
        return;
    };
    let repo = "octo/doctor-broken";
    ready_repository(h, repo, 502);
    // Missing permission: the installation has not accepted `checks`, nor `workflow_run`.
    let mut inst = h
        .fake
        .example_body("GET", "/repos/{owner}/{repo}/installation");
    inst["id"] = json!(502);
    inst["permissions"] = permissions_json(&["checks"]);
    inst["events"] = json!([
        "issues",
        "issue_comment",
        "pull_request",
        "workflow_job",
        "check_run"
    ]);
    inst["html_url"] = json!("https://github.com/settings/installations/502");
    h.fake
        .script("GET", &format!("/repos/{repo}/installation"), 200, inst);
    // The round workflow is not on the default branch.
    h.fake.remove_file(repo, ".github/workflows/sota-round.yml");
    // The config asks for two runner label sets: one runner is offline, one wrongly labelled.
    let config = "fork: octo/doctor-broken\ndefaults: {gpu_model: h100, gpu_count: 1}\n\
                  runner_labels: {\"h100\": {\"8\": [\"self-hosted\", \"8-gpu-h100\"]}}\n\
                  agent: {preset: claude, secret_names: [ANTHROPIC_API_KEY]}\n";
    h.fake.set_file(repo, ".github/sota-bot.yml", config);
    let runners = vec![
        runner(h, "gpu-a", "offline", &["self-hosted", "1-gpu-h100"]),
        runner(h, "gpu-b", "online", &["self-hosted", "4-gpu-h100"]),
    ];
    h.fake.script(
        "GET",
        &format!("/repos/{repo}/actions/runners"),
        200,
        json!({"total_count": 2, "runners": runners}),
    );
    // The agent's secret is missing.
    h.fake.script(
        "GET",
        &format!("/repos/{repo}/actions/secrets"),
        200,
        secrets_json(h, &["OTHER_TOKEN"]),
    );
    // The latest delivery failed its signature check.
    h.fake.script_push(
        "/app/hook/deliveries",
        delivery(h, 50_299, 502, 401, "Invalid HTTP Response: 401"),
    );
    let dir = tempfile::tempdir().unwrap();
    let (code, report) = doctor(h, dir.path(), repo, None, &[]);
    assert_eq!(code, 3, "{report}");

    let perms = section(&report, "permissions");
    assert!(perms.starts_with("FAIL"), "{report}");
    assert!(perms.contains("- checks: write (not granted)"), "{report}");
    assert!(perms.contains("fix: accept the App's requested permissions at https://github.com/settings/installations/502"), "{report}");
    let events = section(&report, "events");
    assert!(
        events.starts_with("FAIL") && events.contains("not subscribed to: workflow_run"),
        "{report}"
    );

    let wf = section(&report, "sota-round.yml");
    assert!(wf.starts_with("FAIL"), "{report}");
    assert!(
        wf.contains("`.github/workflows/sota-round.yml` is not on `main` of octo/doctor-broken"),
        "{report}"
    );
    assert!(wf.contains("fix: run `sota-bot init"), "{report}");
    assert!(
        section(&report, "sota-baseline.yml").starts_with("PASS"),
        "{report}"
    );

    let runners = section(&report, "runners");
    assert!(runners.starts_with("FAIL"), "{report}");
    assert!(
        runners.contains("[self-hosted, 1-gpu-h100]: every matching runner is offline (gpu-a)"),
        "{report}"
    );
    assert!(runners.contains("[self-hosted, 8-gpu-h100]: no runner has these labels; gpu-a (offline) lacks 8-gpu-h100; gpu-b (online) lacks 8-gpu-h100"), "{report}");

    let secrets = section(&report, "secrets");
    assert!(secrets.starts_with("FAIL"), "{report}");
    assert!(
        secrets.contains("ANTHROPIC_API_KEY: no repository or organization secret"),
        "{report}"
    );
    assert!(
        secrets.contains("gh secret set ANTHROPIC_API_KEY --repo octo/doctor-broken"),
        "{report}"
    );

    let deliveries = section(&report, "deliveries");
    assert!(deliveries.starts_with("FAIL"), "{report}");
    assert!(
        deliveries.contains("1 of the last 2 deliveries failed, the latest too"),
        "{report}"
    );
    assert!(
        deliveries.contains("HTTP 401 (Invalid HTTP Response: 401)"),
        "{report}"
    );
    assert!(
        deliveries.contains("the webhook secret in the App's settings differs"),
        "{report}"
    );
}

#[tokio::test]
async fn doctor_on_a_repository_without_the_app_says_where_to_install_it() {
    let Some(h) = harness("doctor_on_a_repository_without_the_app") else {
        return;
    };
    app_settings(h);
    let not_found =
        json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"});
    h.fake.script(
        "GET",
        "/repos/octo/doctor-none/installation",
        404,
        not_found,
    );
    let dir = tempfile::tempdir().unwrap();
    let (code, report) = doctor(h, dir.path(), "octo/doctor-none", None, &[]);
    assert_eq!(code, 3, "{report}");
    let inst = section(&report, "installation octo/doctor-none");
    assert!(inst.starts_with("FAIL"), "{report}");
    let app_url = h.fake.example_body("GET", "/app")["html_url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        inst.contains(&format!(
            "fix: install it on octo/doctor-none: {app_url}/installations/new"
        )),
        "{report}"
    );
    // The App-level checks still run.
    assert!(section(&report, "webhook").starts_with("PASS"), "{report}");
    assert!(
        section(&report, "deliveries").starts_with("WARN"),
        "{report}"
    );
    assert!(section(&report, "database").starts_with("WARN"), "{report}");
}

#[test]
fn the_readme_justifies_every_permission_and_event() {
    let readme = std::fs::read_to_string(support_github::repo_root().join("README.md")).unwrap();
    for (permission, access) in required_permissions() {
        let row = format!("| `{permission}` | {} |", access.as_str());
        assert!(readme.contains(&row), "README lacks the row `{row}`");
    }
    for event in required_events() {
        let row = format!("| `{event}` |");
        assert!(readme.contains(&row), "README lacks the row `{row}`");
    }
}

#[tokio::test]
async fn doctor_reports_a_config_still_naming_the_template_fork() {
    let Some(h) = harness("doctor_reports_a_config_still_naming_the_template_fork") else {
        return;
    };
    let repo = "octo/doctor-template";
    ready_repository(h, repo, 503);
    let template = managed_files(TEMPLATE_ACTION_REF)
        .into_iter()
        .find(|f| f.path == ".github/sota-bot.yml")
        .unwrap();
    h.fake.set_file(repo, template.path, &template.content);
    let dir = tempfile::tempdir().unwrap();
    let (code, report) = doctor(h, dir.path(), repo, None, &[]);
    assert_eq!(code, 3, "{report}");
    let config = section(&report, "config");
    assert!(config.starts_with("FAIL"), "{report}");
    assert!(
        config.contains("`fork:` is still the template's placeholder `owner/sglang`"),
        "{report}"
    );
    assert!(section(&report, "fork").starts_with("WARN"), "{report}");
    assert!(!report.contains("PASS  runners"), "{report}");
}
