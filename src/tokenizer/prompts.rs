//! Prompts of exactly N tokens (pure over a [`TokenCodec`]).
//!
//! Random token ids do not survive a decode/encode round trip in byte-level BPE tokenizers
//! (neighbouring tokens merge, split or change), so a prompt is built by drawing ids,
//! decoding them to text, re-encoding that text, and trimming or topping up the ids until
//! the text encodes to exactly the target length. The result is text *and* the ids it
//! encodes to, so a client can send either and the engine sees the same tokens.
//!
//! A prompt set is a pure function of (tokenizer, length, count, seed): every framework of
//! a campaign gets the same request bytes.

use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

/// What the prompt builder needs from a tokenizer.
pub trait TokenCodec {
    /// Ids of `text`, without special tokens.
    fn encode(&self, text: &str) -> Vec<u32>;
    /// Text of `ids`.
    fn decode(&self, ids: &[u32]) -> String;
    /// Ids prompts may be drawn from (non-empty, no special tokens).
    fn ordinary_tokens(&self) -> &[u32];
}

/// One prompt: `text` encodes (without special tokens) to exactly `ids`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub text: String,
    pub ids: Vec<u32>,
}

/// Why a prompt of the requested length could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromptError {
    #[error("the tokenizer has no ordinary tokens to draw prompts from")]
    NoTokens,
    #[error("no text of exactly {target} tokens was found after {attempts} attempts (last: {last} tokens)")]
    Inexact {
        target: usize,
        attempts: usize,
        last: usize,
    },
}

const ATTEMPTS: usize = 64;

fn draw(codec: &dyn TokenCodec, n: usize, rng: &mut impl Rng) -> Vec<u32> {
    let pool = codec.ordinary_tokens();
    (0..n)
        .map(|_| pool[rng.random_range(0..pool.len())])
        .collect()
}

/// A prompt whose text encodes to exactly `len` tokens.
pub fn exact_prompt(
    codec: &dyn TokenCodec,
    len: usize,
    rng: &mut impl Rng,
) -> Result<Prompt, PromptError> {
    if codec.ordinary_tokens().is_empty() {
        return Err(PromptError::NoTokens);
    }
    let mut ids = draw(codec, len, rng);
    let mut last = 0;
    for _ in 0..ATTEMPTS {
        let text = codec.decode(&ids);
        let encoded = codec.encode(&text);
        last = encoded.len();
        match encoded.len().cmp(&len) {
            std::cmp::Ordering::Equal => return Ok(Prompt { text, ids: encoded }),
            std::cmp::Ordering::Greater => ids = encoded[..len].to_vec(),
            std::cmp::Ordering::Less => {
                ids = encoded;
                let missing = len - ids.len();
                ids.extend(draw(codec, missing, rng));
            }
        }
    }
    Err(PromptError::Inexact {
        target: len,
        attempts: ATTEMPTS,
        last,
    })
}

/// `count` prompts of exactly `len` tokens, the same for the same inputs everywhere.
pub fn prompt_set(
    codec: &dyn TokenCodec,
    len: usize,
    count: usize,
    seed: u64,
) -> Result<Vec<Prompt>, PromptError> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ (len as u64).rotate_left(32));
    (0..count)
        .map(|_| exact_prompt(codec, len, &mut rng))
        .collect()
}

/// A digest of a prompt set's texts: equal digests mean the same request prompts.
pub fn prompt_digest(prompts: &[Prompt]) -> String {
    let mut h = Sha256::new();
    for p in prompts {
        h.update((p.text.len() as u64).to_le_bytes());
        h.update(p.text.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A codec whose tokens merge: "a" + "a" re-encodes as "aa", so round trips shrink.
    struct Merging {
        pool: Vec<u32>,
    }

    impl TokenCodec for Merging {
        fn encode(&self, text: &str) -> Vec<u32> {
            let mut out = Vec::new();
            let b = text.as_bytes();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'a' && b.get(i + 1) == Some(&b'a') {
                    out.push(3);
                    i += 2;
                } else {
                    out.push(match b[i] {
                        b'a' => 1,
                        b'b' => 2,
                        _ => 4,
                    });
                    i += 1;
                }
            }
            out
        }
        fn decode(&self, ids: &[u32]) -> String {
            ids.iter()
                .map(|i| match i {
                    1 => "a",
                    2 => "b",
                    3 => "aa",
                    _ => "c",
                })
                .collect()
        }
        fn ordinary_tokens(&self) -> &[u32] {
            &self.pool
        }
    }

    proptest! {
        #[test]
        fn prompts_encode_to_exactly_the_target(len in 1usize..300, seed in any::<u64>()) {
            let codec = Merging { pool: vec![1, 2, 3] };
            let set = prompt_set(&codec, len, 3, seed).unwrap();
            for p in &set {
                prop_assert_eq!(codec.encode(&p.text).len(), len);
                prop_assert_eq!(&codec.encode(&p.text), &p.ids);
            }
            prop_assert_eq!(&set, &prompt_set(&codec, len, 3, seed).unwrap());
        }
    }

    #[test]
    fn no_tokens_is_an_error_not_a_panic() {
        let codec = Merging { pool: vec![] };
        assert_eq!(prompt_set(&codec, 5, 1, 0), Err(PromptError::NoTokens));
        assert_eq!(prompt_set(&codec, 5, 0, 0), Ok(vec![]));
    }

    #[test]
    fn digests_tell_prompt_sets_apart() {
        let codec = Merging { pool: vec![1, 2] };
        let a = prompt_set(&codec, 10, 4, 1).unwrap();
        let b = prompt_set(&codec, 10, 4, 2).unwrap();
        assert_eq!(prompt_digest(&a), prompt_digest(&a.clone()));
        assert_ne!(prompt_digest(&a), prompt_digest(&b));
    }
}
