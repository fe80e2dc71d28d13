//! `sota-bot init` on a real git checkout in a temp dir: first run, an idempotent
//! second run, a locally edited file (refused, then --force), updates of untouched
//! older copies, and dry runs.

use std::path::Path;
use std::process::Command as StdCommand;

use assert_cmd::Command;
use sota_bot::setup::fork_files::{with_marker, TEMPLATE_ACTION_REF};
use tempfile::TempDir;

const FILES: [&str; 4] = [
    ".github/workflows/sota-baseline.yml",
    ".github/workflows/sota-round.yml",
    ".github/ISSUE_TEMPLATE/sota-request.yml",
    ".github/sota-bot.yml",
];

fn checkout() -> TempDir {
    let tmp = TempDir::new().unwrap();
    let ok = StdCommand::new("git")
        .args(["init", "-q"])
        .current_dir(tmp.path())
        .status()
        .unwrap()
        .success();
    assert!(ok);
    tmp
}

fn init(repo: &Path, extra: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("sota-bot")
        .unwrap()
        .arg("init")
        .arg("--repo")
        .arg(repo)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn read(repo: &Path, rel: &str) -> String {
    std::fs::read_to_string(repo.join(rel)).unwrap()
}

fn template(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

#[test]
fn first_run_installs_everything_and_second_run_changes_nothing() {
    let repo = checkout();
    let (code, stdout, stderr) = init(repo.path(), &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    for f in FILES {
        assert!(stdout.contains(&format!("created   {f}\n")), "{stdout}");
    }
    assert!(stdout.ends_with("init: 4 created\n"), "{stdout}");
    assert_eq!(
        read(repo.path(), ".github/workflows/sota-round.yml"),
        with_marker(&template("templates/workflows/sota-round.yml"))
    );
    assert_eq!(
        read(repo.path(), ".github/ISSUE_TEMPLATE/sota-request.yml"),
        with_marker(&template(".github/ISSUE_TEMPLATE/sota-request.yml"))
    );
    assert_eq!(
        read(repo.path(), ".github/sota-bot.yml"),
        with_marker(&template("templates/init/sota-bot.yml"))
    );

    let (code, stdout, _) = init(repo.path(), &[]);
    assert_eq!(code, 0);
    for f in FILES {
        assert!(stdout.contains(&format!("unchanged {f}\n")), "{stdout}");
    }
    assert!(
        !stdout.contains("@@"),
        "no diff on an unchanged run: {stdout}"
    );
    assert!(stdout.ends_with("init: 4 unchanged\n"));
}

#[test]
fn a_locally_edited_file_is_refused_until_force() {
    let repo = checkout();
    assert_eq!(init(repo.path(), &[]).0, 0);
    let config = ".github/sota-bot.yml";
    let edited = read(repo.path(), config).replace("fork: owner/sglang", "fork: acme/sglang");
    std::fs::write(repo.path().join(config), &edited).unwrap();

    let (code, stdout, stderr) = init(repo.path(), &[]);
    assert_eq!(code, 3, "{stdout}{stderr}");
    assert!(stdout.contains(&format!(
        "refused   {config} (edited locally; rerun with --force to replace it)"
    )));
    assert!(
        stdout.contains(&format!("--- a/{config}\n+++ b/{config}\n")),
        "{stdout}"
    );
    assert!(
        stdout.contains("\n-fork: acme/sglang\n+fork: owner/sglang\n"),
        "{stdout}"
    );
    assert!(stderr.contains("1 locally edited file(s) kept"));
    assert_eq!(read(repo.path(), config), edited, "the edit survives");

    let (code, stdout, _) = init(repo.path(), &["--force"]);
    assert_eq!(code, 0);
    assert!(stdout.contains(&format!("replaced  {config}")));
    assert_eq!(
        read(repo.path(), config),
        with_marker(&template("templates/init/sota-bot.yml"))
    );
}

#[test]
fn an_untouched_older_copy_is_updated_with_a_diff() {
    let repo = checkout();
    assert_eq!(init(repo.path(), &[]).0, 0);
    let wf = ".github/workflows/sota-baseline.yml";
    let older = with_marker("name: sota baseline\n# an older sota-bot release\n");
    std::fs::write(repo.path().join(wf), &older).unwrap();
    let (code, stdout, _) = init(repo.path(), &[]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains(&format!("updated   {wf}\n")));
    assert!(
        stdout.contains("-# an older sota-bot release\n"),
        "{stdout}"
    );
    assert_eq!(
        read(repo.path(), wf),
        with_marker(&template("templates/workflows/sota-baseline.yml"))
    );
}

#[test]
fn dry_run_writes_nothing() {
    let repo = checkout();
    let (code, stdout, _) = init(repo.path(), &["--dry-run"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("created   .github/sota-bot.yml"));
    assert!(stdout.ends_with("(dry run: nothing written)\n"));
    assert!(!repo.path().join(".github").exists());

    assert_eq!(init(repo.path(), &[]).0, 0);
    std::fs::write(
        repo.path().join(".github/sota-bot.yml"),
        "fork: mine/sglang\n",
    )
    .unwrap();
    let (code, _, _) = init(repo.path(), &["--dry-run", "--force"]);
    assert_eq!(code, 0);
    assert_eq!(
        read(repo.path(), ".github/sota-bot.yml"),
        "fork: mine/sglang\n"
    );
}

#[test]
fn the_action_reference_can_be_pinned() {
    let repo = checkout();
    let pinned = "acme/sota-bot/action@0123456789abcdef0123456789abcdef01234567";
    let (code, _, stderr) = init(repo.path(), &["--action-ref", pinned]);
    assert_eq!(code, 0, "{stderr}");
    for wf in &FILES[..2] {
        let text = read(repo.path(), wf);
        assert!(text.contains(&format!("uses: {pinned}\n")), "{wf}");
        assert!(!text.contains(TEMPLATE_ACTION_REF));
    }
    for bad in ["not a ref", "../../x@y", "./../../outside"] {
        let (code, _, stderr) = init(repo.path(), &["--action-ref", bad]);
        assert_eq!(code, 2, "{bad}");
        assert!(stderr.contains("--action-ref"), "{stderr}");
    }
}

#[test]
fn a_github_folder_linking_outside_the_checkout_is_never_written_through() {
    let repo = checkout();
    let elsewhere = TempDir::new().unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), repo.path().join(".github")).unwrap();
    let (code, stdout, stderr) = init(repo.path(), &[]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.contains("outside the checkout") && stderr.contains(".github"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(elsewhere.path()).unwrap().count(),
        0,
        "nothing was written outside"
    );
    // A link to one of the managed files is refused too, and a link that stays inside the
    // checkout is followed.
    std::fs::remove_file(repo.path().join(".github")).unwrap();
    std::fs::create_dir_all(repo.path().join(".github")).unwrap();
    std::os::unix::fs::symlink(
        elsewhere.path().join("x.yml"),
        repo.path().join(".github/sota-bot.yml"),
    )
    .unwrap();
    let (code, _, stderr) = init(repo.path(), &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(!elsewhere.path().join("x.yml").exists());
    std::fs::remove_file(repo.path().join(".github/sota-bot.yml")).unwrap();
    std::fs::create_dir_all(repo.path().join("ci")).unwrap();
    std::os::unix::fs::symlink("../ci", repo.path().join(".github/workflows")).unwrap();
    let (code, stdout, stderr) = init(repo.path(), &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(repo.path().join("ci/sota-round.yml").is_file());
}

#[test]
fn init_says_what_the_fork_owner_must_set() {
    let repo = checkout();
    let (code, stdout, _) = init(repo.path(), &["--dry-run"]);
    assert_eq!(code, 0);
    for must in [
        "require approval for all outside collaborators",
        "runner group",
        ".github/workflows/sota-baseline.yml and .github/workflows/sota-round.yml",
        "job-started hook",
    ] {
        assert!(stdout.contains(must), "{must}: {stdout}");
    }
}

#[test]
fn a_directory_that_is_not_a_checkout_is_invalid_input() {
    let tmp = TempDir::new().unwrap();
    let plain = tmp.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    let (code, _, stderr) = init(&plain, &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("is not a git checkout"), "{stderr}");
}
