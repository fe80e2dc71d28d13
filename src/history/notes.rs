//! The history notes as data: what `sota-bot history --format json` prints and what the
//! campaign commits as `history/model-pr-history.json`, plus the pure rules that sort
//! commits into areas and spot performance work.

use serde::{Deserialize, Serialize};

/// Where a change landed, in the order the notes list areas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Area {
    /// The model's own implementation files.
    Model,
    Attention,
    Moe,
    Quantization,
    Kernels,
    /// Other layers the model imports (norms, linear, rotary, sampling, ...).
    Layers,
    /// Commits that only name the family in their subject.
    Mentions,
}

impl Area {
    /// Every area, in notes order.
    pub const ALL: [Area; 7] = [
        Area::Model,
        Area::Attention,
        Area::Moe,
        Area::Quantization,
        Area::Kernels,
        Area::Layers,
        Area::Mentions,
    ];

    /// Heading in the notes.
    pub fn title(self) -> &'static str {
        match self {
            Area::Model => "Model files",
            Area::Attention => "Attention",
            Area::Moe => "MoE",
            Area::Quantization => "Quantization",
            Area::Kernels => "Kernels",
            Area::Layers => "Other layers",
            Area::Mentions => "Other commits naming the family",
        }
    }

    /// Which area wins when a commit touches several: the model first, then kernels (a
    /// MoE or quantization kernel is listed with the kernels), then the rest in notes order.
    pub fn priority(self) -> u8 {
        match self {
            Area::Model => 0,
            Area::Kernels => 1,
            Area::Attention => 2,
            Area::Moe => 3,
            Area::Quantization => 4,
            Area::Layers => 5,
            Area::Mentions => 6,
        }
    }

    /// The area of one followed file.
    pub fn of_path(path: &str, model_files: &[String], kernel_files: &[String]) -> Area {
        let p = path.to_ascii_lowercase();
        let in_models = path
            .strip_prefix(super::registry::MODELS_DIR)
            .is_some_and(|rest| rest.starts_with('/'));
        if in_models || model_files.iter().any(|m| m == path) {
            Area::Model
        } else if kernel_files.iter().any(|k| k == path) || super::registry::is_kernel_path(path) {
            Area::Kernels
        } else if p.contains("attention") || p.contains("attn") {
            Area::Attention
        } else if p.contains("/moe/") || p.contains("_moe") || p.contains("moe_") {
            Area::Moe
        } else if p.contains("/quantization/") || p.contains("quant") {
            Area::Quantization
        } else {
            Area::Layers
        }
    }
}

/// Words of a subject that mark performance work.
const PERF_WORDS: &[&str] = &[
    "perf",
    "performance",
    "optimize",
    "optimise",
    "optimization",
    "optimisation",
    "optimizations",
    "speed",
    "speedup",
    "faster",
    "accelerate",
    "acceleration",
    "fuse",
    "fused",
    "fusion",
    "kernel",
    "kernels",
    "throughput",
    "latency",
    "overhead",
    "overlap",
    "tune",
    "tuned",
    "tuning",
    "efficient",
    "efficiency",
    "boost",
    "cudagraph",
    "graph",
];

/// Whether a subject describes performance work: one of its words (identifiers such as
/// `fused_moe` count as one word, not as `fused`) is a performance word.
pub fn is_perf_subject(subject: &str) -> bool {
    subject
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|w| PERF_WORDS.contains(&w.to_ascii_lowercase().as_str()))
}

/// Whether a subject reverts an earlier change.
pub fn is_revert_subject(subject: &str) -> bool {
    let s = subject.trim_start();
    s.starts_with("Revert ") || s.starts_with("revert ") || s.starts_with("Revert:")
}

/// A relevant commit, every field checked against the checkout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CitedCommit {
    pub sha: String,
    /// Commit date (UTC, `YYYY-MM-DD`).
    pub date: String,
    pub subject: String,
    /// The PR number its subject carries.
    pub pr: Option<u64>,
    /// Followed files it changed that exist at this commit.
    pub paths: Vec<String>,
    /// Followed files it removed (they exist at its first parent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_paths: Vec<String>,
    /// Renames into followed files, `old -> new`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub renamed_from: Vec<String>,
    pub area: Area,
    pub perf: bool,
    pub revert: bool,
    pub merge: bool,
    pub names_family: bool,
}

/// A pull request of the upstream repository (from GitHub's search API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpstreamPr {
    pub number: u64,
    pub title: String,
    pub url: String,
    /// `open` or `merged`.
    pub state: String,
    #[serde(default)]
    pub merged_at: Option<String>,
    /// The checkout commit whose subject carries this PR number, when there is one.
    #[serde(default)]
    pub in_checkout: Option<String>,
    /// Open, or merged upstream but not in this checkout: work the campaign must neither
    /// duplicate nor conflict with.
    #[serde(default)]
    pub in_flight: bool,
}

/// A PR a curated file cites, with the commit that proves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CitedPr {
    pub number: u64,
    /// The checkout commit whose subject carries it (none when it comes from the API).
    pub sha: Option<String>,
    /// That commit's subject, or the PR title from the API.
    pub title: String,
}

/// One curated knowledge file with only its verified citations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnowledgeFile {
    pub path: String,
    pub framework: String,
    pub prs: Vec<CitedPr>,
    /// Source paths that exist at the checkout's head.
    pub sources: Vec<String>,
    /// Symbols found in the cited sources or the model's files at the head.
    pub symbols: Vec<String>,
    pub risks: Vec<String>,
}

/// Everything Phase 0.5 learned, as the JSON notes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct HistoryReport {
    pub model: String,
    pub family: String,
    /// Spellings a subject or title must contain to name the family (see `family`).
    pub family_keys: Vec<String>,
    /// Other models' keys that extend a family key (`qwen3next`): not the family.
    #[serde(default)]
    pub other_models: Vec<String>,
    pub architectures: Vec<String>,
    /// Where the architectures came from (a config.json, or the model id).
    pub architecture_source: String,
    /// The checkout commit the walk started from.
    pub head: Option<String>,
    pub model_files: Vec<String>,
    /// Layer files the model files import.
    pub layer_files: Vec<String>,
    /// Kernel files those layers import.
    pub kernel_files: Vec<String>,
    /// Commits read.
    pub commits_read: usize,
    /// Relevant commits, newest first.
    pub commits: Vec<CitedCommit>,
    /// The upstream repository the PR search ran on, when it ran.
    pub upstream: Option<String>,
    pub open_prs: Vec<UpstreamPr>,
    pub knowledge: Vec<KnowledgeFile>,
    pub blockers: Vec<String>,
}

impl HistoryReport {
    /// Commits of one area, newest first.
    pub fn in_area(&self, area: Area) -> impl Iterator<Item = &CitedCommit> {
        self.commits.iter().filter(move |c| c.area == area)
    }

    /// PR numbers the notes cite (commits and the API).
    pub fn cited_prs(&self) -> Vec<u64> {
        let mut out: Vec<u64> = self
            .commits
            .iter()
            .filter_map(|c| c.pr)
            .chain(self.open_prs.iter().map(|p| p.number))
            .chain(
                self.knowledge
                    .iter()
                    .flat_map(|k| k.prs.iter().map(|p| p.number)),
            )
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_of_paths() {
        let model = vec!["python/sglang/srt/models/qwen3_moe.py".to_string()];
        let kernels = vec!["python/sglang/srt/layers/quantization/fp8_kernel.py".to_string()];
        let a = |p: &str| Area::of_path(p, &model, &kernels);
        assert_eq!(a("python/sglang/srt/models/qwen3_moe.py"), Area::Model);
        assert_eq!(
            a("python/sglang/srt/layers/radix_attention.py"),
            Area::Attention
        );
        assert_eq!(a("python/sglang/srt/layers/moe/topk.py"), Area::Moe);
        assert_eq!(
            a("python/sglang/srt/layers/quantization/fp8_kernel.py"),
            Area::Kernels
        );
        assert_eq!(
            a("python/sglang/srt/layers/quantization/fp8.py"),
            Area::Quantization
        );
        assert_eq!(a("python/sglang/srt/layers/fused_norm.py"), Area::Kernels);
        assert_eq!(a("python/sglang/srt/layers/layernorm.py"), Area::Layers);
    }

    #[test]
    fn perf_and_revert_subjects() {
        assert!(is_perf_subject("[Perf] fuse qk norm and rope (#9)"));
        assert!(is_perf_subject("Reduce CUDA graph overhead"));
        assert!(!is_perf_subject("Fix typo in docs"));
        assert!(!is_perf_subject("Support performancex"));
        assert!(!is_perf_subject(
            "Rename triton_fused_moe -> fused_moe_triton"
        ));
        assert!(is_revert_subject("Revert \"x (#1)\" (#2)"));
        assert!(!is_revert_subject("Fix revert logic"));
    }
}
