//! Builds a fresh campaign's engine input from a resolved request and a bench plan: the
//! [`EngineCampaign`] and one [`CandidateSpec`] per plan candidate, as process-lane command
//! templates. On the simulator lane every server is `sota-bot sim serve` with the
//! framework's engine profile (SGLang's inside the checkout, so an agent patch moves it);
//! every benchmark is the framework-neutral `sota-bot bench run` client.

use super::{CandidateSpec, EngineCampaign, Metric, ScenarioSpec};
use crate::bench::candidates::generate;
use crate::bench::command::{push_flags, shell_quote, FlagCase};
use crate::bench::plan::BenchPlan;
use crate::campaign::options::{Autonomy, PrimaryMetric};
use crate::campaign::resolve::ResolvedCampaign;
use crate::campaign::run_dir::RunDir;
use crate::campaign::Framework;
use chrono::NaiveDate;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why the input could not be built.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    #[error("bench plan: {0}")]
    Plan(String),
    #[error("manifest: {0}")]
    Manifest(String),
    #[error("the bench plan has no candidates for {0}")]
    MissingFramework(&'static str),
    #[error("no simulated engine profile for {0}")]
    MissingProfile(&'static str),
}

/// How servers are launched.
#[derive(Debug, Clone)]
pub enum LaneKind {
    /// `sota-bot sim serve` with one engine profile per framework.
    Simulator {
        exe: PathBuf,
        profiles: BTreeMap<Framework, PathBuf>,
        time_scale: f64,
    },
    /// The plan's real server commands (its fixed port replaced by the lane's free port).
    Real { exe: PathBuf },
}

/// The engine's view of a resolved campaign.
pub fn engine_campaign(
    r: &ResolvedCampaign,
    date: NaiveDate,
    simulated: bool,
) -> Result<EngineCampaign, WiringError> {
    let run_dir = RunDir::for_campaign(r, date);
    let manifest_md = crate::campaign::manifest::render_manifest(r, &run_dir)
        .map_err(|e| WiringError::Manifest(e.to_string()))?;
    Ok(EngineCampaign {
        campaign_id: format!("{}-{}", date.format("%Y%m%d"), r.model_slug),
        model: r.model.clone(),
        model_slug: r.model_slug.clone(),
        tokenizer: Some(r.tokenizer.clone()),
        precision: Some(r.precision.to_string()),
        quantization: r.quantization.clone(),
        hardware: format!(
            "{}x {}{}",
            r.gpu_count,
            r.gpu_model,
            if simulated { " (simulated)" } else { "" }
        ),
        competitors: r.selection.selected.clone(),
        excluded: r.selection.user_excluded.iter().map(|(f, _)| *f).collect(),
        unsupported: r.selection.unsupported.clone(),
        dataset_kind: r.workload.dataset_kind.as_str().to_string(),
        num_prompts: r.workload.num_prompts,
        scenarios: r
            .workload
            .scenarios
            .iter()
            .map(|s| ScenarioSpec {
                name: s.name.clone(),
                input_len: s.input_len,
                output_len: s.output_len,
            })
            .collect(),
        sla: r.sla.clone(),
        metric: match r.primary_metric {
            PrimaryMetric::RequestThroughput => Metric::RequestThroughput,
            PrimaryMetric::OutputTokenThroughput => Metric::OutputTokenThroughput,
        },
        noise_threshold_pct: r.noise_threshold_pct,
        max_rounds: r.max_rounds,
        wait_for_human: r.autonomy == Autonomy::WaitForHuman,
        history_slug: r.history_slug.clone(),
        manifest_md,
    })
}

fn line(argv: &[String]) -> String {
    argv.iter()
        .map(|w| {
            if w.starts_with('{') && w.ends_with('}') {
                w.clone()
            } else {
                shell_quote(w)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One candidate spec per plan candidate of every campaign framework (target first).
pub fn candidate_specs(
    campaign: &EngineCampaign,
    plan: &BenchPlan,
    lane: &LaneKind,
) -> Result<Vec<CandidateSpec>, WiringError> {
    let set = generate(plan).map_err(|e| WiringError::Plan(e.to_string()))?;
    let mut out = Vec::new();
    for fw in campaign.frameworks() {
        let Some(fc) = set.frameworks.iter().find(|f| f.framework == fw) else {
            return Err(WiringError::MissingFramework(fw.display_name()));
        };
        if fc.candidates.is_empty() {
            return Err(WiringError::MissingFramework(fw.display_name()));
        }
        for c in &fc.candidates {
            let (server_command, exe) = match lane {
                LaneKind::Simulator {
                    exe,
                    profiles,
                    time_scale,
                } => {
                    let profile = profiles
                        .get(&fw)
                        .ok_or(WiringError::MissingProfile(fw.display_name()))?;
                    let mut argv: Vec<String> = vec![
                        exe.to_string_lossy().into_owned(),
                        "sim".into(),
                        "serve".into(),
                        "--framework".into(),
                        fw.canonical().into(),
                        "--profile".into(),
                        profile.to_string_lossy().into_owned(),
                        "--model".into(),
                        campaign.model.clone(),
                        "--port".into(),
                        "{port}".into(),
                        "--time-scale".into(),
                        time_scale.to_string(),
                    ];
                    let case = if fw == Framework::TensorrtLlm {
                        FlagCase::Snake
                    } else {
                        FlagCase::Dash
                    };
                    push_flags(&mut argv, &c.server_flags, case);
                    (line(&argv), exe)
                }
                LaneKind::Real { exe } => {
                    let port = format!("--port {}", plan.port);
                    (c.server_command.replace(&port, "--port {port}"), exe)
                }
            };
            let mut bench: Vec<String> = vec![
                exe.to_string_lossy().into_owned(),
                "bench".into(),
                "run".into(),
                "--base-url".into(),
                "http://127.0.0.1:{port}".into(),
                "--model".into(),
                campaign.model.clone(),
                "--framework".into(),
                fw.canonical().into(),
                "--candidate-id".into(),
                c.id.clone(),
                "--scenario".into(),
                "{scenario}".into(),
                "--input-len".into(),
                "{input_len}".into(),
                "--output-len".into(),
                "{output_len}".into(),
                "--num-prompts".into(),
                "{num_prompts}".into(),
                "--out".into(),
                "{row_out}".into(),
            ];
            push_flags(&mut bench, &c.benchmark_flags, FlagCase::Dash);
            let benchmark_command = line(&bench).replace(
                &shell_quote("http://127.0.0.1:{port}"),
                "http://127.0.0.1:{port}",
            );
            out.push(CandidateSpec {
                framework: fw,
                candidate_id: c.id.clone(),
                server_command,
                benchmark_command,
            });
        }
    }
    Ok(out)
}

/// Simulated engine profiles shipped with sota-bot (competitors; SGLang's lives in the
/// checkout).
pub const BUILTIN_PROFILES: [(Framework, &str); 4] = [
    (
        Framework::Sglang,
        include_str!("../../examples/sim/sglang.yaml"),
    ),
    (
        Framework::Vllm,
        include_str!("../../examples/sim/vllm.yaml"),
    ),
    (
        Framework::TensorrtLlm,
        include_str!("../../examples/sim/tensorrt_llm.yaml"),
    ),
    (
        Framework::Tokenspeed,
        include_str!("../../examples/sim/tokenspeed.yaml"),
    ),
];

/// The simulator's profile per framework: SGLang's at `sglang_profile` inside the checkout,
/// competitors from `configured` or else the built-in ones written under `store`.
pub fn sim_profiles(
    checkout: &Path,
    sglang_profile: &Path,
    configured: &BTreeMap<String, PathBuf>,
    store: &Path,
) -> std::io::Result<BTreeMap<Framework, PathBuf>> {
    let mut out = BTreeMap::new();
    out.insert(Framework::Sglang, checkout.join(sglang_profile));
    for (fw, text) in BUILTIN_PROFILES {
        if fw == Framework::Sglang {
            continue;
        }
        let given = configured
            .iter()
            .find(|(k, _)| Framework::from_alias(k) == Some(fw))
            .map(|(_, p)| p.clone());
        let path = match given {
            Some(p) => p,
            None => {
                std::fs::create_dir_all(store)?;
                let p = store.join(format!("{}.yaml", fw.canonical()));
                std::fs::write(&p, text)?;
                p
            }
        };
        out.insert(fw, path);
    }
    Ok(out)
}
