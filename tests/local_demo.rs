//! `sota-bot local demo` end to end: toy checkout, simulator baseline of every framework,
//! agent-simulator rounds, gate decisions and final report committed on the campaign branch.

use std::process::Command;

fn git_out(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn demo_runs_a_whole_campaign() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sota-bot"))
        .args(["local", "demo", "--dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let checkout = tmp.path().join("sglang");
    let branches = git_out(&checkout, &["branch", "--list", "sota/*"]);
    let branch = branches.trim().trim_start_matches("* ").to_string();
    assert!(branch.starts_with("sota/"), "{branches}");
    assert!(stdout.contains(&branch), "{stdout}");
    let log = git_out(&checkout, &["log", "--format=%s", &branch]);
    let rounds: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("sota round "))
        .collect();
    assert!(!rounds.is_empty(), "{log}");
    for (i, l) in rounds.iter().rev().enumerate() {
        assert!(l.starts_with(&format!("sota round {}: ", i + 1)), "{log}");
    }
    let runs = checkout.join("runs");
    let run_dir = std::fs::read_dir(&runs)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .unwrap();
    assert!(run_dir.join("final_report.md").is_file());
    // Phase 0.5 read the toy checkout's own history and the demo's knowledge root, and
    // every SGLang citation checked out.
    let notes = std::fs::read_to_string(run_dir.join("history/model-pr-history-notes.md")).unwrap();
    assert!(
        notes.contains("- Model files: `python/sglang/srt/models/llama.py`"),
        "{notes}"
    );
    assert!(
        notes.contains("#117 [Llama] fold the RMSNorm scale into one pass (#117)"),
        "{notes}"
    );
    assert!(notes.contains("- PRs: #117 (`"), "{notes}");
    assert!(!notes.contains("not cited\n- `sglang/"), "{notes}");
    assert!(!notes.contains("does not exist"), "{notes}");
    let cands = walk_find(&run_dir, "candidates.jsonl").expect("candidates.jsonl");
    let text = std::fs::read_to_string(cands).unwrap();
    for fw in ["\"sglang\"", "\"vllm\""] {
        assert!(
            text.lines()
                .any(|l| l.contains(&format!("\"framework\":{fw}"))),
            "no {fw} rows"
        );
    }
}

fn walk_find(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(f) = walk_find(&p, name) {
                return Some(f);
            }
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    None
}
