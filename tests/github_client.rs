//! The REST client against GitHub's OpenAPI description: every request goes through a Prism
//! proxy with request and response validation in front of a scripted fake GitHub.

mod support_github;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use sota_bot::github::api::{
    upsert_marked_comment, NewCheckRun, NewPullRequest, Reaction, RunFilter, Upserted,
};
use sota_bot::github::auth::{AppAuth, Credentials, SecretToken};
use sota_bot::github::markers::CommentMarker;
use sota_bot::github::{
    ClientConfig, ClientMetrics, GitHubApi, GitHubError, HttpTransport, ManualClock, Permission,
    RepoName, RestGitHubApi,
};
use support_github::{harness, Fault, Harness};

struct Client {
    api: RestGitHubApi,
    clock: ManualClock,
    metrics: Arc<ClientMetrics>,
}

fn client_with(h: &Harness, clock: ManualClock, timeout: Duration) -> Client {
    let mut config = ClientConfig::for_base_url(&h.prism_url);
    config.graphql_url = format!("{}/graphql", h.fake_url);
    config.request_timeout = timeout;
    let metrics = Arc::new(ClientMetrics::default());
    let transport = HttpTransport::new(config, Arc::new(clock.clone()), metrics.clone()).unwrap();
    let api = RestGitHubApi::new(
        transport,
        Credentials::Token(SecretToken::new("test-token")),
    );
    Client {
        api,
        clock,
        metrics,
    }
}

fn client(h: &Harness) -> Client {
    client_with(h, ManualClock::new(Utc::now()), Duration::from_secs(60))
}

#[tokio::test]
async fn every_operation_is_allowed_by_the_spec() {
    let Some(h) = harness("every_operation_is_allowed_by_the_spec") else {
        return;
    };
    let c = client(h);
    let repo = RepoName::new("octo", "ops-all");
    h.fake.set_permission("maint", "maintain");

    assert_eq!(
        c.api.collaborator_permission(&repo, "maint").await.unwrap(),
        Permission::Maintain
    );
    assert_eq!(
        c.api
            .collaborator_permission(&repo, "stranger")
            .await
            .unwrap(),
        Permission::None
    );

    let created = c.api.create_issue_comment(&repo, 5, "first").await.unwrap();
    assert_eq!(created.body.as_deref(), Some("first"));
    let updated = c
        .api
        .update_issue_comment(&repo, created.id, "second")
        .await
        .unwrap();
    assert_eq!(updated.id, created.id);
    let listed = c.api.list_issue_comments(&repo, 5).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].body.as_deref(), Some("second"));

    c.api
        .add_reaction(&repo, created.id, Reaction::Eyes)
        .await
        .unwrap();
    c.api
        .add_labels(&repo, 5, &["sota".to_string()])
        .await
        .unwrap();

    let pull = c
        .api
        .create_pull_request(
            &repo,
            &NewPullRequest {
                title: "SOTA campaign".into(),
                head: "sota/llama".into(),
                base: "main".into(),
                body: "campaign".into(),
                draft: true,
            },
        )
        .await
        .unwrap();
    assert!(pull.number > 0 && !pull.node_id.is_empty());
    c.api.mark_ready_for_review(&pull.node_id).await.unwrap();

    let branch = c
        .api
        .get_branch(&repo, "main")
        .await
        .unwrap()
        .expect("exists");
    assert_eq!(branch.sha.len(), 40);
    assert_eq!(
        c.api.get_branch(&repo, "missing-branch").await.unwrap(),
        None
    );
    let head = c
        .api
        .get_ref(&repo, "heads/main")
        .await
        .unwrap()
        .expect("exists");
    assert!(head.git_ref.starts_with("refs/"));
    assert_eq!(
        c.api.get_ref(&repo, "refs/heads/missing").await.unwrap(),
        None
    );
    let new_ref = c
        .api
        .create_ref(&repo, "heads/sota/llama", &branch.sha)
        .await
        .unwrap();
    assert!(new_ref.git_ref.starts_with("refs/"));

    let inputs: BTreeMap<String, String> = [("round".to_string(), "1".to_string())].into();
    let dispatched = c
        .api
        .dispatch_workflow(&repo, "sota-round.yml", "sota/llama", &inputs)
        .await
        .unwrap();
    assert!(
        dispatched.run_id.is_some(),
        "return_run_details gives the run id"
    );
    let runs = c
        .api
        .list_workflow_runs(
            &repo,
            "sota-round.yml",
            &RunFilter {
                branch: Some("sota/llama".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!runs.is_empty());

    let check = NewCheckRun {
        name: "sota-gate".into(),
        head_sha: branch.sha.clone(),
        status: "completed".into(),
        conclusion: Some("success".into()),
        title: "Round 1 accepted".into(),
        summary: "gap closed".into(),
        details_url: None,
        external_id: Some("campaign-1/round-1".into()),
    };
    assert!(c.api.create_check_run(&repo, &check).await.unwrap() > 0);

    let file = c
        .api
        .get_file_contents(&repo, "runs/x/manifest.md", "sota/llama")
        .await
        .unwrap();
    assert_eq!(
        file.as_deref(),
        Some(&b"campaign: llama-8b\nrounds: 3\n"[..])
    );
    assert_eq!(
        c.api
            .get_file_contents(&repo, "missing.md", "main")
            .await
            .unwrap(),
        None
    );

    // Every call reached the fake, i.e. Prism found each request valid.
    let seen = h.fake.seen("/repos/octo/ops-all");
    assert!(seen.len() >= 17, "{}", seen.len());
    assert!(seen
        .iter()
        .all(|s| s.authorization.as_deref() == Some("Bearer test-token")));
    let dispatch = h
        .fake
        .seen("/repos/octo/ops-all/actions/workflows/sota-round.yml/dispatches");
    assert_eq!(
        dispatch[0].body["return_run_details"],
        serde_json::json!(true)
    );
}

/// A value the App knows as secret (its private key, a webhook secret, a key variable)
/// never leaves in anything it writes: comments, check runs, pull requests, commits,
/// committed files, dispatch inputs.
#[tokio::test]
async fn everything_the_app_writes_is_scrubbed_of_its_secrets() {
    let Some(h) = harness("everything_the_app_writes_is_scrubbed_of_its_secrets") else {
        return;
    };
    let c = client(h);
    let repo = RepoName::new("octo", "ops-scrub");
    let key_body = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun";
    sota_bot::secrets::register_value(
        "App private key",
        &format!("-----BEGIN RSA PRIVATE KEY-----\n{key_body}\n-----END RSA PRIVATE KEY-----\n"),
    );
    sota_bot::secrets::register_value("webhook secret", "hooksecret9Kd2Lx7");
    let leak = format!("log: {key_body} and hooksecret9Kd2Lx7");

    c.api.create_issue_comment(&repo, 5, &leak).await.unwrap();
    let check = NewCheckRun {
        name: "sota-gate".into(),
        head_sha: "a".repeat(40),
        status: "completed".into(),
        conclusion: Some("failure".into()),
        title: leak.clone(),
        summary: leak.clone(),
        details_url: None,
        external_id: None,
    };
    c.api.create_check_run(&repo, &check).await.unwrap();
    c.api
        .create_tree(
            &repo,
            &"b".repeat(40),
            &[("runs/x/report.md".into(), leak.clone())],
        )
        .await
        .unwrap();
    c.api
        .create_commit(&repo, &leak, &"c".repeat(40), &["d".repeat(40)])
        .await
        .unwrap();
    let inputs: BTreeMap<String, String> = [("maintainer_note".to_string(), leak.clone())].into();
    c.api
        .dispatch_workflow(&repo, "sota-round.yml", "sota/x", &inputs)
        .await
        .unwrap();

    let seen = h.fake.seen("/repos/octo/ops-scrub");
    assert!(seen.len() >= 5, "{}", seen.len());
    for s in &seen {
        let body = s.body.to_string();
        assert!(!body.contains(key_body), "{} {}: {body}", s.method, s.path);
        assert!(
            !body.contains("hooksecret9Kd2Lx7"),
            "{} {}: {body}",
            s.method,
            s.path
        );
        assert!(
            body.contains("[REDACTED]"),
            "{} {}: {body}",
            s.method,
            s.path
        );
    }
}

#[tokio::test]
async fn a_request_the_spec_forbids_fails() {
    let Some(h) = harness("a_request_the_spec_forbids_fails") else {
        return;
    };
    let c = client(h);
    let repo = RepoName::new("octo", "forbidden");
    let bad = NewCheckRun {
        name: "x".into(),
        head_sha: "abc".into(),
        status: "exploded".into(),
        conclusion: None,
        title: "t".into(),
        summary: "s".into(),
        details_url: None,
        external_id: None,
    };
    let err = c.api.create_check_run(&repo, &bad).await.unwrap_err();
    assert_eq!(err.status(), Some(422), "{err}");
    assert!(
        h.fake.seen("/repos/octo/forbidden").is_empty(),
        "Prism stopped it"
    );
}

#[tokio::test]
async fn dispatch_inputs_are_validated_before_sending() {
    let Some(h) = harness("dispatch_inputs_are_validated_before_sending") else {
        return;
    };
    let c = client(h);
    let repo = RepoName::new("octo", "dispatch-limits");
    let many: BTreeMap<String, String> = (0..26).map(|i| (format!("k{i}"), "v".into())).collect();
    let err = c
        .api
        .dispatch_workflow(&repo, "w.yml", "main", &many)
        .await
        .unwrap_err();
    assert!(matches!(err, GitHubError::InvalidInput(_)), "{err}");
    assert!(h.fake.seen("/repos/octo/dispatch-limits").is_empty());
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff() {
    let Some(h) = harness("server_errors_are_retried_with_backoff") else {
        return;
    };
    let c = client(h);
    let repo = RepoName::new("octo", "five-hundred");
    h.fake.inject(
        "GET",
        "/repos/octo/five-hundred/branches",
        vec![Fault::Status(500), Fault::Status(503)],
    );
    let branch = c.api.get_branch(&repo, "main").await.unwrap();
    assert!(branch.is_some());
    assert_eq!(h.fake.seen("/repos/octo/five-hundred/branches").len(), 3);
    assert_eq!(
        c.clock.sleeps(),
        vec![Duration::from_millis(500), Duration::from_secs(1)]
    );
    assert_eq!(
        c.metrics.retries.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[tokio::test]
async fn secondary_limit_honours_retry_after() {
    let Some(h) = harness("secondary_limit_honours_retry_after") else {
        return;
    };
    let c = client(h);
    let repo = RepoName::new("octo", "retry-after");
    h.fake.inject(
        "POST",
        "/repos/octo/retry-after/issues/3/labels",
        vec![Fault::RetryAfter403(7)],
    );
    c.api.add_labels(&repo, 3, &["sota".into()]).await.unwrap();
    assert_eq!(
        h.fake.seen("/repos/octo/retry-after/issues/3/labels").len(),
        2
    );
    assert!(
        c.clock.sleeps().contains(&Duration::from_secs(7)),
        "{:?}",
        c.clock.sleeps()
    );
    assert_eq!(
        c.metrics
            .rate_limit_waits
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn bare_429_waits_at_least_a_minute_then_backs_off() {
    let Some(h) = harness("bare_429_waits_at_least_a_minute_then_backs_off") else {
        return;
    };
    let c = client(h);
    let repo = RepoName::new("octo", "too-many");
    h.fake.inject(
        "GET",
        "/repos/octo/too-many/git/ref",
        vec![Fault::TooMany429, Fault::TooMany429],
    );
    assert!(c.api.get_ref(&repo, "heads/main").await.unwrap().is_some());
    assert_eq!(
        c.clock.sleeps(),
        vec![Duration::from_secs(60), Duration::from_secs(120)]
    );
}

#[tokio::test]
async fn exhausted_quota_waits_until_reset() {
    let Some(h) = harness("exhausted_quota_waits_until_reset") else {
        return;
    };
    let c = client(h);
    let repo = RepoName::new("octo", "exhausted");
    h.fake.inject(
        "GET",
        "/repos/octo/exhausted/collaborators",
        vec![Fault::Exhausted403 { reset_in: 120 }],
    );
    h.fake.set_permission("writer", "write");
    assert_eq!(
        c.api
            .collaborator_permission(&repo, "writer")
            .await
            .unwrap(),
        Permission::Write
    );
    let waited = c.clock.sleeps();
    assert_eq!(waited.len(), 1);
    assert!(
        (Duration::from_secs(115)..=Duration::from_secs(125)).contains(&waited[0]),
        "{waited:?}"
    );
}

#[tokio::test]
async fn plain_forbidden_is_not_retried() {
    let Some(h) = harness("plain_forbidden_is_not_retried") else {
        return;
    };
    let c = client(h);
    let repo = RepoName::new("octo", "forbidden-403");
    h.fake.inject(
        "POST",
        "/repos/octo/forbidden-403/issues/1/labels",
        vec![Fault::Status(403)],
    );
    let err = c.api.add_labels(&repo, 1, &["x".into()]).await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert_eq!(
        h.fake
            .seen("/repos/octo/forbidden-403/issues/1/labels")
            .len(),
        1
    );
    assert!(c.clock.sleeps().is_empty());
}

#[tokio::test]
async fn timeouts_are_retried_for_reads() {
    let Some(h) = harness("timeouts_are_retried_for_reads") else {
        return;
    };
    let c = client_with(h, ManualClock::new(Utc::now()), Duration::from_millis(1500));
    let repo = RepoName::new("octo", "slow");
    h.fake.inject(
        "GET",
        "/repos/octo/slow/branches",
        vec![Fault::Delay(Duration::from_secs(4))],
    );
    assert!(c.api.get_branch(&repo, "main").await.unwrap().is_some());
    assert_eq!(h.fake.seen("/repos/octo/slow/branches").len(), 2);
    assert_eq!(
        c.metrics
            .transport_errors
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn upsert_never_duplicates_a_comment() {
    let Some(h) = harness("upsert_never_duplicates_a_comment") else {
        return;
    };
    let c = client(h);
    let repo = RepoName::new("octo", "upsert");
    let issue_path = "repos/octo/upsert/issues/9";
    h.fake
        .add_comment_by(issue_path, "someone else's comment", "stranger");
    let marker = CommentMarker {
        campaign: "c1".into(),
        kind: "status".into(),
        round: None,
    };
    // The create reaches GitHub but the answer is lost (502): the upsert must not post twice.
    h.fake.inject(
        "POST",
        "/repos/octo/upsert/issues/9/comments",
        vec![Fault::ActThen502],
    );
    let first = upsert_marked_comment(&c.api, &repo, 9, &marker, "round 1 running", None)
        .await
        .unwrap();
    assert!(matches!(first, Upserted::Updated(_)), "{first:?}");
    assert_eq!(h.fake.comments(issue_path).len(), 2);
    let second = upsert_marked_comment(&c.api, &repo, 9, &marker, "round 2 running", None)
        .await
        .unwrap();
    assert!(matches!(second, Upserted::Updated(_)));
    let comments = h.fake.comments(issue_path);
    assert_eq!(comments.len(), 2, "{comments:?}");
    assert!(comments[1].1.ends_with("round 2 running"));
    assert!(marker.matches(&comments[1].1));
    // A different marker creates its own comment.
    let other = CommentMarker {
        round: Some(2),
        kind: "round-report".into(),
        ..marker.clone()
    };
    let third = upsert_marked_comment(&c.api, &repo, 9, &other, "report", None)
        .await
        .unwrap();
    assert!(matches!(third, Upserted::Created(_)));
    assert_eq!(h.fake.comments(issue_path).len(), 3);
}

/// Anyone can post a comment that carries the bot's hidden marker: the bot never edits it
/// (or takes it for its own reply) and writes its own comment instead.
#[tokio::test]
async fn a_look_alike_marker_in_someone_elses_comment_is_ignored() {
    let Some(h) = harness("a_look_alike_marker_in_someone_elses_comment_is_ignored") else {
        return;
    };
    let c = client(h);
    let repo = RepoName::new("octo", "lookalike");
    let issue_path = "repos/octo/lookalike/issues/4";
    let marker = CommentMarker {
        campaign: "c1".into(),
        kind: "status".into(),
        round: None,
    };
    // The exact text the bot would write, posted first by someone else.
    let forged = sota_bot::github::markers::compose_comment(&marker, "all good", None);
    let forged_id = h.fake.add_comment_by(issue_path, &forged, "mallory");
    let done = upsert_marked_comment(&c.api, &repo, 4, &marker, "all good", None)
        .await
        .unwrap();
    assert!(matches!(done, Upserted::Created(_)), "{done:?}");
    let comments = h.fake.comments(issue_path);
    assert_eq!(comments.len(), 2, "{comments:?}");
    assert!(h
        .fake
        .seen("/repos/octo/lookalike/issues/comments/")
        .iter()
        .all(|s| !s.path.ends_with(&forged_id.to_string())));
    // The bot's own comment is the one it edits from now on.
    let again = upsert_marked_comment(&c.api, &repo, 4, &marker, "round 2", None)
        .await
        .unwrap();
    assert!(
        matches!(again, Upserted::Updated(ref u) if u.id != forged_id),
        "{again:?}"
    );
    assert_eq!(h.fake.comments(issue_path)[0].1, forged, "untouched");
}

#[tokio::test]
async fn app_auth_signs_jwt_and_caches_installation_tokens() {
    let Some(h) = harness("app_auth_signs_jwt_and_caches_installation_tokens") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = support_github::rsa_key_pair(dir.path());
    // The spec's example token expires 2016-07-11T22:14:10Z; start 70 minutes before.
    let start = Utc.with_ymd_and_hms(2016, 7, 11, 21, 4, 10).unwrap();
    let clock = ManualClock::new(start);
    let config = ClientConfig::for_base_url(&h.prism_url);
    let transport = HttpTransport::new(
        config,
        Arc::new(clock.clone()),
        Arc::new(ClientMetrics::default()),
    )
    .unwrap();
    let key = sota_bot::github::auth::load_private_key(&std::fs::read(&private).unwrap()).unwrap();
    let app = Arc::new(AppAuth::new(4242, key, transport.clone()));
    let api = RestGitHubApi::for_installation(transport, app.clone(), 777);
    let repo = RepoName::new("octo", "app-auth");
    api.add_labels(&repo, 1, &["a".into()]).await.unwrap();
    api.add_labels(&repo, 1, &["b".into()]).await.unwrap();
    let token_requests = h.fake.seen("/app/installations/777/access_tokens");
    assert_eq!(token_requests.len(), 1, "token cached");
    let jwt = token_requests[0]
        .authorization
        .as_deref()
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap()
        .to_string();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.validate_exp = false;
    let decoded = jsonwebtoken::decode::<sota_bot::github::auth::AppClaims>(
        &jwt,
        &jsonwebtoken::DecodingKey::from_rsa_pem(&std::fs::read(&public).unwrap()).unwrap(),
        &validation,
    )
    .unwrap();
    assert_eq!(decoded.claims.iss, "4242");
    // The JWT was made before any (pacer) sleep advanced the manual clock.
    assert_eq!(start.timestamp() - decoded.claims.iat, 60);
    assert!(decoded.claims.exp - start.timestamp() <= 600);
    assert!(decoded.claims.exp > start.timestamp());
    let api_calls = h.fake.seen("/repos/octo/app-auth/issues/1/labels");
    let token = api_calls[0].authorization.clone().unwrap();
    assert!(token.starts_with("Bearer ") && !token.contains(&jwt));
    // Within 10 minutes of expiry the token is refreshed.
    clock.advance(Duration::from_secs(61 * 60));
    api.add_labels(&repo, 1, &["c".into()]).await.unwrap();
    assert_eq!(h.fake.seen("/app/installations/777/access_tokens").len(), 2);
}

#[tokio::test]
async fn the_family_pr_search_goes_through_the_spec() {
    let Some(h) = harness("the_family_pr_search_goes_through_the_spec") else {
        return;
    };
    let c = client(h);
    h.fake.set_search_pulls(
        "search/sglang",
        &[
            (101, "[Qwen3-MoE] faster topk routing", None),
            (102, "Qwen3 rope scaling fix", Some("2025-03-20T10:00:00Z")),
            (103, "Qwen3 old fix", Some("2024-01-02T10:00:00Z")),
            (104, "Llama: faster sampling", None),
            (105, "qwen30b table", None),
        ],
    );
    // The raw call: GitHub's query syntax, one page, most recently updated first.
    let hits = c
        .api
        .search_pull_requests("repo:search/sglang is:pr is:open qwen3 in:title", 50)
        .await
        .unwrap();
    let numbers: Vec<u64> = hits.iter().map(|p| p.number).collect();
    assert_eq!(numbers, vec![101]);
    assert!(hits[0].pull_request.as_ref().unwrap().merged_at.is_none());
    // Only this test's searches (another test searches the same fake at the same time).
    const OURS: &str = "repo%3Asearch%2Fsglang";
    let seen = h.fake.seen(OURS);
    assert!(seen[0].path.contains("sort=updated"), "{}", seen[0].path);
    assert!(seen[0].path.contains("per_page=50"), "{}", seen[0].path);
    // A query without `is:pr` is refused before anything is sent.
    let before = h.fake.seen(OURS).len();
    let err = c
        .api
        .search_pull_requests("repo:search/sglang qwen3", 10)
        .await
        .unwrap_err();
    assert!(matches!(err, GitHubError::InvalidInput(_)), "{err}");
    assert_eq!(h.fake.seen(OURS).len(), before);

    // Phase 0.5's search: open PRs and the last 30 days of merges, filtered to the family.
    let up = RepoName::new("search", "sglang");
    let family = sota_bot::history::family_from_model_id("Qwen/Qwen3-30B-A3B");
    let today = chrono::NaiveDate::from_ymd_opt(2025, 4, 1).unwrap();
    let found = sota_bot::history::upstream::fetch(&c.api, &up, &family, today).await;
    let got: Vec<(u64, &str)> = found
        .prs
        .iter()
        .map(|p| (p.number, p.state.as_str()))
        .collect();
    assert_eq!(got, vec![(101, "open"), (102, "merged")]);
    assert_eq!(
        found.prs[0].url,
        "https://github.com/search/sglang/pull/101"
    );
    assert!(found.blockers.is_empty(), "{:?}", found.blockers);
    assert!(
        found.queries[1].contains("merged:>=2025-03-02"),
        "{:?}",
        found.queries
    );

    // A failing search is a blocker, not an error.
    h.fake
        .inject("GET", OURS, vec![Fault::Status(422), Fault::Status(422)]);
    let failed = sota_bot::history::upstream::fetch(&c.api, &up, &family, today).await;
    assert!(failed.prs.is_empty());
    assert_eq!(failed.blockers.len(), 2, "{:?}", failed.blockers);
    assert!(failed.blockers[0].contains("422"), "{:?}", failed.blockers);
}

#[test]
fn sota_bot_history_searches_upstream_with_a_token() {
    let Some(h) = harness("sota_bot_history_searches_upstream_with_a_token") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("sglang");
    std::fs::create_dir_all(repo.join("python/sglang/srt/models")).unwrap();
    std::fs::write(
        repo.join("python/sglang/srt/models/qwen3.py"),
        "class Qwen3ForCausalLM:\n    pass\n\n\nEntryClass = Qwen3ForCausalLM\n",
    )
    .unwrap();
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .args(args)
            .current_dir(&repo)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "d")
            .env("GIT_AUTHOR_EMAIL", "d@example.com")
            .env("GIT_COMMITTER_NAME", "d")
            .env("GIT_COMMITTER_EMAIL", "d@example.com")
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "Add Qwen3 (#201)"]);
    let merged_at = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    h.fake.set_search_pulls(
        "cli/sglang",
        &[
            (201, "Add Qwen3", Some(merged_at.as_str())),
            (202, "[Qwen3] fused qk norm", None),
        ],
    );
    let out = assert_cmd::Command::cargo_bin("sota-bot")
        .unwrap()
        .args(["history", "--format", "json", "--model", "Qwen/Qwen3-8B"])
        .arg("--checkout")
        .arg(&repo)
        .args([
            "--upstream",
            "cli/sglang",
            "--github-token-env",
            "SOTA_TEST_GH_TOKEN",
        ])
        .args(["--github-api-url", &h.prism_url])
        .env("SOTA_TEST_GH_TOKEN", "cli-token")
        .env("HOME", tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["upstream"], "cli/sglang");
    let prs = v["open_prs"].as_array().unwrap();
    assert_eq!(prs.len(), 2, "{prs:?}");
    let pr = |n: u64| prs.iter().find(|p| p["number"] == n).unwrap();
    assert_eq!(pr(201)["in_flight"], false, "the checkout has #201");
    assert_eq!(pr(201)["in_checkout"], v["commits"][0]["sha"]);
    assert_eq!(pr(202)["state"], "open");
    assert_eq!(pr(202)["in_flight"], true);
    let seen = h.fake.seen("repo%3Acli%2Fsglang");
    assert_eq!(seen.len(), 2, "open and merged queries");
    assert!(seen
        .iter()
        .all(|s| s.authorization.as_deref() == Some("Bearer cli-token")));
}
