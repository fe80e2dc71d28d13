//! Phase 0 (start), Phase 1 (fixed fair benchmark, exactly once) and Phase 2 (plan).

use super::{io_err, CandidateSpec, Engine, EngineError, RunTag};
use crate::bench::command::client_long_flags;
use crate::bench::help_flags::validate;
use crate::bench::row::ValidatedFlags;
use crate::bench::BenchRow;
use crate::campaign::ledger::md_cell;
use crate::campaign::state::{row_key, CampaignState, Phase, StopRecord, WinnerRef};
use crate::framework::Framework;
use crate::report::{prompt_gaps, render_plan, PlanView, PlanWinnerView};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};

/// Lines every campaign checkout ignores: runtime state must never be committed.
pub const GITIGNORE_LINES: [&str; 3] = [".humanize*", ".sota/", "**/*.raw.log"];

/// Hex SHA-256 of a text (plan digests).
pub fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// What the baseline's flag check found for a candidate it lets run.
pub(crate) struct CheckedCandidate {
    flags: ValidatedFlags,
    /// The installed version, as its help capture reported it.
    version: Option<String>,
}

impl<'a> Engine<'a> {
    /// Phase 0: a fresh campaign state, the campaign branch, `.gitignore`, manifest.
    /// Refuses a dirty checkout (only ignored runtime state may be present).
    pub fn begin(&mut self) -> Result<(), EngineError> {
        let dirty = self.git.uncommitted_paths()?;
        if !dirty.is_empty() {
            return Err(EngineError::Refused(format!(
                "the checkout has uncommitted changes ({}); commit or stash them first",
                dirty.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        let branch = self.state.branch.clone();
        self.progress.step(&format!(
            "phase 0: campaign branch `{branch}`, run dir `{}`",
            self.paths.rel
        ));
        self.git.checkout_new_or_existing(&branch)?;
        let gi = self.checkout.join(".gitignore");
        let mut text = std::fs::read_to_string(&gi).unwrap_or_default();
        for line in GITIGNORE_LINES {
            if !text.lines().any(|l| l.trim() == line) {
                if !text.is_empty() && !text.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str(line);
                text.push('\n');
            }
        }
        std::fs::write(&gi, text).map_err(io_err(&gi))?;
        self.write(&self.paths.manifest(), &self.campaign.manifest_md.clone())?;
        super::setup::save_input(
            &self.paths,
            &super::setup::CampaignInput {
                campaign: self.campaign.clone(),
                candidates: self.candidates.clone(),
            },
        )?;
        self.state.base_commit = self.git.head_commit()?;
        self.save_state()
    }

    /// Builds the initial state of a campaign.
    pub fn initial_state(&self, branch: &str) -> CampaignState {
        let mut s = CampaignState::new(
            &self.campaign.campaign_id,
            &self.campaign.model,
            branch,
            &self.paths.rel,
            "",
        );
        s.tokenizer = self.campaign.tokenizer.clone();
        s.precision = self.campaign.precision.clone();
        s.quantization = self.campaign.quantization.clone();
        s.hardware = self.campaign.hardware.clone();
        s.workload = self.campaign.workload_line();
        s.sla = self.campaign.sla_line();
        s.noise_threshold_pct = Some(self.campaign.noise_threshold_pct);
        s
    }

    /// Whether every candidate has a round-0 row for every scenario.
    pub fn baseline_complete(&self, rows: &[BenchRow]) -> bool {
        let keys: HashSet<String> = rows.iter().filter(|r| r.round == 0).map(row_key).collect();
        self.candidates.iter().all(|c| {
            self.campaign
                .scenarios
                .iter()
                .all(|s| keys.contains(&key_for(c, &s.name, 0, 0)))
        })
    }

    /// Phase 1: every framework's bounded search on every scenario; resumes at the next
    /// missing (candidate, scenario). Candidates sharing a server configuration share one
    /// launch.
    pub(crate) fn phase_baseline(&mut self) -> Result<(), EngineError> {
        self.lane_preflight()?;
        let validated = self.check_flags()?;
        let existing = self.read_rows()?;
        let done: HashSet<String> = existing.iter().map(row_key).collect();
        let total = self.candidates.len();
        // (framework, server command) -> candidates still owing scenarios, first-seen order.
        let mut groups: Vec<Vec<(usize, CandidateSpec, Vec<super::ScenarioSpec>)>> = Vec::new();
        for (i, cand) in self.candidates.iter().enumerate() {
            let missing: Vec<_> = self
                .campaign
                .scenarios
                .iter()
                .filter(|s| !done.contains(&key_for(cand, &s.name, 0, 0)))
                .cloned()
                .collect();
            if missing.is_empty() {
                self.progress.step(&format!(
                    "phase 1: [{}/{total}] {} `{}` already measured",
                    i + 1,
                    cand.framework.display_name(),
                    cand.candidate_id
                ));
                continue;
            }
            let same = groups.iter_mut().find(|g| {
                g.first().is_some_and(|(_, c, _)| {
                    c.framework == cand.framework && c.server_command == cand.server_command
                })
            });
            match same {
                Some(g) => g.push((i, cand.clone(), missing)),
                None => groups.push(vec![(i, cand.clone(), missing)]),
            }
        }
        for group in groups {
            let names: Vec<String> = group
                .iter()
                .map(|(i, c, m)| {
                    format!(
                        "[{}/{total}] `{}` on {} scenario(s)",
                        i + 1,
                        c.candidate_id,
                        m.len()
                    )
                })
                .collect();
            let fw = group
                .first()
                .map(|(_, c, _)| c.framework.display_name())
                .unwrap_or("");
            self.progress.step(&format!(
                "phase 1: {fw} {}{}",
                names.join(", "),
                if group.len() > 1 {
                    " (one server launch)"
                } else {
                    ""
                }
            ));
            let runs: Vec<(CandidateSpec, Vec<super::ScenarioSpec>)> =
                group.into_iter().map(|(_, c, m)| (c, m)).collect();
            let tag = RunTag {
                round: 0,
                commit: None,
                repeat: 0,
            };
            self.measure_shared_with(&runs, &tag, &validated)?;
        }
        let rows = self.read_rows()?;
        if !self.baseline_complete(&rows) {
            return Err(EngineError::Refused(
                "the fixed baseline is incomplete after the search; rerun to resume".into(),
            ));
        }
        self.progress.step("phase 1: summary, winners, fairness");
        self.write_baseline_reports(&rows)?;
        self.state.phase = Phase::BaselineDone;
        self.save_state()?;
        let sha = self.commit(&format!(
            "sota baseline: {} fixed benchmark ({} rows)",
            self.campaign.model,
            rows.iter().filter(|r| r.round == 0).count()
        ))?;
        self.state.baseline_commit = Some(sha);
        self.save_state()?;
        let baseline_rows: Vec<BenchRow> = rows.into_iter().filter(|r| r.round == 0).collect();
        if let Some(reason) =
            crate::gate::decide::unmeasurable_baseline(&baseline_rows, &self.campaign.competitors)
        {
            self.progress.step(&format!(
                "phase 1: the campaign cannot be measured: {reason}"
            ));
            self.state.stop = Some(StopRecord {
                after_round: 0,
                reason,
                reached_sota: false,
                unmeasurable: true,
            });
            self.state.phase = Phase::Stopped;
            return self.finish();
        }
        if let Some(reason) = crate::gate::decide::baseline_stop(&self.state.gaps) {
            self.progress
                .step(&format!("phase 1: stop after the baseline: {reason}"));
            self.state.stop = Some(StopRecord {
                after_round: 0,
                reason: reason.to_string(),
                reached_sota: true,
                unmeasurable: false,
            });
            self.state.phase = Phase::Stopped;
            self.finish()?;
        }
        Ok(())
    }

    /// Captures every framework's help and version (committed under `help/`) and checks
    /// each candidate's server and benchmark flags against them before any launch. A
    /// candidate the installed version cannot parse gets failed rows naming each flag and
    /// is never launched; the others' checked flags are returned by candidate id.
    fn check_flags(&mut self) -> Result<BTreeMap<String, CheckedCandidate>, EngineError> {
        use crate::runner::help::{BENCH_HELP, SERVER_HELP, VERSION};
        self.progress
            .step("phase 1: help snapshots and flag checks against the installed versions");
        let done: HashSet<String> = self.read_rows()?.iter().map(row_key).collect();
        let mut validated = BTreeMap::new();
        for fw in self.campaign.frameworks() {
            let Some(first) = self.candidates.iter().find(|c| c.framework == fw).cloned() else {
                continue;
            };
            let snapshots = self.lane.help_snapshots(&first);
            for (name, text) in &snapshots {
                let p = self
                    .paths
                    .help_dir()
                    .join(format!("{}-{name}", fw.canonical()));
                self.write(&p, text)?;
            }
            let text_of = |name: &str| {
                snapshots
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, t)| t.clone())
            };
            let version = text_of(VERSION)
                .and_then(|t| t.lines().nth(1).map(|l| l.trim().to_string()))
                .filter(|v| !v.is_empty());
            let (server_help, bench_help) = (text_of(SERVER_HELP), text_of(BENCH_HELP));
            let candidates: Vec<CandidateSpec> = self
                .candidates
                .iter()
                .filter(|c| c.framework == fw)
                .cloned()
                .collect();
            for cand in candidates {
                let check = |help: &Option<String>, command: &str| {
                    help.as_deref()
                        .map(|h| validate(&client_long_flags(command), h))
                };
                let server = check(&server_help, &cand.server_command);
                let bench = check(&bench_help, &cand.benchmark_command);
                let problems: Vec<String> = [("server", &server), ("benchmark", &bench)]
                    .iter()
                    .flat_map(|(side, v)| {
                        v.iter()
                            .flat_map(|v| v.problems())
                            .map(move |p| format!("{side}: {p}"))
                    })
                    .collect();
                if problems.is_empty() {
                    validated.insert(
                        cand.candidate_id.clone(),
                        CheckedCandidate {
                            flags: ValidatedFlags {
                                server: server.map(|v| v.validated().to_vec()).unwrap_or_default(),
                                benchmark: bench
                                    .map(|v| v.validated().to_vec())
                                    .unwrap_or_default(),
                            },
                            version: version.clone(),
                        },
                    );
                    continue;
                }
                let reason = format!(
                    "not launched: the installed {}{} cannot parse its command ({})",
                    fw.display_name(),
                    version
                        .as_deref()
                        .map(|v| format!(" ({v})"))
                        .unwrap_or_default(),
                    problems.join("; ")
                );
                self.progress
                    .step(&format!("phase 1: `{}` {reason}", cand.candidate_id));
                let scenarios = self.campaign.scenarios.clone();
                for s in scenarios
                    .iter()
                    .filter(|s| !done.contains(&key_for(&cand, &s.name, 0, 0)))
                {
                    let mut row =
                        cand.failed_row(s, &self.campaign.model, self.campaign.num_prompts);
                    row.failure_reason = Some(reason.clone());
                    row.workload.kind = Some(self.campaign.dataset_kind.clone());
                    row.framework_version = version.clone();
                    self.campaign.sla.apply(&mut row);
                    append_row_at(&self.paths, &row)?;
                }
            }
        }
        Ok(validated)
    }

    /// The lane's own checks (the model's tokenizer) before any server starts.
    pub(crate) fn lane_preflight(&mut self) -> Result<(), EngineError> {
        self.lane
            .preflight()
            .map_err(|e| EngineError::Refused(format!("{e}; no server was started")))
    }

    /// Runs one candidate through the lane, stamping and appending each row as it arrives.
    pub(crate) fn measure(
        &mut self,
        cand: &CandidateSpec,
        scenarios: &[super::ScenarioSpec],
        tag: &RunTag,
    ) -> Result<(), EngineError> {
        self.measure_shared(&[(cand.clone(), scenarios.to_vec())], tag)
    }

    /// Runs candidates sharing one server configuration through the lane (one launch),
    /// stamping and appending each row as it arrives. A scenario the lane never reported
    /// becomes a failed row, never a silent gap.
    pub(crate) fn measure_shared(
        &mut self,
        runs: &[(CandidateSpec, Vec<super::ScenarioSpec>)],
        tag: &RunTag,
    ) -> Result<(), EngineError> {
        self.measure_shared_with(runs, tag, &BTreeMap::new())
    }

    /// As [`Engine::measure_shared`], recording in each row the flags that were checked
    /// against the installed version's help (`validated`, by candidate id).
    fn measure_shared_with(
        &mut self,
        runs: &[(CandidateSpec, Vec<super::ScenarioSpec>)],
        tag: &RunTag,
        validated: &BTreeMap<String, CheckedCandidate>,
    ) -> Result<(), EngineError> {
        let sla = self.campaign.sla.clone();
        let mut seen: Vec<(usize, String)> = Vec::new();
        let mut write_err: Option<EngineError> = None;
        let paths = self.paths.clone();
        let lane_result = {
            let mut on_row = |i: usize, mut row: BenchRow| {
                let Some((cand, _)) = runs.get(i) else {
                    return Err(super::LaneError(format!(
                        "the lane reported unknown run {i}"
                    )));
                };
                row.round = tag.round;
                row.commit = tag.commit.clone();
                row.repeat = tag.repeat;
                row.framework = cand.framework;
                row.candidate_id = cand.candidate_id.clone();
                if let Some(v) = validated.get(&cand.candidate_id) {
                    row.validated_cli_flags = Some(v.flags.clone());
                    if row.framework_version.is_none() {
                        row.framework_version = v.version.clone();
                    }
                }
                sla.apply(&mut row);
                // A run a signal cut short measured nothing: it is redone on resume.
                if let Some(sig) = crate::runner::supervisor::interrupted() {
                    return Err(super::LaneError(format!(
                        "interrupted by {}",
                        crate::runner::supervisor::signal_name(sig)
                    )));
                }
                seen.push((i, row.scenario().to_string()));
                if let Err(e) = append_row_at(&paths, &row) {
                    let msg = e.to_string();
                    write_err = Some(e);
                    return Err(super::LaneError(msg));
                }
                Ok(())
            };
            self.lane.run_shared(runs, tag, &mut on_row)
        };
        if let Some(e) = write_err {
            return Err(e);
        }
        super::check_interrupted()?;
        let reason = match &lane_result {
            Ok(()) => "the bench lane produced no row for this scenario".to_string(),
            Err(e) => e.to_string(),
        };
        for (i, (cand, scenarios)) in runs.iter().enumerate() {
            for s in scenarios
                .iter()
                .filter(|s| !seen.iter().any(|(j, name)| *j == i && *name == s.name))
            {
                let mut row = cand.failed_row(s, &self.campaign.model, self.campaign.num_prompts);
                row.failure_reason = Some(reason.clone());
                row.workload.kind = Some(self.campaign.dataset_kind.clone());
                row.server_command = Some(cand.server_command.clone());
                row.round = tag.round;
                row.commit = tag.commit.clone();
                row.repeat = tag.repeat;
                sla.apply(&mut row);
                append_row_at(&self.paths, &row)?;
            }
        }
        Ok(())
    }

    fn write_baseline_reports(&mut self, rows: &[BenchRow]) -> Result<(), EngineError> {
        use crate::bench::{fairness, rank, summary};
        let base: Vec<BenchRow> = rows.iter().filter(|r| r.round == 0).cloned().collect();
        let metric = self.campaign.metric;
        let best = rank::winners_by(&base, metric);
        let mut winners = Vec::new();
        for f in self.campaign.frameworks() {
            for s in self.scenario_names() {
                if let Some(r) = best.get(&(f, s.clone())) {
                    winners.push(WinnerRef {
                        framework: f.canonical().into(),
                        scenario: s,
                        candidate_id: r.candidate_id.clone(),
                        value: metric.value(&r.metrics),
                        server_command: r.server_command.clone(),
                        benchmark_command: r.benchmark_command.clone(),
                    });
                }
            }
        }
        self.state.winners = winners;
        let decisions = self.gap_decisions(&base, 0);
        self.state.best_sglang = decisions
            .iter()
            .filter_map(|g| {
                let (candidate_id, value) = super::gap::sglang_passing(g)?;
                Some(crate::campaign::state::BestRow {
                    scenario: g.scenario.clone(),
                    candidate_id: candidate_id.to_string(),
                    value,
                    round: 0,
                    commit: None,
                })
            })
            .collect();
        self.state.gaps = decisions.iter().map(super::gap::view).collect();
        self.state.baseline_gaps = self.state.gaps.clone();
        let mut summary_text = summary::render_summary_md(&base, metric);
        summary_text.push_str("\n## Gap decision (fixed baseline)\n\n");
        summary_text.push_str(&crate::bench::gap::render_gap_table_md(&decisions));
        self.write_report(&self.paths.summary(), &summary_text)?;
        self.write_report(
            &self.paths.winning_commands(),
            &summary::render_winning_commands_md(&base, metric),
        )?;
        let report = fairness::diagnose(&base, &self.campaign.competitors, metric);
        let mut fairness_text = fairness::render_fairness_md(&report);
        fairness_text.push_str(&selection_md(&self.campaign));
        self.write_report(&self.paths.fairness(), &fairness_text)?;
        self.write_report(&self.paths.fairness_analysis(), &fairness_text)?;
        self.write(
            &self.paths.contract(),
            &contract_json(&self.campaign, &self.state.winners),
        )?;
        Ok(())
    }

    /// Phase 2: the refined plan, committed; its digest freezes it for the loop.
    pub(crate) fn phase_plan(&mut self) -> Result<(), EngineError> {
        self.progress.step("phase 2: refined plan");
        let c = &self.campaign;
        let join = |v: Vec<String>| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        let view = PlanView {
            campaign_id: c.campaign_id.clone(),
            model: c.model.clone(),
            hardware: c.hardware.clone(),
            branch: self.state.branch.clone(),
            run_dir: self.paths.rel.clone(),
            checkout: self.checkout.display().to_string(),
            workload: c.workload_line(),
            sla: c.sla_line(),
            metric: c.metric.label().into(),
            noise_threshold: format!("{}", c.noise_threshold_pct),
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
                    .map(|(f, why)| format!("{} ({why})", f.display_name()))
                    .collect(),
            ),
            max_rounds: self.opts.gate.max_rounds,
            winners: self
                .state
                .winners
                .iter()
                .map(|w| PlanWinnerView {
                    scenario: md_cell(&w.scenario),
                    framework: w.framework.clone(),
                    candidate: w.candidate_id.clone(),
                    value: w
                        .value
                        .map(|v| format!("{v:.3}"))
                        .unwrap_or_else(|| "n/a".into()),
                    command: md_cell(w.server_command.as_deref().unwrap_or("")),
                })
                .collect(),
            gaps: prompt_gaps(&self.state.gaps),
        };
        let text = render_plan(&view)?;
        self.write(&self.paths.plan(), &text)?;
        self.state.plan_digest = Some(digest(&text));
        self.state.phase = Phase::PlanDone;
        self.save_state()?;
        let sha = self.commit(&format!("sota plan: {}", self.campaign.model))?;
        self.state.plan_commit = Some(sha);
        self.save_state()
    }
}

pub(crate) fn append_row_at(paths: &super::RunPaths, row: &BenchRow) -> Result<(), EngineError> {
    use std::io::Write;
    let p = paths.candidates();
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p)
        .map_err(io_err(&p))?;
    // Commands and log paths name the checkout and executable portably: the rows are
    // committed, and read on GitHub or in a later job's checkout elsewhere.
    let exe = std::env::current_exe().ok();
    let line = super::portable_paths(
        &crate::secrets::redact(&crate::bench::row::to_jsonl_line(row)),
        &paths.checkout,
        exe.as_deref(),
    );
    f.write_all(line.as_bytes()).map_err(io_err(&p))?;
    f.sync_data().map_err(io_err(&p))
}

/// The row key a candidate's run of `scenario` will have.
pub fn key_for(c: &CandidateSpec, scenario: &str, round: u32, repeat: u32) -> String {
    format!(
        "{}|{}|{}|{}|{}",
        c.framework.canonical(),
        c.candidate_id,
        scenario,
        round,
        repeat
    )
}

/// Who was compared and who was left out, appended to the fairness diagnostics.
fn selection_md(c: &super::EngineCampaign) -> String {
    let names = |v: Vec<String>| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    format!(
        "\n## Campaign selection\n\n- Excluded by the user: {}\n- Unsupported: {}\n",
        names(
            c.excluded
                .iter()
                .map(|f| f.display_name().to_string())
                .collect()
        ),
        names(
            c.unsupported
                .iter()
                .map(|(f, w)| format!("{} ({w})", f.display_name()))
                .collect()
        ),
    )
}

/// The fixed contract: workload, SLA and competitor winner commands, as canonical JSON.
pub fn contract_json(c: &super::EngineCampaign, winners: &[WinnerRef]) -> String {
    let competitors: Vec<serde_json::Value> = winners
        .iter()
        .filter(|w| w.framework != Framework::Sglang.canonical())
        .map(|w| {
            serde_json::json!({
                "framework": w.framework, "scenario": w.scenario, "candidate_id": w.candidate_id,
                "server_command": w.server_command, "benchmark_command": w.benchmark_command,
            })
        })
        .collect();
    let v = serde_json::json!({
        "model": c.model,
        "workload": {"dataset_kind": c.dataset_kind, "num_prompts": c.num_prompts, "scenarios": c.scenarios},
        "sla": c.sla,
        "competitor_commands": competitors,
    });
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}
