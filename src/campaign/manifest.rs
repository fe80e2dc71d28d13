//! `manifest.md` (ARCHITECTURE.md, *Run directory*): the campaign's fixed inputs, written once at
//! the start so every later round and reviewer can check what the campaign promised to hold
//! constant.

use super::resolve::ResolvedCampaign;
use super::run_dir::RunDir;
use handlebars::Handlebars;
use serde::Serialize;

const TEMPLATE: &str = include_str!("../../templates/manifest.md.hbs");

/// Rendering failed (a template defect, never a user input problem).
#[derive(Debug, thiserror::Error)]
#[error("cannot render manifest.md: {0}")]
pub struct ManifestError(#[from] Box<handlebars::RenderError>);

#[derive(Serialize)]
struct Reasoned {
    framework: String,
    reason: String,
}

#[derive(Serialize)]
struct Threshold {
    key: &'static str,
    value: String,
}

#[derive(Serialize)]
struct ScenarioRow {
    name: String,
    input_len: u64,
    output_len: u64,
}

/// Everything the template shows, pre-formatted so the template has no logic beyond loops.
#[derive(Serialize)]
struct ManifestView {
    target: String,
    model: String,
    revision: String,
    tokenizer: String,
    precision: String,
    quantization: String,
    trust_remote_code: bool,
    max_context: String,
    model_slug: String,
    history_slug: String,
    gpu_model: String,
    hardware: String,
    gpu_count: u32,
    visible_devices: String,
    multi_node: bool,
    runner_labels: String,
    selected: Vec<String>,
    benchmarked: Vec<String>,
    excluded: Vec<Reasoned>,
    unsupported: Vec<Reasoned>,
    tensorrt_llm_backend: String,
    dataset_kind: String,
    dataset_path: Option<String>,
    num_prompts: u64,
    scenarios: Vec<ScenarioRow>,
    sla: Vec<Threshold>,
    primary_metric: String,
    noise_threshold_pct: f64,
    max_rounds: u32,
    autonomy: String,
    artifact_root: String,
    notes: Option<String>,
}

fn reasoned(list: &[(crate::framework::Framework, String)]) -> Vec<Reasoned> {
    list.iter()
        .map(|(f, r)| Reasoned {
            framework: f.canonical().to_string(),
            reason: r.replace('|', "\\|"),
        })
        .collect()
}

fn view(c: &ResolvedCampaign, run_dir: &RunDir) -> ManifestView {
    let sla = [
        ("max_p50_ttft_ms", c.sla.max_p50_ttft_ms),
        ("max_p50_tpot_ms", c.sla.max_p50_tpot_ms),
        ("min_success_rate", c.sla.min_success_rate),
        ("max_p50_e2e_ms", c.sla.max_p50_e2e_ms),
    ]
    .into_iter()
    .map(|(key, v)| Threshold {
        key,
        value: v.map_or_else(|| "no limit".to_string(), |v| v.to_string()),
    })
    .collect();
    ManifestView {
        target: c.selection.target.canonical().to_string(),
        model: c.model.clone(),
        revision: c.revision.as_ref().map_or_else(
            || "default branch (not pinned)".to_string(),
            |r| format!("`{r}`"),
        ),
        tokenizer: c.tokenizer.clone(),
        precision: format!("{} (`--dtype {}`)", c.precision, c.precision.dtype_flag()),
        quantization: c.quantization.clone().unwrap_or_else(|| "none".to_string()),
        trust_remote_code: c.trust_remote_code,
        max_context: c
            .max_context
            .map_or_else(|| "model default".to_string(), |n| n.to_string()),
        model_slug: c.model_slug.clone(),
        history_slug: c.history_slug.as_ref().map_or_else(
            || "inferred by the history phase".to_string(),
            |s| format!("`{s}`"),
        ),
        gpu_model: c.gpu_model.clone(),
        hardware: c.hardware.clone(),
        gpu_count: c.gpu_count,
        visible_devices: c.visible_devices_csv(),
        multi_node: c.multi_node,
        runner_labels: c
            .runner_labels
            .iter()
            .map(|l| format!("`{l}`"))
            .collect::<Vec<_>>()
            .join(", "),
        selected: c
            .selection
            .selected
            .iter()
            .map(|f| f.canonical().to_string())
            .collect(),
        benchmarked: c
            .selection
            .benchmarked()
            .iter()
            .map(|f| f.canonical().to_string())
            .collect(),
        excluded: reasoned(&c.selection.user_excluded),
        unsupported: reasoned(&c.selection.unsupported),
        tensorrt_llm_backend: c.tensorrt_llm_backend.clone(),
        dataset_kind: c.workload.dataset_kind.to_string(),
        dataset_path: c.workload.dataset_path.clone(),
        num_prompts: c.workload.num_prompts,
        scenarios: c
            .workload
            .scenarios
            .iter()
            .map(|s| ScenarioRow {
                name: s.name.clone(),
                input_len: s.input_len,
                output_len: s.output_len,
            })
            .collect(),
        sla,
        primary_metric: c.primary_metric.to_string(),
        noise_threshold_pct: c.noise_threshold_pct,
        max_rounds: c.max_rounds,
        autonomy: c.autonomy.to_string(),
        artifact_root: run_dir.root.to_string_lossy().into_owned(),
        notes: c.notes.clone(),
    }
}

/// Renders `manifest.md` for a resolved campaign and its run directory.
pub fn render_manifest(
    campaign: &ResolvedCampaign,
    run_dir: &RunDir,
) -> Result<String, ManifestError> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    hb.register_template_string("manifest", TEMPLATE)
        .map_err(|e| ManifestError(Box::new(e.into())))?;
    hb.render("manifest", &view(campaign, run_dir))
        .map_err(|e| ManifestError(Box::new(e)))
}
