//! Secrets by value, end to end: `sota-bot local run` on the simulator lane with an agent
//! that leaks. Its secrets have no recognisable prefix (values of `ANTHROPIC_API_KEY`,
//! `HF_TOKEN`, `GITHUB_TOKEN`, the reviewer's key and an agent secret named in
//! `SOTA_AGENT_SECRET_NAMES`), plus an RSA private key. Round 1 prints them all to its
//! output and puts one in its commit message; round 2 writes them into its summary. Nothing
//! of them reaches a commit, a committed file or the raw logs left in the checkout; round 2
//! fails `agent.no_credentials` naming what leaked (never the value).
//!
//! Least privilege on the same run: the agent sees its own keys only, and the engine side
//! (the profile command) sees the Hugging Face token only.

mod support_requests;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use support_requests::SimRequest;

/// An agent that leaks everything it can reach. Round 1 is otherwise a good round (a
/// patch, a clean summary); round 2 copies the secrets into its summary.
const LEAKY_AGENT: &str = r#"#!/bin/sh
round="$1"; summary="$2"; checkout="$3"
env | cut -d= -f1 | sort > "$LEAK_DIR/agent-env-$round.txt"
echo "my keys: ANTHROPIC_API_KEY=$ANTHROPIC_API_KEY $MY_AGENT_KEY"
cat "$LEAK_DIR/found-values.txt"
cat "$LEAK_DIR/key.pem" >&2
sota-bot sim agent --checkout "$checkout" --round "$round" --prompt "$SOTA_PROMPT_FILE" --summary-out "$summary"
if [ "$round" = 1 ]; then
  git add -A -- sim python && git commit -q -m "round 1 patch, tested with $MY_AGENT_KEY"
else
  { cat "$LEAK_DIR/found-values.txt"; cat "$LEAK_DIR/key.pem"; } >> "$summary"
fi
exit 0
"#;

/// Values without any known token prefix: only matching by value can find them.
const SECRETS: &[(&str, &str)] = &[
    ("ANTHROPIC_API_KEY", "anthropic0value7Qx2Lm9Tz4"),
    ("HF_TOKEN", "hubvalue3Rk8Wp1Nv6Yb0"),
    (
        "GITHUB_TOKEN",
        "v1.9f8e7d6c5b4a3928171605f4e3d2c1b0a9f8e7d6",
    ),
    ("SOTA_REVIEWER_API_KEY", "reviewer5Gh2Jk7Mn4Pq"),
    ("MY_AGENT_KEY", "agentsecret8Zc3Vb6Xn1"),
];

/// An RSA private key as printed by `openssl genrsa` (body lines only matter).
const PEM_BODY: &[&str] = &[
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK",
    "LxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW/VDL5AaWTg0nLVkjRo",
    "9z+tRoC9c5U8dC3nYbnFhzi/2Dd6bEe41V0ZsNQ8aLyR0Qh5SPgjZtYdWfxfX",
];

fn pem() -> String {
    format!(
        "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n",
        PEM_BODY.join("\n")
    )
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.file_name().is_some_and(|n| n == ".git") {
            continue;
        }
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn profile_cmd() -> String {
    // Records which variables the engine side inherits, then profiles as usual.
    "env | cut -d= -f1 | sort > \"$LEAK_DIR/profile-env.txt\" && t=$(mktemp -d) && sota-bot sim trace --profile {checkout}/sim/engine.yaml --stage decode --batch 4 --input-len {input_len} --output-len 8 --out \"$t/decode.trace.json.gz\" && sota-bot profile analyze \"$t/decode.trace.json.gz\" -o {out_dir}/{framework}-decode-tables.md && sota-bot profile layers \"$t/decode.trace.json.gz\" -o {out_dir}/{framework}-decode-layers.md; rc=$?; rm -rf \"$t\"; exit $rc".to_string()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn secrets_by_value_never_reach_the_branch_and_each_process_gets_only_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    let checkout = tmp.path().join("sglang");
    sota_bot::cli::local_demo::make_toy_checkout(&checkout).unwrap();
    // SGLang clearly behind, so round 1 does not end the campaign by winning.
    let profile = checkout.join("sim/engine.yaml");
    let text = std::fs::read_to_string(&profile).unwrap();
    std::fs::write(
        &profile,
        text.replace("overhead_us_per_step: 900", "overhead_us_per_step: 8000"),
    )
    .unwrap();
    git(&checkout, &["commit", "-qam", "slower sglang"]);

    let leak = tmp.path().join("leak");
    std::fs::create_dir_all(&leak).unwrap();
    let found: String = SECRETS
        .iter()
        .map(|(k, v)| format!("found {k} value {v}\n"))
        .collect();
    std::fs::write(leak.join("found-values.txt"), found).unwrap();
    std::fs::write(leak.join("key.pem"), pem()).unwrap();
    std::fs::write(leak.join("agent.sh"), LEAKY_AGENT).unwrap();

    let inputs = tmp.path().join("inputs");
    std::fs::create_dir_all(&inputs).unwrap();
    std::fs::write(inputs.join("request.yaml"), SimRequest::SMALL.request()).unwrap();
    std::fs::write(inputs.join("plan.yaml"), SimRequest::SMALL.plan()).unwrap();
    let config = format!(
        "plan: plan.yaml\nagent:\n  command: sh {} {{round}} {{summary}} {{checkout}}\n  timeout_secs: 120\nsim:\n  enabled: true\n  time_scale: 0.3\ngate:\n  max_rounds: 2\nlane:\n  ready_timeout_secs: 30\n  bench_timeout_secs: 120\n  profile:\n    sglang: {}\n    vllm: {}\n",
        leak.join("agent.sh").display(),
        serde_json::to_string(&profile_cmd()).unwrap(),
        serde_json::to_string(&profile_cmd()).unwrap(),
    );
    std::fs::write(inputs.join("config.yaml"), config).unwrap();

    let exe = PathBuf::from(env!("CARGO_BIN_EXE_sota-bot"));
    let path = format!(
        "{}:{}",
        exe.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new(&exe);
    cmd.args(["local", "run"])
        .arg(inputs.join("request.yaml"))
        .arg("--checkout")
        .arg(&checkout)
        .arg("--config")
        .arg(inputs.join("config.yaml"))
        .env("PATH", path)
        .env("LEAK_DIR", &leak)
        .env("SOTA_AGENT_SECRET_NAMES", "ANTHROPIC_API_KEY, MY_AGENT_KEY");
    for (k, v) in SECRETS {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let shown = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let run_dir = std::fs::read_dir(checkout.join("runs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .unwrap_or_else(|| panic!("no run dir:\n{shown}"));
    assert!(
        run_dir.join("rounds/round-2/gate.json").is_file(),
        "both rounds ran:\n{shown}"
    );

    // Nothing secret anywhere: history (contents and messages), committed files, raw logs.
    let needles: Vec<&str> = SECRETS
        .iter()
        .map(|(_, v)| *v)
        .chain(PEM_BODY.iter().copied())
        .collect();
    let history = git(&checkout, &["log", "-p", "--all", "--format=%H%n%B"]);
    let mut files = Vec::new();
    files_under(&checkout, &mut files);
    for needle in &needles {
        assert!(!history.contains(needle), "{needle} is in the history");
        assert!(!shown.contains(needle), "{needle} is in the CLI output");
        for f in &files {
            let text = String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned();
            assert!(!text.contains(needle), "{needle} is in {}", f.display());
        }
    }
    // Round 1 was scrubbed, not dropped: its log tail and commit say what was printed.
    let tail = std::fs::read_to_string(run_dir.join("rounds/round-1/agent-log-tail.txt")).unwrap();
    assert!(tail.contains("found HF_TOKEN value [REDACTED]"), "{tail}");
    assert!(
        tail.contains("[REDACTED]") && !tail.contains("BEGIN RSA"),
        "{tail}"
    );
    let subjects = git(&checkout, &["log", "--format=%B"]);
    assert!(
        subjects.contains("round 1 patch, tested with [REDACTED]"),
        "{subjects}"
    );

    // Round 2 leaked into its summary: refused, naming what (never the values).
    let gate: Value = serde_json::from_str(
        &std::fs::read_to_string(run_dir.join("rounds/round-2/gate.json")).unwrap(),
    )
    .unwrap();
    let check = gate["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "agent.no_credentials")
        .unwrap_or_else(|| panic!("no agent.no_credentials check: {gate}"));
    assert_eq!(check["passed"], false, "{check}");
    let reason = check["reason"].as_str().unwrap();
    for what in [
        "value of HF_TOKEN",
        "value of GITHUB_TOKEN",
        "value of MY_AGENT_KEY",
        "private key",
    ] {
        assert!(reason.contains(what), "{what} missing from: {reason}");
    }
    let summary = std::fs::read_to_string(run_dir.join("rounds/round-2/summary.md")).unwrap();
    assert!(
        summary.contains("found ANTHROPIC_API_KEY value [REDACTED]"),
        "{summary}"
    );

    // Least privilege: the agent has its own keys, the engine side the Hugging Face token.
    let agent_env = lines(&leak.join("agent-env-1.txt"));
    for name in ["ANTHROPIC_API_KEY", "MY_AGENT_KEY"] {
        assert!(agent_env.iter().any(|n| n == name), "agent lacks {name}");
    }
    for name in ["GITHUB_TOKEN", "HF_TOKEN", "SOTA_REVIEWER_API_KEY"] {
        assert!(!agent_env.iter().any(|n| n == name), "agent got {name}");
    }
    let engine_env = lines(&leak.join("profile-env.txt"));
    assert!(engine_env.iter().any(|n| n == "HF_TOKEN"), "{engine_env:?}");
    for name in [
        "GITHUB_TOKEN",
        "ANTHROPIC_API_KEY",
        "MY_AGENT_KEY",
        "SOTA_REVIEWER_API_KEY",
    ] {
        assert!(!engine_env.iter().any(|n| n == name), "engine got {name}");
    }
}
