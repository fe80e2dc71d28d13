//! Fairness diagnostics (ARCHITECTURE.md, *Gap decision, fairness and stagnation*): before a gap is
//! treated as a code bottleneck, SGLang's winner is compared field by field with each selected
//! competitor's winner.
//!
//! A mismatch that could explain who leads is a [`FairnessBlocker`]: the benchmark must be
//! normalised and rerun, and no patch is made. Blocking mismatches are: different GPU
//! model or count, weights (model + revision), tokenizer, precision, quantization, endpoint,
//! sampling, request shape (dataset kind, input/output lengths and their measured p50/p95
//! beyond 2%, prompt count, request rate, max concurrency), KV-cache dtype, CPU offload or
//! resident weights (beyond 5%); and, when they favour the pair's leader, speculative
//! decoding enabled on the leader only, or a prefix-cache hit rate more than 5 points
//! higher on the leader. Other differences (GPU ids, spec-decoding steps and accept length
//! when both use it, scheduler/queue/tokenizer times, memory fraction) are reported as
//! notes: they explain a gap but are each framework's legitimate tuning or outcome.
//! A field recorded on one side only is `unknown` and never blocks.

use super::md::{self, cell, code_cell, MISSING};
use super::rank::{compare_rows, scenarios_in_order, winners_by, RankMetric};
use super::row::BenchRow;
use crate::framework::Framework;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt::Write as _;

/// Relative tolerance for measured request lengths (tokenizers count slightly differently).
const LENGTH_TOLERANCE: f64 = 0.02;
/// Relative tolerance for resident weight size.
const RESIDENCY_TOLERANCE: f64 = 0.05;
/// Prefix-cache hit-rate advantage (absolute, as a fraction) that blocks.
const CACHE_HIT_MARGIN: f64 = 0.05;
/// Relative difference above which a phase time is flagged as different.
const PHASE_TOLERANCE: f64 = 0.10;

/// Whether one field matches between the two winners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Equivalence {
    Equivalent,
    Different,
    /// Not recorded on at least one side.
    Unknown,
}

impl Equivalence {
    fn label(self) -> &'static str {
        match self {
            Equivalence::Equivalent => "yes",
            Equivalence::Different => "no",
            Equivalence::Unknown => "unknown",
        }
    }
}

/// One compared field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldCheck {
    pub field: String,
    pub sglang: String,
    pub competitor: String,
    pub equivalence: Equivalence,
    pub note: String,
    /// The mismatch could explain the leader: normalise and rerun before any patch.
    pub blocks: bool,
}

/// SGLang's winner against one competitor's winner in one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairDiagnosis {
    pub competitor: Framework,
    pub sglang_candidate: String,
    pub competitor_candidate: String,
    /// Which of the two ranks ahead.
    pub leader: Framework,
    pub checks: Vec<FieldCheck>,
}

/// All comparisons of one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioFairness {
    pub scenario: String,
    /// SGLang's winner, if it has an ok + SLA-passing candidate.
    pub sglang_candidate: Option<String>,
    pub pairs: Vec<PairDiagnosis>,
    /// Selected competitors with no ok + SLA-passing candidate in this scenario.
    pub competitors_without_winner: Vec<Framework>,
}

/// A non-equivalent setting that could explain who leads: fix normalisation and rerun;
/// no patch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FairnessBlocker {
    pub scenario: String,
    pub field: String,
    /// The framework that leads the affected pair.
    pub leader: Framework,
    pub detail: String,
}

/// The fairness gate's findings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FairnessReport {
    pub selected_competitors: Vec<Framework>,
    pub scenarios: Vec<ScenarioFairness>,
    pub blockers: Vec<FairnessBlocker>,
    /// OK rows whose measured lengths are off the plan (never winners).
    #[serde(default)]
    pub off_plan: Vec<OffPlanRow>,
}

/// An OK row that did not run the planned workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OffPlanRow {
    pub framework: Framework,
    pub candidate_id: String,
    pub scenario: String,
    pub detail: String,
}

impl FairnessReport {
    /// Whether no blocker was found (a gap may then be treated as a code bottleneck).
    pub fn is_fair(&self) -> bool {
        self.blockers.is_empty()
    }

    /// Blockers of one scenario.
    pub fn blockers_for<'a>(
        &'a self,
        scenario: &'a str,
    ) -> impl Iterator<Item = &'a FairnessBlocker> {
        self.blockers.iter().filter(move |b| b.scenario == scenario)
    }
}

fn show<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| MISSING.to_string(), T::to_string)
}

/// Spelling-insensitive form of a dtype/precision name.
fn canonical_dtype(s: &str) -> String {
    let lower = s.trim().to_ascii_lowercase().replace('-', "_");
    match lower.as_str() {
        "bfloat16" => "bf16".to_string(),
        "float16" | "half" => "fp16".to_string(),
        "float32" | "float" => "fp32".to_string(),
        _ => lower,
    }
}

struct Checker {
    checks: Vec<FieldCheck>,
}

impl Checker {
    fn push(
        &mut self,
        field: &str,
        a: String,
        b: String,
        eq: Equivalence,
        note: String,
        blocks: bool,
    ) {
        self.checks.push(FieldCheck {
            field: field.to_string(),
            sglang: a,
            competitor: b,
            equivalence: eq,
            note,
            blocks,
        });
    }

    /// Exact comparison of a text value after `normalize`.
    fn text(
        &mut self,
        field: &str,
        a: Option<String>,
        b: Option<String>,
        normalize: fn(&str) -> String,
        blocking: bool,
        why: &str,
    ) {
        let (sa, sb) = (show(&a), show(&b));
        match (a, b) {
            (Some(x), Some(y)) if normalize(&x) == normalize(&y) => {
                self.push(field, sa, sb, Equivalence::Equivalent, String::new(), false)
            }
            (Some(_), Some(_)) => self.push(
                field,
                sa,
                sb,
                Equivalence::Different,
                why.to_string(),
                blocking,
            ),
            (None, None) => self.push(
                field,
                sa,
                sb,
                Equivalence::Unknown,
                "not recorded".into(),
                false,
            ),
            _ => self.push(
                field,
                sa,
                sb,
                Equivalence::Unknown,
                "recorded on one side only".into(),
                false,
            ),
        }
    }

    /// Numeric comparison with a relative tolerance.
    fn number(
        &mut self,
        field: &str,
        a: Option<f64>,
        b: Option<f64>,
        rel_tol: f64,
        blocking: bool,
        why: &str,
    ) {
        let fmt = |v: Option<f64>| v.map_or_else(|| MISSING.to_string(), |x| format!("{x}"));
        let (sa, sb) = (fmt(a), fmt(b));
        match (a, b) {
            (Some(x), Some(y)) => {
                let scale = x.abs().max(y.abs());
                let close = scale == 0.0 || (x - y).abs() / scale <= rel_tol;
                if close {
                    self.push(field, sa, sb, Equivalence::Equivalent, String::new(), false)
                } else {
                    self.push(
                        field,
                        sa,
                        sb,
                        Equivalence::Different,
                        why.to_string(),
                        blocking,
                    )
                }
            }
            (None, None) => self.push(
                field,
                sa,
                sb,
                Equivalence::Unknown,
                "not recorded".into(),
                false,
            ),
            _ => self.push(
                field,
                sa,
                sb,
                Equivalence::Unknown,
                "recorded on one side only".into(),
                false,
            ),
        }
    }
}

fn same(s: &str) -> String {
    s.trim().to_string()
}

fn endpoint(s: &str) -> String {
    s.trim().trim_end_matches('/').to_string()
}

fn revision(row: &BenchRow) -> Option<String> {
    ["model_revision", "revision"].iter().find_map(|k| {
        row.extra
            .get(*k)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    })
}

fn weights(row: &BenchRow) -> Option<String> {
    Some(match revision(row) {
        Some(rev) => format!("{}@{rev}", row.model),
        None => row.model.clone(),
    })
}

fn sampling(row: &BenchRow) -> Option<String> {
    let s = row.workload.sampling.as_ref()?;
    Some(format!(
        "temperature={}, top_p={}, ignore_eos={}",
        show(&s.temperature),
        show(&s.top_p),
        show(&s.ignore_eos)
    ))
}

fn compare_pair(sg: &BenchRow, comp: &BenchRow, leader: Framework) -> Vec<FieldCheck> {
    let mut c = Checker { checks: Vec::new() };
    let (hs, hc) = (&sg.hardware, &comp.hardware);
    c.text(
        "GPU model",
        hs.gpu_model.clone(),
        hc.gpu_model.clone(),
        same,
        true,
        "different GPU model",
    );
    c.number(
        "GPU count",
        hs.gpu_count.map(f64::from),
        hc.gpu_count.map(f64::from),
        0.0,
        true,
        "different GPU count",
    );
    c.text(
        "GPU ids",
        hs.visible_devices.clone(),
        hc.visible_devices.clone(),
        same,
        false,
        "different GPU ids on the same GPU model",
    );
    c.text(
        "weights",
        weights(sg),
        weights(comp),
        same,
        true,
        "different model weights or revision",
    );
    c.text(
        "tokenizer",
        sg.tokenizer.clone(),
        comp.tokenizer.clone(),
        same,
        true,
        "different tokenizer",
    );
    c.text(
        "precision",
        sg.precision.clone(),
        comp.precision.clone(),
        canonical_dtype,
        true,
        "different precision",
    );
    c.text(
        "quantization",
        sg.quantization.clone(),
        comp.quantization.clone(),
        canonical_dtype,
        true,
        "different quantization",
    );
    let (ws, wc) = (&sg.workload, &comp.workload);
    c.text(
        "endpoint",
        ws.endpoint.clone(),
        wc.endpoint.clone(),
        endpoint,
        true,
        "different endpoint path",
    );
    c.text(
        "sampling",
        sampling(sg),
        sampling(comp),
        same,
        true,
        "different sampling settings",
    );
    c.text(
        "dataset kind",
        ws.kind.clone(),
        wc.kind.clone(),
        same,
        true,
        "different request shape",
    );
    let len = |v: Option<u64>| v.map(|x| x as f64);
    c.number(
        "input len",
        len(ws.input_len),
        len(wc.input_len),
        0.0,
        true,
        "different request shape",
    );
    c.number(
        "output len",
        len(ws.output_len),
        len(wc.output_len),
        0.0,
        true,
        "different request shape",
    );
    let measured = "measured lengths differ by more than 2%: different request shape (EOS, tokenizer or dataset)";
    c.number(
        "input len p50",
        ws.input_len_p50,
        wc.input_len_p50,
        LENGTH_TOLERANCE,
        true,
        measured,
    );
    c.number(
        "input len p95",
        ws.input_len_p95,
        wc.input_len_p95,
        LENGTH_TOLERANCE,
        true,
        measured,
    );
    c.number(
        "output len p50",
        ws.output_len_p50,
        wc.output_len_p50,
        LENGTH_TOLERANCE,
        true,
        measured,
    );
    c.number(
        "output len p95",
        ws.output_len_p95,
        wc.output_len_p95,
        LENGTH_TOLERANCE,
        true,
        measured,
    );
    c.text(
        "request prompts",
        ws.prompt_digest.clone(),
        wc.prompt_digest.clone(),
        same,
        true,
        "different prompts were sent (prompt digests differ): not the same requests",
    );
    c.number(
        "num prompts",
        len(ws.num_prompts),
        len(wc.num_prompts),
        0.0,
        true,
        "different request shape",
    );
    c.text(
        "request rate",
        ws.request_rate.map(|r| r.to_string()),
        wc.request_rate.map(|r| r.to_string()),
        same,
        true,
        "different request rate",
    );
    c.number(
        "max concurrency",
        len(ws.max_concurrency),
        len(wc.max_concurrency),
        0.0,
        true,
        "different max concurrency",
    );

    spec_decode_checks(&mut c, sg, comp, leader);
    let phase = |r: &BenchRow, f: fn(&super::row::PhaseMetrics) -> Option<f64>| {
        r.phase_metrics.as_ref().and_then(f)
    };
    let phase_note = "explanatory: time outside the forward pass";
    c.number(
        "pre-scheduler ms",
        phase(sg, |p| p.pre_scheduler_ms),
        phase(comp, |p| p.pre_scheduler_ms),
        PHASE_TOLERANCE,
        false,
        phase_note,
    );
    c.number(
        "scheduler ms",
        phase(sg, |p| p.scheduler_ms),
        phase(comp, |p| p.scheduler_ms),
        PHASE_TOLERANCE,
        false,
        phase_note,
    );
    c.number(
        "queue ms",
        phase(sg, |p| p.queue_ms),
        phase(comp, |p| p.queue_ms),
        PHASE_TOLERANCE,
        false,
        phase_note,
    );
    c.number(
        "tokenizer ms",
        phase(sg, |p| p.tokenizer_ms),
        phase(comp, |p| p.tokenizer_ms),
        PHASE_TOLERANCE,
        false,
        phase_note,
    );
    c.number(
        "detokenizer ms",
        phase(sg, |p| p.detokenizer_ms),
        phase(comp, |p| p.detokenizer_ms),
        PHASE_TOLERANCE,
        false,
        phase_note,
    );

    cache_checks(&mut c, sg, comp, leader);
    let mem = |r: &BenchRow| r.memory.clone().unwrap_or_default();
    let (ms, mc) = (mem(sg), mem(comp));
    c.number(
        "GPU memory utilization",
        ms.gpu_memory_utilization,
        mc.gpu_memory_utilization,
        0.02,
        false,
        "explanatory: different KV-cache budget (memory fractions should be pinned)",
    );
    c.text(
        "KV cache dtype",
        ms.kv_cache_dtype.clone(),
        mc.kv_cache_dtype.clone(),
        canonical_dtype,
        true,
        "different KV-cache dtype",
    );
    c.number(
        "CPU offload GB",
        ms.cpu_offload_gb,
        mc.cpu_offload_gb,
        0.0,
        true,
        "different CPU offload",
    );
    c.number(
        "resident weights GB",
        ms.gpu_resident_weight_gb,
        mc.gpu_resident_weight_gb,
        RESIDENCY_TOLERANCE,
        true,
        "different weight residency on the GPU",
    );
    c.checks
}

fn spec_decode_checks(c: &mut Checker, sg: &BenchRow, comp: &BenchRow, leader: Framework) {
    let enabled = |r: &BenchRow| r.spec_decode.as_ref().and_then(|s| s.enabled);
    let (es, ec) = (enabled(sg), enabled(comp));
    let (ss, sc) = (show(&es), show(&ec));
    match (es, ec) {
        (Some(a), Some(b)) if a == b => c.push(
            "spec decoding",
            ss,
            sc,
            Equivalence::Equivalent,
            String::new(),
            false,
        ),
        (Some(a), Some(_)) => {
            let with_spec = if a { Framework::Sglang } else { comp.framework };
            let blocks = with_spec == leader;
            let note = if blocks {
                format!(
                    "only the leader ({}) uses speculative decoding",
                    leader.display_name()
                )
            } else {
                format!(
                    "only {} uses speculative decoding and still trails",
                    with_spec.display_name()
                )
            };
            c.push(
                "spec decoding",
                ss,
                sc,
                Equivalence::Different,
                note,
                blocks,
            )
        }
        (None, None) => c.push(
            "spec decoding",
            ss,
            sc,
            Equivalence::Unknown,
            "not recorded".into(),
            false,
        ),
        _ => c.push(
            "spec decoding",
            ss,
            sc,
            Equivalence::Unknown,
            "recorded on one side only".into(),
            false,
        ),
    }
    let sd = |r: &BenchRow| r.spec_decode.clone().unwrap_or_default();
    let (ds, dc) = (sd(sg), sd(comp));
    if es == Some(true) || ec == Some(true) {
        c.text(
            "spec algorithm",
            ds.algorithm,
            dc.algorithm,
            canonical_dtype,
            false,
            "explanatory: different drafter",
        );
        c.number(
            "spec steps",
            ds.num_steps.map(f64::from),
            dc.num_steps.map(f64::from),
            0.0,
            false,
            "explanatory: different draft depth",
        );
        c.number(
            "accept length",
            ds.mean_accept_length,
            dc.mean_accept_length,
            0.05,
            false,
            "explanatory: drafts accepted at different rates",
        );
    }
}

fn cache_checks(c: &mut Checker, sg: &BenchRow, comp: &BenchRow, leader: Framework) {
    let cache = |r: &BenchRow| r.cache.clone().unwrap_or_default();
    let (cs, cc) = (cache(sg), cache(comp));
    c.text(
        "prefix cache",
        cs.prefix_cache_enabled.map(|b| b.to_string()),
        cc.prefix_cache_enabled.map(|b| b.to_string()),
        same,
        false,
        "explanatory: only a different hit rate changes the work done",
    );
    let pct = md::pct_of_fraction;
    let (hs, hc) = (cs.prefix_cache_hit_rate, cc.prefix_cache_hit_rate);
    match (hs, hc) {
        (Some(a), Some(b)) => {
            let (leader_rate, other_rate) = if leader == Framework::Sglang {
                (a, b)
            } else {
                (b, a)
            };
            if (a - b).abs() <= CACHE_HIT_MARGIN {
                c.push(
                    "prefix cache hit rate",
                    pct(hs),
                    pct(hc),
                    Equivalence::Equivalent,
                    String::new(),
                    false,
                )
            } else if leader_rate > other_rate {
                c.push(
                    "prefix cache hit rate",
                    pct(hs),
                    pct(hc),
                    Equivalence::Different,
                    format!(
                        "the leader ({}) reuses far more cached prefix",
                        leader.display_name()
                    ),
                    true,
                )
            } else {
                c.push(
                    "prefix cache hit rate",
                    pct(hs),
                    pct(hc),
                    Equivalence::Different,
                    "the trailing side has the higher hit rate".into(),
                    false,
                )
            }
        }
        (None, None) => c.push(
            "prefix cache hit rate",
            pct(hs),
            pct(hc),
            Equivalence::Unknown,
            "not recorded".into(),
            false,
        ),
        _ => c.push(
            "prefix cache hit rate",
            pct(hs),
            pct(hc),
            Equivalence::Unknown,
            "recorded on one side only".into(),
            false,
        ),
    }
}

/// Compares SGLang's winner with each selected competitor's winner per scenario (winners
/// as in [`winners_by`], ranked on `metric`).
pub fn diagnose(
    rows: &[BenchRow],
    selected_competitors: &[Framework],
    metric: RankMetric,
) -> FairnessReport {
    let winners = winners_by(rows, metric);
    let competitors: Vec<Framework> = Framework::COMPETITORS
        .into_iter()
        .filter(|fw| selected_competitors.contains(fw))
        .collect();
    let mut scenarios = Vec::new();
    let mut blockers = Vec::new();
    for scenario in scenarios_in_order(rows) {
        let sg = winners.get(&(Framework::Sglang, scenario.clone()));
        let mut pairs = Vec::new();
        let mut without = Vec::new();
        for fw in &competitors {
            let Some(comp) = winners.get(&(*fw, scenario.clone())) else {
                without.push(*fw);
                continue;
            };
            let Some(sg) = sg else { continue };
            let leader = if compare_rows(sg, comp, metric) == Ordering::Less {
                Framework::Sglang
            } else {
                *fw
            };
            let checks = compare_pair(sg, comp, leader);
            for check in checks.iter().filter(|c| c.blocks) {
                blockers.push(FairnessBlocker {
                    scenario: scenario.clone(),
                    field: check.field.clone(),
                    leader,
                    detail: format!(
                        "SGLang `{}`: {} vs {} `{}`: {}; {}",
                        sg.candidate_id,
                        check.sglang,
                        fw.display_name(),
                        comp.candidate_id,
                        check.competitor,
                        check.note
                    ),
                });
            }
            pairs.push(PairDiagnosis {
                competitor: *fw,
                sglang_candidate: sg.candidate_id.clone(),
                competitor_candidate: comp.candidate_id.clone(),
                leader,
                checks,
            });
        }
        scenarios.push(ScenarioFairness {
            scenario,
            sglang_candidate: sg.map(|r| r.candidate_id.clone()),
            pairs,
            competitors_without_winner: without,
        });
    }
    let off_plan = rows
        .iter()
        .filter_map(|r| {
            Some(OffPlanRow {
                framework: r.framework,
                candidate_id: r.candidate_id.clone(),
                scenario: r.scenario().to_string(),
                detail: super::measured::off_plan(r)?,
            })
        })
        .collect();
    FairnessReport {
        selected_competitors: competitors,
        scenarios,
        blockers,
        off_plan,
    }
}

fn names(fws: &[Framework]) -> String {
    if fws.is_empty() {
        return "none".to_string();
    }
    fws.iter()
        .map(|f| f.display_name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Renders `fairness/diagnostics.md`: blockers first, then a table per scenario and
/// competitor (field, SGLang, competitor, equivalent?, note).
pub fn render_fairness_md(report: &FairnessReport) -> String {
    let mut out = String::new();
    out.push_str("# Fairness diagnostics\n\n");
    let _ = writeln!(
        out,
        "- Selected competitors: {}",
        names(&report.selected_competitors)
    );
    out.push_str(
        "- Compared: SGLang's best ok + SLA-passing candidate against each competitor's, per scenario.\n",
    );
    out.push_str(
        "- A blocker is a non-equivalent setting that could explain the leader: fix normalisation and rerun; no patch.\n\n",
    );
    out.push_str("## Blockers\n\n");
    if report.blockers.is_empty() {
        out.push_str("None: no recorded mismatch could explain a leader.\n\n");
    } else {
        out.push_str(&md::header(&["scenario", "field", "leader", "detail"]));
        for b in &report.blockers {
            out.push_str(&md::row(&[
                cell(&b.scenario),
                cell(&b.field),
                b.leader.display_name().to_string(),
                cell(&b.detail),
            ]));
        }
        out.push_str("\nVerdict: fix normalisation and rerun; no patch.\n\n");
    }
    if !report.off_plan.is_empty() {
        let _ = writeln!(
            out,
            "## Rows off the planned workload\n\nMeasured input or output lengths more than {}% off the plan: these rows did not run the fixed workload and never decide a winner.\n",
            super::measured::LENGTH_TOLERANCE_PCT
        );
        out.push_str(&md::header(&[
            "framework",
            "scenario",
            "candidate",
            "measured",
        ]));
        for r in &report.off_plan {
            out.push_str(&md::row(&[
                r.framework.display_name().to_string(),
                cell(&r.scenario),
                code_cell(&r.candidate_id),
                cell(&r.detail),
            ]));
        }
        out.push('\n');
    }
    for s in &report.scenarios {
        let _ = writeln!(out, "## {}\n", cell(&s.scenario));
        let Some(sg) = &s.sglang_candidate else {
            out.push_str("SGLang has no ok + SLA-passing candidate; nothing to compare.\n\n");
            continue;
        };
        for p in &s.pairs {
            let _ = writeln!(
                out,
                "### SGLang {} vs {} {} (leader: {})\n",
                code_cell(sg),
                p.competitor.display_name(),
                code_cell(&p.competitor_candidate),
                p.leader.display_name()
            );
            out.push_str(&md::header(&[
                "field",
                "SGLang",
                p.competitor.display_name(),
                "equivalent?",
                "note",
            ]));
            for c in &p.checks {
                let note = match (c.blocks, c.note.is_empty()) {
                    (true, _) => format!("**blocker**: {}", c.note),
                    (false, true) => String::new(),
                    (false, false) => c.note.clone(),
                };
                out.push_str(&md::row(&[
                    cell(&c.field),
                    cell(&c.sglang),
                    cell(&c.competitor),
                    c.equivalence.label().to_string(),
                    cell(&note),
                ]));
            }
            out.push('\n');
        }
        if !s.competitors_without_winner.is_empty() {
            let _ = writeln!(
                out,
                "No ok + SLA-passing candidate: {}.\n",
                names(&s.competitors_without_winner)
            );
        }
    }
    out
}
