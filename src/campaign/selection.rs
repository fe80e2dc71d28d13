//! Framework selection (ARCHITECTURE.md, *Phases*): which competitors a campaign benchmarks, and
//! why the others are not there.
//!
//! SGLang is always the target. Competitors are chosen by the user's explicit list or
//! exclusions, else the repository's default set; then filtered by what the runner pool
//! can run. Nothing is ever added silently: every competitor that is not selected is
//! recorded with a reason, either as excluded (a human's choice) or unsupported (the
//! environment cannot run it).

use super::suggest;
use crate::framework::Framework;
use serde::{Deserialize, Serialize};

/// The only TensorRT-LLM server backend sota-bot runs (`trtllm-serve serve --backend pytorch`).
pub const SUPPORTED_TRTLLM_BACKEND: &str = "pytorch";

/// What the request says about competitors, before looking at the runner pool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameworkChoice {
    /// An explicit comparison set, honoured exactly; `None` means the default set.
    pub only: Option<Vec<Framework>>,
    /// Competitors the user excluded.
    pub exclude: Vec<Framework>,
}

impl FrameworkChoice {
    /// Whether the user said nothing about frameworks.
    pub fn is_default(&self) -> bool {
        self.only.is_none() && self.exclude.is_empty()
    }

    /// Human-readable problems: naming a competitor both in `only` and in `exclude`.
    pub fn problems(&self) -> Vec<String> {
        let Some(only) = &self.only else {
            return Vec::new();
        };
        let mut out: Vec<String> = self
            .exclude
            .iter()
            .filter(|f| only.contains(f))
            .map(|f| format!("`{f}` is both requested and excluded; name it in one place"))
            .collect();
        if only.is_empty() {
            out.push("the explicit comparison set is empty: name at least one of vllm, tensorrt_llm, tokenspeed, or leave it empty for the default".into());
        }
        out
    }
}

/// Whether the runner pool can run one framework, and why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameworkAvailability {
    pub framework: Framework,
    /// `None` when available; otherwise the reason it cannot run.
    pub unavailable: Option<String>,
}

/// A pool that can run every framework (the local simulator lane, and the default when
/// the App has no runner inventory).
pub fn all_available() -> Vec<FrameworkAvailability> {
    Framework::ALL
        .iter()
        .map(|&framework| FrameworkAvailability {
            framework,
            unavailable: None,
        })
        .collect()
}

/// The frameworks a campaign runs, with the reasons for every competitor it does not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameworkSelection {
    /// Always `Framework::Sglang`.
    pub target: Framework,
    /// Competitors that will be benchmarked, in canonical order.
    pub selected: Vec<Framework>,
    /// Competitors left out by a human choice (request or repository config).
    pub user_excluded: Vec<(Framework, String)>,
    /// Competitors that were wanted but cannot run here.
    pub unsupported: Vec<(Framework, String)>,
}

impl FrameworkSelection {
    /// Target plus selected competitors: every framework the baseline benchmarks.
    pub fn benchmarked(&self) -> Vec<Framework> {
        std::iter::once(self.target)
            .chain(self.selected.iter().copied())
            .collect()
    }
}

/// Computes the selection.
///
/// - `choice`: the request's explicit set / exclusions.
/// - `default_set`: competitors used when the request names none (repository config).
/// - `pool`: what the runner pool can run; a framework missing from it is unsupported.
/// - `trtllm_backend`: the requested TensorRT-LLM server backend; anything but `pytorch`
///   makes TensorRT-LLM unsupported.
pub fn select_frameworks(
    choice: &FrameworkChoice,
    default_set: &[Framework],
    pool: &[FrameworkAvailability],
    trtllm_backend: &str,
) -> FrameworkSelection {
    let mut selection = FrameworkSelection {
        target: Framework::Sglang,
        selected: Vec::new(),
        user_excluded: Vec::new(),
        unsupported: Vec::new(),
    };
    for fw in Framework::COMPETITORS {
        let excluded_reason = if choice.exclude.contains(&fw) {
            Some("excluded by the request".to_string())
        } else {
            match &choice.only {
                Some(only) if !only.contains(&fw) => {
                    Some("not in the request's explicit comparison set".to_string())
                }
                None if !default_set.contains(&fw) => Some(
                    "not in the repository's default comparison set (defaults.competitors in .github/sota-bot.yml); name it in the request to include it"
                        .to_string(),
                ),
                _ => None,
            }
        };
        if let Some(reason) = excluded_reason {
            selection.user_excluded.push((fw, reason));
            continue;
        }
        if fw == Framework::TensorrtLlm
            && !trtllm_backend
                .trim()
                .eq_ignore_ascii_case(SUPPORTED_TRTLLM_BACKEND)
        {
            selection.unsupported.push((
                fw,
                format!(
                    "TensorRT-LLM server backend `{}` is not supported: sota-bot runs only `trtllm-serve serve --backend pytorch`",
                    trtllm_backend.trim()
                ),
            ));
            continue;
        }
        match pool.iter().find(|a| a.framework == fw) {
            None => selection
                .unsupported
                .push((fw, "not offered by the runner pool".to_string())),
            Some(FrameworkAvailability {
                unavailable: Some(reason),
                ..
            }) => selection.unsupported.push((fw, reason.clone())),
            Some(_) => selection.selected.push(fw),
        }
    }
    selection
}

/// Resolves one user-typed competitor name; errors name the expected values.
pub fn competitor_from_name(name: &str) -> Result<Framework, String> {
    match Framework::from_alias(name) {
        Some(Framework::Sglang) => Err(
            "`sglang` is always the target, not a competitor: list only vllm, tensorrt_llm or tokenspeed"
                .to_string(),
        ),
        Some(fw) => Ok(fw),
        None => Err(format!(
            "unknown framework `{}`{}: expected vllm, tensorrt_llm or tokenspeed",
            name.trim(),
            suggest::hint(name.trim(), &["vllm", "tensorrt_llm", "tokenspeed", "trtllm"])
        )),
    }
}

const INCLUDE_WORDS: &[&str] = &[
    "only",
    "with",
    "against",
    "vs",
    "versus",
    "include",
    "including",
    "plus",
    "just",
];
const EXCLUDE_WORDS: &[&str] = &[
    "exclude",
    "excluding",
    "except",
    "but",
    "without",
    "no",
    "not",
    "skip",
    "minus",
    "drop",
    "don",
    "never",
];
const ALL_WORDS: &[&str] = &["all", "default", "defaults", "everything", "every", "any"];
const FILLER_WORDS: &[&str] = &[
    "the",
    "and",
    "or",
    "nor",
    "do",
    "t",
    "consider",
    "compare",
    "comparison",
    "framework",
    "frameworks",
    "competitor",
    "competitors",
    "engine",
    "engines",
    "to",
    "please",
    "use",
    "run",
    "other",
    "others",
    "of",
    "them",
    "set",
    "in",
    "for",
    "a",
    "an",
    "is",
    "are",
    "three",
    "backend",
    "serve",
    "server",
    "benchmark",
    "available",
    "also",
];

/// Reads a free-text framework request: `only vLLM`, `only compare with vllm`,
/// `exclude tensorrt_llm`, `all but trt`, `vllm, tokenspeed`, `default`.
///
/// Framework names go to the explicit set unless an exclusion word (`exclude`, `except`,
/// `but`, `without`, `no`, `not`, `skip`) precedes them. `sglang` is allowed only as the
/// subject of a comparison (`sglang vs vllm`). Unrecognized words are problems, so a typo
/// never silently changes the comparison set.
pub fn parse_framework_text(text: &str) -> Result<FrameworkChoice, Vec<String>> {
    let lowered = normalize_names(&text.to_lowercase());
    let words: Vec<&str> = lowered
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-'))
        .map(|w| w.trim_matches(|c| c == '.' || c == '-' || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    let is_comparison = words
        .iter()
        .any(|w| matches!(*w, "with" | "vs" | "versus" | "against" | "compare"));
    let mut excluding = false;
    let mut said_only = false;
    let mut said_all = false;
    let mut include: Vec<Framework> = Vec::new();
    let mut exclude: Vec<Framework> = Vec::new();
    let mut problems = Vec::new();
    for word in words {
        if INCLUDE_WORDS.contains(&word) {
            excluding = false;
            said_only |= word == "only" || word == "just";
        } else if EXCLUDE_WORDS.contains(&word) {
            excluding = true;
        } else if ALL_WORDS.contains(&word) {
            said_all = true;
        } else if FILLER_WORDS.contains(&word) {
            continue;
        } else if matches!(word, "none" | "nothing") {
            problems.push("a campaign needs at least one competitor: name vllm, tensorrt_llm or tokenspeed, or leave the field empty for the default set".to_string());
        } else {
            match Framework::from_alias(word) {
                Some(Framework::Sglang) if is_comparison => {}
                _ => match competitor_from_name(word) {
                    Ok(fw) => {
                        let list = if excluding {
                            &mut exclude
                        } else {
                            &mut include
                        };
                        if !list.contains(&fw) {
                            list.push(fw);
                        }
                    }
                    Err(message) => problems.push(message),
                },
            }
        }
    }
    if include.is_empty() && exclude.is_empty() && problems.is_empty() && !said_all {
        let trimmed = text.trim();
        if !trimmed.is_empty() {
            problems.push(format!(
                "`{trimmed}` names no framework: write e.g. `only vllm`, `exclude tensorrt_llm`, `vllm, tokenspeed` or `default`"
            ));
        }
    }
    if said_only && include.is_empty() && problems.is_empty() {
        problems.push("`only` must be followed by at least one framework name".to_string());
    }
    let choice = FrameworkChoice {
        only: (!include.is_empty()).then_some(include),
        exclude,
    };
    problems.extend(choice.problems());
    if problems.is_empty() {
        Ok(choice)
    } else {
        Err(problems)
    }
}

/// Joins multi-word spellings (`TensorRT LLM`, `token speed`) into one word.
fn normalize_names(text: &str) -> String {
    let mut out = text.to_string();
    for (from, to) in [
        ("tensorrt llm", "tensorrt_llm"),
        ("tensor rt llm", "tensorrt_llm"),
        ("tensor-rt-llm", "tensorrt_llm"),
        ("trt llm", "trtllm"),
        ("token speed", "tokenspeed"),
    ] {
        out = out.replace(from, to);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use Framework::*;

    fn choice(text: &str) -> FrameworkChoice {
        parse_framework_text(text).unwrap_or_else(|e| panic!("{text}: {e:?}"))
    }

    #[test]
    fn free_text_forms() {
        let only_vllm = FrameworkChoice {
            only: Some(vec![Vllm]),
            exclude: vec![],
        };
        assert_eq!(choice("only vLLM"), only_vllm);
        assert_eq!(choice("only compare with vLLM"), only_vllm);
        assert_eq!(choice("Only compare SGLang with vLLM."), only_vllm);
        assert_eq!(choice("sglang vs vllm"), only_vllm);
        assert_eq!(
            choice("exclude tensorrt_llm"),
            FrameworkChoice {
                only: None,
                exclude: vec![TensorrtLlm]
            }
        );
        assert_eq!(choice("all but trt").exclude, vec![TensorrtLlm]);
        assert_eq!(
            choice("do not consider TensorRT-LLM/TokenSpeed").exclude,
            vec![TensorrtLlm, Tokenspeed]
        );
        assert_eq!(
            choice("don't consider TensorRT LLM").exclude,
            vec![TensorrtLlm]
        );
        assert_eq!(
            choice("vllm, tokenspeed").only,
            Some(vec![Vllm, Tokenspeed])
        );
        assert_eq!(
            choice("vllm and tokenspeed but not trt"),
            FrameworkChoice {
                only: Some(vec![Vllm, Tokenspeed]),
                exclude: vec![TensorrtLlm]
            }
        );
        assert!(choice("default").is_default());
        assert!(choice("all").is_default());
        assert!(choice("").is_default());
    }

    #[test]
    fn free_text_problems() {
        let errs = parse_framework_text("only llama.cpp").unwrap_err();
        assert!(
            errs[0].contains("unknown framework `llama.cpp`"),
            "{errs:?}"
        );
        let errs = parse_framework_text("vlm").unwrap_err();
        assert!(errs[0].contains("did you mean `vllm`"), "{errs:?}");
        let errs = parse_framework_text("sglang, vllm").unwrap_err();
        assert!(errs[0].contains("always the target"), "{errs:?}");
        let errs = parse_framework_text("none").unwrap_err();
        assert!(errs[0].contains("at least one competitor"), "{errs:?}");
        let errs = parse_framework_text("compare please").unwrap_err();
        assert!(errs[0].contains("names no framework"), "{errs:?}");
        let errs = parse_framework_text("vllm except vllm").unwrap_err();
        assert!(errs[0].contains("both requested and excluded"), "{errs:?}");
    }

    #[test]
    fn explicit_set_is_honoured_exactly() {
        let c = choice("only compare with vLLM");
        let s = select_frameworks(&c, &Framework::COMPETITORS, &all_available(), "pytorch");
        assert_eq!(s.target, Sglang);
        assert_eq!(s.selected, vec![Vllm]);
        assert_eq!(s.benchmarked(), vec![Sglang, Vllm]);
        let excluded: Vec<Framework> = s.user_excluded.iter().map(|(f, _)| *f).collect();
        assert_eq!(excluded, vec![TensorrtLlm, Tokenspeed]);
        assert!(s.unsupported.is_empty());
    }

    #[test]
    fn default_set_is_all_available_competitors() {
        let s = select_frameworks(
            &FrameworkChoice::default(),
            &Framework::COMPETITORS,
            &all_available(),
            "pytorch",
        );
        assert_eq!(s.selected, vec![Vllm, TensorrtLlm, Tokenspeed]);
        assert!(s.user_excluded.is_empty() && s.unsupported.is_empty());
    }

    #[test]
    fn repository_default_set_limits_the_default_only() {
        let repo_default = [Vllm];
        let s = select_frameworks(
            &FrameworkChoice::default(),
            &repo_default,
            &all_available(),
            "pytorch",
        );
        assert_eq!(s.selected, vec![Vllm]);
        assert!(s.user_excluded[0].1.contains("defaults.competitors"));
        let explicit = choice("tokenspeed");
        let s = select_frameworks(&explicit, &repo_default, &all_available(), "pytorch");
        assert_eq!(s.selected, vec![Tokenspeed], "an explicit request wins");
    }

    #[test]
    fn exclusions_and_pool_and_backend() {
        let pool = vec![
            FrameworkAvailability {
                framework: Vllm,
                unavailable: None,
            },
            FrameworkAvailability {
                framework: Tokenspeed,
                unavailable: Some("no TokenSpeed image for b200".into()),
            },
        ];
        let s = select_frameworks(
            &choice("all but vllm"),
            &Framework::COMPETITORS,
            &pool,
            "pytorch",
        );
        assert_eq!(s.user_excluded[0].0, Vllm);
        assert_eq!(
            s.unsupported,
            vec![
                (TensorrtLlm, "not offered by the runner pool".to_string()),
                (Tokenspeed, "no TokenSpeed image for b200".to_string()),
            ]
        );
        assert!(s.selected.is_empty());

        let s = select_frameworks(
            &FrameworkChoice::default(),
            &Framework::COMPETITORS,
            &all_available(),
            "tensorrt",
        );
        assert_eq!(s.selected, vec![Vllm, Tokenspeed]);
        assert_eq!(s.unsupported[0].0, TensorrtLlm);
        assert!(s.unsupported[0]
            .1
            .contains("backend `tensorrt` is not supported"));
        let s = select_frameworks(
            &choice("only vllm"),
            &Framework::COMPETITORS,
            &all_available(),
            "tensorrt",
        );
        assert!(
            s.unsupported.is_empty(),
            "an unselected TRT-LLM needs no backend check"
        );
    }
}
