//! Builds a fresh campaign's engine input from a resolved request and a bench plan: the
//! [`EngineCampaign`] and one [`CandidateSpec`] per plan candidate, as process-lane command
//! templates. On the simulator lane every server is `sota-bot sim serve` with the
//! framework's engine profile (SGLang's inside the checkout, so an agent patch moves it).
//! The benchmark is the plan's client: the framework-neutral `sota-bot bench run` (the
//! default) or each framework's own (`bench_client: native`).

use super::{CandidateSpec, EngineCampaign, Metric, ScenarioSpec};
use crate::bench::candidates::generate;
use crate::bench::command::{
    push_flags, render_benchmark_command, render_parse_step, shell_quote, BenchTarget, FlagCase,
};
use crate::bench::plan::{BenchClient, BenchPlan};
use crate::campaign::options::{Autonomy, PrimaryMetric};
use crate::campaign::resolve::ResolvedCampaign;
use crate::campaign::run_dir::RunDir;
use crate::framework::Framework;
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

/// Placeholder for the sota-bot executable in candidate commands; the lane expands it (with
/// `{checkout}`) on the machine that runs the command, so a campaign's committed input
/// stays valid on another host (a GitHub runner, a resumed laptop).
pub const SOTA_BOT_PLACEHOLDER: &str = "{sota_bot}";

/// How servers are launched.
#[derive(Debug, Clone)]
pub enum LaneKind {
    /// `sota-bot sim serve` with one engine profile per framework (a path, possibly under
    /// `{checkout}`, or `builtin:<framework>`).
    Simulator {
        profiles: BTreeMap<Framework, String>,
        time_scale: f64,
    },
    /// The plan's real server commands (its fixed port replaced by the lane's free port).
    Real,
}

/// The engine's view of a resolved campaign.
///
/// `sim_tokenizer` is `Some` on the simulator lane: the simulated model counts tokens with
/// that tokenizer spec instead of the requested model's.
pub fn engine_campaign(
    r: &ResolvedCampaign,
    date: NaiveDate,
    sim_tokenizer: Option<&str>,
) -> Result<EngineCampaign, WiringError> {
    let simulated = sim_tokenizer.is_some();
    let run_dir = RunDir::for_campaign(r, date);
    let manifest_md = crate::campaign::manifest::render_manifest(r, &run_dir)
        .map_err(|e| WiringError::Manifest(e.to_string()))?;
    Ok(EngineCampaign {
        campaign_id: format!("{}-{}", date.format("%Y%m%d"), r.model_slug),
        model: r.model.clone(),
        model_slug: r.model_slug.clone(),
        tokenizer: Some(sim_tokenizer.unwrap_or(&r.tokenizer).to_string()),
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

/// A word with its `{placeholder}`s removed; placeholders are expanded (already quoted)
/// by the lane, so they must stay outside quotes.
fn without_placeholders(word: &str) -> String {
    let mut out = String::new();
    let mut rest = word;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let name = &rest[open + 1..open + close];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            out.push_str(&rest[..open + close + 1]);
        } else {
            out.push_str(&rest[..open]);
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

fn line(argv: &[String]) -> String {
    argv.iter()
        .map(|w| {
            let bare = without_placeholders(w);
            if bare.len() != w.len() && (bare.is_empty() || shell_quote(&bare) == bare) {
                w.clone()
            } else {
                shell_quote(w)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The benchmark command of one candidate as a process-lane template: the plan's client
/// (built-in or the framework's own, followed by `sota-bot bench parse`) with the lane's
/// placeholders for the port, scenario, lengths, tokenizer and output files.
pub fn benchmark_template(
    plan: &BenchPlan,
    fw: Framework,
    candidate_id: &str,
    knobs: &crate::bench::plan::Flags,
) -> String {
    let native = plan.bench_client == BenchClient::Native;
    let target = BenchTarget {
        sota_bot: SOTA_BOT_PLACEHOLDER,
        host: "127.0.0.1",
        port: "{port}",
        tokenizer: "{tokenizer}",
        candidate_id,
        scenario: "{scenario}",
        input_len: "{input_len}",
        output_len: "{output_len}",
        num_prompts: "{num_prompts}",
        result_file: if native { "{raw_out}" } else { "{row_out}" },
    };
    let run = line(&render_benchmark_command(plan, fw, plan.bench_client, knobs, &target).argv);
    if !native {
        return run;
    }
    let parse = BenchTarget {
        result_file: "{row_out}",
        ..target
    };
    format!(
        "{run} && {}",
        line(&render_parse_step(plan, fw, &parse, "{raw_out}").argv)
    )
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
            let server_command = match lane {
                LaneKind::Simulator {
                    profiles,
                    time_scale,
                } => {
                    let profile = profiles
                        .get(&fw)
                        .ok_or(WiringError::MissingProfile(fw.display_name()))?;
                    let mut argv: Vec<String> = vec![
                        SOTA_BOT_PLACEHOLDER.into(),
                        "sim".into(),
                        "serve".into(),
                        "--framework".into(),
                        fw.canonical().into(),
                        "--profile".into(),
                        profile.clone(),
                        "--model".into(),
                        campaign.model.clone(),
                        "--port".into(),
                        "{port}".into(),
                        "--time-scale".into(),
                        time_scale.to_string(),
                        "--tokenizer".into(),
                        "{tokenizer}".into(),
                    ];
                    let case = if fw == Framework::TensorrtLlm {
                        FlagCase::Snake
                    } else {
                        FlagCase::Dash
                    };
                    push_flags(&mut argv, &c.server_flags, case);
                    line(&argv)
                }
                LaneKind::Real => {
                    let port = format!("--port {}", plan.port);
                    c.server_command.replace(&port, "--port {port}")
                }
            };
            let benchmark_command = benchmark_template(plan, fw, &c.id, &c.benchmark_flags);
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

/// The simulator's profile per framework: SGLang's at `sglang_profile` (relative paths are
/// inside the checkout, written `{checkout}/...`), competitors from `configured` or else
/// the built-in ones (`builtin:<framework>`).
pub fn sim_profiles(
    sglang_profile: &Path,
    configured: &BTreeMap<String, PathBuf>,
) -> BTreeMap<Framework, String> {
    let mut out = BTreeMap::new();
    let sglang = if sglang_profile.is_absolute() {
        sglang_profile.to_string_lossy().into_owned()
    } else {
        format!("{{checkout}}/{}", sglang_profile.to_string_lossy())
    };
    out.insert(Framework::Sglang, sglang);
    for (fw, _) in crate::sim::profile::BUILTIN_PROFILES {
        if fw == Framework::Sglang {
            continue;
        }
        let given = configured
            .iter()
            .find(|(k, _)| Framework::from_alias(k) == Some(fw))
            .map(|(_, p)| p.to_string_lossy().into_owned());
        out.insert(
            fw,
            given.unwrap_or_else(|| crate::sim::profile::builtin_name(fw)),
        );
    }
    out
}

/// Why a new campaign's input could not be built; each names the file it is about.
#[derive(Debug, thiserror::Error)]
pub enum NewCampaignError {
    #[error("{}", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
    Request(Vec<crate::campaign::RequestProblem>),
    #[error("{0}")]
    Plan(String),
    #[error(transparent)]
    Wiring(#[from] WiringError),
}

/// A new campaign's committed input (campaign + candidate commands) from the request and
/// bench-plan texts: what `local run` starts from and what a GitHub campaign commits in its
/// run directory for the runner phases. `sim` selects the simulator lane.
pub fn new_campaign_input(
    request_yaml: &str,
    plan_yaml: &str,
    repo_config: &crate::campaign::RepoConfig,
    sim: Option<&super::config::SimSettings>,
    date: NaiveDate,
) -> Result<super::setup::CampaignInput, NewCampaignError> {
    let request = crate::campaign::request_yaml::parse_yaml(request_yaml)
        .map_err(NewCampaignError::Request)?;
    let resolved = request
        .resolve(repo_config)
        .map_err(NewCampaignError::Request)?;
    input_from_resolved(&resolved, plan_yaml, sim, date)
}

/// As [`new_campaign_input`], from an already resolved request (the App parses issue forms).
pub fn input_from_resolved(
    resolved: &ResolvedCampaign,
    plan_yaml: &str,
    sim: Option<&super::config::SimSettings>,
    date: NaiveDate,
) -> Result<super::setup::CampaignInput, NewCampaignError> {
    let plan = crate::bench::plan::parse_plan(plan_yaml)
        .map_err(|e| NewCampaignError::Plan(e.to_string()))?;
    let sim_tokenizer = sim.map(|s| {
        s.tokenizer
            .clone()
            .unwrap_or_else(|| crate::tokenizer::BUILTIN_SIM.to_string())
    });
    let campaign = engine_campaign(resolved, date, sim_tokenizer.as_deref())?;
    let lane = match sim {
        Some(sim) => LaneKind::Simulator {
            profiles: sim_profiles(&sim.sglang_profile, &sim.competitor_profiles),
            time_scale: sim.time_scale,
        },
        None => LaneKind::Real,
    };
    let candidates = candidate_specs(&campaign, &plan, &lane)?;
    Ok(super::setup::CampaignInput {
        campaign,
        candidates,
    })
}

/// The bench plan used when a campaign names none: every selected framework at its
/// defaults (one baseline candidate each), the campaign's workload, tensor parallel over
/// the requested GPUs.
pub fn default_plan_yaml(r: &ResolvedCampaign) -> String {
    let mut v = serde_json::json!({
        "model": r.model,
        "tp_size": r.gpu_count.max(1),
        "num_prompts": r.workload.num_prompts,
        "scenarios": r.workload.scenarios.iter().map(|s| serde_json::json!({
            "name": s.name, "input_len": s.input_len, "output_len": s.output_len,
        })).collect::<Vec<_>>(),
        "frameworks": {},
    });
    let mut frameworks = serde_json::Map::new();
    for fw in std::iter::once(Framework::Sglang).chain(r.selection.selected.iter().copied()) {
        frameworks.insert(fw.canonical().to_string(), serde_json::json!({}));
    }
    v["frameworks"] = serde_json::Value::Object(frameworks);
    serde_yaml_ng::to_string(&v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_stay_unquoted_and_other_words_are_quoted() {
        let argv: Vec<String> = [
            "{sota_bot}",
            "--profile",
            "{checkout}/sim/engine.yaml",
            "--model",
            "a b",
            "{not a placeholder}",
            "{port}x y",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            line(&argv),
            "{sota_bot} --profile {checkout}/sim/engine.yaml --model 'a b' '{not a placeholder}' '{port}x y'"
        );
    }

    #[test]
    fn simulator_profiles_do_not_name_files_of_this_machine() {
        let configured: BTreeMap<String, PathBuf> =
            [("vllm".to_string(), PathBuf::from("/srv/vllm.yaml"))].into();
        let p = sim_profiles(Path::new("sim/engine.yaml"), &configured);
        assert_eq!(p[&Framework::Sglang], "{checkout}/sim/engine.yaml");
        assert_eq!(p[&Framework::Vllm], "/srv/vllm.yaml");
        assert_eq!(p[&Framework::Tokenspeed], "builtin:tokenspeed");
        assert!(crate::sim::load_profile(Path::new(&p[&Framework::Tokenspeed])).is_ok());
        assert!(crate::sim::load_profile(Path::new("builtin:nope")).is_err());
    }
}
