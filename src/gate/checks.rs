//! Deterministic contract checks (ARCHITECTURE.md, *The review gate*). Each has a stable id, a
//! pass/fail and a reason a person can act on.

use super::agent::AgentReport;
use super::config::GateConfig;
use super::evidence::RoundEvidence;
use crate::bench::BenchRow;
use serde::{Deserialize, Serialize};

/// The result of one contract check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub id: String,
    pub passed: bool,
    pub reason: String,
}

impl CheckResult {
    fn new(id: &str, passed: bool, reason: impl Into<String>) -> CheckResult {
        CheckResult {
            id: id.to_string(),
            passed,
            reason: reason.into(),
        }
    }
}

/// Runs every contract check on the round.
pub fn contract_checks(ev: &RoundEvidence, cfg: &GateConfig) -> Vec<CheckResult> {
    let mut out = vec![
        check_branch(ev),
        check_clean(ev),
        check_plan(ev),
        check_runtime_state(ev, cfg),
        check_secrets(ev),
    ];
    out.extend(agent_checks(ev.agent.as_ref()));
    let round_dir = format!("rounds/round-{}", ev.round);
    if ev.agent_failure().is_some() {
        // Nothing was measured: only what the failed round itself must leave behind.
        out.push(check_file_changed(
            ev,
            "files.round_prompt",
            &format!("{round_dir}/prompt.md"),
        ));
        out.push(check_attempt_ledger(ev));
        return out;
    }
    for (id, rel) in [
        ("files.round_prompt", format!("{round_dir}/prompt.md")),
        ("files.round_summary", format!("{round_dir}/summary.md")),
        (
            "files.checkpoint",
            "humanize/model-loop-checkpoint.md".to_string(),
        ),
        ("files.lineage", "humanize/lineage.jsonl".to_string()),
        ("files.candidates", "benchmark/candidates.jsonl".to_string()),
    ] {
        out.push(check_file_changed(ev, id, &rel));
    }
    out.push(check_contract(ev));
    out.push(check_row_workload(ev));
    out.push(check_revalidation(ev));
    if ev.behind_at_start {
        out.push(check_profiles(ev, &round_dir));
        out.push(check_file_changed(
            ev,
            "evidence.root_cause",
            "analysis/root-cause.md",
        ));
        out.push(check_file_changed(
            ev,
            "evidence.layer_pipeline",
            "analysis/layer-pipeline.md",
        ));
    }
    if let Some(h) = &ev.history {
        out.push(check_history(h));
    }
    out.push(check_attempt_ledger(ev));
    out.push(check_optimization_ledger(ev, cfg));
    out.push(check_patch_claim(ev));
    out
}

/// The agent checks of a round (none when the round has no agent record).
pub fn agent_checks(agent: Option<&AgentReport>) -> Vec<CheckResult> {
    let Some(a) = agent else {
        return Vec::new();
    };
    let ids = [
        "agent.completed",
        "agent.allowed_paths",
        "agent.no_credentials",
    ];
    ids.iter()
        .map(|id| match &a.failure {
            Some(f) if f.check_id() == *id => CheckResult {
                id: id.to_string(),
                passed: false,
                reason: f.describe(),
            },
            Some(_) if *id != "agent.completed" => CheckResult {
                id: id.to_string(),
                passed: true,
                reason: "not reached: the agent round failed earlier".into(),
            },
            Some(f) => CheckResult {
                id: id.to_string(),
                passed: false,
                reason: f.describe(),
            },
            None => CheckResult {
                id: id.to_string(),
                passed: true,
                reason: match *id {
                    "agent.completed" => {
                        format!(
                            "agent {} in {:.0}s; {}",
                            a.outcome,
                            a.duration_secs,
                            a.usage.describe()
                        )
                    }
                    "agent.allowed_paths" => {
                        "only SGLang source and the round summary changed".into()
                    }
                    _ => "no credentials in the agent's changes".into(),
                },
            },
        })
        .collect()
}

/// The history notes are committed and every citation in them still checks out: a round
/// must not drop them or add history the checkout does not have.
fn check_history(h: &super::evidence::HistoryEvidence) -> CheckResult {
    const ID: &str = "evidence.history_notes";
    if !h.notes_present {
        return CheckResult::new(
            ID,
            false,
            "the history notes (history/model-pr-history.json) are missing",
        );
    }
    if h.unverified.is_empty() {
        CheckResult::new(
            ID,
            true,
            format!(
                "history notes present; {} citation(s) verified",
                h.citations
            ),
        )
    } else {
        CheckResult::new(
            ID,
            false,
            format!(
                "{} history citation(s) do not check out: {}",
                h.unverified.len(),
                preview(&h.unverified)
            ),
        )
    }
}

fn check_branch(ev: &RoundEvidence) -> CheckResult {
    match &ev.current_branch {
        Some(b) if *b == ev.campaign_branch => CheckResult::new(
            "git.campaign_branch",
            true,
            format!("on campaign branch `{b}`"),
        ),
        Some(b) => CheckResult::new(
            "git.campaign_branch",
            false,
            format!(
                "checked out `{b}`, expected campaign branch `{}`",
                ev.campaign_branch
            ),
        ),
        None => CheckResult::new(
            "git.campaign_branch",
            false,
            format!("detached HEAD, expected `{}`", ev.campaign_branch),
        ),
    }
}

fn check_clean(ev: &RoundEvidence) -> CheckResult {
    if ev.uncommitted_paths.is_empty() {
        CheckResult::new("git.clean", true, "no uncommitted changes")
    } else {
        CheckResult::new(
            "git.clean",
            false,
            format!(
                "{} uncommitted path(s): {}",
                ev.uncommitted_paths.len(),
                preview(&ev.uncommitted_paths)
            ),
        )
    }
}

fn check_plan(ev: &RoundEvidence) -> CheckResult {
    match (&ev.plan_digest_at_start, &ev.plan_digest_now) {
        (Some(a), Some(b)) if a == b => CheckResult::new(
            "plan.unchanged",
            true,
            "plan file unchanged since the start",
        ),
        (Some(_), Some(_)) => CheckResult::new(
            "plan.unchanged",
            false,
            "the plan file changed after the loop started",
        ),
        (Some(_), None) => CheckResult::new("plan.unchanged", false, "the plan file was removed"),
        (None, _) => CheckResult::new(
            "plan.unchanged",
            false,
            "no plan digest was recorded at the start of the loop",
        ),
    }
}

fn check_runtime_state(ev: &RoundEvidence, cfg: &GateConfig) -> CheckResult {
    let offending: Vec<String> = ev
        .tracked_paths
        .iter()
        .filter(|p| {
            p.split('/')
                .any(|part| cfg.runtime_state_dirs.iter().any(|d| d == part))
        })
        .cloned()
        .collect();
    if offending.is_empty() {
        CheckResult::new(
            "git.no_runtime_state",
            true,
            format!("no {} state tracked", cfg.runtime_state_dirs.join(" / ")),
        )
    } else {
        CheckResult::new(
            "git.no_runtime_state",
            false,
            format!("runtime state tracked in git: {}", preview(&offending)),
        )
    }
}

/// Credentials in the round's added text: token shapes and, by value, every secret
/// configured for this process (the same set every writer scrubs with).
fn check_secrets(ev: &RoundEvidence) -> CheckResult {
    let secrets = crate::secrets::SecretSet::from_default_env();
    let hits: Vec<String> = ev
        .added_text
        .iter()
        .filter_map(|c| {
            let kinds = secrets.find(&c.text);
            (!kinds.is_empty()).then(|| format!("{} ({})", c.path, kinds.join(", ")))
        })
        .collect();
    if hits.is_empty() {
        CheckResult::new(
            "secrets.none",
            true,
            format!(
                "{} changed file(s) scanned, no credentials",
                ev.added_text.len()
            ),
        )
    } else {
        CheckResult::new(
            "secrets.none",
            false,
            format!("credentials committed in {}", preview(&hits)),
        )
    }
}

fn check_file_changed(ev: &RoundEvidence, id: &str, rel: &str) -> CheckResult {
    let full = ev.run_path(rel);
    let exists = ev.tracked_paths.contains(&full);
    let changed = ev.changed_paths.contains(&full);
    match (exists, changed) {
        (true, true) => CheckResult::new(id, true, format!("`{rel}` present and updated")),
        (true, false) => {
            CheckResult::new(id, false, format!("`{rel}` was not updated in this round"))
        }
        (false, _) => CheckResult::new(id, false, format!("`{rel}` is missing")),
    }
}

fn check_profiles(ev: &RoundEvidence, round_dir: &str) -> CheckResult {
    let prefix = ev.run_path(&format!("{round_dir}/profiles/"));
    let tables = ev
        .changed_paths
        .iter()
        .filter(|p| p.starts_with(&prefix) && p.ends_with(".md"))
        .count();
    if tables > 0 {
        CheckResult::new(
            "evidence.profiles",
            true,
            format!("{tables} profiler table file(s) under `{round_dir}/profiles/`"),
        )
    } else {
        CheckResult::new(
            "evidence.profiles",
            false,
            format!("SGLang was behind but `{round_dir}/profiles/` has no profiler tables"),
        )
    }
}

fn check_contract(ev: &RoundEvidence) -> CheckResult {
    match (&ev.baseline_contract, &ev.current_contract) {
        (Some(a), Some(b)) if a == b => CheckResult::new(
            "contract.unchanged",
            true,
            "workload, SLA and competitor commands match the fixed baseline",
        ),
        (Some(_), Some(_)) => CheckResult::new(
            "contract.unchanged",
            false,
            "workload, SLA or competitor commands differ from the fixed baseline",
        ),
        (None, _) => CheckResult::new(
            "contract.unchanged",
            false,
            "the fixed baseline contract is missing",
        ),
        (Some(_), None) => CheckResult::new(
            "contract.unchanged",
            false,
            "the benchmark contract file was removed",
        ),
    }
}

/// The parts of a row's workload and SLA that must never move after the baseline.
fn row_shape(row: &BenchRow) -> String {
    let w = &row.workload;
    format!(
        "kind={:?} dataset={:?} in={:?} out={:?} prompts={:?} rate={:?} conc={:?} endpoint={:?} sla=({:?},{:?},{:?},{:?})",
        w.kind,
        w.dataset_path,
        w.input_len,
        w.output_len,
        w.num_prompts,
        w.request_rate.map(|r| r.to_string()),
        w.max_concurrency,
        w.endpoint,
        row.sla.max_p50_ttft_ms,
        row.sla.max_p50_tpot_ms,
        row.sla.min_success_rate,
        row.sla.max_p50_e2e_ms
    )
}

fn check_row_workload(ev: &RoundEvidence) -> CheckResult {
    let mut drift = Vec::new();
    for row in &ev.round_rows {
        let base = ev
            .baseline_rows
            .iter()
            .find(|b| b.scenario() == row.scenario() && b.framework == row.framework)
            .or_else(|| {
                ev.baseline_rows
                    .iter()
                    .find(|b| b.scenario() == row.scenario())
            });
        match base {
            Some(b) if row_shape(b) == row_shape(row) => {}
            Some(_) => drift.push(format!("{} `{}`", row.scenario(), row.candidate_id)),
            None => drift.push(format!("unknown scenario `{}`", row.scenario())),
        }
    }
    if drift.is_empty() {
        CheckResult::new(
            "contract.row_workload",
            true,
            format!(
                "{} revalidation row(s) use the baseline workload and SLA",
                ev.round_rows.len()
            ),
        )
    } else {
        CheckResult::new(
            "contract.row_workload",
            false,
            format!(
                "rows with a workload or SLA unlike the baseline: {}",
                preview(&drift)
            ),
        )
    }
}

fn check_revalidation(ev: &RoundEvidence) -> CheckResult {
    let id = "revalidation.rows";
    let Some(commit) = ev.measured_commit.as_deref() else {
        return CheckResult::new(
            id,
            false,
            "no measured SGLang commit recorded for this round",
        );
    };
    let mine: Vec<&BenchRow> = ev
        .round_rows
        .iter()
        .filter(|r| r.round == ev.round && r.commit.as_deref() == Some(commit) && !r.smoke)
        .collect();
    let mut scenarios: Vec<&str> = ev.baseline_rows.iter().map(|r| r.scenario()).collect();
    scenarios.sort_unstable();
    scenarios.dedup();
    let missing: Vec<String> = scenarios
        .iter()
        .filter(|s| !mine.iter().any(|r| r.scenario() == **s))
        .map(|s| s.to_string())
        .collect();
    let short = commit.get(..10).unwrap_or(commit);
    if mine.is_empty() {
        CheckResult::new(
            id,
            false,
            format!(
                "no revalidation rows for round {} at commit {short}",
                ev.round
            ),
        )
    } else if !missing.is_empty() {
        CheckResult::new(
            id,
            false,
            format!("revalidation missing scenario(s): {}", missing.join(", ")),
        )
    } else {
        CheckResult::new(
            id,
            true,
            format!("{} revalidation row(s) at commit {short}", mine.len()),
        )
    }
}

fn check_attempt_ledger(ev: &RoundEvidence) -> CheckResult {
    if ev.attempt_rows_after > ev.attempt_rows_before {
        CheckResult::new(
            "ledger.attempt_appended",
            true,
            format!(
                "attempt ledger grew from {} to {} row(s)",
                ev.attempt_rows_before, ev.attempt_rows_after
            ),
        )
    } else {
        CheckResult::new(
            "ledger.attempt_appended",
            false,
            format!(
                "attempt ledger has {} row(s), none appended this round",
                ev.attempt_rows_after
            ),
        )
    }
}

fn check_optimization_ledger(ev: &RoundEvidence, cfg: &GateConfig) -> CheckResult {
    let id = "ledger.optimization_justified";
    if ev.optimization_rows_after < ev.optimization_rows_before {
        return CheckResult::new(id, false, "optimization ledger rows were removed");
    }
    if ev.optimization_rows_after == ev.optimization_rows_before {
        return CheckResult::new(id, true, "no optimization row added");
    }
    let all_ok = !ev.round_rows.is_empty()
        && ev
            .round_rows
            .iter()
            .all(|r| r.status == crate::bench::RunStatus::Ok && r.sla.passed == Some(true));
    match ev.geomean_improvement_pct {
        Some(g) if g >= cfg.noise_threshold_pct && all_ok => CheckResult::new(
            id,
            true,
            format!("optimization row backed by a measured {g:+.2}% geomean improvement"),
        ),
        Some(g) => CheckResult::new(
            id,
            false,
            format!(
                "optimization row added but the improvement is {g:+.2}% (needs >= {:.2}% with every revalidation row ok and SLA-passing)",
                cfg.noise_threshold_pct
            ),
        ),
        None => CheckResult::new(
            id,
            false,
            "optimization row added without a measured improvement",
        ),
    }
}

fn check_patch_claim(ev: &RoundEvidence) -> CheckResult {
    let sources = ev.source_changes();
    match (ev.claims_patch, sources.is_empty()) {
        (true, false) => CheckResult::new(
            "patch.source_changed",
            true,
            format!("patch touches {} SGLang file(s)", sources.len()),
        ),
        (true, true) => CheckResult::new(
            "patch.source_changed",
            false,
            "the summary claims a patch but no SGLang source changed",
        ),
        (false, true) => CheckResult::new("patch.source_changed", true, "no patch claimed"),
        (false, false) => CheckResult::new(
            "patch.source_changed",
            true,
            format!(
                "{} SGLang file(s) changed without a PATCH line in the summary",
                sources.len()
            ),
        ),
    }
}

fn preview(items: &[String]) -> String {
    let mut s: Vec<String> = items.iter().take(5).map(|p| format!("`{p}`")).collect();
    if items.len() > 5 {
        s.push(format!("and {} more", items.len() - 5));
    }
    s.join(", ")
}
