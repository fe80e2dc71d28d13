//! Test support for the GitHub side: locating the npm tools, the real webhook example
//! payloads, a scripted fake GitHub built from the OpenAPI examples, and one Prism proxy per
//! test binary validating every request and response against GitHub's OpenAPI description.
#![allow(dead_code)]

pub mod git_repo;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `<repo>/tools/node_modules` (or `$SOTA_TOOLS_DIR`) when the npm tools are installed.
/// Missing tools fail the test when `SOTA_REQUIRE_TOOLS` is set (CI), else skip loudly.
pub fn tools_dir(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("SOTA_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("tools").join("node_modules"));
    let ok = dir.join("@stoplight/prism-cli").is_dir()
        && dir
            .join("@octokit/openapi/generated/api.github.com.json")
            .is_file()
        && dir.join("@octokit/webhooks-examples").is_dir();
    if ok {
        return Some(dir);
    }
    if std::env::var_os("SOTA_REQUIRE_TOOLS").is_some() {
        panic!(
            "{test}: npm test tools missing under {} (run `npm install` in tools/)",
            dir.display()
        );
    }
    eprintln!(
        "\n!!!!! SKIPPED {test}: npm test tools not found under {} (run `npm install` in tools/; \
         set SOTA_REQUIRE_TOOLS=1 to make this a failure) !!!!!\n",
        dir.display()
    );
    None
}

/// The OpenAPI description used by Prism and the fake.
pub fn spec_path(tools: &Path) -> PathBuf {
    tools.join("@octokit/openapi/generated/api.github.com.json")
}

/// `(event name, example payloads)` from `@octokit/webhooks-examples`, dumped once by node.
pub fn webhook_examples(tools: &Path) -> &'static Vec<(String, Vec<Value>)> {
    static EXAMPLES: OnceLock<Vec<(String, Vec<Value>)>> = OnceLock::new();
    EXAMPLES.get_or_init(|| {
        let script = "process.stdout.write(JSON.stringify(require('@octokit/webhooks-examples')))";
        let out = Command::new("node")
            .arg("-e")
            .arg(script)
            .env("NODE_PATH", tools)
            .output()
            .expect("node runs");
        assert!(
            out.status.success(),
            "node failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let all: Vec<Value> = serde_json::from_slice(&out.stdout).expect("examples are JSON");
        all.into_iter()
            .map(|e| {
                let name = e["name"].as_str().expect("name").to_string();
                let examples = e["examples"].as_array().cloned().unwrap_or_default();
                (name, examples)
            })
            .collect()
    })
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---------------------------------------------------------------------------------------------
// Fake GitHub

/// A scripted failure for requests whose path contains `path_part` (and method matches).
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status and a GitHub error body.
    Status(u16),
    /// 403 with `retry-after`.
    RetryAfter403(u64),
    /// 429 without hints.
    TooMany429,
    /// 403 with `x-ratelimit-remaining: 0` and the reset at now + secs.
    Exhausted403 { reset_in: i64 },
    /// Wait this long before answering normally (a client timeout).
    Delay(Duration),
    /// Do the work (e.g. create the comment) but answer 502 (outcome unknown to the client).
    ActThen502,
}

/// A request the fake saw (after Prism validated it).
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub body: Value,
    pub authorization: Option<String>,
}

#[derive(Debug, Clone)]
struct StoredComment {
    id: u64,
    issue: String,
    body: String,
    /// Another account than the client's own (None: the client wrote it).
    author: Option<String>,
}

/// A pull request the search endpoint finds: (number, title, merged_at; `None`: open).
type SeededPull = (u64, String, Option<String>);

/// State of the fake; shared by every test of a binary, so tests use distinct repo names.
#[derive(Default)]
pub struct FakeState {
    spec: Value,
    templates: Vec<(String, Vec<String>)>,
    faults: Mutex<Vec<(String, String, VecDeque<Fault>)>>,
    seen: Mutex<Vec<Seen>>,
    comments: Mutex<Vec<StoredComment>>,
    next_id: Mutex<u64>,
    /// user login -> role name; absent users get 404 (not a collaborator).
    pub permissions: Mutex<HashMap<String, String>>,
    /// (repository, user login) -> role name, or None for "not a collaborator there":
    /// overrides `permissions` for that repository.
    repo_permissions: Mutex<HashMap<(String, String), Option<String>>>,
    /// Story repositories (`owner/name`) and their real bare git repositories: for these
    /// the fake answers branches, contents, Git data and commits from git instead of the
    /// spec's examples.
    story_git: Mutex<HashMap<String, git_repo::StoryGit>>,
    /// Story repository -> its pull requests: (number, head branch).
    story_pulls: Mutex<HashMap<String, Vec<(u64, String)>>>,
    /// Dispatches GitHub accepted for story repositories, oldest first.
    story_dispatches: Mutex<Vec<Dispatched>>,
    /// Check runs created on story repositories: (repository, request body).
    story_checks: Mutex<Vec<(String, Value)>>,
    /// (story repository, workflow file) -> runs, newest first.
    story_runs: Mutex<HashMap<(String, String), Vec<Value>>>,
    /// (method, path without query) -> scripted answer, consulted before anything else.
    scripted: Mutex<HashMap<(String, String), (u16, Value)>>,
    /// Repository -> pull requests the search endpoint knows: (number, title, merged_at).
    /// `None` merged_at: open.
    search_pulls: Mutex<HashMap<String, Vec<SeededPull>>>,
}

/// A workflow dispatch GitHub accepted, and the run it queued.
#[derive(Debug, Clone)]
pub struct Dispatched {
    pub repo: String,
    pub workflow: String,
    pub run_id: u64,
    pub title: String,
    /// The dispatch request: `ref` and `inputs`.
    pub body: Value,
}

/// Handle to the fake GitHub.
#[derive(Clone)]
pub struct FakeGitHub {
    pub state: Arc<FakeState>,
    pub addr: SocketAddr,
}

impl FakeGitHub {
    /// Queues faults for `method` requests whose path (with its query) contains `path_part`.
    pub fn inject(&self, method: &str, path_part: &str, faults: Vec<Fault>) {
        self.state.faults.lock().unwrap().push((
            method.to_string(),
            path_part.to_string(),
            faults.into(),
        ));
    }

    /// Requests whose path contains `part`.
    pub fn seen(&self, part: &str) -> Vec<Seen> {
        self.state
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path.contains(part))
            .cloned()
            .collect()
    }

    /// Comment bodies stored for an issue path part like `o/r/issues/1`.
    pub fn comments(&self, issue_path: &str) -> Vec<(u64, String)> {
        self.state
            .comments
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.issue == issue_path)
            .map(|c| (c.id, c.body.clone()))
            .collect()
    }

    /// Seeds an existing comment written by the client's own account (the user `GET /user`
    /// answers with).
    pub fn add_comment(&self, issue_path: &str, body: &str) -> u64 {
        self.store_comment(issue_path, body, None)
    }

    /// Seeds a comment written by another account, `login`.
    pub fn add_comment_by(&self, issue_path: &str, body: &str, login: &str) -> u64 {
        self.store_comment(issue_path, body, Some(login))
    }

    fn store_comment(&self, issue_path: &str, body: &str, author: Option<&str>) -> u64 {
        let id = self.next_id();
        self.state.comments.lock().unwrap().push(StoredComment {
            id,
            issue: issue_path.to_string(),
            body: body.to_string(),
            author: author.map(String::from),
        });
        id
    }

    fn next_id(&self) -> u64 {
        let mut n = self.state.next_id.lock().unwrap();
        *n += 1;
        1_000_000 + *n
    }

    /// Makes `repo` a story repository with these branches, backed by a real bare git
    /// repository (files and branches are then stateful: unknown ones are 404, created refs
    /// become branches, commits are real).
    pub fn story_repo(&self, repo: &str, branches: &[&str]) -> git_repo::StoryGit {
        static ROOT: OnceLock<tempfile::TempDir> = OnceLock::new();
        let root = ROOT.get_or_init(|| tempfile::tempdir().unwrap());
        let git = git_repo::StoryGit::init(&root.path().join(repo.replace('/', "__")), branches);
        self.state
            .story_git
            .lock()
            .unwrap()
            .insert(repo.to_string(), git.clone());
        git
    }

    /// The bare git repository behind a story repository.
    pub fn story_git(&self, repo: &str) -> git_repo::StoryGit {
        self.state.story_git.lock().unwrap()[repo].clone()
    }

    /// Commits a file onto every branch of a story repository.
    pub fn set_file(&self, repo: &str, path: &str, text: &str) {
        let git = self.story_git(repo);
        for b in git.branches() {
            git.commit_files(&b, &[(path, Some(text))], &format!("set {path}"));
        }
    }

    /// Commits a file's removal onto every branch of a story repository that has it.
    pub fn remove_file(&self, repo: &str, path: &str) {
        let git = self.story_git(repo);
        for b in git.branches() {
            if git.read(&b, path).is_some() {
                git.commit_files(&b, &[(path, None)], &format!("remove {path}"));
            }
        }
    }

    /// Records a workflow run of a story repository (listed by the runs endpoint): completed
    /// with `conclusion`, or not yet when it is `queued` or `in_progress`.
    pub fn add_run(
        &self,
        repo: &str,
        workflow: &str,
        id: u64,
        title: &str,
        branch: &str,
        conclusion: &str,
    ) {
        let (_, list) = self
            .state
            .example(
                "GET",
                "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs",
            )
            .expect("runs example");
        let mut run = list["workflow_runs"][0].clone();
        run["id"] = json!(id);
        run["display_title"] = json!(title);
        run["head_branch"] = json!(branch);
        if conclusion == "in_progress" || conclusion == "queued" {
            run["status"] = json!(conclusion);
            run["conclusion"] = Value::Null;
        } else {
            run["status"] = json!("completed");
            run["conclusion"] = json!(conclusion);
        }
        run["event"] = json!("workflow_dispatch");
        run["run_attempt"] = json!(1);
        self.state
            .story_runs
            .lock()
            .unwrap()
            .entry((repo.to_string(), workflow.to_string()))
            .or_default()
            .insert(0, run);
    }

    /// Marks every run of a story repository titled `title` completed with `conclusion`.
    pub fn complete_runs(&self, repo: &str, title: &str, conclusion: &str) {
        for ((r, _), runs) in self.state.story_runs.lock().unwrap().iter_mut() {
            if r != repo {
                continue;
            }
            for run in runs
                .iter_mut()
                .filter(|run| run["display_title"] == json!(title))
            {
                run["status"] = json!("completed");
                run["conclusion"] = json!(conclusion);
            }
        }
    }

    /// Dispatches GitHub accepted for a story repository, oldest first.
    pub fn dispatched(&self, repo: &str) -> Vec<Dispatched> {
        let all = self.state.story_dispatches.lock().unwrap();
        all.iter().filter(|d| d.repo == repo).cloned().collect()
    }

    /// Check runs created on a story repository (their request bodies), oldest first.
    pub fn check_runs(&self, repo: &str) -> Vec<Value> {
        let all = self.state.story_checks.lock().unwrap();
        all.iter()
            .filter(|(r, _)| r == repo)
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// Pull requests of a story repository: (number, head branch).
    pub fn pulls(&self, repo: &str) -> Vec<(u64, String)> {
        let all = self.state.story_pulls.lock().unwrap();
        all.get(repo).cloned().unwrap_or_default()
    }

    /// Branches of a story repository.
    pub fn branches(&self, repo: &str) -> Vec<String> {
        let git = self.state.story_git.lock().unwrap().get(repo).cloned();
        git.map(|g| g.branches()).unwrap_or_default()
    }

    /// Sets a user's role on one repository only (`None`: not a collaborator there).
    pub fn set_repo_permission(&self, repo: &str, user: &str, role: Option<&str>) {
        self.state
            .repo_permissions
            .lock()
            .unwrap()
            .insert((repo.to_string(), user.to_string()), role.map(String::from));
    }

    /// Answers `method path` (query ignored) with `status` and `body` from now on.
    pub fn script(&self, method: &str, path: &str, status: u16, body: Value) {
        self.state
            .scripted
            .lock()
            .unwrap()
            .insert((method.to_string(), path.to_string()), (status, body));
    }

    /// Puts `item` first in the JSON array `GET path` answers with (200): lists such as
    /// webhook deliveries are newest first.
    pub fn script_push(&self, path: &str, item: Value) {
        let mut scripted = self.state.scripted.lock().unwrap();
        let entry = scripted
            .entry(("GET".to_string(), path.to_string()))
            .or_insert((200, json!([])));
        entry
            .1
            .as_array_mut()
            .expect("a scripted list")
            .insert(0, item);
    }

    /// The first 2xx example body of an operation in GitHub's OpenAPI description, to
    /// script answers that still match its schema.
    pub fn example_body(&self, method: &str, template: &str) -> Value {
        self.state
            .example(method, template)
            .unwrap_or_else(|| panic!("no example for {method} {template}"))
            .1
    }

    /// The OpenAPI path template a request path matches.
    pub fn template_of(&self, path: &str) -> Option<String> {
        self.state.template_for(path).map(String::from)
    }

    /// Pull requests of `repo` that `GET /search/issues` finds: (number, title, merged_at),
    /// open when merged_at is `None`.
    pub fn set_search_pulls(&self, repo: &str, pulls: &[(u64, &str, Option<&str>)]) {
        self.state.search_pulls.lock().unwrap().insert(
            repo.to_string(),
            pulls
                .iter()
                .map(|(n, t, m)| (*n, t.to_string(), m.map(String::from)))
                .collect(),
        );
    }

    /// Sets a user's role (`admin`, `maintain`, `write`, `triage`, `read`).
    pub fn set_permission(&self, user: &str, role: &str) {
        self.state
            .permissions
            .lock()
            .unwrap()
            .insert(user.to_string(), role.to_string());
    }
}

fn resolve_ref<'a>(spec: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let mut cur = spec;
            for part in r.trim_start_matches("#/").split('/') {
                cur = &cur[part];
            }
            cur
        }
        None => v,
    }
}

impl FakeState {
    fn template_for(&self, path: &str) -> Option<&str> {
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        // Prefer templates with the most literal segments.
        let mut best: Option<(&str, usize)> = None;
        for (template, tsegs) in &self.templates {
            let greedy_tail = tsegs.last().is_some_and(|s| s == "{path}");
            let fits = if greedy_tail {
                segs.len() >= tsegs.len()
            } else {
                segs.len() == tsegs.len()
            };
            if !fits {
                continue;
            }
            let mut literal = 0;
            let ok = tsegs.iter().zip(&segs).all(|(t, s)| {
                if t.starts_with('{') {
                    true
                } else {
                    literal += 1;
                    t == s
                }
            });
            if ok && best.is_none_or(|(_, l)| literal > l) {
                best = Some((template, literal));
            }
        }
        best.map(|(t, _)| t)
    }

    /// The first 2xx example of an operation: (status, body).
    fn example(&self, method: &str, template: &str) -> Option<(u16, Value)> {
        let op = &self.spec["paths"][template][method.to_lowercase()];
        let responses = op["responses"].as_object()?;
        let mut codes: Vec<&String> = responses.keys().filter(|k| k.starts_with('2')).collect();
        codes.sort();
        for code in codes {
            let resp = resolve_ref(&self.spec, &responses[code]);
            let status: u16 = code.parse().ok()?;
            let Some(examples) = resp["content"]["application/json"]["examples"].as_object() else {
                if resp.get("content").is_none() {
                    return Some((status, Value::Null));
                }
                continue;
            };
            let first = examples.values().next()?;
            let value = resolve_ref(&self.spec, first)["value"].clone();
            return Some((status, value));
        }
        None
    }
}

fn error_response(status: u16, message: &str) -> Response {
    let body = json!({ "message": message, "documentation_url": "https://docs.github.com/rest", "status": status.to_string() });
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

async fn fake_handler(
    State(fake): State<FakeGitHub>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let body_json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    fake.state.seen.lock().unwrap().push(Seen {
        method: method.to_string(),
        path: uri.to_string(),
        body: body_json.clone(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(String::from),
    });
    // Faults match the path with its query, so a test can aim at its own searches.
    let target = uri.to_string();
    let fault = {
        let mut faults = fake.state.faults.lock().unwrap();
        faults
            .iter_mut()
            .find(|(m, p, q)| *m == method.as_str() && target.contains(p.as_str()) && !q.is_empty())
            .and_then(|(_, _, q)| q.pop_front())
    };
    let mut act_then_502 = false;
    match fault {
        Some(Fault::Status(s)) => return error_response(s, "scripted failure"),
        Some(Fault::RetryAfter403(secs)) => {
            let mut r = error_response(403, "You have exceeded a secondary rate limit.");
            r.headers_mut()
                .insert("retry-after", secs.to_string().parse().unwrap());
            return r;
        }
        Some(Fault::TooMany429) => return error_response(429, "Too many requests"),
        Some(Fault::Exhausted403 { reset_in }) => {
            let mut r = error_response(403, "API rate limit exceeded for installation.");
            let reset = chrono::Utc::now().timestamp() + reset_in;
            r.headers_mut()
                .insert("x-ratelimit-remaining", "0".parse().unwrap());
            r.headers_mut()
                .insert("x-ratelimit-reset", reset.to_string().parse().unwrap());
            return r;
        }
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        Some(Fault::ActThen502) => act_then_502 = true,
        None => {}
    }
    let scripted = fake
        .state
        .scripted
        .lock()
        .unwrap()
        .get(&(method.to_string(), path.clone()))
        .cloned();
    if let Some((status, body)) = scripted {
        return (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
    }
    if path == "/graphql" {
        return axum::Json(
            json!({"data": {"markPullRequestReadyForReview": {"pullRequest": {"isDraft": false}}}}),
        )
        .into_response();
    }
    let response = behave(&fake, &method, &uri, &body_json);
    if act_then_502 {
        return error_response(502, "Bad gateway");
    }
    response
}

/// Stateful behaviour where tests need it; spec examples elsewhere.
fn behave(fake: &FakeGitHub, method: &Method, uri: &Uri, body: &Value) -> Response {
    let path = uri.path();
    let state = &fake.state;
    let Some(template) = state.template_for(path).map(String::from) else {
        return error_response(404, "Not Found");
    };
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let comment_json = |id: u64, body: &str, author: Option<&str>| {
        let (_, mut v) = state
            .example("GET", "/repos/{owner}/{repo}/issues/comments/{comment_id}")
            .unwrap();
        v["id"] = json!(id);
        v["body"] = json!(body);
        if let Some(login) = author {
            v["user"]["login"] = json!(login);
        }
        v
    };
    let repo = segs.get(1..3).map(|r| r.join("/")).unwrap_or_default();
    if method == Method::GET && template == "/search/issues" {
        if let Some(answer) = search_answer(state, uri.query().unwrap_or("")) {
            return answer;
        }
    }
    let story = state.story_git.lock().unwrap().get(&repo).cloned();
    if let Some(git) = story {
        if let Some(answer) = story_answer(fake, &git, &repo, method, uri, &template, body) {
            return answer;
        }
    }
    match (method.as_str(), template.as_str()) {
        ("GET", "/repos/{owner}/{repo}/collaborators/{username}/permission") => {
            let user = segs[4];
            let per_repo = state
                .repo_permissions
                .lock()
                .unwrap()
                .get(&(repo.clone(), user.to_string()))
                .cloned();
            let role = match per_repo {
                Some(role) => role,
                None => state.permissions.lock().unwrap().get(user).cloned(),
            };
            let Some(role) = role else {
                return error_response(404, "Not Found");
            };
            let (_, mut v) = state.example("GET", &template).unwrap();
            let legacy = match role.as_str() {
                "admin" => "admin",
                "maintain" | "write" => "write",
                "triage" | "read" => "read",
                _ => "none",
            };
            v["permission"] = json!(legacy);
            v["role_name"] = json!(role);
            // The spec's own example lacks `user.role_name`, which its schema requires.
            v["user"]["role_name"] = json!(role);
            v["user"]["login"] = json!(user);
            axum::Json(v).into_response()
        }
        ("GET", "/repos/{owner}/{repo}/issues/{issue_number}/comments") => {
            let issue = segs[..5].join("/");
            let list: Vec<Value> = state
                .comments
                .lock()
                .unwrap()
                .iter()
                .filter(|c| c.issue == issue)
                .map(|c| comment_json(c.id, &c.body, c.author.as_deref()))
                .collect();
            axum::Json(Value::Array(list)).into_response()
        }
        ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments") => {
            let issue = segs[..5].join("/");
            let text = body["body"].as_str().unwrap_or("");
            let id = fake.add_comment(&issue, text);
            (
                StatusCode::CREATED,
                axum::Json(comment_json(id, text, None)),
            )
                .into_response()
        }
        ("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id}") => {
            let id: u64 = segs[5].parse().unwrap_or(0);
            let text = body["body"].as_str().unwrap_or("").to_string();
            let mut comments = state.comments.lock().unwrap();
            let Some(c) = comments.iter_mut().find(|c| c.id == id) else {
                return error_response(404, "Not Found");
            };
            c.body = text.clone();
            axum::Json(comment_json(id, &text, c.author.as_deref())).into_response()
        }
        ("GET", "/repos/{owner}/{repo}/branches/{branch}") if segs[4].starts_with("missing") => {
            error_response(404, "Branch not found")
        }
        ("GET", "/repos/{owner}/{repo}/git/ref/{ref}") if path.contains("missing") => {
            error_response(404, "Not Found")
        }
        ("POST", "/repos/{owner}/{repo}/pulls") => {
            let (status, mut v) = state.example("POST", &template).unwrap();
            // The spec's example team lacks fields its own schema requires.
            v["requested_teams"] = json!([]);
            (StatusCode::from_u16(status).unwrap(), axum::Json(v)).into_response()
        }
        ("GET", "/repos/{owner}/{repo}/contents/{path}") => {
            if path.contains("missing") {
                return error_response(404, "Not Found");
            }
            let (_, mut v) = state.example("GET", &template).unwrap();
            // GitHub wraps base64 content with newlines; the example's content is a placeholder.
            v["content"] = json!("Y2FtcGFpZ246IGxsYW1h\nLThiCnJvdW5kczogMwo=\n");
            axum::Json(v).into_response()
        }
        _ => match state.example(method.as_str(), &template) {
            Some((status, Value::Null)) => StatusCode::from_u16(status).unwrap().into_response(),
            Some((status, v)) => {
                (StatusCode::from_u16(status).unwrap(), axum::Json(v)).into_response()
            }
            None => error_response(404, "no example"),
        },
    }
}

/// Percent-decodes a path segment.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(b) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(&String::from_utf8_lossy(h), 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A story repository's answer from its git repository and recorded runs and pull
/// requests; `None`: the generic behaviour (comments, permissions, examples) answers.
fn story_answer(
    fake: &FakeGitHub,
    git: &git_repo::StoryGit,
    repo: &str,
    method: &Method,
    uri: &Uri,
    template: &str,
    body: &Value,
) -> Option<Response> {
    let state = &fake.state;
    let path = uri.path();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let query = uri.query().unwrap_or("");
    let sha_json = |sha: &str| {
        let (status, mut v) = state.example(method.as_str(), template).unwrap();
        v["sha"] = json!(sha);
        (StatusCode::from_u16(status).unwrap(), axum::Json(v)).into_response()
    };
    let answer = match (method.as_str(), template) {
        ("GET", "/repos/{owner}/{repo}/branches/{branch}") => {
            let branch = percent_decode(&segs[4..].join("/"));
            let Some(sha) = git.branch_head(&branch) else {
                return Some(error_response(404, "Branch not found"));
            };
            let (_, mut v) = state.example("GET", template).unwrap();
            v["name"] = json!(branch);
            v["commit"]["sha"] = json!(sha);
            axum::Json(v).into_response()
        }
        ("GET", "/repos/{owner}/{repo}/contents/{path}") => {
            let file = percent_decode(&segs[4..].join("/"));
            let rev = query_value(query, "ref").unwrap_or_else(|| "main".into());
            let Some(bytes) = git.read(&rev, &file) else {
                return Some(error_response(404, "Not Found"));
            };
            let (_, mut v) = state.example("GET", template).unwrap();
            v["content"] = json!(base64_wrapped(&bytes));
            v["path"] = json!(file);
            v["size"] = json!(bytes.len());
            axum::Json(v).into_response()
        }
        ("GET", "/repos/{owner}/{repo}/git/commits/{commit_sha}") => {
            let Some(tree) = git.commit_tree(segs[5]) else {
                return Some(error_response(404, "Not Found"));
            };
            let (_, mut v) = state.example("GET", template).unwrap();
            v["sha"] = json!(segs[5]);
            v["tree"]["sha"] = json!(tree);
            axum::Json(v).into_response()
        }
        ("GET", "/repos/{owner}/{repo}/git/trees/{tree_sha}") => {
            let Some(files) = git.files(&percent_decode(segs[5])) else {
                return Some(error_response(404, "Not Found"));
            };
            if query_value(query, "recursive").is_none() {
                // The App lists trees recursively only; one level is not modelled.
                return Some(error_response(422, "fake: only recursive listings"));
            }
            let (_, mut v) = state.example("GET", template).unwrap();
            let entries: Vec<Value> = files
                .into_iter()
                .map(|(p, sha, size)| {
                    json!({"path": p, "mode": "100644", "type": "blob", "sha": sha, "size": size,
                           "url": format!("https://api.github.com/repos/{repo}/git/blobs/{sha}")})
                })
                .collect();
            v["sha"] = json!(segs[5]);
            v["tree"] = json!(entries);
            v["truncated"] = json!(false);
            axum::Json(v).into_response()
        }
        ("POST", "/repos/{owner}/{repo}/git/trees") => {
            let files: Vec<(String, String)> = body["tree"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| Some((e["path"].as_str()?.into(), e["content"].as_str()?.into())))
                .collect();
            let base = body["base_tree"].as_str().unwrap_or("");
            match git.create_tree(base, &files) {
                Some(sha) => sha_json(&sha),
                None => error_response(422, "Invalid tree info"),
            }
        }
        ("POST", "/repos/{owner}/{repo}/git/commits") => {
            let parents: Vec<String> = body["parents"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect();
            let made = git.create_commit(
                body["message"].as_str().unwrap_or(""),
                body["tree"].as_str().unwrap_or(""),
                &parents,
            );
            match made {
                Some(sha) => sha_json(&sha),
                None => error_response(422, "Invalid commit"),
            }
        }
        ("POST", "/repos/{owner}/{repo}/git/refs") => {
            let name = body["ref"].as_str().unwrap_or("");
            let sha = body["sha"].as_str().unwrap_or("");
            if !git.create_ref(name, sha) {
                return Some(error_response(422, "Reference already exists"));
            }
            let (status, mut v) = state.example("POST", template).unwrap();
            v["ref"] = json!(name);
            v["object"]["sha"] = json!(sha);
            (StatusCode::from_u16(status).unwrap(), axum::Json(v)).into_response()
        }
        ("GET", "/repos/{owner}/{repo}/git/matching-refs/{ref}") => {
            let prefix = percent_decode(&segs[5..].join("/"));
            let prefix = prefix.strip_prefix("heads/").unwrap_or(&prefix).to_string();
            let (_, example) = state
                .example("GET", "/repos/{owner}/{repo}/git/ref/{ref}")
                .unwrap();
            let list: Vec<Value> = git
                .branches()
                .iter()
                .filter(|b| b.starts_with(&prefix))
                .map(|b| {
                    let mut r = example.clone();
                    r["ref"] = json!(format!("refs/heads/{b}"));
                    r["object"]["sha"] = json!(git.branch_head(b));
                    r
                })
                .collect();
            axum::Json(Value::Array(list)).into_response()
        }
        ("GET", "/repos/{owner}/{repo}/commits") => {
            // `sha` (a branch) and `path`: the newest commit that changed the path.
            let branch = query_value(query, "sha").unwrap_or_else(|| "main".into());
            let (_, example) = state.example("GET", template).unwrap();
            let found = match query_value(query, "path") {
                Some(p) => git.last_commit_touching(&branch, &p),
                None => git.branch_head(&branch),
            };
            let list: Vec<Value> = found
                .into_iter()
                .map(|sha| {
                    let mut c = example[0].clone();
                    c["sha"] = json!(sha);
                    c
                })
                .collect();
            axum::Json(Value::Array(list)).into_response()
        }
        ("POST", "/repos/{owner}/{repo}/pulls") => {
            let head = body["head"].as_str().unwrap_or("").to_string();
            if git.branch_head(&head).is_none() {
                return Some(error_response(422, "Validation Failed: head"));
            }
            let mut pulls = state.story_pulls.lock().unwrap();
            let list = pulls.entry(repo.to_string()).or_default();
            if list.iter().any(|(_, h)| *h == head) {
                return Some(error_response(
                    422,
                    "Validation Failed: A pull request already exists",
                ));
            }
            let number = 100 + list.len() as u64 + 1;
            list.push((number, head.clone()));
            let (status, mut v) = state.example("POST", template).unwrap();
            v["number"] = json!(number);
            v["node_id"] = json!(format!("PR_story_{number}"));
            v["draft"] = body["draft"].clone();
            v["head"]["ref"] = json!(head);
            // The spec's example team lacks fields its own schema requires.
            v["requested_teams"] = json!([]);
            (StatusCode::from_u16(status).unwrap(), axum::Json(v)).into_response()
        }
        ("GET", "/repos/{owner}/{repo}/pulls") => {
            // `head=owner:branch`: this story's pull requests of that branch.
            let head = query_value(query, "head").unwrap_or_default();
            let branch = head.split_once(':').map(|(_, b)| b).unwrap_or(&head);
            let (_, example) = state.example("GET", template).unwrap();
            let list: Vec<Value> = state
                .story_pulls
                .lock()
                .unwrap()
                .get(repo)
                .into_iter()
                .flatten()
                .filter(|(_, h)| h == branch)
                .map(|(n, h)| {
                    let mut pr = example[0].clone();
                    pr["number"] = json!(n);
                    pr["node_id"] = json!(format!("PR_story_{n}"));
                    pr["head"]["ref"] = json!(h);
                    pr["state"] = json!("open");
                    pr["requested_teams"] = json!([]);
                    pr
                })
                .collect();
            axum::Json(Value::Array(list)).into_response()
        }
        ("POST", "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches") => {
            // A dispatched run appears in the workflow's runs, queued, titled by the
            // workflows' `run-name` (`sota <campaign> baseline|round N`).
            let workflow = percent_decode(segs[5]);
            let inputs = &body["inputs"];
            let campaign = inputs["campaign_id"].as_str().unwrap_or("");
            let title = match inputs["round"].as_str() {
                Some(n) => format!("sota {campaign} round {n}"),
                None => format!("sota {campaign} baseline"),
            };
            let id = fake.next_id();
            let branch = body["ref"].as_str().unwrap_or("").to_string();
            fake.add_run(repo, &workflow, id, &title, &branch, "queued");
            state.story_dispatches.lock().unwrap().push(Dispatched {
                repo: repo.to_string(),
                workflow,
                run_id: id,
                title,
                body: body.clone(),
            });
            StatusCode::NO_CONTENT.into_response()
        }
        ("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs") => {
            // The check runs this story created on that commit, by name.
            let sha = percent_decode(segs[4]);
            let wanted = query_value(query, "check_name");
            let (_, example) = state
                .example("POST", "/repos/{owner}/{repo}/check-runs")
                .unwrap();
            let runs: Vec<Value> = state
                .story_checks
                .lock()
                .unwrap()
                .iter()
                .filter(|(r, b)| {
                    r == repo
                        && b["head_sha"] == json!(sha)
                        && wanted.as_deref().is_none_or(|w| b["name"] == json!(w))
                })
                .map(|(_, b)| {
                    let mut r = example.clone();
                    r["name"] = b["name"].clone();
                    r["head_sha"] = json!(sha);
                    r
                })
                .collect();
            axum::Json(json!({"total_count": runs.len(), "check_runs": runs})).into_response()
        }
        ("POST", "/repos/{owner}/{repo}/check-runs") => {
            state
                .story_checks
                .lock()
                .unwrap()
                .push((repo.to_string(), body.clone()));
            let (status, mut v) = state.example("POST", template).unwrap();
            v["name"] = body["name"].clone();
            v["head_sha"] = body["head_sha"].clone();
            (StatusCode::from_u16(status).unwrap(), axum::Json(v)).into_response()
        }
        ("GET", "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs") => {
            let workflow = percent_decode(segs[5]);
            let runs = state
                .story_runs
                .lock()
                .unwrap()
                .get(&(repo.to_string(), workflow))
                .cloned()
                .unwrap_or_default();
            axum::Json(json!({"total_count": runs.len(), "workflow_runs": runs})).into_response()
        }
        _ => return None,
    };
    Some(answer)
}

/// The search endpoint for repositories with seeded pull requests: GitHub's qualifiers
/// `repo:`, `is:open`, `is:merged`, `merged:>=DATE` and title words (whole words, as GitHub
/// tokenizes titles), applied to the seeded list; each hit is the spec's example item with the seeded fields. `None`: not seeded.
fn search_answer(state: &FakeState, query: &str) -> Option<Response> {
    let q = query_value(query, "q")?;
    let terms: Vec<&str> = q.split_whitespace().collect();
    let repo = terms.iter().find_map(|t| t.strip_prefix("repo:"))?;
    let pulls = state.search_pulls.lock().unwrap().get(repo).cloned()?;
    let open = terms.contains(&"is:open");
    let merged = terms.contains(&"is:merged");
    let since = terms.iter().find_map(|t| t.strip_prefix("merged:>="));
    let words: Vec<String> = terms
        .iter()
        .filter(|t| !t.contains(':'))
        .map(|t| t.to_lowercase())
        .collect();
    let (_, example) = state.example("GET", "/search/issues")?;
    let template = example["items"][0].clone();
    let items: Vec<Value> = pulls
        .iter()
        .filter(|(_, title, m)| {
            (!open || m.is_none())
                && (!merged || m.is_some())
                && since.is_none_or(|d| m.as_deref().is_some_and(|m| m >= d))
                && words.iter().all(|w| {
                    title
                        .to_lowercase()
                        .split(|c: char| !c.is_alphanumeric())
                        .any(|t| t == w)
                })
        })
        .map(|(n, title, m)| {
            let mut item = template.clone();
            item["number"] = json!(n);
            item["title"] = json!(title);
            item["state"] = json!(if m.is_some() { "closed" } else { "open" });
            item["html_url"] = json!(format!("https://github.com/{repo}/pull/{n}"));
            item["url"] = json!(format!("https://api.github.com/repos/{repo}/issues/{n}"));
            item["repository_url"] = json!(format!("https://api.github.com/repos/{repo}"));
            item["pull_request"]["merged_at"] = json!(m);
            item["closed_at"] = json!(m);
            item
        })
        .collect();
    let body = json!({
        "total_count": items.len(),
        "incomplete_results": false,
        "search_type": "lexical",
        "items": items,
    });
    Some(axum::Json(body).into_response())
}

/// A query parameter (percent-decoded), if present.
fn query_value(query: &str, key: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// Standard base64 with GitHub's 60-character line wrapping.
fn base64_wrapped(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    let mut wrapped = String::new();
    for (i, c) in out.chars().enumerate() {
        if i > 0 && i % 60 == 0 {
            wrapped.push('\n');
        }
        wrapped.push(c);
    }
    wrapped.push('\n');
    wrapped
}

/// Everything a test needs to talk to GitHub through Prism.
pub struct Harness {
    pub fake: FakeGitHub,
    /// Prism's base URL (every client request goes here).
    pub prism_url: String,
    /// The fake's own URL (for GraphQL, which the REST description does not cover).
    pub fake_url: String,
}

/// Starts (once per test binary) the fake GitHub and Prism in front of it.
pub fn harness(test: &str) -> Option<&'static Harness> {
    let tools = tools_dir(test)?;
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    Some(HARNESS.get_or_init(|| start_harness(&tools)))
}

fn start_harness(tools: &Path) -> Harness {
    let spec_file = spec_path(tools);
    let spec: Value = serde_json::from_slice(&std::fs::read(&spec_file).unwrap()).unwrap();
    let templates = spec["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| {
            (
                k.clone(),
                k.trim_start_matches('/')
                    .split('/')
                    .map(String::from)
                    .collect(),
            )
        })
        .collect();
    let state = Arc::new(FakeState {
        spec,
        templates,
        ..Default::default()
    });
    // The fake runs on its own runtime thread: tests each have their own runtime.
    let (tx, rx) = std::sync::mpsc::channel();
    let thread_state = state.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let fake = FakeGitHub {
                state: thread_state,
                addr,
            };
            tx.send(fake.clone()).unwrap();
            let app = axum::Router::new().fallback(fake_handler).with_state(fake);
            axum::serve(listener, app).await.unwrap();
        });
    });
    let fake = rx.recv().unwrap();
    let port = free_port();
    let prism = tools.join(".bin/prism");
    // A watchdog shell ends Prism when this test process exits (servers must stop by themselves).
    let script = format!(
        "'{prism}' proxy -p {port} -h 127.0.0.1 --errors -v warn '{spec}' http://{up} & P=$!; \
         while kill -0 {parent} 2>/dev/null && kill -0 $P 2>/dev/null; do sleep 1; done; kill $P 2>/dev/null",
        prism = prism.display(),
        spec = spec_file.display(),
        up = fake.addr,
        parent = std::process::id(),
    );
    let mut watchdog = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("prism starts");
    // Reap the watchdog when it ends (it outlives the tests by design, until this process exits).
    std::thread::spawn(move || watchdog.wait());
    let started = Instant::now();
    // Prism needs ~10 s on an idle machine; allow for a busy one.
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "prism did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!("prism proxy up on {port} after {:?}", started.elapsed());
    Harness {
        prism_url: format!("http://127.0.0.1:{port}"),
        fake_url: format!("http://{}", fake.addr),
        fake,
    }
}

// ---------------------------------------------------------------------------------------------
// Keys and clients

/// A fresh RSA key pair (PKCS#1 private PEM, public PEM) made with the openssl CLI.
pub fn rsa_key_pair(dir: &Path) -> (PathBuf, PathBuf) {
    let private = dir.join("app.pem");
    let public = dir.join("app.pub.pem");
    let ok = Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&private)
        .arg("2048")
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs")
        .success();
    assert!(ok, "openssl genrsa failed");
    let ok = Command::new("openssl")
        .args(["rsa", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs")
        .success();
    assert!(ok, "openssl rsa -pubout failed");
    (private, public)
}

/// Signs and POSTs a delivery; returns (status, body).
pub async fn post_delivery(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    event: &str,
    delivery: &str,
    body: &[u8],
) -> (u16, String) {
    let signature = sota_bot::github::signature::sign(
        &sota_bot::github::signature::WebhookSecret::new(secret),
        body,
    );
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", signature)
        .body(body.to_vec())
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// Every installation gets the same fixed token (Prism checks the header, not the value).
pub struct TokenApis {
    pub transport: sota_bot::github::HttpTransport,
}

impl sota_bot::server::handler::InstallationApis for TokenApis {
    fn for_installation(&self, _installation_id: u64) -> Arc<dyn sota_bot::github::GitHubApi> {
        use sota_bot::github::auth::{Credentials, SecretToken};
        Arc::new(sota_bot::github::RestGitHubApi::new(
            self.transport.clone(),
            Credentials::Token(SecretToken::new("inst-token")),
        ))
    }
}
