//! Structural rules of the campaign workflows, the composite action, the issue form
//! and the default configuration that the linters cannot know about.

use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load(rel: &str) -> (String, Value) {
    let text = std::fs::read_to_string(root().join(rel)).unwrap();
    let value: Value = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"));
    (text, value)
}

fn key<'a>(v: &'a Value, k: &str) -> &'a Value {
    v.get(k).unwrap_or_else(|| panic!("missing key {k}"))
}

fn is_full_sha_pin(uses: &str) -> bool {
    uses.split_once('@')
        .is_some_and(|(_, r)| r.len() == 40 && r.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Every `uses:` value anywhere in a YAML document.
fn all_uses(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Mapping(m) => {
            for (k, val) in m {
                if k.as_str() == Some("uses") {
                    if let Some(s) = val.as_str() {
                        out.push(s.to_string());
                    }
                }
                all_uses(val, out);
            }
        }
        Value::Sequence(s) => s.iter().for_each(|x| all_uses(x, out)),
        _ => {}
    }
}

#[test]
fn campaign_workflows_are_dispatch_only_and_scoped() {
    for (file, job, run_name) in [
        (
            "templates/workflows/sota-baseline.yml",
            "baseline",
            "sota ${{ inputs.campaign_id }} baseline",
        ),
        (
            "templates/workflows/sota-round.yml",
            "round",
            "sota ${{ inputs.campaign_id }} round ${{ inputs.round }}",
        ),
    ] {
        let (text, wf) = load(file);
        assert!(
            !text.contains("pull_request"),
            "{file} must never run on pull requests"
        );
        let on = key(&wf, "on").as_mapping().unwrap();
        assert_eq!(on.len(), 1, "{file}: only workflow_dispatch");
        let inputs = key(key(&wf, "on"), "workflow_dispatch")
            .get("inputs")
            .unwrap();
        let inputs = inputs.as_mapping().unwrap();
        assert!(
            inputs.len() <= 25,
            "{file}: GitHub allows at most 25 dispatch inputs"
        );
        for required in ["campaign_id", "run_dir", "branch", "runner_labels"] {
            assert!(inputs.contains_key(required), "{file}: input {required}");
        }
        assert_eq!(key(&wf, "run-name").as_str(), Some(run_name));

        let perms = key(&wf, "permissions").as_mapping().unwrap();
        assert_eq!(perms.get("contents").and_then(Value::as_str), Some("write"));
        assert_eq!(perms.get("actions").and_then(Value::as_str), Some("read"));
        assert_eq!(perms.len(), 2, "{file}: minimal permissions");

        let conc = key(&wf, "concurrency");
        assert_eq!(
            key(conc, "group").as_str(),
            Some("sota-${{ inputs.campaign_id }}")
        );
        assert_eq!(key(conc, "cancel-in-progress").as_bool(), Some(false));

        let j = key(key(&wf, "jobs"), job);
        assert_eq!(
            key(j, "runs-on").as_str(),
            Some("${{ fromJSON(inputs.runner_labels) }}")
        );
        assert!(
            j.get("timeout-minutes").is_some(),
            "{file}: timeout-minutes"
        );

        let mut uses = Vec::new();
        all_uses(&wf, &mut uses);
        assert!(
            uses.iter()
                .any(|u| u == sota_bot::setup::fork_files::TEMPLATE_ACTION_REF),
            "{file} uses the action"
        );
        for u in uses.iter().filter(|u| !u.contains("sota-bot/action")) {
            assert!(
                is_full_sha_pin(u),
                "{file}: {u} must be pinned by a full commit SHA"
            );
        }
    }
}

#[test]
fn default_runner_labels_follow_the_gpu_convention() {
    for file in [
        "templates/workflows/sota-baseline.yml",
        "templates/workflows/sota-round.yml",
    ] {
        let (_, wf) = load(file);
        let inputs = key(key(&wf, "on"), "workflow_dispatch")
            .get("inputs")
            .unwrap();
        let labels = key(key(inputs, "runner_labels"), "default")
            .as_str()
            .unwrap();
        let parsed: Vec<String> = serde_json::from_str(labels).unwrap();
        assert_eq!(
            parsed,
            sota_bot::runner::preflight::runner_labels("h100", 1),
            "{file}: the default must be what the App computes for 1 x h100"
        );
    }
}

#[test]
fn the_action_is_composite_pinned_and_runs_only_its_scripts() {
    let (text, action) = load("action/action.yml");
    let runs = key(&action, "runs");
    assert_eq!(key(runs, "using").as_str(), Some("composite"));
    let outputs = key(&action, "outputs").as_mapping().unwrap();
    for out in ["commit-sha", "decision-file", "artifact-name"] {
        assert!(outputs.contains_key(out), "output {out}");
    }
    let inputs = key(&action, "inputs").as_mapping().unwrap();
    for input in [
        "campaign-id",
        "phase",
        "round",
        "run-dir",
        "branch",
        "agent-preset",
        "agent-command",
        "agent-model",
        "agent-max-turns",
        "agent-max-cost-usd",
        "agent-secret-names",
        "phase-timeout-minutes",
    ] {
        assert!(inputs.contains_key(input), "input {input}");
    }
    let mut uses = Vec::new();
    all_uses(&action, &mut uses);
    assert!(uses.iter().any(|u| u.starts_with("actions/cache@")));
    assert!(uses
        .iter()
        .any(|u| u.starts_with("actions/upload-artifact@")));
    for u in &uses {
        assert!(
            is_full_sha_pin(u),
            "{u} must be pinned by a full commit SHA"
        );
    }
    // Every shell step is one script call; no expression is spliced into shell code.
    let steps = key(runs, "steps").as_sequence().unwrap();
    let mut scripts = 0;
    for step in steps {
        if let Some(run) = step.get("run").and_then(Value::as_str) {
            assert!(!run.contains("${{"), "expression in run: {run}");
            let script = run
                .strip_prefix("bash \"$GITHUB_ACTION_PATH/scripts/")
                .and_then(|s| s.strip_suffix('"'))
                .unwrap_or_else(|| panic!("run step is not a script call: {run}"));
            assert!(
                root().join("action/scripts").join(script).is_file(),
                "{script}"
            );
            assert_eq!(step.get("shell").and_then(Value::as_str), Some("bash"));
            scripts += 1;
        }
    }
    assert_eq!(scripts, 5);
    assert!(text.contains("GITHUB_TOKEN: ${{ inputs.github-token }}"));
}

#[test]
fn the_issue_form_keeps_the_headings_the_core_parses() {
    let (_, form) = load(".github/ISSUE_TEMPLATE/sota-request.yml");
    let body = key(&form, "body").as_sequence().unwrap();
    let fields: Vec<&Value> = body
        .iter()
        .filter(|b| b.get("type").and_then(Value::as_str) != Some("markdown"))
        .collect();
    let labels: Vec<&str> = fields
        .iter()
        .map(|f| key(key(f, "attributes"), "label").as_str().unwrap())
        .collect();
    // The form's labels become the `### ` headings the request parser reads: one list.
    assert_eq!(labels, sota_bot::campaign::issue_form::ISSUE_FORM_HEADINGS);
    assert_eq!(labels.len(), 18);
    let required: Vec<&str> = fields
        .iter()
        .filter(|f| {
            f.get("validations")
                .and_then(|v| v.get("required"))
                .and_then(Value::as_bool)
                == Some(true)
        })
        .map(|f| key(key(f, "attributes"), "label").as_str().unwrap())
        .collect();
    assert_eq!(required, ["Model"]);
    let options = |label: &str| -> Vec<String> {
        let f = fields
            .iter()
            .find(|f| key(key(f, "attributes"), "label").as_str() == Some(label))
            .unwrap();
        assert_eq!(key(f, "type").as_str(), Some("dropdown"), "{label}");
        key(key(f, "attributes"), "options")
            .as_sequence()
            .unwrap()
            .iter()
            .map(|o| o.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(options("Precision"), ["auto", "bf16", "fp16", "fp8", "fp4"]);
    assert_eq!(options("Autonomy"), ["auto-continue", "wait-for-human"]);
    assert_eq!(options("Trust remote code"), ["no", "yes"]);
    assert_eq!(
        options("Comparison frameworks"),
        ["vllm", "tensorrt_llm", "tokenspeed"]
    );
}

#[test]
fn the_default_config_has_exactly_the_documented_schema() {
    let (_, cfg) = load("templates/init/sota-bot.yml");
    let keys: Vec<&str> = cfg
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "fork",
            "base_branch",
            "upstream",
            "runner_labels",
            "defaults",
            "workload",
            "sla",
            "budget",
            "autonomy",
            "reviewer",
            "agent"
        ]
    );
    let expected: Value = serde_yaml_ng::from_str(
        r#"
fork: owner/sglang
base_branch: main
upstream: sgl-project/sglang
runner_labels: {}
defaults: {gpu_model: h100, gpu_count: 1, precision: bf16, competitors: [vllm, tensorrt_llm, tokenspeed]}
workload: {dataset: random, num_prompts: 80, scenarios: [{name: chat, input_len: 1000, output_len: 1000}, {name: summarization, input_len: 8000, output_len: 1000}]}
sla: {max_p50_ttft_ms: 2000, max_p50_tpot_ms: 50, min_success_rate: 0.99}
budget: {max_rounds: 42, max_gpu_hours: 48, job_timeout_minutes: 360}
autonomy: auto-continue
reviewer: {base_url: "https://api.openai.com/v1", model: "", api_key_env: SOTA_REVIEWER_API_KEY}
agent: {preset: claude, model: "", max_turns: 100, secret_names: [ANTHROPIC_API_KEY], timeout_minutes: 120}
"#,
    )
    .unwrap();
    assert_eq!(cfg, expected);
}

#[test]
fn ci_mirrors_the_local_checks() {
    let (text, _) = load(".github/workflows/ci.yml");
    for needle in [
        "cargo fmt --all -- --check",
        "cargo clippy --all-targets --locked -- -D warnings",
        "cargo test --locked",
        "node tools/lint-workflows.mjs",
        "tools/shellcheck-all.sh",
        "SOTA_REQUIRE_TOOLS",
    ] {
        assert!(text.contains(needle), "ci.yml lacks {needle}");
    }
    assert!(Path::new(&root().join("tools/lint-workflows.mjs")).is_file());
}

#[test]
fn agent_secrets_reach_the_round_only_through_step_env() {
    let (text, wf) = load("templates/workflows/sota-round.yml");
    let steps = key(key(key(&wf, "jobs"), "round"), "steps")
        .as_sequence()
        .unwrap();
    let step = steps
        .iter()
        .find(|s| {
            s.get("uses").and_then(Value::as_str)
                == Some(sota_bot::setup::fork_files::TEMPLATE_ACTION_REF)
        })
        .unwrap();
    let env = key(step, "env").as_mapping().unwrap();
    assert!(
        env.contains_key("ANTHROPIC_API_KEY"),
        "the default agent secret is mapped"
    );
    for (name, value) in env {
        let name = name.as_str().unwrap();
        assert_eq!(
            value.as_str(),
            Some(format!("${{{{ secrets.{name} }}}}").as_str())
        );
    }
    let with = serde_yaml_ng::to_string(key(step, "with")).unwrap();
    assert!(
        !with.contains("secrets."),
        "secret values never pass through action inputs"
    );
    assert_eq!(text.matches("secrets.").count(), env.len());
    let (baseline, _) = load("templates/workflows/sota-baseline.yml");
    assert!(!baseline.contains("secrets."), "the baseline runs no agent");
}
