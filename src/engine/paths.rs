//! Paths of the run directory (ARCHITECTURE.md, *Run directory*) inside the checkout.

use chrono::NaiveDate;
use std::path::{Path, PathBuf};

/// The run directory of one campaign: absolute root plus its path relative to the checkout.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPaths {
    pub checkout: PathBuf,
    /// Relative to the checkout, `/`-separated (`runs/20260101_llama_sota_humanize`).
    pub rel: String,
}

impl RunPaths {
    /// `runs/YYYYMMDD_<model_slug>_sota_humanize/`.
    pub fn for_campaign(checkout: &Path, date: NaiveDate, model_slug: &str) -> RunPaths {
        RunPaths {
            checkout: checkout.to_path_buf(),
            rel: format!("runs/{}_{model_slug}_sota_humanize", date.format("%Y%m%d")),
        }
    }

    /// From a relative run directory.
    pub fn from_rel(checkout: &Path, rel: &str) -> RunPaths {
        RunPaths {
            checkout: checkout.to_path_buf(),
            rel: rel.trim_end_matches('/').to_string(),
        }
    }

    pub fn root(&self) -> PathBuf {
        self.checkout.join(&self.rel)
    }
    /// A run-directory file, absolute.
    pub fn file(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }
    /// A run-directory file relative to the checkout (as git sees it).
    pub fn repo_rel(&self, rel: &str) -> String {
        format!("{}/{rel}", self.rel)
    }
    pub fn manifest(&self) -> PathBuf {
        self.file("manifest.md")
    }
    pub fn candidates(&self) -> PathBuf {
        self.file("benchmark/candidates.jsonl")
    }
    pub fn contract(&self) -> PathBuf {
        self.file("benchmark/contract.json")
    }
    pub fn summary(&self) -> PathBuf {
        self.file("benchmark/summary.md")
    }
    pub fn winning_commands(&self) -> PathBuf {
        self.file("benchmark/winning-commands.md")
    }
    pub fn fairness(&self) -> PathBuf {
        self.file("benchmark/fairness/diagnostics.md")
    }
    pub fn help_dir(&self) -> PathBuf {
        self.file("help")
    }
    pub fn root_cause(&self) -> PathBuf {
        self.file("analysis/root-cause.md")
    }
    pub fn layer_pipeline(&self) -> PathBuf {
        self.file("analysis/layer-pipeline.md")
    }
    pub fn fairness_analysis(&self) -> PathBuf {
        self.file("analysis/fairness-diagnostics.md")
    }
    pub fn history_notes(&self) -> PathBuf {
        self.file("history/model-pr-history-notes.md")
    }
    pub fn plan(&self) -> PathBuf {
        self.file("plan.md")
    }
    pub fn checkpoint(&self) -> PathBuf {
        self.file("humanize/model-loop-checkpoint.md")
    }
    pub fn attempt_ledger(&self) -> PathBuf {
        self.file("humanize/attempt-ledger.md")
    }
    pub fn optimization_ledger(&self) -> PathBuf {
        self.file("humanize/optimization-ledger.md")
    }
    pub fn source_idea_ledger(&self) -> PathBuf {
        self.file("humanize/source-idea-ledger.md")
    }
    pub fn lineage(&self) -> PathBuf {
        self.file("humanize/lineage.jsonl")
    }
    pub fn final_report(&self) -> PathBuf {
        self.file("final_report.md")
    }
    /// `rounds/round-N/`, relative to the run directory.
    pub fn round_rel(round: u32) -> String {
        format!("rounds/round-{round}")
    }
    pub fn round_dir(&self, round: u32) -> PathBuf {
        self.file(&Self::round_rel(round))
    }
}

/// Finds campaign run directories in a checkout (those holding a checkpoint), newest last.
pub fn find_run_dirs(checkout: &Path) -> Vec<RunPaths> {
    let mut out: Vec<RunPaths> = std::fs::read_dir(checkout.join("runs"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().join("humanize/model-loop-checkpoint.md").is_file())
                .map(|e| {
                    RunPaths::from_rel(
                        checkout,
                        &format!("runs/{}", e.file_name().to_string_lossy()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    out
}
