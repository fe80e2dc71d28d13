//! Candidate generation and launch grouping (ARCHITECTURE.md, *The fixed workload*).
//!
//! Per framework: the baseline (base server flags + benchmark flags) first, then the product
//! of the search-space values in key order, last key fastest. Server search keys come
//! before benchmark-only keys, so consecutive candidates share a server configuration.
//! A combination equal to the baseline or to an earlier candidate (after dropping flags that
//! do not render) is skipped; generation stops at `max_candidates` (baseline included).
//!
//! A candidate whose context-length flag is below a scenario's input+output is skipped for
//! that scenario with a reason, and the runs left are grouped by distinct server command,
//! so a runner launches each server once and runs every scenario and knob against it.

use crate::bench::command::{
    render_benchmark_command, render_server_command, BenchTarget, CommandError,
};
use crate::bench::plan::{BenchPlan, FlagValue, Flags, FrameworkPlan, Scenario, SearchSpace};
use crate::bench::row::{BenchRow, RunStatus, Workload};
use crate::framework::Framework;
use serde::Serialize;

/// One point of a framework's search: server flags plus benchmark-only knobs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// `<framework>-<index>`, the baseline is index 0.
    pub id: String,
    pub framework: Framework,
    pub index: usize,
    pub is_baseline: bool,
    pub server_flags: Flags,
    pub benchmark_flags: Flags,
    pub server_command: String,
    /// Scenarios this candidate cannot run, with the reason.
    pub skipped: Vec<ScenarioSkip>,
}

/// A scenario a candidate does not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScenarioSkip {
    pub scenario: String,
    pub reason: String,
}

/// The candidates of one framework and what generation dropped.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrameworkCandidates {
    pub framework: Framework,
    pub candidates: Vec<Candidate>,
    /// Combinations skipped because they equal the baseline or an earlier candidate.
    pub duplicates_skipped: usize,
    /// Size of the full search (baseline + product), saturating.
    pub combinations_total: usize,
    /// True when `max_candidates` cut the search short.
    pub capped: bool,
}

/// One benchmark run against a launched server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LaunchRun {
    pub candidate_id: String,
    pub scenario: String,
    pub benchmark_flags: Flags,
    pub benchmark_command: String,
    pub result_file: String,
}

/// One distinct server configuration and every run to do against it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerLaunch {
    pub framework: Framework,
    pub server_command: String,
    pub candidates: Vec<LaunchRun>,
}

/// Everything generated from a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CandidateSet {
    pub frameworks: Vec<FrameworkCandidates>,
    pub launches: Vec<ServerLaunch>,
    pub scenarios: Vec<Scenario>,
}

impl CandidateSet {
    /// Candidates over all frameworks.
    pub fn candidate_count(&self) -> usize {
        self.frameworks.iter().map(|f| f.candidates.len()).sum()
    }

    /// Server launches needed (one per distinct server configuration with a run left).
    pub fn launch_count(&self) -> usize {
        self.launches.len()
    }

    /// Launches a naive runner would do: one per candidate and scenario.
    pub fn naive_launch_count(&self) -> usize {
        self.candidate_count() * self.scenarios.len()
    }

    /// Benchmark runs to do (candidate × scenario, minus skipped).
    pub fn run_count(&self) -> usize {
        self.launches.iter().map(|l| l.candidates.len()).sum()
    }

    /// All candidates in framework order.
    pub fn candidates(&self) -> impl Iterator<Item = &Candidate> {
        self.frameworks.iter().flat_map(|f| f.candidates.iter())
    }

    /// Rows for the skipped (candidate, scenario) pairs, so `candidates.jsonl` keeps them.
    pub fn skipped_rows(&self, plan: &BenchPlan) -> Vec<BenchRow> {
        let mut rows = Vec::new();
        for c in self.candidates() {
            for skip in &c.skipped {
                let mut row = BenchRow::new(c.framework, &c.id, &plan.model, RunStatus::Skipped);
                row.failure_reason = Some(skip.reason.clone());
                row.server_command = Some(c.server_command.clone());
                if let Some(s) = self.scenarios.iter().find(|s| s.name == skip.scenario) {
                    row.workload = Workload {
                        kind: Some(plan.dataset.clone()),
                        scenario: Some(s.name.clone()),
                        input_len: Some(s.input_len),
                        output_len: Some(s.output_len),
                        num_prompts: Some(s.num_prompts),
                        endpoint: Some(plan.endpoint.clone()),
                        ..Workload::default()
                    };
                }
                rows.push(row);
            }
        }
        rows
    }
}

/// Flags that cap a sequence, per framework: (flag, what it bounds).
fn sequence_limit_flags(framework: Framework) -> &'static [(&'static str, SeqBound)] {
    match framework {
        Framework::Sglang => &[("context_length", SeqBound::Total)],
        Framework::Vllm => &[("max_model_len", SeqBound::Total)],
        Framework::Tokenspeed => &[
            ("max_model_len", SeqBound::Total),
            ("context_length", SeqBound::Total),
        ],
        Framework::TensorrtLlm => &[
            ("max_seq_len", SeqBound::Total),
            ("max_num_tokens", SeqBound::PromptUnlessChunked),
        ],
    }
}

#[derive(Debug, Clone, Copy)]
enum SeqBound {
    /// The flag bounds input + output.
    Total,
    /// The flag bounds tokens per scheduler step: a prompt must fit unless chunked prefill
    /// is enabled (TensorRT-LLM `max_num_tokens`).
    PromptUnlessChunked,
}

fn sequence_skip(framework: Framework, flags: &Flags, s: &Scenario) -> Option<String> {
    let need = s.input_len.saturating_add(s.output_len);
    for (flag, bound) in sequence_limit_flags(framework) {
        let Some(limit) = flags.get(*flag).and_then(FlagValue::as_u64) else {
            continue;
        };
        match bound {
            SeqBound::Total if limit < need => {
                return Some(format!(
                    "{flag}={limit} is below input+output {}+{}={need} of scenario `{}`",
                    s.input_len, s.output_len, s.name
                ));
            }
            SeqBound::PromptUnlessChunked
                if limit < s.input_len
                    && flags.get("enable_chunked_prefill") != Some(&FlagValue::Bool(true)) =>
            {
                return Some(format!(
                    "{flag}={limit} is below the input length {} of scenario `{}` and chunked prefill is off",
                    s.input_len, s.name
                ));
            }
            _ => {}
        }
    }
    None
}

/// The flags that render, for duplicate detection (`x: null` equals an absent `x`).
fn effective(flags: &Flags) -> Vec<(&String, &FlagValue)> {
    let mut v: Vec<_> = flags.iter().filter(|(_, val)| val.is_rendered()).collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}

fn product_size(spaces: &[&SearchSpace]) -> usize {
    spaces
        .iter()
        .flat_map(|s| s.values())
        .fold(1usize, |acc, vals| acc.saturating_mul(vals.len()))
}

/// Expands a plan into candidates and launch groups.
///
/// Fails only when a server command cannot be rendered (an unsupported TensorRT-LLM
/// backend, which `parse_plan` already rejects).
pub fn generate(plan: &BenchPlan) -> Result<CandidateSet, CommandError> {
    let mut frameworks = Vec::new();
    let mut launches: Vec<ServerLaunch> = Vec::new();
    for fw in &plan.frameworks {
        let fc = framework_candidates(plan, fw)?;
        for c in &fc.candidates {
            let runs: Vec<LaunchRun> = plan
                .scenarios
                .iter()
                .filter(|s| !c.skipped.iter().any(|k| k.scenario == s.name))
                .map(|s| {
                    let result_file = format!("{}__{}.json", c.id, s.name);
                    let (i, o, n) = (
                        s.input_len.to_string(),
                        s.output_len.to_string(),
                        s.num_prompts.to_string(),
                    );
                    let port = plan.port.to_string();
                    let target = BenchTarget {
                        sota_bot: "sota-bot",
                        host: &plan.host,
                        port: &port,
                        tokenizer: plan.tokenizer.as_deref().unwrap_or(&plan.model),
                        candidate_id: &c.id,
                        scenario: &s.name,
                        input_len: &i,
                        output_len: &o,
                        num_prompts: &n,
                        result_file: &result_file,
                    };
                    LaunchRun {
                        candidate_id: c.id.clone(),
                        scenario: s.name.clone(),
                        benchmark_flags: c.benchmark_flags.clone(),
                        benchmark_command: render_benchmark_command(
                            plan,
                            fw.framework,
                            plan.bench_client,
                            &c.benchmark_flags,
                            &target,
                        )
                        .to_shell(),
                        result_file,
                    }
                })
                .collect();
            if runs.is_empty() {
                continue;
            }
            match launches
                .iter_mut()
                .find(|l| l.framework == fw.framework && l.server_command == c.server_command)
            {
                Some(l) => l.candidates.extend(runs),
                None => launches.push(ServerLaunch {
                    framework: fw.framework,
                    server_command: c.server_command.clone(),
                    candidates: runs,
                }),
            }
        }
        frameworks.push(fc);
    }
    Ok(CandidateSet {
        frameworks,
        launches,
        scenarios: plan.scenarios.clone(),
    })
}

fn framework_candidates(
    plan: &BenchPlan,
    fw: &FrameworkPlan,
) -> Result<FrameworkCandidates, CommandError> {
    // Server keys first, then benchmark keys: the last key varies fastest.
    let axes: Vec<(&String, &Vec<FlagValue>, bool)> = fw
        .search_space
        .iter()
        .map(|(k, v)| (k, v, true))
        .chain(fw.benchmark_search_space.iter().map(|(k, v)| (k, v, false)))
        .collect();
    let product = if axes.is_empty() {
        0
    } else {
        product_size(&[&fw.search_space, &fw.benchmark_search_space])
    };
    let combinations_total = product.saturating_add(1);
    let mut seen: Vec<(Flags, Flags)> = Vec::new();
    let mut candidates = Vec::new();
    let mut duplicates_skipped = 0usize;
    let mut capped = false;

    let mut push = |server: Flags,
                    bench: Flags,
                    seen: &mut Vec<(Flags, Flags)>|
     -> Result<bool, CommandError> {
        let dup = seen
            .iter()
            .any(|(s, b)| effective(s) == effective(&server) && effective(b) == effective(&bench));
        if dup {
            return Ok(false);
        }
        let index = candidates.len();
        let server_command = render_server_command(plan, fw.framework, &server)?.to_shell();
        let skipped = plan
            .scenarios
            .iter()
            .filter_map(|s| {
                sequence_skip(fw.framework, &server, s).map(|reason| ScenarioSkip {
                    scenario: s.name.clone(),
                    reason,
                })
            })
            .collect();
        candidates.push(Candidate {
            id: format!("{}-{index:02}", fw.framework),
            framework: fw.framework,
            index,
            is_baseline: index == 0,
            server_flags: server.clone(),
            benchmark_flags: bench.clone(),
            server_command,
            skipped,
        });
        seen.push((server, bench));
        Ok(true)
    };

    push(
        fw.base_server_flags.clone(),
        fw.benchmark_flags.clone(),
        &mut seen,
    )?;
    if !axes.is_empty() && product > 0 {
        let mut odometer = vec![0usize; axes.len()];
        'outer: loop {
            if seen.len() >= fw.max_candidates {
                capped = true;
                break;
            }
            let mut server = fw.base_server_flags.clone();
            let mut bench = fw.benchmark_flags.clone();
            for ((name, values, is_server), &pos) in axes.iter().zip(&odometer) {
                if let Some(v) = values.get(pos) {
                    let target = if *is_server { &mut server } else { &mut bench };
                    target.insert((*name).clone(), v.clone());
                }
            }
            if !push(server, bench, &mut seen)? {
                duplicates_skipped += 1;
            }
            // Advance: last axis fastest.
            let mut axis = axes.len();
            loop {
                if axis == 0 {
                    break 'outer;
                }
                axis -= 1;
                odometer[axis] += 1;
                if odometer[axis] < axes[axis].1.len() {
                    break;
                }
                odometer[axis] = 0;
            }
        }
    }
    Ok(FrameworkCandidates {
        framework: fw.framework,
        candidates,
        duplicates_skipped,
        combinations_total,
        capped,
    })
}
