//! Compare-and-swap push against real repositories: a bare repository in a temp dir
//! plays the fork, clones play runners and humans pushing to the campaign branch.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use git2::{Oid, Repository};
use sota_bot::git::push::{push_with_cas, CasPush, PushError};
use tempfile::TempDir;

const BRANCH: &str = "sota/llama-8b-h100";
const RUN_DIR: &str = "runs/20260101_llama_8b_sota_humanize";

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=sota test",
            "-c",
            "user.email=sota@example.invalid",
        ])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "advice.detachedHead=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

struct Fixture {
    _tmp: TempDir,
    root: PathBuf,
    remote: PathBuf,
}

impl Fixture {
    /// A bare "fork" whose campaign branch has one commit with a run directory.
    fn new() -> Self {
        let tmp = TempDir::new().unwrap();
        let root = tmp.path().to_path_buf();
        let remote = root.join("fork.git");
        git(&root, &["init", "--bare", "-q", remote.to_str().unwrap()]);
        let seed = root.join("seed");
        git(&root, &["clone", "-q", remote.to_str().unwrap(), "seed"]);
        git(&seed, &["checkout", "-q", "-b", BRANCH]);
        write(&seed, "README.md", "fork\n");
        write(&seed, &format!("{RUN_DIR}/manifest.md"), "# manifest\n");
        git(&seed, &["add", "-A"]);
        git(&seed, &["commit", "-q", "-m", "campaign start"]);
        git(&seed, &["push", "-q", "origin", BRANCH]);
        Fixture {
            _tmp: tmp,
            root,
            remote,
        }
    }

    fn clone(&self, name: &str) -> PathBuf {
        git(
            &self.root,
            &[
                "clone",
                "-q",
                "-b",
                BRANCH,
                self.remote.to_str().unwrap(),
                name,
            ],
        );
        self.root.join(name)
    }

    fn remote_head(&self) -> Option<Oid> {
        let repo = Repository::open_bare(&self.remote).unwrap();
        repo.refname_to_id(&format!("refs/heads/{BRANCH}")).ok()
    }

    fn remote_file(&self, path: &str) -> Option<String> {
        let repo = Repository::open_bare(&self.remote).unwrap();
        let head = repo.find_commit(self.remote_head()?).ok()?;
        let entry = head.tree().ok()?.get_path(Path::new(path)).ok()?;
        let blob = repo.find_blob(entry.id()).ok()?;
        Some(String::from_utf8_lossy(blob.content()).into_owned())
    }
}

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn commit(dir: &Path, files: &[(&str, &str)], message: &str) -> Oid {
    for (rel, text) in files {
        write(dir, rel, text);
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
    Oid::from_str(&git(dir, &["rev-parse", "HEAD"])).unwrap()
}

fn head(dir: &Path) -> Oid {
    Oid::from_str(&git(dir, &["rev-parse", "HEAD"])).unwrap()
}

fn request<'a>(local: Oid, expected: Option<Oid>, remote: &'a str) -> CasPush<'a> {
    CasPush {
        remote,
        branch: BRANCH,
        local_commit: local,
        expected_remote_head: expected,
        run_dir: Path::new(RUN_DIR),
        max_attempts: 5,
        token: None,
        local_branch: Some(BRANCH),
    }
}

#[test]
fn pushes_when_the_remote_head_is_the_expected_one() {
    let fx = Fixture::new();
    let runner = fx.clone("runner");
    let start = head(&runner);
    let c = commit(
        &runner,
        &[(&format!("{RUN_DIR}/benchmark/summary.md"), "rows\n")],
        "baseline",
    );
    let repo = Repository::open(&runner).unwrap();
    let out = push_with_cas(&repo, &request(c, Some(start), "origin")).unwrap();
    assert_eq!(out.commit, c);
    assert_eq!(out.rebased_onto, None);
    assert_eq!(out.attempts, 1);
    assert_eq!(fx.remote_head(), Some(c));
}

#[test]
fn race_on_disjoint_files_rebases_the_run_commit() {
    let fx = Fixture::new();
    let runner = fx.clone("runner");
    let human = fx.clone("human");
    let start = head(&runner);

    // Both start from the same head; the human pushes first (an edit outside the run dir).
    let human_commit = commit(
        &human,
        &[("README.md", "fork, edited by a maintainer\n")],
        "docs",
    );
    git(&human, &["push", "-q", "origin", BRANCH]);
    let run_commit = commit(
        &runner,
        &[(&format!("{RUN_DIR}/humanize/attempt-ledger.md"), "| 1 |\n")],
        "round 1",
    );

    let repo = Repository::open(&runner).unwrap();
    let out = push_with_cas(&repo, &request(run_commit, Some(start), "origin")).unwrap();
    assert_eq!(out.rebased_onto, Some(human_commit));
    assert_ne!(out.commit, run_commit, "the run commit was replayed");
    assert_eq!(fx.remote_head(), Some(out.commit));
    let pushed = repo.find_commit(out.commit).unwrap();
    assert_eq!(pushed.parent_id(0).unwrap(), human_commit);
    assert_eq!(pushed.message().ok(), Some("round 1\n"));
    assert_eq!(
        fx.remote_file("README.md").as_deref(),
        Some("fork, edited by a maintainer\n")
    );
    assert_eq!(
        fx.remote_file(&format!("{RUN_DIR}/humanize/attempt-ledger.md"))
            .as_deref(),
        Some("| 1 |\n")
    );
    // The runner's checkout follows the published commit, with the human's edit.
    assert_eq!(head(&runner), out.commit);
    assert_eq!(
        std::fs::read_to_string(runner.join("README.md")).unwrap(),
        "fork, edited by a maintainer\n"
    );
}

#[test]
fn race_on_the_same_file_fails_clearly_and_leaves_the_remote_alone() {
    let fx = Fixture::new();
    let runner = fx.clone("runner");
    let other = fx.clone("other");
    let start = head(&runner);
    let ledger = format!("{RUN_DIR}/humanize/attempt-ledger.md");
    let winner = commit(&other, &[(&ledger, "| other |\n")], "other writer");
    git(&other, &["push", "-q", "origin", BRANCH]);
    let loser = commit(&runner, &[(&ledger, "| runner |\n")], "round 2");

    let repo = Repository::open(&runner).unwrap();
    let err = push_with_cas(&repo, &request(loser, Some(start), "origin")).unwrap_err();
    match &err {
        PushError::Overlap { remote_head, paths } => {
            assert_eq!(*remote_head, winner);
            assert!(paths.contains("attempt-ledger.md"), "{paths}");
        }
        other => panic!("expected Overlap, got {other:?}"),
    }
    assert!(err.to_string().contains("change the same files"), "{err}");
    assert_eq!(fx.remote_head(), Some(winner));
    assert_eq!(
        head(&runner),
        loser,
        "local work is kept for a human to resolve"
    );
}

#[test]
fn a_patch_outside_the_run_dir_is_not_rebased() {
    let fx = Fixture::new();
    let runner = fx.clone("runner");
    let human = fx.clone("human");
    let start = head(&runner);
    commit(&human, &[("README.md", "moved\n")], "docs");
    git(&human, &["push", "-q", "origin", BRANCH]);
    let patch = commit(
        &runner,
        &[
            ("python/sglang/srt/layers/attention.py", "# patched\n"),
            (&format!("{RUN_DIR}/patches/round-1.md"), "patch notes\n"),
        ],
        "round 1 patch",
    );
    let repo = Repository::open(&runner).unwrap();
    let err = push_with_cas(&repo, &request(patch, Some(start), "origin")).unwrap_err();
    match err {
        PushError::OutsideRunDir { paths, .. } => {
            assert_eq!(paths, "python/sglang/srt/layers/attention.py")
        }
        other => panic!("expected OutsideRunDir, got {other:?}"),
    }
}

#[test]
fn a_rewritten_remote_branch_is_never_pushed_over() {
    let fx = Fixture::new();
    let runner = fx.clone("runner");
    let start = head(&runner);
    let rewriter = fx.clone("rewriter");
    git(&rewriter, &["checkout", "-q", "--orphan", "fresh"]);
    let rewritten = commit(&rewriter, &[("other.md", "x\n")], "unrelated history");
    git(
        &rewriter,
        &[
            "push",
            "-q",
            "--force",
            "origin",
            &format!("fresh:{BRANCH}"),
        ],
    );
    let c = commit(&runner, &[(&format!("{RUN_DIR}/x.md"), "x\n")], "round");
    let repo = Repository::open(&runner).unwrap();
    let err = push_with_cas(&repo, &request(c, Some(start), "origin")).unwrap_err();
    assert!(
        matches!(err, PushError::RemoteRewritten { found, .. } if found == rewritten),
        "{err:?}"
    );
    assert_eq!(fx.remote_head(), Some(rewritten));
}

#[test]
fn creates_the_branch_only_when_it_must_not_exist_yet() {
    let fx = Fixture::new();
    let runner = fx.clone("runner");
    let c = commit(
        &runner,
        &[(&format!("{RUN_DIR}/x.md"), "x\n")],
        "new campaign",
    );
    let repo = Repository::open(&runner).unwrap();
    let mut req = request(c, None, "origin");
    req.branch = "sota/new-campaign";
    req.local_branch = None;
    let out = push_with_cas(&repo, &req).unwrap();
    assert_eq!(out.commit, c);
    let bare = Repository::open_bare(&fx.remote).unwrap();
    assert_eq!(
        bare.refname_to_id("refs/heads/sota/new-campaign").unwrap(),
        c
    );
}

#[test]
fn a_deleted_remote_branch_is_reported() {
    let fx = Fixture::new();
    let runner = fx.clone("runner");
    let start = head(&runner);
    let c = commit(&runner, &[(&format!("{RUN_DIR}/x.md"), "x\n")], "round");
    git(
        &fx.root,
        &[
            "--git-dir",
            fx.remote.to_str().unwrap(),
            "update-ref",
            "-d",
            &format!("refs/heads/{BRANCH}"),
        ],
    );
    let repo = Repository::open(&runner).unwrap();
    let err = push_with_cas(&repo, &request(c, Some(start), "origin")).unwrap_err();
    assert!(
        matches!(err, PushError::RemoteBranchMissing { .. }),
        "{err:?}"
    );
    assert_eq!(fx.remote_head(), None);
}

#[test]
fn a_retried_push_of_a_published_commit_is_a_no_op() {
    let fx = Fixture::new();
    let runner = fx.clone("runner");
    let start = head(&runner);
    let c = commit(&runner, &[(&format!("{RUN_DIR}/x.md"), "x\n")], "round");
    let repo = Repository::open(&runner).unwrap();
    push_with_cas(&repo, &request(c, Some(start), "origin")).unwrap();
    let again = push_with_cas(&repo, &request(c, Some(start), "origin")).unwrap();
    assert_eq!(again.commit, c);
    assert_eq!(fx.remote_head(), Some(c));
}

/// `git daemon` serving the fixture over git://, so pushes go through the real
/// `receive-pack`, which updates the ref atomically against the old value.
struct Daemon {
    child: Child,
    port: u16,
}

impl Daemon {
    fn start(base: &Path) -> Option<Daemon> {
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = Command::new("git")
            .args([
                "daemon",
                "--reuseaddr",
                "--listen=127.0.0.1",
                &format!("--port={port}"),
                &format!("--base-path={}", base.display()),
                "--export-all",
                "--enable=receive-pack",
                "--informative-errors",
            ])
            .arg(base)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut daemon = Daemon { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(daemon);
            }
            if let Ok(Some(_)) = daemon.child.try_wait() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = daemon.child.kill();
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn two_concurrent_pushes_one_wins_the_other_rebases_or_fails_clearly() {
    let fx = Fixture::new();
    let Some(daemon) = Daemon::start(&fx.root) else {
        assert!(
            std::env::var_os("SOTA_REQUIRE_TOOLS").is_none(),
            "git daemon is required (SOTA_REQUIRE_TOOLS is set)"
        );
        eprintln!("SKIPPED: git daemon could not start; the concurrent race test did not run");
        return;
    };
    let url = format!("git://127.0.0.1:{}/fork.git", daemon.port);
    let a = fx.clone("a");
    let b = fx.clone("b");
    let start = head(&a);
    let ca = commit(
        &a,
        &[(&format!("{RUN_DIR}/profiles/a.md"), "a\n")],
        "writer a",
    );
    let cb = commit(
        &b,
        &[(&format!("{RUN_DIR}/profiles/b.md"), "b\n")],
        "writer b",
    );

    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = [(a, ca), (b, cb)]
        .into_iter()
        .map(|(dir, c)| {
            let barrier = Arc::clone(&barrier);
            let url = url.clone();
            std::thread::spawn(move || {
                let repo = Repository::open(&dir).unwrap();
                barrier.wait();
                push_with_cas(&repo, &request(c, Some(start), &url)).map(|o| o.commit)
            })
        })
        .collect();
    let results: Vec<Result<Oid, PushError>> =
        handles.into_iter().map(|h| h.join().unwrap()).collect();

    eprintln!("race outcomes: {results:?}");
    let final_head = fx.remote_head().unwrap();
    let bare = Repository::open_bare(&fx.remote).unwrap();
    let mut published = 0;
    for result in &results {
        match result {
            Ok(commit) => {
                published += 1;
                assert!(
                    *commit == final_head || bare.graph_descendant_of(final_head, *commit).unwrap(),
                    "a reported success must be in the remote history"
                );
            }
            Err(err) => {
                // A loser may only fail with a clear, race-related error.
                assert!(
                    matches!(
                        err,
                        PushError::RetriesExhausted { .. } | PushError::LostRace { .. }
                    ),
                    "unexpected error: {err:?}"
                );
            }
        }
    }
    assert!(published >= 1, "one push must win: {results:?}");
    if published == 2 {
        // Disjoint files: the loser rebased, so both files are on the branch.
        assert!(fx
            .remote_file(&format!("{RUN_DIR}/profiles/a.md"))
            .is_some());
        assert!(fx
            .remote_file(&format!("{RUN_DIR}/profiles/b.md"))
            .is_some());
    }
}
