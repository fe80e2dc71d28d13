//! Phase 0.5 on real git repositories built here with the git CLI: an SGLang-shaped checkout
//! with a model registry, layers and kernels, commits with PR numbers in their subjects, a
//! rename, a side branch merged with a merge commit, a revert and unrelated work. The
//! `sota-bot history` binary reads it; every citation it prints is checked again with git
//! itself.

use assert_cmd::Command as Bin;
use serde_json::Value;
use sota_bot::history::verify::verify_commits;
use sota_bot::history::{Area, CitedCommit};
use std::path::{Path, PathBuf};
use std::process::Command;

const MODELS: &str = "python/sglang/srt/models";
const LAYERS: &str = "python/sglang/srt/layers";

/// Runs git with a fixed identity and clock, so commit ids are the same on every machine.
fn git(dir: &Path, args: &[&str], when: u32) -> String {
    let date = format!("2025-01-{:02}T12:00:00Z", when.clamp(1, 28));
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.com")
        .env("GIT_COMMITTER_NAME", "Dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.com")
        .env("GIT_AUTHOR_DATE", &date)
        .env("GIT_COMMITTER_DATE", &date)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn commit(dir: &Path, subject: &str, when: u32) {
    git(dir, &["add", "-A"], when);
    git(dir, &["commit", "-q", "-m", subject], when);
}

const TOY: &str = "from sglang.srt.layers.norm import RMSNorm\nfrom sglang.srt.layers.rotary import get_rope\nfrom sglang.srt.models.base import BaseModel\nfrom sglang.srt.utils import helper\n\n\nclass ToyForCausalLM(BaseModel):\n    pass\n\n\nEntryClass = [ToyForCausalLM]\n";

/// The history (oldest first):
/// 1. `Add toy model (#10)`: the model, its base, layers, a kernel, an unrelated scheduler
///    and another model.
/// 2. `Speed up RMSNorm kernel (#11)`: the kernel.
/// 3. `Scheduler tweak (#12)`: unrelated.
/// 4. `Rename rotary layer (#13)`: `layers/rotary.py` -> `layers/rotary_embedding.py`.
/// 5. on branch `dev`: `toy: fix rope scaling` (no PR number).
/// 6. on main: `[Toy] docs only (#15)`: names the family, touches nothing followed.
/// 7. `Merge pull request #16 from dev/rope`: merges 5.
/// 8. `Revert "Speed up RMSNorm kernel (#11)" (#17)`.
/// 9. `Fix other model (#18)`: another model's file.
fn toy_checkout(dir: &Path) {
    git(dir, &["init", "-q", "-b", "main"], 1);
    write(dir, &format!("{MODELS}/toy.py"), TOY);
    write(
        dir,
        &format!("{MODELS}/base.py"),
        "from sglang.srt.layers.linear import Linear\n\n\nclass BaseModel:\n    pass\n",
    );
    write(
        dir,
        &format!("{MODELS}/other.py"),
        "class OtherForCausalLM:\n    pass\n\n\nEntryClass = OtherForCausalLM\n",
    );
    write(
        dir,
        &format!("{LAYERS}/norm.py"),
        "from sglang.srt.layers.fused_norm_kernel import rms_kernel\n\n\nclass RMSNorm:\n    pass\n",
    );
    write(
        dir,
        &format!("{LAYERS}/fused_norm_kernel.py"),
        "def rms_kernel(x):\n    return x\n",
    );
    write(
        dir,
        &format!("{LAYERS}/rotary.py"),
        "def get_rope(theta):\n    # rotary position embedding for every head of every layer\n    return theta\n",
    );
    write(
        dir,
        &format!("{LAYERS}/linear.py"),
        "class Linear:\n    pass\n",
    );
    write(
        dir,
        "python/sglang/srt/utils.py",
        "def helper():\n    pass\n",
    );
    write(
        dir,
        "python/sglang/srt/managers/scheduler.py",
        "def next_batch(q):\n    return q\n",
    );
    commit(dir, "Add toy model (#10)", 1);
    write(
        dir,
        &format!("{LAYERS}/fused_norm_kernel.py"),
        "def rms_kernel(x):\n    return x  # vectorized\n",
    );
    commit(dir, "Speed up RMSNorm kernel (#11)", 2);
    write(
        dir,
        "python/sglang/srt/managers/scheduler.py",
        "def next_batch(q):\n    return q[:8]\n",
    );
    commit(dir, "Scheduler tweak (#12)", 3);
    git(
        dir,
        &[
            "mv",
            &format!("{LAYERS}/rotary.py"),
            &format!("{LAYERS}/rotary_embedding.py"),
        ],
        4,
    );
    write(
        dir,
        &format!("{MODELS}/toy.py"),
        &TOY.replace("layers.rotary import", "layers.rotary_embedding import"),
    );
    commit(dir, "Rename rotary layer (#13)", 4);
    git(dir, &["checkout", "-q", "-b", "dev"], 5);
    write(
        dir,
        &format!("{LAYERS}/rotary_embedding.py"),
        "def get_rope(theta):\n    # rotary position embedding for every head of every layer\n    return theta * 2\n",
    );
    commit(dir, "toy: fix rope scaling", 5);
    git(dir, &["checkout", "-q", "main"], 6);
    write(dir, "docs/toy.md", "# Toy\n");
    commit(dir, "[Toy] docs only (#15)", 6);
    git(
        dir,
        &[
            "merge",
            "-q",
            "--no-ff",
            "-m",
            "Merge pull request #16 from dev/rope",
            "dev",
        ],
        7,
    );
    write(
        dir,
        &format!("{LAYERS}/fused_norm_kernel.py"),
        "def rms_kernel(x):\n    return x\n",
    );
    commit(dir, "Revert \"Speed up RMSNorm kernel (#11)\" (#17)", 8);
    write(
        dir,
        &format!("{MODELS}/other.py"),
        "class OtherForCausalLM:\n    x = 1\n\n\nEntryClass = OtherForCausalLM\n",
    );
    commit(dir, "Fix other model (#18)", 9);
}

struct Fixture {
    _tmp: tempfile::TempDir,
    repo: PathBuf,
    config: PathBuf,
    home: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("sglang");
    std::fs::create_dir_all(&repo).unwrap();
    toy_checkout(&repo);
    let config = tmp.path().join("config.json");
    std::fs::write(
        &config,
        r#"{"architectures": ["ToyForCausalLM"], "hidden_size": 8}"#,
    )
    .unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    Fixture {
        _tmp: tmp,
        repo,
        config,
        home,
    }
}

/// `sota-bot history` with a home folder of its own (no Hugging Face cache leaks in).
fn history(f: &Fixture, extra: &[&str]) -> (i32, String, String) {
    let out = Bin::cargo_bin("sota-bot")
        .unwrap()
        .arg("history")
        .arg("--checkout")
        .arg(&f.repo)
        .args(extra)
        .env("HOME", &f.home)
        .env_remove("HF_HOME")
        .env_remove("HF_HUB_CACHE")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn json(f: &Fixture, extra: &[&str]) -> Value {
    let (code, out, err) = history(f, &[&["--format", "json"], extra].concat());
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// `--format json` for the toy model with its config.json, plus `extra`.
fn toy_json(f: &Fixture, extra: &[&str]) -> Value {
    let cfg = f.config.to_str().unwrap();
    json(
        f,
        &[&["--model", "acme/Toy-2-7B", "--config", cfg], extra].concat(),
    )
}

fn subjects(v: &Value) -> Vec<String> {
    v["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["subject"].as_str().unwrap().to_string())
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn commit_by<'a>(v: &'a Value, subject: &str) -> &'a Value {
    v["commits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["subject"] == subject)
        .unwrap_or_else(|| panic!("no commit `{subject}` in {:?}", subjects(v)))
}

#[test]
fn model_files_layers_kernels_renames_and_merges() {
    let f = fixture();
    let v = toy_json(&f, &[]);
    assert_eq!(v["family"], "toy");
    assert_eq!(strings(&v["architectures"]), vec!["ToyForCausalLM"]);
    assert_eq!(
        strings(&v["model_files"]),
        vec![format!("{MODELS}/toy.py"), format!("{MODELS}/base.py")]
    );
    assert_eq!(
        strings(&v["layer_files"]),
        vec![
            format!("{LAYERS}/linear.py"),
            format!("{LAYERS}/norm.py"),
            format!("{LAYERS}/rotary_embedding.py")
        ]
    );
    assert_eq!(
        strings(&v["kernel_files"]),
        vec![format!("{LAYERS}/fused_norm_kernel.py")]
    );
    assert_eq!(v["commits_read"], 9);
    // Newest first; the scheduler tweak and the other model's fix are not the model's history.
    assert_eq!(
        subjects(&v),
        vec![
            "Revert \"Speed up RMSNorm kernel (#11)\" (#17)",
            "Merge pull request #16 from dev/rope",
            "[Toy] docs only (#15)",
            "toy: fix rope scaling",
            "Rename rotary layer (#13)",
            "Speed up RMSNorm kernel (#11)",
            "Add toy model (#10)",
        ]
    );
    let revert = commit_by(&v, "Revert \"Speed up RMSNorm kernel (#11)\" (#17)");
    assert_eq!(revert["pr"], 17);
    assert_eq!(revert["revert"], true);
    assert_eq!(revert["area"], "kernels");
    let merge = commit_by(&v, "Merge pull request #16 from dev/rope");
    assert_eq!(merge["pr"], 16);
    assert_eq!(merge["merge"], true);
    assert_eq!(
        strings(&merge["paths"]),
        vec![format!("{LAYERS}/rotary_embedding.py")]
    );
    let side = commit_by(&v, "toy: fix rope scaling");
    assert_eq!(side["pr"], Value::Null);
    assert_eq!(side["names_family"], true);
    let docs = commit_by(&v, "[Toy] docs only (#15)");
    assert_eq!(docs["area"], "mentions");
    assert!(strings(&docs["paths"]).is_empty());
    let rename = commit_by(&v, "Rename rotary layer (#13)");
    assert_eq!(
        strings(&rename["renamed_from"]),
        vec![format!(
            "{LAYERS}/rotary.py -> {LAYERS}/rotary_embedding.py"
        )]
    );
    assert_eq!(rename["area"], "model");
    // Before the rename the layer is followed under its old name.
    let first = commit_by(&v, "Add toy model (#10)");
    assert!(
        strings(&first["paths"]).contains(&format!("{LAYERS}/rotary.py")),
        "{first}"
    );
    assert!(!strings(&first["paths"]).contains(&format!("{LAYERS}/rotary_embedding.py")));
    let perf = commit_by(&v, "Speed up RMSNorm kernel (#11)");
    assert_eq!(perf["perf"], true);
    assert_eq!(perf["area"], "kernels");
    assert!(
        v["blockers"].as_array().unwrap().is_empty(),
        "{}",
        v["blockers"]
    );

    // Every citation checks out with git itself.
    for c in v["commits"].as_array().unwrap() {
        let sha = c["sha"].as_str().unwrap();
        let subject = git(&f.repo, &["log", "-1", "--format=%s", sha], 10);
        assert_eq!(c["subject"], subject.as_str());
        if let Some(pr) = c["pr"].as_u64() {
            assert!(subject.contains(&format!("#{pr}")), "{subject} lacks #{pr}");
        }
        for p in strings(&c["paths"]) {
            git(&f.repo, &["cat-file", "-e", &format!("{sha}:{p}")], 10);
        }
    }
}

#[test]
fn markdown_notes_group_by_area_with_perf_on_top() {
    let f = fixture();
    let cfg = f.config.to_str().unwrap();
    let (code, md, err) = history(&f, &["--model", "acme/Toy-2-7B", "--config", cfg]);
    assert_eq!(code, 0, "{err}");
    let md = md.replace(cfg, "[config.json]");
    insta::assert_snapshot!("history_notes_toy", md);
    let perf = md.find("## Latest performance-related changes").unwrap();
    let areas = md.find("## By area").unwrap();
    assert!(perf < areas);
    let quote = sota_bot::history::render::prompt_quote(&md);
    assert!(quote.contains("Speed up RMSNorm kernel"));
    assert!(quote.starts_with("- Model: `acme/Toy-2-7B`"), "{quote}");
    assert!(quote.contains("\n### Latest performance-related changes\n"));
    assert!(!quote.contains("By area"));
}

#[test]
fn architecture_is_inferred_from_the_model_id_without_a_config() {
    let f = fixture();
    let v = json(&f, &["--model", "acme/Toy-2-7B"]);
    assert_eq!(strings(&v["architectures"]), vec!["ToyForCausalLM"]);
    assert!(
        v["architecture_source"]
            .as_str()
            .unwrap()
            .contains("inferred from the model id"),
        "{}",
        v["architecture_source"]
    );
    // A model folder with its config.json is read like the Hugging Face cache would be.
    let cache = f
        .home
        .join(".cache/huggingface/hub/models--acme--Other-1B/snapshots/abc");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::write(
        cache.join("config.json"),
        r#"{"architectures": ["OtherForCausalLM"]}"#,
    )
    .unwrap();
    let v = json(&f, &["--model", "acme/Other-1B"]);
    assert_eq!(
        strings(&v["model_files"]),
        vec![format!("{MODELS}/other.py")]
    );
    assert_eq!(
        subjects(&v),
        vec!["Fix other model (#18)", "Add toy model (#10)"]
    );
    // An architecture this checkout does not register is a blocker, not a stop.
    std::fs::write(
        cache.join("config.json"),
        r#"{"architectures": ["NewForCausalLM"]}"#,
    )
    .unwrap();
    let v = json(&f, &["--model", "acme/Other-1B"]);
    assert!(v["blockers"][0]
        .as_str()
        .unwrap()
        .contains("`NewForCausalLM` is not registered"));
}

#[test]
fn curated_knowledge_keeps_only_verified_citations() {
    let f = fixture();
    let root = f.home.join("knowledge");
    write(
        &root,
        "sglang/toy/README.en.md",
        "# Toy on SGLang\n\n- #11 sped up `rms_kernel` in python/sglang/srt/layers/fused_norm_kernel.py.\n\
         - #999 fused rotary into `apply_rotary_fused` (python/sglang/srt/layers/attention.py).\n\
         - `RMSNorm` lives in python/sglang/srt/layers/norm.py.\n\
         - Risk: the kernel changes numerics; validate accuracy.\n",
    );
    write(
        &root,
        "vllm/toy/README.en.md",
        "- vLLM #4242 in vllm/model_executor/toy.py\n",
    );
    let v = toy_json(&f, &["--knowledge-root", root.to_str().unwrap()]);
    let k = &v["knowledge"][0];
    assert_eq!(k["path"], "sglang/toy/README.en.md");
    let prs: Vec<u64> = k["prs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["number"].as_u64().unwrap())
        .collect();
    assert_eq!(prs, vec![11]);
    assert_eq!(k["prs"][0]["title"], "Speed up RMSNorm kernel (#11)");
    assert_eq!(
        strings(&k["sources"]),
        vec![
            format!("{LAYERS}/fused_norm_kernel.py"),
            format!("{LAYERS}/norm.py")
        ]
    );
    assert_eq!(strings(&k["symbols"]), vec!["rms_kernel", "RMSNorm"]);
    assert_eq!(k["risks"].as_array().unwrap().len(), 1);
    let blockers = strings(&v["blockers"]).join("\n");
    assert!(blockers.contains("cites #999"), "{blockers}");
    assert!(blockers.contains("layers/attention.py"), "{blockers}");
    assert!(blockers.contains("`apply_rotary_fused`"), "{blockers}");
    // The frameworks read by `sota-bot history` are SGLang's only.
    assert_eq!(v["knowledge"].as_array().unwrap().len(), 1);
}

#[test]
fn upstream_prs_are_in_flight_unless_the_checkout_has_them() {
    let f = fixture();
    let saved = f.home.join("upstream-prs.json");
    std::fs::write(
        &saved,
        serde_json::json!({
            "repo": "acme/sglang",
            "queries": [],
            "prs": [
                {"number": 16, "title": "Toy rope scaling", "url": "https://github.com/acme/sglang/pull/16", "state": "merged", "merged_at": "2025-01-07T12:00:00Z"},
                {"number": 20, "title": "[Toy] fuse qkv", "url": "https://github.com/acme/sglang/pull/20", "state": "open"},
                {"number": 21, "title": "Mixtral: faster router", "url": "https://github.com/acme/sglang/pull/21", "state": "open"}
            ],
            "blockers": []
        })
        .to_string(),
    )
    .unwrap();
    let cfg = f.config.to_str().unwrap();
    let v = toy_json(&f, &["--upstream-prs", saved.to_str().unwrap()]);
    assert_eq!(v["upstream"], "acme/sglang");
    let prs = v["open_prs"].as_array().unwrap();
    assert_eq!(prs.len(), 2, "{prs:?}");
    assert_eq!(prs[0]["number"], 16);
    assert_eq!(prs[0]["in_flight"], false);
    let merge_sha = commit_by(&v, "Merge pull request #16 from dev/rope")["sha"].clone();
    assert_eq!(prs[0]["in_checkout"], merge_sha);
    assert_eq!(prs[1]["number"], 20);
    assert_eq!(prs[1]["in_flight"], true);
    let (_, md, _) = history(
        &f,
        &[
            "--model",
            "acme/Toy-2-7B",
            "--config",
            cfg,
            "--upstream-prs",
            saved.to_str().unwrap(),
        ],
    );
    assert!(
        md.contains("- #20 (open, not in this checkout): [Toy] fuse qkv"),
        "{md}"
    );
    assert!(!md.contains("#21"));
}

#[test]
fn forged_citations_are_dropped_by_verification() {
    let f = fixture();
    let repo = git2::Repository::open(&f.repo).unwrap();
    let head = git(&f.repo, &["rev-parse", "HEAD~1"], 10);
    let good = CitedCommit {
        sha: head.clone(),
        date: "2025-01-08".into(),
        subject: "Revert \"Speed up RMSNorm kernel (#11)\" (#17)".into(),
        pr: Some(17),
        paths: vec![format!("{LAYERS}/fused_norm_kernel.py")],
        removed_paths: vec![],
        renamed_from: vec![],
        area: Area::Kernels,
        perf: true,
        revert: true,
        merge: false,
        names_family: false,
    };
    let mut wrong_pr = good.clone();
    wrong_pr.pr = Some(123);
    let mut wrong_path = good.clone();
    wrong_path.paths = vec![format!("{LAYERS}/attention.py")];
    let mut missing = good.clone();
    missing.sha = "0123456789012345678901234567890123456789".into();
    let (kept, dropped) = verify_commits(&repo, vec![good.clone(), wrong_pr, wrong_path, missing]);
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert_eq!(kept[0], good);
    assert_eq!(kept[1].pr, None, "a PR not in the subject is not cited");
    assert_eq!(dropped.len(), 4, "{dropped:?}");
    assert!(dropped[0].contains("#123"));
    assert!(dropped[1].contains("attention.py"));
    assert!(dropped[2].contains("keeps no verified path"));
    assert!(dropped[3].contains("not in this checkout"));
}

#[test]
fn bad_input_is_reported() {
    let f = fixture();
    let plain = f.home.join("not-a-repo");
    std::fs::create_dir_all(&plain).unwrap();
    let out = Bin::cargo_bin("sota-bot")
        .unwrap()
        .args(["history", "--model", "m", "--checkout"])
        .arg(&plain)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a git checkout"));
    let (code, _, err) = history(&f, &["--model", "m", "--upstream", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("--upstream"), "{err}");
    let (code, _, err) = history(
        &f,
        &[
            "--model",
            "m",
            "--github-token-env",
            "SOTA_TEST_UNSET_TOKEN",
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("SOTA_TEST_UNSET_TOKEN"), "{err}");
}

#[test]
fn the_gate_rejects_notes_whose_citations_no_longer_check_out() {
    use sota_bot::gate::{contract_checks, GateConfig, RoundEvidence};
    let f = fixture();
    let cfg = f.config.to_str().unwrap();
    let (code, json_text, err) = history(
        &f,
        &[
            "--model",
            "acme/Toy-2-7B",
            "--config",
            cfg,
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let check = |json: Option<&str>| {
        let ev = RoundEvidence {
            history: Some(sota_bot::history::verify::notes_evidence(&f.repo, json)),
            ..Default::default()
        };
        contract_checks(&ev, &GateConfig::default())
            .into_iter()
            .find(|c| c.id == "evidence.history_notes")
            .expect("the history check runs")
    };
    let ok = check(Some(&json_text));
    assert!(ok.passed, "{}", ok.reason);
    assert!(ok.reason.contains("citation(s) verified"), "{}", ok.reason);
    // A round that adds a PR its commit does not carry, or a path that is not there, fails.
    let mut v: Value = serde_json::from_str(&json_text).unwrap();
    v["commits"][0]["pr"] = serde_json::json!(4242);
    v["commits"][1]["paths"] = serde_json::json!(["python/sglang/srt/layers/attention.py"]);
    let bad = check(Some(&v.to_string()));
    assert!(!bad.passed);
    assert!(bad.reason.contains("#4242"), "{}", bad.reason);
    assert!(bad.reason.contains("attention.py"), "{}", bad.reason);
    let missing = check(None);
    assert!(!missing.passed);
    assert!(missing.reason.contains("missing"));
    let garbled = check(Some("{not json"));
    assert!(!garbled.passed);
}
