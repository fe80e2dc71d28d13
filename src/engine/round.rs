//! Phase 3: one RLCR round (evidence, prompt, agent, revalidation, then ledgers, gate,
//! report and one round commit in `finalize`). Each step is recorded in the checkpoint so a
//! crash resumes at the step it interrupted, without redoing or duplicating finished work.

use super::{baseline::key_for, io_err, Engine, EngineError, RunPaths, RunTag};
use crate::campaign::state::{row_key, RoundProgress, RoundStep};
use crate::framework::Framework;
use crate::gate::ScenarioGapView;
use crate::report::{self, RoundPromptView};
use std::collections::HashSet;

/// Lines of an agent summary starting with `KEY:`.
pub fn summary_field(summary: &str, key: &str) -> Vec<String> {
    summary
        .lines()
        .filter_map(|l| l.trim().strip_prefix(key))
        .filter_map(|r| r.strip_prefix(':'))
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .collect()
}

/// The round's title: a `TITLE:` line, else the first line under a `## What changed`
/// heading, else the first heading.
pub fn round_title(summary: &str) -> Option<String> {
    if let Some(t) = summary_field(summary, "TITLE").into_iter().next() {
        return Some(t);
    }
    let mut after = false;
    for l in summary.lines().map(str::trim) {
        if l.starts_with('#') {
            after = l
                .trim_start_matches('#')
                .trim()
                .eq_ignore_ascii_case("what changed");
            continue;
        }
        if after && !l.is_empty() {
            return Some(l.to_string());
        }
    }
    summary
        .lines()
        .find(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim().to_string())
        .filter(|t| !t.is_empty())
}

/// The maintainer's note for a round, in the round directory.
pub const MAINTAINER_NOTE_FILE: &str = "maintainer-note.md";

/// Longest maintainer note kept (characters); a longer one is cut with a marker.
pub const MAX_MAINTAINER_NOTE_CHARS: usize = 4000;

/// Records a maintainer's note for `round` of the campaign in `paths` (from
/// `/sota continue <note>` or `--maintainer-note`): committed with the round and quoted in its
/// prompt. Credentials are scrubbed and the note is capped at [`MAX_MAINTAINER_NOTE_CHARS`].
/// A blank note records nothing.
pub fn record_maintainer_note(paths: &RunPaths, round: u32, note: &str) -> Result<(), EngineError> {
    let known = crate::secrets::SecretSet::from_default_env();
    let note = cap_note(known.scrub(note.trim()).trim());
    if note.is_empty() {
        return Ok(());
    }
    let path = paths.round_dir(round).join(MAINTAINER_NOTE_FILE);
    super::write_redacted(&path, &format!("{note}\n"))
}

/// `note` cut to [`MAX_MAINTAINER_NOTE_CHARS`] characters, marked when cut.
pub fn cap_note(note: &str) -> String {
    if note.chars().count() <= MAX_MAINTAINER_NOTE_CHARS {
        return note.to_string();
    }
    let kept: String = note.chars().take(MAX_MAINTAINER_NOTE_CHARS).collect();
    format!("{kept} [note cut at {MAX_MAINTAINER_NOTE_CHARS} characters]")
}

impl<'a> Engine<'a> {
    pub(super) fn round_file(&self, round: u32, name: &str) -> std::path::PathBuf {
        self.paths.round_dir(round).join(name)
    }

    /// Runs (or resumes) the next round to its commit.
    pub(crate) fn run_round(&mut self) -> Result<(), EngineError> {
        let round = self.state.next_round();
        // A round resumed before its agent ran gets the evidence an interruption (or a
        // missing profile command) kept it from: its profiling is done again.
        if self.prepared_without_profiles(round) {
            self.progress
                .step(&format!("round {round}: profiles missing; profiling again"));
            if let Some(start) = self
                .state
                .in_progress
                .as_ref()
                .map(|p| p.start_commit.clone())
            {
                self.undo_unfinished_agent(&start)?;
            }
            self.prepare_round(round)?;
        }
        loop {
            super::check_interrupted()?;
            match self.state.in_progress.as_ref().map(|p| p.step) {
                None => self.prepare_round(round)?,
                Some(RoundStep::Prepared) => self.agent_step(round)?,
                Some(RoundStep::AgentDone) => self.revalidate(round)?,
                Some(RoundStep::Revalidated) => return self.finalize_round(round),
            }
        }
    }

    /// True when round `round` is prepared, SGLang is behind, and its profiles folder holds
    /// no profile: the agent would otherwise be asked to patch without profiler evidence.
    fn prepared_without_profiles(&self, round: u32) -> bool {
        let prepared = self
            .state
            .in_progress
            .as_ref()
            .is_some_and(|p| p.round == round && p.step == RoundStep::Prepared);
        let behind = self.state.gaps.iter().any(|g| g.status.is_behind());
        let profiles = self.paths.round_dir(round).join("profiles");
        let has_files = |dir: &std::path::Path| {
            std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| {
                    e.path().is_file()
                        || std::fs::read_dir(e.path())
                            .into_iter()
                            .flatten()
                            .flatten()
                            .next()
                            .is_some()
                })
        };
        prepared && behind && !has_files(&profiles)
    }

    fn prepare_round(&mut self, round: u32) -> Result<(), EngineError> {
        self.progress
            .step(&format!("round {round}: gap decision and evidence"));
        let behind: Vec<ScenarioGapView> = self
            .state
            .gaps
            .iter()
            .filter(|g| g.status.is_behind())
            .cloned()
            .collect();
        self.agent_ready()?;
        // An agent that cannot start here costs no profiling.
        let agent_can_start = self
            .opts
            .agent
            .as_ref()
            .is_some_and(|a| crate::runner::agent::preflight(a).is_ok());
        let mut evidence = vec![
            self.paths.repo_rel("history/model-pr-history-notes.md"),
            self.paths.repo_rel("benchmark/summary.md"),
            self.paths.repo_rel("benchmark/fairness/diagnostics.md"),
            self.paths.repo_rel("humanize/attempt-ledger.md"),
        ];
        if !behind.is_empty() && agent_can_start {
            evidence.extend(self.profile_round(round, &behind)?);
            // Profiles a signal cut short are not evidence: the step is redone on resume.
            super::check_interrupted()?;
        }
        let last_review = if round > 1 {
            std::fs::read_to_string(self.round_file(round - 1, "review.md")).ok()
        } else {
            None
        };
        let maintainer_note = std::fs::read_to_string(self.round_file(round, MAINTAINER_NOTE_FILE))
            .ok()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty());
        let c = &self.campaign;
        let view = RoundPromptView {
            round,
            model: c.model.clone(),
            hardware: c.hardware.clone(),
            competitors: c
                .competitors
                .iter()
                .map(|f| f.display_name())
                .collect::<Vec<_>>()
                .join(", "),
            checkout: self.checkout.display().to_string(),
            branch: self.state.branch.clone(),
            run_dir: self.paths.rel.clone(),
            plan_path: self.paths.repo_rel("plan.md"),
            summary_path: self
                .paths
                .repo_rel(&format!("{}/summary.md", RunPaths::round_rel(round))),
            workload: c.workload_line(),
            sla: c.sla_line(),
            noise_threshold: format!("{}", c.noise_threshold_pct),
            metric: c.metric.label().into(),
            gaps: report::prompt_gaps(&self.state.gaps),
            evidence,
            research_first: crate::gate::stagnation_required(
                &self.state.improvements(),
                c.noise_threshold_pct,
            ),
            replan: self.state.replan_requested,
            full_alignment: crate::gate::decide::is_full_alignment(round),
            last_review,
            maintainer_note,
            history_quote: std::fs::read_to_string(self.paths.history_notes())
                .ok()
                .map(|md| crate::history::render::prompt_quote(&md)),
        };
        let prompt = report::render_round_prompt(&view)?;
        self.write(&self.round_file(round, "prompt.md"), &prompt)?;
        self.state.in_progress = Some(RoundProgress {
            round,
            step: RoundStep::Prepared,
            start_commit: self.git.head_commit()?,
            measured_commit: None,
            agent_outcome: None,
            agent_left_uncommitted: Vec::new(),
            agent: None,
        });
        self.save_state()
    }

    /// Profiles SGLang and the leading competitor of the slowest scenario; writes the
    /// root-cause and layer-pipeline analyses. Returns the evidence paths.
    fn profile_round(
        &mut self,
        round: u32,
        behind: &[ScenarioGapView],
    ) -> Result<Vec<String>, EngineError> {
        let slow = behind
            .iter()
            .min_by(|a, b| {
                a.status
                    .gap_pct()
                    .unwrap_or(-100.0)
                    .partial_cmp(&b.status.gap_pct().unwrap_or(-100.0))
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .cloned();
        let Some(slow) = slow else {
            return Ok(Vec::new());
        };
        let Some(scenario) = self
            .campaign
            .scenarios
            .iter()
            .find(|s| s.name == slow.scenario)
            .cloned()
        else {
            return Ok(Vec::new());
        };
        let mut targets = Vec::new();
        if let Some(c) = self.sglang_candidate(&scenario.name) {
            targets.push(c);
        }
        let leader_fw = self
            .state
            .winners
            .iter()
            .filter(|w| w.scenario == scenario.name && w.framework != Framework::Sglang.canonical())
            .max_by(|a, b| {
                a.value
                    .partial_cmp(&b.value)
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .cloned();
        if let Some(w) = leader_fw {
            if let Some(c) = self.candidates.iter().find(|c| {
                c.framework.canonical() == w.framework && c.candidate_id == w.candidate_id
            }) {
                targets.push(c.clone());
            }
        }
        let mut paths = Vec::new();
        let mut layer_md = None;
        for cand in &targets {
            self.progress.step(&format!(
                "round {round}: profiling {} `{}` on {}",
                cand.framework.display_name(),
                cand.candidate_id,
                scenario.name
            ));
            let out = self
                .paths
                .round_dir(round)
                .join("profiles")
                .join(cand.framework.canonical());
            std::fs::create_dir_all(&out).map_err(io_err(&out))?;
            match self.lane.profile(cand, &scenario, &out) {
                Ok(files) => {
                    for f in files {
                        if cand.framework == Framework::Sglang
                            && f.file_name().is_some_and(|n| n == "layer-pipeline.md")
                        {
                            layer_md = std::fs::read_to_string(&f).ok();
                        }
                        if let Ok(rel) = f.strip_prefix(&self.checkout) {
                            paths.push(rel.display().to_string());
                        }
                    }
                }
                Err(e) => self
                    .progress
                    .step(&format!("round {round}: profiling failed: {e}")),
            }
        }
        let mut rc = format!(
            "# Root cause (round {round})\n\nSlow scenario: **{}** — {} (leader: {}).\n\nProfiles use the slow scenario's shape: prefill = {} input tokens -> 1 output token; decode = 1 input token -> {} output tokens.\n\n## Profiler tables\n\n",
            scenario.name,
            slow.status.label(),
            slow.leader.as_deref().unwrap_or("none"),
            scenario.input_len,
            scenario.output_len
        );
        for p in &paths {
            rc.push_str(&format!("- `{p}`\n"));
        }
        for p in &paths {
            let abs = self.checkout.join(p);
            if p.ends_with(".md") && !p.ends_with("layer-pipeline.md") {
                if let Ok(t) = std::fs::read_to_string(&abs) {
                    rc.push_str(&format!("\n### `{p}`\n\n{t}\n"));
                }
            }
        }
        if paths.is_empty() {
            rc.push_str("(no profile could be captured this round; see the progress log)\n");
        }
        self.write(&self.paths.root_cause(), &rc)?;
        let lp = match layer_md {
            Some(t) => format!("# Layer pipeline (round {round})\n\n{t}"),
            None => format!(
                "# Layer pipeline (round {round})\n\nThe SGLang profile of this round produced no layer pipeline; the patch must cite kernel-table rows instead.\n"
            ),
        };
        self.write(&self.paths.layer_pipeline(), &lp)?;
        paths.push(self.paths.repo_rel("analysis/root-cause.md"));
        paths.push(self.paths.repo_rel("analysis/layer-pipeline.md"));
        Ok(paths)
    }

    /// The SGLang candidate that won `scenario` in the baseline (else the first SGLang one).
    fn sglang_candidate(&self, scenario: &str) -> Option<super::CandidateSpec> {
        let id = self
            .state
            .winners
            .iter()
            .find(|w| w.framework == Framework::Sglang.canonical() && w.scenario == scenario)
            .map(|w| w.candidate_id.clone());
        self.candidates
            .iter()
            .find(|c| c.framework == Framework::Sglang && Some(&c.candidate_id) == id.as_ref())
            .or_else(|| {
                self.candidates
                    .iter()
                    .find(|c| c.framework == Framework::Sglang)
            })
            .cloned()
    }

    fn revalidate(&mut self, round: u32) -> Result<(), EngineError> {
        let agent_failed = self
            .state
            .in_progress
            .as_ref()
            .and_then(|p| p.agent.as_ref())
            .is_some_and(|a| a.failure.is_some());
        if agent_failed {
            // Nothing changed that could be measured: no GPU time for this round.
            if let Some(p) = self.state.in_progress.as_mut() {
                p.step = RoundStep::Revalidated;
            }
            return self.save_state();
        }
        self.lane_preflight()?;
        let measured = self
            .state
            .in_progress
            .as_ref()
            .and_then(|p| p.measured_commit.clone());
        let done: HashSet<String> = self.read_rows()?.iter().map(row_key).collect();
        let scenarios = self.campaign.scenarios.clone();
        // One launch per SGLang candidate, covering every scenario it still owes.
        let mut groups: Vec<(super::CandidateSpec, Vec<super::ScenarioSpec>)> = Vec::new();
        for s in &scenarios {
            let Some(cand) = self.sglang_candidate(&s.name) else {
                continue;
            };
            if done.contains(&key_for(&cand, &s.name, round, 0)) {
                continue;
            }
            match groups
                .iter_mut()
                .find(|(c, _)| c.candidate_id == cand.candidate_id)
            {
                Some((_, v)) => v.push(s.clone()),
                None => groups.push((cand, vec![s.clone()])),
            }
        }
        for (cand, owed) in groups {
            self.progress.step(&format!(
                "round {round}: revalidating SGLang `{}` on {}",
                cand.candidate_id,
                owed.iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            let tag = RunTag {
                round,
                commit: measured.clone(),
                repeat: 0,
            };
            self.measure(&cand, &owed, &tag)?;
        }
        // A gap inside the noise threshold is decided by repeat runs of SGLang and of every
        // competitor's winner in this round, until each side has the runs the rule asks for.
        let gaps = self.gap_decisions(&self.read_rows()?, round);
        for g in gaps.iter().filter(|g| {
            matches!(
                g.decision,
                crate::bench::gap::GapDecision::NeedsRepeats { .. }
            )
        }) {
            let Some(s) = scenarios.iter().find(|s| s.name == g.scenario) else {
                continue;
            };
            let mut cands: Vec<super::CandidateSpec> =
                self.sglang_candidate(&s.name).into_iter().collect();
            for w in
                self.state.winners.iter().filter(|w| {
                    w.scenario == s.name && w.framework != Framework::Sglang.canonical()
                })
            {
                if let Some(c) = self.candidates.iter().find(|c| {
                    c.framework.canonical() == w.framework && c.candidate_id == w.candidate_id
                }) {
                    cands.push(c.clone());
                }
            }
            for repeat in 0..self.opts.tie_runs {
                for cand in &cands {
                    let done: HashSet<String> = self.read_rows()?.iter().map(row_key).collect();
                    if done.contains(&key_for(cand, &s.name, round, repeat)) {
                        continue;
                    }
                    self.progress.step(&format!(
                        "round {round}: near-tie on {}: run {} of {} `{}`",
                        s.name,
                        repeat + 1,
                        cand.framework.display_name(),
                        cand.candidate_id
                    ));
                    let tag = RunTag {
                        round,
                        commit: if cand.framework == Framework::Sglang {
                            measured.clone()
                        } else {
                            None
                        },
                        repeat,
                    };
                    self.measure(cand, std::slice::from_ref(s), &tag)?;
                }
            }
        }
        if let Some(p) = self.state.in_progress.as_mut() {
            p.step = RoundStep::Revalidated;
        }
        self.save_state()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_maintainer_note_is_recorded_trimmed_redacted_and_capped() {
        let dir = tempfile::tempdir().unwrap();
        let paths = RunPaths::from_rel(dir.path(), "runs/x");
        let token = format!("ghp_{}", "a1B2c3D4e5".repeat(4));
        record_maintainer_note(&paths, 2, &format!("  use this token {token} please \n")).unwrap();
        let kept = std::fs::read_to_string(paths.round_dir(2).join(MAINTAINER_NOTE_FILE)).unwrap();
        assert!(
            kept.starts_with("use this token ") && kept.ends_with(" please\n"),
            "{kept}"
        );
        assert!(!kept.contains(&token), "{kept}");

        record_maintainer_note(&paths, 3, " \n ").unwrap();
        assert!(!paths.round_dir(3).join(MAINTAINER_NOTE_FILE).exists());

        let long = "é".repeat(MAX_MAINTAINER_NOTE_CHARS + 10);
        record_maintainer_note(&paths, 4, &long).unwrap();
        let kept = std::fs::read_to_string(paths.round_dir(4).join(MAINTAINER_NOTE_FILE)).unwrap();
        assert!(kept.starts_with(&"é".repeat(MAX_MAINTAINER_NOTE_CHARS)));
        assert!(
            kept.ends_with(" [note cut at 4000 characters]\n"),
            "{}",
            &kept[kept.len() - 40..]
        );
        assert_eq!(cap_note("short"), "short");
    }
}
