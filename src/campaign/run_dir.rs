//! The run directory (ARCHITECTURE.md, *Run directory*): every artifact path of a campaign, in one
//! place.
//!
//! Paths are relative to the repository root (`runs/YYYYMMDD_<model_slug>_sota_humanize/...`)
//! so the same value names files on the campaign branch, in a local checkout, and in
//! reports. The name depends only on the campaign's model slug and the date passed in.

use super::resolve::ResolvedCampaign;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Folder holding every campaign's run directory.
pub const RUNS_ROOT: &str = "runs";

/// A campaign's run directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RunDir {
    /// Relative path, `runs/YYYYMMDD_<model_slug>_sota_humanize`.
    pub root: PathBuf,
}

/// The files of one RLCR round, under `humanize/rounds/round-NNN/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundPaths {
    pub dir: PathBuf,
}

impl RoundPaths {
    /// The prompt the coding agent received.
    pub fn prompt_md(&self) -> PathBuf {
        self.dir.join("prompt.md")
    }
    /// The agent's own summary of the round.
    pub fn agent_summary_md(&self) -> PathBuf {
        self.dir.join("summary.md")
    }
    /// The prompt sent to the reviewer.
    pub fn review_prompt_md(&self) -> PathBuf {
        self.dir.join("review-prompt.md")
    }
    /// The reviewer's verdict, embedded verbatim in the next round's prompt.
    pub fn review_result_md(&self) -> PathBuf {
        self.dir.join("review-result.md")
    }
    /// The per-round PR report.
    pub fn report_md(&self) -> PathBuf {
        self.dir.join("report.md")
    }
}

impl RunDir {
    /// The run directory of a campaign started on `date`.
    pub fn for_campaign(campaign: &ResolvedCampaign, date: NaiveDate) -> RunDir {
        RunDir::from_slug(&campaign.model_slug, date)
    }

    /// The run directory for a model slug and date (the slug must already be path-safe).
    pub fn from_slug(model_slug: &str, date: NaiveDate) -> RunDir {
        RunDir {
            root: Path::new(RUNS_ROOT).join(format!(
                "{}_{model_slug}_sota_humanize",
                date.format("%Y%m%d")
            )),
        }
    }

    /// The directory name alone (`20250101_llama_3_1_8b_instruct_sota_humanize`).
    pub fn name(&self) -> String {
        self.root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn at(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn manifest(&self) -> PathBuf {
        self.at("manifest.md")
    }
    /// Framework `--help` snapshots (server and benchmark CLIs).
    pub fn help_dir(&self) -> PathBuf {
        self.at("help")
    }
    pub fn benchmark_dir(&self) -> PathBuf {
        self.at("benchmark")
    }
    /// One normalized row per candidate, failures kept.
    pub fn candidates_jsonl(&self) -> PathBuf {
        self.at("benchmark/candidates.jsonl")
    }
    pub fn summary_md(&self) -> PathBuf {
        self.at("benchmark/summary.md")
    }
    pub fn winning_commands_md(&self) -> PathBuf {
        self.at("benchmark/winning-commands.md")
    }
    /// Fairness fields of the fixed baseline.
    pub fn fairness_diagnostics_md(&self) -> PathBuf {
        self.at("benchmark/fairness/diagnostics.md")
    }
    pub fn profiles_dir(&self) -> PathBuf {
        self.at("profiles")
    }
    pub fn root_cause_md(&self) -> PathBuf {
        self.at("analysis/root-cause.md")
    }
    pub fn layer_pipeline_md(&self) -> PathBuf {
        self.at("analysis/layer-pipeline.md")
    }
    /// The per-round fairness gate.
    pub fn analysis_fairness_md(&self) -> PathBuf {
        self.at("analysis/fairness-diagnostics.md")
    }
    pub fn history_notes_md(&self) -> PathBuf {
        self.at("history/model-pr-history-notes.md")
    }
    pub fn ncu_digests_root(&self) -> PathBuf {
        self.at("kernel/ncu-digests")
    }
    /// NCU digests of one kernel version (`baseline`, `v1`, ...).
    pub fn ncu_digests_dir(&self, version: &str) -> PathBuf {
        let slug = super::slug::slugify(version);
        let name = if slug.is_empty() {
            "unversioned".to_string()
        } else {
            slug
        };
        self.ncu_digests_root().join(name)
    }
    pub fn patches_dir(&self) -> PathBuf {
        self.at("patches")
    }
    pub fn checkpoint_md(&self) -> PathBuf {
        self.at("humanize/model-loop-checkpoint.md")
    }
    pub fn attempt_ledger_md(&self) -> PathBuf {
        self.at("humanize/attempt-ledger.md")
    }
    pub fn optimization_ledger_md(&self) -> PathBuf {
        self.at("humanize/optimization-ledger.md")
    }
    pub fn source_idea_ledger_md(&self) -> PathBuf {
        self.at("humanize/source-idea-ledger.md")
    }
    pub fn lineage_jsonl(&self) -> PathBuf {
        self.at("humanize/lineage.jsonl")
    }
    pub fn profile_digests_dir(&self) -> PathBuf {
        self.at("humanize/profile-digests")
    }
    /// The campaign plan (Phase 2), immutable once the loop starts.
    pub fn plan_md(&self) -> PathBuf {
        self.at("humanize/refined-plan.md")
    }
    /// Goal tracker: immutable goal/acceptance part plus mutable tasks.
    pub fn goal_tracker_md(&self) -> PathBuf {
        self.at("humanize/goal-tracker.md")
    }
    pub fn final_report_md(&self) -> PathBuf {
        self.at("final_report.md")
    }
    pub fn rounds_root(&self) -> PathBuf {
        self.at("humanize/rounds")
    }
    /// The folder of round `n` (zero-padded so folders sort in round order).
    pub fn rounds_dir(&self, n: u32) -> PathBuf {
        self.rounds_root().join(format!("round-{n:03}"))
    }
    /// The files of round `n`.
    pub fn round(&self, n: u32) -> RoundPaths {
        RoundPaths {
            dir: self.rounds_dir(n),
        }
    }

    /// Every fixed file of the layout, in layout order (per-round and per-version files excluded).
    pub fn all_skeleton_files(&self) -> Vec<PathBuf> {
        vec![
            self.manifest(),
            self.candidates_jsonl(),
            self.summary_md(),
            self.winning_commands_md(),
            self.fairness_diagnostics_md(),
            self.root_cause_md(),
            self.layer_pipeline_md(),
            self.analysis_fairness_md(),
            self.history_notes_md(),
            self.checkpoint_md(),
            self.attempt_ledger_md(),
            self.optimization_ledger_md(),
            self.source_idea_ledger_md(),
            self.lineage_jsonl(),
            self.final_report_md(),
        ]
    }

    /// Every directory of the layout that holds a varying set of files (git keeps none empty, so
    /// writers add a placeholder when they create one).
    pub fn all_skeleton_dirs(&self) -> Vec<PathBuf> {
        vec![
            self.help_dir(),
            self.profiles_dir(),
            self.ncu_digests_root(),
            self.patches_dir(),
            self.profile_digests_dir(),
            self.rounds_root(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> RunDir {
        RunDir::from_slug(
            "llama_3_1_8b_instruct",
            NaiveDate::from_ymd_opt(2025, 3, 7).unwrap(),
        )
    }

    #[test]
    fn layout_matches_the_spec() {
        let d = dir();
        assert_eq!(
            d.root,
            PathBuf::from("runs/20250307_llama_3_1_8b_instruct_sota_humanize")
        );
        assert_eq!(d.name(), "20250307_llama_3_1_8b_instruct_sota_humanize");
        let rel: Vec<String> = d
            .all_skeleton_files()
            .iter()
            .map(|p| {
                p.strip_prefix(&d.root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(
            rel,
            [
                "manifest.md",
                "benchmark/candidates.jsonl",
                "benchmark/summary.md",
                "benchmark/winning-commands.md",
                "benchmark/fairness/diagnostics.md",
                "analysis/root-cause.md",
                "analysis/layer-pipeline.md",
                "analysis/fairness-diagnostics.md",
                "history/model-pr-history-notes.md",
                "humanize/model-loop-checkpoint.md",
                "humanize/attempt-ledger.md",
                "humanize/optimization-ledger.md",
                "humanize/source-idea-ledger.md",
                "humanize/lineage.jsonl",
                "final_report.md",
            ]
        );
        assert_eq!(
            d.ncu_digests_dir("V1 (fused)"),
            PathBuf::from(
                "runs/20250307_llama_3_1_8b_instruct_sota_humanize/kernel/ncu-digests/v1_fused"
            )
        );
        assert_eq!(
            d.round(7).review_result_md(),
            d.root.join("humanize/rounds/round-007/review-result.md")
        );
        assert!(d.rounds_dir(12) > d.rounds_dir(9), "rounds sort in order");
    }

    #[test]
    fn every_path_stays_inside_the_root() {
        let d = dir();
        for p in d
            .all_skeleton_files()
            .iter()
            .chain(&d.all_skeleton_dirs())
            .chain([&d.ncu_digests_dir("../../x")])
        {
            assert!(p.starts_with(&d.root), "{}", p.display());
            assert!(
                !p.components().any(|c| c == std::path::Component::ParentDir),
                "{}",
                p.display()
            );
        }
    }
}
