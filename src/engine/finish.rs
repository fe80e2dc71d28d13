//! The final report's view (ARCHITECTURE.md, *Stop conditions and the final report*): fixed table,
//! post-patch table, winner commands, evidence paths, changed files, tests, and whether SGLang
//! reached SOTA.

use super::{Engine, EngineError};
use crate::bench::{BenchRow, RunStatus};
use crate::campaign::ledger::md_cell;
use crate::framework::Framework;
use crate::report::{
    self, round_lines, FinalReportView, FixedRowView, PostRowView, WinnerCommandView,
};

fn fmt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "n/a".into())
}

impl Engine<'_> {
    /// Writes and commits the final report once the campaign has stopped.
    pub(crate) fn finish(&mut self) -> Result<(), EngineError> {
        self.progress.step("final report");
        let rows = self.read_rows()?;
        let view = final_view(self, &rows);
        let text = report::render_final_report(&view)?;
        self.write_report(&self.paths.final_report(), &text)?;
        self.save_state()?;
        let reason = self
            .state
            .stop
            .as_ref()
            .map(|s| s.reason.clone())
            .unwrap_or_default();
        self.commit(&format!("sota final: {reason}"))?;
        Ok(())
    }
}

/// Files under the run directory whose repository path matches `pred`, sorted.
fn run_files(engine: &Engine<'_>, pred: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![engine.paths.root()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(&engine.checkout) {
                let rel = rel.display().to_string();
                if pred(&rel) {
                    out.push(rel);
                }
            }
        }
    }
    out.sort();
    out
}

/// Builds the final report view from the state and rows.
pub fn final_view(engine: &Engine<'_>, rows: &[BenchRow]) -> FinalReportView {
    let c = &engine.campaign;
    let s = &engine.state;
    let metric = c.metric;
    let join = |v: Vec<String>| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    let mut fixed_rows = Vec::new();
    for sc in &c.scenarios {
        for f in c.frameworks() {
            for r in rows
                .iter()
                .filter(|r| r.round == 0 && r.framework == f && r.scenario() == sc.name)
            {
                fixed_rows.push(FixedRowView {
                    scenario: md_cell(&sc.name),
                    framework: f.display_name().into(),
                    candidate: md_cell(&r.candidate_id),
                    status: r.status.to_string(),
                    sla: match (r.status, r.sla.passed) {
                        (RunStatus::Ok, Some(true)) => "pass".into(),
                        _ => "fail".into(),
                    },
                    value: fmt(metric.value(&r.metrics)),
                    ttft: fmt(r.metrics.p50_ttft_ms),
                    tpot: fmt(r.metrics.p50_tpot_ms),
                });
            }
        }
    }
    let post_rows = c
        .scenarios
        .iter()
        .map(|sc| {
            let best = s.best_sglang.iter().find(|b| b.scenario == sc.name);
            let gap = s.gaps.iter().find(|g| g.scenario == sc.name);
            let leader_value = gap.and_then(|g| g.leader_value);
            PostRowView {
                scenario: md_cell(&sc.name),
                sglang: fmt(best.map(|b| b.value)),
                round: best
                    .map(|b| b.round.to_string())
                    .unwrap_or_else(|| "-".into()),
                commit: best
                    .and_then(|b| b.commit.as_deref())
                    .map(|c| c.get(..10).unwrap_or(c).to_string())
                    .unwrap_or_else(|| "baseline".into()),
                leader: md_cell(gap.and_then(|g| g.leader.as_deref()).unwrap_or("none")),
                leader_value: fmt(leader_value),
                gap: match (best.map(|b| b.value), leader_value) {
                    (Some(a), Some(b)) if b > 0.0 => format!("{:+.2}%", (a / b - 1.0) * 100.0),
                    _ => "n/a".into(),
                },
            }
        })
        .collect();
    let mut changed: Vec<String> = s
        .rounds
        .iter()
        .flat_map(|r| r.changed_files.iter().cloned())
        .collect();
    changed.sort();
    changed.dedup();
    let stop = s.stop.clone();
    FinalReportView {
        campaign_id: c.campaign_id.clone(),
        model: c.model.clone(),
        hardware: c.hardware.clone(),
        reached_sota: stop.as_ref().is_some_and(|s| s.reached_sota),
        stop_reason: stop
            .as_ref()
            .map(|s| s.reason.clone())
            .unwrap_or_else(|| "not stopped".into()),
        last_round: stop.as_ref().map(|s| s.after_round).unwrap_or(0),
        branch: s.branch.clone(),
        final_commit: engine.git.head_commit().unwrap_or_default(),
        workload: c.workload_line(),
        sla: c.sla_line(),
        selected: join(
            c.competitors
                .iter()
                .map(|f| f.display_name().to_string())
                .collect(),
        ),
        excluded: join(
            c.excluded
                .iter()
                .map(|f| f.display_name().to_string())
                .collect(),
        ),
        unsupported: join(
            c.unsupported
                .iter()
                .map(|(f, w)| format!("{} ({w})", f.display_name()))
                .collect(),
        ),
        metric: metric.label().into(),
        fixed_rows,
        post_rows,
        rounds: round_lines(s),
        winners: s
            .winners
            .iter()
            .map(|w| WinnerCommandView {
                framework: Framework::from_alias(&w.framework)
                    .map(|f| f.display_name().to_string())
                    .unwrap_or_else(|| w.framework.clone()),
                scenario: w.scenario.clone(),
                candidate: w.candidate_id.clone(),
                server_command: w.server_command.clone().unwrap_or_default(),
                benchmark_command: w.benchmark_command.clone().unwrap_or_default(),
            })
            .collect(),
        history_paths: vec![engine.paths.repo_rel("history/model-pr-history-notes.md")],
        profile_paths: run_files(engine, &|p| p.contains("/profiles/")),
        layer_paths: run_files(engine, &|p| p.ends_with("layer-pipeline.md")),
        ncu_paths: run_files(engine, &|p| p.contains("/kernel/ncu-digests/")),
        changed_files: changed,
        tests: s.tests.clone(),
    }
}
