//! The simulated engine's approximate tokenizer.
//!
//! Rule (documented for users of the built-in benchmark client): text is split on
//! whitespace, and each word counts one token per started 8 characters (`ceil(chars / 8)`).
//! A prompt sent as a list of integers (token ids, as the OpenAI completions API allows)
//! counts one token per id. The built-in client's random prompts are words of 1 to 8
//! characters joined by single spaces, so their simulated token count equals the requested
//! input length exactly.

/// Characters per token within one word.
pub const CHARS_PER_TOKEN: usize = 8;

/// Simulated token count of `text`.
pub fn count_tokens(text: &str) -> u64 {
    text.split_whitespace()
        .map(|w| w.chars().count().div_ceil(CHARS_PER_TOKEN) as u64)
        .sum()
}

/// A prompt of exactly `tokens` simulated tokens, built from `next_word_seed` values so that
/// prompts differ (as real random datasets do) without any vocabulary.
pub fn prompt_with_tokens(tokens: u64, mut next_word_seed: impl FnMut() -> u32) -> String {
    let mut out = String::with_capacity(tokens as usize * 6);
    for i in 0..tokens {
        if i > 0 {
            out.push(' ');
        }
        // Base-36 word of 1..=7 characters (u32 < 36^7): always exactly one simulated token.
        let mut v = next_word_seed();
        let mut word = Vec::with_capacity(7);
        loop {
            let digit = (v % 36) as u8;
            word.push(if digit < 10 {
                b'0' + digit
            } else {
                b'a' + digit - 10
            });
            v /= 36;
            if v == 0 {
                break;
            }
        }
        word.reverse();
        out.push_str(std::str::from_utf8(&word).unwrap_or("x"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn counting_rule() {
        assert_eq!(count_tokens(""), 0);
        assert_eq!(count_tokens("hello world"), 2);
        assert_eq!(count_tokens("  internationalization  "), 3); // 20 chars
        assert_eq!(count_tokens("a\tb\nc"), 3);
    }

    proptest! {
        #[test]
        fn generated_prompts_have_exact_counts(n in 0u64..2000, seed in any::<u32>()) {
            let mut s = seed;
            let prompt = prompt_with_tokens(n, || { s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223); s });
            prop_assert_eq!(count_tokens(&prompt), n);
        }

        #[test]
        fn counting_never_panics(text in any::<String>()) {
            let _ = count_tokens(&text);
        }
    }
}
