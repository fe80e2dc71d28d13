//! Model family names: what a commit subject or a PR title must say to be "about" the model.
//!
//! A name is matched as a *key*: lower-case letters and digits with every separator removed
//! (`qwen3`, `deepseekv3`, `llama3`). A text names the key when some run of consecutive words
//! of the text, glued together, spells it exactly, so `DeepSeek-V3`, `deepseek v3` and
//! `DeepseekV3` all name `deepseekv3`, while `Llama4` does not name `llama` (the word is
//! `llama4`) and `qwen30b` does not name `qwen3`.
//!
//! Keys come from the model id (its name plus a short version: `Llama-3.1-8B` gives `llama3`,
//! `DeepSeek-V3-0324` gives `deepseekv3`, `Qwen3-30B-A3B` gives `qwen3`) and from each
//! architecture class (`Qwen3MoeForCausalLM` gives `qwen3moe` and, without the generic
//! `Moe`, `qwen3`).

use serde::{Deserialize, Serialize};

/// Words of `text`: maximal runs of ASCII letters and digits, lower-cased.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
}

/// Whether some run of consecutive words of `text` glued together spells `key`.
pub fn names_key(text: &str, key: &str) -> bool {
    names_key_except(text, key, &[])
}

/// [`names_key`], except where the run and the next word spell one of `other` (another
/// model's key: `Qwen3-Next` names `qwen3next`, not `qwen3`; `Llama 4` names `llama4`).
pub fn names_key_except(text: &str, key: &str, other: &[String]) -> bool {
    if key.is_empty() {
        return false;
    }
    let ws = words(text);
    for start in 0..ws.len() {
        let mut glued = String::new();
        for (end, w) in ws.iter().enumerate().skip(start) {
            glued.push_str(w);
            if glued.len() >= key.len() {
                if glued == key {
                    let longer = ws.get(end + 1).map(|next| format!("{glued}{next}"));
                    if !longer.is_some_and(|l| other.contains(&l)) {
                        return true;
                    }
                }
                break;
            }
            if !key.starts_with(glued.as_str()) {
                break;
            }
        }
    }
    false
}

/// A word that reads as a short version: `3`, `v3`, `2` (at most two digits).
fn is_version(word: &str) -> bool {
    let digits = word.strip_prefix('v').unwrap_or(word);
    !digits.is_empty() && digits.len() <= 2 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Candidate keys from the model id, most specific first, for every starting word: the
/// name with its version (`llama3`), then the name alone (`llama`). Starting words are
/// tried in order so an organisation prefix (`Meta-Llama-3-8B`) can be skipped by the caller.
pub fn model_id_keys(model: &str) -> Vec<(String, String)> {
    let last = model
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(model);
    let ws = words(last);
    let mut out = Vec::new();
    for (i, w) in ws.iter().enumerate() {
        if !w.bytes().next().is_some_and(|b| b.is_ascii_alphabetic()) {
            continue;
        }
        let alpha_only = w.bytes().all(|b| b.is_ascii_alphabetic());
        if alpha_only {
            if let Some(v) = ws.get(i + 1).filter(|v| is_version(v)) {
                out.push((format!("{w}{v}"), format!("{w}-{v}")));
            }
        }
        out.push((w.clone(), w.clone()));
    }
    out
}

/// Camel-case parts of an identifier: `Qwen3MoeForCausalLM` -> `Qwen3`, `Moe`, `For`, ...
fn camel_parts(ident: &str) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    let chars: Vec<char> = ident.chars().collect();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let starts_new = c.is_ascii_uppercase()
            && !cur.is_empty()
            && (!chars[i - 1].is_ascii_uppercase()
                || chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase()));
        if c == '_' {
            if !cur.is_empty() {
                parts.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if starts_new {
            parts.push(std::mem::take(&mut cur));
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        parts.push(cur);
    }
    parts
}

/// Parts that say how a model is built, not which model it is.
const GENERIC_PARTS: &[&str] = &["moe", "dense", "model", "text", "lm", "causal"];

/// The architecture's stem: the class name before `For...`/`LMHead...`/`Model`, as camel
/// parts (`Qwen3MoeForCausalLM` -> `Qwen3`, `Moe`).
fn stem_parts(architecture: &str) -> Vec<String> {
    let parts = camel_parts(architecture);
    let end = parts
        .iter()
        .position(|p| p == "For" || p == "LMHead" || p == "LM" && parts.len() > 1)
        .unwrap_or(parts.len());
    parts[..end].to_vec()
}

/// The family an architecture class names, as (key, display): its stem without generic
/// parts, glued and hyphenated (`DeepseekV3ForCausalLM` -> `deepseekv3`, `deepseek-v3`).
pub fn architecture_family(architecture: &str) -> Option<(String, String)> {
    let mut parts: Vec<String> = stem_parts(architecture)
        .iter()
        .map(|p| p.to_ascii_lowercase())
        .collect();
    while parts.len() > 1
        && parts
            .last()
            .is_some_and(|p| GENERIC_PARTS.contains(&p.as_str()))
    {
        parts.pop();
    }
    let key = parts.concat();
    (!key.is_empty()).then(|| (key, parts.join("-")))
}

/// Keys of an architecture class: the whole stem glued (`qwen3moe`) and, when it ends in
/// generic parts, the stem without them (`qwen3`).
pub fn architecture_keys(architecture: &str) -> Vec<String> {
    let parts: Vec<String> = stem_parts(architecture)
        .iter()
        .map(|p| p.to_ascii_lowercase())
        .collect();
    let mut out = Vec::new();
    let whole: String = parts.concat();
    if !whole.is_empty() {
        out.push(whole);
    }
    let mut trimmed = parts.clone();
    while trimmed.len() > 1
        && trimmed
            .last()
            .is_some_and(|p| GENERIC_PARTS.contains(&p.as_str()))
    {
        trimmed.pop();
    }
    let short = trimmed.concat();
    if !short.is_empty() && !out.contains(&short) {
        out.push(short);
    }
    out
}

/// The family a campaign's history is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Family {
    /// Display name (`qwen3`, `deepseek-v3`, `llama-3`).
    pub name: String,
    /// Keys a commit subject or PR title may spell to name the family.
    pub keys: Vec<String>,
    /// The one word a code-search query starts from (`qwen3`, `deepseek`, `llama`).
    pub search_word: String,
    /// Keys of other models that extend a family key (`qwen3next`, `llama4`): a text that
    /// spells one of them names that model, not this family.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_models: Vec<String>,
}

impl Family {
    /// Builds the family from the model id key that matched (`key`, `display`) and the
    /// architectures.
    pub fn new(key: &str, display: &str, architectures: &[String]) -> Family {
        let mut keys = vec![key.to_string()];
        for a in architectures {
            for k in architecture_keys(a) {
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
        let search_word = display.split('-').next().unwrap_or(display).to_string();
        Family {
            name: display.to_string(),
            keys,
            search_word,
            other_models: Vec::new(),
        }
    }

    /// Records the keys of `known` (every registered architecture's keys) that extend one
    /// of the family's keys without being one.
    pub fn set_other_models(&mut self, known: &[String]) {
        let mut other: Vec<String> = known
            .iter()
            .filter(|k| !self.keys.contains(k))
            .filter(|k| self.keys.iter().any(|f| k.starts_with(f.as_str())))
            .cloned()
            .collect();
        other.sort();
        other.dedup();
        self.other_models = other;
    }

    /// Whether `text` (a commit subject or PR title) names the family.
    pub fn named_in(&self, text: &str) -> bool {
        self.keys
            .iter()
            .any(|k| names_key_except(text, k, &self.other_models))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys_from_model_ids() {
        assert_eq!(
            model_id_keys("meta-llama/Llama-3.1-8B-Instruct")[0],
            ("llama3".into(), "llama-3".into())
        );
        assert_eq!(
            model_id_keys("deepseek-ai/DeepSeek-V3-0324")[0],
            ("deepseekv3".into(), "deepseek-v3".into())
        );
        assert_eq!(
            model_id_keys("Qwen/Qwen3-30B-A3B")[0],
            ("qwen3".into(), "qwen3".into())
        );
        assert_eq!(
            model_id_keys("mistralai/Mixtral-8x7B")[0],
            ("mixtral".into(), "mixtral".into())
        );
        let meta: Vec<String> = model_id_keys("meta-llama/Meta-Llama-3-8B")
            .into_iter()
            .map(|k| k.0)
            .collect();
        assert_eq!(meta, vec!["meta", "llama3", "llama"]);
    }

    #[test]
    fn keys_from_architectures() {
        assert_eq!(
            architecture_keys("Qwen3MoeForCausalLM"),
            vec!["qwen3moe", "qwen3"]
        );
        assert_eq!(
            architecture_keys("DeepseekV3ForCausalLM"),
            vec!["deepseekv3"]
        );
        assert_eq!(architecture_keys("LlamaForCausalLM"), vec!["llama"]);
        assert_eq!(architecture_keys("GPT2LMHeadModel"), vec!["gpt2"]);
        assert_eq!(architecture_keys("MiniMaxM2ForCausalLM"), vec!["minimaxm2"]);
        assert_eq!(
            architecture_keys("Ernie4_5_MoeForCausalLM"),
            vec!["ernie45moe", "ernie45"]
        );
        assert_eq!(
            architecture_family("DeepseekV3ForCausalLM"),
            Some(("deepseekv3".into(), "deepseek-v3".into()))
        );
        assert_eq!(architecture_family("For"), None);
    }

    #[test]
    fn subjects_name_keys_across_separators() {
        assert!(names_key("[DeepSeek-V3] faster MLA (#123)", "deepseekv3"));
        assert!(names_key("support deepseek v3 fp8", "deepseekv3"));
        assert!(names_key("Fix Qwen3-MoE EP", "qwen3"));
        assert!(!names_key("Add Llama4 vision", "llama"));
        assert!(names_key("Llama 4 vision", "llama"));
        assert!(!names_key("qwen30b config", "qwen3"));
        assert!(!names_key("anything", ""));
    }

    #[test]
    fn family_search_word() {
        let f = Family::new(
            "deepseekv3",
            "deepseek-v3",
            &["DeepseekV3ForCausalLM".into()],
        );
        assert_eq!(f.search_word, "deepseek");
        assert!(f.named_in("DeepSeekV3 two-batch overlap"));
        assert!(!f.named_in("DeepSeek-R1 docs"));
        let mut q = Family::new("qwen3", "qwen3", &["Qwen3MoeForCausalLM".into()]);
        q.set_other_models(&[
            "qwen3".into(),
            "qwen3next".into(),
            "qwen3vl".into(),
            "llama4".into(),
        ]);
        assert_eq!(q.other_models, vec!["qwen3next", "qwen3vl"]);
        assert!(!q.named_in("[Qwen3-next] mamba radix cache"));
        assert!(!q.named_in("Qwen3 VL vision tower"));
        assert!(q.named_in("[Qwen3-MoE] fused topk"));
        assert!(q.named_in("fix qwen3"));
    }

    proptest! {
        #[test]
        fn never_panics(s in ".*", k in "[a-z0-9]{0,8}") {
            let _ = names_key(&s, &k);
            let _ = model_id_keys(&s);
            let _ = architecture_keys(&s);
        }

        #[test]
        fn a_key_names_itself_with_separators(parts in proptest::collection::vec("[a-z][a-z0-9]{0,5}", 1..4), sep in "[ _.-]") {
            let key: String = parts.concat();
            let text = format!("x {} y", parts.join(&sep));
            prop_assert!(names_key(&text, &key));
        }
    }
}
