//! The model's own tokenizer: prompt lengths are tokens as the model counts them.
//!
//! A campaign's workload says "1000 input tokens"; every framework must receive prompts of
//! exactly that many tokens of the model's tokenizer, and every row records the counts it
//! actually measured. Random words are not tokens (a Llama-3 word is about five tokens), so
//! the built-in client and the simulated engine load the model's `tokenizer.json` (the
//! Hugging Face format) and count with it.
//!
//! A tokenizer is named by a spec: a `tokenizer.json` file, a model folder holding one, a
//! Hugging Face model id found in the local Hugging Face cache (never downloaded), or
//! `builtin:sim`, the simulated model's tokenizer ([`sim`]). A spec that resolves to
//! nothing is a [`TokenizerError::NotFound`] listing every place that was looked at.

pub mod prompts;
pub mod sim;

use std::path::{Path, PathBuf};

/// The spec of the simulated model's built-in tokenizer.
pub const BUILTIN_SIM: &str = "builtin:sim";

/// Why a tokenizer could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("no tokenizer found for `{spec}`; looked at: {}", .looked.join(", "))]
    NotFound { spec: String, looked: Vec<String> },
    #[error("{path}: not a usable tokenizer.json: {message}")]
    Unreadable { path: String, message: String },
    #[error(
        "{source_name}: the tokenizer has no ordinary (non-special) tokens to build prompts from"
    )]
    NoOrdinaryTokens { source_name: String },
    #[error("{source_name}: cannot encode text: {message}")]
    Encode {
        source_name: String,
        message: String,
    },
}

/// Where the Hugging Face cache lives, from the environment (`HF_HUB_CACHE`, `HF_HOME`,
/// `XDG_CACHE_HOME`, `HOME`), so resolution is testable without touching the real cache.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HfCache {
    pub hub_dirs: Vec<PathBuf>,
}

impl HfCache {
    /// The cache folders the Hugging Face libraries would use, most specific first.
    pub fn from_env() -> HfCache {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let mut hub_dirs = Vec::new();
        if let Some(p) = var("HF_HUB_CACHE").or_else(|| var("HUGGINGFACE_HUB_CACHE")) {
            hub_dirs.push(p);
        }
        if let Some(home) = var("HF_HOME") {
            hub_dirs.push(home.join("hub"));
        }
        let xdg = var("XDG_CACHE_HOME").or_else(|| var("HOME").map(|h| h.join(".cache")));
        if let Some(c) = xdg {
            hub_dirs.push(c.join("huggingface").join("hub"));
        }
        hub_dirs.dedup();
        HfCache { hub_dirs }
    }

    /// The snapshot `tokenizer.json` of `model_id` (`org/name`): the snapshot `refs/main`
    /// points at, else the most recently modified snapshot that has one.
    fn find(&self, model_id: &str, looked: &mut Vec<String>) -> Option<PathBuf> {
        let folder = format!("models--{}", model_id.replace('/', "--"));
        for hub in &self.hub_dirs {
            let repo = hub.join(&folder);
            looked.push(
                repo.join("snapshots/*/tokenizer.json")
                    .display()
                    .to_string(),
            );
            let snapshots = repo.join("snapshots");
            if let Ok(rev) = std::fs::read_to_string(repo.join("refs/main")) {
                let p = snapshots.join(rev.trim()).join("tokenizer.json");
                if p.is_file() {
                    return Some(p);
                }
            }
            let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&snapshots)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path().join("tokenizer.json"))
                .filter(|p| p.is_file())
                .map(|p| {
                    let t = p
                        .metadata()
                        .and_then(|m| m.modified())
                        .unwrap_or(std::time::UNIX_EPOCH);
                    (t, p)
                })
                .collect();
            found.sort();
            if let Some((_, p)) = found.pop() {
                return Some(p);
            }
        }
        None
    }
}

/// Where a tokenizer comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenizerSource {
    /// A `tokenizer.json` file.
    File(PathBuf),
    /// The simulated model's tokenizer, built in memory.
    BuiltinSim,
}

impl TokenizerSource {
    /// A name for messages and rows.
    pub fn display(&self) -> String {
        match self {
            TokenizerSource::File(p) => p.display().to_string(),
            TokenizerSource::BuiltinSim => BUILTIN_SIM.to_string(),
        }
    }
}

/// Resolves a tokenizer spec (see the module docs) without loading it.
pub fn resolve(spec: &str, cache: &HfCache) -> Result<TokenizerSource, TokenizerError> {
    let spec = spec.trim();
    if spec == BUILTIN_SIM {
        return Ok(TokenizerSource::BuiltinSim);
    }
    let mut looked = Vec::new();
    let path = Path::new(spec);
    if path.is_file() {
        return Ok(TokenizerSource::File(path.to_path_buf()));
    }
    looked.push(spec.to_string());
    if path.is_dir() {
        let p = path.join("tokenizer.json");
        if p.is_file() {
            return Ok(TokenizerSource::File(p));
        }
        looked.push(p.display().to_string());
    } else if is_hub_id(spec) {
        if let Some(p) = cache.find(spec, &mut looked) {
            return Ok(TokenizerSource::File(p));
        }
    }
    Err(TokenizerError::NotFound {
        spec: spec.to_string(),
        looked,
    })
}

/// `org/name` or `name`, in the characters Hugging Face allows in repository ids.
fn is_hub_id(spec: &str) -> bool {
    let parts: Vec<&str> = spec.split('/').collect();
    !spec.is_empty()
        && parts.len() <= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && !p.starts_with('.')
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
}

/// A loaded tokenizer and the ordinary tokens prompts are drawn from.
pub struct ModelTokenizer {
    inner: tokenizers::Tokenizer,
    source: TokenizerSource,
    ordinary: Vec<u32>,
}

impl std::fmt::Debug for ModelTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelTokenizer")
            .field("source", &self.source)
            .field("ordinary_tokens", &self.ordinary.len())
            .finish()
    }
}

impl ModelTokenizer {
    /// Resolves and loads a spec.
    pub fn load_spec(spec: &str, cache: &HfCache) -> Result<ModelTokenizer, TokenizerError> {
        ModelTokenizer::load(resolve(spec, cache)?)
    }

    /// Loads a resolved source.
    pub fn load(source: TokenizerSource) -> Result<ModelTokenizer, TokenizerError> {
        let inner = match &source {
            TokenizerSource::BuiltinSim => sim::build(),
            TokenizerSource::File(p) => {
                let bytes = std::fs::read(p).map_err(|e| TokenizerError::Unreadable {
                    path: p.display().to_string(),
                    message: e.to_string(),
                })?;
                tokenizers::Tokenizer::from_bytes(&bytes).map_err(|e| {
                    TokenizerError::Unreadable {
                        path: p.display().to_string(),
                        message: e.to_string(),
                    }
                })?
            }
        };
        ModelTokenizer::from_tokenizer(inner, source)
    }

    fn from_tokenizer(
        inner: tokenizers::Tokenizer,
        source: TokenizerSource,
    ) -> Result<ModelTokenizer, TokenizerError> {
        let special: std::collections::HashSet<u32> = inner
            .get_added_tokens_decoder()
            .iter()
            .filter(|(_, t)| t.special)
            .map(|(id, _)| *id)
            .collect();
        let mut ordinary: Vec<u32> = inner
            .get_vocab(false)
            .into_values()
            .filter(|id| !special.contains(id))
            .filter(|id| {
                // Tokens that decode to clean text re-encode predictably; partial UTF-8
                // bytes and control characters would only slow the exact-length search.
                inner.decode(&[*id], false).is_ok_and(|t| {
                    !t.trim().is_empty() && !t.chars().any(|c| c == '\u{fffd}' || c.is_control())
                })
            })
            .collect();
        ordinary.sort_unstable();
        if ordinary.is_empty() {
            return Err(TokenizerError::NoOrdinaryTokens {
                source_name: source.display(),
            });
        }
        Ok(ModelTokenizer {
            inner,
            source,
            ordinary,
        })
    }

    /// Where it was loaded from.
    pub fn source(&self) -> &TokenizerSource {
        &self.source
    }

    /// Token ids of `text`; `add_special` adds what the model's post-processor adds (a
    /// beginning-of-text token for Llama-3), as serving engines do for text prompts.
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>, TokenizerError> {
        self.inner
            .encode(text, add_special)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| TokenizerError::Encode {
                source_name: self.source.display(),
                message: e.to_string(),
            })
    }

    /// Text of token ids (special tokens kept).
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        self.inner
            .decode(ids, false)
            .map_err(|e| TokenizerError::Encode {
                source_name: self.source.display(),
                message: e.to_string(),
            })
    }

    /// The ordinary token ids prompts are drawn from (sorted).
    pub fn ordinary_tokens(&self) -> &[u32] {
        &self.ordinary
    }
}

impl prompts::TokenCodec for ModelTokenizer {
    fn encode(&self, text: &str) -> Vec<u32> {
        ModelTokenizer::encode(self, text, false).unwrap_or_default()
    }

    fn decode(&self, ids: &[u32]) -> String {
        ModelTokenizer::decode(self, ids).unwrap_or_default()
    }

    fn ordinary_tokens(&self) -> &[u32] {
        &self.ordinary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path, text: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn specs_resolve_to_files_folders_and_cache_snapshots() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("m/tokenizer.json");
        touch(&file, "{}");
        let cache = HfCache {
            hub_dirs: vec![d.path().join("hub")],
        };
        assert_eq!(
            resolve(file.to_str().unwrap(), &cache).unwrap(),
            TokenizerSource::File(file.clone())
        );
        assert_eq!(
            resolve(d.path().join("m").to_str().unwrap(), &cache).unwrap(),
            TokenizerSource::File(file)
        );
        let repo = d.path().join("hub/models--org--Name-1");
        touch(&repo.join("snapshots/aaa/tokenizer.json"), "{}");
        touch(&repo.join("snapshots/bbb/tokenizer.json"), "{}");
        touch(&repo.join("refs/main"), "aaa\n");
        assert_eq!(
            resolve("org/Name-1", &cache).unwrap(),
            TokenizerSource::File(repo.join("snapshots/aaa/tokenizer.json"))
        );
        assert_eq!(
            resolve(BUILTIN_SIM, &cache).unwrap(),
            TokenizerSource::BuiltinSim
        );
    }

    #[test]
    fn a_missing_tokenizer_names_every_place_looked_at() {
        let d = tempfile::tempdir().unwrap();
        let cache = HfCache {
            hub_dirs: vec![d.path().join("hub")],
        };
        let e = resolve("meta-llama/Llama-3.1-8B", &cache).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("meta-llama/Llama-3.1-8B"), "{msg}");
        assert!(
            msg.contains("models--meta-llama--Llama-3.1-8B/snapshots/*/tokenizer.json"),
            "{msg}"
        );
        let empty_dir = d.path().join("model");
        std::fs::create_dir_all(&empty_dir).unwrap();
        let e = resolve(empty_dir.to_str().unwrap(), &cache).unwrap_err();
        assert!(e.to_string().contains("model/tokenizer.json"), "{e}");
    }

    #[test]
    fn an_unreadable_file_is_a_typed_error_naming_it() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("tokenizer.json");
        std::fs::write(&p, "{\"not\": \"a tokenizer\"").unwrap();
        let e = ModelTokenizer::load(TokenizerSource::File(p.clone())).unwrap_err();
        assert!(matches!(e, TokenizerError::Unreadable { .. }), "{e}");
        assert!(e.to_string().contains(&p.display().to_string()));
    }
}
