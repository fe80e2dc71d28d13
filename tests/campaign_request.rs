//! Campaign requests end to end: the shipped examples, resolution rules, the manifest.

use chrono::NaiveDate;
use pretty_assertions::assert_eq;
use sota_bot::campaign::issue_form::parse_issue_form;
use sota_bot::campaign::manifest::render_manifest;
use sota_bot::campaign::repo_config::parse_repo_config;
use sota_bot::campaign::request::{ProblemKind, Quantization};
use sota_bot::campaign::request_yaml::parse_yaml;
use sota_bot::campaign::resolve::DefaultSource;
use sota_bot::campaign::selection::FrameworkAvailability;
use sota_bot::campaign::{
    Autonomy, CampaignRequest, Precision, RepoConfig, RunDir, Scenario, WorkloadSpec,
};
use sota_bot::framework::Framework;

const YAML_EXAMPLE: &str = include_str!("../examples/requests/llama-3.1-8b-h100.yml");
const ISSUE_EXAMPLE: &str = include_str!("../examples/requests/llama-3.1-8b-h100.issue.md");

fn date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 3, 7).unwrap()
}

#[test]
fn both_example_formats_describe_the_same_campaign() {
    let from_yaml = parse_yaml(YAML_EXAMPLE)
        .unwrap()
        .resolve(&RepoConfig::default())
        .unwrap();
    let from_issue = parse_issue_form(ISSUE_EXAMPLE)
        .unwrap()
        .resolve(&RepoConfig::default())
        .unwrap();
    assert_eq!(from_yaml, from_issue);
    assert_eq!(
        from_yaml.selection.selected,
        vec![Framework::Vllm, Framework::Tokenspeed]
    );
    assert_eq!(
        from_yaml.selection.user_excluded[0].0,
        Framework::TensorrtLlm
    );
    assert_eq!(from_yaml.autonomy, Autonomy::WaitForHuman);
    assert_eq!(from_yaml.max_rounds, 20);
    assert_eq!(
        RunDir::for_campaign(&from_yaml, date()).root.to_str(),
        Some("runs/20250307_llama_3_1_8b_instruct_sota_humanize")
    );
}

#[test]
fn manifest_snapshot() {
    let campaign = parse_yaml(YAML_EXAMPLE)
        .unwrap()
        .resolve(&RepoConfig::default())
        .unwrap();
    let run_dir = RunDir::for_campaign(&campaign, date());
    let manifest = render_manifest(&campaign, &run_dir).unwrap();
    insta::assert_snapshot!("manifest_llama_8b_h100", manifest);
}

#[test]
fn manifest_lists_unsupported_frameworks_with_reasons() {
    let request =
        parse_yaml("model: org/m\nprecision: bf16\ngpu: B200\ntensorrt_llm_backend: tensorrt\n")
            .unwrap();
    let pool = vec![
        FrameworkAvailability {
            framework: Framework::Vllm,
            unavailable: None,
        },
        FrameworkAvailability {
            framework: Framework::TensorrtLlm,
            unavailable: None,
        },
        FrameworkAvailability {
            framework: Framework::Tokenspeed,
            unavailable: Some("no TokenSpeed | image for b200".into()),
        },
    ];
    let campaign = request
        .resolve_with_pool(&RepoConfig::default(), &pool)
        .unwrap()
        .campaign;
    assert_eq!(campaign.selection.selected, vec![Framework::Vllm]);
    let manifest = render_manifest(&campaign, &RunDir::for_campaign(&campaign, date())).unwrap();
    assert!(
        manifest
            .contains("| `tensorrt_llm` | TensorRT-LLM server backend `tensorrt` is not supported"),
        "{manifest}"
    );
    assert!(
        manifest.contains("| `tokenspeed` | no TokenSpeed \\| image for b200 |"),
        "pipes escaped: {manifest}"
    );
    assert!(manifest.contains("Excluded by choice: none"), "{manifest}");
    assert!(
        manifest.contains("Artifact root: `runs/20250307_m_sota_humanize`"),
        "{manifest}"
    );
}

#[test]
fn only_model_gpu_and_precision_can_be_missing() {
    let problems = CampaignRequest::default()
        .resolve(&RepoConfig::default())
        .unwrap_err();
    let missing: Vec<(&str, ProblemKind)> = problems
        .iter()
        .map(|p| (p.field.as_str(), p.kind))
        .collect();
    assert_eq!(
        missing,
        [
            ("model", ProblemKind::Missing),
            ("gpu.model", ProblemKind::Missing),
            ("precision", ProblemKind::Missing)
        ]
    );
    assert!(problems[0].message.contains("please provide"));
}

#[test]
fn repository_defaults_fill_the_gaps() {
    let config = parse_repo_config("defaults: {gpu_model: NVIDIA H200, gpu_count: 8, precision: fp16, competitors: [vllm]}\nbudget: {max_rounds: 10}\nautonomy: wait-for-human\n").unwrap();
    let resolution = parse_yaml("model: Qwen/Qwen2.5-72B-Instruct")
        .unwrap()
        .resolve_with_pool(&config, &sota_bot::campaign::selection::all_available())
        .unwrap();
    let c = &resolution.campaign;
    assert_eq!(
        (c.gpu_model.as_str(), c.hardware.as_str(), c.gpu_count),
        ("NVIDIA H200", "h200", 8)
    );
    assert_eq!(c.visible_devices, (0..8).collect::<Vec<u32>>());
    assert_eq!(c.runner_labels, vec!["self-hosted", "8-gpu-h200"]);
    assert_eq!(c.precision, Precision::Fp16);
    assert_eq!(c.selection.selected, vec![Framework::Vllm]);
    assert_eq!(c.max_rounds, 10);
    assert_eq!(c.autonomy, Autonomy::WaitForHuman);
    assert_eq!(c.workload, WorkloadSpec::default());
    assert_eq!(c.tokenizer, "Qwen/Qwen2.5-72B-Instruct");
    assert_eq!(c.model_slug, "qwen2_5_72b_instruct");
    let source = |field: &str| {
        resolution
            .defaults_applied
            .iter()
            .find(|a| a.field == field)
            .map(|a| a.source)
    };
    assert_eq!(source("precision"), Some(DefaultSource::RepoConfig));
    assert_eq!(source("max_rounds"), Some(DefaultSource::RepoConfig));
    assert_eq!(source("sla"), Some(DefaultSource::BuiltIn));
    assert_eq!(source("model"), None, "the request set it");
}

#[test]
fn built_in_defaults_match_the_documented_table() {
    let c = parse_yaml("model: org/m\nprecision: bf16\ngpu: {model: H100}")
        .unwrap()
        .resolve(&RepoConfig::default())
        .unwrap();
    assert_eq!(c.gpu_count, 1);
    assert_eq!(c.visible_devices, vec![0]);
    assert!(!c.multi_node && !c.trust_remote_code);
    assert_eq!(c.quantization, None);
    assert_eq!(c.revision, None);
    assert_eq!(c.max_context, None);
    assert_eq!(c.selection.selected, Framework::COMPETITORS.to_vec());
    assert_eq!(
        c.workload.scenarios,
        vec![
            Scenario::new("chat", 1000, 1000),
            Scenario::new("summarization", 8000, 1000)
        ]
    );
    assert_eq!(c.workload.num_prompts, 80);
    assert_eq!(
        (
            c.sla.max_p50_ttft_ms,
            c.sla.max_p50_tpot_ms,
            c.sla.min_success_rate
        ),
        (Some(2000.0), Some(50.0), Some(0.99))
    );
    assert_eq!(c.max_rounds, 42);
    assert_eq!(c.autonomy, Autonomy::AutoContinue);
    assert_eq!(c.primary_metric.as_str(), "request_throughput");
    assert_eq!(c.noise_threshold_pct, 1.0);
    assert_eq!(c.tensorrt_llm_backend, "pytorch");
    assert_eq!(c.history_slug, None);
    let help = sota_bot::campaign::request::DEFAULTS_HELP;
    for line in [
        "max_rounds            42",
        "autonomy              auto-continue",
        "noise_threshold_pct   1.0",
        "gpu.count             number of visible GPU ids if given, else 1",
    ] {
        assert!(help.contains(line), "{line}");
    }
}

#[test]
fn a_quantization_without_precision_means_auto() {
    let c = parse_yaml("model: org/m-fp8\nquantization: fp8\ngpu: H100")
        .unwrap()
        .resolve(&RepoConfig::default())
        .unwrap();
    assert_eq!(c.precision, Precision::Auto);
    assert_eq!(c.quantization.as_deref(), Some("fp8"));
    let r = parse_yaml("quantization: fp8").unwrap();
    assert_eq!(r.quantization, Some(Quantization::Method("fp8".into())));
}

#[test]
fn resolution_reports_every_problem_at_once() {
    let request = parse_yaml("gpu: {model: H100, count: 4, visible_devices: [0, 1]}\nframeworks: {exclude: [vllm, trt, tokenspeed]}\nworkload: {dataset: custom}\n").unwrap();
    let problems = request.resolve(&RepoConfig::default()).unwrap_err();
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "model",
            "gpu.visible_devices",
            "precision",
            "frameworks",
            "workload.dataset_path"
        ]
    );
    assert!(
        problems[1].message.contains("expected exactly 4 ids"),
        "{}",
        problems[1].message
    );
    assert!(
        problems[3].message.contains("no competitor is left"),
        "{}",
        problems[3].message
    );
}

#[test]
fn workload_and_sla_overrides() {
    let c = parse_yaml("model: m\nprecision: bf16\ngpu: H100\nworkload: {dataset_path: /data/prod.jsonl, num_prompts: 500}\nsla: {max_p50_ttft_ms: 800}\n").unwrap().resolve(&RepoConfig::default()).unwrap();
    assert_eq!(c.workload.dataset_kind.as_str(), "custom");
    assert_eq!(c.workload.dataset_path.as_deref(), Some("/data/prod.jsonl"));
    assert_eq!(c.workload.num_prompts, 500);
    assert_eq!(
        c.workload.scenarios.len(),
        2,
        "scenarios kept from the default"
    );
    assert_eq!(
        (c.sla.max_p50_ttft_ms, c.sla.max_p50_tpot_ms),
        (Some(800.0), None),
        "a given SLA replaces the default whole"
    );
    let c = parse_yaml("model: m\nprecision: bf16\ngpu: H100\nsla: none")
        .unwrap()
        .resolve(&RepoConfig::default())
        .unwrap();
    assert_eq!(c.sla, sota_bot::bench::Sla::default());
}

#[test]
fn multi_node_visible_ids_are_per_node() {
    let ok = parse_yaml("model: m\nprecision: bf16\ngpu: {model: H100, count: 16, visible_devices: 0-7, multi_node: true}").unwrap();
    assert_eq!(ok.resolve(&RepoConfig::default()).unwrap().gpu_count, 16);
    let count_from_ids =
        parse_yaml("model: m\nprecision: bf16\ngpu: {model: H100, visible_devices: [4, 5]}")
            .unwrap()
            .resolve(&RepoConfig::default())
            .unwrap();
    assert_eq!(count_from_ids.gpu_count, 2);
    assert_eq!(
        count_from_ids.runner_labels,
        vec!["self-hosted", "2-gpu-h100"]
    );
}

#[test]
fn resolved_campaign_round_trips_through_json() {
    let c = parse_yaml(YAML_EXAMPLE)
        .unwrap()
        .resolve(&RepoConfig::default())
        .unwrap();
    let json = serde_json::to_string(&c).unwrap();
    let back: sota_bot::campaign::ResolvedCampaign = serde_json::from_str(&json).unwrap();
    assert_eq!(back, c);
    assert!(json.contains("\"autonomy\":\"wait-for-human\""));
    assert!(json.contains("\"primary_metric\":\"request_throughput\""));
}

/// An answer to one field of the issue form.
enum Answer<'a> {
    Text(&'a str),
    Selected(&'a [&'a str]),
}

/// The issue body GitHub writes for an issue form filled in with `answers` (by field id):
/// a `### <label>` section per field in form order, `_No response_` for an empty one, the
/// selected options of a dropdown joined by `, `, a textarea with `render:` in a fenced
/// block of that language, checkboxes as task-list lines. Markdown items are not part of
/// the body. A selection the form does not offer is a test failure.
fn render_issue_form(form_yaml: &str, answers: &[(&str, Answer<'_>)]) -> String {
    let form: serde_yaml_ng::Value = serde_yaml_ng::from_str(form_yaml).unwrap();
    let mut sections = Vec::new();
    for item in form["body"].as_sequence().unwrap() {
        let kind = item["type"].as_str().unwrap();
        if kind == "markdown" {
            continue;
        }
        let id = item["id"].as_str().unwrap();
        let attrs = &item["attributes"];
        let label = attrs["label"].as_str().unwrap();
        let answer = answers.iter().find(|(k, _)| *k == id).map(|(_, a)| a);
        let value = match (kind, answer) {
            ("dropdown", Some(Answer::Selected(chosen))) => {
                let options: Vec<&str> = attrs["options"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .map(|o| o.as_str().unwrap())
                    .collect();
                for c in chosen.iter() {
                    assert!(options.contains(c), "{id}: the form offers no {c:?}");
                }
                assert!(
                    chosen.len() <= 1 || attrs["multiple"].as_bool() == Some(true),
                    "{id} is a single-choice dropdown"
                );
                chosen.join(", ")
            }
            ("checkboxes", Some(Answer::Selected(chosen))) => attrs["options"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|o| {
                    let l = o["label"].as_str().unwrap();
                    format!("- [{}] {l}", if chosen.contains(&l) { "x" } else { " " })
                })
                .collect::<Vec<_>>()
                .join("\n"),
            ("input" | "textarea", Some(Answer::Text(t))) if !t.trim().is_empty() => {
                match attrs["render"].as_str() {
                    Some(lang) => format!("```{lang}\n{}\n```", t.trim_end()),
                    None => t.trim_end().to_string(),
                }
            }
            (_, None) | ("input" | "textarea", Some(Answer::Text(_))) => String::new(),
            (_, Some(_)) => panic!("{id}: an answer of the wrong kind for a {kind}"),
        };
        let value = if value.is_empty() {
            "_No response_".to_string()
        } else {
            value
        };
        sections.push(format!("### {label}\n\n{value}"));
    }
    sections.join("\n\n") + "\n"
}

#[test]
fn the_issue_example_is_what_github_renders_from_the_installed_form() {
    let form = include_str!("../.github/ISSUE_TEMPLATE/sota-request.yml");
    let rendered = render_issue_form(
        form,
        &[
            ("model", Answer::Text("meta-llama/Llama-3.1-8B-Instruct")),
            (
                "model_revision",
                Answer::Text("0e9e39f249a16976918f6564b8830bc894c89659"),
            ),
            ("precision", Answer::Selected(&["bf16"])),
            ("quantization", Answer::Text("none")),
            ("trust_remote_code", Answer::Selected(&["no"])),
            ("gpu_model", Answer::Text("H100")),
            ("gpu_count", Answer::Text("2")),
            ("visible_gpu_ids", Answer::Text("0,1")),
            ("allow_multi_node", Answer::Selected(&["no"])),
            (
                "comparison_frameworks",
                Answer::Selected(&["vllm", "tokenspeed"]),
            ),
            (
                "workload",
                Answer::Text(
                    "dataset: random\nnum_prompts: 80\nscenarios:\n  - {name: chat, input_len: 1000, output_len: 1000}\n  - {name: summarization, input_len: 8000, output_len: 1000}\n",
                ),
            ),
            (
                "sla",
                Answer::Text("max_p50_ttft_ms: 2000\nmax_p50_tpot_ms: 50\nmin_success_rate: 0.99\n"),
            ),
            ("history_slug", Answer::Text("llama")),
            ("max_rounds", Answer::Text("20")),
            ("autonomy", Answer::Selected(&["wait-for-human"])),
            (
                "notes",
                Answer::Text("Baseline for the Llama 3.1 8B serving path on two H100s."),
            ),
        ],
    );
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/requests/llama-3.1-8b-h100.issue.md");
    if std::env::var_os("SOTA_UPDATE_EXAMPLES").is_some() {
        std::fs::write(&path, &rendered).unwrap();
    }
    assert_eq!(
        ISSUE_EXAMPLE, rendered,
        "regenerate with SOTA_UPDATE_EXAMPLES=1 cargo test --test campaign_request"
    );
}
