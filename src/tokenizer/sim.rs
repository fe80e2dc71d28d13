//! The SIMULATED model's tokenizer: a real `tokenizer.json` (word-level, whitespace
//! pre-tokenizer) over a fixed made-up vocabulary, so the simulator lane exercises exactly
//! the code paths a real model's tokenizer does. Real Python benchmark clients load it too
//! (from the folder [`write_model_dir`] writes) when they run against `sota-bot sim serve`.
//!
//! Every word is one token and text round-trips exactly, unlike a byte-level BPE
//! tokenizer; the tests of the prompt builder use a real Llama-3 tokenizer for that.

use std::path::Path;

/// Words in the vocabulary (ids `1..=VOCAB_WORDS`; id 0 is the unknown token).
pub const VOCAB_WORDS: usize = 32_000;
/// The unknown token.
pub const UNK: &str = "[UNK]";

const ONSETS: &[&str] = &[
    "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "ch", "sh", "tr", "pl",
    "gr", "st",
];
const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "ai", "ou", "ea"];

/// The `i`-th word: syllables in base `ONSETS x VOWELS`, so words look like text.
fn word(mut i: usize) -> String {
    let base = ONSETS.len() * VOWELS.len();
    let mut out = String::new();
    loop {
        let s = i % base;
        out.push_str(ONSETS[s / VOWELS.len()]);
        out.push_str(VOWELS[s % VOWELS.len()]);
        i /= base;
        if i == 0 {
            break;
        }
        i -= 1;
    }
    out
}

/// Builds the simulated tokenizer.
pub fn build() -> tokenizers::Tokenizer {
    use tokenizers::models::wordlevel::WordLevel;
    let vocab = std::iter::once((UNK.to_string(), 0))
        .chain((0..VOCAB_WORDS).map(|i| (word(i), (i + 1) as u32)));
    let model = WordLevel::builder()
        .vocab(vocab.collect())
        .unk_token(UNK.to_string())
        .build()
        .expect("the simulated vocabulary is valid");
    let mut t = tokenizers::Tokenizer::new(model);
    t.with_pre_tokenizer(Some(tokenizers::pre_tokenizers::whitespace::Whitespace {}));
    t.add_special_tokens(&[tokenizers::AddedToken::from(UNK, true)]);
    t
}

/// Writes a model folder real clients load with `AutoTokenizer.from_pretrained(dir)`:
/// `tokenizer.json` and a `tokenizer_config.json` naming the fast tokenizer class.
pub fn write_model_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = build()
        .to_string(false)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    std::fs::write(dir.join("tokenizer.json"), json)?;
    let config = serde_json::json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": UNK,
        "model_max_length": 1_000_000,
        "clean_up_tokenization_spaces": false,
    });
    std::fs::write(
        dir.join("tokenizer_config.json"),
        serde_json::to_string_pretty(&config).unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::{ModelTokenizer, TokenizerSource};

    #[test]
    fn words_are_distinct_and_text_round_trips() {
        let words: std::collections::HashSet<String> = (0..VOCAB_WORDS).map(word).collect();
        assert_eq!(words.len(), VOCAB_WORDS);
        let t = ModelTokenizer::load(TokenizerSource::BuiltinSim).unwrap();
        let ids: Vec<u32> = t.ordinary_tokens().iter().copied().step_by(997).collect();
        let text = t.decode(&ids).unwrap();
        assert_eq!(t.encode(&text, false).unwrap(), ids);
        assert_eq!(
            t.encode(&text, true).unwrap(),
            ids,
            "no special tokens are added"
        );
        assert_eq!(t.ordinary_tokens().len(), VOCAB_WORDS);
    }

    #[test]
    fn the_written_folder_loads_as_the_same_tokenizer() {
        let d = tempfile::tempdir().unwrap();
        write_model_dir(d.path()).unwrap();
        let from_file =
            ModelTokenizer::load(TokenizerSource::File(d.path().join("tokenizer.json"))).unwrap();
        let builtin = ModelTokenizer::load(TokenizerSource::BuiltinSim).unwrap();
        let text = "ba be bi unknownword";
        assert_eq!(
            from_file.encode(text, true).unwrap(),
            builtin.encode(text, true).unwrap()
        );
    }
}
