//! The optional curated knowledge root, organised as `<framework>/<family-slug>/README*.md`:
//! what each file cites (PRs, source paths, symbols, risks). Nothing read here is cited in
//! the notes until `history::verify` has checked it against the checkout.
//!
//! **Family slug rule.** The model id's last path segment is lower-cased and split on every
//! non-alphanumeric character; each token also contributes its leading letters (`qwen3` adds
//! `qwen`). A slug folder matches when every one of its tokens (split the same way on `-`,
//! `_`, `.`) is among the model's tokens. The match with the most tokens wins, then the
//! longest slug, then the alphabetically first. A request's `history_slug` overrides it.

use crate::framework::Framework;
use once_cell::sync::Lazy;
use regex::Regex;
use std::collections::BTreeSet;
use std::path::Path;

fn tokens(s: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for t in s
        .to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
    {
        out.insert(t.to_string());
        let alpha: String = t.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
        if !alpha.is_empty() {
            out.insert(alpha);
        }
    }
    out
}

/// Picks the family slug for `model_id` among `slugs` (see the module rule).
pub fn infer_family_slug(model_id: &str, slugs: &[String]) -> Option<String> {
    let last = model_id
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(model_id);
    let model_tokens = tokens(last);
    slugs
        .iter()
        .filter_map(|slug| {
            let st: Vec<String> = slug
                .to_ascii_lowercase()
                .split(['-', '_', '.'])
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect();
            (!st.is_empty() && st.iter().all(|t| model_tokens.contains(t))).then_some((
                st.len(),
                slug.len(),
                slug,
            ))
        })
        .max_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then_with(|| b.2.cmp(a.2)))
        .map(|(_, _, s)| s.clone())
}

/// What one history file cites.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Citations {
    pub prs: Vec<String>,
    pub sources: Vec<String>,
    pub symbols: Vec<String>,
    pub risks: Vec<String>,
}

static PR_RE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?:^|[^\w&])#(\d{2,7})\b|pull/(\d{1,7})\b").unwrap_or_else(|_| unreachable_re())
});
static SRC_RE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?:python/sglang/[\w./-]+|\b[\w][\w./-]*\.(?:py|cu|cuh|cpp|cc|h|hpp)\b)")
        .unwrap_or_else(|_| unreachable_re())
});
static TICK_RE: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"`([^`\n]+)`").unwrap_or_else(|_| unreachable_re()));
static IDENT_RE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*(?:(?:\.|::)[A-Za-z_][A-Za-z0-9_]*)*(?:\(\))?$")
        .unwrap_or_else(|_| unreachable_re())
});

/// A regex that matches nothing; the patterns above are constants, so this is never used,
/// but it keeps the code free of panics.
fn unreachable_re() -> Regex {
    Regex::new(r"[^\s\S]").unwrap_or_else(|_| unreachable_re())
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

/// Extracts PR numbers (`#1234`, `pull/1234`), source paths, backticked symbols and
/// risk sentences from a history file.
pub fn extract_citations(text: &str) -> Citations {
    let mut c = Citations::default();
    for cap in PR_RE.captures_iter(text) {
        if let Some(m) = cap.get(1).or_else(|| cap.get(2)) {
            push_unique(&mut c.prs, m.as_str().to_string());
        }
    }
    for m in SRC_RE.find_iter(text) {
        let s = m.as_str().trim_end_matches(['.', ',', ')']);
        push_unique(&mut c.sources, s.to_string());
    }
    for cap in TICK_RE.captures_iter(text) {
        if let Some(m) = cap.get(1) {
            let s = m.as_str().trim();
            if IDENT_RE.is_match(s) && !SRC_RE.is_match(s) {
                push_unique(&mut c.symbols, s.to_string());
            }
        }
    }
    for item in items(text) {
        let l = item.as_str();
        let low = l.to_ascii_lowercase();
        if !l.is_empty()
            && [
                "risk", "regress", "accuracy", "caution", "breaks", "validate",
            ]
            .iter()
            .any(|k| low.contains(k))
        {
            push_unique(&mut c.risks, l.chars().take(200).collect());
        }
    }
    c
}

/// The text's items: a line, with the indented lines that continue it (a wrapped bullet),
/// joined by spaces, without the bullet marker.
fn items(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut open = false;
    for line in text.lines() {
        let t = line.trim();
        let continues = open
            && line.starts_with([' ', '\t'])
            && !t.is_empty()
            && !t.starts_with(['-', '*', '#']);
        if continues {
            if let Some(last) = out.last_mut() {
                last.push(' ');
                last.push_str(t);
            }
            continue;
        }
        let item = t.trim_start_matches(['-', '*', ' ']).trim();
        open = !item.is_empty();
        if open {
            out.push(item.to_string());
        }
    }
    out
}

/// Folder names a framework may use in a knowledge root.
fn framework_dirs(f: Framework) -> &'static [&'static str] {
    match f {
        Framework::Sglang => &["sglang"],
        Framework::Vllm => &["vllm"],
        Framework::TensorrtLlm => &["tensorrt_llm", "tensorrt-llm", "trtllm"],
        Framework::Tokenspeed => &["tokenspeed"],
    }
}

/// One curated file, as written (its citations are not verified yet).
#[derive(Debug, Clone, PartialEq)]
pub struct KnowledgeText {
    /// Path relative to the knowledge root.
    pub path: String,
    pub framework: Framework,
    pub citations: Citations,
}

/// What the knowledge root holds for the model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KnowledgeRead {
    pub root: String,
    pub slug: String,
    pub slug_source: String,
    pub files: Vec<KnowledgeText>,
    pub blockers: Vec<String>,
}

/// Reads the optional knowledge root: the family folder of each framework and its
/// `README*.md` files. A missing family or unreadable file is a blocker.
pub fn read_knowledge(
    root: &Path,
    model: &str,
    slug_override: Option<&str>,
    frameworks: &[Framework],
) -> KnowledgeRead {
    let mut out = KnowledgeRead {
        root: root.display().to_string(),
        ..Default::default()
    };
    if !root.is_dir() {
        out.blockers.push(format!(
            "knowledge root `{}` is not a folder: curated notes skipped",
            out.root
        ));
        return out;
    }
    let mut slugs = BTreeSet::new();
    for f in frameworks {
        for d in framework_dirs(*f) {
            if let Ok(rd) = std::fs::read_dir(root.join(d)) {
                for e in rd.flatten() {
                    if e.path().is_dir() {
                        slugs.insert(e.file_name().to_string_lossy().to_string());
                    }
                }
            }
        }
    }
    let slugs: Vec<String> = slugs.into_iter().collect();
    let slug = match slug_override {
        Some(s) => {
            out.slug_source = "history_slug from the request".into();
            Some(s.to_string())
        }
        None => {
            out.slug_source = "inferred from the model id by token matching".into();
            infer_family_slug(model, &slugs)
        }
    };
    let Some(slug) = slug else {
        out.slug = "(no match)".into();
        out.blockers.push(format!(
            "no family folder in knowledge root `{}` matches `{model}` (families: {}); set `history_slug` in the request",
            out.root,
            if slugs.is_empty() { "none".into() } else { slugs.join(", ") }
        ));
        return out;
    };
    out.slug = slug.clone();
    for f in frameworks {
        let Some(dir) = framework_dirs(*f)
            .iter()
            .map(|d| root.join(d).join(&slug))
            .find(|p| p.is_dir())
        else {
            continue;
        };
        let mut readmes: Vec<_> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name().is_some_and(|n| {
                            let n = n.to_string_lossy();
                            n.starts_with("README") && n.ends_with(".md")
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        readmes.sort();
        for path in readmes {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string();
            match std::fs::read_to_string(&path) {
                Ok(text) => out.files.push(KnowledgeText {
                    path: rel,
                    framework: *f,
                    citations: extract_citations(&text),
                }),
                Err(e) => out.blockers.push(format!("could not read `{rel}`: {e}")),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn slug_rule() {
        let slugs: Vec<String> = [
            "llama",
            "llama-3",
            "qwen3",
            "qwen",
            "deepseek-v3",
            "mixtral",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            infer_family_slug("meta-llama/Llama-3.1-8B-Instruct", &slugs).as_deref(),
            Some("llama-3")
        );
        assert_eq!(
            infer_family_slug("Qwen/Qwen3-30B-A3B", &slugs).as_deref(),
            Some("qwen3")
        );
        assert_eq!(
            infer_family_slug("deepseek-ai/DeepSeek-V3-0324", &slugs).as_deref(),
            Some("deepseek-v3")
        );
        assert_eq!(
            infer_family_slug("mistralai/Mixtral-8x7B", &slugs).as_deref(),
            Some("mixtral")
        );
        assert_eq!(infer_family_slug("google/gemma-2-9b", &slugs), None);
    }

    #[test]
    fn citations() {
        let t = "Landed in #1234 and https://github.com/sgl-project/sglang/pull/5678.\n\
                 Touches python/sglang/srt/layers/rotary_embedding.py and `apply_rope_fused`, kernel csrc/rope.cu.\n\
                 - Risk: accuracy drift with fp8 KV.\n Colour &#39; ignored";
        let c = extract_citations(t);
        assert_eq!(c.prs, vec!["1234", "5678"]);
        assert!(c
            .sources
            .contains(&"python/sglang/srt/layers/rotary_embedding.py".to_string()));
        assert!(c.sources.contains(&"csrc/rope.cu".to_string()));
        assert_eq!(c.symbols, vec!["apply_rope_fused"]);
        assert_eq!(c.risks.len(), 1);
        let wrapped = extract_citations(
            "- Risk: folding changes numerics; validate\n  on the long scenario.\n- next\n",
        );
        assert_eq!(
            wrapped.risks,
            vec!["Risk: folding changes numerics; validate on the long scenario."]
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in ".*", m in ".*") {
            let _ = extract_citations(&s);
            let _ = infer_family_slug(&m, std::slice::from_ref(&s));
        }
    }
}
